"""The ingest accumulator: statements in (from any reader), one merged graph of labelled entities and facts out.

Readers feed statements; `GraphAccumulator.finish()` applies the fact rule (see `vocab`), chooses labels, computes the
hierarchy and returns a `KnowledgeGraph` whose tables the next stages consume.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from .hierarchy import LEVELS, compute_hierarchy
from .labels import choose_label, collect_aliases, name_from_iri, relation_name_from_iri
from .vocab import (
    ANNOTATION_PROPERTY,
    DOCUMENT_CLASSES,
    KNOWN_INVERSES,
    LABEL_RANK,
    PROPERTY_CLASSES,
    RELATION_LABELS,
    SYMMETRIC_PROPERTY,
    Role,
    is_machinery_class,
    predicate_role,
)

NODE = 0
LITERAL = 1

NODES_SCHEMA = pa.schema([
    ("node_id", pa.string()),
    ("label", pa.string()),
    ("aliases", pa.list_(pa.string())),
    ("level", pa.string()),
    ("depth", pa.int32()),
    ("parent_ids", pa.list_(pa.string())),
    ("branch_id", pa.string()),
    ("types", pa.list_(pa.string())),
    ("domain", pa.string()),
])

TRIPLES_SCHEMA = pa.schema([
    ("triple_id", pa.string()),
    ("subject_id", pa.string()),
    ("relation_id", pa.string()),
    ("object_id", pa.string()),
    ("object_is_literal", pa.bool_()),
    ("object_datatype", pa.string()),
    ("object_lang", pa.string()),
    ("subject_level", pa.string()),
    ("object_level", pa.string()),
    ("branch_id", pa.string()),
    ("inverse_relation_id", pa.string()),
    ("domain", pa.string()),
    ("source", pa.string()),
])

RELATIONS_SCHEMA = pa.schema([
    ("relation_id", pa.string()),
    ("label", pa.string()),
    ("inverse_relation_id", pa.string()),
    ("is_hierarchy", pa.bool_()),
    ("domain_ids", pa.list_(pa.string())),
    ("range_ids", pa.list_(pa.string())),
    ("fact_count", pa.int64()),
    ("domain", pa.string()),
])


@dataclass
class KnowledgeGraph:
    """The ingest stage's output: three Arrow tables and what the build should tell the user."""

    nodes: pa.Table
    triples: pa.Table
    relations: pa.Table
    hierarchy_method: str
    cycles: list[list[str]]
    dropped_hierarchy_edges: int
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, object] = field(default_factory=dict)


class GraphAccumulator:
    """Collects statements from every input file; memory holds interned strings and flat columns only."""

    def __init__(self, language_preference: Sequence[str] = ("en",)) -> None:
        self.language_preference = [lang.lower() for lang in language_preference]
        self._intern: dict[str, str] = {}
        self.sources: list[str] = []
        # Candidate facts, columnar: subject, predicate, object, object kind, datatype, language, source index.
        self.f_subject: list[str] = []
        self.f_predicate: list[str] = []
        self.f_object: list[str] = []
        self.f_kind: list[int] = []
        self.f_datatype: list[str | None] = []
        self.f_lang: list[str | None] = []
        self.f_source: list[int] = []
        # Hierarchy statements as written (subject, predicate, object, role, source index).
        self.hierarchy: list[tuple[str, str, str, Role, int]] = []
        self.labels: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        self.aliases: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.types: dict[str, set[str]] = defaultdict(set)
        self.property_kinds: dict[str, set[str]] = defaultdict(set)
        self.inverse_pairs: set[tuple[str, str]] = set()
        self.rel_domains: dict[str, set[str]] = defaultdict(set)
        self.rel_ranges: dict[str, set[str]] = defaultdict(set)
        self.explicit_levels: dict[str, str] = {}
        self.explicit_nodes: set[str] = set()
        self.documents: set[str] = set()
        self.statements_read = 0
        self.roles: dict[str, Role | None] = {}

    # -- feeding ---------------------------------------------------------------------------------------------------

    def add_source(self, name: str) -> int:
        self.sources.append(name)
        return len(self.sources) - 1

    def intern(self, value: str) -> str:
        return self._intern.setdefault(value, value)

    def role_of(self, predicate: str) -> Role | None:
        try:
            return self.roles[predicate]
        except KeyError:
            role = self.roles[predicate] = predicate_role(predicate)
            return role

    def add_fact(self, subject: str, predicate: str, obj: str, source: int) -> None:
        intern = self._intern.setdefault
        self.f_subject.append(intern(subject, subject))
        self.f_predicate.append(intern(predicate, predicate))
        self.f_object.append(intern(obj, obj))
        self.f_kind.append(NODE)
        self.f_datatype.append(None)
        self.f_lang.append(None)
        self.f_source.append(source)

    def add_literal_fact(self, subject: str, predicate: str, value: str, datatype: str, lang: str | None,
                         source: int) -> None:
        intern = self._intern.setdefault
        self.f_subject.append(intern(subject, subject))
        self.f_predicate.append(intern(predicate, predicate))
        self.f_object.append(value)
        self.f_kind.append(LITERAL)
        self.f_datatype.append(intern(datatype, datatype))
        self.f_lang.append(lang)
        self.f_source.append(source)

    def add_schema_statement(self, role: Role, subject: str, predicate: str, obj: str | None,
                             literal: tuple[str, str] | None, source: int) -> None:
        """A statement whose predicate has a role (label, hierarchy, schema, machinery).

        `obj` is a named node, `literal` a (text, language) pair; one of them is None for blank or other objects.
        """
        if role is Role.LABEL:
            if literal is not None:
                self.labels[self.intern(subject)].append((LABEL_RANK[predicate], literal[1], literal[0]))
        elif role is Role.ALIAS:
            if literal is not None:
                self.aliases[self.intern(subject)].append((literal[1], literal[0]))
        elif obj is None:
            return
        elif role is Role.TYPE:
            if obj in PROPERTY_CLASSES:
                self.property_kinds[self.intern(subject)].add(obj)
            elif obj in DOCUMENT_CLASSES:
                self.documents.add(subject)
            elif not is_machinery_class(obj):
                self.types[self.intern(subject)].add(self.intern(obj))
                self.hierarchy.append((self.intern(subject), predicate, self.intern(obj), role, source))
        elif role in (Role.SUBCLASS_OF, Role.BROADER, Role.NARROWER):
            if not is_machinery_class(obj):
                self.hierarchy.append((self.intern(subject), self.intern(predicate), self.intern(obj), role, source))
        elif role is Role.INVERSE_OF:
            self.inverse_pairs.add((subject, obj))
        elif role is Role.DOMAIN:
            self.rel_domains[subject].add(obj)
        elif role is Role.RANGE:
            self.rel_ranges[subject].add(obj)

    def add_explicit_node(self, node_id: str, level: str | None) -> None:
        node_id = self.intern(node_id)
        self.explicit_nodes.add(node_id)
        if level is not None:
            self.explicit_levels[node_id] = level

    # -- finishing -------------------------------------------------------------------------------------------------

    def finish(self, domain: str) -> KnowledgeGraph:
        warnings: list[str] = []
        properties = set(self.property_kinds)
        annotation_properties = {p for p, kinds in self.property_kinds.items() if ANNOTATION_PROPERTY in kinds}
        predicates_in_facts = set(self.f_predicate)
        properties |= predicates_in_facts

        # Candidate facts → facts: no annotation predicates, no statements about properties or the KG's header.
        not_entities = properties | self.documents
        keep = [
            p not in annotation_properties and s not in not_entities
            for s, p in zip(self.f_subject, self.f_predicate, strict=True)
        ]
        hierarchy_rows = [
            (s, p, o, role, src) for s, p, o, role, src in self.hierarchy
            if s not in not_entities and o not in not_entities
        ]

        facts = pa.table({
            "subject_id": pa.array(self.f_subject, pa.string()),
            "relation_id": pa.array(self.f_predicate, pa.string()),
            "object_id": pa.array(self.f_object, pa.string()),
            "kind": pa.array(self.f_kind, pa.int8()),
            "object_datatype": pa.array(self.f_datatype, pa.string()),
            "object_lang": pa.array(self.f_lang, pa.string()),
            "source_index": pa.array(self.f_source, pa.int32()),
        }).filter(pa.array(keep, pa.bool_()))
        hier_table = pa.table({
            "subject_id": pa.array([r[0] for r in hierarchy_rows], pa.string()),
            "relation_id": pa.array([r[1] for r in hierarchy_rows], pa.string()),
            "object_id": pa.array([r[2] for r in hierarchy_rows], pa.string()),
            "kind": pa.array([NODE] * len(hierarchy_rows), pa.int8()),
            "object_datatype": pa.nulls(len(hierarchy_rows), pa.string()),
            "object_lang": pa.nulls(len(hierarchy_rows), pa.string()),
            "source_index": pa.array([r[4] for r in hierarchy_rows], pa.int32()),
        })
        all_facts = pa.concat_tables([facts, hier_table])
        # The same statement in several files (or twice in one) is one fact, credited to its first source.
        all_facts = all_facts.group_by(
            ["subject_id", "relation_id", "object_id", "kind", "object_datatype", "object_lang"],
            use_threads=False,
        ).aggregate([("source_index", "min")]).rename_columns(
            ["subject_id", "relation_id", "object_id", "kind", "object_datatype", "object_lang", "source_index"])

        # Entity nodes: everything a fact mentions as a node, plus nodes a JSON file lists explicitly.
        node_objects = pc.filter(all_facts["object_id"], pc.equal(all_facts["kind"], NODE))
        node_ids = set(pc.unique(all_facts["subject_id"]).to_pylist())
        node_ids.update(pc.unique(node_objects).to_pylist())
        node_ids.update(self.explicit_nodes)
        node_ids -= {p for p in properties if p not in self.explicit_nodes}
        ordered = sorted(node_ids)
        index = {node: i for i, node in enumerate(ordered)}

        edges: set[tuple[int, int]] = set()
        for s, _p, o, role, _src in hierarchy_rows:
            if role is Role.NARROWER:
                s, o = o, s
            if s in index and o in index:
                edges.add((index[s], index[o]))
        fact_pairs = []
        if not edges:
            subjects = facts["subject_id"].to_pylist()
            objects = facts["object_id"].to_pylist()
            kinds = facts["kind"].to_pylist()
            fact_pairs = [(index[s], index[o]) for s, o, k in zip(subjects, objects, kinds, strict=True)
                          if k == NODE and s in index and o in index]
        tags = compute_hierarchy(len(ordered), sorted(edges), ordered, fact_pairs)
        if tags.method == "degree":
            warnings.append("the KG has no hierarchy edges (rdfs:subClassOf, skos:broader/narrower, rdf:type, or a "
                            "JSON parent); levels come from degree centrality over the fact graph")
        cycles = [[ordered[i] for i in cycle] for cycle in tags.cycles]
        for cycle in cycles:
            shown = ", ".join(cycle[:10]) + (f", … ({len(cycle)} nodes)" if len(cycle) > 10 else "")
            warnings.append(f"hierarchy cycle broken: {shown}")

        levels = list(tags.level)
        for node, level in self.explicit_levels.items():
            if node in index:
                levels[index[node]] = level

        labels_out, aliases_out = [], []
        no_label = 0
        for node in ordered:
            candidates = self.labels.get(node, ())
            chosen = choose_label(candidates, self.language_preference) if candidates else None
            if chosen is None:
                no_label += 1
                label, lang = name_from_iri(node), ""
            else:
                label, lang = chosen
            labels_out.append(label)
            aliases_out.append(collect_aliases(label, lang, candidates, self.aliases.get(node, ()),
                                               self.language_preference))
        if ordered and no_label == len(ordered):
            warnings.append("no node has a label (rdfs:label, skos:prefLabel, schema:name, …); names are derived "
                            "from the IRIs")

        nodes = pa.table({
            "node_id": pa.array(ordered, pa.string()),
            "label": pa.array(labels_out, pa.string()),
            "aliases": pa.array(aliases_out, pa.list_(pa.string())),
            "level": pa.array(levels, pa.string()),
            "depth": pa.array(tags.depth, pa.int32()),
            "parent_ids": pa.array([[ordered[p] for p in ps] for ps in tags.parents], pa.list_(pa.string())),
            "branch_id": pa.array([ordered[b] if b is not None else None for b in tags.branch], pa.string()),
            "types": pa.array([sorted(self.types.get(node, ())) for node in ordered], pa.list_(pa.string())),
            "domain": pa.array([domain] * len(ordered), pa.string()),
        }, schema=NODES_SCHEMA)

        inverse = self._inverse_relations(set(all_facts["relation_id"].to_pylist()))
        triples = self._triples_table(all_facts, ordered, levels, nodes["branch_id"].to_pylist(), index,
                                      inverse, domain)
        relations = self._relations_table(triples, inverse, domain)
        level_counts = Counter(levels)
        counts: dict[str, object] = {
            "statements_read": self.statements_read,
            "nodes": nodes.num_rows,
            "facts": triples.num_rows,
            "relations": relations.num_rows,
            "nodes_per_level": {lvl: level_counts.get(lvl, 0) for lvl in LEVELS},
            "hierarchy_edges": len(edges),
            "max_depth": max((d for d in tags.depth if d is not None), default=None),
            "longest_chain": tags.longest_chain,
            "nodes_without_label": no_label,
        }
        return KnowledgeGraph(nodes=nodes, triples=triples, relations=relations, hierarchy_method=tags.method,
                              cycles=cycles, dropped_hierarchy_edges=tags.dropped_edges, warnings=warnings,
                              counts=counts)

    def _inverse_relations(self, relations: set[str]) -> dict[str, str]:
        inverse: dict[str, str] = {}
        for rel in sorted(relations):
            if rel in KNOWN_INVERSES:
                inverse[rel] = KNOWN_INVERSES[rel]
            if SYMMETRIC_PROPERTY in self.property_kinds.get(rel, ()):
                inverse[rel] = rel
        for a, b in sorted(self.inverse_pairs):
            inverse.setdefault(a, b)
            inverse.setdefault(b, a)
        return inverse

    def _triples_table(self, facts: pa.Table, ordered: list[str], levels: list[str], branches: list[str | None],
                       index: dict[str, int], inverse: dict[str, str], domain: str) -> pa.Table:
        facts = facts.sort_by([("subject_id", "ascending"), ("relation_id", "ascending"),
                               ("object_id", "ascending"), ("kind", "ascending"),
                               ("object_datatype", "ascending"), ("object_lang", "ascending")])
        subjects = facts["subject_id"].to_pylist()
        relations = facts["relation_id"].to_pylist()
        objects = facts["object_id"].to_pylist()
        kinds = facts["kind"].to_pylist()
        datatypes = facts["object_datatype"].to_pylist()
        langs = facts["object_lang"].to_pylist()
        triple_ids, subject_levels, object_levels, branch_ids = [], [], [], []
        for s, r, o, k, dt, lang in zip(subjects, relations, objects, kinds, datatypes, langs, strict=True):
            triple_ids.append(triple_id(s, r, o, k == LITERAL, dt, lang))
            si = index[s]
            subject_levels.append(levels[si])
            branch_ids.append(branches[si])
            oi = index.get(o) if k == NODE else None
            object_levels.append(levels[oi] if oi is not None else None)
        sources = [self.sources[i] for i in facts["source_index"].to_pylist()]
        return pa.table({
            "triple_id": pa.array(triple_ids, pa.string()),
            "subject_id": facts["subject_id"],
            "relation_id": facts["relation_id"],
            "object_id": facts["object_id"],
            "object_is_literal": pc.equal(facts["kind"], LITERAL),
            "object_datatype": facts["object_datatype"],
            "object_lang": facts["object_lang"],
            "subject_level": pa.array(subject_levels, pa.string()),
            "object_level": pa.array(object_levels, pa.string()),
            "branch_id": pa.array(branch_ids, pa.string()),
            "inverse_relation_id": pa.array([inverse.get(r) for r in relations], pa.string()),
            "domain": pa.array([domain] * facts.num_rows, pa.string()),
            "source": pa.array(sources, pa.string()),
        }, schema=TRIPLES_SCHEMA)

    def _relations_table(self, triples: pa.Table, inverse: dict[str, str], domain: str) -> pa.Table:
        counts = Counter(triples["relation_id"].to_pylist())
        rels = sorted(counts)
        hierarchy_predicates = {p for _, p, _, _, _ in self.hierarchy}
        labels = []
        for rel in rels:
            chosen = choose_label(self.labels[rel], self.language_preference) if rel in self.labels else None
            if chosen and " " not in chosen[0] and chosen[0] != chosen[0].lower():
                chosen = (relation_name_from_iri(chosen[0]), chosen[1])  # schema.org labels read `isPartOf`
            labels.append(chosen[0] if chosen else RELATION_LABELS.get(rel) or relation_name_from_iri(rel))
        return pa.table({
            "relation_id": pa.array(rels, pa.string()),
            "label": pa.array(labels, pa.string()),
            "inverse_relation_id": pa.array([inverse.get(r) for r in rels], pa.string()),
            "is_hierarchy": pa.array([r in hierarchy_predicates for r in rels], pa.bool_()),
            "domain_ids": pa.array([sorted(self.rel_domains.get(r, ())) for r in rels], pa.list_(pa.string())),
            "range_ids": pa.array([sorted(self.rel_ranges.get(r, ())) for r in rels], pa.list_(pa.string())),
            "fact_count": pa.array([counts[r] for r in rels], pa.int64()),
            "domain": pa.array([domain] * len(rels), pa.string()),
        }, schema=RELATIONS_SCHEMA)


def triple_id(subject: str, relation: str, obj: str, is_literal: bool, datatype: str | None,
              lang: str | None) -> str:
    """Stable id of a fact: 24 hex digits of BLAKE2b over its three terms (a literal with datatype and language)."""
    o_key = f"L{obj}\x1f{datatype or ''}\x1f{lang or ''}" if is_literal else f"N{obj}"
    return hashlib.blake2b(f"{subject}\x1f{relation}\x1f{o_key}".encode(), digest_size=12).hexdigest()
