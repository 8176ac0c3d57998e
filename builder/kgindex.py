"""An in-memory index of a built KG (nodes, triples, relations) for the probe, MCQ and verify stages.

It answers the questions those stages ask: which objects does the KG give (s, r)? which subjects have (r, o)? what
kind of thing is a node, and which other nodes are of the same kind? The verifier builds the same index from the
Parquet files, so a row is re-proved against exactly what the build wrote.
"""

from __future__ import annotations

import contextlib
import gc
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .vocab import RDF_TYPE, RDFS_SUBCLASS_OF, SKOS_BROADER, SKOS_NARROWER


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while an index (or the requests from one) is built: it makes hundreds of
    thousands of long-lived objects and no cycles, and each time the heap had grown by a quarter a full collection
    walked all of it again (half the time of `from_tables` on a 1M-row build's KG). Collection resumes on exit, if it
    was enabled on entry, and then walks the new objects a few times at most."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class NodeInfo:
    node_id: str
    label: str
    aliases: list[str]
    level: str
    depth: int | None
    parents: list[str]
    branch: str | None
    types: list[str]


@dataclass
class KgIndex:
    nodes: dict[str, NodeInfo]
    relation_labels: dict[str, str]
    relation_inverse: dict[str, str | None]
    hierarchy_relations: set[str]
    # (subject, relation) → objects, (relation, object) → subjects: node objects only
    objects: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    subjects: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    triple_of: dict[tuple[str, str, str], str] = field(default_factory=dict)
    facts_by_subject: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    nodes_by_kind: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _ancestors: dict[str, dict[str, int]] = field(default_factory=dict)
    _values: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    _holders: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    _single: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _kind_pools: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    _outside: dict[tuple[int, int], tuple[list[str], frozenset[str], int]] = field(default_factory=dict)
    _kind_of: dict[str, list[str]] = field(default_factory=dict)  # node → its same_kind pool (one of _kind_pools)
    folded: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node → label and aliases, case-folded
    labels: dict[str, str] = field(default_factory=dict)  # node → label, for a column of option labels at C speed
    _instance_classes: list[str] | None = None
    _siblings: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    _descendants: dict[str, set[str]] = field(default_factory=dict)
    signature: dict[str, tuple[str, ...]] = field(default_factory=dict)  # node → relations it is the subject of
    _objects_at: dict[tuple[str, ...], list[str]] | None = None
    _node_columns: tuple[dict[str, int], pa.Array, pa.Array] | None = None  # see node_columns

    @classmethod
    def from_tables(cls, nodes: pa.Table, triples: pa.Table, relations: pa.Table) -> KgIndex:
        with gc_paused():
            return cls._from_tables(nodes, triples, relations)

    @classmethod
    def _from_tables(cls, nodes: pa.Table, triples: pa.Table, relations: pa.Table) -> KgIndex:
        infos = {
            row["node_id"]: NodeInfo(row["node_id"], row["label"], row["aliases"] or [], row["level"], row["depth"],
                                     row["parent_ids"] or [], row["branch_id"], row["types"] or [])
            for row in nodes.to_pylist()
        }
        index = cls(
            nodes=infos,
            relation_labels={r["relation_id"]: r["label"] for r in relations.to_pylist()},
            relation_inverse={r["relation_id"]: r["inverse_relation_id"] for r in relations.to_pylist()},
            hierarchy_relations={r["relation_id"] for r in relations.to_pylist() if r["is_hierarchy"]},
        )
        columns = triples.select(["triple_id", "subject_id", "relation_id", "object_id", "object_is_literal"])
        relations_of: dict[str, set[str]] = defaultdict(set)
        for tid, s, r, o, literal in zip(*(columns[c].to_pylist() for c in columns.column_names), strict=True):
            relations_of[s].add(r)
            if literal or o not in infos or s not in infos:
                continue
            index.objects[(s, r)].add(o)
            index.subjects[(r, o)].add(s)
            index.triple_of[(s, r, o)] = tid
            index.facts_by_subject[s].append((r, o))
        shared: dict[tuple[str, ...], tuple[str, ...]] = {}
        for node, found in relations_of.items():
            signature = tuple(sorted(found))
            index.signature[node] = shared.setdefault(signature, signature)
        index.labels = {node: info.label for node, info in infos.items()}
        index.folded = {node: tuple(name.casefold() for name in (info.label or "", *info.aliases))
                        for node, info in infos.items()}
        for info in infos.values():
            for parent in info.parents:
                index.children[parent].append(info.node_id)
        for kids in index.children.values():
            kids.sort()
        return index

    @classmethod
    def from_folder(cls, folder: Path) -> KgIndex:
        return cls.from_tables(*(pq.read_table(folder / f"{name}.parquet") for name in
                                 ("nodes", "triples", "relations")))

    # The closure every check uses: stated facts, declared inverses, and for hierarchy relations transitivity along
    # the hierarchy (X instance of terrestrial planet ⇒ X instance of planet). A hierarchy question counts every
    # ancestor as true, which can only make distractors safer.

    def holds(self, s: str, r: str, o: str) -> bool:
        return o in self.values(s, r)

    def values(self, s: str, r: str) -> frozenset[str]:
        """Every o with (s, r, o) in the closure (memoised; do not modify)."""
        key = (s, r)
        found = self._values.get(key)
        if found is None:
            if r in UPWARD:
                found = frozenset(self.ancestors(s)) - {s}
            elif r in DOWNWARD:
                found = frozenset(self.descendants(s)) - {s}
            else:
                found = frozenset(self.objects.get(key, ()))
                inverse = self.relation_inverse.get(r)
                if inverse is not None:
                    found |= self.subjects.get((inverse, s), frozenset())
            self._values[key] = found
        return found

    def holders(self, r: str, o: str) -> frozenset[str]:
        """Every s with (s, r, o) in the closure (memoised; do not modify)."""
        key = (r, o)
        found = self._holders.get(key)
        if found is None:
            if r in UPWARD:
                found = frozenset(self.descendants(o)) - {o}
            elif r in DOWNWARD:
                found = frozenset(self.ancestors(o)) - {o}
            else:
                found = frozenset(self.subjects.get(key, ()))
                inverse = self.relation_inverse.get(r)
                if inverse is not None:
                    found |= self.objects.get((o, inverse), frozenset())
            self._holders[key] = found
        return found

    def instance_classes(self) -> list[str]:
        """Every node that is the class of some instance (the object of an rdf:type fact), sorted (memoised)."""
        if self._instance_classes is None:
            self._instance_classes = sorted({o for (_s, r, o) in self.triple_of if r == RDF_TYPE})
        return self._instance_classes

    def sibling_pool(self, node: str) -> list[str]:
        """Every child of the node's parents, sorted, the node included (memoised per set of parents)."""
        parents = tuple(self.nodes[node].parents)
        found = self._siblings.get(parents)
        if found is None:
            found = self._siblings[parents] = sorted({c for p in parents for c in self.children.get(p, ())})
        return found

    def single_valued_facts(self, s: str) -> list[tuple[str, str]]:
        """(relation, object) facts of `s` whose question has exactly one answer in the closure (memoised)."""
        found = self._single.get(s)
        if found is None:
            found = sorted((r, o) for r, o in self.facts_by_subject.get(s, ()) if len(self.values(s, r)) == 1
                           and self.nodes[o].label)
            self._single[s] = found
        return found

    def descendants(self, node: str) -> set[str]:
        """The node and everything below it in the hierarchy (memoised)."""
        cached = self._descendants.get(node)
        if cached is None:
            cached = {node}
            frontier = [node]
            while frontier:
                nxt = []
                for current in frontier:
                    for child in self.children.get(current, ()):
                        if child not in cached:
                            cached.add(child)
                            nxt.append(child)
                frontier = nxt
            self._descendants[node] = cached
        return cached

    def same_kind(self, node: str) -> list[str]:
        """Nodes of the same kind as `node` (sorted, `node` included; memoised per kind, do not modify). Sharing one
        type or one parent is enough."""
        cached = self._kind_of.get(node)
        if cached is not None:
            return cached
        info = self.nodes[node]
        key = (*sorted(info.types), "|", *info.parents, "|", info.level, info.branch or "")
        cached = self._kind_pools.get(key)
        if cached is not None:
            self._kind_of[node] = cached
            return cached
        if not self.nodes_by_kind:
            self._index_kinds()
        pool: set[str] = set()
        if info.types:
            for t in info.types:
                pool.update(self.nodes_by_kind.get(("type", t), ()))
        elif info.parents:
            for p in info.parents:
                pool.update(self.nodes_by_kind.get(("parent", p), ()))
        if len(pool) < 4:  # a root is its own branch: its kind is the other roots
            branch = "" if info.level == "root" else info.branch or ""
            pool.update(self.nodes_by_kind.get(("level", info.level, branch), ()))
        self._kind_pools[key] = self._kind_of[node] = sorted(pool)
        return self._kind_pools[key]

    def answer_pools(self, s: str, r: str, o: str) -> list[list[str]]:
        """Where a wrong answer to (s, r, ?) of o's kind comes from, closest kind first: nodes sharing a type or
        parent with `o` (`same_kind`); for `rdf:type`, any class that has instances; then what `r` points at from
        subjects of s's level (the range of r as the KG uses it) — first the objects at o's level that are the subject
        of the same relations as `o`, then any at o's level. The later pools serve where o's own kind is all true
        for s: a root's sub-themes are all its descendants, so "Retail Trade has the subsector …" takes a wrong
        answer from the subsectors of other sectors."""
        pools = [self.same_kind(o)]
        if r == RDF_TYPE:  # a class with few sibling classes: any other class that has instances will do
            pools.append(self.instance_classes())
        s_level, o_level = self.nodes[s].level, self.nodes[o].level
        pools += [self.objects_at(r, s_level, o_level, like=o), self.objects_at(r, s_level, o_level)]
        return pools

    def objects_at(self, r: str, subject_level: str, object_level: str, like: str | None = None) -> list[str]:
        """The stated objects of `r` whose subject is at `subject_level` and which are themselves at `object_level`
        (sorted; memoised, do not modify): what `r` points at from nodes like its subject. With `like`, only those
        that are the subject of the same relations as `like` (its relation signature), a closer kind."""
        if self._objects_at is None:
            grouped: dict[tuple[str, ...], set[str]] = defaultdict(set)
            for s, r2, o in self.triple_of:
                grouped[(r2, self.nodes[s].level, self.nodes[o].level)].add(o)
                grouped[(r2, self.nodes[s].level, self.nodes[o].level, "|", *self.signature.get(o, ()))].add(o)
            self._objects_at = {key: sorted(found) for key, found in grouped.items()}
        key = (r, subject_level, object_level, *(("|", *self.signature.get(like, ())) if like is not None else ()))
        return self._objects_at.get(key, [])

    def _index_kinds(self) -> None:
        kinds: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for node, info in self.nodes.items():
            for t in info.types:
                kinds[("type", t)].append(node)
            if not info.types:
                for p in info.parents:
                    kinds[("parent", p)].append(node)
            kinds[("level", info.level, "" if info.level == "root" else info.branch or "")].append(node)
        self.nodes_by_kind = dict(kinds)

    def ancestors(self, node: str) -> dict[str, int]:
        """Every ancestor with its distance in hierarchy edges (the node itself at 0), nearest first (breadth-first),
        memoised."""
        cached = self._ancestors.get(node)
        if cached is not None:
            return cached
        found = {node: 0}
        frontier = [node]
        while frontier:
            nxt = []
            for current in frontier:
                for parent in self.nodes[current].parents if current in self.nodes else ():
                    if parent not in found:
                        found[parent] = found[current] + 1
                        nxt.append(parent)
            frontier = nxt
        self._ancestors[node] = found
        return found

    def hierarchy_distance(self, a: str, b: str) -> int | None:
        """Hops between two nodes through their nearest common ancestor (None when they share none)."""
        memo = self._ancestors  # looked up here first: this runs for every contextual and conflict row
        up_a, up_b = memo.get(a) or self.ancestors(a), memo.get(b) or self.ancestors(b)
        if len(up_b) < len(up_a):
            up_a, up_b = up_b, up_a
        # A loop over the shorter ancestry, which `ancestors` lists nearest first: once its hops alone reach the best
        # sum found, no later ancestor can do better (no key-set intersection and list per pair of nodes).
        best = None
        for x, hops in up_a.items():
            if best is not None and hops >= best:
                break
            other = up_b.get(x)
            if other is not None and (best is None or hops + other < best):
                best = hops + other
        return best

    def node_columns(self) -> tuple[dict[str, int], pa.Array, pa.Array]:
        """Every node's number, and the node ids and labels as Arrow string arrays in that order (memoised): a column
        of options is then a take by numbers, not millions of strings converted one by one."""
        if self._node_columns is None:
            order = list(self.nodes)
            self._node_columns = ({node: number for number, node in enumerate(order)}, pa.array(order, pa.string()),
                                  pa.array([self.labels[node] for node in order], pa.string()))
        return self._node_columns

    def count_outside(self, pool: list[str], truths: frozenset[str]) -> int:
        """How many nodes of `pool` are not in `truths`, memoised by identity (for the memoised pools and truth sets
        that many probes share; the memo holds both, so that no id is reused while it lives)."""
        if not pool:
            return 0
        found = self._outside.get((id(pool), id(truths)))
        if found is None or found[0] is not pool or found[1] is not truths:
            found = self._outside[(id(pool), id(truths))] = (pool, truths, sum(node not in truths for node in pool))
        return found[2]

    def is_hierarchy(self, relation: str) -> bool:
        return relation in self.hierarchy_relations or relation in HIERARCHY_PREDICATES


HIERARCHY_PREDICATES = frozenset({RDF_TYPE, RDFS_SUBCLASS_OF, SKOS_BROADER, SKOS_NARROWER})
UPWARD = frozenset({RDF_TYPE, RDFS_SUBCLASS_OF, SKOS_BROADER})  # child → parent
DOWNWARD = frozenset({SKOS_NARROWER})  # parent → child
