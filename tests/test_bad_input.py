"""Bad input never crashes `ks-build`: exit code 2, one `ks-build: error:` line naming the problem, nothing written.

Each case writes a small real input into tmp_path. A failing build leaves --out as it was (absent, or the previous
successful build byte for byte); a successful build replaces --out and leaves no temporary folder beside it.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

GOOD_TURTLE = """\
@prefix ex:   <http://example.org/kg/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:Paris a ex:City ; rdfs:label "Paris"@en ; ex:capitalOf ex:France .
ex:City rdfs:subClassOf ex:Place .
"""

# The 8-byte PNG signature and the start of an IHDR chunk.
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"

OWL_XML = """\
<?xml version="1.0"?>
<Ontology xmlns="http://www.w3.org/2002/07/owl#" ontologyIRI="http://example.org/pizza">
    <Declaration><Class IRI="#Pizza"/></Declaration>
    <SubClassOf><Class IRI="#Margherita"/><Class IRI="#Pizza"/></SubClassOf>
</Ontology>
"""

OWL_FUNCTIONAL = """\
Prefix(:=<http://example.org/pizza#>)
Ontology(<http://example.org/pizza>
    Declaration(Class(:Pizza))
    SubClassOf(:Margherita :Pizza)
)
"""

# Labels, comments and OWL axioms only: machinery, not facts.
NO_FACTS_TURTLE = """\
@prefix ex:   <http://example.org/kg/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl:  <http://www.w3.org/2002/07/owl#> .
ex:Pizza a owl:Class ; rdfs:label "pizza"@en ; rdfs:comment "a flat bread"@en .
ex:hasTopping a owl:ObjectProperty ; rdfs:domain ex:Pizza ; owl:inverseOf ex:isToppingOf .
ex:Margherita rdfs:label "Margherita"@en ;
    rdfs:subClassOf [ a owl:Restriction ; owl:onProperty ex:hasTopping ; owl:someValuesFrom ex:Tomato ] .
"""

SCHEMA_ORG_JSONLD = {
    "@context": "https://schema.org/",
    "@id": "http://example.org/kg/Paris",
    "@type": "City",
    "name": "Paris",
    "containedInPlace": {"@id": "http://example.org/kg/France"},
}

# A local copy of the small part of schema.org's context that the document above uses.
SCHEMA_ORG_CONTEXT = {
    "@context": {
        "@vocab": "https://schema.org/",
        "containedInPlace": {"@id": "https://schema.org/containedInPlace", "@type": "@id"},
    }
}


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _zip_of_turtle(tmp_path: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("kg.ttl", GOOD_TURTLE)
    return _write(tmp_path / "kg.zip", buffer.getvalue())


def _truncated_gzip(tmp_path: Path) -> Path:
    packed = gzip.compress((GOOD_TURTLE * 50).encode())
    return _write(tmp_path / "kg.ttl.gz", packed[: len(packed) // 2])


# Each case: a function of tmp_path returning the CLI arguments (besides --out), and a regex the single error line
# must match after "ks-build: error: ". `{tmp}` in the regex stands for tmp_path.
Case = tuple[Callable[[Path], list[str | Path]], str]

CASES: dict[str, Case] = {
    "missing file": (lambda t: ["--kg", t / "nope.ttl"], r"{tmp}/nope\.ttl: no such file"),
    "directory": (lambda t: ["--kg", t], r"{tmp}: is a directory, not a KG file"),
    "empty file": (lambda t: ["--kg", _write(t / "empty.ttl", b"")], r"{tmp}/empty\.ttl: file is empty"),
    "empty file with --format": (lambda t: ["--kg", _write(t / "empty.data", b"\n"), "--format", "nt"],
                                 r"{tmp}/empty\.data: file is empty"),
    "second of several files is bad": (
        lambda t: ["--kg", _write(t / "good.ttl", GOOD_TURTLE), "--kg", _write(t / "bad.nt", "<a> <b> .\n")],
        r"{tmp}/bad\.nt:1:\d+: invalid N-Triples: .+"),
    "whitespace only": (lambda t: ["--kg", _write(t / "blank.nt", " \n\t\r\n  \n")],
                        r"{tmp}/blank\.nt: file is empty"),
    "binary file": (lambda t: ["--kg", _write(t / "picture.png", PNG_BYTES)],
                    r"{tmp}/picture\.png: binary data, not a knowledge-graph text format .*"),
    "binary file named as turtle": (lambda t: ["--kg", _write(t / "picture.ttl", PNG_BYTES)],
                                    r"{tmp}/picture\.ttl: binary data, not a knowledge-graph text format .*"),
    "latin-1 text": (
        lambda t: ["--kg", _write(t / "latin1.ttl", GOOD_TURTLE.encode() + 'ex:Café ex:p ex:b .\n'.encode("latin-1"))],
        r"{tmp}/latin1\.ttl:5:7: not valid UTF-8 text \(byte 0xe9\); KG files are read as UTF-8: .*iconv.*"),
    "invalid utf-8 after the sniffed head": (
        lambda t: ["--kg", _write(t / "late.ttl", GOOD_TURTLE.encode() + b"ex:a ex:p ex:b .\n" * 5000
                                  + 'ex:Café ex:p ex:b .\n'.encode("latin-1"))],
        r"{tmp}/late\.ttl:5005:\d+: invalid Turtle: .*UTF-8.*"),
    "truncated gzip": (lambda t: ["--kg", _truncated_gzip(t)],
                       r"{tmp}/kg\.ttl\.gz: compressed data is truncated or corrupt .*"),
    "zip archive": (lambda t: ["--kg", _zip_of_turtle(t)],
                    r"{tmp}/kg\.zip: is a zip archive; unzip it and pass the KG file inside"),
    "malformed turtle": (
        lambda t: ["--kg", _write(t / "bad.ttl", GOOD_TURTLE + "ex:Lyon ex:locatedIn ex:France ;; .\n"
                                                               "ex:Nice ex:locatedIn .\n")],
        r"{tmp}/bad\.ttl:6:\d+: invalid Turtle: .+"),
    "malformed json": (lambda t: ["--kg", _write(t / "bad.json", '{"nodes": [\n  {"id": "a"},\n  {"id": }\n]}\n')],
                       r"{tmp}/bad\.json:3:\d+: invalid JSON: Expecting value"),
    "json of an unknown shape": (lambda t: ["--kg", _write(t / "shape.json", '{"people": [{"name": "Ada"}]}')],
                                 r"{tmp}/shape\.json: unrecognised JSON shape: .*'nodes'.*"),
    "json scalar": (lambda t: ["--kg", _write(t / "scalar.json", '[1, 2, 3]')],
                    r"{tmp}/scalar\.json: triple #0: expected an object, got int"),
    "json node with an invalid level": (
        lambda t: ["--kg", _write(t / "levels.json", json.dumps(
            {"nodes": [{"id": "a", "level": "root"}, {"id": "b", "parent": "a", "level": "top"}]}))],
        r"{tmp}/levels\.json: nodes\[1\]: field 'level' is 'top'; expected one of root, intermediate, leaf"),
    "jsonl with a bad line": (
        lambda t: ["--kg", _write(t / "facts.jsonl", '{"subject": "a", "relation": "r", "object": "b"}\n'
                                                     '{"subject": "b", "relation": "r", "object": "c"}\n'
                                                     '{"subject": "c", "relation": "r", "object": \n')],
        r"{tmp}/facts\.jsonl:3:\d+: invalid JSON: .+"),
    "jsonl record without a relation": (
        lambda t: ["--kg", _write(t / "facts.jsonl", '{"subject": "a", "relation": "r", "object": "b"}\n'
                                                     '{"subject": "b", "object": "c"}\n')],
        r"{tmp}/facts\.jsonl:2: missing field 'relation' \(or 'predicate'\)"),
    "unknown format name": (lambda t: ["--kg", _write(t / "kg.ttl", GOOD_TURTLE), "--format", "owlxml"],
                            r"unknown format 'owlxml'; known formats: .*turtle.*"),
    "owl/xml": (lambda t: ["--kg", _write(t / "pizza.owl", OWL_XML)],
                r"{tmp}/pizza\.owl: OWL/XML syntax is not supported; convert it .*robot convert.*"),
    "owl functional syntax": (lambda t: ["--kg", _write(t / "pizza.ofn", OWL_FUNCTIONAL)],
                              r"{tmp}/pizza\.ofn: OWL functional syntax is not supported; convert it .*"),
    "no usable facts": (lambda t: ["--kg", _write(t / "axioms.ttl", NO_FACTS_TURTLE)],
                        r"{tmp}/axioms\.ttl: the graph has no usable facts \(\d+ statements read, .*"),
    "remote json-ld context": (
        lambda t: ["--kg", _write(t / "paris.jsonld", json.dumps(SCHEMA_ORG_JSONLD))],
        r"{tmp}/paris\.jsonld: JSON-LD document refers to the remote @context 'https://schema\.org/', which is never "
        r"fetched; .*--jsonld-context https://schema\.org/=FILE"),
    "json-ld context file missing": (
        lambda t: ["--kg", _write(t / "paris.jsonld", json.dumps(SCHEMA_ORG_JSONLD)),
                   "--jsonld-context", f"https://schema.org/={t / 'absent.json'}"],
        r"{tmp}/absent\.json: no such JSON-LD context file"),
}


def _error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ks-build: error: "), err
    assert "Traceback" not in err
    return lines[0].removeprefix("ks-build: error: ")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_error_line_and_writes_nothing(
        run_ks_build: Callable[..., Any], tmp_path: Path, case: str) -> None:
    make_args, expected = CASES[case]
    args = make_args(tmp_path)
    out = tmp_path / "new" / "out"
    result = run_ks_build(*args, "--out", out)
    assert result.code == 2, result.err
    message = _error_line(result.err)
    assert re.fullmatch(expected.replace("{tmp}", re.escape(str(tmp_path))), message), message
    assert result.out == ""
    assert not out.parent.exists()  # not even the parent folder of --out is created


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_failing_build_leaves_the_previous_output_byte_identical(
        run_ks_build: Callable[..., Any], tmp_path: Path, case: str) -> None:
    out = tmp_path / "out"
    good = _write(tmp_path / "good.ttl", GOOD_TURTLE)
    assert run_ks_build("--kg", good, "--out", out, "--quiet").code == 0
    before = _snapshot(out)
    tables = {"nodes.parquet", "triples.parquet", "relations.parquet", "requests.parquet", "manifest.json"}
    assert tables <= set(before) and all(name.startswith("mcq/") for name in set(before) - tables)
    make_args, _ = CASES[case]
    result = run_ks_build(*make_args(tmp_path), "--out", out)
    assert result.code == 2
    _error_line(result.err)
    assert _snapshot(out) == before
    assert _leftovers(tmp_path, "out") == []


def test_malformed_turtle_names_file_line_and_column(run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.ttl", '@prefix ex: <http://example.org/> .\n'
                                       'ex:a ex:p ex:b .\n'
                                       'ex:c ex:p "unterminated .\n')
    result = run_ks_build("--kg", bad, "--out", tmp_path / "out")
    assert result.code == 2
    message = _error_line(result.err)
    # line 3, column 11: where the unterminated literal starts
    assert message.startswith(f"{bad}:3:11: invalid Turtle: ")


def test_malformed_json_names_line_and_column(run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    bad = _write(tmp_path / "kg.json", '{\n  "nodes": [\n    {"id": "a",}\n  ]\n}\n')
    result = run_ks_build("--kg", bad, "--out", tmp_path / "out")
    assert result.code == 2
    assert _error_line(result.err) == (
        f"{bad}:3:16: invalid JSON: Expecting property name enclosed in double quotes")


def test_jsonl_error_names_the_line_and_the_column_in_it(run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    bad = _write(tmp_path / "facts.jsonl", '{"subject": "a", "relation": "r", "object": "b"}\n'
                                           '{"subject": "b", "relation": "r", "object": }\n')
    result = run_ks_build("--kg", bad, "--out", tmp_path / "out")
    assert result.code == 2
    assert _error_line(result.err) == f"{bad}:2:45: invalid JSON: Expecting value"


def test_jsonl_error_at_the_end_of_a_line_points_at_the_end_of_that_line(
        run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    bad = _write(tmp_path / "facts.jsonl", '{"subject": "a", "relation": "r", "object": "b"}\n'
                                           '{"subject": "b", "relation": "r", "object": \n')
    result = run_ks_build("--kg", bad, "--out", tmp_path / "out")
    assert result.code == 2
    assert _error_line(result.err) == f"{bad}:2:45: invalid JSON: Expecting value"


def test_a_json_node_with_a_bad_parent_names_the_file_and_the_record(
        run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    bad = _write(tmp_path / "kg.json", json.dumps({"nodes": [{"id": "a"}, {"id": "b", "parent": {"id": "a"}}]}))
    result = run_ks_build("--kg", bad, "--out", tmp_path / "out")
    assert result.code == 2
    assert _error_line(result.err) == (
        f"{bad}: nodes[1]: field 'parent' must be a string or an integer id, got dict")


def test_json_links_that_are_not_a_list_are_named_as_such(run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    bad = _write(tmp_path / "kg.json", json.dumps({"nodes": [{"id": "a"}], "links": {"source": "a", "target": "b"}}))
    result = run_ks_build("--kg", bad, "--out", tmp_path / "out")
    assert result.code == 2
    assert _error_line(result.err) == f"{bad}: 'links' must be a list"


def test_remote_json_ld_context_builds_from_a_local_copy(run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    document = _write(tmp_path / "paris.jsonld", json.dumps(SCHEMA_ORG_JSONLD))
    context = _write(tmp_path / "local.json", json.dumps(SCHEMA_ORG_CONTEXT))
    out = tmp_path / "out"
    result = run_ks_build("--kg", document, "--jsonld-context", f"https://schema.org/={context}", "--out", out,
                          "--quiet")
    assert result.code == 0, result.err
    triples = pq.read_table(out / "triples.parquet").to_pylist()
    assert {(t["subject_id"], t["relation_id"], t["object_id"]) for t in triples} == {
        ("http://example.org/kg/Paris", "https://schema.org/containedInPlace", "http://example.org/kg/France"),
        ("http://example.org/kg/Paris", "http://www.w3.org/1999/02/22-rdf-syntax-ns#type", "https://schema.org/City"),
    }
    nodes = {n["node_id"]: n["label"] for n in pq.read_table(out / "nodes.parquet").to_pylist()}
    assert nodes["http://example.org/kg/Paris"] == "Paris"


def test_a_successful_build_replaces_the_previous_output(run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("from an older build")
    (out / "nested").mkdir()
    (out / "nested" / "old.parquet").write_bytes(b"old")
    good = _write(tmp_path / "good.ttl", GOOD_TURTLE)
    result = run_ks_build("--kg", good, "--out", out, "--quiet")
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "mcq", "nodes.parquet", "relations.parquet",
                                                     "requests.parquet", "triples.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.ttl", "out"]  # no .out.tmp-* or .out.old-*
    # and again over its own output
    assert run_ks_build("--kg", good, "--out", out, "--quiet").code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.ttl", "out"]
