"""The benchmark stage: hierarchy-tagged KG tables in, requests and verified 4-way MCQ rows out."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from .graph import KnowledgeGraph
from .hierarchy import LEVELS
from .kgindex import KgIndex
from .mcq import DraftRow, draft_row, finish_rows
from .probes import ProbeBuilder
from .requests import K_VALUES, Request, build_requests, requests_table
from .templates import PROBE_TYPES, TemplateLibrary

SHARD_ROWS = 250_000


@dataclass
class Benchmark:
    requests: pa.Table
    mcq: pa.Table
    report: dict[str, object] = field(default_factory=dict)

    def mcq_shards(self) -> dict[str, pa.Table]:
        """`<level>-NNNNN-of-NNNNN` → rows, each level's rows in id order, at most SHARD_ROWS per shard."""
        shards: dict[str, pa.Table] = {}
        for level in LEVELS:
            rows = self.mcq.filter(pc.equal(self.mcq["level"], level))
            if rows.num_rows == 0:
                continue
            count = -(-rows.num_rows // SHARD_ROWS)
            for i in range(count):
                shards[f"{level}-{i:05d}-of-{count:05d}"] = rows.slice(i * SHARD_ROWS, SHARD_ROWS)
        return shards


_FORKED: tuple[ProbeBuilder, list[Request], int] | None = None


def _partitions(n: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous request ranges, one per worker (a single range below a few hundred requests)."""
    workers = max(1, min(workers, n // 500 or 1))
    bounds = [n * i // workers for i in range(workers + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _draft_requests(probes: ProbeBuilder, requests: list[Request], seed: int,
                    bar: tqdm | None = None) -> tuple[list[DraftRow], Counter[str]]:
    drafts: list[DraftRow] = []
    skipped: Counter[str] = Counter()
    for request in requests:
        for spec in probes.probes(request):
            result = draft_row(probes.index, spec, request, seed)
            if isinstance(result, str):
                skipped[f"{spec.probe_type}: {result}"] += 1
            else:
                drafts.append(result)
        if bar is not None:
            bar.update(1)
    return drafts, skipped


def _draft_partition(bounds: tuple[int, int]) -> tuple[list[DraftRow], Counter[str]]:
    assert _FORKED is not None
    probes, requests, seed = _FORKED
    return _draft_requests(probes, requests[bounds[0]:bounds[1]], seed)


def build_benchmark(kg: KnowledgeGraph, domain: str, *, seed: int = 0, templates_dir: Path | None = None,
                    max_k: int = K_VALUES[-1], progress: bool = False, workers: int = 1) -> Benchmark:
    """Requests, then probes and MCQ options per request — partitioned by request over `workers` processes. Every
    random choice is keyed by ids, so the rows are the same whatever the number of workers."""
    index = KgIndex.from_tables(kg.nodes, kg.triples, kg.relations)
    templates = TemplateLibrary(templates_dir)
    requests, request_report = build_requests(index, templates, domain, seed, max_k)
    probes = ProbeBuilder(index, templates, seed)
    drafts: list[DraftRow] = []
    skipped: Counter[str] = Counter()
    parts = _partitions(len(requests), workers)
    bar = tqdm(total=len(requests), desc="probes", unit="request", disable=None if progress else True, leave=False)
    if len(parts) == 1:
        part_drafts, part_skipped = _draft_requests(probes, requests, seed, bar)
        drafts, skipped = part_drafts, part_skipped
    else:
        global _FORKED  # read by the forked workers, which inherit it instead of pickling the index
        _FORKED = (probes, requests, seed)
        try:
            context = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(len(parts), mp_context=context) as pool:
                for (start, end), (part_drafts, part_skipped) in zip(parts, pool.map(_draft_partition, parts),
                                                                     strict=True):
                    drafts += part_drafts
                    skipped += part_skipped
                    bar.update(end - start)
        finally:
            _FORKED = None
    bar.close()
    mcq, letters = finish_rows(drafts, index, seed)
    counts = Counter(zip(mcq["level"].to_pylist(), mcq["probe_type"].to_pylist(), strict=True))
    report = {
        "requests_per_level": request_report,
        "mcq_rows": mcq.num_rows,
        "mcq_per_level_and_probe_type": {level: {p: counts.get((level, p), 0) for p in PROBE_TYPES}
                                         for level in LEVELS},
        "letters": {letter: letters.get(letter, 0) for letter in "ABCD"},
        "probes_skipped": dict(sorted(skipped.items())),
        "templates_sha256": templates.sha256(),
    }
    return Benchmark(requests=requests_table(requests), mcq=mcq, report=report)
