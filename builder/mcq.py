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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz.fuzz import ratio

from .kgindex import KgIndex
from .probes import ProbeSpec
from .requests import SIMILAR, Request, SeededStream

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


@dataclass
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
    """Nodes mostly have one name, so this is a few direct calls of the C scorer (which returns 0 below the cutoff)."""
    for other in others:
        for name in names:
            if ratio(name, other, score_cutoff=SIMILAR):
                return True
    return False


def draft_row(index: KgIndex, spec: ProbeSpec, request: Request, seed: int) -> DraftRow | str:
    """Choose the options of one probe, or return why it is skipped."""
    truths = spec.query.truths(index)
    if spec.gold not in truths:
        return "gold not entailed"
    proof = spec.query.proof(index, spec.gold)
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
    rng = SeededStream(seed, "distractors", spec.probe_id)
    chosen_ids = set(options)
    subject = spec.query.subject_id
    for pool in (spec.pool, *spec.wider):
        # Drawn without replacement, so a pool holding exactly three valid distractors always yields them; drawn
        # lazily, so a probe costs the draws it uses, not DRAW_ATTEMPTS.
        for position in rng.positions(len(pool), DRAW_ATTEMPTS):
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


# Where each option of a draft (gold first, then the distractors in their seeded order) goes for each gold position:
# the gold at p, the others keep their order around it.
_SLOTS_FOR_GOLD = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [1, 2, 0, 3], [1, 2, 3, 0]], dtype=np.int64)
_POSITION_OF_SLOT = np.argsort(_SLOTS_FOR_GOLD, axis=1)  # [gold position, draft slot] → final position


def draft_table(drafts: list[DraftRow], index: KgIndex, seed: int) -> pa.Table:
    """Drafts as MCQ rows before their letters are fixed (so that a partition of the build holds Arrow columns, not
    Python objects): options gold first, then the others in their seeded order; `answer` 0 and `target` the slot of
    the target among the options (−1 for none) until `finish_batch` moves the gold to its letter."""
    specs = [draft.spec for draft in drafts]
    requests = [draft.request for draft in drafts]
    option_lists = []
    for draft in drafts:
        others = draft.options[1:]
        SeededStream(seed, "order", draft.spec.probe_id).shuffle(others)
        option_lists.append([draft.options[0], *others])
    nodes = index.nodes
    queries = [spec.query for spec in specs]
    columns: dict[str, list] = {
        "id": [spec.probe_id for spec in specs],
        "choices": [[nodes[node].label for node in options] for options in option_lists],
        "answer": [0] * len(drafts),
        "target": [options.index(spec.target) if spec.target is not None else -1
                   for spec, options in zip(specs, option_lists, strict=True)],
        "choice_ids": option_lists,
        "provenance": [draft.provenance for draft in drafts],
    }
    for name in ("domain", "level", "branch_id", "request_id"):
        columns[name] = [getattr(request, name) for request in requests]
    for name in ("probe_type", "role", "question", "distance", "template_id"):
        columns[name] = [getattr(spec, name) for spec in specs]
    for name in ("kind", "subject_id", "relation_id", "object_id", "relation2_id"):
        columns[f"query_{name}"] = [getattr(query, name) for query in queries]
    return pa.table(columns, schema=MCQ_SCHEMA)


def finish_batch(table: pa.Table, start: int, seed: int) -> tuple[pa.Table, Counter[str]]:
    """Fix the gold letters of rows at positions `start`, `start` + 1, … of the build's id order and move each gold
    to its letter. Letters are balanced over the build: each block of four consecutive rows takes a seeded permutation
    of A–D, so a row's letter depends only on its position and the seed. Returns the rows and their letter
    histogram."""
    n = table.num_rows
    first_block = start // N_OPTIONS
    blocks = []
    for block_number in range(first_block, (start + n - 1) // N_OPTIONS + 1 if n else first_block):
        block = list(range(N_OPTIONS))
        SeededStream(seed, "letters", str(block_number)).shuffle(block)
        blocks += block
    skip = start - first_block * N_OPTIONS
    gold = np.array(blocks[skip:skip + n], dtype=np.int64)
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
