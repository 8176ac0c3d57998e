"""4-way multiple-choice rows from probe specifications: verified distractors, balanced gold letters, shards.

Options are the gold, the node expected after the edit where the probe has one, and distractors of the gold's kind
that the KG does not make true for the question, drawn by a seeded RNG; no two options read alike (rapidfuzz ratio
below 90 between every pair of labels and aliases). A probe with fewer than three valid distractors is skipped and
counted, never padded. Gold letters are assigned after all rows exist, in row-id order, cycling through a seeded
permutation of A–D per block of four rows, so each letter holds a quarter of the rows (±1 row).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
from rapidfuzz import fuzz, process

from .kgindex import KgIndex
from .probes import ProbeSpec
from .requests import SIMILAR, Request, seeded_rng

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
    """Do any label or alias of `a` and of `b` read alike (rapidfuzz ratio ≥ 90, case-folded)? One C call per
    name of `a` against all names of `b`."""
    others = index.folded_names(b)
    return any(process.extractOne(name, others, scorer=fuzz.ratio, processor=None, score_cutoff=SIMILAR) is not None
               for name in index.folded_names(a))


def draft_row(index: KgIndex, spec: ProbeSpec, request: Request, seed: int) -> DraftRow | str:
    """Choose the options of one probe, or return why it is skipped."""
    truths = spec.query.truths(index)
    if spec.gold not in truths:
        return "gold not entailed"
    proof = spec.query.proof(index, spec.gold)
    if not proof:
        return "gold without a proof"
    options = [spec.gold]
    for node in spec.include:
        if node in truths:
            return "target already true"
        if any(reads_alike(index, node, chosen) for chosen in options):
            return "target reads like another option"
        options.append(node)
    pool = spec.pool
    rng = seeded_rng(seed, "distractors", spec.probe_id)
    chosen_ids = set(options)
    # Drawn without replacement, so a pool holding exactly three valid distractors always yields them.
    for position in rng.sample(range(len(pool)), min(DRAW_ATTEMPTS, len(pool))):
        if len(options) == N_OPTIONS:
            break
        candidate = pool[position]
        if candidate in chosen_ids or candidate in truths or candidate == spec.query.subject_id \
                or not index.nodes[candidate].label:
            continue
        if any(reads_alike(index, candidate, chosen) for chosen in options):
            continue
        options.append(candidate)
        chosen_ids.add(candidate)
    if len(options) < N_OPTIONS:
        return "fewer than 3 distractors"
    return DraftRow(spec, request, options, proof)


def finish_rows(drafts: list[DraftRow], index: KgIndex, seed: int) -> tuple[pa.Table, Counter[str]]:
    """Fix gold letters (balanced over the build) and option order; return the rows as an Arrow table."""
    drafts = sorted(drafts, key=lambda d: d.spec.probe_id)
    letters: Counter[str] = Counter()
    columns: dict[str, list] = {name: [] for name in MCQ_SCHEMA.names}
    block: list[int] = []
    for i, draft in enumerate(drafts):
        if i % N_OPTIONS == 0:
            block = list(range(N_OPTIONS))
            seeded_rng(seed, "letters", str(i // N_OPTIONS)).shuffle(block)
        gold_position = block[i % N_OPTIONS]
        spec, request = draft.spec, draft.request
        others = draft.options[1:]
        seeded_rng(seed, "order", spec.probe_id).shuffle(others)
        ordered = others[:gold_position] + [draft.options[0]] + others[gold_position:]
        letters["ABCD"[gold_position]] += 1
        target = ordered.index(spec.target) if spec.target is not None else -1
        columns["id"].append(spec.probe_id)
        columns["domain"].append(request.domain)
        columns["level"].append(request.level)
        columns["branch_id"].append(request.branch_id)
        columns["request_id"].append(request.request_id)
        columns["probe_type"].append(spec.probe_type)
        columns["role"].append(spec.role)
        columns["question"].append(spec.question)
        columns["choices"].append([index.nodes[node].label for node in ordered])
        columns["answer"].append(gold_position)
        columns["target"].append(target)
        columns["choice_ids"].append(ordered)
        columns["distance"].append(spec.distance)
        columns["template_id"].append(spec.template_id)
        columns["provenance"].append(draft.provenance)
        columns["query_kind"].append(spec.query.kind)
        columns["query_subject_id"].append(spec.query.subject_id)
        columns["query_relation_id"].append(spec.query.relation_id)
        columns["query_object_id"].append(spec.query.object_id)
        columns["query_relation2_id"].append(spec.query.relation2_id)
    return pa.table(columns, schema=MCQ_SCHEMA), letters
