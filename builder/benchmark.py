"""The benchmark stage: hierarchy-tagged KG tables in, requests and verified 4-way MCQ rows out."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from .graph import KnowledgeGraph
from .hierarchy import LEVELS
from .kgindex import KgIndex
from .mcq import MCQ_SCHEMA, DraftRow, draft_row, draft_table, finish_rows
from .probes import ProbeBuilder
from .requests import K_VALUES, Request, build_requests, requests_table
from .templates import PROBE_TYPES, TemplateLibrary

SHARD_ROWS = 250_000
DRAFT_CHUNK = 500  # requests whose drafts become one Arrow table


@dataclass
class Benchmark:
    requests: pa.Table
    mcq: pa.Table
    report: dict[str, object] = field(default_factory=dict)

    def mcq_shards(self) -> Iterator[tuple[str, pa.Table]]:
        """(`<level>-NNNNN-of-NNNNN`, rows), each level's rows in id order, at most SHARD_ROWS per shard; one level is
        copied out at a time, so that writing the shards holds one level beside the rows."""
        for level in LEVELS:
            rows = self.mcq.filter(pc.equal(self.mcq["level"], level))
            if rows.num_rows == 0:
                continue
            count = -(-rows.num_rows // SHARD_ROWS)
            for i in range(count):
                yield f"{level}-{i:05d}-of-{count:05d}", rows.slice(i * SHARD_ROWS, SHARD_ROWS)


_FORKED: tuple[ProbeBuilder, list[Request], int, Path] | None = None


def _partitions(n: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous request ranges, one per worker (a single range below a few hundred requests)."""
    workers = max(1, min(workers, n // 500 or 1))
    bounds = [n * i // workers for i in range(workers + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _draft_requests(probes: ProbeBuilder, requests: list[Request], seed: int,
                    bar: tqdm | None = None) -> tuple[list[pa.Table], Counter[str]]:
    """Draft rows request by request, turned into Arrow columns every DRAFT_CHUNK requests (so that RSS holds columns,
    not Python objects)."""
    tables: list[pa.Table] = []
    drafts: list[DraftRow] = []
    skipped: Counter[str] = Counter()
    for i, request in enumerate(requests, 1):
        for spec in probes.probes(request):
            result = draft_row(probes.index, spec, request, seed)
            if isinstance(result, str):
                skipped[f"{spec.probe_type}: {result}"] += 1
            else:
                drafts.append(result)
        if i % DRAFT_CHUNK == 0 or i == len(requests):
            tables.append(draft_table(drafts, probes.index, seed))
            drafts = []
        if bar is not None:
            bar.update(1)
    return tables, skipped


def _draft_partition(bounds: tuple[int, int]) -> tuple[str, Counter[str]]:
    """A worker's drafts go to an Arrow IPC file that the parent maps, instead of through a pipe as a pickle (which
    the parent would hold twice, as bytes and as tables)."""
    assert _FORKED is not None
    probes, requests, seed, spill = _FORKED
    tables, skipped = _draft_requests(probes, requests[bounds[0]:bounds[1]], seed)
    path = spill / f"drafts-{bounds[0]:09d}.arrow"
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, MCQ_SCHEMA) as writer:
        for table in tables:
            writer.write_table(table)
    return str(path), skipped


def build_benchmark(kg: KnowledgeGraph, domain: str, *, seed: int = 0, templates_dir: Path | None = None,
                    max_k: int = K_VALUES[-1], progress: bool = False, workers: int = 1) -> Benchmark:
    """Requests, then probes and MCQ options per request — partitioned by request over `workers` processes. Every
    random choice is keyed by ids, so the rows are the same whatever the number of workers."""
    index = KgIndex.from_tables(kg.nodes, kg.triples, kg.relations)
    templates = TemplateLibrary(templates_dir)
    requests, request_report = build_requests(index, templates, domain, seed, max_k)
    probes = ProbeBuilder(index, templates, seed)
    drafts: list[pa.Table] = []
    skipped: Counter[str] = Counter()
    parts = _partitions(len(requests), workers)
    bar = tqdm(total=len(requests), desc="probes", unit="request", disable=None if progress else True, leave=False)
    if len(parts) == 1:
        part_drafts, part_skipped = _draft_requests(probes, requests, seed, bar)
        drafts, skipped = part_drafts, part_skipped
    else:
        global _FORKED  # read by the forked workers, which inherit it instead of pickling the index
        spill = tempfile.TemporaryDirectory(prefix="ks-drafts-")
        _FORKED = (probes, requests, seed, Path(spill.name))
        try:
            context = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(len(parts), mp_context=context) as pool:
                for (start, end), (path, part_skipped) in zip(parts, pool.map(_draft_partition, parts), strict=True):
                    drafts.append(pa.ipc.open_file(pa.memory_map(path)).read_all())  # file-backed pages
                    skipped += part_skipped
                    bar.update(end - start)
        finally:
            _FORKED = None
    bar.close()
    try:
        mcq, letters = finish_rows(drafts, seed)
    finally:
        if len(parts) > 1:
            spill.cleanup()
    counts = {(row["level"], row["probe_type"]): row["count_all"]
              for row in mcq.group_by(["level", "probe_type"]).aggregate([([], "count_all")]).to_pylist()}
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
