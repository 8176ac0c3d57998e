"""The hand-written mini KG (tests/data/mini_kg.ttl) shared by the probe, MCQ, verify, determinism and template tests:
its paths and ids, a build helper, readers of a build's tables, and an independent reading of what the KG makes true.

The oracle reads the Turtle file with rdflib, not through the builder, so that a row is checked against the KG itself:
stated facts, declared `owl:inverseOf` pairs (both directions), and for `rdf:type` / `rdfs:subClassOf` every class
reachable upwards along type and subclass edges (the closure DESIGN.md and builder/kgindex.py document).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import rdflib
from rdflib.namespace import OWL, RDF, RDFS

from knowledgesmith.builder.cli import main as ks_build_main

MINI_KG = Path(__file__).resolve().parent / "data" / "mini_kg.ttl"
M = "https://knowledgesmith.org/test/mini/"
R = M + "relation/"
RDF_TYPE = str(RDF.type)
SUBCLASS_OF = str(RDFS.subClassOf)
HIERARCHY = (RDF_TYPE, SUBCLASS_OF)


def m(*names: str) -> list[str]:
    """Node ids of the mini KG from their local names."""
    return [M + name for name in names]


def build_mini(out: Path, *extra: str | Path, kg: Path = MINI_KG) -> None:
    """`ks-build --kg KG --out OUT --max-k 100 --seed 0 --quiet EXTRA…` in-process (every eligible fact of the mini KG
    becomes a request); fails the test on a non-zero exit."""
    args = ["--kg", str(kg), "--out", str(out), "--max-k", "100", "--seed", "0", "--quiet", *map(str, extra)]
    code = ks_build_main(args)
    assert code == 0, f"ks-build {' '.join(args)} exited {code}"


def mcq_rows(folder: Path) -> list[dict]:
    """Every MCQ row of a build, shard by shard in file-name order."""
    return [row for shard in sorted((folder / "mcq").glob("*.parquet")) for row in pq.read_table(shard).to_pylist()]


def requests_by_id(folder: Path) -> dict[str, dict]:
    return {row["request_id"]: row for row in pq.read_table(folder / "requests.parquet").to_pylist()}


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by path relative to it."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


class Oracle:
    """What the KG file makes true, read with rdflib (independent of the builder)."""

    def __init__(self, path: Path = MINI_KG) -> None:
        graph = rdflib.Graph().parse(path, format="turtle")
        self.labels = {str(s): str(o) for s, o in graph.subject_objects(RDFS.label) if str(s).startswith(M)}
        self.nodes = {node for node in self.labels if not node.startswith(R)}
        self.facts = {(str(s), str(p), str(o)) for s, p, o in graph
                      if str(p).startswith(R) and str(s) in self.nodes and str(o) in self.nodes}
        self.inverse: dict[str, str] = {}
        for a, b in graph.subject_objects(OWL.inverseOf):
            self.inverse[str(a)], self.inverse[str(b)] = str(b), str(a)
        self.parents: dict[str, set[str]] = {}
        for predicate in (RDF.type, RDFS.subClassOf):
            for s, o in graph.subject_objects(predicate):
                if str(s) in self.nodes and str(o) in self.nodes:
                    self.parents.setdefault(str(s), set()).add(str(o))

    def ancestors(self, node: str) -> set[str]:
        found: set[str] = set()
        frontier = [node]
        while frontier:
            current = frontier.pop()
            for parent in self.parents.get(current, ()):
                if parent not in found:
                    found.add(parent)
                    frontier.append(parent)
        return found

    def descendants(self, node: str) -> set[str]:
        return {other for other in self.nodes if node in self.ancestors(other)}

    def hops(self, a: str, b: str) -> int | None:
        """Hierarchy edges between two nodes through their nearest common ancestor (None when they share none)."""
        up_a, up_b = self.distances_up(a), self.distances_up(b)
        common = [up_a[x] + up_b[x] for x in up_a.keys() & up_b.keys()]
        return min(common) if common else None

    def distances_up(self, node: str) -> dict[str, int]:
        found = {node: 0}
        frontier = [node]
        while frontier:
            following = []
            for current in frontier:
                for parent in sorted(self.parents.get(current, ())):
                    if parent not in found:
                        found[parent] = found[current] + 1
                        following.append(parent)
            frontier = following
        return found

    def values(self, s: str, r: str) -> set[str]:
        """Every o that the KG makes true for (s, r, ?)."""
        if r in HIERARCHY:
            return self.ancestors(s)
        inverse = self.inverse.get(r)
        return ({o for s2, r2, o in self.facts if (s2, r2) == (s, r)}
                | {x for x, r2, s2 in self.facts if (r2, s2) == (inverse, s)})

    def holds(self, s: str, r: str, o: str) -> bool:
        return o in self.values(s, r)

    def holders(self, r: str, o: str) -> set[str]:
        """Every s that the KG makes true for (?, r, o)."""
        return {s for s in self.nodes if self.holds(s, r, o)}

    def chain(self, s: str, r: str, r2: str) -> set[str]:
        return {x for middle in self.values(s, r) for x in self.values(middle, r2)}

    def peers(self, s: str, r: str) -> set[str]:
        return {p for o in self.values(s, r) for p in self.holders(r, o)} - {s}

    def truths(self, row: dict) -> set[str]:
        """The options that are true for the question an MCQ row asks (by its query columns)."""
        kind, s, r = row["query_kind"], row["query_subject_id"], row["query_relation_id"]
        if kind == "object":
            return self.values(s, r)
        if kind == "subject":
            return self.holders(r, row["query_object_id"])
        if kind == "chain":
            return self.chain(s, r, row["query_relation2_id"])
        assert kind == "peer", kind
        return self.peers(s, r)
