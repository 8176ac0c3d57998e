"""The benchmark a run evaluates: requests and their MCQ probes, from a build folder, a staged Hub folder or a Hub id.

Selection follows the data contract: requests are nested per domain and level by `k_min`, so "k = 100 at leaf level"
is every leaf request with `k_min <= 100` — exactly 100 of them when the pool is large enough. A k larger than the
pool is an error, not a silent truncation: a sweep whose largest point is smaller than it claims would mislead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from knowledgesmith.builder.errors import KsUserError

LEVELS = ("root", "intermediate", "leaf")

# Columns the harness needs; the rest of a row travels along untouched.
REQUEST_COLUMNS = ("request_id", "domain", "level", "branch_id", "subject_id", "relation_id", "target_true_id",
                   "target_new_id", "subject", "target_true", "target_new", "prompt", "neutral_answer", "k_min")
MCQ_COLUMNS = ("id", "domain", "level", "branch_id", "request_id", "probe_type", "role", "question", "choices",
               "answer", "target", "distance")


class DataError(KsUserError):
    """The data argument or a selection cannot be honoured; the message is one line for the user."""


@dataclass
class Benchmark:
    """Requests and MCQ rows of one data source, before selection."""

    source: str
    requests: pl.DataFrame
    mcq: pl.DataFrame
    manifest: dict = field(default_factory=dict)
    nodes: pl.DataFrame | None = None  # labels and aliases, for open-ended matching; None where the data lacks them

    @property
    def domains(self) -> list[str]:
        return sorted(self.requests["domain"].unique().to_list())


@dataclass
class Selection:
    """The requests of the largest k asked for, and the probes that belong to them."""

    requests: pl.DataFrame
    mcq: pl.DataFrame
    ks: list[int]

    def requests_for(self, k: int) -> pl.DataFrame:
        """The nested set for k: per domain and level, the requests whose k_min is at most k."""
        return self.requests.filter(pl.col("k_min") <= k)

    def mcq_for(self, k: int) -> pl.DataFrame:
        ids = self.requests_for(k)["request_id"]
        return self.mcq.filter(pl.col("request_id").is_in(ids.implode()))


def asks_an_updated_fact(mcq: pl.DataFrame, requests: pl.DataFrame) -> pl.Series:
    """Per row of `mcq`: a Q− row that asks a fact which one of `requests` updates (the same subject and relation).

    A batch of requests from one KG can hold request B's fact among request A's unrelated (Q−) probes: "capital of
    Italy" is contextual for the request on France and is itself edited when Italy's request is in the batch. Its
    change is then the intended effect, not collateral, so the metrics leave such rows out of the Q− figures.
    Data without the `query_*` columns (older builds) marks no row.
    """
    needed = {"query_subject_id", "query_relation_id"}
    if not needed <= set(mcq.columns) or not {"subject_id", "relation_id"} <= set(requests.columns):
        return pl.Series("asks_updated_fact", [False] * mcq.height, dtype=pl.Boolean)
    updated = requests.select(query_subject_id="subject_id", query_relation_id="relation_id").unique() \
        .with_columns(updated=pl.lit(True))
    flagged = (mcq.select("role", "query_subject_id", "query_relation_id")
               .join(updated, on=["query_subject_id", "query_relation_id"], how="left", maintain_order="left"))
    return ((flagged["role"] == "q_minus") & flagged["updated"].fill_null(False)).alias("asks_updated_fact")


def _check_columns(frame: pl.DataFrame, needed: tuple[str, ...], what: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks column(s) {', '.join(missing)}: is it a KnowledgeSmith build?")


def _read_parquet(paths: list[Path], what: str) -> pl.DataFrame:
    try:
        return pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")
    except (OSError, pl.exceptions.PolarsError) as err:
        raise DataError(f"cannot read {what}: {str(err).splitlines()[0]}") from None


def _load_build_folder(folder: Path) -> Benchmark:
    """A `ks-build` output folder: requests.parquet and mcq/<level>-*.parquet."""
    requests_path = folder / "requests.parquet"
    shards = sorted((folder / "mcq").glob("*.parquet"))
    if not requests_path.exists() or not shards:
        raise DataError(f"{folder}: no requests.parquet or mcq/*.parquet — was it built with MCQ (not --no-mcq)?")
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    nodes_path = folder / "nodes.parquet"
    nodes = _read_parquet([nodes_path], nodes_path.name) if nodes_path.exists() else None
    return Benchmark(str(folder), _read_parquet([requests_path], requests_path.name),
                     _read_parquet(shards, f"{folder / 'mcq'}"), manifest, nodes)


def _load_staged_folder(folder: Path) -> Benchmark:
    """A folder staged by `ks-publish` (data/<config>/<split>-*.parquet), read as Parquet."""
    requests = sorted((folder / "data" / "requests").glob("*.parquet"))
    shards = sorted((folder / "data" / "mcq").glob("*.parquet"))
    if not requests or not shards:
        raise DataError(f"{folder}: no data/requests or data/mcq shards")
    nodes = sorted((folder / "data" / "nodes").glob("*.parquet"))
    return Benchmark(str(folder), _read_parquet(requests, "requests"), _read_parquet(shards, "mcq"),
                     nodes=_read_parquet(nodes, "nodes") if nodes else None)


def _load_hub(repo_id: str) -> Benchmark:
    """A Hub dataset repo through `datasets.load_dataset` (uses the local cache when offline)."""
    import datasets

    try:
        mcq = datasets.load_dataset(repo_id, "mcq")
        requests = datasets.load_dataset(repo_id, "requests")
    except Exception as err:  # datasets raises many unrelated types for "not found" and "offline"
        raise DataError(f"cannot load {repo_id!r} from the Hub: {str(err).splitlines()[0] if str(err) else err!r}") \
            from None

    def frame(dataset_dict: datasets.DatasetDict) -> pl.DataFrame:
        return pl.concat([pl.from_arrow(split.data.table) for split in dataset_dict.values()], how="diagonal_relaxed")

    try:
        nodes = frame(datasets.load_dataset(repo_id, "nodes"))
    except Exception:  # noqa: BLE001 - the nodes config only improves open-ended matching; a repo may lack it
        nodes = None
    return Benchmark(repo_id, frame(requests), frame(mcq), nodes=nodes)


def load_benchmark(data: str | Path) -> Benchmark:
    """Load requests and MCQ rows from a build folder, a staged Hub folder, or a Hub repo id."""
    path = Path(data)
    if path.is_dir():
        bench = _load_staged_folder(path) if (path / "data").is_dir() else _load_build_folder(path)
    elif path.exists():
        raise DataError(f"{data}: is a file; --data takes a build folder or a Hub dataset id")
    elif str(data).count("/") == 1 and not str(data).startswith((".", "/")):
        bench = _load_hub(str(data))
    else:
        raise DataError(f"{data}: no such folder (and not a Hub id of the form ORG/NAME)")
    _check_columns(bench.requests, REQUEST_COLUMNS, f"{data}: requests")
    _check_columns(bench.mcq, MCQ_COLUMNS, f"{data}: mcq")
    return bench


def parse_ks(text: str) -> list[int]:
    """'1,10,100' → [1, 10, 100]; each k a positive integer."""
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise DataError(f"--k {text!r}: expected comma-separated positive integers, e.g. 1,10,100") from None
    if not ks or ks[0] < 1:
        raise DataError(f"--k {text!r}: expected comma-separated positive integers, e.g. 1,10,100")
    odd = [k for k in ks if 10 ** (len(str(k)) - 1) != k]
    if odd:
        # The build nests requests at powers of ten only (k_min); another k has no defined request set.
        raise DataError(f"--k {odd[0]}: the request sets are nested at powers of ten (1, 10, 100, 1000, 10000, …)")
    return ks


def select(bench: Benchmark, *, ks: list[int], levels: list[str] | None = None, domain: str | None = None,
           branch: str | None = None) -> Selection:
    """Requests of the given domain/levels/branch with k_min <= max(ks), and their probes.

    Every (domain, level) group must hold at least max(ks) requests; otherwise the error names the pool's size.
    """
    for level in levels or []:
        if level not in LEVELS:
            raise DataError(f"--level {level!r}: expected one of {', '.join(LEVELS)}")
    requests = bench.requests
    if domain is not None:
        if domain not in bench.domains:
            raise DataError(f"--domain {domain!r}: the data holds {', '.join(bench.domains) or 'no domain'}")
        requests = requests.filter(pl.col("domain") == domain)
    if levels:
        requests = requests.filter(pl.col("level").is_in(levels))
    if branch is not None:
        branches = requests["branch_id"].unique()
        matched = [b for b in branches.to_list() if b == branch or (b or "").rsplit("/", 1)[-1] == branch]
        if not matched:
            raise DataError(f"--branch {branch!r}: no requests in that branch (try a branch_id from requests.parquet)")
        requests = requests.filter(pl.col("branch_id").is_in(matched))
    if requests.is_empty():
        raise DataError(f"no requests in {bench.source} for the selection (domain={domain}, levels={levels})")
    k_max = max(ks)
    pool = requests.group_by("domain", "level").len()
    too_small = pool.filter(pl.col("len") < k_max)
    if not too_small.is_empty():
        row = too_small.sort("len").row(0, named=True)
        raise DataError(f"k = {k_max} is larger than the pool: {row['domain']}/{row['level']} holds {row['len']} "
                        f"requests (pick a smaller --k or another --level)")
    chosen = requests.filter(pl.col("k_min") <= k_max).sort("domain", "level", "k_min", "request_id")
    mcq = bench.mcq.filter(pl.col("request_id").is_in(chosen["request_id"].implode())).sort("id")
    return Selection(chosen, mcq, ks)
