"""Readers: one KG file (any supported syntax) streamed into a `GraphAccumulator`.

RDF goes through pyoxigraph's strict streaming parsers (every syntax we accept, N3 and JSON-LD included); our JSON
shapes are read with the standard library. Every parse error becomes one `KsUserError` naming file, line and column.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import multiprocessing
import os
import xml.parsers.expat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pyoxigraph as ox
from tqdm import tqdm

from .errors import KsUserError
from .formats import DECOMPRESSION_ERRORS, KgFormat, compression_of, corrupt_compressed_data, describe, open_kg_bytes
from .graph import GraphAccumulator, GraphSlice
from .hierarchy import LEVELS
from .vocab import (
    CLASS_EXPRESSION_PREDICATES,
    DOCUMENT_CLASSES,
    PROPERTY_CLASSES,
    RDF_TYPE,
    RDFS_LABEL,
    SKOS_ALT_LABEL,
    SKOS_BROADER,
    XSD,
    Role,
    is_machinery_class,
)
from .vocab import LABEL_RANK as label_rank

_OX_FORMATS = {
    KgFormat.TURTLE: ox.RdfFormat.TURTLE,
    KgFormat.NTRIPLES: ox.RdfFormat.N_TRIPLES,
    KgFormat.NQUADS: ox.RdfFormat.N_QUADS,
    KgFormat.TRIG: ox.RdfFormat.TRIG,
    KgFormat.RDFXML: ox.RdfFormat.RDF_XML,
    KgFormat.N3: ox.RdfFormat.N3,
    KgFormat.JSONLD: ox.RdfFormat.JSON_LD,
}
_DATASET_FORMATS = {KgFormat.NQUADS, KgFormat.TRIG}


def read_kg_file(acc: GraphAccumulator, path: Path, fmt: KgFormat, *, jsonld_contexts: dict[str, Path],
                 progress: bool) -> int:
    """Stream one file into `acc`; returns the number of statements read."""
    before = acc.statements_read
    if fmt.is_rdf:
        _read_rdf(acc, path, fmt, jsonld_contexts, progress)
    elif fmt is KgFormat.JSONL:
        _read_jsonl(acc, path)
    else:
        _read_json(acc, path)
    return acc.statements_read - before


# -- RDF -------------------------------------------------------------------------------------------------------------

class _CountingReader(io.RawIOBase):
    """A binary stream that reports bytes read to a progress bar (and maps decompression errors to user errors)."""

    def __init__(self, inner: BinaryIO, bar: tqdm | None, path: Path) -> None:
        self.inner = inner
        self.bar = bar
        self.path = path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            n = self.inner.readinto(buffer)  # type: ignore[attr-defined]
        except DECOMPRESSION_ERRORS as exc:
            raise corrupt_compressed_data(self.path, exc) from None
        if self.bar is not None and n:
            self.bar.update(n)
        return n or 0


# Line-based syntaxes of at least this size are split at line boundaries and parsed by several processes.
PARALLEL_MIN_BYTES = 16 << 20
_LINE_BASED = {KgFormat.NTRIPLES, KgFormat.NQUADS}


def parallel_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _read_rdf(acc: GraphAccumulator, path: Path, fmt: KgFormat, jsonld_contexts: dict[str, Path],
              progress: bool) -> None:
    base_iri = path.resolve().as_uri()
    if fmt in _LINE_BASED and parallel_workers() > 1 and path.stat().st_size >= PARALLEL_MIN_BYTES \
            and not _is_compressed(path):
        _read_line_based_in_parallel(acc, path, fmt, base_iri, progress)
        return
    source = acc.add_source(path.name)
    with open_kg_bytes(path) as raw:
        if fmt is KgFormat.JSONLD:
            data = _inline_jsonld_contexts(raw, path, jsonld_contexts)
            stream: BinaryIO | bytes = data
            bar = None
        else:
            size = path.stat().st_size
            bar = tqdm(total=size, unit="B", unit_scale=True, desc=path.name,
                       disable=None if progress and size >= 8 << 20 else True, leave=False)
            stream = io.BufferedReader(_CountingReader(raw, bar, path), buffer_size=1 << 20)
        try:
            quads = ox.parse(stream, format=_OX_FORMATS[fmt], base_iri=base_iri)
            _consume_quads(acc, quads, source, track_graphs=fmt in _DATASET_FORMATS,
                           asserted_only=fmt is KgFormat.N3, path=path)
        except SyntaxError as exc:
            error = _syntax_error(exc, path, fmt)
            if error.line is None and fmt is KgFormat.RDFXML:
                error.line, error.column = _xml_error_position(path)
            raise KsUserError(error.message, path=error.path, line=error.line, column=error.column) from None
        except UnicodeDecodeError as exc:
            raise KsUserError(f"not valid UTF-8 text ({exc.reason} at byte {exc.start})", path=str(path)) from None
        finally:
            if bar is not None:
                bar.close()


def _is_compressed(path: Path) -> bool:
    with open(path, "rb") as handle:
        return compression_of(handle.read(6)) is not None


def _slices(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges that cut the file only just after a newline, so every slice holds whole statements."""
    size = path.stat().st_size
    cuts = [0]
    with open(path, "rb") as handle:
        for i in range(1, parts):
            handle.seek(max(cuts[-1], size * i // parts))
            handle.readline()
            position = handle.tell()
            if position >= size:
                break
            if position > cuts[-1]:
                cuts.append(position)
    cuts.append(size)
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _parse_slice(path: Path, fmt: KgFormat, base_iri: str, start: int, end: int,
                 languages: list[str]) -> GraphSlice | tuple[str, int | None, int | None]:
    """Worker: parse bytes [start, end) into a fresh accumulator; a syntax error comes back as (message, line in
    the slice, column) so the parent can report the line in the whole file."""
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    part = GraphAccumulator(languages)
    source = part.add_source(path.name)
    try:
        _consume_quads(part, ox.parse(data, format=_OX_FORMATS[fmt], base_iri=base_iri), source,
                       track_graphs=fmt is KgFormat.NQUADS, asserted_only=False, path=path)
    except SyntaxError as exc:
        error = _syntax_error(exc, path, fmt)
        return error.message, error.line, error.column
    return part.detach()


def _read_line_based_in_parallel(acc: GraphAccumulator, path: Path, fmt: KgFormat, base_iri: str,
                                 progress: bool) -> None:
    slices = _slices(path, parallel_workers())
    # fork: the workers inherit the imported modules, so starting them costs milliseconds, not an import.
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(len(slices), mp_context=context) as pool:
        futures = [pool.submit(_parse_slice, path, fmt, base_iri, start, end, acc.language_preference)
                   for start, end in slices]
        with tqdm(total=len(slices), desc=path.name, unit="slice", disable=None if progress else True,
                  leave=False) as bar:
            for _future in concurrent.futures.as_completed(futures):
                bar.update(1)
        results = [future.result() for future in futures]
    for (start, _end), result in zip(slices, results, strict=True):
        if isinstance(result, tuple):
            message, line, column = result
            if line is not None:
                line += _count_newlines(path, start)
            raise KsUserError(message, path=str(path), line=line, column=column)
    for result in results:
        acc.merge(result)  # type: ignore[arg-type]


def _count_newlines(path: Path, end: int) -> int:
    count = 0
    with open(path, "rb") as handle:
        while handle.tell() < end:
            chunk = handle.read(min(1 << 20, end - handle.tell()))
            if not chunk:
                break
            count += chunk.count(b"\n")
    return count


def _xml_error_position(path: Path) -> tuple[int | None, int | None]:
    """pyoxigraph's RDF/XML errors carry no position; expat finds where the XML itself breaks (if it does)."""
    parser = xml.parsers.expat.ParserCreate()
    try:
        with open_kg_bytes(path) as handle:
            parser.ParseFile(handle)
    except xml.parsers.expat.ExpatError as exc:
        return exc.lineno, exc.offset + 1
    except DECOMPRESSION_ERRORS:
        pass
    return None, None


def _syntax_error(exc: SyntaxError, path: Path, fmt: KgFormat) -> KsUserError:
    message = str(exc.msg if exc.msg else exc)
    if "LoadDocumentCallback" in message or "remote context" in message.lower():
        message = "the document needs a remote JSON-LD @context, which is never fetched; pass it as a local file " \
                  "with --jsonld-context URL=FILE"
    elif message.startswith("Parser error"):
        # pyoxigraph puts the position in the message; we carry it in path:line:column instead.
        message = message.split(": ", 1)[1] if ": " in message else message
    # The parser quotes raw input, which may hold control characters; keep the error one printable line.
    message = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in message)
    return KsUserError(f"invalid {describe(fmt)}: {message}", path=str(path), line=exc.lineno,
                       column=exc.offset)


def _consume_quads(acc: GraphAccumulator, quads: Iterator[ox.Quad], source: int, *, track_graphs: bool,
                   asserted_only: bool, path: Path) -> None:
    """The hot loop of ingest: flat, every lookup bound to a local, facts stored as integer term ids."""
    named_node = ox.NamedNode
    literal_type = ox.Literal
    default_graph = ox.DefaultGraph
    blank_node = ox.BlankNode
    bnode_prefix = f"_:{path.name}/"  # blank-node labels are scoped to their document
    class_expression_predicates = CLASS_EXPRESSION_PREDICATES
    equivalent_role = Role.EQUIVALENT_CLASS
    predicates = acc.predicates
    predicate_entry = acc.predicate
    ids = acc.term_ids
    get = ids.get
    f_subject, f_predicate, f_object, f_source = acc.f_subject, acc.f_predicate, acc.f_object, acc.f_source
    schema_statement = acc.add_schema_statement
    labels, hierarchy = acc.labels, acc.hierarchy
    label_role, type_role = Role.LABEL, Role.TYPE
    domain_classes: set[str] = set()  # rdf:type objects already known to be domain classes
    graph_sources: dict[str, int] = {}
    count = 0
    for quad in quads:
        count += 1
        subject = quad.subject
        if type(subject) is not named_node:
            # Blank-node subjects are OWL restrictions, lists and other machinery; only the pieces of an
            # intersection class expression are kept, to find told superclasses.
            if type(subject) is blank_node:
                p = quad.predicate.value
                if p in class_expression_predicates:
                    obj = quad.object
                    if type(obj) is named_node:
                        acc.class_expressions.append((bnode_prefix + subject.value, p, obj.value))
                    elif type(obj) is blank_node:
                        acc.class_expressions.append((bnode_prefix + subject.value, p, bnode_prefix + obj.value))
            continue
        src = source
        if track_graphs or asserted_only:
            graph = quad.graph_name
            if type(graph) is not default_graph:
                if asserted_only:
                    continue  # an N3 formula is quoted, not asserted
                g = graph.value
                src = graph_sources.get(g)
                if src is None:
                    src = graph_sources[g] = acc.add_source(f"{path.name}#{g}")
        p = quad.predicate.value
        try:
            role, pid = predicates[p]
        except KeyError:
            role, pid = predicate_entry(p)
        obj = quad.object
        if role is None:
            obj_type = type(obj)
            if obj_type is named_node:
                key = obj.value
            elif obj_type is literal_type:
                key = "\x00" + obj.value + "\x1f" + obj.datatype.value + "\x1f" + (obj.language or "")
            else:
                continue  # a blank-node object: structure, not a fact
            # `get` first: a plain dict method is faster than subscripting the dict subclass on every hit
            term = get(key)
            f_object.append(ids[key] if term is None else term)
            key = subject.value
            term = get(key)
            f_subject.append(ids[key] if term is None else term)
            f_predicate.append(pid)
            f_source.append(src)
            continue
        if role is Role.MACHINERY:
            continue
        obj_type = type(obj)
        if role is equivalent_role:
            if obj_type is blank_node:
                acc.class_expressions.append((subject.value, p, bnode_prefix + obj.value))
            continue
        if role is label_role:  # the commonest schema statements are handled inline
            if obj_type is literal_type:
                labels[subject.value].append((label_rank[p], obj.language or "", obj.value))
            continue
        if role is type_role and obj_type is named_node:
            o = obj.value
            if o in domain_classes:
                hierarchy.append((subject.value, p, o, type_role, src))
                continue
            schema_statement(role, subject.value, p, o, None, src)
            if o not in PROPERTY_CLASSES and o not in DOCUMENT_CLASSES and not is_machinery_class(o):
                domain_classes.add(o)
            continue
        if obj_type is named_node:
            schema_statement(role, subject.value, p, obj.value, None, src)
        elif obj_type is literal_type:
            schema_statement(role, subject.value, p, None, (obj.value, obj.language or ""), src)
    acc.statements_read += count


def _inline_jsonld_contexts(raw: BinaryIO, path: Path, contexts: dict[str, Path]) -> bytes:
    """Replace every remote @context reference by the user's local copy; refuse to go on without one."""
    try:
        data = raw.read()
    except DECOMPRESSION_ERRORS as exc:
        raise corrupt_compressed_data(path, exc) from None
    try:
        document = json.loads(data)
    except UnicodeDecodeError as exc:
        raise KsUserError(f"not valid UTF-8 text ({exc.reason} at byte {exc.start})", path=str(path)) from None
    except json.JSONDecodeError as exc:
        raise KsUserError(f"invalid JSON-LD: {exc.msg}", path=str(path), line=exc.lineno, column=exc.colno) from None
    remote = sorted(set(_remote_contexts(document)))
    if not remote:
        return data
    missing = [url for url in remote if url not in contexts]
    if missing:
        raise KsUserError(
            f"JSON-LD document refers to the remote @context {missing[0]!r}, which is never fetched; download it "
            f"and pass it with --jsonld-context {missing[0]}=FILE", path=str(path))
    loaded = {url: _load_context_file(contexts[url]) for url in remote}
    return json.dumps(_replace_contexts(document, loaded)).encode()


def _remote_contexts(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "@context":
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, str):
                        yield item
                    else:
                        yield from _remote_contexts(item)
            else:
                yield from _remote_contexts(value)
    elif isinstance(node, list):
        for item in node:
            yield from _remote_contexts(item)


def _replace_contexts(node: Any, loaded: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "@context":
                items = value if isinstance(value, list) else [value]
                replaced = [loaded[i] if isinstance(i, str) else _replace_contexts(i, loaded) for i in items]
                out[key] = replaced if isinstance(value, list) else replaced[0]
            else:
                out[key] = _replace_contexts(value, loaded)
        return out
    if isinstance(node, list):
        return [_replace_contexts(item, loaded) for item in node]
    return node


def _load_context_file(path: Path) -> Any:
    try:
        with open_kg_bytes(path) as handle:
            document = json.load(handle)
    except json.JSONDecodeError as exc:
        raise KsUserError(f"invalid JSON-LD context: {exc.msg}", path=str(path), line=exc.lineno,
                          column=exc.colno) from None
    if isinstance(document, dict) and "@context" in document:
        return document["@context"]
    return document


# -- JSON ------------------------------------------------------------------------------------------------------------

_RELATION_KEYS = ("relation", "predicate", "label", "type", "key")
RELATED_TO = "related_to"


def _read_json(acc: GraphAccumulator, path: Path) -> None:
    with open_kg_bytes(path) as handle:
        try:
            document = json.load(handle)
        except UnicodeDecodeError as exc:
            raise KsUserError(f"not valid UTF-8 text ({exc.reason} at byte {exc.start})", path=str(path)) from None
        except json.JSONDecodeError as exc:
            raise KsUserError(f"invalid JSON: {exc.msg}", path=str(path), line=exc.lineno,
                              column=exc.colno) from None
        except DECOMPRESSION_ERRORS as exc:
            raise corrupt_compressed_data(path, exc) from None
    source = acc.add_source(path.name)
    if isinstance(document, list):
        for i, record in enumerate(document):
            _add_triple_record(acc, record, f"{path}: triple #{i}", source)
        return
    if not isinstance(document, dict):
        raise KsUserError("JSON KG must be an object (node-link or nodes/triples) or an array of triples",
                          path=str(path))
    known = {"nodes", "links", "edges", "triples", "facts"}
    if not known & document.keys():
        raise KsUserError(
            "unrecognised JSON shape: expected node-link data ('nodes' and 'links'/'edges', as networkx writes it), "
            "a 'triples' list, or an array of {subject, relation, object}", path=str(path))
    nodes = document.get("nodes", [])
    if not isinstance(nodes, list):
        raise KsUserError("'nodes' must be a list", path=str(path))
    for i, record in enumerate(nodes):
        _add_node_record(acc, record, f"{path}: nodes[{i}]", source)
    links_key = "links" if "links" in document else "edges"
    triples_key = "triples" if "triples" in document else "facts"
    for key in (links_key, triples_key):
        if not isinstance(document.get(key, []), list):
            raise KsUserError(f"{key!r} must be a list", path=str(path))
    for i, record in enumerate(document.get(links_key, [])):
        _add_link_record(acc, record, f"{path}: {links_key}[{i}]", source)
    for i, record in enumerate(document.get(triples_key, [])):
        _add_triple_record(acc, record, f"{path}: {triples_key}[{i}]", source)


def _read_jsonl(acc: GraphAccumulator, path: Path) -> None:
    source = acc.add_source(path.name)
    with open_kg_bytes(path) as handle:
        for line_no, line in enumerate(io.TextIOWrapper(handle, encoding="utf-8-sig"), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                raise KsUserError(f"invalid JSON: {exc.msg}", path=str(path), line=line_no,
                                  column=exc.colno) from None
            _add_triple_record(acc, record, f"{path}:{line_no}", source)


def _node_id(value: Any, where: str, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise KsUserError(f"{where}: field {field!r} must be a string or an integer id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise KsUserError(f"{where}: field {field!r} is empty")
    return text


def _require(record: Any, where: str, *fields: str) -> None:
    if not isinstance(record, dict):
        raise KsUserError(f"{where}: expected an object, got {type(record).__name__}")
    for name in fields:
        if name not in record:
            raise KsUserError(f"{where}: missing field {name!r}")


def _add_node_record(acc: GraphAccumulator, record: Any, where: str, source: int) -> None:
    _require(record, where, "id")
    node = _node_id(record["id"], where, "id")
    level = record.get("level")
    if level is not None and level not in LEVELS:
        raise KsUserError(f"{where}: field 'level' is {level!r}; expected one of {', '.join(LEVELS)}")
    acc.add_explicit_node(node, level)
    acc.statements_read += 1
    label = record.get("label", record.get("name"))
    if isinstance(label, str) and label.strip():
        acc.add_schema_statement(Role.LABEL, node, RDFS_LABEL, None, (label.strip(), ""), source)
    for alias in _as_list(record.get("aliases")):
        if isinstance(alias, str) and alias.strip():
            acc.add_schema_statement(Role.ALIAS, node, SKOS_ALT_LABEL, None, (alias.strip(), ""), source)
    parents = _as_list(record.get("parents", record.get("parent")))
    for parent in parents:
        if parent is None:
            continue
        acc.add_schema_statement(Role.BROADER, node, SKOS_BROADER, _node_id(parent, where, "parent"), None, source)
    for node_type in _as_list(record.get("types", record.get("type"))):
        if isinstance(node_type, str) and node_type.strip():
            acc.add_schema_statement(Role.TYPE, node, RDF_TYPE, node_type.strip(), None, source)


def _add_link_record(acc: GraphAccumulator, record: Any, where: str, source: int) -> None:
    _require(record, where, "source", "target")
    relation = next((record[k] for k in _RELATION_KEYS if isinstance(record.get(k), str) and record[k].strip()),
                    RELATED_TO)
    subject = _node_id(record["source"], where, "source")
    obj = _node_id(record["target"], where, "target")
    acc.statements_read += 1
    acc.add_fact(subject, relation.strip(), obj, source)


def _add_triple_record(acc: GraphAccumulator, record: Any, where: str, source: int) -> None:
    _require(record, where, "subject", "object")
    relation = record.get("relation", record.get("predicate"))
    if not isinstance(relation, str) or not relation.strip():
        raise KsUserError(f"{where}: missing field 'relation' (or 'predicate')")
    relation = relation.strip()
    subject = _node_id(record["subject"], where, "subject")
    acc.statements_read += 1
    obj = record["object"]
    is_literal = record.get("object_type") == "literal" or not isinstance(obj, str)
    if is_literal:
        if isinstance(obj, bool):
            acc.add_literal_fact(subject, relation, "true" if obj else "false", XSD + "boolean", None, source)
        elif isinstance(obj, int):
            acc.add_literal_fact(subject, relation, str(obj), XSD + "integer", None, source)
        elif isinstance(obj, float):
            acc.add_literal_fact(subject, relation, repr(obj), XSD + "double", None, source)
        elif isinstance(obj, str):
            acc.add_literal_fact(subject, relation, obj, record.get("object_datatype") or XSD + "string", None,
                                 source)
        else:
            raise KsUserError(f"{where}: field 'object' must be a string id or a scalar literal")
    else:
        obj_id = _node_id(obj, where, "object")
        acc.add_fact(subject, relation, obj_id, source)
        label = record.get("object_label")
        if isinstance(label, str) and label.strip():
            acc.add_schema_statement(Role.LABEL, obj_id, RDFS_LABEL, None, (label.strip(), ""), source)
    label = record.get("subject_label")
    if isinstance(label, str) and label.strip():
        acc.add_schema_statement(Role.LABEL, subject, RDFS_LABEL, None, (label.strip(), ""), source)
    label = record.get("relation_label")
    if isinstance(label, str) and label.strip():
        acc.add_schema_statement(Role.LABEL, relation, RDFS_LABEL, None, (label.strip(), ""), source)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
