"""Staged generation of a checked hierarchical KG through an LLM: roots → sub-themes → relation vocabulary → entities
→ facts → a second phrasing of every question, then the checks, then Turtle and a report.

Every stage's requests go out together (bounded concurrency) and their answers are applied in the order the requests
were made, so the KG depends only on the answers, never on timing. Checks before a fact is kept: its relation is in
the vocabulary fixed before any fact was asked, subject and object respect the relation's domain and range, the
object is an entity of the KG (names matched fuzzily, aliases included), the same question asked in another phrasing
gives the same value, and no kept fact of a functional relation (or of one whose inverse is functional) says
otherwise. What is dropped, and why, goes into the report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from knowledgesmith.builder import __version__
from knowledgesmith.builder.atomic import atomic_write_bytes
from knowledgesmith.builder.errors import KsUserError

from .endpoint import Answer, ChatEndpoint
from .names import NameIndex, clean_name, local_name, normalize, relation_id
from .turtle import literal, write_turtle

ROOT, INTERMEDIATE, LEAF = "root", "intermediate", "leaf"
STAGES = ("roots", "subthemes", "relations", "leaves", "facts", "verify")
MAX_CANDIDATES = 100  # entity names listed per relation in a facts prompt


@dataclass
class GenerationConfig:
    """What to generate: the domain and the size of each level."""

    domain: str
    roots: int = 8
    subthemes: int = 6
    leaves: int = 12
    relations: int | None = None  # default: the relation guide's `count`
    match_threshold: float = 90.0  # rapidfuzz ratio above which two names denote the same thing
    relation_guide: Path | None = None
    namespace: str | None = None  # default https://knowledgesmith.org/kg/<domain slug>/


@dataclass
class Prompts:
    """The data files that drive the prompts: templates, schemas, relation guide, and their sha256."""

    system: str
    templates: dict[str, jinja2.Template]
    schemas: dict[str, dict[str, Any]]
    guide: dict[str, Any]
    hashes: dict[str, str]

    @classmethod
    def load(cls, relation_guide: Path | None = None) -> Prompts:
        files = resources.files("knowledgesmith.kggen")
        texts = {name: files.joinpath(name).read_text(encoding="utf-8")
                 for name in ("prompts.yaml", "schemas.yaml", "relations.yaml")}
        if relation_guide is not None:
            try:
                texts["relations.yaml"] = relation_guide.read_text(encoding="utf-8")
            except OSError as err:
                raise KsUserError(f"cannot read the relation guide: {err.strerror}", path=str(relation_guide)) \
                    from None
        prompts = yaml.safe_load(texts["prompts.yaml"])
        schemas = yaml.safe_load(texts["schemas.yaml"])
        try:
            guide = yaml.safe_load(texts["relations.yaml"])
            ok = (isinstance(guide, dict) and isinstance(guide.get("guidelines"), str)
                  and isinstance(guide.get("literal_ranges"), dict) and int(guide.get("count", 0)) > 0)
        except (yaml.YAMLError, TypeError, ValueError):
            ok = False
        if not ok:
            raise KsUserError("a relation guide is YAML with 'count', 'literal_ranges' and 'guidelines' (see the "
                              "shipped relations.yaml)", path=str(relation_guide or "relations.yaml"))
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
        templates = {stage: env.from_string(prompts["stages"][stage]) for stage in STAGES}
        hashes = {name: hashlib.sha256(text.encode("utf-8")).hexdigest() for name, text in texts.items()}
        return cls(prompts["system"].strip(), templates, schemas, guide, hashes)

    def messages(self, stage: str, **variables: Any) -> list[dict[str, str]]:
        schema = json.dumps(self.schemas[stage], ensure_ascii=False, sort_keys=True)
        user = self.templates[stage].render(schema=schema, **variables).strip()
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


@dataclass
class Item:
    """A root, a sub-theme or an entity."""

    label: str
    level: str
    parents: list[int]  # roots of a sub-theme, sub-themes (classes) of an entity
    aliases: list[str] = field(default_factory=list)
    iri: str = ""


@dataclass
class Relation:
    id: str
    label: str
    domain: int  # a sub-theme
    range: int | str  # a sub-theme, or a literal range name ("integer", "year", "date")
    functional: bool
    inverse_id: str = ""
    inverse_label: str = ""
    inverse_functional: bool = False

    @property
    def literal(self) -> bool:
        return isinstance(self.range, str)


@dataclass
class Candidate:
    """A proposed fact in the relation's own direction, with the (subject, relation id) questions that proposed it."""

    subject: int
    relation: str
    value: int | tuple[str, str]  # an entity, or (datatype, lexical form)
    asked: list[tuple[int, str, int | tuple[str, str]]] = field(default_factory=list)


@dataclass
class GeneratedKG:
    turtle: str
    report: dict[str, Any]


class _Generation:
    def __init__(self, config: GenerationConfig, endpoint: ChatEndpoint, prompts: Prompts, progress: bool) -> None:
        self.config = config
        self.endpoint = endpoint
        self.prompts = prompts
        self.progress = progress
        self.roots: list[Item] = []
        self.subthemes: list[Item] = []
        self.entities: list[Item] = []
        self.index = {level: NameIndex(config.match_threshold) for level in (ROOT, INTERMEDIATE, LEAF)}
        self.relations: dict[str, Relation] = {}
        self.by_id: dict[str, tuple[Relation, bool]] = {}  # relation or inverse id → (relation, is_inverse)
        self.id_of_label: dict[str, str] = {}  # models sometimes answer with the label instead of the id
        self.drops: list[dict[str, str]] = []
        self.merges: list[dict[str, str]] = []
        self.answers: list[Answer] = []
        self.stage_cost: dict[str, dict[str, int]] = {}
        self.literal_types: dict[str, str] = {str(k).casefold(): str(v)
                                              for k, v in prompts.guide["literal_ranges"].items()}

    # -- plumbing ------------------------------------------------------------------------------------------------
    def ask(self, stage: str, variable_sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        from tqdm import tqdm

        requests = [(self.prompts.messages(stage, domain=self.config.domain, **v), self.prompts.schemas[stage])
                    for v in variable_sets]
        with tqdm(total=len(requests), desc=f"ks-kg {stage}", unit="req", disable=not self.progress,
                  leave=False) as bar:
            answers = self.endpoint.map_json(requests, stage=stage, on_done=lambda: bar.update(1))
        self.answers.extend(answers)
        cost = self.stage_cost.setdefault(stage, {"requests": 0, "tokens": 0})
        cost["requests"] += len(answers)
        cost["tokens"] += sum(a.usage.get("total_tokens", 0) for a in answers)
        return [a.data for a in answers]

    def drop(self, stage: str, kind: str, item: str, reason: str) -> None:
        self.drops.append({"stage": stage, "kind": kind, "item": item, "reason": reason})

    def _add_item(self, items: list[Item], level: str, name: str, aliases: list[str], parent: int | None) -> int:
        idx = len(items)
        items.append(Item(name, level, [] if parent is None else [parent]))
        self.index[level].add(idx, name)
        self._merge_aliases(items[idx], level, idx, aliases)
        return idx

    def _merge_aliases(self, item: Item, level: str, idx: int, aliases: list[str]) -> None:
        known = {normalize(item.label), *map(normalize, item.aliases)}
        for alias in aliases:
            alias = clean_name(alias)
            key = normalize(alias)
            if not key or key in known:
                continue
            # an alias that already names another item of the level would make both ambiguous: leave it out
            other = self.index[level].find(alias)
            if other is not None and other != idx:
                continue
            known.add(key)
            item.aliases.append(alias)
            self.index[level].add(idx, alias)

    def _names_other_level(self, name: str, level: str) -> str | None:
        for other, items in ((ROOT, self.roots), (INTERMEDIATE, self.subthemes), (LEAF, self.entities)):
            if other != level:
                hit = self.index[other].find(name)
                if hit is not None:
                    return f"{items[hit].label!r} ({'sub-theme' if other == INTERMEDIATE else other})"
        return None

    def _collect(self, stage: str, level: str, items: list[Item], entries: list[dict[str, Any]], parent: int | None,
                 limit: int) -> None:
        """Add a listing's names to a level: de-duplicated (aliases merged), not naming another level, at most
        `limit` per listing."""
        taken = 0
        for entry in entries:
            name = clean_name(entry["name"])
            aliases = [a for a in entry["aliases"] if isinstance(a, str)]
            if not normalize(name):
                self.drop(stage, "empty_name", repr(entry["name"]), "no usable name")
                continue
            same = self.index[level].find(name)
            if same is not None:
                kept = items[same]
                self.merges.append({"level": level, "name": name, "into": kept.label})
                self._merge_aliases(kept, level, same, [name, *aliases])
                if parent is not None and parent not in kept.parents and taken < limit:
                    kept.parents.append(parent)  # the same thing under two parents: multiple parents are kept
                    taken += 1
                continue
            clash = self._names_other_level(name, level)
            if clash is not None:
                self.drop(stage, "names_other_level", name, f"reads as {clash}")
                continue
            if taken >= limit:
                self.drop(stage, "over_limit", name, f"more than the {limit} asked for")
                continue
            self._add_item(items, level, name, aliases, parent)
            taken += 1

    # -- stages --------------------------------------------------------------------------------------------------
    def stage_roots(self) -> None:
        (answer,) = self.ask("roots", [{"n": self.config.roots}])
        self._collect("roots", ROOT, self.roots, answer["roots"], None, self.config.roots)
        if not self.roots:
            raise KsUserError(f"roots: the model named no root concept of {self.config.domain!r}")

    def stage_subthemes(self) -> None:
        answers = self.ask("subthemes", [{"n": self.config.subthemes, "root": r.label} for r in self.roots])
        for root, answer in enumerate(answers):
            self._collect("subthemes", INTERMEDIATE, self.subthemes, answer["subthemes"], root, self.config.subthemes)
        if not self.subthemes:
            raise KsUserError("subthemes: the model named no sub-theme")

    def stage_relations(self) -> None:
        count = self.config.relations or int(self.prompts.guide["count"])
        listing = [{"name": s.label, "root": " / ".join(self.roots[p].label for p in s.parents)}
                   for s in self.subthemes]
        (answer,) = self.ask("relations", [{"n": count, "subthemes": listing,
                                            "guidelines": self.prompts.guide["guidelines"].strip()}])
        for entry in answer["relations"]:
            rid = relation_id(entry["id"]) or relation_id(entry["label"])
            label = clean_name(entry["label"])
            what = rid or repr(entry["id"])
            if not rid or not label:
                self.drop("relations", "relation_unnamed", what, "no usable id or label")
                continue
            if rid in self.by_id:
                self.drop("relations", "relation_duplicate", rid, "the id is already taken")
                continue
            if len(self.relations) >= count:
                self.drop("relations", "over_limit", rid, f"more than the {count} asked for")
                continue
            domain = self.index[INTERMEDIATE].find(entry["domain"])
            if domain is None:
                self.drop("relations", "relation_domain", rid, f"domain {entry['domain']!r} is not a sub-theme")
                continue
            rng: int | str | None = entry["range"].strip().casefold()
            if rng not in self.literal_types:
                rng = self.index[INTERMEDIATE].find(entry["range"])
            if rng is None:
                self.drop("relations", "relation_range", rid,
                          f"range {entry['range']!r} is neither a sub-theme nor one of {sorted(self.literal_types)}")
                continue
            relation = Relation(rid, label, domain, rng, bool(entry["functional"]))
            inverse = relation_id(entry["inverse_id"])
            inverse_label = clean_name(entry["inverse_label"])
            if inverse and not relation.literal:
                symmetric = inverse == rid and domain == rng
                if symmetric or (inverse not in self.by_id and inverse != rid and inverse_label):
                    relation.inverse_id = inverse
                    relation.inverse_label = label if symmetric else inverse_label
                    relation.inverse_functional = relation.functional if symmetric else \
                        bool(entry["inverse_functional"])
                else:
                    self.drop("relations", "inverse_unusable", f"{rid} / {inverse}",
                              "the inverse id is taken or has no label; the relation is kept without it")
            self.relations[rid] = relation
            self.by_id[rid] = (relation, False)
            self.id_of_label.setdefault(normalize(label), rid)
            if relation.inverse_id and relation.inverse_id != rid:
                self.by_id[relation.inverse_id] = (relation, True)
                self.id_of_label.setdefault(normalize(relation.inverse_label), relation.inverse_id)
        if not self.relations:
            raise KsUserError("relations: no proposed relation passed the checks (see the sub-theme names)")

    def stage_leaves(self) -> None:
        answers = self.ask("leaves", [{"n": self.config.leaves, "subtheme": s.label,
                                       "root": self.roots[s.parents[0]].label} for s in self.subthemes])
        for sub, answer in enumerate(answers):
            self._collect("leaves", LEAF, self.entities, answer["entities"], sub, self.config.leaves)

    def _class_label(self, item: Item) -> str:
        return " and ".join(self.subthemes[c].label for c in item.parents)

    def _range_text(self, cls: int | str) -> str:
        if isinstance(cls, str):
            return f"a literal {cls}"
        return _a(self.subthemes[cls].label)

    def _members(self, cls: int) -> list[int]:
        return [i for i, e in enumerate(self.entities) if cls in e.parents]

    def _asked_relations(self, entity: int) -> list[tuple[str, Relation, bool]]:
        """The relation ids a facts prompt offers for an entity: relations whose domain is one of its classes, and
        inverses whose range is."""
        classes = set(self.entities[entity].parents)
        out = []
        for rid, (relation, inverse) in self.by_id.items():
            if (relation.range if inverse else relation.domain) in classes:
                out.append((rid, relation, inverse))
        return out

    def _resolve(self, relation: Relation, inverse: bool, subject: int,
                 text: str) -> tuple[int | tuple[str, str] | None, str, str]:
        """Map an answer's object to an entity or a typed literal; (None, kind, reason) where that fails."""
        if relation.literal and not inverse:
            value = _parse_literal(str(relation.range), text)
            if value is None:
                return None, "range", f"{text!r} is not a {relation.range}"
            return (self.literal_types[str(relation.range)], value), "", ""
        want = relation.domain if inverse else relation.range
        assert isinstance(want, int)
        members = set(self._members(want))
        hit = self.index[LEAF].find(text, members)
        if hit is None:
            other = self.index[LEAF].find(text)
            if other is None:
                return None, "unknown_object", f"{text!r} is not an entity of the KG"
            is_a = _a(self._class_label(self.entities[other]))
            return None, "range", f"{self.entities[other].label!r} is {is_a}, not {_a(self.subthemes[want].label)}"
        if hit == subject:
            return None, "self_reference", "subject and object are the same entity"
        return hit, "", ""

    def _describe(self, subject: int, rid: str, value: int | tuple[str, str]) -> str:
        obj = self.entities[value].label if isinstance(value, int) else value[1]
        return f"{self.entities[subject].label} {rid} {obj}"

    def stage_facts(self) -> list[Candidate]:
        asked = [(e, self._asked_relations(e)) for e in range(len(self.entities))]
        asked = [(e, rels) for e, rels in asked if rels]
        variable_sets = []
        for e, rels in asked:
            listing = []
            for rid, relation, inverse in rels:
                other = relation.domain if inverse else relation.range
                names = [] if isinstance(other, str) else [self.entities[m].label for m in self._members(other)
                                                            if m != e][:MAX_CANDIDATES]
                listing.append({"id": rid, "label": relation.inverse_label if inverse else relation.label,
                                "range": self._range_text(other), "candidates": names})
            variable_sets.append({"entity": self.entities[e].label,
                                  "classes": self._class_label(self.entities[e]), "relations": listing})
        answers = self.ask("facts", variable_sets)
        candidates: dict[tuple[int, str, Any], Candidate] = {}
        for (e, rels), answer in zip(asked, answers, strict=True):
            offered = {rid for rid, _, _ in rels}
            for entry in answer["facts"]:
                rid, text = entry["relation"].strip(), clean_name(entry["object"])
                what = f"{self.entities[e].label} {rid} {text}"
                found = (self.by_id.get(rid) or self.by_id.get(relation_id(rid))
                         or self.by_id.get(self.id_of_label.get(normalize(rid), "")))
                if found is None:
                    self.drop("facts", "unknown_relation", what, f"{rid!r} is not in the relation vocabulary")
                    continue
                relation, inverse = found
                rid = relation.inverse_id if inverse else relation.id
                if rid not in offered:
                    want = relation.range if inverse else relation.domain
                    self.drop("facts", "domain", what, f"{self.entities[e].label!r} is "
                              f"{_a(self._class_label(self.entities[e]))}, not {self._range_text(want)}")
                    continue
                value, kind, reason = self._resolve(relation, inverse, e, text)
                if value is None:
                    self.drop("facts", kind, what, reason)
                    continue
                # a fact stated through the inverse is stored in the relation's own direction
                subject, obj = (value, e) if inverse else (e, value)
                assert isinstance(subject, int)
                key = (subject, relation.id, obj)
                if key not in candidates:
                    candidates[key] = Candidate(subject, relation.id, obj)
                if (e, rid, value) not in candidates[key].asked:
                    candidates[key].asked.append((e, rid, value))
        return list(candidates.values())

    def stage_verify(self, candidates: list[Candidate]) -> list[Candidate]:
        # one question per (subject, relation) asked, in the order the facts came
        pairs = list(dict.fromkeys((e, rid) for c in candidates for e, rid, _ in c.asked))
        variable_sets = []
        for e, rid in pairs:
            relation, inverse = self.by_id[rid]
            other = relation.domain if inverse else relation.range
            variable_sets.append({"entity": self.entities[e].label, "classes": self._class_label(self.entities[e]),
                                  "relation": {"id": rid, "label": relation.inverse_label if inverse
                                               else relation.label, "range": self._range_text(other),
                                               "literal": relation.literal and not inverse}})
        answers = self.ask("verify", variable_sets)
        confirmed: dict[tuple[int, str], set[Any]] = {}
        said: dict[tuple[int, str], list[str]] = {}
        for (e, rid), answer in zip(pairs, answers, strict=True):
            relation, inverse = self.by_id[rid]
            values = set()
            for text in answer["answers"]:
                value, _, _ = self._resolve(relation, inverse, e, clean_name(text))
                if value is not None:
                    values.add(value)
            confirmed[(e, rid)] = values
            said[(e, rid)] = [clean_name(t) for t in answer["answers"]]
        kept = []
        for c in candidates:
            if any(value in confirmed[(e, rid)] for e, rid, value in c.asked):
                kept.append(c)
                continue
            e, rid, value = c.asked[0]
            self.drop("verify", "self_consistency", self._describe(c.subject, c.relation, c.value),
                      f"asked again as \"{self.entities[e].label} {rid} ___\", the answer was {said[(e, rid)]!r}")
        return kept

    def check_functional(self, candidates: list[Candidate]) -> list[Candidate]:
        kept: list[Candidate] = []
        value_of: dict[tuple[int, str], Any] = {}
        subject_of: dict[tuple[str, Any], int] = {}
        for c in candidates:
            relation = self.relations[c.relation]
            what = self._describe(c.subject, c.relation, c.value)
            earlier = value_of.get((c.subject, c.relation))
            if relation.functional and earlier is not None and earlier != c.value:
                self.drop("check", "functional", what, f"contradicts the kept fact "
                          f"{self._describe(c.subject, c.relation, earlier)} ({c.relation} is functional)")
                continue
            earlier_subject = subject_of.get((c.relation, c.value))
            if relation.inverse_functional and earlier_subject is not None and earlier_subject != c.subject:
                self.drop("check", "functional", what, f"contradicts the kept fact "
                          f"{self._describe(earlier_subject, c.relation, c.value)} ({relation.inverse_id} is "
                          "functional)")
                continue
            value_of.setdefault((c.subject, c.relation), c.value)
            subject_of.setdefault((c.relation, c.value), c.subject)
            kept.append(c)
        return kept

    def prune_hierarchy(self) -> None:
        """Sub-themes without entities and roots without sub-themes would change level in the build: drop them."""
        used = {c for e in self.entities for c in e.parents}
        for i, s in enumerate(self.subthemes):
            if i not in used:
                self.drop("check", "empty_subtheme", s.label, "no entity was kept under it")
        self.live_subthemes = [i for i in range(len(self.subthemes)) if i in used]
        used_roots = {r for i in self.live_subthemes for r in self.subthemes[i].parents}
        for i, r in enumerate(self.roots):
            if i not in used_roots:
                self.drop("check", "empty_root", r.label, "no sub-theme was kept under it")
        self.live_roots = [i for i in range(len(self.roots)) if i in used_roots]

    # -- output ----------------------------------------------------------------------------------------------------
    def build(self) -> GeneratedKG:
        self.stage_roots()
        self.stage_subthemes()
        self.stage_relations()
        self.stage_leaves()
        candidates = self.stage_facts()
        proposed = len(candidates)
        facts = self.check_functional(self.stage_verify(candidates))
        self.prune_hierarchy()
        # relations whose domain or range sub-theme was pruned can have no facts: leave them out of the vocabulary
        live = set(self.live_subthemes)
        for rid, relation in list(self.relations.items()):
            if relation.domain not in live or (not relation.literal and relation.range not in live):
                self.drop("check", "relation_unused", rid, "its domain or range sub-theme has no entities")
                del self.relations[rid]
        return self._render(facts, proposed)

    def _assign_iris(self) -> None:
        taken: set[str] = set()
        for item in [*(self.roots[i] for i in self.live_roots), *(self.subthemes[i] for i in self.live_subthemes),
                     *self.entities]:
            base = local_name(item.label)
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            taken.add(name)
            item.iri = f"kg:{name}"

    def _render(self, facts: list[Candidate], proposed: int) -> GeneratedKG:
        self._assign_iris()
        namespace = self.config.namespace or f"https://knowledgesmith.org/kg/{_slug(self.config.domain)}/"
        st: set[tuple[str, str, str]] = set()

        def labelled(item: Item) -> None:
            st.add((item.iri, "rdfs:label", literal(item.label)))
            for alias in item.aliases:
                st.add((item.iri, "skos:altLabel", literal(alias)))

        for i in self.live_roots:
            labelled(self.roots[i])
        for i in self.live_subthemes:
            s = self.subthemes[i]
            labelled(s)
            for r in s.parents:
                st.add((self.roots[r].iri, "skos:narrower", s.iri))  # stated from the root's side, as kg/*.ttl do
        for e in self.entities:
            labelled(e)
            for c in e.parents:
                st.add((e.iri, "rdf:type", self.subthemes[c].iri))
        for relation in self.relations.values():
            r = f"kgr:{relation.id}"
            declared = [(r, relation.label, relation.domain, relation.range, relation.functional)]
            if relation.inverse_id and relation.inverse_id != relation.id:
                declared.append((f"kgr:{relation.inverse_id}", relation.inverse_label, relation.range,
                                 relation.domain, relation.inverse_functional))
            for iri, label, dom, rng, functional in declared:
                st.add((iri, "rdf:type", "owl:DatatypeProperty" if isinstance(rng, str) else "owl:ObjectProperty"))
                if functional:
                    st.add((iri, "rdf:type", "owl:FunctionalProperty"))
                st.add((iri, "rdfs:label", literal(label)))
                assert isinstance(dom, int)
                st.add((iri, "rdfs:domain", self.subthemes[dom].iri))
                st.add((iri, "rdfs:range", self.literal_types[rng] if isinstance(rng, str)
                        else self.subthemes[rng].iri))
            if relation.inverse_id:
                st.add((r, "owl:inverseOf", f"kgr:{relation.inverse_id}"))
                if relation.inverse_id != relation.id:
                    st.add((f"kgr:{relation.inverse_id}", "owl:inverseOf", r))
        for c in facts:
            obj = self.entities[c.value].iri if isinstance(c.value, int) else literal(c.value[1], c.value[0])
            st.add((self.entities[c.subject].iri, f"kgr:{c.relation}", obj))

        counts = {ROOT: len(self.live_roots), INTERMEDIATE: len(self.live_subthemes), LEAF: len(self.entities),
                  "facts": len(facts), "facts_proposed": proposed,
                  "hierarchy_facts": sum(len(self.subthemes[i].parents) for i in self.live_subthemes)
                  + sum(len(e.parents) for e in self.entities),
                  "relations": len(self.relations),
                  "inverse_relations": sum(1 for r in self.relations.values()
                                           if r.inverse_id and r.inverse_id != r.id),
                  "aliases": sum(len(i.aliases) for i in [*self.roots, *self.subthemes, *self.entities])}
        created = max((a.created for a in self.answers), default=0)
        date = dt.datetime.fromtimestamp(created, dt.UTC).date().isoformat() if created else "unknown"
        provenance = {"generator": f"ks-kg generate (KnowledgeSmith {__version__})", "domain": self.config.domain,
                      "model": self.endpoint.model, "endpoint": self.endpoint.base_url,
                      "temperature": self.endpoint.temperature, "seed": self.endpoint.seed, "date": date,
                      "asked": {"roots": self.config.roots, "subthemes_per_root": self.config.subthemes,
                                "entities_per_subtheme": self.config.leaves,
                                "relations": self.config.relations or int(self.prompts.guide["count"])},
                      "match_threshold": self.config.match_threshold,
                      "prompt_files_sha256": dict(sorted(self.prompts.hashes.items()))}
        header = "\n".join([
            f"Knowledge graph of the domain {self.config.domain!r}, generated through an LLM by "
            f"{provenance['generator']}.",
            "Checked before writing: entities de-duplicated (aliases merged), every fact confirmed by a second "
            "phrasing,",
            "relation domains and ranges respected, no contradiction with kept facts of functional relations.",
            f"model: {provenance['model']}",
            f"endpoint: {provenance['endpoint']}",
            f"temperature: {provenance['temperature']:g}; seed: {provenance['seed']}",
            f"date: {date} (of the latest answer used)",
            "asked: " + ", ".join(f"{k} {v}" for k, v in provenance["asked"].items()),
            *(f"sha256 {name}: {digest}" for name, digest in provenance["prompt_files_sha256"].items()),
            f"counts: root {counts[ROOT]}, intermediate {counts[INTERMEDIATE]}, leaf {counts[LEAF]}, "
            f"facts {counts['facts']} (of {proposed} proposed), relations {counts['relations']}",
        ])
        turtle = write_turtle(st, header, {"kg": namespace, "kgr": namespace + "rel/"})
        drop_counts: dict[str, int] = {}
        for d in self.drops:
            drop_counts[d["kind"]] = drop_counts.get(d["kind"], 0) + 1
        # what the KG cost at the endpoint, whether this run paid it or replayed it from the cache
        kg_cost = {"requests": len(self.answers),
                   "tokens": sum(a.usage.get("total_tokens", 0) for a in self.answers),
                   "per_stage": self.stage_cost}
        report = {
            "provenance": provenance,
            "counts": counts,
            "relations": [self._relation_record(r) for r in self.relations.values()],
            "drops": self.drops,
            "drop_counts": dict(sorted(drop_counts.items())),
            "merged": self.merges,
            "cost": {"kg": kg_cost, "this_run": self.endpoint.stats.as_dict()},
            "turtle_sha256": hashlib.sha256(turtle.encode("utf-8")).hexdigest(),
        }
        return GeneratedKG(turtle, report)

    def _relation_record(self, r: Relation) -> dict[str, Any]:
        return {"id": r.id, "label": r.label, "domain": self.subthemes[r.domain].label,
                "range": r.range if isinstance(r.range, str) else self.subthemes[r.range].label,
                "functional": r.functional, "inverse_id": r.inverse_id, "inverse_label": r.inverse_label,
                "inverse_functional": r.inverse_functional}


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _slug(text: str) -> str:
    return "-".join(normalize(text).split()) or "domain"


def _parse_literal(kind: str, text: str) -> str | None:
    """The lexical form of a literal answer of range `kind`, or None when it is not one."""
    value = text.strip().rstrip(".")
    if kind == "integer":
        digits = value.replace(",", "").replace(" ", "")
        return str(int(digits)) if digits.lstrip("-").isdigit() else None
    if kind == "year":
        if value.lstrip("-").isdigit() and len(value.lstrip("-")) <= 4:
            year = int(value)
            return f"-{abs(year):04d}" if year < 0 else f"{year:04d}"
        return None
    if kind == "date":
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            return None
    return value or None


def generate_kg(config: GenerationConfig, endpoint: ChatEndpoint, *, progress: bool = False) -> GeneratedKG:
    """Run every stage through `endpoint` and return the checked KG as Turtle with its report."""
    if config.roots < 1 or config.subthemes < 1 or config.leaves < 1:
        raise KsUserError("--roots, --subthemes and --leaves must be at least 1")
    if not config.domain.strip():
        raise KsUserError("--domain must name a domain")
    return _Generation(config, endpoint, Prompts.load(config.relation_guide), progress).build()


def report_path(out: Path) -> Path:
    """The sidecar report of a KG file: law.ttl → law.report.json."""
    return out.with_name(out.stem + ".report.json")


def write_outputs(kg: GeneratedKG, out: Path) -> Path:
    """Write the Turtle and its report, each atomically; return the report's path."""
    report = report_path(out)
    atomic_write_bytes(out, kg.turtle.encode("utf-8"))
    atomic_write_bytes(report, (json.dumps(kg.report, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    return report
