"""The W3C RDF syntax test suites shipped in the rdflib sdist, read from their manifests.

Shared by tests/test_w3c_syntax.py and bench/w3c_counts.py, so that the tests and the counts in the issue's closing
note come from the same list of cases and the same notion of "accepted".
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyoxigraph as ox
import rdflib

from knowledgesmith.builder.cli import main as ks_build_main
from knowledgesmith.builder.errors import KsUserError
from knowledgesmith.builder.formats import KgFormat, detect_format, read_head
from knowledgesmith.builder.graph import GraphAccumulator
from knowledgesmith.builder.readers import read_kg_file

# Where the suites sit inside the fetched kg-sources cache (see ../shared/kg-sources/fetch.sh).
W3C_DIR = Path("rdflib", "rdflib-7.6.0", "test", "data", "suites", "w3c")

RDFT = "http://www.w3.org/ns/rdftest#"
MF = "http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


class Expect(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    SKIP = "skip"


@dataclass(frozen=True)
class Suite:
    name: str  # folder under W3C_DIR
    format: KgFormat  # the syntax every test file of the suite is written in
    extension: str  # the extension of its test files


SUITES: tuple[Suite, ...] = (
    Suite("turtle", KgFormat.TURTLE, ".ttl"),
    Suite("ntriples", KgFormat.NTRIPLES, ".nt"),
    Suite("nquads", KgFormat.NQUADS, ".nq"),
    Suite("trig", KgFormat.TRIG, ".trig"),
    Suite("rdf-xml", KgFormat.RDFXML, ".rdf"),
)

# What each test type of the manifests asks of a parser.
#  - PositiveSyntax and Eval: the file is valid, so it must be accepted. (Eval tests also fix the triples the file
#    means; comparing those is the parser's own test suite's job, not ours: we only check acceptance.)
#  - NegativeSyntax: the file breaks the grammar, so it must be rejected.
#  - NegativeEval (4 in Turtle, 4 in TriG): the file matches the grammar, but an IRI in it, once its \u escapes are
#    decoded, is not a valid IRI (it holds a space, '<', '>' or '{'). That is an evaluation error, not a syntax
#    error: the suites leave open whether a parser reports it while parsing or later, so these tests say nothing
#    about syntax acceptance and are skipped here (bench/w3c_counts.py still reports what the builder does with them:
#    it rejects all 8, as pyoxigraph checks IRIs while parsing).
_EXPECTATIONS = {
    "TestTurtlePositiveSyntax": Expect.ACCEPT, "TestTurtleEval": Expect.ACCEPT,
    "TestTurtleNegativeSyntax": Expect.REJECT, "TestTurtleNegativeEval": Expect.SKIP,
    "TestNTriplesPositiveSyntax": Expect.ACCEPT, "TestNTriplesNegativeSyntax": Expect.REJECT,
    "TestNQuadsPositiveSyntax": Expect.ACCEPT, "TestNQuadsNegativeSyntax": Expect.REJECT,
    "TestTrigPositiveSyntax": Expect.ACCEPT, "TestTrigEval": Expect.ACCEPT,
    "TestTrigNegativeSyntax": Expect.REJECT, "TestTrigNegativeEval": Expect.SKIP,
    "TestXMLEval": Expect.ACCEPT, "TestXMLNegativeSyntax": Expect.REJECT,
}


@dataclass(frozen=True)
class W3cCase:
    suite: Suite
    name: str  # mf:name
    test_type: str  # local name in the rdft namespace, e.g. TestTurtleNegativeSyntax
    expect: Expect
    action: Path  # the file under test

    @property
    def id(self) -> str:
        return f"{self.suite.name}/{self.name}"


_FORMAT_BY_EXTENSION = {suite.extension: suite.format for suite in SUITES}


def suites_root(kg_sources: Path) -> Path:
    return kg_sources / W3C_DIR


def read_manifest(root: Path, suite: Suite) -> list[W3cCase]:
    """Every test of one suite's manifest.ttl (whose type is in the rdft namespace), in the order it defines them."""
    manifest = root / suite.name / "manifest.ttl"
    base = manifest.resolve().as_uri()
    types: dict[str, str] = {}
    names: dict[str, str] = {}
    actions: dict[str, str] = {}
    with open(manifest, "rb") as handle:
        for triple in ox.parse(handle, format=ox.RdfFormat.TURTLE, base_iri=base):
            subject, predicate, obj = triple.subject.value, triple.predicate.value, triple.object.value
            if predicate == RDF_TYPE and obj.startswith(RDFT):
                types[subject] = obj.removeprefix(RDFT)
            elif predicate == MF + "name":
                names[subject] = obj
            elif predicate == MF + "action":
                actions[subject] = obj
    cases = []
    for test, test_type in types.items():
        if test_type not in _EXPECTATIONS:
            raise ValueError(f"{manifest}: test {test} has a type this module does not know: rdft:{test_type}")
        cases.append(W3cCase(suite, names[test], test_type, _EXPECTATIONS[test_type], _file_of(actions[test])))
    return cases


def _file_of(iri: str) -> Path:
    parsed = urlparse(iri)
    if parsed.scheme != "file":
        raise ValueError(f"test action is not a local file: {iri}")
    return Path(unquote(parsed.path))


def read_all(root: Path) -> list[W3cCase]:
    return [case for suite in SUITES for case in read_manifest(root, suite)]


def parse_with_builder(path: Path) -> KgFormat:
    """Read one file the way `ingest()` does (format detection, then the strict reader); raises KsUserError.

    This is acceptance at the parse stage: unlike a full build, it does not ask the file to hold usable facts, which
    many valid test files (only prefixes, only blank nodes, nothing at all) do not.
    """
    head = read_head(path)
    if not head.strip():
        # A file with nothing in it is valid in every text syntax, and the builder deliberately refuses it before
        # parsing ("file is empty"), as it refuses any file without statements. That is a refusal of the content,
        # not of the syntax, so the empty test files are held to the parser alone, in the suite's own syntax.
        fmt = _FORMAT_BY_EXTENSION[path.suffix]
    else:
        fmt = detect_format(path, head)
    read_kg_file(GraphAccumulator(["en"]), path, fmt, jsonld_contexts={}, progress=False)
    return fmt


def builder_accepts(path: Path) -> bool:
    try:
        parse_with_builder(path)
    except KsUserError:
        return False
    return True


def rdflib_accepts(path: Path, fmt: KgFormat) -> bool:
    """Whether rdflib alone (Graph().parse, Dataset().parse for the quad syntaxes) reads the file without an error."""
    rdflib_format = {KgFormat.TURTLE: "turtle", KgFormat.NTRIPLES: "nt", KgFormat.NQUADS: "nquads",
                     KgFormat.TRIG: "trig", KgFormat.RDFXML: "xml"}[fmt]
    logging.getLogger("rdflib").setLevel(logging.CRITICAL)  # it logs every error it also raises
    graph = rdflib.Dataset() if fmt in (KgFormat.NQUADS, KgFormat.TRIG) else rdflib.Graph()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # rdflib 7.6's own parsers use its deprecated API
            graph.parse(str(path), format=rdflib_format)
    except Exception:  # noqa: BLE001 - any exception is a rejection, whatever its type
        return False
    return True


def cli_rejects(path: Path, out: Path) -> bool:
    """Whether `ks-build --kg PATH --out OUT` exits with 2 (a user error) and leaves OUT unwritten."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        code = ks_build_main(["--kg", str(path), "--out", str(out)])
    return code == KsUserError.exit_code and not out.exists()


@dataclass
class SuiteTally:
    suite: Suite
    positive_total: int = 0
    positive_accepted: int = 0  # by the builder's parse stage
    negative_total: int = 0
    negative_rejected: int = 0  # by the CLI, exit code 2
    negative_eval_total: int = 0
    negative_eval_rejected: int = 0  # informational: the builder's parse stage
    rdflib_positive_rejected: int = 0  # rdflib alone, Graph().parse / Dataset().parse
    rdflib_negative_accepted: int = 0
    wrong: list[str] = field(default_factory=list)  # ids of the cases the builder gets wrong


def tally(root: Path, scratch: Path, *, with_rdflib: bool = True) -> list[SuiteTally]:
    """Run every case of every suite; `scratch` is an empty folder for the CLI's --out."""
    tallies = {suite.name: SuiteTally(suite) for suite in SUITES}
    for case in read_all(root):
        t = tallies[case.suite.name]
        if case.expect is Expect.ACCEPT:
            t.positive_total += 1
            if builder_accepts(case.action):
                t.positive_accepted += 1
            else:
                t.wrong.append(case.id)
            if with_rdflib and not rdflib_accepts(case.action, case.suite.format):
                t.rdflib_positive_rejected += 1
        elif case.expect is Expect.REJECT:
            t.negative_total += 1
            if cli_rejects(case.action, scratch / "out"):
                t.negative_rejected += 1
            else:
                t.wrong.append(case.id)
            if with_rdflib and rdflib_accepts(case.action, case.suite.format):
                t.rdflib_negative_accepted += 1
        else:
            t.negative_eval_total += 1
            t.negative_eval_rejected += not builder_accepts(case.action)
    return list(tallies.values())


def format_tally(tallies: list[SuiteTally]) -> str:
    header = (f"{'suite':<9} {'positive accepted':>17} {'negative rejected (exit 2)':>26} "
              f"{'rdflib accepts negative':>23} {'rdflib rejects positive':>23} {'NegativeEval rejected':>21}")
    lines = [header, "-" * len(header)]
    for t in tallies:
        neg_eval = f"{t.negative_eval_rejected}/{t.negative_eval_total}" if t.negative_eval_total else "-"
        lines.append(f"{t.suite.name:<9} {f'{t.positive_accepted}/{t.positive_total}':>17} "
                     f"{f'{t.negative_rejected}/{t.negative_total}':>26} "
                     f"{f'{t.rdflib_negative_accepted}/{t.negative_total}':>23} "
                     f"{f'{t.rdflib_positive_rejected}/{t.positive_total}':>23} {neg_eval:>21}")
    for t in tallies:
        for case_id in t.wrong:
            lines.append(f"WRONG: {case_id}")
    return "\n".join(lines)
