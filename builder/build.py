"""The build: KG files in; `nodes`, `triples`, `relations`, `requests` Parquet files, MCQ shards under `mcq/` and
`manifest.json` out.

Everything is written into a temporary folder and renamed to `--out` at the end, so a failed build leaves nothing;
the verifier re-proves the rows in that folder before the rename and its result goes into the manifest.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from . import __version__
from .atomic import atomic_directory, atomic_write_bytes
from .benchmark import build_benchmark
from .errors import KsUserError
from .formats import KgFormat, describe, detect_format, read_head
from .graph import GraphAccumulator, KnowledgeGraph
from .kgindex import gc_paused
from .readers import read_kg_file
from .verify import Verification

SHARD_ROWS = 250_000  # MCQ rows per shard file
PARQUET_OPTIONS = {"compression": "zstd", "row_group_size": 50_000, "use_dictionary": True,
                   "write_statistics": True}


@dataclass
class BuildConfig:
    kg_paths: list[Path]
    out: Path
    format: KgFormat | None = None
    languages: list[str] = field(default_factory=lambda: ["en"])
    domain: str | None = None
    jsonld_contexts: dict[str, Path] = field(default_factory=dict)
    seed: int = 0
    progress: bool = True
    mcq: bool = True  # go on from the KG tables to requests and MCQ rows
    templates: Path | None = None
    max_k: int = 10_000
    workers: int = field(default_factory=lambda: max(1, min(os.cpu_count() or 1, 8)))


@dataclass
class InputFile:
    path: Path
    format: KgFormat
    sha256: str
    size: int
    statements: int = 0


# Shipped KGs by domain name: `kg/<file stem>.ttl` plus its per-source files `kg/<file stem>.<source>.ttl`.
SHIPPED_DOMAINS: dict[str, str] = {"bio": "biology", "econ": "economics", "hist": "history", "phys": "physics",
                                   "sample": "sample"}


def shipped_kg_paths(domain: str) -> list[Path]:
    """The files of a shipped domain KG (`bio`, `econ`, `hist`, `phys`, `sample`; full names work too)."""
    by_name = {**SHIPPED_DOMAINS, **{stem: stem for stem in SHIPPED_DOMAINS.values()}}
    stem = by_name.get(domain)
    folder = Path(str(resources.files("knowledgesmith.kg")))
    main = folder / f"{stem}.ttl"
    if stem is None or not main.is_file():
        available = sorted(name for name, s in SHIPPED_DOMAINS.items() if (folder / f"{s}.ttl").is_file())
        raise KsUserError(f"no shipped KG for domain {domain!r}; shipped: {', '.join(available)} "
                          "(or pass your own with --kg FILE)")
    return [main, *sorted(folder.glob(f"{stem}.*.ttl"))]


def default_kg_path() -> Path:
    """The small KG shipped with the package, used when neither --kg nor a shipped --domain is given."""
    return shipped_kg_paths("sample")[0]


def ingest(paths: Sequence[Path], *, fmt: KgFormat | None = None, languages: Sequence[str] = ("en",),
           domain: str = "kg", jsonld_contexts: dict[str, Path] | None = None,
           progress: bool = False) -> tuple[KnowledgeGraph, list[InputFile]]:
    """Read and merge KG files into one hierarchy-tagged graph (no files written)."""
    acc = GraphAccumulator(languages)
    inputs: list[InputFile] = []
    for path in paths:
        head = read_head(path)
        file_format = fmt or detect_format(path, head)
        if fmt is not None and not head.strip():
            raise KsUserError("file is empty", path=str(path))
        info = InputFile(path=path, format=file_format, sha256=_sha256(path), size=path.stat().st_size)
        info.statements = read_kg_file(acc, path, file_format, jsonld_contexts=jsonld_contexts or {},
                                       progress=progress)
        if info.statements == 0:
            raise KsUserError(f"no statements found in this {describe(file_format)} file", path=str(path))
        inputs.append(info)
    kg = acc.finish(domain)
    if kg.triples.num_rows == 0:
        names = ", ".join(str(p) for p in paths)
        raise KsUserError(
            f"{names}: the graph has no usable facts ({acc.statements_read} statements read, all of them labels, "
            "schema or OWL machinery); facts are triples between named nodes or from a named node to a literal")
    return kg, inputs


def run_build(config: BuildConfig) -> dict[str, object]:
    """Build the output folder; returns the manifest."""
    started = time.perf_counter()
    domain = config.domain or config.kg_paths[0].name.split(".")[0]
    with gc_paused():  # ingest makes the graph's long-lived objects and no cycles: see kgindex.gc_paused
        kg, inputs = ingest(config.kg_paths, fmt=config.format, languages=config.languages, domain=domain,
                            jsonld_contexts=config.jsonld_contexts, progress=config.progress)
    ingest_seconds = time.perf_counter() - started
    with atomic_directory(config.out) as staging:
        files: dict[str, dict[str, object]] = {}
        tables = [("nodes", kg.nodes), ("triples", kg.triples), ("relations", kg.relations)]
        if not config.mcq:
            for name, table in tables:
                files[f"{name}.parquet"] = write_parquet(table, staging / f"{name}.parquet")
            manifest = _manifest(config, domain, kg, inputs, files)
        else:
            verification: list[Verification] = []

            def while_drafting(requests: pa.Table) -> None:
                """While the workers draft: the tables, and the verifier's KG read back from them and coded."""
                for name, table in [*tables, ("requests", requests)]:
                    files[f"{name}.parquet"] = write_parquet(table, staging / f"{name}.parquet")
                verification.append(Verification(staging))

            benchmark = build_benchmark(kg, domain, seed=config.seed, templates_dir=config.templates,
                                        max_k=config.max_k, progress=config.progress, workers=config.workers,
                                        spill_dir=staging / ".drafts", while_drafting=while_drafting)
            (staging / "mcq").mkdir()  # present even when no probe found enough distractors
            verifier = verification[0]
            try:
                # each shard is re-proved by the verifier's workers as soon as it is complete, while the rest are
                # written; the failures still come back in shard and row order
                verifier.start(min(config.workers, _row_groups(benchmark.rows_per_level)))
                files.update(write_mcq_shards(benchmark.finished_batches(), benchmark.rows_per_level,
                                              staging / "mcq", progress=config.progress, on_shard=verifier.submit))
                manifest = _manifest(config, domain, kg, inputs, files)
                manifest["templates_sha256"] = benchmark.report.pop("templates_sha256")
                manifest["benchmark"] = benchmark.report
                manifest["verify"] = verifier.finish(progress=config.progress).summary()
            finally:
                verifier.close()
                benchmark.close()
        atomic_write_bytes(staging / "manifest.json", (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode())
    if config.progress:
        print(f"ingest {ingest_seconds:.2f}s, total {time.perf_counter() - started:.2f}s", file=sys.stderr)
    return manifest


def write_parquet(table: pa.Table, path: Path) -> dict[str, object]:
    """Write one table deterministically (zstd, fixed row groups) and return its sha256 and row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, **PARQUET_OPTIONS)
    tmp.rename(path)
    return {"rows": table.num_rows, "sha256": _sha256(path)}


def _row_groups(rows_per_level: dict[str, int]) -> int:
    """How many row groups the shards of these rows hold."""
    groups = int(PARQUET_OPTIONS["row_group_size"])
    return sum(rows // SHARD_ROWS * -(-SHARD_ROWS // groups) + -(-(rows % SHARD_ROWS) // groups)
               for rows in rows_per_level.values())


def write_mcq_shards(batches: Iterator[pa.Table], rows_per_level: dict[str, int], folder: Path,
                     progress: bool = False, on_shard: Callable[[Path], None] | None = None
                     ) -> dict[str, dict[str, object]]:
    """Stream MCQ rows (id order, levels mixed) into `<level>-NNNNN-of-NNNNN.parquet` shards of SHARD_ROWS rows,
    one level's rows in id order per file, written a row group at a time; returns sha256 and rows per file.
    Row groups are encoded, compressed, written and hashed on one I/O thread (pyarrow and hashlib release the GIL)
    while this thread reads the next rows and fixes their letters; one thread keeps the writes in order.
    `on_shard(path)` is called (on the I/O thread) as each shard is complete under its final name."""
    io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="ks-shards")
    writers = {level: _ShardWriter(folder, level, rows, io, on_shard) for level, rows in rows_per_level.items()
               if rows}
    bar = tqdm(total=sum(rows_per_level.values()), desc="shards", unit="row", disable=None if progress else True,
               leave=False)
    try:
        for table in batches:
            levels = table["level"]
            for level, writer in writers.items():
                rows = table.filter(pc.equal(levels, level))
                if rows.num_rows:
                    writer.add(rows)
            bar.update(table.num_rows)
        files: dict[str, dict[str, object]] = {}
        for writer in writers.values():
            files.update(writer.close())
    except BaseException:
        io.shutdown(wait=True, cancel_futures=True)  # no write may be running when the writers are closed
        for writer in writers.values():
            writer.abort()
        raise
    finally:
        io.shutdown(wait=True)
        bar.close()
    return files


class _ShardWriter:
    """One level's shards: rows are buffered up to a row group, row groups go into the open shard (under a
    temporary name until it is complete), SHARD_ROWS rows to a shard — the same files `write_parquet` would write
    for each shard's rows in one table. The row groups are written by `io` (one thread, so in order); at most
    MAX_PENDING_GROUPS of them wait for it, which bounds the memory they hold."""

    MAX_PENDING_GROUPS = 2

    def __init__(self, folder: Path, level: str, total_rows: int, io: concurrent.futures.Executor,
                 on_shard: Callable[[Path], None] | None = None) -> None:
        self.folder, self.level, self.total, self.io, self.on_shard = folder, level, total_rows, io, on_shard
        self.count = -(-total_rows // SHARD_ROWS)
        self.group_rows = int(PARQUET_OPTIONS["row_group_size"])
        self.options = {k: v for k, v in PARQUET_OPTIONS.items() if k != "row_group_size"}
        self.buffer: list[pa.Table] = []
        self.buffered = self.written = self.in_shard = 0
        self.shard = 0
        self.pending: list[concurrent.futures.Future[None]] = []
        self.writer: pq.ParquetWriter | None = None  # the open shard's; used by the I/O thread only
        self.tmp: Path | None = None
        self.files: dict[str, dict[str, object]] = {}

    def _name(self) -> str:
        return f"{self.level}-{self.shard:05d}-of-{self.count:05d}.parquet"

    def add(self, rows: pa.Table) -> None:
        self.buffer.append(rows)
        self.buffered += rows.num_rows
        while self.buffered >= (group := min(self.group_rows, SHARD_ROWS - self.in_shard)):
            self._flush(group)

    def _flush(self, n: int) -> None:
        table = pa.concat_tables(self.buffer)
        group, rest = table.slice(0, n), table.slice(n)
        self.buffer, self.buffered = ([rest] if rest.num_rows else []), rest.num_rows
        self.in_shard += n
        self.written += n
        shard_done = self.in_shard == SHARD_ROWS or self.written == self.total
        self.pending.append(self.io.submit(self._write_group, group, self._name(),
                                           self.in_shard if shard_done else None))
        if shard_done:
            self.in_shard = 0
            self.shard += 1
        while len(self.pending) > self.MAX_PENDING_GROUPS:
            self.pending.pop(0).result()

    def _write_group(self, group: pa.Table, name: str, shard_rows: int | None) -> None:
        """On the I/O thread: one row group into shard `name`; with `shard_rows`, the shard's last, which completes
        it (closed, renamed, hashed)."""
        if self.writer is None:
            self.tmp = self.folder / f".{name}.tmp"
            self.writer = pq.ParquetWriter(self.tmp, group.schema, **self.options)
        self.writer.write_table(group.combine_chunks(), row_group_size=group.num_rows)
        if shard_rows is not None:
            self.writer.close()
            assert self.tmp is not None
            final = self.folder / name
            self.tmp.rename(final)
            self.files[f"mcq/{final.name}"] = {"rows": shard_rows, "sha256": _sha256(final)}
            self.writer, self.tmp = None, None
            if self.on_shard is not None:
                self.on_shard(final)

    def close(self) -> dict[str, dict[str, object]]:
        if self.buffered:
            self._flush(self.buffered)
        while self.pending:
            self.pending.pop(0).result()
        if self.written != self.total:
            raise RuntimeError(f"{self.level}: {self.written} MCQ rows written, {self.total} drafted")
        return self.files

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _manifest(config: BuildConfig, domain: str, kg: KnowledgeGraph, inputs: list[InputFile],
              files: dict[str, dict[str, object]]) -> dict[str, object]:
    by_source: dict[str, int] = {}
    for source in kg.triples["source"].to_pylist():
        by_source[source] = by_source.get(source, 0) + 1
    return {
        "builder": "knowledgesmith",
        "builder_version": __version__,
        "domain": domain,
        "seed": config.seed,
        "languages": config.languages,
        "inputs": [
            {"file": info.path.name, "format": info.format.value, "sha256": info.sha256, "bytes": info.size,
             "statements": info.statements}
            for info in inputs
        ],
        "kg_sha256": _combined_sha256([info.sha256 for info in inputs]),
        "files": files,
        "counts": kg.counts,
        "facts_per_source": dict(sorted(by_source.items())),
        "hierarchy": {
            "method": kg.hierarchy_method,
            "cycles": kg.cycles,
            "edges_dropped_to_break_cycles": kg.dropped_hierarchy_edges,
        },
        "warnings": kg.warnings,
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _combined_sha256(digests: list[str]) -> str:
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()
