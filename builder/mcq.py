"""4-way multiple-choice rows from probe specifications: verified distractors, balanced gold letters, shards.

Options are the gold, the node expected after the edit where the probe has one, and distractors of the gold's kind
(the closest kind first, then any wider pools the probe names) that the KG does not make true for the question, drawn
lazily by a seeded stream; no two options read alike (rapidfuzz ratio below 90 between every pair of labels and
aliases). A probe with fewer than three valid distractors is skipped and
counted, never padded. Gold letters follow each row's position in row-id order, cycling through a seeded
permutation of A–D per block of four rows, so each letter holds a quarter of the rows (±1 row).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz.fuzz import ratio

from .kgindex import KgIndex
from .probes import OBJECT, SUBJECT, ProbeSpec
from .requests import (
    GAMMA,
    MASK64,
    MIX1,
    MIX2,
    SIMILAR,
    Request,
    multiply_shift,
    seeded_prefix,
    seeded_state,
    seeded_states,
    splitmix_outputs,
)

N_OPTIONS = 4
DRAW_ATTEMPTS = 64  # distractor draws per probe before giving up

MCQ_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("domain", pa.string()),
    ("level", pa.string()),
    ("branch_id", pa.string()),
    ("request_id", pa.string()),
    ("probe_type", pa.string()),
    ("role", pa.string()),
    ("question", pa.string()),
    ("choices", pa.list_(pa.string())),
    ("answer", pa.int64()),
    ("target", pa.int64()),
    ("choice_ids", pa.list_(pa.string())),
    ("distance", pa.int32()),
    ("template_id", pa.string()),
    ("provenance", pa.list_(pa.string())),
    # what the question asks, so `ks-build verify` can re-prove every option
    ("query_kind", pa.string()),
    ("query_subject_id", pa.string()),
    ("query_relation_id", pa.string()),
    ("query_object_id", pa.string()),
    ("query_relation2_id", pa.string()),
])


@dataclass(slots=True)
class DraftRow:
    """A row before its letters are fixed: options[0] is the gold."""

    spec: ProbeSpec
    request: Request
    options: list[str]
    provenance: list[str]


def reads_alike(index: KgIndex, a: str, b: str) -> bool:
    """Do any label or alias of `a` and of `b` read alike (rapidfuzz ratio ≥ 90, case-folded)?"""
    return reads_like_any(index, a, (b,))


def reads_like_any(index: KgIndex, a: str, others: Sequence[str]) -> bool:
    """Does any label or alias of `a` read like any label or alias of one of `others` (rapidfuzz ratio ≥ 90,
    case-folded)?"""
    folded = index.folded
    return _names_alike(folded[a], [name for b in others for name in folded[b]])


def _names_alike(names: Sequence[str], others: Sequence[str]) -> bool:
    """Nodes mostly have one name, so this is a few direct calls of the C scorer (which returns 0 below the cutoff).
    The ratio is 100 · (1 − Indel distance / sum of the lengths), and the distance is at least the difference of the
    lengths: a pair whose lengths differ by more than (100 − SIMILAR) % of their sum reads below SIMILAR, no call
    needed (most pairs, in integer arithmetic, so exactly where the scorer would return 0)."""
    for other in others:
        size = len(other)
        for name in names:
            if 100 * abs(len(name) - size) <= (100 - SIMILAR) * (len(name) + size) \
                    and ratio(name, other, score_cutoff=SIMILAR):
                return True
    return False


def draft_row(index: KgIndex, spec: ProbeSpec, request: Request, seed: int,
              ahead: Sequence[int] | None = None) -> DraftRow | str:
    """Choose the options of one probe, or return why it is skipped. `ahead`, where given, is the probe's first
    draws from its first pool as `distractor_draws` computes them for many probes at once: tried first, and only
    when they run out before the options are complete are the draws made again, one by one, from the start."""
    query = spec.query
    if spec.checked is not None:  # looked up by the probe stage (a contextual row)
        truths, proof = spec.checked
        if spec.gold not in truths:
            return "gold not entailed"
    elif query.kind == OBJECT:  # one lookup each for the truths and the proof, not a method dispatch
        truths = index.values(query.subject_id, query.relation_id)  # type: ignore[arg-type]
        found = index.triple_of.get((query.subject_id, query.relation_id, spec.gold))  # type: ignore[arg-type]
        if spec.gold not in truths:
            return "gold not entailed"
        proof = [found] if found is not None else query.proof(index, spec.gold)
    else:
        truths = query.truths(index)
        if spec.gold not in truths:
            return "gold not entailed"
        proof = query.proof(index, spec.gold)
    if not proof:
        return "gold without a proof"
    folded, nodes = index.folded, index.nodes
    options = [spec.gold]
    option_names = list(folded[spec.gold])  # every name of every option so far
    for node in spec.include:
        if node in truths:
            return "target already true"
        if _names_alike(folded[node], option_names):
            return "target reads like another option"
        options.append(node)
        option_names += folded[node]
    subject = query.subject_id
    if ahead is not None:
        # The draws made ahead are the first positions the loop below would draw from the first pool, in order, and
        # whether a candidate is taken never changes which position comes next; a large pool's rare repeated
        # position is rejected here as it was the first time (taken, it is an option; passed over, it still is).
        # Options found here are false for the question, so the count of such nodes below would not have skipped
        # the probe: it is made only where these draws fall short.
        pool = spec.pool
        given, given_names = len(options), len(option_names)
        for position in ahead:
            if position < 0:  # the pool has no more positions: the loop below goes on to the wider pools
                break
            candidate = pool[position]
            if candidate in options or candidate in truths or candidate == subject or not nodes[candidate].label:
                continue
            names = folded[candidate]
            if len(names) == 1:  # `_names_alike` inlined for the usual node, with one name
                name, alike = names[0], False
                size = len(name)
                for other in option_names:
                    if 100 * abs(len(other) - size) <= (100 - SIMILAR) * (len(other) + size) \
                            and ratio(name, other, score_cutoff=SIMILAR):
                        alike = True
                        break
                if alike:
                    continue
            elif _names_alike(names, option_names):
                continue
            options.append(candidate)
            if len(options) == N_OPTIONS:
                return DraftRow(spec, request, options, proof)
            option_names += names
        del options[given:], option_names[given_names:]
    pools = (spec.pool, *spec.wider)
    needed = N_OPTIONS - len(options)
    if query.kind in (OBJECT, SUBJECT) and sum(map(len, pools)) - len(pools) * len(truths) < needed \
            and sum(index.count_outside(pool, truths) for pool in pools) < needed:
        # Too few nodes of the pools are false for the question (every node of a kind can hold the answer of a
        # reverse question), so no draw order finds enough: skip the draws, which only this probe's stream sees.
        # (Counted only where the sizes leave it possible, and memoised: pools and truth sets are shared.)
        return "fewer than 3 distractors"
    # SeededStream(seed, "distractors", probe id).positions over each pool in turn, inlined (this loop draws most of
    # the build's random numbers): drawn without replacement, so a pool holding exactly three valid distractors
    # always yields them; drawn lazily, so a probe costs the draws it uses, not DRAW_ATTEMPTS. A small pool is a lazy
    # Fisher–Yates over its positions (swaps kept in a dict), a large one redraws the rare repeat.
    state = seeded_state(seeded_prefix(seed, "distractors"), spec.probe_id)
    chosen_ids = set(options)
    for pool in pools:
        n = len(pool)
        small = n <= 2 * DRAW_ATTEMPTS
        if small:
            limit, swapped = min(DRAW_ATTEMPTS, n), {}
        else:
            limit, seen = DRAW_ATTEMPTS, set()
        drawn = 0  # distinct positions drawn from this pool
        while drawn < limit:
            state = (state + GAMMA) & MASK64
            z = ((state ^ (state >> 30)) * MIX1) & MASK64
            z = ((z ^ (z >> 27)) * MIX2) & MASK64
            z ^= z >> 31
            if small:
                j = drawn + ((z * (n - drawn)) >> 64)
                position = swapped.get(j, j)
                swapped[j] = swapped.get(drawn, drawn)  # position `drawn` is never drawn from again
            else:
                position = (z * n) >> 64
                if position in seen:
                    continue
                seen.add(position)
            drawn += 1
            candidate = pool[position]
            if candidate in chosen_ids or candidate in truths or candidate == subject \
                    or not nodes[candidate].label or _names_alike(folded[candidate], option_names):
                continue
            options.append(candidate)
            option_names += folded[candidate]
            chosen_ids.add(candidate)
            if len(options) == N_OPTIONS:
                break
        if len(options) == N_OPTIONS:
            break
    if len(options) < N_OPTIONS:
        return "fewer than 3 distractors"
    return DraftRow(spec, request, options, proof)


DRAWS_AHEAD = 6  # distractor draws per probe made ahead (most probes take three or four)


def draft_rows(index: KgIndex, specs: Sequence[ProbeSpec], requests: Sequence[Request],
               seed: int) -> list[DraftRow | str]:
    """`draft_row` of each probe (with its request), the first DRAWS_AHEAD draws of every probe made at once."""
    ahead = distractor_draws(seeded_prefix(seed, "distractors"), [spec.probe_id for spec in specs],
                             [len(spec.pool) for spec in specs], DRAWS_AHEAD).tolist()
    return [draft_row(index, spec, request, seed, drawn) for spec, request, drawn in zip(specs, requests, ahead,
                                                                                          strict=True)]


def distractor_draws(prefix: str, lasts: Sequence[str], sizes: Sequence[int], k: int) -> np.ndarray:
    """Per key, the first `k` positions that `SeededStream(...).positions(size, DRAW_ATTEMPTS)` draws, the stream
    keyed by `seeded_state(prefix, last)`: shape (len(lasts), k), −1 past a small pool's last position. For a large
    pool (over 2 × DRAW_ATTEMPTS) the positions are the raw draws, a repeat included where `positions` would skip it
    and draw again (k ≤ DRAW_ATTEMPTS, so its limit is never reached); a small pool's are the lazy Fisher–Yates's,
    whose swaps are replayed here from the earlier draws of the same row."""
    if not 0 < k <= DRAW_ATTEMPTS:
        raise ValueError(f"k must be in 1..{DRAW_ATTEMPTS}")
    n = np.asarray(sizes, dtype=np.int64).reshape(len(lasts))
    if n.size and (n.min() < 0 or n.max() >= 1 << 31):
        raise ValueError("pool sizes must be in [0, 2**31)")  # the multiply-shift below needs n·2**32 < 2**64
    small = n <= 2 * DRAW_ATTEMPTS
    z = splitmix_outputs(seeded_states([prefix], lasts), k)
    out = np.empty((len(lasts), k), dtype=np.int64)
    # a small pool's Fisher–Yates: the step t draws j in [t, n) and takes what j holds, then j holds what t held
    written_at = np.empty((len(lasts), k), dtype=np.int64)
    written = np.empty((len(lasts), k), dtype=np.int64)
    for t in range(k):
        remaining = np.maximum(n - t, 0) if t else n
        j = t + multiply_shift(z[:, t], np.where(small, remaining, n))
        position, held_at_t = j.copy(), np.full(len(lasts), t, dtype=np.int64)
        for earlier in range(t):  # later writes win, as in the dict
            position = np.where(written_at[:, earlier] == j, written[:, earlier], position)
            held_at_t = np.where(written_at[:, earlier] == t, written[:, earlier], held_at_t)
        written_at[:, t], written[:, t] = j, held_at_t
        out[:, t] = np.where(small, np.where(t < n, position, -1), j - t)
    return out


# Where each option of a draft (gold first, then the distractors in their seeded order) goes for each gold position:
# the gold at p, the others keep their order around it.
_SLOTS_FOR_GOLD = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [1, 2, 0, 3], [1, 2, 3, 0]], dtype=np.int64)
_POSITION_OF_SLOT = np.argsort(_SLOTS_FOR_GOLD, axis=1)  # [gold position, draft slot] → final position


def draft_table(drafts: list[DraftRow], index: KgIndex, seed: int) -> pa.Table:
    """Drafts as MCQ rows before their letters are fixed (so that a partition of the build holds Arrow columns, not
    Python objects): options gold first, then the others in their seeded order; `answer` 0 and `target` the slot of
    the target among the options (−1 for none) until `finish_batch` moves the gold to its letter. Columns are read
    with `map(attrgetter)` (a request's once per request); the options become node numbers, reordered by
    `option_order`, and their ids and labels are taken from `KgIndex.node_columns`."""
    specs = list(map(_SPEC, drafts))
    requests = list(map(_REQUEST, drafts))
    queries = list(map(_QUERY, specs))
    probe_ids = list(map(_PROBE_ID, specs))
    take = option_order(probe_ids, seed)
    numbers, node_ids, node_labels = index.node_columns()
    flat_numbers = np.fromiter(map(numbers.__getitem__, [node for draft in drafts for node in draft.options]),
                               dtype=np.int64, count=N_OPTIONS * len(drafts))
    drafted_target = np.array([draft.options.index(draft.spec.target) if draft.spec.target is not None else -1
                               for draft in drafts], dtype=np.int64)
    option_offsets = pa.array(np.arange(0, N_OPTIONS * len(drafts) + 1, N_OPTIONS, dtype=np.int32))
    in_final_order = pa.array(flat_numbers[take.ravel()])
    columns: dict[str, object] = {
        "id": probe_ids,
        "choices": pa.ListArray.from_arrays(option_offsets, node_labels.take(in_final_order)),
        "answer": np.zeros(len(drafts), dtype=np.int64),
        # where the drafted slot of the target went: the slot whose take is the drafted one
        "target": np.where(drafted_target >= 0, np.argmax(
            take == (np.arange(len(drafts))[:, None] * N_OPTIONS + np.maximum(drafted_target, 0)[:, None]), axis=1),
            -1),
        "choice_ids": pa.ListArray.from_arrays(option_offsets, node_ids.take(in_final_order)),
        "provenance": list(map(_PROVENANCE, drafts)),
    }
    # a request's rows are consecutive: its columns are converted once per request and repeated by a take
    firsts = [row for row, (request, before) in enumerate(zip(requests, [None, *requests], strict=False))
              if request is not before]
    owners = pa.array(np.repeat(np.arange(len(firsts)), np.diff([*firsts, len(drafts)])))
    for name in ("domain", "level", "branch_id", "request_id"):
        columns[name] = pa.array([getattr(requests[row], name) for row in firsts], pa.string()).take(owners)
    for name in ("probe_type", "role", "question", "distance", "template_id"):
        columns[name] = list(map(attrgetter(name), specs))
    for name in ("kind", "subject_id", "relation_id", "object_id", "relation2_id"):
        columns[f"query_{name}"] = list(map(attrgetter(name), queries))
    return pa.table(columns, schema=MCQ_SCHEMA)


def option_order(probe_ids: list[str], seed: int) -> np.ndarray:
    """For each row of four drafted options (gold first), the flat positions of its options in their final order:
    the gold, then the other three as `SeededStream(seed, "order", probe id).shuffle` leaves them."""
    others = 1 + seeded_shuffles(seeded_prefix(seed, "order"), probe_ids, N_OPTIONS - 1)  # drafted slots 1–3
    return np.concatenate([np.zeros((len(probe_ids), 1), dtype=np.int64), others], axis=1) \
        + (np.arange(len(probe_ids)) * N_OPTIONS)[:, None]


def seeded_shuffles(prefix: str, lasts: Sequence[str], size: int) -> np.ndarray:
    """Per key, `list(range(size))` as `SeededStream(...).shuffle` leaves it, the stream keyed by
    `seeded_state(prefix, last)`: an array of shape (len(lasts), size), a row per key. The streams' SplitMix64 draws are
    computed for all keys at once in uint64 arithmetic (exact, modulo 2**64), their multiply-shift `(z * n) >> 64`
    from 32-bit halves; only the keys are hashed one by one."""
    z = splitmix_outputs(seeded_states([prefix], lasts), max(size - 1, 0))
    rows = np.arange(len(lasts))
    items = np.tile(np.arange(size, dtype=np.int64), (len(lasts), 1))
    for step, i in enumerate(range(size - 1, 0, -1)):  # Fisher–Yates as SeededStream.shuffle: i ⇄ a draw in [0, i]
        j = multiply_shift(z[:, step], np.uint64(i + 1))
        swapped = items[rows, j].copy()
        items[rows, j] = items[:, i]
        items[:, i] = swapped
    return items


_SPEC, _REQUEST, _QUERY = attrgetter("spec"), attrgetter("request"), attrgetter("query")
_PROBE_ID, _PROVENANCE = attrgetter("probe_id"), attrgetter("provenance")


def finish_batch(table: pa.Table, start: int, seed: int) -> tuple[pa.Table, Counter[str]]:
    """Fix the gold letters of rows at positions `start`, `start` + 1, … of the build's id order and move each gold
    to its letter. Letters are balanced over the build: each block of four consecutive rows takes a seeded permutation
    of A–D, so a row's letter depends only on its position and the seed. Returns the rows and their letter
    histogram."""
    n = table.num_rows
    first_block = start // N_OPTIONS
    block_numbers = range(first_block, (start + n - 1) // N_OPTIONS + 1 if n else first_block)
    blocks = seeded_shuffles(seeded_prefix(seed, "letters"), list(map(str, block_numbers)), N_OPTIONS).ravel()
    skip = start - first_block * N_OPTIONS
    gold = blocks[skip:skip + n]
    take = (np.arange(n, dtype=np.int64)[:, None] * N_OPTIONS + _SLOTS_FOR_GOLD[gold]).ravel()
    offsets = pa.array(np.arange(0, N_OPTIONS * n + 1, N_OPTIONS, dtype=np.int32))
    slot = table["target"].to_numpy()
    target = np.where(slot >= 0, _POSITION_OF_SLOT[gold, np.maximum(slot, 0)], -1)
    columns = {name: table[name] for name in MCQ_SCHEMA.names}
    for name in ("choices", "choice_ids"):
        values = pc.list_flatten(table[name].combine_chunks())
        columns[name] = pa.ListArray.from_arrays(offsets, values.take(pa.array(take)))
    columns["answer"] = pa.array(gold)
    columns["target"] = pa.array(target)
    letters = Counter({"ABCD"[i]: int(c) for i, c in enumerate(np.bincount(gold, minlength=N_OPTIONS))})
    return pa.table(columns, schema=MCQ_SCHEMA), letters
