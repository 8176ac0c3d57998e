"""The six probe types of a request, as specifications: question text, the query that decides which options are
true, the gold node, the node expected after the edit, and the pool distractors are drawn from.

For a request (s, r, o → o*) — our definitions, see README "Probe types":
* direct (Q+): r of s, one probe per written phrasing (up to three). Gold o, target o*.
* reverse (Q+): who has r = o? Gold s. After the edit s no longer has r = o and nothing in the request makes another
  option true, so the target is −1: the probe measures whether the old association is gone in the reverse direction.
* multi-hop (Q+): (s, r, o), (o, r2, x) asked as one question about "the r of s". Gold x; target y with (o*, r2, y).
* comparison (Q+): which option has the same r as s? Gold a peer p sharing o; target a peer q with (q, r, o*).
* conflict: Q+ asserts the new fact in a context sentence (gold o, target o*); Q− asks an unrelated fact under a
  misleading context (gold = target = its true answer).
* contextual (Q−): direct questions about unrelated facts of a sibling, a node of the same branch and a node of
  another branch (by `distance` in hierarchy hops); their answer must not change.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .kgindex import KgIndex
from .requests import (
    DRAWS,
    Request,
    SeededStream,
    seeded_prefix,
    seeded_state,
    seeded_states,
    splitmix_output,
    splitmix_outputs,
)
from .templates import TemplateLibrary

OBJECT, SUBJECT, CHAIN, PEER = "object", "subject", "chain", "peer"
STRATA = ("sibling", "branch", "other")
STRATUM_DRAWS = 24  # candidates drawn from a stratum before it gives up
STRATUM_AHEAD = 3  # outputs of a contextual row's stratum stream made ahead (most take a candidate and a fact: two)

# A contextual row's seeded streams made ahead: its stratum stream's starting state and first outputs, and the state
# that picks its phrasing.
ContextualStreams = tuple[list[tuple[int, list[int]]], list[int]]


@dataclass(slots=True)
class Query:
    """What a question asks, so that any option can be checked against the KG: `object` (s, r, ?), `subject`
    (?, r, o), `chain` (s, r, ?x)(?x, r2, ?), `peer` (? shares a value of r with s, ? ≠ s)."""

    kind: str
    subject_id: str | None
    relation_id: str
    object_id: str | None = None
    relation2_id: str | None = None

    def truths(self, index: KgIndex) -> set[str]:
        if self.kind == OBJECT:
            return index.values(self.subject_id, self.relation_id)  # type: ignore[arg-type]
        if self.kind == SUBJECT:
            return index.holders(self.relation_id, self.object_id)  # type: ignore[arg-type]
        if self.kind == CHAIN:
            found: set[str] = set()
            for middle in index.values(self.subject_id, self.relation_id):  # type: ignore[arg-type]
                found |= index.values(middle, self.relation2_id)  # type: ignore[arg-type]
            return found
        peers: set[str] = set()
        for value in index.values(self.subject_id, self.relation_id):  # type: ignore[arg-type]
            peers |= index.holders(self.relation_id, value)
        peers.discard(self.subject_id)  # type: ignore[arg-type]
        return peers

    def proof(self, index: KgIndex, answer: str) -> list[str]:
        """Triple ids that make `answer` true (empty when it is not)."""
        if self.kind == OBJECT or self.kind == SUBJECT:  # one triple, stated or stated by its inverse: most rows
            s, o = (self.subject_id, answer) if self.kind == OBJECT else (answer, self.object_id)
            found = index.triple_of.get((s, self.relation_id, o))  # type: ignore[arg-type]
            if found is None:
                inverse = index.relation_inverse.get(self.relation_id)
                if inverse is not None:
                    found = index.triple_of.get((o, inverse, s))  # type: ignore[arg-type]
            return [found] if found is not None else []

        def tid(s: str, r: str, o: str) -> str | None:
            found = index.triple_of.get((s, r, o))
            inverse = index.relation_inverse.get(r)
            if found is None and inverse is not None:
                found = index.triple_of.get((o, inverse, s))
            return found

        if self.kind == CHAIN:
            proof = [None]
            for middle in sorted(index.values(self.subject_id, self.relation_id)):  # type: ignore[arg-type]
                if answer in index.values(middle, self.relation2_id):  # type: ignore[arg-type]
                    proof = [tid(self.subject_id, self.relation_id, middle),  # type: ignore[arg-type]
                             tid(middle, self.relation2_id, answer)]  # type: ignore[arg-type]
                    break
        else:
            proof = [None]
            for value in sorted(index.values(self.subject_id, self.relation_id)):  # type: ignore[arg-type]
                if answer in index.holders(self.relation_id, value):
                    proof = [tid(self.subject_id, self.relation_id, value),  # type: ignore[arg-type]
                             tid(answer, self.relation_id, value)]
                    break
        return [p for p in proof if p is not None] if all(p is not None for p in proof) else []


@dataclass(slots=True)
class ProbeSpec:
    request_id: str
    probe_type: str
    role: str
    number: int
    question: str
    template_id: str
    query: Query
    gold: str
    target: str | None  # None: the edit does not decide it (-1)
    pool: list[str]  # candidate options besides gold and target, of the gold's kind
    # pools tried in turn while `pool` gives too few, and options that must be offered (the target); empty tuples by
    # default, shared (never modified), not a new list per probe
    wider: Sequence[list[str]] = ()
    include: Sequence[str] = ()
    distance: int | None = None
    # the query's truths and the gold's proof where the probe stage knows them already (a contextual row's fact is
    # asked by many requests: `draft_row` need not look them up again), else None
    checked: tuple[frozenset[str], list[str]] | None = None
    probe_id: str = field(init=False)  # "<request id>/<probe type>/<number>", the row's id

    def __post_init__(self) -> None:
        self.probe_id = f"{self.request_id}/{self.probe_type}/{self.number}"


class ProbeBuilder:
    def __init__(self, index: KgIndex, templates: TemplateLibrary, seed: int) -> None:
        self.index = index
        self.templates = templates
        self.seed = seed
        self.counts = templates.probe_counts
        self.subjects_with_facts = sorted(index.facts_by_subject)
        # node → its single-valued facts and their objects (None: it has none), looked up for every stratum draw
        self._facts_and_objects: dict[str, tuple[list[tuple[str, str]], frozenset[str]] | None] = {}
        # subject → per stratum: (pool, position of the subject to skip or −1, draws, siblings passed over, candidates)
        self._strata: dict[str, tuple[tuple[list[str], int, int, frozenset[str] | None, int], ...]] = {}
        # id of a sibling pool → the pool as a set, how many of it have single-valued facts, and those per branch
        self._families: dict[int, tuple[frozenset[str], int, Counter[str | None]]] = {}
        self._with_facts_per_branch: Counter[str | None] | None = None  # subjects with single-valued facts
        self._phrasings: dict[tuple[str, str], list] = {}  # (relation, kind) → phrasings
        self._contextual_keys: list[tuple[str, str]] | None = None  # see _contextual_key_list
        # The same neighbour fact is asked by many requests' contextual rows: (phrasing, subject, relation) → the
        # row's text, and (subject, relation) → its query, the query's truths and the gold's proof, and the
        # distractor pool (none of these is ever modified, so one serves them all).
        self._contextual_texts: dict[tuple[str, str, str], str] = {}
        self._contextual_facts: dict[tuple[str, str], tuple[Query, tuple[frozenset[str], list[str]], list[str]]] = {}
        self.subjects_by_branch: dict[str, list[str]] = {}
        for node in self.subjects_with_facts:
            branch = index.nodes[node].branch
            if branch is not None:
                self.subjects_by_branch.setdefault(branch, []).append(node)

    def label(self, node: str) -> str:
        return self.index.nodes[node].label

    def phrasings(self, relation: str, kind: str):  # noqa: ANN201 - list[Phrasing]
        found = self._phrasings.get((relation, kind))
        if found is None:
            found = self._phrasings[(relation, kind)] = self.templates.phrasings(
                relation, self.index.relation_labels.get(relation, relation), kind)
        return found

    def probes(self, request: Request, contextual_streams: ContextualStreams | None = None) -> list[ProbeSpec]:
        out: list[ProbeSpec] = []
        out += self.direct(request)
        out += self.reverse(request)
        out += self.multi_hop(request)
        out += self.comparison(request)
        out += self.conflict(request)
        out += self.contextual(request, contextual_streams)
        return out

    def probes_of(self, requests: list[Request]) -> list[list[ProbeSpec]]:
        """`probes` of each request, the contextual rows' seeded streams keyed and started for all of them at once
        (`contextual_streams`)."""
        streams = self.contextual_streams(requests)
        return [self.probes(request, found) for request, found in zip(requests, streams, strict=True)]

    def contextual_streams(self, requests: list[Request]) -> list[ContextualStreams]:
        """Per request, the seeded streams of its contextual rows, stratum by stratum and row by row: the starting
        state of `SeededStream(seed, f"contextual{i}", stratum, request id)` with its first STRATUM_AHEAD outputs,
        and the state of the key that picks the row's phrasing (`_pick`'s). The keys are hashed in one pass
        (`seeded_states`), the outputs computed for all of them at once in NumPy."""
        prefixes = [prefix for pair in self._contextual_key_list() for prefix in pair]  # fact, pick, fact, pick, …
        states = seeded_states(prefixes, [q.request_id for q in requests])
        facts = states[0::2]
        outputs = splitmix_outputs(facts, STRATUM_AHEAD).tolist()
        starts, picks = facts.tolist(), states[1::2].tolist()
        per = len(prefixes) // 2
        return [(list(zip(starts[at:at + per], outputs[at:at + per], strict=True)), picks[at:at + per])
                for at in range(0, per * len(requests), per)]

    def _contextual_key_list(self) -> list[tuple[str, str]]:
        """Per contextual row, stratum by stratum: the prefixes of its fact's key and of its phrasing's."""
        if self._contextual_keys is None:
            per = self.counts["contextual"]
            self._contextual_keys = [(seeded_prefix(self.seed, f"contextual{i}", stratum),
                                      seeded_prefix(self.seed, f"contextual-{stratum}-{i}"))
                                     for stratum in STRATA for i in range(per)]
        return self._contextual_keys

    # -- the six types -------------------------------------------------------------------------------------------

    def direct(self, q: Request) -> list[ProbeSpec]:
        s, r, o, new = q.subject_id, q.relation_id, q.target_true_id, q.target_new_id
        specs = []
        pools = self.index.answer_pools(s, r, o)  # the counterfactual's pools: for a root, its kind may be all true
        for i, phrasing in enumerate(self.phrasings(r, "question")[:self.counts["direct"]]):
            question = self.templates.render_probe(
                "direct", question=phrasing.render_cached(self.label(s), self.label(o), q.request_id))
            specs.append(ProbeSpec(q.request_id, "direct", "q_plus", i, question, phrasing.template_id,
                                   Query(OBJECT, s, r), gold=o, target=new, pool=pools[0], wider=pools[1:],
                                   include=[new], distance=0))
        return specs

    def reverse(self, q: Request) -> list[ProbeSpec]:
        s, r, o = q.subject_id, q.relation_id, q.target_true_id
        specs = []
        for i, phrasing in enumerate(self.phrasings(r, "reverse")[:self.counts["reverse"]]):
            question = self.templates.render_probe(
                "reverse", reverse_question=phrasing.render_cached(self.label(s), self.label(o), q.request_id))
            specs.append(ProbeSpec(q.request_id, "reverse", "q_plus", i, question, phrasing.template_id,
                                   Query(SUBJECT, None, r, o), gold=s, target=None, pool=self.index.same_kind(s),
                                   distance=0))
        return specs

    def multi_hop(self, q: Request) -> list[ProbeSpec]:
        s, r, o, new = q.subject_id, q.relation_id, q.target_true_id, q.target_new_id
        index = self.index
        # second hops from o whose answer is single-valued, so the question has one gold
        hops = [(r2, x) for r2, x in index.single_valued_facts(o) if x != s]
        if not hops:
            return []
        hops = SeededStream(self.seed, "hops", q.request_id).sample(hops, min(len(hops), self.counts["multi_hop"]))
        noun = self._pick(self.phrasings(r, "noun_phrase"), q.request_id, "noun").render(
            q.request_id, subject=self.label(s), object=self.label(o))
        specs = []
        for i, (r2, x) in enumerate(hops):
            after = index.values(new, r2)
            target = min(after) if len(after) == 1 else None
            phrasing = self._pick(self.phrasings(r2, "question"), q.request_id, f"hop2-{i}")
            question = self.templates.render_probe(
                "multi_hop", second_hop_question=phrasing.render_cached(noun, self.label(x), q.request_id))
            specs.append(ProbeSpec(q.request_id, "multi_hop", "q_plus", i, question, phrasing.template_id,
                                   Query(CHAIN, s, r, None, r2), gold=x, target=target, pool=index.same_kind(x),
                                   include=[target] if target is not None and target != x else [], distance=1))
        return specs

    def comparison(self, q: Request) -> list[ProbeSpec]:
        s, r, o, new = q.subject_id, q.relation_id, q.target_true_id, q.target_new_id
        index = self.index
        if index.is_hierarchy(r) or len(index.values(s, r)) != 1:
            return []  # with several values (every ancestor, for a hierarchy relation) "the same r" is ambiguous
        peers = sorted(index.holders(r, o) - {s})
        if not peers:
            return []
        golds = SeededStream(self.seed, "peers", q.request_id).sample(peers, min(len(peers), self.counts["comparison"]))
        after = sorted(index.holders(r, new) - {s} - set(peers))
        target = SeededStream(self.seed, "peer-after", q.request_id).choice(after) if after else None
        phrasing = self._pick(self.phrasings(r, "same"), q.request_id, "same")
        question = self.templates.render_probe(
            "comparison", same_question=phrasing.render_cached(self.label(s), self.label(o), q.request_id))
        return [ProbeSpec(q.request_id, "comparison", "q_plus", i, question, phrasing.template_id,
                          Query(PEER, s, r), gold=gold, target=target, pool=index.same_kind(s),  # s itself is no option
                          include=[target] if target is not None else [], distance=0)
                for i, gold in enumerate(golds)]

    def conflict(self, q: Request) -> list[ProbeSpec]:
        s, r, o, new = q.subject_id, q.relation_id, q.target_true_id, q.target_new_id
        specs = []
        statement = self._pick(self.phrasings(r, "statement"), q.request_id, "statement")
        question = self._pick(self.phrasings(r, "question"), q.request_id, "conflict")
        text = self.templates.render_probe(
            "conflict", context=statement.render_cached(self.label(s), self.label(new), q.request_id),
            question=question.render_cached(self.label(s), self.label(o), q.request_id))
        pools = self.index.answer_pools(s, r, o)
        specs.append(ProbeSpec(q.request_id, "conflict", "q_plus", 0, text, question.template_id,
                               Query(OBJECT, s, r), gold=o, target=new, pool=pools[0], wider=pools[1:],
                               include=[new], distance=0))
        seen: set[tuple[str, str]] = set()
        for i in range(self.counts["conflict_minus"]):
            neighbour = self._neighbour_fact(q, f"conflict{i}")
            if neighbour is None or neighbour[:2] in seen:
                continue
            s2, r2, o2, distance = neighbour
            seen.add((s2, r2))
            misleading = self._wrong_value(s2, r2, o2, SeededStream(self.seed, f"misleading{i}", q.request_id))
            if misleading is None:
                continue
            statement = self._pick(self.phrasings(r2, "statement"), q.request_id, f"statement-{i}")
            question = self._pick(self.phrasings(r2, "question"), q.request_id, f"conflict-{i}")
            text = self.templates.render_probe(
                "conflict",
                context=statement.render_cached(self.label(s2), self.label(misleading), q.request_id),
                question=question.render_cached(self.label(s2), self.label(o2), q.request_id))
            specs.append(ProbeSpec(q.request_id, "conflict", "q_minus", 1 + i, text, question.template_id,
                                   Query(OBJECT, s2, r2), gold=o2, target=o2, pool=self.index.same_kind(o2),
                                   include=[misleading], distance=distance))
        return specs

    def contextual(self, q: Request, streams: ContextualStreams | None = None) -> list[ProbeSpec]:
        """Rows are numbered stratum by stratum: sibling 0…n−1, same branch n…2n−1, other branch 2n…3n−1.
        `streams`: the request's `contextual_streams`, where made for many requests at once."""
        specs = []
        per = self.counts["contextual"]
        fact_streams, picks = streams if streams is not None else self.contextual_streams([q])[0]
        index = self.index
        request_id, labels = q.request_id, index.labels
        render_probe, phrasings_of = self.templates.render_probe, self.phrasings
        texts, facts = self._contextual_texts, self._contextual_facts
        s = q.subject_id
        touched, branch = (s, q.target_true_id, q.target_new_id), self.index.nodes[s].branch
        fact_drawn = self._fact_drawn
        for index_stratum, stratum in enumerate(self._strata_of(s)):
            seen: set[tuple[str, str]] = set()
            for i in range(per):
                row = index_stratum * per + i
                fact = fact_drawn(s, touched, branch, stratum, index_stratum == 2, *fact_streams[row])
                if fact is None:
                    continue
                s2, r2, o2, distance = fact
                if (s2, r2) in seen:
                    continue
                seen.add((s2, r2))
                phrasings = phrasings_of(r2, "question")
                # `_pick`, its key hashed ahead
                phrasing = phrasings[0] if len(phrasings) == 1 else phrasings[picks[row] % len(phrasings)]
                key = (phrasing.template_id, s2, r2)  # o2 is the one value of r2 for s2
                text = texts.get(key)
                if text is None:
                    text = texts[key] = render_probe("contextual", question=phrasing.render_cached(
                        labels[s2], labels[o2], request_id))
                found = facts.get(key[1:])
                if found is None:
                    query = Query(OBJECT, s2, r2)
                    found = facts[key[1:]] = (query, (query.truths(index), query.proof(index, o2)),
                                              index.same_kind(o2))
                query, checked, pool = found
                specs.append(ProbeSpec(request_id, "contextual", "q_minus", row, text, phrasing.template_id, query,
                                       o2, o2, pool, (), (), distance, checked))
        return specs

    # -- helpers -------------------------------------------------------------------------------------------------

    def _pick(self, phrasings: list, request_id: str, purpose: str):  # noqa: ANN202 - Phrasing
        if len(phrasings) == 1:
            return phrasings[0]  # the key could only pick this one: no need to hash it
        return phrasings[seeded_state(seeded_prefix(self.seed, purpose), request_id) % len(phrasings)]

    def _wrong_value(self, s: str, r: str, o: str, rng: SeededStream) -> str | None:
        """A node of o's kind that the KG does not give (s, r): sampled, not scanned (a kind may be large)."""
        pool, true_values = self.index.same_kind(o), self.index.values(s, r)
        for position in rng.positions(len(pool), DRAWS):
            if pool[position] not in true_values and pool[position] != s:
                return pool[position]
        return None

    def _node_facts(self, node: str) -> tuple[list[tuple[str, str]], frozenset[str]] | None:
        """The node's single-valued facts and their objects, memoised (None: it has none)."""
        facts = self.index.single_valued_facts(node)
        found = self._facts_and_objects[node] = (facts, frozenset(o for _r, o in facts)) if facts else None
        return found

    def _facts_and_objects_of(self, node: str) -> tuple[list[tuple[str, str]], frozenset[str]] | None:
        found = self._facts_and_objects.get(node, False)
        return self._node_facts(node) if found is False else found

    def _strata_of(self, s: str) -> tuple[tuple[list[str], int, int, frozenset[str] | None, int], ...]:
        """Per stratum (sibling, branch, other) of subject `s`: the pool drawn from, the position of s that the
        sibling pool skips (−1: none), how many positions are drawn from, the siblings a branch draw passes over, and
        how many nodes of the pool a draw could take (not passed over, with a single-valued fact). Memoised per
        subject; sibling sets and counts are shared by siblings."""
        found = self._strata.get(s)
        if found is not None:
            return found
        index = self.index
        branch = index.nodes[s].branch
        if self._with_facts_per_branch is None:
            self._with_facts_per_branch = Counter(index.nodes[node].branch for node in self.subjects_with_facts
                                                  if self._facts_and_objects_of(node) is not None)
        per_branch = self._with_facts_per_branch
        family = index.sibling_pool(s)
        at = bisect.bisect_left(family, s)
        skip = at if at < len(family) and family[at] == s else -1  # ≥ 0: the sibling pool draws without s
        family_found = self._families.get(id(family))
        if family_found is None:  # the pool is memoised by the index, so its id is stable
            with_facts = [node for node in family if self._facts_and_objects_of(node) is not None]
            family_found = self._families[id(family)] = (frozenset(family), len(with_facts),
                                                         Counter(index.nodes[node].branch for node in with_facts))
        family_set, family_with_facts, family_per_branch = family_found
        s_has_facts = self._facts_and_objects_of(s) is not None
        branch_pool = self.subjects_by_branch.get(branch, []) if branch else []
        found = self._strata[s] = (
            (family, skip, len(family) - (skip >= 0), None, family_with_facts - (skip >= 0 and s_has_facts)),
            (branch_pool, -1, len(branch_pool), family_set,
             per_branch[branch] - family_per_branch[branch] - (skip < 0 and s_has_facts) if branch_pool else 0),
            (self.subjects_with_facts, -1, len(self.subjects_with_facts), None,
             sum(per_branch.values()) - per_branch[branch]))
        return found

    def _stratum_fact(self, q: Request, stratum: str, purpose: str = "contextual") -> tuple[str, str, str, int] | None:
        """A fact of another subject: a sibling (same parent), a node of the same branch, or of another branch.
        Candidates are sampled (seeded) rather than scanned, so a request costs the same on a million-node KG:
        `_fact_drawn` from `SeededStream(seed, purpose, stratum, request id)`."""
        s, at = q.subject_id, STRATA.index(stratum)
        found = self._strata_of(s)[at]
        if not found[4]:
            return None  # no candidates: no draws, and no key to hash
        state = seeded_state(seeded_prefix(self.seed, purpose, stratum), q.request_id)
        return self._fact_drawn(s, (s, q.target_true_id, q.target_new_id), self.index.nodes[s].branch, found,
                                at == 2, state, ())

    def _fact_drawn(self, s: str, touched: tuple[str, str, str], branch: str | None,
                    stratum: tuple[list[str], int, int, frozenset[str] | None, int], other_branch: bool, state: int,
                    outputs: Sequence[int]) -> tuple[str, str, str, int] | None:
        """A fact of a node of `stratum` (an entry of `_strata_of(s)`; `other_branch`: the other-branch stratum,
        which passes over nodes of s's `branch`) that does not touch the request (`touched`: its subject, old and new
        object), from the stream that starts at `state`: its outputs `outputs` first, then made here
        (`splitmix_output`). The draws are `SeededStream.below`, inlined: this loop runs for every contextual and
        conflict row. Its arguments are the ones a request's rows share, so that its contextual rows find them once."""
        pool, skip, size, family, candidates = stratum
        if not candidates:
            return None  # every draw would be passed over: no need to make them (the stream is this call's own)
        nodes, memo = self.index.nodes, self._facts_and_objects
        made = len(outputs)
        for t in range(min(size, STRATUM_DRAWS)):
            drawn = ((outputs[t] if t < made else splitmix_output(state, t)) * size) >> 64
            other = pool[drawn + 1 if 0 <= skip <= drawn else drawn]
            if other == s or (family is not None and other in family) \
                    or (other_branch and nodes[other].branch == branch):
                continue
            found = memo.get(other, False)
            if found is False:
                found = self._node_facts(other)
            if found is None:
                continue
            facts, objects = found
            if s in objects or touched[1] in objects or touched[2] in objects:
                facts = [(r, o) for r, o in facts if o not in touched]
                if not facts:
                    continue
            r2, o2 = facts[((outputs[t + 1] if t + 1 < made else splitmix_output(state, t + 1)) * len(facts)) >> 64]
            distance = self.index.hierarchy_distance(s, other)
            return other, r2, o2, distance if distance is not None else -1
        return None

    def _neighbour_fact(self, q: Request, purpose: str) -> tuple[str, str, str, int] | None:
        for stratum in STRATA:
            fact = self._stratum_fact(q, stratum, purpose)
            if fact is not None:
                return fact
        return None
