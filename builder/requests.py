"""Edit and unlearning requests: which facts are updated, in nested k sets per domain and level, and to what.

For each (domain, level) the eligible facts — a named subject at that level and a named, labelled object — are put in
a seeded order (BLAKE2b of seed and triple id, so the order does not depend on the input's order or on partitioning).
A fact whose object has no counterfactual of its kind is passed over. The first k of that order
form the set of size k, so the sets are nested by construction (1 ⊂ 10 ⊂ 100 ⊂ 1 000 ⊂ 10 000), and a request's
`k_min` is the smallest k whose set contains it. The same requests serve editing (`target_new`) and unlearning
(`neutral_answer`).
"""

from __future__ import annotations

import _random
import functools
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import TypeVar

import numpy as np
import pyarrow as pa
from rapidfuzz import fuzz
from rapidfuzz.fuzz import ratio

from .graph import KnowledgeGraph
from .hierarchy import LEVELS
from .kgindex import HIERARCHY_PREDICATES, KgIndex, gc_paused
from .templates import Phrasing, TemplateLibrary

K_VALUES = (1, 10, 100, 1_000, 10_000)
SIMILAR = 90  # rapidfuzz ratio at or above which two labels count as the same answer
DRAWS = 64  # seeded draws from a pool before a choice gives up
T = TypeVar("T")

REQUESTS_SCHEMA = pa.schema([
    ("request_id", pa.string()),
    ("domain", pa.string()),
    ("level", pa.string()),
    ("branch_id", pa.string()),
    ("triple_id", pa.string()),
    ("subject_id", pa.string()),
    ("relation_id", pa.string()),
    ("target_true_id", pa.string()),
    ("target_new_id", pa.string()),
    ("subject", pa.string()),
    ("relation", pa.string()),
    ("target_true", pa.string()),
    ("target_new", pa.string()),
    ("prompt", pa.string()),
    ("neutral_answer", pa.string()),
    ("k_min", pa.int32()),
])


@dataclass
class Request:
    request_id: str
    domain: str
    level: str
    branch_id: str | None
    triple_id: str
    subject_id: str
    relation_id: str
    target_true_id: str
    target_new_id: str
    subject: str
    relation: str
    target_true: str
    target_new: str
    prompt: str
    neutral_answer: str
    k_min: int


def seeded_key(seed: int, *parts: str) -> bytes:
    """A stable sort key / RNG seed from the build seed and ids: the one place randomness is derived from."""
    return blake2b("\x1f".join((str(seed), *parts)).encode(), digest_size=8).digest()


@functools.cache
def seeded_prefix(seed: int, *parts: str) -> str:
    """What `seeded_key(seed, *parts, last)` hashes before `last`: hot loops that key one decision per probe or row
    join this once and pass it to `seeded_state` (memoised: a build keys millions of decisions by a few purposes)."""
    return "\x1f".join((str(seed), *parts, ""))


def seeded_state(prefix: str, last: str) -> int:
    """`seeded_key(seed, *parts, last)` as the starting state of a `SeededStream`, from `seeded_prefix(seed, *parts)`
    (the same bytes hashed: the same state)."""
    return int.from_bytes(blake2b((prefix + last).encode(), digest_size=8).digest(), "big")


def seeded_rng(seed: int, *parts: str) -> random.Random:
    """A Mersenne Twister for the per-request choices (the counterfactual)."""
    return random.Random(int.from_bytes(seeded_key(seed, *parts), "big"))


# SplitMix64's increment and output multipliers: the probe and MCQ stages inline `SeededStream.below` with these in
# their hottest loops (a method call costs as much as the arithmetic), so the draws there are the same numbers.
GAMMA, MIX1, MIX2, MASK64 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, (1 << 64) - 1


def seeded_digests(prefixes: Sequence[str], lasts: Sequence[str]) -> list[bytes]:
    """`seeded_key(seed, *parts, last)` for each last and, within it, each prefix `seeded_prefix(seed, *parts)` (a flat
    list, last-major). The hash of `prefix + last` is the hash of `prefix` (hashed once, its state copied) updated
    with `last`: the same digest (BLAKE2b is a streaming hash) for a copy, an update and a digest a key, each last
    encoded once."""
    copies = [blake2b(prefix.encode(), digest_size=8).copy for prefix in prefixes]
    digests: list[bytes] = []
    append = digests.append
    for last in lasts:
        data = last.encode()
        for copy in copies:
            hashed = copy()
            hashed.update(data)
            append(hashed.digest())
    return digests


def seeded_states(prefixes: Sequence[str], lasts: Sequence[str]) -> np.ndarray:
    """`seeded_state(prefix, last)` for each last and, within it, each prefix: `seeded_digests` as a flat uint64
    array."""
    return np.frombuffer(b"".join(seeded_digests(prefixes, lasts)), dtype=">u8").astype(np.uint64)


def splitmix_outputs(states: np.ndarray, k: int) -> np.ndarray:
    """The first k outputs of the SplitMix64 stream (`SeededStream`'s, before its multiply-shift) from each uint64
    state, shape (len(states), k), computed for all states at once: exact, as uint64 products wrap modulo 2**64 as
    `& MASK64` does."""
    out = np.empty((len(states), k), dtype=np.uint64)
    state = states
    for t in range(k):
        state = state + np.uint64(GAMMA)
        z = (state ^ (state >> np.uint64(30))) * np.uint64(MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
        out[:, t] = z ^ (z >> np.uint64(31))
    return out


def splitmix_output(state: int, t: int) -> int:
    """Output t (from 0) of the SplitMix64 stream that starts at `state`: its state then is state + (t + 1)·GAMMA."""
    z = (state + (t + 1) * GAMMA) & MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def multiply_shift(z: np.ndarray, n: np.ndarray | np.uint64) -> np.ndarray:
    """`(z * n) >> 64` (a draw in [0, n) from a 64-bit output, as `SeededStream.below`) for uint64 z and n < 2**32,
    from 32-bit halves: uint64 products that cannot overflow."""
    n = np.asarray(n).astype(np.uint64)
    high, low = z >> np.uint64(32), z & np.uint64(0xFFFFFFFF)
    return ((high * n + ((low * n) >> np.uint64(32))) >> np.uint64(32)).astype(np.int64)


class SeededStream:
    """The draws of one decision of the probe stage (a probe's distractors, a stratum's neighbour, a row's option
    order): SplitMix64 (Steele, Lea & Flood 2014) started from `seeded_key`. A million-row build takes millions of
    decisions; starting a `random.Random` (624 words of state) for each was the largest single cost of the stage."""

    __slots__ = ("state",)

    def __init__(self, seed: int, *parts: str) -> None:
        self.state = int.from_bytes(seeded_key(seed, *parts), "big")

    def below(self, n: int) -> int:
        """A draw in [0, n) (multiply-shift of a 64-bit output; its bias, under n / 2**64, is immaterial here)."""
        self.state = z = (self.state + GAMMA) & MASK64
        z = ((z ^ (z >> 30)) * MIX1) & MASK64
        z = ((z ^ (z >> 27)) * MIX2) & MASK64
        return ((z ^ (z >> 31)) * n) >> 64

    def choice(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def shuffle(self, items: list) -> None:
        for i in range(len(items) - 1, 0, -1):  # Fisher–Yates
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        """k distinct items, in the order drawn."""
        pool = list(items)
        for i in range(k):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def positions(self, n: int, limit: int) -> Iterator[int]:
        """Up to `limit` distinct positions in [0, n), drawn one at a time as the caller asks for them (a caller that
        needs three good candidates usually stops after three or four draws)."""
        if n <= 2 * limit:  # a small pool: a lazy Fisher–Yates over all its positions, swaps kept in a dict
            swapped: dict[int, int] = {}
            for i in range(min(limit, n)):
                j = i + self.below(n - i)
                drawn = swapped.get(j, j)
                swapped[j] = swapped.get(i, i)  # position i is never drawn from again
                yield drawn
            return
        seen: set[int] = set()
        while len(seen) < limit:  # a large pool: redraw the rare repeat
            position = self.below(n)
            if position not in seen:
                seen.add(position)
                yield position


def similar(a: str, b: str) -> bool:
    return fuzz.ratio(a.casefold(), b.casefold()) >= SIMILAR


def build_requests(index: KgIndex, templates: TemplateLibrary, domain: str, seed: int,
                   max_k: int = K_VALUES[-1]) -> tuple[list[Request], dict[str, dict[str, int]]]:
    """Requests for every level, and per level how many facts were eligible and the largest full k."""
    with gc_paused():  # tens of thousands of requests and memoised truths and pools, no cycles
        return _build_requests(index, templates, domain, seed, max_k)


def _build_requests(index: KgIndex, templates: TemplateLibrary, domain: str, seed: int,
                    max_k: int) -> tuple[list[Request], dict[str, dict[str, int]]]:
    labels = index.labels
    facts = [(tid, s, r, o) for (s, r, o), tid in index.triple_of.items() if labels[o]]
    # One key per fact, hashed in one pass (`seeded_digests`: the bytes `seeded_key(seed, "request", tid)` gives).
    keys = seeded_digests([seeded_prefix(seed, "request")], [tid for tid, _s, _r, _o in facts])
    by_level: dict[str, list[tuple[bytes, str, str, str, str]]] = defaultdict(list)
    nodes = index.nodes
    for key, (tid, s, r, o) in zip(keys, facts, strict=True):
        by_level[nodes[s].level].append((key, tid, s, r, o))
    phrased = _phrasings_of(index, templates)
    requests: list[Request] = []
    report: dict[str, dict[str, int]] = {}
    for level in LEVELS:
        candidates = sorted(by_level.get(level, []))
        chosen: list[Request] = []
        skipped_no_target = 0
        for tid, s, r, o, new in _counterfactuals(index, seed, candidates):
            if len(chosen) >= max_k:
                break
            if new is None:
                skipped_no_target += 1
                continue
            chosen.append(_request(index, phrased(r), domain, level, tid, s, r, o, new, len(chosen)))
        requests.extend(chosen)
        full_k = 10 ** (len(str(len(chosen))) - 1) if chosen else 0  # the largest power of ten ≤ requests
        report[level] = {"eligible_facts": len(candidates), "requests": len(chosen),
                         "largest_k": full_k, "skipped_no_counterfactual": skipped_no_target}
    return requests, report


def largest_k_per_level(kg: KnowledgeGraph, domain: str, seed: int = 0) -> dict[str, int]:
    """The largest full k of each level's request set, as a build with the shipped templates reports it."""
    index = KgIndex.from_tables(kg.nodes, kg.triples, kg.relations)
    _requests, report = build_requests(index, TemplateLibrary(), domain, seed)
    return {level: found["largest_k"] for level, found in report.items()}


def k_of_rank(rank: int) -> int:
    """The smallest k of the scale 1, 10, 100, … (K_VALUES, continued by powers of ten past 10 000 when --max-k asks
    for more) whose set holds the request at this rank."""
    k = 1
    while rank >= k:
        k *= 10
    return k


def counterfactual(index: KgIndex, s: str, r: str, o: str, seed: int, tid: str) -> str | None:
    """A new object of the true object's kind (`KgIndex.answer_pools`, closest kind first) that the KG does not make
    true for (s, r), and that does not read like the true one."""
    true_values = index.values(s, r)
    if index.is_hierarchy(r):  # "planet is a kind of giant planet" would be a loop, and so would the reverse
        true_values = true_values | index.descendants(s) | index.ancestors(s).keys()
    o_label = index.nodes[o].label
    rng = seeded_rng(seed, "target_new", tid)
    pools = index.answer_pools(s, r, o)
    for pool in pools:
        for _ in range(min(len(pool), DRAWS)):  # sampled, not scanned: a kind may hold a hundred thousand nodes
            c = pool[rng.randrange(len(pool))]
            if c not in true_values and c != s and index.nodes[c].label \
                    and not similar(index.nodes[c].label, o_label):
                return c
    return None


_NONE: frozenset[str] = frozenset()
# Counterfactuals are chosen a block of candidates at a time: their keys hashed together (`seeded_states`).
COUNTERFACTUAL_BLOCK = 1024


def _counterfactuals(index: KgIndex, seed: int, candidates: Sequence[tuple[bytes, str, str, str, str]]
                     ) -> Iterator[tuple[str, str, str, str, str | None]]:
    """(tid, s, r, o, `counterfactual(index, s, r, o, seed, tid)`) for each (key, tid, s, r, o) candidate, in order,
    drawn as `counterfactual` draws them (tests/test_requests_scale.py holds the two to the same answers) but cheaper,
    as a build takes one per request, all before its workers start: each key hashed in a block, one Mersenne Twister
    re-seeded through the C-level `seed` (as `random.Random(n)` does, without its Python-level `seed` and a new
    object), `randrange` inlined as the `getrandbits` rejection loop it runs, and o's later answer pools made only
    when its own kind gives no answer."""
    rng = random.Random()
    reseed, getrandbits = _random.Random.seed, rng.getrandbits
    labels, folded, values, same_kind = index.labels, index.folded, index.values, index.same_kind
    hierarchical = index.hierarchy_relations | HIERARCHY_PREDICATES
    prefix = seeded_prefix(seed, "target_new")
    for start in range(0, len(candidates), COUNTERFACTUAL_BLOCK):
        block = candidates[start:start + COUNTERFACTUAL_BLOCK]
        states = seeded_states([prefix], [tid for _key, tid, _s, _r, _o in block]).tolist()
        for (_key, tid, s, r, o), state in zip(block, states, strict=True):
            true_values = values(s, r)
            # as `counterfactual`, no loops through the hierarchy: its union of these, asked member by member
            below, above = (index.descendants(s), index.ancestors(s)) if r in hierarchical else (_NONE, _NONE)
            o_folded = labels[o].casefold()
            reseed(rng, state)
            found = None
            pools: list[list[str]] = [same_kind(o)]
            p = 0
            while p < len(pools):
                pool = pools[p]
                n = len(pool)
                bits = n.bit_length()
                for _ in range(min(n, DRAWS)):
                    drawn = getrandbits(bits)  # `rng.randrange(n)`: redraw what falls outside [0, n)
                    while drawn >= n:
                        drawn = getrandbits(bits)
                    c = pool[drawn]
                    if c not in true_values and c not in below and c not in above and c != s and labels[c] \
                            and ratio(folded[c][0], o_folded) < SIMILAR:
                        found = c
                        break
                if found is not None:
                    break
                if p == 0:
                    pools += index.answer_pools(s, r, o)[1:]
                p += 1
            yield tid, s, r, o, found


def _request(index: KgIndex, phrased: tuple[str, Phrasing, Phrasing], domain: str, level: str, tid: str, s: str,
             r: str, o: str, new: str, rank: int) -> Request:
    """The request for fact (s, r, o) with its counterfactual `new`; `phrased` is `_phrased(r)`'s (relation label,
    prompt phrasing, neutral phrasing)."""
    labels = index.labels
    subject, target_true = labels[s], labels[o]
    relation_label, prompt, neutral = phrased
    where = f"request for {tid}"
    return Request(f"req-{tid}", domain, level, index.nodes[s].branch, tid, s, r, o, new, subject, relation_label,
                   target_true, labels[new], prompt.render(where, subject=subject, object=target_true),
                   neutral.render(where, subject=subject, object=target_true), k_of_rank(rank))


def _phrasings_of(index: KgIndex, templates: TemplateLibrary) -> Callable[[str], tuple[str, Phrasing, Phrasing]]:
    """Per relation (memoised: a build has tens of thousands of requests and a few dozen relations), its label and
    its first prompt and neutral phrasings, which phrase its requests."""
    @functools.cache
    def phrased(r: str) -> tuple[str, Phrasing, Phrasing]:
        label = index.relation_labels.get(r, r)
        return label, templates.phrasings(r, label, "prompt")[0], templates.phrasings(r, label, "neutral")[0]
    return phrased


def requests_table(requests: list[Request]) -> pa.Table:
    ordered = sorted(requests, key=lambda q: (q.level, q.k_min, q.request_id))
    return pa.Table.from_pylist([q.__dict__ for q in ordered], schema=REQUESTS_SCHEMA)
