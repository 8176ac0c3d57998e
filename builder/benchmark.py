"""The benchmark stage: hierarchy-tagged KG tables in, requests and verified 4-way MCQ rows out.

Rows are drafted a chunk of requests at a time, in row-id order (requests sorted by id, a request's rows sorted by
id), and spilled to Arrow IPC files as they are made — by one process, or by `workers` forked processes over contiguous
ranges of that order. Gold letters depend only on a row's position in id order, so `Benchmark.finished_batches`
streams the files back with their letters fixed, and the shards are written from that stream: memory holds the KG,
its index and one chunk of rows, whatever the number of rows.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import multiprocessing
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

import pyarrow as pa
from tqdm import tqdm

from .graph import KnowledgeGraph
from .hierarchy import LEVELS
from .kgindex import KgIndex, gc_paused
from .mcq import MCQ_SCHEMA, DraftRow, draft_rows, draft_table, finish_batch
from .probes import ProbeBuilder
from .requests import K_VALUES, Request, build_requests, requests_table
from .templates import PROBE_TYPES, TemplateLibrary

DRAFT_CHUNK = 500  # requests whose rows become one record batch of a spill file
_LEVEL, _PROBE_TYPE, _REQUEST, _SPEC = attrgetter("level"), attrgetter("probe_type"), attrgetter("request"), \
    attrgetter("spec")


@dataclass
class DraftCounts:
    """What one partition drafted: rows per (level, probe type) and probes skipped, by reason."""

    rows: Counter[tuple[str, str]] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def __iadd__(self, other: DraftCounts) -> DraftCounts:
        self.rows += other.rows
        self.skipped += other.skipped
        return self


@dataclass
class Benchmark:
    """Requests, the report, and the MCQ rows as spill files in id order (read back by `finished_batches`; call
    `close` to remove them)."""

    requests: pa.Table
    report: dict[str, object]
    rows_per_level: dict[str, int]
    seed: int
    draft_files: list[Path]
    spill_dir: Path | None = None  # removed by `close`

    def finished_batches(self) -> Iterator[pa.Table]:
        """The MCQ rows in id order, a chunk at a time, with gold letters fixed (`mcq.finish_batch`); the letter
        histogram goes into `report["letters"]` once the stream is read to its end."""
        position = 0
        letters: Counter[str] = Counter()
        for path in self.draft_files:
            with pa.OSFile(str(path), "rb") as source:  # read, not memory-mapped: a chunk's pages are freed with it
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    batch = pa.Table.from_batches([reader.get_batch(i)])
                    table, counted = finish_batch(batch, position, self.seed)
                    position += table.num_rows
                    letters += counted
                    yield table
        self.report["letters"] = {letter: letters.get(letter, 0) for letter in "ABCD"}

    def close(self) -> None:
        if self.spill_dir is not None:
            shutil.rmtree(self.spill_dir, ignore_errors=True)
            self.spill_dir = None


_FORKED: tuple[ProbeBuilder, list[Request], int, list[tuple[int, int]], list[Path]] | None = None


def _partitions(n: int, workers: int) -> list[tuple[int, int]]:
    """Contiguous request ranges, one per worker (a single range below a few hundred requests)."""
    workers = max(1, min(workers, n // 500 or 1))
    bounds = [n * i // workers for i in range(workers + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


@contextlib.contextmanager
def _gc_skipping_long_lived() -> Iterator[None]:
    """While drafting: the KG index and the requests are millions of long-lived objects, which every full collection
    of the cyclic garbage collector walked again (a quarter of the stage's time on a 291 k-row build); drafting makes
    millions of short-lived objects and no cycles, which reference counting frees as they die. So the objects made so
    far are frozen (in a forked worker, their copy-on-write pages are then never touched by a collection), and the
    cyclic collector is off: collections every 200 000 allocations still took about 2 % of drafting (by `gc.callbacks`:
    0.3 s of a worker's 15 s on the 1M-row bench build, 40–80 ms each, over a chunk's live rows and the growing memos)
    and found nothing to free. Undone on exit, when a collection finds any cycle made meanwhile."""
    already_frozen = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        with gc_paused():
            yield
    finally:
        if not already_frozen:
            gc.unfreeze()


def _draft_to_file(probes: ProbeBuilder, requests: list[Request], seed: int, path: Path,
                   bar: tqdm | None = None) -> DraftCounts:
    """Draft the rows of `requests` (given in id order) into an Arrow IPC file, a record batch per DRAFT_CHUNK
    requests, each request's rows sorted by id — so the file is in row-id order."""
    with _gc_skipping_long_lived():
        return _draft_rows_to_file(probes, requests, seed, path, bar)


def _draft_rows_to_file(probes: ProbeBuilder, requests: list[Request], seed: int, path: Path,
                        bar: tqdm | None) -> DraftCounts:
    """A chunk of DRAFT_CHUNK requests at a time: their probes (`probes_of`), then their rows (`draft_rows`), then
    one record batch — chunks, so that the seeded streams of the chunk's rows are started together in NumPy."""
    counts = DraftCounts()
    index = probes.index
    by_probe_id = attrgetter("spec.probe_id")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, MCQ_SCHEMA) as writer:
        for start in range(0, len(requests), DRAFT_CHUNK):
            chunk = requests[start:start + DRAFT_CHUNK]
            specs_per_request = probes.probes_of(chunk)
            specs = [spec for specs in specs_per_request for spec in specs]
            results = draft_rows(index, specs, [request for request, specs in zip(chunk, specs_per_request,
                                                                                  strict=True) for _ in specs], seed)
            drafts: list[DraftRow] = []
            end = 0
            for request_specs in specs_per_request:
                begin, end = end, end + len(request_specs)
                rows = [result for result in results[begin:end] if not isinstance(result, str)]
                rows.sort(key=by_probe_id)  # "contextual/10" sorts before "contextual/2"
                drafts += rows
            # counted for the whole chunk (Counter.update counts an iterable in C)
            counts.rows.update(zip(map(_LEVEL, map(_REQUEST, drafts)), map(_PROBE_TYPE, map(_SPEC, drafts)),
                                   strict=True))
            counts.skipped.update([f"{spec.probe_type}: {result}" for spec, result in zip(specs, results, strict=True)
                                   if isinstance(result, str)])
            writer.write_table(draft_table(drafts, index, seed))
            if bar is not None:
                bar.update(len(chunk))
    return counts


def _draft_partition(part: int) -> DraftCounts:
    assert _FORKED is not None
    probes, requests, seed, parts, paths = _FORKED
    start, end = parts[part]
    return _draft_to_file(probes, requests[start:end], seed, paths[part])


def build_benchmark(kg: KnowledgeGraph, domain: str, *, seed: int = 0, templates_dir: Path | None = None,
                    max_k: int = K_VALUES[-1], progress: bool = False, workers: int = 1,
                    spill_dir: Path | None = None,
                    while_drafting: Callable[[pa.Table], None] | None = None) -> Benchmark:
    """Requests, then probes and MCQ options per request — partitioned by request over `workers` processes. Every
    random choice is keyed by ids, so the rows are the same whatever the number of workers. The rows are spilled to
    `spill_dir` (created; a new temporary folder when None), which `Benchmark.close` removes: the build puts it in
    its staging folder, so that a killed build leaves nothing behind that the next build does not remove.
    `while_drafting(requests table)` runs in this process while the workers draft (before drafting, with one
    partition): work that needs the requests but not the rows, done while this process would otherwise wait."""
    index = KgIndex.from_tables(kg.nodes, kg.triples, kg.relations)
    templates = TemplateLibrary(templates_dir)
    requests, request_report = build_requests(index, templates, domain, seed, max_k)
    probes = ProbeBuilder(index, templates, seed)
    index.node_columns()  # made once, before any fork, for every partition's draft tables
    # Row ids are "<request id>/<probe type>/<number>": sorting requests by "<request id>/" puts their rows in id order.
    in_id_order = sorted(requests, key=lambda q: q.request_id + "/")
    parts = _partitions(len(in_id_order), workers)
    if spill_dir is None:
        spill_dir = Path(tempfile.mkdtemp(prefix="ks-drafts-"))
    else:
        spill_dir.mkdir(parents=True)
    paths = [spill_dir / f"drafts-{start:09d}.arrow" for start, _end in parts]
    counts = DraftCounts()

    def requests_and_more() -> pa.Table:
        """The requests table, and `while_drafting`'s work, done while the workers draft: long-lived objects without
        cycles (in a build, the verifier's KG index and codes), which full collections walked again and again, taking
        CPU from the workers."""
        with gc_paused():
            made = requests_table(requests)
            if while_drafting is not None:
                while_drafting(made)
        return made

    bar = tqdm(total=len(requests), desc="probes", unit="request", disable=None if progress else True, leave=False)
    try:
        if len(parts) == 1:
            table = requests_and_more()
            counts += _draft_to_file(probes, in_id_order, seed, paths[0], bar)
        else:
            global _FORKED  # read by the forked workers, which inherit it instead of pickling the index
            _FORKED = (probes, in_id_order, seed, parts, paths)
            try:
                context = multiprocessing.get_context("fork")
                with concurrent.futures.ProcessPoolExecutor(len(parts), mp_context=context) as pool:
                    drafted = pool.map(_draft_partition, range(len(parts)))  # the workers start here
                    table = requests_and_more()
                    for (start, end), part_counts in zip(parts, drafted, strict=True):
                        counts += part_counts
                        bar.update(end - start)
            finally:
                _FORKED = None
    except BaseException:
        shutil.rmtree(spill_dir, ignore_errors=True)
        raise
    finally:
        bar.close()
    report = {
        "requests_per_level": request_report,
        "mcq_rows": sum(counts.rows.values()),
        "mcq_per_level_and_probe_type": {level: {p: counts.rows.get((level, p), 0) for p in PROBE_TYPES}
                                         for level in LEVELS},
        "letters": {},  # filled in by Benchmark.finished_batches
        "probes_skipped": dict(sorted(counts.skipped.items())),
        "templates_sha256": templates.sha256(),
    }
    rows_per_level = {level: sum(counts.rows.get((level, p), 0) for p in PROBE_TYPES) for level in LEVELS}
    return Benchmark(requests=table, report=report, rows_per_level=rows_per_level, seed=seed,
                     draft_files=paths, spill_dir=spill_dir)
