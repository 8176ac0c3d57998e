"""`ks-build verify DIR`: re-prove every MCQ row from its ids against the KG the build wrote.

For each row: the question's query (kind, subject, relation, object, second relation) is re-evaluated on the KG
(stated facts and declared inverses); the gold option must be entailed and proved by the row's provenance triples,
no other option may be entailed, the four options must be distinct nodes whose labels do not read alike, and the
target must agree with the request: direct and conflict Q+ rows point at the request's new object, reverse rows are
undecided (−1), multi-hop and comparison targets follow from the new object in the KG, Q− rows keep their answer.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rapidfuzz import process
from rapidfuzz.fuzz import ratio
from tqdm import tqdm

from .errors import KsUserError
from .kgindex import KgIndex
from .mcq import N_OPTIONS, reads_alike, reads_like_any
from .probes import CHAIN, OBJECT, PEER, SUBJECT, Query
from .requests import SIMILAR


@dataclass
class VerifyReport:
    rows: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (row id, reason)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, object]:
        return {"rows_checked": self.rows, "failures": len(self.failures), "ok": self.ok,
                "first_failures": [f"{row}: {reason}" for row, reason in self.failures[:20]]}


def verify_folder(folder: Path, workers: int = 1, progress: bool = False) -> VerifyReport:
    """Re-prove every MCQ row of a build; row groups are shared out over `workers` forked processes (the index is
    built once and inherited), and the failures come back in shard and row order whatever the number of workers.
    `progress`: a bar of rows checked (on a terminal)."""
    for name in ("nodes", "triples", "relations", "requests"):
        if not (folder / f"{name}.parquet").is_file():
            raise KsUserError(f"not a KnowledgeSmith build: {name}.parquet is missing", path=str(folder))
    global _FORKED
    index = KgIndex.from_folder(folder)
    requests = {r["request_id"]: r for r in pq.read_table(folder / "requests.parquet").to_pylist()}
    shards = {path: pq.ParquetFile(path).metadata for path in sorted((folder / "mcq").glob("*.parquet"))}
    parts = [(str(path), group) for path, metadata in shards.items() for group in range(metadata.num_row_groups)]
    bar = tqdm(total=sum(metadata.num_rows for metadata in shards.values()), desc="verify", unit="row",
               disable=None if progress else True, leave=False)
    report = VerifyReport()
    _FORKED = (index, requests)
    pool = None
    try:
        results: Iterator[tuple[int, list[tuple[str, str]]]] = map(_verify_part, parts)
        if workers > 1 and len(parts) > 1:
            pool = concurrent.futures.ProcessPoolExecutor(min(workers, len(parts)),
                                                          mp_context=multiprocessing.get_context("fork"))
            results = pool.map(_verify_part, parts)
        for rows, failures in results:
            report.rows += rows
            report.failures += failures
            bar.update(rows)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        _FORKED = None
        bar.close()
    return report


_FORKED: tuple[KgIndex, dict[str, dict]] | None = None


def _verify_part(part: tuple[str, int]) -> tuple[int, list[tuple[str, str]]]:
    assert _FORKED is not None
    index, requests = _FORKED
    table = pq.ParquetFile(part[0]).read_row_group(part[1], columns=CHECKED_COLUMNS)
    options_alike = _options_alike(index, table)
    columns = table.to_pydict()
    failures = []
    rows = 0
    for i, values in enumerate(zip(*columns.values(), strict=True)):  # column-wise conversion: faster than to_pylist
        row = dict(zip(columns, values, strict=True))
        rows += 1
        reason = check_row(index, requests, row, options_alike=options_alike[i])
        if reason is not None:
            failures.append((row["id"], reason))
    return rows, failures


def _options_alike(index: KgIndex, table: pa.Table) -> list[bool | None]:
    """Per row, whether two of its options read alike — for the rows of four known, single-named nodes, every such
    row's six label pairs scored in one rapidfuzz call; None (left to `check_row`) for any other row."""
    ids = table["choice_ids"].to_pylist()
    first_name = {}
    for node in {node for row in ids for node in row}:
        info = index.nodes.get(node)
        first_name[node] = index.folded[node][0] if info is not None and not info.aliases else None
    simple = [len(row) == N_OPTIONS and all(first_name[node] is not None for node in row) for row in ids]
    left: list[str] = []
    right: list[str] = []
    for row, ok in zip(ids, simple, strict=True):
        if ok:
            names = [first_name[node] for node in row]
            left += [names[i] for i, _j in _PAIRS]
            right += [names[j] for _i, j in _PAIRS]
    scores = process.cpdist(left, right, scorer=ratio, processor=None, score_cutoff=SIMILAR, dtype=np.int32)
    alike = (scores.reshape(-1, len(_PAIRS)) > 0).any(axis=1) if len(left) else np.zeros(0, dtype=bool)
    scored = iter(alike.tolist())
    return [next(scored) if ok else None for ok in simple]


_PAIRS = [(i, j) for i in range(N_OPTIONS) for j in range(i + 1, N_OPTIONS)]


CHECKED_COLUMNS = ["id", "request_id", "probe_type", "role", "choices", "answer", "target", "choice_ids", "provenance",
                   "query_kind", "query_subject_id", "query_relation_id", "query_object_id", "query_relation2_id"]


def check_row(index: KgIndex, requests: dict[str, dict], row: dict, options_alike: bool | None = None) -> str | None:
    """The reason a row is wrong, or None when it is proved. `options_alike`, when known, says whether two options
    read alike (scored for a whole row group at once by `_options_alike`)."""
    choice_ids = row["choice_ids"]
    if len(choice_ids) != N_OPTIONS or len(set(choice_ids)) != N_OPTIONS:
        return "options are not four distinct nodes"
    if any(node not in index.nodes for node in choice_ids):
        return "an option is not a node of the KG"
    if [index.nodes[node].label for node in choice_ids] != row["choices"]:
        return "choice texts do not match their node labels"
    if options_alike is None:
        options_alike = any(reads_like_any(index, choice_ids[i], choice_ids[i + 1:]) for i in range(N_OPTIONS - 1))
    if options_alike:
        for i in range(N_OPTIONS):  # which two: only for the message
            for j in range(i + 1, N_OPTIONS):
                if reads_alike(index, choice_ids[i], choice_ids[j]):
                    return f"options {'ABCD'[i]} and {'ABCD'[j]} read alike"
    query = Query(row["query_kind"], row["query_subject_id"], row["query_relation_id"], row["query_object_id"],
                  row["query_relation2_id"])
    truths = query.truths(index)
    answer = row["answer"]
    if not 0 <= answer < N_OPTIONS:
        return f"answer {answer} is not a letter"
    gold = choice_ids[answer]
    if gold not in truths:
        return f"gold {gold} is not entailed by the KG"
    for i, node in enumerate(choice_ids):
        if i != answer and node in truths:
            return f"distractor {'ABCD'[i]} ({node}) is entailed by the KG"
    provenance = row["provenance"]
    if not provenance or set(provenance) != set(query.proof(index, gold)):
        return "provenance does not prove the gold"
    request = requests.get(row["request_id"])
    if request is None:
        return "unknown request"
    if row["role"] == "q_plus" and not _asks_the_request(row, query, request):
        return "a Q+ row's question is not about its request's fact"
    return _check_target(index, request, row, query)


def _asks_the_request(row: dict, query: Query, request: dict) -> bool:
    """A Q+ row must ask about the edited fact itself (so a wrong gold cannot hide behind another query)."""
    s, r, o = request["subject_id"], request["relation_id"], request["target_true_id"]
    expected = {
        "direct": (OBJECT, s, r, None), "conflict": (OBJECT, s, r, None), "reverse": (SUBJECT, None, r, o),
        "multi_hop": (CHAIN, s, r, None), "comparison": (PEER, s, r, None),
    }.get(row["probe_type"])
    return expected is not None and (query.kind, query.subject_id, query.relation_id, query.object_id) == expected


def _check_target(index: KgIndex, request: dict, row: dict, query: Query) -> str | None:
    """The target the edit decides, recomputed from the request and the KG exactly as the builder defines it."""
    target, choice_ids = row["target"], row["choice_ids"]
    new, s, o = request["target_new_id"], request["subject_id"], request["target_true_id"]
    if row["role"] == "q_minus":
        return None if target == row["answer"] else "a Q− row's target must be its answer"
    if row["probe_type"] in ("direct", "conflict"):
        ok = 0 <= target < N_OPTIONS and choice_ids[target] == new
        return None if ok else "target is not the request's new object"
    if row["probe_type"] == "reverse":
        return None if target == -1 else "a reverse row's target must be undecided (-1)"
    if query.kind == CHAIN:
        after = index.values(new, query.relation2_id)  # type: ignore[arg-type]
        allowed = set(after) if len(after) == 1 else set()
    else:  # PEER: a subject having the new object that was not a peer before the edit
        allowed = set(index.holders(query.relation_id, new)) - {s} - set(index.holders(query.relation_id, o))
    if target == -1:
        offered = allowed & set(choice_ids)
        return None if not offered else "target is −1 although an option follows from the new object"
    if not 0 <= target < N_OPTIONS:
        return f"target {target} is not a letter"
    return None if choice_ids[target] in allowed else "target does not follow from the request's new object"
