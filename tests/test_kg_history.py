"""Quality checks of the shipped History KG (kg/history*.ttl): size, levels, schema conformance, plausible dates."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pyoxigraph as ox
import pytest

from knowledgesmith.builder import ingest
from knowledgesmith.builder.requests import largest_k_per_level

KG_DIR = Path(__file__).resolve().parents[1] / "kg"
PATHS = [KG_DIR / "history.ttl", *sorted(KG_DIR.glob("history.*.ttl"))]
H = "https://knowledgesmith.org/kg/history/"
HR = H + "rel/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
OWL = "http://www.w3.org/2002/07/owl#"
XSD = "http://www.w3.org/2001/XMLSchema#"


class HistoryKG:
    """The built tables as Python rows plus the declarations read straight from the Turtle."""

    def __init__(self) -> None:
        kg, _ = ingest(PATHS, domain="history")
        self.graph = kg
        self.nodes = kg.nodes.to_pylist()
        self.facts = kg.triples.to_pylist()
        self.by_id = {n["node_id"]: n for n in self.nodes}
        self.functional: set[str] = set()
        self.domain: dict[str, str] = {}
        self.range: dict[str, str] = {}
        self.inverse: dict[str, str] = {}
        self.types: dict[str, set[str]] = defaultdict(set)
        for path in PATHS:
            for q in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE):
                s, p, o = q.subject.value, q.predicate.value, q.object.value
                if p == RDF_TYPE and o == OWL + "FunctionalProperty":
                    self.functional.add(s)
                elif p == RDF_TYPE:
                    self.types[s].add(o)
                elif p == RDFS + "domain":
                    self.domain[s] = o
                elif p == RDFS + "range":
                    self.range[s] = o
                elif p == OWL + "inverseOf":
                    self.inverse[s] = o
        self._anc: dict[str, set[str]] = {}

    def ancestors(self, node: str) -> set[str]:
        """The node and everything above it along hierarchy edges (types, subclasses, broader)."""
        if node not in self._anc:
            self._anc[node] = {node}  # guards against cycles while recursing
            acc = {node}
            for p in self.by_id[node]["parent_ids"]:
                acc |= self.ancestors(p)
            self._anc[node] = acc
        return self._anc[node]

    def values(self, rel: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for f in self.facts:
            if f["relation_id"] == HR + rel:
                out[f["subject_id"]].append(f["object_id"])
        return out


@pytest.fixture(scope="module")
def kg() -> HistoryKG:
    return HistoryKG()


def test_sizes_per_level(kg: HistoryKG) -> None:
    levels = Counter(n["level"] for n in kg.nodes)
    assert levels["root"] >= 20 and levels["intermediate"] >= 200 and levels["leaf"] >= 3000, levels
    assert len(kg.facts) >= 10_000
    assert len({f["relation_id"] for f in kg.facts}) >= 20
    subj = Counter(f["subject_level"] for f in kg.facts)
    assert subj["root"] >= 100 and subj["intermediate"] >= 1000, subj
    # most facts are real relations, not hierarchy statements
    assert sum(f["relation_id"].startswith(HR) for f in kg.facts) > len(kg.facts) / 2


def test_no_orphans(kg: HistoryKG) -> None:
    outside = [n["node_id"] for n in kg.nodes if n["depth"] is None]
    assert not outside, outside[:10]
    every = {f["subject_id"] for f in kg.facts} | {f["object_id"] for f in kg.facts if not f["object_is_literal"]}
    assert every <= set(kg.by_id)


def test_every_relation_declared(kg: HistoryKG) -> None:
    for rel in {f["relation_id"] for f in kg.facts if f["relation_id"].startswith(HR)}:
        assert rel in kg.domain and rel in kg.range, rel


def test_functional_relations(kg: HistoryKG) -> None:
    for rel in kg.functional:
        many = {s: v for s, v in kg.values(rel.removeprefix(HR)).items() if len(set(v)) > 1}
        assert not many, (rel, list(many.items())[:5])


def test_inverses_agree(kg: HistoryKG) -> None:
    pairs = {(f["subject_id"], f["relation_id"], f["object_id"]) for f in kg.facts if not f["object_is_literal"]}
    for s, r, o in pairs:
        if r in kg.inverse:
            assert (o, kg.inverse[r], s) in pairs, (s, r, o)


def test_domain_and_range(kg: HistoryKG) -> None:
    bad = []
    for f in kg.facts:
        r = f["relation_id"]
        if r not in kg.domain:
            continue
        if kg.domain[r] not in kg.ancestors(f["subject_id"]):
            bad.append(("domain", f["subject_id"], r))
        rng = kg.range[r]
        if rng.startswith(XSD):
            if f["object_datatype"] != rng:
                bad.append(("datatype", f["subject_id"], r, f["object_datatype"]))
        elif f["object_is_literal"] or rng not in kg.ancestors(f["object_id"]):
            bad.append(("range", f["subject_id"], r, f["object_id"]))
    assert not bad, bad[:10]


def test_labels_unique_within_type(kg: HistoryKG) -> None:
    seen: dict[tuple[str, str], str] = {}
    clashes = []
    for n in kg.nodes:
        for t in n["types"]:
            key = (t, n["label"])
            if key in seen:
                clashes.append((seen[key], n["node_id"], n["label"]))
            seen[key] = n["node_id"]
    assert not clashes, clashes[:10]


def test_years_plausible(kg: HistoryKG) -> None:
    births = {s: int(v[0]) for s, v in kg.values("birthYear").items()}
    deaths = {s: int(v[0]) for s, v in kg.values("deathYear").items()}
    assert len(births) >= 2500 and len(deaths) >= 2000
    assert all(-3000 <= y <= 2010 for y in births.values())
    for s, d in deaths.items():
        if s in births:
            assert 10 <= d - births[s] <= 110, (s, births[s], d)
    for s, dates in kg.values("birthDate").items():  # Nobel dates agree with the year, wherever it came from
        assert s not in births or int(dates[0][:4]) == births[s], (s, dates, births[s])
    assert all(1901 <= int(v[0]) <= 2010 for v in kg.values("awardYear").values())
    assert all(1787 <= int(v[0]) <= 1959 for v in kg.values("statehoodYear").values())
    ends = kg.values("eraEndYear")
    for s, start in kg.values("eraStartYear").items():
        assert 645 <= int(start[0]) <= 2019
        if s in ends:
            assert int(start[0]) <= int(ends[s][0]), s
    firsts, lasts = kg.values("firstYear"), kg.values("lastYear")
    for s, v in firsts.items():
        assert int(v[0]) <= int(lasts[s][0])


@pytest.mark.parametrize("s, rel, o", [
    ("Napoleon_Bonaparte", "birthYear", "1769"), ("Napoleon_Bonaparte", "deathYear", "1821"),
    ("Napoleon_Bonaparte", "nationality", H + "France"),
    ("Battle_of_Waterloo", "partOfConflict", H + "Napoleonic_Wars"),
    ("Battle_of_Waterloo", "eventYear", "1815"), ("NobelPrizeInPhysics_1921", "laureate", H + "Albert_Einstein"),
    ("Albert_Einstein", "birthDate", "1879-03-14"), ("Meiji_era", "eraStartYear", "1868"),
    ("Hawaii", "statehoodYear", "1959"), ("Decade_1810s", "firstYear", "1810"),
])
def test_spot_facts(kg: HistoryKG, s: str, rel: str, o: str) -> None:
    assert o in kg.values(rel).get(H + s, []), (s, rel, kg.values(rel).get(H + s))


def test_no_deities_or_fiction(kg: HistoryKG) -> None:
    labels = {n["label"] for n in kg.nodes}
    assert "Zeus" not in labels and "Sherlock Holmes" not in labels and "Hamlet" not in labels


def test_every_level_supports_k_100_and_the_leaf_level_k_10_000(kg: HistoryKG) -> None:
    # issue 4: root facts need counterfactuals too (a root's sub-themes are all its own, so the new object comes from
    # what the relation points at from the other roots)
    largest_k = largest_k_per_level(kg.graph, "hist")
    assert largest_k["root"] >= 100 and largest_k["intermediate"] >= 100 and largest_k["leaf"] == 10_000, largest_k
