"""Quality checks of the shipped economics KG (kg/economics*.ttl): size, hierarchy, schema conformance, plausibility."""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyoxigraph as ox
import pytest

from knowledgesmith.builder import KnowledgeGraph, ingest
from knowledgesmith.builder.requests import largest_k_per_level

KG = Path(__file__).resolve().parents[1] / "kg"
FILES = [KG / "economics.ttl", *sorted(KG.glob("economics.*.ttl"))]
BASE = "https://knowledgesmith.org/kg/economics/"
REL = BASE + "rel/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"


@dataclass
class Schema:
    """What the Turtle declares, read straight from the files (the builder keeps only non-machinery types)."""

    types: dict[str, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    functional: set[str] = field(default_factory=set)
    domain: dict[str, str] = field(default_factory=dict)
    range: dict[str, str] = field(default_factory=dict)
    inverse: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def built() -> tuple[dict[str, list[object]], dict[str, list[object]], Schema, KnowledgeGraph]:
    kg, _inputs = ingest(FILES, domain="economics")
    schema = Schema()
    for path in FILES:
        for quad in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE):
            s, p, o = quad.subject.value, quad.predicate.value, quad.object.value
            if p == RDF_TYPE:
                schema.types[s].add(o)
                if o == OWL + "FunctionalProperty":
                    schema.functional.add(s)
            elif p == RDFS + "domain":
                schema.domain[s] = o
            elif p == RDFS + "range":
                schema.range[s] = o
            elif p == OWL + "inverseOf":
                schema.inverse[s] = o
    return kg.nodes.to_pydict(), kg.triples.to_pydict(), schema, kg


def facts(triples: dict[str, list[object]]) -> list[dict[str, object]]:
    return pa.Table.from_pydict(triples).to_pylist()


def test_files_carry_a_provenance_header() -> None:
    for path in FILES:
        head = path.read_text("utf-8").splitlines()[:3]
        assert all(line.startswith("#") for line in head), path.name
        if path.name != "economics.ttl":
            text = "\n".join(head)
            assert "licence" in text and "gen_economics.py" in text, path.name


def test_size_per_level(built) -> None:
    nodes, triples, _, _ = built
    levels = collections.Counter(nodes["level"])
    assert levels["root"] >= 20 and levels["intermediate"] >= 200 and levels["leaf"] >= 3000, levels
    assert len(triples["triple_id"]) >= 10_000
    assert len(set(triples["relation_id"])) >= 20
    subject_levels = collections.Counter(triples["subject_level"])
    assert subject_levels["root"] >= 100 and subject_levels["intermediate"] >= 1000, subject_levels


def test_every_level_supports_k_100_and_the_leaf_level_k_10_000(built) -> None:
    # issue 4: root facts need counterfactuals too (a root's sub-themes are all its own, so the new object comes from
    # what the relation points at from the other roots)
    largest_k = largest_k_per_level(built[3], "econ")
    assert largest_k["root"] >= 100 and largest_k["intermediate"] >= 100 and largest_k["leaf"] == 10_000, largest_k


def test_no_orphans(built) -> None:
    nodes, _, _, _ = built
    orphans = [n for n, d in zip(nodes["node_id"], nodes["depth"], strict=True) if d is None]
    assert not orphans, orphans[:10]


def test_every_source_file_contributes(built) -> None:
    _, triples, _, _ = built
    sources = collections.Counter(triples["source"])
    for path in FILES:
        if path.name != "economics.ttl":
            assert sources[path.name] > 0, path.name


def test_functional_relations_have_one_value(built) -> None:
    _, triples, schema, _ = built
    values: dict[tuple[str, str], int] = collections.Counter(
        (s, r) for s, r in zip(triples["subject_id"], triples["relation_id"], strict=True) if r in schema.functional)
    assert values, "no functional facts"
    several = [k for k, n in values.items() if n > 1]
    assert not several, several[:10]


def test_inverses_agree(built) -> None:
    _, triples, schema, _ = built
    present = set(zip(triples["subject_id"], triples["relation_id"], triples["object_id"], strict=True))
    for rel, inv in schema.inverse.items():
        assert schema.inverse.get(inv) == rel, f"{inv} does not declare {rel} as its inverse"
    missing = [(s, r, o) for s, r, o in present if r in schema.inverse and (o, schema.inverse[r], s) not in present]
    assert not missing, missing[:10]


def test_domain_and_range(built) -> None:
    nodes, triples, schema, _ = built
    parents = dict(zip(nodes["node_id"], nodes["parent_ids"], strict=True))

    def classes(node: str) -> set[str]:
        # A node belongs to its declared types and every class above them (and above itself) in the hierarchy.
        seen: set[str] = set()
        todo = [*schema.types.get(node, ()), *parents.get(node, ())]
        while todo:
            c = todo.pop()
            if c not in seen:
                seen.add(c)
                todo.extend(parents.get(c, ()))
                todo.extend(schema.types.get(c, set()) - {OWL + "Class"})
        return seen

    bad = []
    for f in facts(triples):
        rel = str(f["relation_id"])
        if not rel.startswith(REL):
            continue
        assert rel in schema.domain and rel in schema.range, f"{rel} lacks rdfs:domain or rdfs:range"
        if schema.domain[rel] not in classes(str(f["subject_id"])):
            bad.append(("domain", f["subject_id"], rel))
        rng = schema.range[rel]
        if f["object_is_literal"]:
            if f["object_datatype"] != rng:
                bad.append(("datatype", f["subject_id"], rel, f["object_datatype"]))
        elif rng not in classes(str(f["object_id"])):
            bad.append(("range", f["object_id"], rel))
    assert not bad, bad[:10]


def test_labels_unique_within_a_type(built) -> None:
    nodes, _, _, _ = built
    seen: dict[tuple[str, str], str] = {}
    clashes = []
    for node, label, types in zip(nodes["node_id"], nodes["label"], nodes["types"], strict=True):
        for t in types or ["(untyped: NAICS and M.49 concepts)"]:
            key = (t, str(label).casefold())
            if key in seen:
                clashes.append((label, seen[key], node))
            seen[key] = node
    assert not clashes, clashes[:10]


def test_values_are_plausible(built) -> None:
    _, triples, _, _ = built
    checks = {
        "population": lambda v: 0 < int(v) < 2_000_000_000,
        "areaKm2": lambda v: 0 < float(v) < 20_000_000,
        "latitude": lambda v: -90 <= float(v) <= 90,
        "longitude": lambda v: -180 <= float(v) <= 180,
        "minorUnits": lambda v: 0 <= int(v) <= 4,
        "isoAlpha2Code": lambda v: re.fullmatch(r"[A-Z]{2}", v),
        "isoAlpha3Code": lambda v: re.fullmatch(r"[A-Z]{3}", v),
        "isoNumericCode": lambda v: re.fullmatch(r"[0-9]{3}", v),
        "currencyCode": lambda v: re.fullmatch(r"[A-Z]{3}", v),
        "currencyNumericCode": lambda v: re.fullmatch(r"[0-9]{3}", v),
        "naicsCode": lambda v: re.fullmatch(r"[0-9]{2,6}|[0-9]{2}-[0-9]{2}", v),
        "m49Code": lambda v: re.fullmatch(r"[0-9]{3}", v),
        "callingCode": lambda v: re.fullmatch(r"\+[0-9-]+", v),
        "internetTld": lambda v: re.fullmatch(r"\.[a-z]{2}", v),
    }
    bad = []
    for f in facts(triples):
        name = str(f["relation_id"]).removeprefix(REL)
        if name in checks and not checks[name](str(f["object_id"])):
            bad.append((f["subject_id"], name, f["object_id"]))
    assert not bad, bad[:10]


def test_known_facts(built) -> None:
    """A few facts checked by hand against the sources, so that a wrong join shows at once."""
    _, triples, _, _ = built
    present = set(zip(triples["subject_id"], triples["relation_id"], triples["object_id"], strict=True))
    expected = [
        (BASE + "country/France", REL + "usesCurrency", BASE + "currency/EUR"),
        (BASE + "country/Croatia", REL + "formerlyUsedCurrency", BASE + "currency/HRK"),
        (BASE + "country/Japan", REL + "isoAlpha3Code", "JPN"),
        (BASE + "currency/JPY", REL + "minorUnits", "0"),
        (BASE + "country/Germany", REL + "sharesBorderWith", BASE + "country/Poland"),
        (BASE + "naics/111110", "http://www.w3.org/2004/02/skos/core#broader", BASE + "naics/1111"),
        (BASE + "country/Kazakhstan", REL + "officialLanguage", BASE + "language/Kazakh"),
    ]
    for fact in expected:
        assert fact in present, fact
    capitals = {s: o for s, r, o in present if r == REL + "capital"}
    assert capitals[BASE + "country/France"].startswith(BASE + "city/Paris_")
    assert capitals[BASE + "country/Kazakhstan"].startswith(BASE + "city/Astana_")
