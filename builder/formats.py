"""Which syntax a KG file is written in: decided by its content, refined by its extension, overridable by the user."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import re
import zlib
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from .errors import KsUserError


class KgFormat(StrEnum):
    TURTLE = "turtle"
    NTRIPLES = "ntriples"
    NQUADS = "nquads"
    TRIG = "trig"
    RDFXML = "rdfxml"
    N3 = "n3"
    JSONLD = "jsonld"
    JSON = "json"  # our JSON shapes: node-link, triple list, nodes with level/parent
    JSONL = "jsonl"  # one {subject, relation, object} object per line

    @property
    def is_rdf(self) -> bool:
        return self not in (KgFormat.JSON, KgFormat.JSONL)


# Names a user may pass to --format, with the spellings other tools use.
FORMAT_ALIASES: dict[str, KgFormat] = {
    "turtle": KgFormat.TURTLE, "ttl": KgFormat.TURTLE,
    "ntriples": KgFormat.NTRIPLES, "nt": KgFormat.NTRIPLES, "n-triples": KgFormat.NTRIPLES,
    "nquads": KgFormat.NQUADS, "nq": KgFormat.NQUADS, "n-quads": KgFormat.NQUADS,
    "trig": KgFormat.TRIG,
    "rdfxml": KgFormat.RDFXML, "rdf/xml": KgFormat.RDFXML, "xml": KgFormat.RDFXML, "rdf": KgFormat.RDFXML,
    "n3": KgFormat.N3,
    "jsonld": KgFormat.JSONLD, "json-ld": KgFormat.JSONLD,
    "json": KgFormat.JSON,
    "jsonl": KgFormat.JSONL, "ndjson": KgFormat.JSONL,
}

# Extensions that name exactly one syntax. They refine a content sniff within a family (text RDF, XML, JSON) and
# are what makes a strict parser hold an `.nt` file to N-Triples rather than to the looser Turtle.
_TEXT_RDF_EXTENSIONS = {
    ".ttl": KgFormat.TURTLE, ".turtle": KgFormat.TURTLE,
    ".nt": KgFormat.NTRIPLES, ".ntriples": KgFormat.NTRIPLES,
    ".nq": KgFormat.NQUADS, ".nquads": KgFormat.NQUADS,
    ".trig": KgFormat.TRIG,
    ".n3": KgFormat.N3,
}
_JSON_EXTENSIONS = {".jsonld": KgFormat.JSONLD, ".json-ld": KgFormat.JSONLD,
                    ".jsonl": KgFormat.JSONL, ".ndjson": KgFormat.JSONL}
# `.rdf` names RDF/XML even when the root is a plain node element: rdf:RDF is optional, so `<Book xmlns="…">` with no
# RDF namespace at all is a valid RDF/XML document (W3C test rdf-element-not-mandatory-test001). `.owl` and `.xml`
# are left to the content, since OWL/XML and other XML use them too.
_XML_RDF_EXTENSIONS = {".rdf"}
_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".xz"}

SNIFF_BYTES = 64 * 1024

_XML_ELEMENT = re.compile(rb"<([A-Za-z_][\w.-]*)(?::([A-Za-z_][\w.-]*))?[\s>/]")
_OWL_XML_NS = b"http://www.w3.org/2002/07/owl#"
_RDF_NS = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def parse_format_name(name: str) -> KgFormat:
    try:
        return FORMAT_ALIASES[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted({f.value for f in KgFormat}))
        raise KsUserError(f"unknown format {name!r}; known formats: {known}") from None


# Errors a decompressing stream raises on truncated or corrupt data, mid-read.
DECOMPRESSION_ERRORS = (EOFError, OSError, lzma.LZMAError, zlib.error)
_COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}


def compression_of(magic: bytes) -> str | None:
    """`gzip`, `bzip2` or `xz` from a file's first bytes, else None."""
    return next((name for prefix, name in _COMPRESSION_MAGIC.items() if magic.startswith(prefix)), None)


def corrupt_compressed_data(path: Path, exc: BaseException) -> KsUserError:
    return KsUserError(f"compressed data is truncated or corrupt ({exc})", path=str(path))


def open_kg_bytes(path: Path) -> BinaryIO:
    """Open a KG file for binary reading, transparently decompressing gzip, bzip2 and xz (detected by magic bytes)."""
    if not path.exists():
        raise KsUserError("no such file", path=str(path))
    if path.is_dir():
        raise KsUserError("is a directory, not a KG file", path=str(path))
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    except OSError as exc:
        raise KsUserError(f"cannot open: {exc.strerror}", path=str(path)) from None
    magic = raw.read(6)
    raw.seek(0)
    compression = compression_of(magic)
    if compression == "gzip":
        return _skip_bom(gzip.GzipFile(fileobj=raw, mode="rb"), path)  # type: ignore[arg-type]
    if compression == "bzip2":
        return _skip_bom(bz2.BZ2File(raw, mode="rb"), path)  # type: ignore[arg-type]
    if compression == "xz":
        return _skip_bom(lzma.LZMAFile(raw, mode="rb"), path)  # type: ignore[arg-type]
    if magic[:4] == b"PK\x03\x04":
        raw.close()
        raise KsUserError("is a zip archive; unzip it and pass the KG file inside", path=str(path))
    if magic[:3] == _UTF8_BOM:
        raw.seek(3)  # see _skip_bom
    return raw  # type: ignore[return-value]


_UTF8_BOM = b"\xef\xbb\xbf"


def _skip_bom(stream: BinaryIO, path: Path) -> BinaryIO:
    """Position a decompressed stream after a UTF-8 byte order mark, as for plain files above.

    Editors on Windows write one; pyoxigraph's parsers and `json.load` on bytes reject it ("\ufeff is not a valid
    subject"), while the sniffing already skipped it, so a BOM file used to be detected fine and then fail to parse.
    """
    try:
        if stream.read(3) != _UTF8_BOM:
            stream.seek(0)
    except DECOMPRESSION_ERRORS as exc:
        stream.close()
        raise corrupt_compressed_data(path, exc) from None
    return stream


def read_head(path: Path, size: int = SNIFF_BYTES) -> bytes:
    """The first `size` decompressed bytes of a file, with a clear error for truncated compressed data."""
    with open_kg_bytes(path) as handle:
        try:
            return handle.read(size)
        except DECOMPRESSION_ERRORS as exc:
            raise corrupt_compressed_data(path, exc) from None


def logical_suffix(path: Path) -> str:
    """The extension that names the syntax, skipping a compression suffix: `x.ttl.gz` → `.ttl`."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def detect_format(path: Path, head: bytes) -> KgFormat:
    """Decide the syntax of a KG file from its first bytes (and its extension, within the family the bytes show)."""
    where = str(path)
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if not text:
        raise KsUserError("file is empty", path=where)
    suffix = logical_suffix(path)
    # String literals of the text RDF syntaxes may hold raw control characters, NUL included (W3C tests
    # LITERAL1_all_controls, literal_ascii_boundaries), so a file named as one of them is binary only if not UTF-8.
    if _looks_binary(head, controls_are_text=suffix in _TEXT_RDF_EXTENSIONS):
        _raise_if_text_in_another_encoding(head, where)
        raise KsUserError("binary data, not a knowledge-graph text format (RDF, JSON-LD or JSON)", path=where)

    # A TriG default graph starts with '{' and a Turtle blank node with '[', so under a text RDF extension a leading
    # bracket means JSON only when JSON's own tokens follow it.
    if text[:1] in (b"{", b"[") and (suffix not in _TEXT_RDF_EXTENSIONS or _JSON_START.match(text)):
        return _detect_json(text, suffix, where)
    if text[:1] == b"<" and _is_xml(text):
        return _detect_xml(text, suffix, where)
    return _detect_text_rdf(text, suffix, where)


def _looks_binary(head: bytes, *, controls_are_text: bool = False) -> bool:
    sample = head[:8192]
    if b"\x00" in sample and not controls_are_text:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is not a sign of binary data.
        if exc.start < len(sample) - 4:
            return True
    if controls_are_text:
        return False
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return control > len(sample) // 100 + 1


def _raise_if_text_in_another_encoding(head: bytes, where: str) -> None:
    """Text that is not UTF-8 (Latin-1, Windows-1252) has no NUL and few control bytes: say so, and where, rather
    than calling it binary data."""
    sample = head[:8192]
    if b"\x00" in sample:
        return
    try:
        sample.decode("utf-8")
        return
    except UnicodeDecodeError as exc:
        start = exc.start
    control = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    if control > len(sample) // 100 + 1:
        return
    line = sample.count(b"\n", 0, start) + 1
    column = start - (sample.rfind(b"\n", 0, start) + 1) + 1  # in bytes
    raise KsUserError(f"not valid UTF-8 text (byte 0x{sample[start]:02x}); KG files are read as UTF-8: re-encode "
                      "it, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.utf8`", path=where, line=line, column=column)


def _is_xml(text: bytes) -> bool:
    if text.startswith((b"<?xml", b"<!--", b"<!DOCTYPE", b"<!doctype")):
        return True
    match = _XML_ELEMENT.match(text)
    return bool(match) and b"xmlns" in text[:SNIFF_BYTES]


def _detect_xml(text: bytes, suffix: str, where: str) -> KgFormat:
    root = _first_element(text)
    if root is None:
        raise KsUserError("XML without a root element", path=where)
    prefix, local, element_text = root
    if local == b"RDF" or _RDF_NS in element_text and prefix is not None:
        return KgFormat.RDFXML
    if local == b"Ontology" and _OWL_XML_NS in element_text:
        raise KsUserError(
            "OWL/XML syntax is not supported; convert it to RDF/XML or Turtle first, e.g. "
            "`robot convert --input FILE --output FILE.ttl` (ROBOT) or Protégé's 'Save as', "
            "or owlready2: get_ontology('file://FILE').load().save('FILE.rdf', format='rdfxml')",
            path=where)
    if _RDF_NS in element_text or suffix in _XML_RDF_EXTENSIONS:
        return KgFormat.RDFXML
    name = (prefix + b":" if prefix else b"") + local
    raise KsUserError(
        f"XML document with root element <{name.decode(errors='replace')}> is not RDF/XML; "
        "supported: RDF/XML, Turtle, N-Triples, N-Quads, TriG, N3, JSON-LD, JSON", path=where)


def _first_element(text: bytes) -> tuple[bytes | None, bytes, bytes] | None:
    """(prefix, local name, start-tag text) of the first element, skipping prolog, comments and doctype."""
    pos = 0
    while True:
        start = text.find(b"<", pos)
        if start < 0:
            return None
        if text.startswith(b"<?", start):
            pos = text.find(b"?>", start) + 2
        elif text.startswith(b"<!--", start):
            pos = text.find(b"-->", start) + 3
        elif text.startswith(b"<!", start):
            pos = _skip_doctype(text, start)
        else:
            match = _XML_ELEMENT.match(text, start)
            if not match:
                return None
            end = text.find(b">", start)
            tag = text[start:end if end > 0 else len(text)]
            if match.group(2) is not None:
                return match.group(1), match.group(2), tag
            return None, match.group(1), tag
        if pos <= 1:
            return None


def _skip_doctype(text: bytes, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        c = text[i:i + 1]
        if c == b"[":
            depth += 1
        elif c == b"]":
            depth -= 1
        elif c == b">" and depth <= 0:
            return i + 1
    return len(text)


def _detect_json(text: bytes, suffix: str, where: str) -> KgFormat:
    if suffix in _JSON_EXTENSIONS:
        return _JSON_EXTENSIONS[suffix]
    if re.search(rb'"@(context|graph|id|type)"\s*:', text):
        return KgFormat.JSONLD
    first_line, _, rest = text.partition(b"\n")
    if first_line.strip().startswith(b"{") and rest.strip().startswith(b"{"):
        try:
            json.loads(first_line)
            return KgFormat.JSONL
        except ValueError:
            pass
    return KgFormat.JSON


# The first tokens of a JSON document that no text RDF syntax starts with: an object's first key (`{"k":`), or an
# array whose first value is an object, array, string, number or keyword. (An empty `{}` is also an empty TriG
# default graph, so it stays with the extension.)
_JSON_START = re.compile(rb'\{\s*"(?:[^"\\\n]|\\.)*"\s*:|\[\s*(?:[{\["\d-]|true\b|false\b|null\b)')

# Constructs that only one text syntax has. OWL functional and Manchester syntax are named so the error can say so.
_OWL_FUNCTIONAL = re.compile(rb"^\s*(Prefix\s*\(|Ontology\s*\()", re.M)
_MANCHESTER = re.compile(rb"^\s*(Prefix:|Ontology:|Class:|ObjectProperty:)", re.M)
_N3_ONLY = re.compile(rb"@forAll|@forSome|@keywords|=>|<=\s|\{\s*[?<_:]")
_TRIG_GRAPH = re.compile(rb"(^|\n)\s*(GRAPH\s+)?(<[^>\s]*>|[A-Za-z][\w-]*:[\w-]*|_:\w+)?\s*\{", re.I)
# `(?<!:)` keeps the blank node `_:a` of N-Triples/N-Quads from reading as Turtle's `a` keyword.
_TURTLE_ONLY = re.compile(rb"@prefix|@base|^\s*PREFIX\s|^\s*BASE\s|;\s*$|(?<!:)\ba\s", re.M | re.I)
_NQUAD_LINE = re.compile(rb'^\s*(<[^>]*>|_:\S+)\s+<[^>]*>\s+(<[^>]*>|_:\S+|".*"\S*)\s+(<[^>]*>|_:\S+)\s*\.\s*(#.*)?$')
# One N-Triples statement on a line; the literal is matched exactly, so that a Turtle line such as
# `<s> <p> "x" ; <q> "y" .` does not pass for N-Triples.
_NTRIPLE_LINE = re.compile(rb'^\s*(<[^>]*>|_:\S+)\s+<[^>]*>\s+'
                           rb'(<[^>]*>|_:\S+|"(?:[^"\\]|\\.)*"(?:\^\^<[^>]*>|@[A-Za-z][\w-]*)?)\s*\.\s*(#.*)?$')


def _detect_text_rdf(text: bytes, suffix: str, where: str) -> KgFormat:
    if _OWL_FUNCTIONAL.search(text[:8192]) and b"@prefix" not in text[:8192]:
        raise KsUserError(
            "OWL functional syntax is not supported; convert it to Turtle or RDF/XML first, e.g. "
            "`robot convert --input FILE --output FILE.ttl` (ROBOT)", path=where)
    if _MANCHESTER.search(text[:8192]) and b"@prefix" not in text[:8192]:
        raise KsUserError(
            "OWL Manchester syntax is not supported; convert it to Turtle or RDF/XML first, e.g. "
            "`robot convert --input FILE --output FILE.ttl` (ROBOT)", path=where)
    if suffix in _TEXT_RDF_EXTENSIONS:
        return _TEXT_RDF_EXTENSIONS[suffix]
    body = _strip_comments_and_strings(text)
    if _N3_ONLY.search(body):
        return KgFormat.N3
    if _TRIG_GRAPH.search(body):
        return KgFormat.TRIG
    if _TURTLE_ONLY.search(body):
        return KgFormat.TURTLE
    lines = [ln for ln in text.splitlines()[:200] if ln.strip() and not ln.lstrip().startswith(b"#")]
    # The last line of the sniffed head may be cut short (a complete one ends with a line break).
    checked = lines if text.endswith((b"\n", b"\r")) else lines[:-1] or lines
    # One statement per line: N-Quads when any line names a graph (N-Quads may mix in default-graph triples, so a
    # quad file whose first line is a plain triple is still N-Quads), N-Triples when none does. Reading N-Triples
    # with the N-Triples parser holds them to their strict grammar and records the right format in the manifest.
    if checked and all(_NQUAD_LINE.match(ln) or _NTRIPLE_LINE.match(ln) for ln in checked):
        return KgFormat.NQUADS if any(_NQUAD_LINE.match(ln) for ln in checked) else KgFormat.NTRIPLES
    return KgFormat.TURTLE


_STRING_OR_COMMENT = re.compile(
    rb'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|#[^\n]*')


def _strip_comments_and_strings(text: bytes) -> bytes:
    """Blank out literals and comments so that braces or arrows inside them do not mislead the sniffing."""
    # IRIs may contain '#', so protect them first.
    return _STRING_OR_COMMENT.sub(b'""', re.sub(rb"<[^>\s]*>", b"<>", text))


def describe(fmt: KgFormat) -> str:
    return {
        KgFormat.TURTLE: "Turtle", KgFormat.NTRIPLES: "N-Triples", KgFormat.NQUADS: "N-Quads",
        KgFormat.TRIG: "TriG", KgFormat.RDFXML: "RDF/XML", KgFormat.N3: "N3", KgFormat.JSONLD: "JSON-LD",
        KgFormat.JSON: "JSON", KgFormat.JSONL: "JSON Lines",
    }[fmt]
