"""The ingest accumulator: statements in (from any reader), one merged graph of labelled entities and facts out.

Readers feed statements; `GraphAccumulator.finish()` applies the fact rule (see `vocab`), chooses labels, computes the
hierarchy and returns a `KnowledgeGraph` whose tables the next stages consume.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .hierarchy import LEVELS, compute_hierarchy
from .ids import hex_ids, mix_triple, term_digests
from .labels import choose_label, collect_aliases, name_from_iri, relation_name_from_iri
from .vocab import (
    ANNOTATION_PROPERTY,
    DOCUMENT_CLASSES,
    KNOWN_INVERSES,
    LABEL_RANK,
    OWL_INTERSECTION_OF,
    PROPERTY_CLASSES,
    RDF_FIRST,
    RDF_PROPERTY,
    RDF_REST,
    RDFS_SUBCLASS_OF,
    RELATION_LABELS,
    SYMMETRIC_PROPERTY,
    Role,
    is_machinery_class,
    predicate_role,
)

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


@dataclass
class GraphSlice:
    """A parallel reader's accumulation, in a shape that pickles fast (see GraphAccumulator.detach)."""

    keys: list[str]
    facts: tuple[np.ndarray, ...]
    fact_predicate_keys: list[str]
    hierarchy: list[tuple[str, str, str, Role, int]]
    labels: dict[str, list[tuple[int, str, str]]]
    aliases: dict[str, list[tuple[str, str]]]
    property_kinds: dict[str, set[str]]
    property_classes: set[str]
    inverse_pairs: set[tuple[str, str]]
    rel_domains: dict[str, set[str]]
    rel_ranges: dict[str, set[str]]
    documents: set[str]
    sources: list[str]
    statements_read: int
    class_expressions: list[tuple[str, str, str]]


class TermIds(dict[str, int]):
    """Dense integer ids for terms, assigned in first-seen order: `ids[key]` interns a new key on first sight.

    A node's key is its IRI or JSON id; a literal's key is `\x00<lexical form>\x1f<datatype>\x1f<language>`, which no
    IRI can start with.
    """

    def __init__(self) -> None:
        super().__init__()
        self.keys_in_order: list[str] = []

    def __missing__(self, key: str) -> int:
        index = self[key] = len(self.keys_in_order)
        self.keys_in_order.append(key)
        return index


def literal_term_key(value: str, datatype: str, lang: str | None) -> str:
    return f"\x00{value}\x1f{datatype}\x1f{lang or ''}"


class GraphAccumulator:
    """Collects statements from every input file. Facts are held as integer term ids in flat lists, so a million
    facts cost tens of megabytes, and the finishing step works on NumPy arrays rather than Python objects."""

    def __init__(self, language_preference: Sequence[str] = ("en",)) -> None:
        self.language_preference = [lang.lower() for lang in language_preference]
        self.term_ids = TermIds()
        self.sources: list[str] = []
        # Candidate facts, columnar: subject, predicate and object term ids, and the source index.
        self.f_subject: list[int] = []
        self.f_predicate: list[int] = []
        self.f_object: list[int] = []
        self.f_source: list[int] = []
        # Facts merged from parallel readers, already as global term ids: (subject, predicate, object, source).
        self.fact_blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        # Hierarchy statements as written (subject, predicate, object, role, source index).
        self.hierarchy: list[tuple[str, str, str, Role, int]] = []
        self.labels: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        self.aliases: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.property_kinds: dict[str, set[str]] = defaultdict(set)
        self.inverse_pairs: set[tuple[str, str]] = set()
        self.rel_domains: dict[str, set[str]] = defaultdict(set)
        self.rel_ranges: dict[str, set[str]] = defaultdict(set)
        self.explicit_levels: dict[str, str] = {}
        self.explicit_nodes: set[str] = set()
        self.documents: set[str] = set()
        # (subject, predicate, object) of owl:equivalentClass to a blank node and of the intersection lists below it.
        self.class_expressions: list[tuple[str, str, str]] = []
        # Classes declared subclasses of rdf:Property (or of another property class): their instances are relations.
        self.property_classes: set[str] = set()
        self.statements_read = 0
        # predicate IRI → (role, term id); the role is None for predicates of candidate facts
        self.predicates: dict[str, tuple[Role | None, int]] = {}

    # -- feeding ---------------------------------------------------------------------------------------------------

    def add_source(self, name: str) -> int:
        self.sources.append(name)
        return len(self.sources) - 1

    def predicate(self, iri: str) -> tuple[Role | None, int]:
        try:
            return self.predicates[iri]
        except KeyError:
            entry = self.predicates[iri] = (predicate_role(iri), self.term_ids[iri])
            return entry

    def add_fact(self, subject: str, predicate: str, obj: str, source: int) -> None:
        ids = self.term_ids
        self.f_subject.append(ids[subject])
        self.f_predicate.append(ids[predicate])
        self.f_object.append(ids[obj])
        self.f_source.append(source)

    def add_literal_fact(self, subject: str, predicate: str, value: str, datatype: str, lang: str | None,
                         source: int) -> None:
        ids = self.term_ids
        self.f_subject.append(ids[subject])
        self.f_predicate.append(ids[predicate])
        self.f_object.append(ids[literal_term_key(value, datatype, lang)])
        self.f_source.append(source)

    def add_schema_statement(self, role: Role, subject: str, predicate: str, obj: str | None,
                             literal: tuple[str, str] | None, source: int) -> None:
        """A statement whose predicate has a role (label, hierarchy, schema, machinery).

        `obj` is a named node, `literal` a (text, language) pair; one of them is None for blank or other objects.
        """
        if role is Role.LABEL:
            if literal is not None:
                self.labels[subject].append((LABEL_RANK[predicate], literal[1], literal[0]))
        elif role is Role.ALIAS:
            if literal is not None:
                self.aliases[subject].append((literal[1], literal[0]))
        elif obj is None:
            return
        elif role is Role.TYPE:
            if obj in PROPERTY_CLASSES:
                self.property_kinds[subject].add(obj)
            elif obj in DOCUMENT_CLASSES:
                self.documents.add(subject)
            elif not is_machinery_class(obj):
                self.hierarchy.append((subject, predicate, obj, role, source))
        elif role in (Role.SUBCLASS_OF, Role.BROADER, Role.NARROWER):
            if not is_machinery_class(obj):
                self.hierarchy.append((subject, predicate, obj, role, source))
            elif role is Role.SUBCLASS_OF and obj in PROPERTY_CLASSES:
                self.property_classes.add(subject)  # e.g. brick:Relationship ⊑ rdf:Property
        elif role is Role.INVERSE_OF:
            self.inverse_pairs.add((subject, obj))
            self.property_kinds[subject].add(RDF_PROPERTY)
            self.property_kinds[obj].add(RDF_PROPERTY)
        elif role is Role.SUBPROPERTY_OF:
            self.property_kinds[subject].add(RDF_PROPERTY)
            self.property_kinds[obj].add(RDF_PROPERTY)
        elif role is Role.DOMAIN:
            self.rel_domains[subject].add(obj)
            self.property_kinds[subject].add(RDF_PROPERTY)
        elif role is Role.RANGE:
            self.rel_ranges[subject].add(obj)
            self.property_kinds[subject].add(RDF_PROPERTY)

    def add_explicit_node(self, node_id: str, level: str | None) -> None:
        self.explicit_nodes.add(node_id)
        if level is not None:
            self.explicit_levels[node_id] = level

    def detach(self) -> GraphSlice:
        """What a parallel reader sends back: term keys once, facts as arrays, the (smaller) schema statements."""
        return GraphSlice(
            keys=self.term_ids.keys_in_order,
            facts=tuple(np.array(c, dtype=np.int32) for c in (self.f_subject, self.f_predicate, self.f_object,
                                                               self.f_source)),
            fact_predicate_keys=[key for key, (role, _pid) in self.predicates.items() if role is None],
            hierarchy=self.hierarchy, labels=dict(self.labels), aliases=dict(self.aliases),
            property_kinds=dict(self.property_kinds), property_classes=self.property_classes,
            inverse_pairs=self.inverse_pairs, rel_domains=dict(self.rel_domains), rel_ranges=dict(self.rel_ranges),
            documents=self.documents, sources=self.sources, statements_read=self.statements_read,
            class_expressions=self.class_expressions)

    def merge(self, part: GraphSlice) -> None:
        """Fold in what a parallel reader accumulated from one slice of a file (its term ids are local to it)."""
        ids = self.term_ids
        remap = np.array([ids[key] for key in part.keys], dtype=np.int64)
        source_remap = [self.sources.index(name) if name in self.sources else self.add_source(name)
                        for name in part.sources]
        for key in part.fact_predicate_keys:
            self.predicate(key)
        subject, predicate, obj, source = part.facts
        self.fact_blocks.append((remap[subject], remap[predicate], remap[obj],
                                 np.array(source_remap, dtype=np.int64)[source]))
        self.hierarchy.extend((s, p, o, role, source_remap[src]) for s, p, o, role, src in part.hierarchy)
        for node, values in part.labels.items():
            self.labels[node].extend(values)
        for node, aliases in part.aliases.items():
            self.aliases[node].extend(aliases)
        for table_self, table_part in ((self.property_kinds, part.property_kinds),
                                       (self.rel_domains, part.rel_domains), (self.rel_ranges, part.rel_ranges)):
            for key, values in table_part.items():
                table_self[key].update(values)
        self.property_classes |= part.property_classes
        self.inverse_pairs |= part.inverse_pairs
        self.documents |= part.documents
        self.statements_read += part.statements_read
        self.class_expressions.extend(part.class_expressions)

    # -- finishing -------------------------------------------------------------------------------------------------

    def _told_superclasses(self) -> None:
        """`C owl:equivalentClass [ owl:intersectionOf (B R …) ]` entails C ⊑ B for every named conjunct B (what
        Protégé shows as C's asserted parents); they join the hierarchy as rdfs:subClassOf statements."""
        if not self.class_expressions:
            return
        equivalents: list[tuple[str, str]] = []
        intersection: dict[str, str] = {}
        first: dict[str, str] = {}
        rest: dict[str, str] = {}
        for s, p, o in self.class_expressions:
            if p == OWL_INTERSECTION_OF:
                intersection[s] = o
            elif p == RDF_FIRST:
                first[s] = o
            elif p == RDF_REST:
                rest[s] = o
            else:
                equivalents.append((s, o))
        told: set[tuple[str, str, str]] = set()
        for cls, expression in equivalents:
            cell = intersection.get(expression)
            seen = set()
            while cell is not None and cell not in seen:  # a malformed, cyclic list must not loop
                seen.add(cell)
                member = first.get(cell)
                if member is not None and not member.startswith("_:") and member != cls \
                        and not is_machinery_class(member):
                    # the blank node's key names its file: `_:<file>/<label>`
                    told.add((cls, member, expression[2:].split("/", 1)[0]))
                cell = rest.get(cell)
        stated = {(s, o) for s, p, o, role, _src in self.hierarchy if role is Role.SUBCLASS_OF}
        sources: dict[str, int] = {}
        for cls, member, file in sorted(told):
            if (cls, member) not in stated:
                if file not in sources:
                    sources[file] = self.add_source(f"{file} (owl:equivalentClass)")
                self.hierarchy.append((cls, RDFS_SUBCLASS_OF, member, Role.SUBCLASS_OF, sources[file]))
                stated.add((cls, member))
        self.class_expressions = []

    def finish(self, domain: str) -> KnowledgeGraph:
        """Apply the fact rule, merge duplicates, tag the hierarchy and build the output tables (once: the
        accumulated fact lists are released as soon as they are arrays)."""
        warnings: list[str] = []
        self._told_superclasses()
        ids = self.term_ids
        annotation_properties = {p for p, kinds in self.property_kinds.items() if ANNOTATION_PROPERTY in kinds}
        fact_predicates = {pid for role, pid in self.predicates.values() if role is None}
        fact_predicates.update(set(self.f_predicate))  # JSON facts bypass the predicate cache
        for block in self.fact_blocks:
            fact_predicates.update(np.unique(block[1]).tolist())
        keys = ids.keys_in_order
        property_classes = self._property_class_closure()
        properties = set(self.property_kinds) | {keys[pid] for pid in fact_predicates} | property_classes
        types: dict[str, set[str]] = defaultdict(set)  # rdf:type statements are hierarchy rows; read them back
        for s, _p, o, role, _src in self.hierarchy:
            if role is Role.TYPE:
                types[s].add(o)
        properties |= {node for node, classes in types.items() if not classes.isdisjoint(property_classes)}
        not_entities = (properties - self.explicit_nodes) | self.documents

        # Hierarchy statements join the candidate facts as ids (this may mint ids, so it comes first).
        hierarchy_rows = [(s, p, o, role, src) for s, p, o, role, src in self.hierarchy
                          if s not in not_entities and o not in not_entities]
        # A self-loop is reported as a cycle, but "A is a kind of A" is not a fact worth probing.
        hierarchy_facts = [row for row in hierarchy_rows if row[0] != row[2]]
        h_subject = [ids[s] for s, _, _, _, _ in hierarchy_facts]
        h_predicate = [ids[p] for _, p, _, _, _ in hierarchy_facts]
        h_object = [ids[o] for _, _, o, _, _ in hierarchy_facts]
        for node in self.explicit_nodes:
            ids[node]
        n_terms = len(keys)

        blocked_subject = np.zeros(n_terms, dtype=bool)
        for key in not_entities:
            if key in ids:
                blocked_subject[ids[key]] = True
        blocked_predicate = np.zeros(n_terms, dtype=bool)
        for key in annotation_properties:
            if key in ids:
                blocked_predicate[ids[key]] = True
        blocks = [tuple(np.array(column, dtype=np.int64) for column in
                        (self.f_subject, self.f_predicate, self.f_object, self.f_source)), *self.fact_blocks]
        subject, predicate, obj, source = (np.concatenate([block[i] for block in blocks]) for i in range(4))
        del blocks
        self.f_subject, self.f_predicate, self.f_object, self.f_source, self.fact_blocks = [], [], [], [], []
        keep = ~blocked_subject[subject] & ~blocked_predicate[predicate]
        subject = np.concatenate([subject[keep], np.array(h_subject, dtype=np.int64)])
        predicate = np.concatenate([predicate[keep], np.array(h_predicate, dtype=np.int64)])
        obj = np.concatenate([obj[keep], np.array(h_object, dtype=np.int64)])
        source = np.concatenate([source[keep], np.array([r[4] for r in hierarchy_facts], dtype=np.int64)])

        is_literal = np.fromiter((k.startswith("\x00") for k in keys), dtype=bool, count=n_terms)
        # Arrow sorts UTF-8 bytes, which is code-point order: the same order as Python's sorted().
        rank = np.empty(n_terms, dtype=np.int64)
        rank[pc.sort_indices(pa.array(keys, pa.string())).to_numpy()] = np.arange(n_terms)
        # Sort by (subject, relation, object) as strings; a duplicate fact keeps its first source.
        order = np.lexsort((source, rank[obj], rank[predicate], rank[subject]))
        subject, predicate, obj, source = subject[order], predicate[order], obj[order], source[order]
        first = np.ones(len(subject), dtype=bool)
        first[1:] = (subject[1:] != subject[:-1]) | (predicate[1:] != predicate[:-1]) | (obj[1:] != obj[:-1])
        subject, predicate, obj, source = subject[first], predicate[first], obj[first], source[first]

        # Entity nodes: everything a fact mentions as a node, plus nodes a JSON file lists explicitly.
        is_node = np.zeros(n_terms, dtype=bool)
        is_node[subject] = True
        is_node[obj[~is_literal[obj]]] = True
        for node in self.explicit_nodes:
            is_node[ids[node]] = True
        node_terms = np.flatnonzero(is_node)
        node_terms = node_terms[np.argsort(rank[node_terms], kind="stable")]
        ordered = [keys[i] for i in node_terms.tolist()]
        index = dict(zip(ordered, range(len(ordered)), strict=True))
        node_of_term = np.full(n_terms, -1, dtype=np.int64)
        node_of_term[node_terms] = np.arange(len(node_terms))

        edges: set[tuple[int, int]] = set()
        for s, _p, o, role, _src in hierarchy_rows:
            if role is Role.NARROWER:
                s, o = o, s
            if s in index and o in index:
                edges.add((index[s], index[o]))
        fact_pairs: list[tuple[int, int]] = []
        if not edges:
            node_rows = ~is_literal[obj]
            fact_pairs = [(index[keys[s]], index[keys[o]])
                          for s, o in zip(subject[node_rows].tolist(), obj[node_rows].tolist(), strict=True)]
        tags = compute_hierarchy(len(ordered), sorted(edges), ordered, fact_pairs)
        if tags.method == "degree":
            warnings.append("the KG has no hierarchy edges (rdfs:subClassOf, skos:broader/narrower, rdf:type, or a "
                            "JSON parent); levels come from degree centrality over the fact graph")
        cycles = [[ordered[i] for i in cycle] for cycle in tags.cycles]
        for cycle in cycles:
            shown = ", ".join(cycle[:10]) + (f", … ({len(cycle)} nodes)" if len(cycle) > 10 else "")
            warnings.append(f"hierarchy cycle broken: {shown}")

        levels = list(tags.level)
        depth, branch = list(tags.depth), list(tags.branch)
        for node, level in self.explicit_levels.items():
            if node in index:
                i = index[node]
                levels[i] = level
                if level == "root" and depth[i] is None:  # a declared root outside any hierarchy edge
                    depth[i], branch[i] = 0, i
        branches = [ordered[b] if b is not None else None for b in branch]
        nodes, no_label = self._nodes_table(ordered, levels, depth, tags.parents, branches, types, domain)
        if ordered and no_label == len(ordered):
            warnings.append("no node has a label (rdfs:label, skos:prefLabel, schema:name, …); names are derived "
                            "from the IRIs")

        inverse = self._inverse_relations({keys[p] for p in np.unique(predicate).tolist()})
        triples = self._triples_table(subject, predicate, obj, source, is_literal, node_of_term, levels, branches,
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
            "max_depth": max((d for d in depth if d is not None), default=None),
            "longest_chain": tags.longest_chain,
            "nodes_without_label": no_label,
        }
        return KnowledgeGraph(nodes=nodes, triples=triples, relations=relations, hierarchy_method=tags.method,
                              cycles=cycles, dropped_hierarchy_edges=tags.dropped_edges, warnings=warnings,
                              counts=counts)

    def _property_class_closure(self) -> set[str]:
        """Declared property classes plus every class below one of them in the subClassOf hierarchy."""
        below: dict[str, list[str]] = defaultdict(list)
        for s, _p, o, role, _src in self.hierarchy:
            if role is Role.SUBCLASS_OF:
                below[o].append(s)
        found = set(self.property_classes)
        stack = list(found)
        while stack:
            for child in below.get(stack.pop(), ()):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def _nodes_table(self, ordered: list[str], levels: list[str], depth: list[int | None],
                     parents: list[list[int]], branches: list[str | None], types: dict[str, set[str]],
                     domain: str) -> tuple[pa.Table, int]:
        labels_out, aliases_out = [], []
        no_label = 0
        preference = self.language_preference
        all_labels, all_aliases = self.labels, self.aliases
        for node in ordered:
            candidates = all_labels.get(node, ())
            chosen = choose_label(candidates, preference) if candidates else None
            if chosen is None:
                no_label += 1
                label, lang = name_from_iri(node), ""
            else:
                label, lang = chosen
            labels_out.append(label)
            node_aliases = all_aliases.get(node, ())
            if len(candidates) <= 1 and not node_aliases:
                aliases_out.append([])
            else:
                aliases_out.append(collect_aliases(label, lang, candidates, node_aliases, preference))
        nodes = pa.table({
            "node_id": pa.array(ordered, pa.string()),
            "label": pa.array(labels_out, pa.string()),
            "aliases": pa.array(aliases_out, pa.list_(pa.string())),
            "level": pa.array(levels, pa.string()),
            "depth": pa.array(depth, pa.int32()),
            "parent_ids": pa.array([[ordered[p] for p in ps] for ps in parents], pa.list_(pa.string())),
            "branch_id": pa.array(branches, pa.string()),
            "types": pa.array([(sorted(types[node]) if len(types[node]) > 1 else list(types[node]))
                               if node in types else [] for node in ordered],
                              pa.list_(pa.string())),
            "domain": _constant(domain, len(ordered)),
        }, schema=NODES_SCHEMA)
        return nodes, no_label

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

    def _triples_table(self, subject: np.ndarray, predicate: np.ndarray, obj: np.ndarray, source: np.ndarray,
                       is_literal: np.ndarray, node_of_term: np.ndarray, levels: list[str],
                       branches: list[str | None], inverse: dict[str, str], domain: str) -> pa.Table:
        """Per-term columns built once, then gathered per fact with `take`: no Python work per fact."""
        keys = self.term_ids.keys_in_order
        values = list(keys)
        datatypes: list[str | None] = [None] * len(keys)
        langs: list[str | None] = [None] * len(keys)
        digest_keys = ["N" + key for key in keys]
        for t in np.flatnonzero(is_literal).tolist():
            value, datatype, lang = keys[t][1:].split("\x1f")
            values[t], datatypes[t], langs[t] = value, datatype, lang or None
            digest_keys[t] = "L" + keys[t][1:]
        lo, hi = term_digests(digest_keys)
        triple_lo, triple_hi = mix_triple((lo[subject], hi[subject]), (lo[predicate], hi[predicate]),
                                          (lo[obj], hi[obj]))
        s_idx, p_idx, o_idx = pa.array(subject), pa.array(predicate), pa.array(obj)
        value_arr = pa.array(values, pa.string())
        level_arr = pa.array(levels, pa.string())
        subject_node = pa.array(node_of_term[subject])
        object_node = node_of_term[obj]
        object_node_idx = pa.array(object_node, mask=object_node < 0)
        return pa.table({
            "triple_id": hex_ids(triple_lo, triple_hi),
            "subject_id": value_arr.take(s_idx),
            "relation_id": value_arr.take(p_idx),
            "object_id": value_arr.take(o_idx),
            "object_is_literal": pa.array(is_literal[obj]),
            "object_datatype": pa.array(datatypes, pa.string()).take(o_idx),
            "object_lang": pa.array(langs, pa.string()).take(o_idx),
            "subject_level": level_arr.take(subject_node),
            "object_level": level_arr.take(object_node_idx),
            "branch_id": pa.array(branches, pa.string()).take(subject_node),
            "inverse_relation_id": pa.array([inverse.get(k) for k in keys], pa.string()).take(p_idx),
            "domain": _constant(domain, len(subject)),
            "source": pa.array(self.sources, pa.string()).take(pa.array(source)),
        }, schema=TRIPLES_SCHEMA)

    def _relations_table(self, triples: pa.Table, inverse: dict[str, str], domain: str) -> pa.Table:
        counts = {row["values"]: row["counts"] for row in pc.value_counts(triples["relation_id"]).to_pylist()}
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
            "domain": _constant(domain, len(rels)),
        }, schema=RELATIONS_SCHEMA)


def _constant(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value])).cast(pa.string())
