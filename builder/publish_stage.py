"""Staging for `ks-publish`: a verified build folder in, the files of its Hub dataset repo laid out in a folder out.

The staged folder is what the Hub repo will hold, byte for byte: `README.md` (the dataset card, YAML front matter
with `configs:` and `dataset_info:`), `data/<config>/<split>-NNNNN-of-NNNNN.parquet` and `lm_eval/*.yaml`. It loads
offline with `datasets.load_dataset(folder, config)`. Re-staging the same build gives the same bytes, which is what
lets a second publish find nothing to send.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from tqdm import tqdm

from . import __version__
from .atomic import atomic_directory, atomic_write_bytes
from .build import SHIPPED_DOMAINS
from .errors import KsUserError
from .hierarchy import LEVELS
from .templates import PROBE_TYPES

# The Hub's dataset viewer reads Parquet a row group at a time and pages through shards: keep both small enough that
# a page never needs more than a few MB of memory (the build's own shards use 50 000-row groups). SHARD_ROWS is a
# multiple of ROW_GROUP_ROWS, so every shard but a split's last is exactly SHARD_ROWS rows.
SHARD_ROWS = 100_000
ROW_GROUP_ROWS = 10_000
_PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": True, "write_statistics": True,
                                    "write_page_index": True}
if int(pa.__version__.split(".")[0]) >= 21:
    # Content-defined pages: a rebuild that changes a few rows changes a few pages, so Xet storage re-uploads little.
    _PARQUET_OPTIONS["use_content_defined_chunking"] = True

DEFAULT_CONFIG = "mcq"
CONFIGS = ("mcq", "requests", "triples", "nodes", "relations")
LM_EVAL_DIR = "lm_eval"
VARIANTS = ("letter", "cloze")
LETTERS = "ABCD"
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


@dataclass(frozen=True)
class StagedFile:
    """One file of the repo: its path in the repo, where it lies locally, and the two ids the Hub compares."""

    path: str
    local: Path
    size: int
    sha256: str  # what an LFS pointer names
    git_oid: str  # what a regular git blob is named by


@dataclass
class StagedSplit:
    config: str
    split: str
    rows: int
    num_bytes: int  # in-memory Arrow size: what `dataset_info` calls num_bytes (datasets checks only num_examples)
    files: list[str] = field(default_factory=list)


@dataclass
class StagedRepo:
    folder: Path
    repo_id: str
    builder_version: str
    files: list[StagedFile]
    splits: list[StagedSplit]
    lm_eval_tasks: list[str]

    def file(self, path: str) -> StagedFile:
        return next(f for f in self.files if f.path == path)


@dataclass
class BuildFolder:
    """A finished `ks-build` output, checked against its manifest."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def domain(self) -> str:
        return str(self.manifest["domain"])

    def path(self, name: str) -> Path:
        return self.folder / name

    def mcq_files(self, level: str) -> list[str]:
        return sorted(n for n in self.manifest["files"] if n.startswith(f"mcq/{level}-"))

    def rows(self, name: str) -> int:
        return int(self.manifest["files"][name]["rows"])


def check_repo_id(repo_id: str) -> str:
    if not _REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith((".git", ".")):
        raise KsUserError(f"--repo-id must look like ORG/NAME (letters, digits, '-', '_', '.'), got {repo_id!r}")
    return repo_id


def load_build(folder: Path) -> BuildFolder:
    """The build's manifest, after checking that the folder is a complete, verified MCQ build."""
    manifest_path = folder / "manifest.json"
    if not folder.is_dir():
        raise KsUserError("no such build folder", path=str(folder))
    if not manifest_path.is_file():
        raise KsUserError("not a ks-build output folder (no manifest.json)", path=str(folder))
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KsUserError(f"manifest.json is not valid JSON ({exc})", path=str(folder)) from None
    if "benchmark" not in manifest or "verify" not in manifest:
        raise KsUserError("this build has no MCQ stage (built with --no-mcq?); rebuild without it to publish",
                          path=str(folder))
    verified = manifest["verify"]
    if not verified.get("ok"):
        raise KsUserError(f"the build fails verification ({verified.get('failures')} of "
                          f"{verified.get('rows_checked')} MCQ rows, see manifest.json); refusing to publish it",
                          path=str(folder))
    for name in manifest["files"]:
        if not (folder / name).is_file():
            raise KsUserError(f"{name} is listed in manifest.json but missing; rebuild the folder", path=str(folder))
    for name in ("nodes.parquet", "triples.parquet", "requests.parquet"):
        if name not in manifest["files"]:
            raise KsUserError(f"manifest.json lists no {name}; rebuild the folder", path=str(folder))
    return BuildFolder(folder, manifest)


def check_sha256(build: BuildFolder, name: str) -> None:
    """The staged data must be the data that was verified: each build file still has its manifest sha256."""
    path = build.path(name)
    if _sha256_file(path) != build.manifest["files"][name]["sha256"]:
        raise KsUserError(f"{name} changed since the build (sha256 differs from manifest.json); rebuild the folder",
                          path=str(build.folder))


# --------------------------------------------------------------------------------------------------------- staging


@dataclass
class _SplitSource:
    config: str
    split: str
    files: list[str]
    level: str | None = None  # keep only the rows of this level (requests are one file for all levels)


def _split_sources(build: BuildFolder) -> list[_SplitSource]:
    sources = [_SplitSource("mcq", level, build.mcq_files(level)) for level in LEVELS if build.mcq_files(level)]
    sources += [_SplitSource("requests", level, ["requests.parquet"], level=level) for level in LEVELS]
    sources += [_SplitSource(config, "train", [f"{config}.parquet"]) for config in ("triples", "nodes", "relations")
                if f"{config}.parquet" in build.manifest["files"]]
    return sources


def stage(build: BuildFolder, repo_id: str, out: Path, *, license_id: str | None = None,
          endpoint: str = "https://huggingface.co", progress: bool = False) -> StagedRepo:
    """Write the repo's files into `out` (replaced atomically) and return what was staged."""
    check_repo_id(repo_id)
    sources = _split_sources(build)
    for name in sorted({name for source in sources for name in source.files}):
        check_sha256(build, name)
    total_rows = sum(build.rows(name) for source in sources if source.level is None for name in source.files)
    bar = tqdm(total=total_rows + build.rows("requests.parquet"), desc="staging", unit="row", leave=False,
               disable=None if progress else True)
    splits: list[StagedSplit] = []
    with atomic_directory(out) as folder:
        for source in sources:
            split = _stage_split(build, source, folder, bar.update)
            if split is not None:
                splits.append(split)
        bar.close()
        tasks = _write_lm_eval_tasks(folder, repo_id, splits, build)
        card = render_card(build, repo_id, splits, tasks, folder, license_id=license_id, endpoint=endpoint)
        atomic_write_bytes(folder / "README.md", card.encode("utf-8"))
    files = [_describe(out, path) for path in sorted(p for p in out.rglob("*") if p.is_file())]
    return StagedRepo(out, repo_id, str(build.manifest["builder_version"]), files, splits, tasks)


def _stage_split(build: BuildFolder, source: _SplitSource, folder: Path,
                 advance: Callable[[int], object]) -> StagedSplit | None:
    schema = pq.read_schema(build.path(source.files[0])).remove_metadata()
    if source.level is None:
        rows = sum(build.rows(name) for name in source.files)
    else:
        levels = pq.read_table(build.path(source.files[0]), columns=["level"])["level"]
        rows = int(pc.sum(pc.equal(levels, source.level)).as_py() or 0)
    if rows == 0:  # a split with no files cannot be declared in `configs:`
        return None
    count = math.ceil(rows / SHARD_ROWS)
    split = StagedSplit(source.config, source.split, rows, 0)
    groups = _row_groups(_batches(build, source, advance), ROW_GROUP_ROWS)
    for index in range(count):
        name = f"data/{source.config}/{source.split}-{index:05d}-of-{count:05d}.parquet"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        written = 0
        with pq.ParquetWriter(tmp, schema, **_PARQUET_OPTIONS) as writer:
            while written < SHARD_ROWS:
                table = next(groups, None)
                if table is None:
                    break
                table = table.cast(schema)
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                split.num_bytes += table.nbytes
                written += table.num_rows
        tmp.rename(path)
        split.files.append(name)
    return split


def _batches(build: BuildFolder, source: _SplitSource, advance: Callable[[int], object]) -> Iterator[pa.RecordBatch]:
    for name in source.files:
        for batch in pq.ParquetFile(build.path(name)).iter_batches(batch_size=ROW_GROUP_ROWS):
            if source.level is not None:
                batch = batch.filter(pc.equal(batch.column("level"), source.level))
            advance(batch.num_rows)
            yield batch


def _row_groups(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Re-cut a stream of batches into tables of exactly `size` rows (the last one shorter), so that row groups do
    not depend on how the build happened to split its files."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - held, batch.num_rows)
            pending.append(batch.slice(0, take))
            held += take
            batch = batch.slice(take)
            if held == size:
                yield pa.Table.from_batches(pending)
                pending, held = [], 0
    if held:
        yield pa.Table.from_batches(pending)


def _describe(root: Path, path: Path) -> StagedFile:
    data_sha256 = hashlib.sha256()
    size = path.stat().st_size
    blob = hashlib.sha1(f"blob {size}\0".encode())  # git's blob id: what the Hub's tree lists for a regular file
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            data_sha256.update(chunk)
            blob.update(chunk)
    return StagedFile(path.relative_to(root).as_posix(), path, size, data_sha256.hexdigest(), blob.hexdigest())


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------- lm-eval tasks


def task_prefix(repo_id: str) -> str:
    return "ks_" + re.sub(r"[^a-z0-9]+", "_", repo_id.split("/")[1].lower()).strip("_")


def lm_eval_prompts() -> dict[str, dict[str, Any]]:
    """lm-eval's spelling of the two prompt formats of `eval_harness/prompts.yaml` (the harness reads the same file,
    so both score the same strings): `doc_to_text` as Jinja, `doc_to_choice`, and the `target_delimiter` that lm-eval
    puts between context and continuation."""
    formats = yaml.safe_load(resources.files("knowledgesmith.eval_harness").joinpath("prompts.yaml").read_text())
    letter, cloze = formats["letter"], formats["cloze"]
    fields = {"question": "{{question}}", **{f"choice_{c.lower()}": f"{{{{choices[{i}]}}}}"
                                              for i, c in enumerate(LETTERS)}}

    def jinja(context: str) -> str:
        text = re.sub(r"\{(\w+)\}", lambda m: fields[m.group(1)] if m.group(1) in fields else m.group(0), context)
        if re.search(r"(?<!\{)\{(?!\{)|(?<!\})\}(?!\})", text.replace("{{", "").replace("}}", "")):
            raise ValueError(f"prompts.yaml: a field lm-eval cannot express in {context!r}")
        return text

    continuations = list(letter["continuations"])
    delimiter = continuations[0][:len(continuations[0]) - len(continuations[0].lstrip())]
    if not delimiter or any(not c.startswith(delimiter) for c in continuations) or \
            not cloze["continuation"].startswith(delimiter) or cloze["continuation"][len(delimiter):] != "{choice}":
        raise ValueError("prompts.yaml: continuations must be one shared delimiter followed by the choice")
    return {
        "letter": {"doc_to_text": jinja(letter["context"]),
                   "doc_to_choice": [c[len(delimiter):] for c in continuations],
                   "target_delimiter": delimiter},
        "cloze": {"doc_to_text": jinja(cloze["context"]), "doc_to_choice": "choices", "target_delimiter": delimiter},
    }


def _write_lm_eval_tasks(folder: Path, repo_id: str, splits: list[StagedSplit], build: BuildFolder) -> list[str]:
    prompts = lm_eval_prompts()
    prefix = task_prefix(repo_id)
    levels = [s.split for s in splits if s.config == DEFAULT_CONFIG]
    metrics = {"letter": ["acc"], "cloze": ["acc", "acc_norm"]}
    names = []
    for variant in VARIANTS:
        members = []
        for level in levels:
            name = f"{prefix}_{level}_{variant}"
            task = {
                "task": name,
                "dataset_path": repo_id,
                "dataset_name": DEFAULT_CONFIG,
                "test_split": level,
                "output_type": "multiple_choice",
                **prompts[variant],
                "doc_to_target": "answer",
                "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True}
                                for m in metrics[variant]],
                "metadata": {"version": 1.0, "builder_version": build.manifest["builder_version"]},
            }
            _write_yaml(folder / LM_EVAL_DIR / f"{name}.yaml", task)
            members.append(name)
        group = {
            "group": f"{prefix}_{variant}",
            "task": members,
            "aggregate_metric_list": [{"metric": m, "aggregation": "mean", "weight_by_size": True}
                                      for m in metrics[variant]],
            "metadata": {"version": 1.0},
        }
        _write_yaml(folder / LM_EVAL_DIR / f"_{prefix}_{variant}.yaml", group)
        names += [group["group"], *members]
    return names


class _TaskDumper(yaml.SafeDumper):
    """Prompts with line breaks as one double-quoted line ("…\\nAnswer:"), the way lm-eval's own YAMLs read."""


_TaskDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style='"' if "\n" in text else None))


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    header = "# lm-evaluation-harness task, written by ks-publish: lm_eval --include_path lm_eval --tasks NAME\n"
    text = header + yaml.dump(data, Dumper=_TaskDumper, sort_keys=False, allow_unicode=True, width=1000)
    atomic_write_bytes(path, text.encode("utf-8"))


# ------------------------------------------------------------------------------------------------------------- card


def domain_facts(domain: str) -> dict[str, Any] | None:
    """What `dataset_cards/domains.yaml` says about a shipped domain (None for any other KG)."""
    table = yaml.safe_load(resources.files("knowledgesmith.dataset_cards").joinpath("domains.yaml").read_text())
    short = {long: short for short, long in SHIPPED_DOMAINS.items()}.get(domain, domain)
    return table.get(short)


def yaml_features(parquet: Path) -> list[dict[str, Any]]:
    """The file's features as `dataset_info` lists them, with lists of scalars spelled `sequence:` — the spelling
    every `datasets` version reads (`list:` only exists since datasets 4)."""
    from datasets import Features

    def respell(feature: Any) -> Any:
        if isinstance(feature, list):
            return [respell(f) for f in feature]
        if not isinstance(feature, dict):
            return feature
        feature = {k: respell(v) for k, v in feature.items()}
        if "list" in feature and (isinstance(feature["list"], str) or set(feature["list"]) == {"dtype"}):
            feature = {("sequence" if k == "list" else k): v for k, v in feature.items()}
        return feature

    return respell(Features.from_arrow_schema(pq.read_schema(parquet))._to_yaml_list())


def _size_category(rows: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    return next((label for bound, label in bounds if rows < bound), "100M<n<1B")


def front_matter(build: BuildFolder, repo_id: str, splits: list[StagedSplit], folder: Path,
                 license_id: str) -> dict[str, Any]:
    facts = domain_facts(build.domain)
    by_config: dict[str, list[StagedSplit]] = {}
    for split in splits:
        by_config.setdefault(split.config, []).append(split)
    configs, infos = [], []
    for config in CONFIGS:
        if config not in by_config:
            continue
        entry: dict[str, Any] = {"config_name": config}
        if config == DEFAULT_CONFIG:
            entry["default"] = True
        entry["data_files"] = [{"split": s.split, "path": f"data/{config}/{s.split}-*.parquet"}
                               for s in by_config[config]]
        configs.append(entry)
        first = by_config[config][0]
        download = sum((folder / name).stat().st_size for s in by_config[config] for name in s.files)
        infos.append({
            "config_name": config,
            "features": yaml_features(folder / first.files[0]),
            "splits": [{"name": s.split, "num_bytes": s.num_bytes, "num_examples": s.rows} for s in by_config[config]],
            "download_size": download,
            "dataset_size": sum(s.num_bytes for s in by_config[config]),
        })
    mcq_rows = sum(s.rows for s in by_config.get(DEFAULT_CONFIG, []))
    return {
        "pretty_name": (facts or {}).get("pretty_name") or f"KnowledgeSmith {repo_id.split('/')[1]}",
        "license": license_id,
        "language": list(build.manifest.get("languages") or ["en"]),
        "task_categories": ["multiple-choice", "question-answering"],
        "task_ids": ["multiple-choice-qa"],
        "size_categories": [_size_category(mcq_rows)],
        "tags": ["knowledge-editing", "machine-unlearning", "knowledge-graph", "knowledgesmith"],
        "configs": configs,
        "dataset_info": infos,
    }


def _examples(build: BuildFolder) -> list[dict[str, Any]]:
    """One real row per (probe type, role), the first in level and id order (reading only the row groups that hold
    them: a level's shards can hold millions of rows)."""
    wanted = [(p, r) for p in PROBE_TYPES for r in ("q_plus", "q_minus")]
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for level in LEVELS:
        for name in build.mcq_files(level):
            parquet = pq.ParquetFile(build.path(name))
            keys = parquet.read(columns=["probe_type", "role"])
            pairs = zip(keys["probe_type"].to_pylist(), keys["role"].to_pylist(), strict=True)
            picks: dict[tuple[str, str], int] = {}
            for i, pair in enumerate(pairs):
                if pair not in found and pair not in picks:
                    picks[pair] = i
            starts = [0]
            for g in range(parquet.metadata.num_row_groups):
                starts.append(starts[-1] + parquet.metadata.row_group(g).num_rows)
            for pair, i in picks.items():
                group = next(g for g in range(len(starts) - 1) if starts[g] <= i < starts[g + 1])
                found[pair] = parquet.read_row_group(group).slice(i - starts[group], 1).to_pylist()[0]
            if len(found) == len(wanted):
                return [found[key] for key in wanted]
    return [found[key] for key in wanted if key in found]


def _md(text: Any) -> str:
    """A value inside a Markdown table cell or a one-line item: pipes escaped, line breaks as <br>."""
    return str(text).replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def render_card(build: BuildFolder, repo_id: str, splits: list[StagedSplit], tasks: list[str], folder: Path, *,
                license_id: str | None = None, endpoint: str = "https://huggingface.co") -> str:
    import jinja2

    manifest = build.manifest
    facts = domain_facts(build.domain) or {}
    license_id = license_id or facts.get("license") or "unknown"
    meta = front_matter(build, repo_id, splits, folder, license_id)
    sources = []
    for source, count in manifest.get("facts_per_source", {}).items():
        described = facts.get("sources", {}).get(source.split("#")[0], {})
        sources.append({"file": source, "facts": count, "source": described.get("source", "—"),
                        "license": described.get("license", "not recorded")})
    benchmark = manifest["benchmark"]
    per = benchmark["mcq_per_level_and_probe_type"]
    levels = [level for level in LEVELS if sum(per.get(level, {}).values())]
    prompts = lm_eval_prompts()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(resources.files("knowledgesmith.dataset_cards"))),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    env.filters["md"] = _md
    env.filters["num"] = lambda n: f"{n:,}".replace(",", " ")
    card = env.get_template("card.md.jinja").render(
        front_matter=yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=120),
        repo_id=repo_id, pretty_name=meta["pretty_name"], summary=facts.get("summary", ""),
        domain=build.domain, license_id=license_id, manifest=manifest, benchmark=benchmark,
        verify=manifest["verify"], levels=levels, probe_types=PROBE_TYPES, per=per,
        splits=splits, configs=[c["config_name"] for c in meta["configs"]], sources=sources,
        examples=_examples(build), letters=LETTERS, tasks=tasks, prefix=task_prefix(repo_id),
        prompts=prompts, hub_url=f"{endpoint.rstrip('/')}/datasets/{repo_id}",
        builder_version=manifest["builder_version"], publisher_version=__version__,
        levels_note=[level for level in LEVELS if level not in levels],
    )
    return card
