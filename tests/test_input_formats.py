"""Input handling of `ks-build`: every supported syntax, detection by content, our JSON shapes, merging and labels.

Each test writes a small real KG into tmp_path, runs the CLI in-process and reads the parquet outputs back.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import pyarrow.parquet as pq
import pyoxigraph as ox
import pytest
import rdflib

from knowledgesmith.builder.hierarchy import INTERMEDIATE, LEAF, ROOT
from knowledgesmith.builder.labels import name_from_iri

EX = "http://example.org/kg/"
GRAPH = "http://example.org/graph/g1"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
SUBCLASS_OF = "http://www.w3.org/2000/01/rdf-schema#subClassOf"
XSD = "http://www.w3.org/2001/XMLSchema#"

# One small KG: three classes (rdfs:subClassOf), three instances (rdf:type), labels in English and French, an alias,
# an owl:inverseOf pair and literal facts (typed and language-tagged).
KG_TURTLE = """\
@prefix ex:   <http://example.org/kg/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl:  <http://www.w3.org/2002/07/owl#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix xsd:  <http://www.w3.org/2001/XMLSchema#> .

ex:capital owl:inverseOf ex:capitalOf .

ex:Place   a owl:Class ; rdfs:label "place"@en , "lieu"@fr .
ex:City    a owl:Class ; rdfs:subClassOf ex:Place ; rdfs:label "city"@en , "ville"@fr .
ex:Country a owl:Class ; rdfs:subClassOf ex:Place ; rdfs:label "country"@en , "pays"@fr .

ex:Paris  a ex:City ; rdfs:label "Paris"@en ; skos:altLabel "City of Light"@en ;
          ex:capitalOf ex:France ; ex:population "2102650"^^xsd:integer ; ex:motto "Fluctuat nec mergitur"@la .
ex:France a ex:Country ; rdfs:label "France"@en , "la France"@fr ; ex:capital ex:Paris .
ex:Lyon   a ex:City ; rdfs:label "Lyon"@en ; ex:locatedIn ex:France .
"""

Row = dict[str, Any]


def node(name: str, label: str, level: str, depth: int | None, parents: list[str], branch: str | None,
         types: list[str], aliases: list[str] | None = None) -> Row:
    """An expected row of nodes.parquet for the KG above (ids relative to `EX`)."""
    return {"node_id": EX + name, "label": label, "aliases": aliases or [], "level": level, "depth": depth,
            "parent_ids": [EX + p for p in parents], "branch_id": EX + branch if branch else None,
            "types": [EX + t for t in types], "domain": "kg"}


EXPECTED_NODES: list[Row] = [
    node("City", "city", INTERMEDIATE, 1, ["Place"], "City", []),
    node("Country", "country", INTERMEDIATE, 1, ["Place"], "Country", []),
    node("France", "France", LEAF, 2, ["Country"], "Country", ["Country"]),
    node("Lyon", "Lyon", LEAF, 2, ["City"], "City", ["City"]),
    node("Paris", "Paris", LEAF, 2, ["City"], "City", ["City"], aliases=["City of Light"]),
    node("Place", "place", ROOT, 0, [], "Place", []),
]

# (subject, relation, object, object_is_literal, datatype, lang, subject_level, object_level, branch, inverse)
EXPECTED_FACTS: list[tuple[Any, ...]] = [
    (EX + "City", SUBCLASS_OF, EX + "Place", False, None, None, INTERMEDIATE, ROOT, EX + "City", None),
    (EX + "Country", SUBCLASS_OF, EX + "Place", False, None, None, INTERMEDIATE, ROOT, EX + "Country", None),
    (EX + "France", EX + "capital", EX + "Paris", False, None, None, LEAF, LEAF, EX + "Country", EX + "capitalOf"),
    (EX + "France", RDF_TYPE, EX + "Country", False, None, None, LEAF, INTERMEDIATE, EX + "Country", None),
    (EX + "Lyon", EX + "locatedIn", EX + "France", False, None, None, LEAF, LEAF, EX + "City", None),
    (EX + "Lyon", RDF_TYPE, EX + "City", False, None, None, LEAF, INTERMEDIATE, EX + "City", None),
    (EX + "Paris", EX + "capitalOf", EX + "France", False, None, None, LEAF, LEAF, EX + "City", EX + "capital"),
    (EX + "Paris", EX + "motto", "Fluctuat nec mergitur", True, "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString",
     "la", LEAF, None, EX + "City", None),
    (EX + "Paris", EX + "population", "2102650", True, XSD + "integer", None, LEAF, None, EX + "City", None),
    (EX + "Paris", RDF_TYPE, EX + "City", False, None, None, LEAF, INTERMEDIATE, EX + "City", None),
]
FACT_COLUMNS = ("subject_id", "relation_id", "object_id", "object_is_literal", "object_datatype", "object_lang",
                "subject_level", "object_level", "branch_id", "inverse_relation_id")


# -- helpers ---------------------------------------------------------------------------------------------------------

class Build:
    """The outputs of one successful build."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.nodes: list[Row] = pq.read_table(out / "nodes.parquet").to_pylist()
        self.triples: list[Row] = pq.read_table(out / "triples.parquet").to_pylist()
        self.relations: list[Row] = pq.read_table(out / "relations.parquet").to_pylist()
        self.manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text())

    @property
    def facts(self) -> list[tuple[Any, ...]]:
        return [tuple(t[c] for c in FACT_COLUMNS) for t in self.triples]

    def triples_without_source(self) -> list[Row]:
        return [{k: v for k, v in t.items() if k != "source"} for t in self.triples]

    def node(self, node_id: str) -> Row:
        return next(n for n in self.nodes if n["node_id"] == node_id)

    @property
    def formats(self) -> list[str]:
        return [i["format"] for i in self.manifest["inputs"]]


BuildFn = Callable[..., Build]


@pytest.fixture
def build(run_ks_build: Callable[..., Any], tmp_path: Path) -> BuildFn:
    """`build(file, ..., *extra_args)`: run ks-build on the files (domain "kg") and return its outputs."""
    counter = iter(range(1000))

    def run(*files: Path, args: tuple[str, ...] = ()) -> Build:
        out = tmp_path / f"out{next(counter)}"
        cli_args: list[str | Path] = []
        for f in files:
            cli_args += ["--kg", f]
        result = run_ks_build(*cli_args, "--out", out, "--domain", "kg", "--quiet", *args)
        assert result.code == 0, result.err
        assert result.err == ""
        return Build(out)

    return run


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def rdflib_graph() -> rdflib.Graph:
    graph = rdflib.Graph()
    graph.parse(data=KG_TURTLE, format="turtle")
    return graph


def to_ntriples() -> str:
    return rdflib_graph().serialize(format="nt")


def to_nquads() -> bytes:
    """N-Quads with every statement in the named graph GRAPH (serialized by pyoxigraph)."""
    triples = ox.parse(KG_TURTLE, format=ox.RdfFormat.TURTLE)
    quads = [ox.Quad(q.subject, q.predicate, q.object, ox.NamedNode(GRAPH)) for q in triples]
    return ox.serialize(quads, format=ox.RdfFormat.N_QUADS)


def to_trig() -> bytes:
    triples = ox.parse(KG_TURTLE, format=ox.RdfFormat.TURTLE)
    quads = [ox.Quad(q.subject, q.predicate, q.object, ox.NamedNode(GRAPH)) for q in triples]
    return ox.serialize(quads, format=ox.RdfFormat.TRIG, prefixes={"ex": EX})


# Every syntax, as (file name, content producer, format recorded in the manifest, source of the facts).
SYNTAXES: dict[str, tuple[str, Callable[[], str | bytes], str, str]] = {
    "turtle": ("kg.ttl", lambda: KG_TURTLE, "turtle", "kg.ttl"),
    "ntriples": ("kg.nt", to_ntriples, "ntriples", "kg.nt"),
    "nquads": ("kg.nq", to_nquads, "nquads", f"kg.nq#{GRAPH}"),
    "trig": ("kg.trig", to_trig, "trig", f"kg.trig#{GRAPH}"),
    "rdfxml": ("kg.rdf", lambda: rdflib_graph().serialize(format="xml"), "rdfxml", "kg.rdf"),
    "n3": ("kg.n3", lambda: rdflib_graph().serialize(format="n3"), "n3", "kg.n3"),
    "jsonld": ("kg.jsonld", lambda: rdflib_graph().serialize(format="json-ld"), "jsonld", "kg.jsonld"),
}


# -- one graph, every syntax -----------------------------------------------------------------------------------------

def test_turtle_builds_the_expected_nodes_and_facts(build: BuildFn, tmp_path: Path) -> None:
    result = build(write(tmp_path / "kg.ttl", KG_TURTLE))
    assert result.nodes == EXPECTED_NODES
    assert result.facts == EXPECTED_FACTS
    assert {t["source"] for t in result.triples} == {"kg.ttl"}
    assert {t["domain"] for t in result.triples} == {"kg"}
    assert result.formats == ["turtle"]


@pytest.mark.parametrize("syntax", sorted(SYNTAXES))
def test_every_syntax_builds_the_same_graph(build: BuildFn, tmp_path: Path, syntax: str) -> None:
    name, produce, recorded_format, source = SYNTAXES[syntax]
    reference = build(write(tmp_path / "reference.ttl", KG_TURTLE))
    result = build(write(tmp_path / name, produce()))
    assert result.formats == [recorded_format]
    assert result.nodes == reference.nodes
    assert result.triples_without_source() == reference.triples_without_source()
    assert result.relations == reference.relations
    assert {t["source"] for t in result.triples} == {source}


def test_named_graphs_of_a_dataset_become_the_source_of_their_facts(build: BuildFn, tmp_path: Path) -> None:
    quads = (f"<{EX}a> <{EX}knows> <{EX}b> <{EX}g1> .\n"
             f"<{EX}b> <{EX}knows> <{EX}c> .\n"
             f"<{EX}c> <{EX}knows> <{EX}a> <{EX}g2> .\n")
    result = build(write(tmp_path / "data.nq", quads))
    assert {(t["subject_id"], t["source"]) for t in result.triples} == {
        (EX + "a", f"data.nq#{EX}g1"), (EX + "b", "data.nq"), (EX + "c", f"data.nq#{EX}g2")}


# -- detection by content --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "syntax", "recorded_format"), [
    ("pizza.owl", "rdfxml", "rdfxml"),
    ("kg.ontology", "turtle", "turtle"),
    ("kg.json-ld", "jsonld", "jsonld"),
    ("kg.json", "jsonld", "jsonld"),
    ("kg.xml", "rdfxml", "rdfxml"),
    ("kg.data", "trig", "trig"),
    ("kg.txt", "nquads", "nquads"),
    ("kg", "turtle", "turtle"),
])
def test_syntax_is_detected_from_the_content_whatever_the_extension(
        build: BuildFn, tmp_path: Path, name: str, syntax: str, recorded_format: str) -> None:
    reference = build(write(tmp_path / "reference.ttl", KG_TURTLE))
    result = build(write(tmp_path / name, SYNTAXES[syntax][1]()))
    assert result.formats == [recorded_format]
    assert result.nodes == reference.nodes
    assert result.triples_without_source() == reference.triples_without_source()


def test_ntriples_in_a_txt_file_is_detected_as_ntriples(build: BuildFn, tmp_path: Path) -> None:
    reference = build(write(tmp_path / "reference.ttl", KG_TURTLE))
    result = build(write(tmp_path / "kg.txt", to_ntriples()))
    assert result.formats == ["ntriples"]
    assert result.nodes == reference.nodes
    assert result.triples_without_source() == reference.triples_without_source()


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("syntax", ["turtle", "ntriples", "rdfxml", "jsonld"])
def test_a_utf8_byte_order_mark_and_crlf_line_ends_are_accepted(build: BuildFn, tmp_path: Path, syntax: str) -> None:
    name, produce, recorded_format, _ = SYNTAXES[syntax]
    data = produce()
    text = data.decode() if isinstance(data, bytes) else data
    reference = build(write(tmp_path / name, text))
    windows = BOM + text.replace("\n", "\r\n").encode()
    for result in (build(write(tmp_path / f"windows-{name}", windows)),
                   build(write(tmp_path / f"windows-{name}.gz", gzip.compress(windows)))):
        assert result.formats == [recorded_format]
        assert result.nodes == reference.nodes
        assert result.triples_without_source() == reference.triples_without_source()


def test_json_shapes_with_a_byte_order_mark_are_accepted(build: BuildFn, tmp_path: Path) -> None:
    document = json.dumps([{"subject": "a", "relation": "r", "object": "b"}])
    lines = json.dumps({"subject": "a", "relation": "r", "object": "b"}) + "\r\n"
    for path in (write(tmp_path / "kg.json", BOM + document.encode()),
                 write(tmp_path / "kg.jsonl", BOM + lines.encode())):
        result = build(path)
        assert [(t["subject_id"], t["relation_id"], t["object_id"]) for t in result.triples] == [("a", "r", "b")]


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}


@pytest.mark.parametrize("syntax", sorted(SYNTAXES))
def test_gzip_of_every_syntax_is_read_transparently(build: BuildFn, tmp_path: Path, syntax: str) -> None:
    name, produce, recorded_format, _ = SYNTAXES[syntax]
    data = produce()
    reference = build(write(tmp_path / name, data))
    result = build(write(tmp_path / f"packed-{name}.gz", gzip.compress(data.encode() if isinstance(data, str)
                                                                      else data)))
    assert result.formats == [recorded_format]
    assert result.nodes == reference.nodes
    assert result.triples_without_source() == reference.triples_without_source()


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_gzip_bzip2_and_xz_are_detected_by_magic_bytes_not_by_name(build: BuildFn, tmp_path: Path,
                                                                   suffix: str) -> None:
    reference = build(write(tmp_path / "kg.ttl", KG_TURTLE))
    packed = COMPRESSORS[suffix](KG_TURTLE.encode())
    by_name = build(write(tmp_path / f"kg.ttl{suffix}", packed))
    no_hint = build(write(tmp_path / "kg.download", packed))
    for result in (by_name, no_hint):
        assert result.formats == ["turtle"]
        assert result.nodes == reference.nodes
        assert result.triples_without_source() == reference.triples_without_source()


def test_json_shapes_are_detected_inside_compressed_files(build: BuildFn, tmp_path: Path) -> None:
    lines = "".join(json.dumps({"subject": s, "relation": "r", "object": o}) + "\n"
                    for s, o in [("a", "b"), ("b", "c")])
    result = build(write(tmp_path / "facts.jsonl.xz", lzma.compress(lines.encode())))
    assert result.formats == ["jsonl"]
    assert [(t["subject_id"], t["object_id"]) for t in result.triples] == [("a", "b"), ("b", "c")]


def test_format_option_overrides_detection(build: BuildFn, run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    reference = build(write(tmp_path / "kg.ttl", KG_TURTLE))
    # Turtle in a file whose name says JSON: --format turtle reads it as Turtle.
    forced = build(write(tmp_path / "kg.json", KG_TURTLE), args=("--format", "ttl"))
    assert forced.formats == ["turtle"]
    assert forced.nodes == reference.nodes
    # N-Triples sniffed as another syntax are held to the strict N-Triples grammar when asked.
    strict = build(write(tmp_path / "kg.txt", to_ntriples()), args=("--format", "N-Triples"))
    assert strict.formats == ["ntriples"]
    assert strict.nodes == reference.nodes
    # The override is really applied: Turtle forced through the N-Triples parser is rejected.
    failed = run_ks_build("--kg", tmp_path / "kg.ttl", "--format", "nt", "--out", tmp_path / "bad", "--quiet")
    assert failed.code == 2
    assert "invalid N-Triples" in failed.err


# -- our JSON shapes -------------------------------------------------------------------------------------------------

def _city_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_node("paris", label="Paris", parent="city")
    graph.add_node("lyon", label="Lyon", parent="city")
    graph.add_node("france", label="France", parent="country")
    graph.add_node("city", label="city", parent="place")
    graph.add_node("country", label="country", parent="place")
    graph.add_node("place", label="place")
    graph.add_edge("paris", "france", relation="capital of")
    graph.add_edge("lyon", "france", relation="located in")
    graph.add_edge("france", "paris")  # no relation attribute: a generic relation
    return graph


@pytest.mark.parametrize("edges_key", ["edges", "links"])
def test_networkx_node_link_data_builds_nodes_and_facts(build: BuildFn, tmp_path: Path, edges_key: str) -> None:
    data = nx.node_link_data(_city_graph(), edges=edges_key)
    assert edges_key in data
    result = build(write(tmp_path / "cities.json", json.dumps(data)))
    assert result.formats == ["json"]
    assert [(n["node_id"], n["label"], n["level"], n["depth"], n["parent_ids"], n["branch_id"])
            for n in result.nodes] == [
        ("city", "city", INTERMEDIATE, 1, ["place"], "city"),
        ("country", "country", INTERMEDIATE, 1, ["place"], "country"),
        ("france", "France", LEAF, 2, ["country"], "country"),
        ("lyon", "Lyon", LEAF, 2, ["city"], "city"),
        ("paris", "Paris", LEAF, 2, ["city"], "city"),
        ("place", "place", ROOT, 0, [], "place"),
    ]
    facts = [(t["subject_id"], t["relation_id"], t["object_id"]) for t in result.triples]
    assert ("paris", "capital of", "france") in facts
    assert ("lyon", "located in", "france") in facts
    assert ("france", "related_to", "paris") in facts
    assert {t["source"] for t in result.triples} == {"cities.json"}


def test_node_link_data_of_a_multigraph_reads_the_relation_not_the_edge_key(build: BuildFn, tmp_path: Path) -> None:
    graph = nx.MultiDiGraph()
    graph.add_edge("marie_curie", "physics", relation="field")
    graph.add_edge("marie_curie", "chemistry", relation="field")
    graph.add_edge("marie_curie", "pierre_curie", relation="spouse")
    result = build(write(tmp_path / "people.json", json.dumps(nx.node_link_data(graph))))
    assert [(t["subject_id"], t["relation_id"], t["object_id"]) for t in result.triples] == [
        ("marie_curie", "field", "chemistry"), ("marie_curie", "field", "physics"),
        ("marie_curie", "spouse", "pierre_curie")]


def test_triple_list_with_labels_and_literal_objects(build: BuildFn, tmp_path: Path) -> None:
    triples = [
        {"subject": "Q90", "relation": "capital of", "object": "Q142", "subject_label": "Paris",
         "object_label": "France"},
        {"subject": "Q90", "predicate": "population", "object": 2102650},
        {"subject": "Q90", "relation": "area km2", "object": 105.4},
        {"subject": "Q90", "relation": "is capital", "object": True},
        {"subject": "Q90", "relation": "nickname", "object": "City of Light", "object_type": "literal"},
    ]
    result = build(write(tmp_path / "triples.json", json.dumps(triples)))
    assert result.formats == ["json"]
    assert [(n["node_id"], n["label"]) for n in result.nodes] == [("Q142", "France"), ("Q90", "Paris")]
    assert [(t["relation_id"], t["object_id"], t["object_is_literal"], t["object_datatype"])
            for t in result.triples] == [
        ("area km2", "105.4", True, XSD + "double"),
        ("capital of", "Q142", False, None),
        ("is capital", "true", True, XSD + "boolean"),
        ("nickname", "City of Light", True, XSD + "string"),
        ("population", "2102650", True, XSD + "integer"),
    ]


def test_jsonl_triples_one_object_per_line(build: BuildFn, tmp_path: Path) -> None:
    lines = [
        {"subject": "paris", "relation": "capital of", "object": "france", "subject_label": "Paris"},
        {"subject": "lyon", "relation": "located in", "object": "france", "object_label": "France"},
        {"subject": "paris", "relation": "population", "object": 2102650},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n\n"  # a trailing blank line is fine
    result = build(write(tmp_path / "facts.jsonl", text))
    assert result.formats == ["jsonl"]
    assert [(n["node_id"], n["label"]) for n in result.nodes] == [
        ("france", "France"), ("lyon", "lyon"), ("paris", "Paris")]
    assert [(t["subject_id"], t["relation_id"], t["object_id"]) for t in result.triples] == [
        ("lyon", "located in", "france"), ("paris", "capital of", "france"), ("paris", "population", "2102650")]
    # Without the .jsonl extension the content still says JSON Lines.
    assert build(write(tmp_path / "facts.json", text)).formats == ["jsonl"]


def test_json_nodes_with_explicit_level_and_parents(build: BuildFn, tmp_path: Path) -> None:
    document = {
        "nodes": [
            {"id": "science", "label": "science"},
            {"id": "physics", "label": "physics", "parent": "science"},
            {"id": "chemistry", "label": "chemistry", "parent": "science"},
            # two parents, listed out of order
            {"id": "physical_chemistry", "label": "physical chemistry", "parents": ["physics", "chemistry"]},
            # has a child, so the computed level would be intermediate: the explicit level wins
            {"id": "optics", "label": "optics", "parent": "physics", "level": "leaf"},
            {"id": "lasers", "label": "lasers", "parent": "optics"},
            # no parent and no child: the explicit level wins over the computed leaf
            {"id": "mathematics", "label": "mathematics", "level": "root"},
        ],
        "triples": [{"subject": "lasers", "relation": "invented in", "object": 1960}],
    }
    result = build(write(tmp_path / "science.json", json.dumps(document)))
    levels = {n["node_id"]: (n["level"], n["depth"], n["parent_ids"], n["branch_id"]) for n in result.nodes
              if n["node_id"] != "mathematics"}
    # An explicit level sets the level only; depth and branch still come from the edges (none here).
    assert (result.node("mathematics")["level"], result.node("mathematics")["parent_ids"]) == (ROOT, [])
    assert levels == {
        "chemistry": (INTERMEDIATE, 1, ["science"], "chemistry"),
        "lasers": (LEAF, 3, ["optics"], "physics"),
        "optics": (LEAF, 2, ["physics"], "physics"),
        "physical_chemistry": (LEAF, 2, ["chemistry", "physics"], "chemistry"),
        "physics": (INTERMEDIATE, 1, ["science"], "physics"),
        "science": (ROOT, 0, [], "science"),
    }
    facts = {(t["subject_id"], t["object_id"], t["subject_level"], t["object_level"]) for t in result.triples}
    assert ("lasers", "optics", LEAF, LEAF) in facts  # triples carry the explicit level too
    assert ("physical_chemistry", "physics", LEAF, INTERMEDIATE) in facts
    assert ("physical_chemistry", "chemistry", LEAF, INTERMEDIATE) in facts


# -- several files ---------------------------------------------------------------------------------------------------

def test_several_kg_files_merge_into_one_graph(build: BuildFn, tmp_path: Path) -> None:
    first = write(tmp_path / "first.ttl", KG_TURTLE)
    second = write(tmp_path / "second.nt", (
        f'<{EX}Paris> <{EX}capitalOf> <{EX}France> .\n'  # the same fact as in first.ttl
        f'<{EX}Paris> <{EX}twinnedWith> <{EX}Rome> .\n'  # Paris is in both files
        f'<{EX}Rome> <http://www.w3.org/2000/01/rdf-schema#label> "Rome"@en .\n'
        f'<{EX}Rome> <{EX}population> "2749031"^^<{XSD}integer> .\n'))
    result = build(first, second)
    assert result.formats == ["turtle", "ntriples"]
    assert [n["node_id"] for n in result.nodes] == [EX + n for n in
                                                    ("City", "Country", "France", "Lyon", "Paris", "Place", "Rome")]
    assert result.node(EX + "Paris") == next(n for n in EXPECTED_NODES if n["node_id"] == EX + "Paris")
    assert result.node(EX + "Rome")["label"] == "Rome"
    capital_of = [t for t in result.triples if t["relation_id"] == EX + "capitalOf"]
    assert [(t["subject_id"], t["object_id"], t["source"]) for t in capital_of] == [
        (EX + "Paris", EX + "France", "first.ttl")]
    sources = {(t["subject_id"], t["relation_id"]): t["source"] for t in result.triples}
    assert sources[(EX + "Paris", EX + "twinnedWith")] == "second.nt"
    assert sources[(EX + "Rome", EX + "population")] == "second.nt"
    assert sources[(EX + "Lyon", EX + "locatedIn")] == "first.ttl"
    assert len(result.triples) == len(EXPECTED_FACTS) + 2
    assert result.manifest["facts_per_source"] == {"first.ttl": len(EXPECTED_FACTS), "second.nt": 2}
    assert len({t["triple_id"] for t in result.triples}) == len(result.triples)


def test_files_of_different_syntaxes_merge(build: BuildFn, tmp_path: Path) -> None:
    rdf = write(tmp_path / "kg.rdf", rdflib_graph().serialize(format="xml"))
    jsonl = write(tmp_path / "extra.jsonl", json.dumps({"subject": EX + "Lyon", "relation": EX + "twinnedWith",
                                                        "object": EX + "Turin"}) + "\n")
    result = build(rdf, jsonl)
    assert result.formats == ["rdfxml", "jsonl"]
    assert (EX + "Lyon", EX + "twinnedWith", EX + "Turin", "extra.jsonl") in {
        (t["subject_id"], t["relation_id"], t["object_id"], t["source"]) for t in result.triples}
    assert result.node(EX + "Lyon")["label"] == "Lyon"


# -- labels ----------------------------------------------------------------------------------------------------------

LABELS_TURTLE = """\
@prefix ex:   <http://example.org/kg/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .

ex:City  rdfs:label "city"@en , "ville"@fr ; skos:altLabel "town"@en , "cité"@fr , "burg" .
ex:Paris a ex:City ; rdfs:label "Paris" ; ex:colour ex:Grey .
ex:Grey  rdfs:label "gray"@en-US , "gris"@fr .
ex:Lyon  a ex:City ; rdfs:label "Lyon"@fr , "Lione"@it .
<http://x.org/NewYork_City> a ex:City .
"""


def _labels(result: Build) -> dict[str, tuple[str, list[str]]]:
    return {n["node_id"].rsplit("/", 1)[1]: (n["label"], n["aliases"]) for n in result.nodes}


def test_labels_follow_the_default_language_english(build: BuildFn, tmp_path: Path) -> None:
    result = build(write(tmp_path / "labels.ttl", LABELS_TURTLE))
    assert _labels(result) == {
        "City": ("city", ["burg", "town"]),  # aliases in the label's language, and untagged ones
        "Grey": ("gray", []),  # en-US matches en
        "Lyon": ("Lyon", []),  # no English label: another language is the fallback
        "NewYork_City": ("New York City", []),  # no label at all: a readable name from the IRI
        "Paris": ("Paris", []),  # untagged
    }


@pytest.mark.parametrize(("iri", "name"), [
    ("http://x.org/NewYork_City", "New York City"),
    ("http://x.org/onto#AbdominalCavity", "Abdominal Cavity"),
    ("http://x.org/wiki/New_York/", "New York"),
    ("http://x.org/%C3%89cole_Normale", "École Normale"),
    ("http://x.org/Paris%2C_France", "Paris, France"),
    ("http://x.org/HTMLParser", "HTML Parser"),
    ("urn:isbn:0451450523", "0451450523"),
])
def test_a_node_without_a_label_is_named_from_its_iri(iri: str, name: str) -> None:
    assert name_from_iri(iri) == name


def test_labels_follow_the_lang_preference(build: BuildFn, tmp_path: Path) -> None:
    result = build(write(tmp_path / "labels.ttl", LABELS_TURTLE), args=("--lang", "fr"))
    assert _labels(result) == {
        "City": ("ville", ["burg", "cité"]),
        "Grey": ("gris", []),
        "Lyon": ("Lyon", []),
        "NewYork_City": ("New York City", []),
        "Paris": ("Paris", []),
    }


def test_lang_preference_list_falls_back_in_order(build: BuildFn, tmp_path: Path) -> None:
    result = build(write(tmp_path / "labels.ttl", LABELS_TURTLE), args=("--lang", "de,it,en"))
    labels = {k: v[0] for k, v in _labels(result).items()}
    assert labels == {"City": "city", "Grey": "gray", "Lyon": "Lione", "NewYork_City": "New York City",
                      "Paris": "Paris"}


def test_untagged_label_beats_an_unwanted_language(build: BuildFn, tmp_path: Path) -> None:
    turtle = ('@prefix ex: <http://example.org/kg/> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n'
              'ex:Rome rdfs:label "Roma"@it , "Rome" ; ex:capitalOf ex:Italy .\n')
    result = build(write(tmp_path / "rome.ttl", turtle), args=("--lang", "fr"))
    assert result.node(EX + "Rome")["label"] == "Rome"


def test_an_english_regional_label_is_preferred_over_french_when_english_is_asked(build: BuildFn,
                                                                                   tmp_path: Path) -> None:
    turtle = ('@prefix ex: <http://example.org/kg/> . @prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n'
              'ex:Colour rdfs:label "couleur"@fr , "color"@en-US , "colour"@en-GB ; ex:seeAlso ex:Grey .\n')
    us = build(write(tmp_path / "colour.ttl", turtle), args=("--lang", "en-us"))
    assert (us.node(EX + "Colour")["label"], us.node(EX + "Colour")["aliases"]) == ("color", ["colour"])
    plain = build(write(tmp_path / "colour2.ttl", turtle), args=("--lang", "en"))
    # en-GB and en-US rank the same against "en"; the tie goes to the smaller tag, whatever the input order
    assert (plain.node(EX + "Colour")["label"], plain.node(EX + "Colour")["aliases"]) == ("colour", ["color"])
