"""One evaluation run: select requests and probes, score the base model, apply the method per k, score again.

The run folder is the unit of work and of resumption:

    RUN/config.json          everything needed to rerun (arguments, resolved settings, versions, data identity)
    RUN/parts/base.parquet   the base model's scores (written once, reused by every k and by a resumed run)
    RUN/parts/k=K.parquet    the updated model's scores for one k (each k starts from a fresh copy of the base)
    RUN/predictions.parquet  one row per (probe, k, mode): p0, p1 and the four log-probs before and after
    RUN/metrics.json         figures per mode and k (metrics.py), with the timing of each intervention

Every file is written under a temporary name and renamed, so an interrupted run leaves finished parts only and the
same command resumes after the last finished k.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from knowledgesmith.builder.atomic import atomic_write_bytes
from knowledgesmith.builder.errors import KsUserError

from . import data as data_mod
from .methods import get_method, load_settings, requests_from_frame
from .metrics import compute_metrics

CONFIG_VERSION = 1


class RunError(KsUserError):
    """The run folder cannot be used as asked; one line for the user."""


@dataclass
class RunConfig:
    """The arguments of a run. Two runs with equal configs compute the same thing (resumption relies on it)."""

    model: str
    method: str = "none"
    data: str = ""
    levels: list[str] | None = None
    domain: str | None = None
    branch: str | None = None
    ks: list[int] = field(default_factory=lambda: [1])
    backend: str = "hf"
    modes: list[str] = field(default_factory=lambda: ["cloze", "cloze_norm"])
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    batch_size: int = 16
    seed: int = 0
    settings: dict[str, Any] = field(default_factory=dict)  # the user's --set overrides


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("knowledgesmith", "torch", "transformers", "peft", "vllm", "datasets"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def _write_parquet(path: Path, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    atomic_write_bytes(path, buffer.getvalue())


def _prepare_folder(out: Path, identity: dict, overwrite: bool) -> None:
    """Create RUN, or accept it for resumption when its config matches; refuse to mix two runs in one folder."""
    config_path = out / "config.json"
    if out.exists() and any(out.iterdir()):
        if not config_path.exists():
            raise RunError(f"{out} exists, is not empty and is not a ks-eval run folder; pick another --out")
        try:
            previous = json.loads(config_path.read_text())
        except json.JSONDecodeError:
            previous = {}
        if previous.get("run") != identity["run"] or previous.get("fingerprint") != identity["fingerprint"]:
            if not overwrite:
                raise RunError(f"{out} holds a run with a different configuration; use another --out, or --overwrite")
            for part in (out / "parts").glob("*.parquet"):
                part.unlink()
            for name in ("predictions.parquet", "metrics.json"):
                (out / name).unlink(missing_ok=True)
    (out / "parts").mkdir(parents=True, exist_ok=True)


def _score_frame(scorer: Any, mcq: pl.DataFrame, modes: list[str], column: str) -> pl.DataFrame:
    """Long frame (id, mode, <column>, <column>_logprobs) of the scorer's predictions for the given rows."""
    import numpy as np

    scores = scorer.score(mcq["question"].to_list(), mcq["choices"].to_list(), modes)
    frames = []
    for mode in modes:
        matrix = np.asarray(scores[mode], dtype=np.float64)
        frames.append(pl.DataFrame({
            "id": mcq["id"],
            "mode": [mode] * mcq.height,
            column: matrix.argmax(axis=1).astype(np.int64),
            f"{column}_logprobs": matrix.tolist(),
        }, schema_overrides={f"{column}_logprobs": pl.List(pl.Float64)}))
    return pl.concat(frames)


def _write_method_outputs(out: Path, k: int, method: Any) -> None:
    """What a method reports about itself: `curve` (loss per step) → curves/k=K.json, `report` → reports/k=K.json,
    `artifacts` ({name: DataFrame}) → artifacts/k=K-<name>.parquet."""
    for attribute, folder in (("curve", "curves"), ("report", "reports")):
        value = getattr(method, attribute, None)
        if value is not None:
            (out / folder).mkdir(exist_ok=True)
            _write_json(out / folder / f"k={k}.json", value)
    # Training sets a method trained on (ReLearn's augmented forget set, the retain set), saved to be inspected.
    for name, frame in (getattr(method, "artifacts", None) or {}).items():
        (out / "artifacts").mkdir(exist_ok=True)
        _write_parquet(out / "artifacts" / f"k={k}-{name}.parquet", frame)


def evaluate(config: RunConfig, out: Path, *, overwrite: bool = False, progress: bool = True,
             log: Any = None) -> dict:
    """Run (or resume) the evaluation described by `config` into `out`; returns metrics.json's content."""
    from .models import WeightSnapshot, load_model
    from .scoring import make_scorer

    say = log or (lambda message: print(message, file=sys.stderr))
    method = get_method(config.method)
    bench = data_mod.load_benchmark(config.data)
    if hasattr(method, "benchmark_mcq"):  # methods whose statistics read the whole benchmark (AlphaEdit's C0)
        method.benchmark_mcq = bench.mcq
    selection = data_mod.select(bench, ks=config.ks, levels=config.levels, domain=config.domain,
                                branch=config.branch)
    fingerprint = hashlib.sha256()
    for frame in (selection.requests.select("request_id", "k_min", "target_new", "prompt"),
                  selection.mcq.select("id", "question", "choices", "answer", "target")):
        fingerprint.update(frame.write_ndjson().encode())

    # The folder is checked before the model loads: a wrong --out fails in a second, not after minutes of loading.
    _prepare_folder(out, {"run": asdict(config), "fingerprint": fingerprint.hexdigest()}, overwrite)
    model, tokenizer = load_model(config.model, dtype=config.dtype, device=config.device,
                                  trust_remote_code=config.trust_remote_code)
    family = getattr(model.config, "model_type", None)
    settings = load_settings(config.method, family, config.settings)
    config_body = {
        "config_version": CONFIG_VERSION,
        "command": "ks-eval",
        "run": asdict(config),
        "fingerprint": fingerprint.hexdigest(),
        "method": {"name": method.name, "kind": method.kind, "settings": settings, "model_family": family},
        "data": {"source": bench.source, "builder_version": bench.manifest.get("builder_version"),
                 "kg_sha256": bench.manifest.get("kg_sha256"), "seed": bench.manifest.get("seed"),
                 "requests": {str(k): selection.requests_for(k).height for k in config.ks},
                 "mcq_rows": {str(k): selection.mcq_for(k).height for k in config.ks}},
        "versions": _versions(),
    }
    _write_json(out / "config.json", config_body)

    import torch

    scorer_options = {"batch_size": config.batch_size, "progress": progress}
    base_path = out / "parts" / "base.parquet"
    scorer = None
    if base_path.exists():
        base = pl.read_parquet(base_path)
        say(f"resuming: base scores from {base_path}")
    else:
        say(f"scoring the base model on {selection.mcq.height} questions ({', '.join(config.modes)})")
        scorer = make_scorer(config.backend, model, tokenizer, **scorer_options)
        base = _score_frame(scorer, selection.mcq, config.modes, "p0")
        _write_parquet(base_path, base)

    base_weights = WeightSnapshot(model) if config.method != "none" and len(config.ks) > 1 else None
    timing: dict[str, float] = {}
    parts = []
    for k in config.ks:
        part_path = out / "parts" / f"k={k}.parquet"
        mcq_k = selection.mcq_for(k)
        if part_path.exists():
            say(f"resuming: k = {k} already scored")
            part = pl.read_parquet(part_path)
        elif config.method == "none":
            part = base.rename({"p0": "p1", "p0_logprobs": "p1_logprobs"}).filter(
                pl.col("id").is_in(mcq_k["id"].implode())).with_columns(apply_seconds=pl.lit(0.0))
            _write_parquet(part_path, part)
        else:
            if base_weights is not None:
                base_weights.restore(model)
            requests = requests_from_frame(selection.requests_for(k))
            say(f"k = {k}: applying {method.name} to {len(requests)} requests")
            torch.manual_seed(config.seed)
            started = time.perf_counter()
            model = method.apply(model, tokenizer, requests, mcq_k, settings)
            seconds = time.perf_counter() - started
            _write_method_outputs(out, k, method)
            say(f"k = {k}: {method.name} took {seconds:.1f} s; scoring {mcq_k.height} questions")
            if scorer is not None and hasattr(scorer, "load_weights"):
                scorer.load_weights(model)  # vLLM: the edited weights in place, prefix cache reset; no new engine
            else:
                scorer = make_scorer(config.backend, model, tokenizer, **scorer_options)
            part = _score_frame(scorer, mcq_k, config.modes, "p1").with_columns(apply_seconds=pl.lit(seconds))
            _write_parquet(part_path, part)
        timing[str(k)] = float(part["apply_seconds"][0]) if part.height else 0.0
        parts.append(part.drop("apply_seconds").with_columns(k=pl.lit(k, dtype=pl.Int64)))

    rows = selection.mcq.select("id", "request_id", "domain", "level", "branch_id", "probe_type", "role",
                                "distance", "answer", "target")
    predictions = (pl.concat(parts).join(base, on=["id", "mode"], how="left").join(rows, on="id", how="left")
                   .select("id", "k", "mode", "request_id", "domain", "level", "branch_id", "probe_type", "role",
                           "distance", "answer", "target", "p0", "p1", "p0_logprobs", "p1_logprobs")
                   .sort("k", "mode", "id"))
    _write_parquet(out / "predictions.parquet", predictions)
    metrics = {"method": method.name, "kind": method.kind, "modes": config.modes, "ks": config.ks,
               "apply_seconds": timing, "metrics": compute_metrics(predictions, method.kind)}
    _write_json(out / "metrics.json", metrics)
    return metrics


def summary_table(metrics: dict) -> str:
    """A plain-text table of the headline figures per mode and k, printed at the end of a run."""
    columns = ["mode", "k", "rows", "acc before", "acc after", "efficacy", "RR", "CCR", "conflict"]
    keys = ["rows", "accuracy_before", "accuracy_after", "efficacy", "rr", "ccr", "conflict_rate"]
    lines = []
    for mode, by_k in metrics["metrics"].items():
        for k, figures in by_k.items():
            overall = figures["overall"]
            cells = [mode, k] + [
                "—" if overall.get(key) is None else
                (str(overall[key]) if key == "rows" else f"{overall[key]:.3f}") for key in keys]
            lines.append(cells)
    widths = [max(len(str(row[i])) for row in [columns, *lines]) for i in range(len(columns))]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*columns)] + [fmt.format(*row) for row in lines])
