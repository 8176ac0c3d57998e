"""One evaluation run: select requests and probes, score the base model, apply the method per k, score again.

The run folder is the unit of work and of resumption:

    RUN/config.json          everything needed to rerun (arguments, resolved settings, versions, data identity)
    RUN/parts/base.parquet   the base model's scores (written once, reused by every k and by a resumed run)
    RUN/parts/base-hidden.npy  last-token hidden states per layer of the fixed drift probes, base model (CKA)
    RUN/parts/k=K.parquet    the updated model's scores for one k (each k starts from a fresh copy of the base)
    RUN/parts/drift-k=K.json KL and per-layer CKA of the drift probes for that k, from the same scoring pass
    RUN/geometry/k=K.json    σ′/σ and principal angles of every weight matrix the method changed (geometry.py)
    RUN/predictions.parquet  one row per (probe, k, mode): p0, p1 and the four log-probs before and after
    RUN/metrics.json         figures per mode and k (metrics.py), drift, geometry summary, open-ended failure modes

A sweep over several methods (`--method memit,relearn`) is a folder with one such run per method (RUN/<method>/)
and RUN/sweep.json; every method sees the same requests and probes, and the base scores are computed once.

Every file is written under a temporary name and renamed, so an interrupted run leaves finished parts only and the
same command resumes after the last finished k.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
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
from .drift import cka_per_layer, log_min_max, mean_choice_kl
from .methods import get_method, load_settings, requests_from_frame
from .metrics import compute_failure_modes, compute_metrics

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
    drift_probes: int = 256  # rows of the fixed probe set KL and CKA are measured on (0: no drift analysis)
    geometry_rank: int = 16  # r of the top-r singular subspaces compared per changed matrix (0: no geometry)


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
            for part in (out / "parts").glob("*"):
                part.unlink()
            for folder in ("geometry", "curves", "reports", "artifacts", "report"):
                shutil.rmtree(out / folder, ignore_errors=True)
            for name in ("predictions.parquet", "metrics.json"):
                (out / name).unlink(missing_ok=True)
    (out / "parts").mkdir(parents=True, exist_ok=True)


def _write_npy(path: Path, array: Any) -> None:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def drift_probe_ids(mcq: pl.DataFrame, n: int) -> list[str]:
    """The fixed probe set of the drift analyses: n rows of the selection picked by a hash of their id — spread over
    requests and roles, the same for every k and every method, independent of row order."""
    ranked = sorted(mcq["id"].to_list(), key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    return sorted(ranked[:n])


def _score_frame(scorer: Any, mcq: pl.DataFrame, modes: list[str], column: str, matcher: Any = None,
                 hidden_ids: list[str] | None = None) -> tuple[pl.DataFrame, Any]:
    """Long frame (id, mode, <column>, <column>_logprobs, <column>_text, <column>_hallucinated) of the scorer's
    predictions, and the hidden states of the rows `hidden_ids` (None when not asked for).

    For the open mode, <column>_logprobs holds the answer's match score (0–100) to each choice and <column>_text the
    generated answer; for the other modes those two text/flag columns are null.
    """
    import numpy as np

    rows = None
    if hidden_ids:
        position = {row_id: i for i, row_id in enumerate(mcq["id"].to_list())}
        rows = [position[i] for i in hidden_ids]
    scores = scorer.score(mcq["question"].to_list(), mcq["choices"].to_list(), modes,
                          **({"hidden_states": rows} if rows is not None else {}))
    frames = []
    for mode in modes:
        texts = halluc = None
        if mode == "open":
            texts = [str(t) for t in scores["open"]]
            choice_ids = mcq["choice_ids"].to_list() if "choice_ids" in mcq.columns else None
            matrix = matcher.choice_scores(texts, mcq["choices"].to_list(), choice_ids)
            predicted = matcher.predictions(matrix)
            halluc = matcher.hallucinated(texts).tolist()
        else:
            matrix = np.asarray(scores[mode], dtype=np.float64)
            predicted = matrix.argmax(axis=1).astype(np.int64)
        frames.append(pl.DataFrame({
            "id": mcq["id"],
            "mode": [mode] * mcq.height,
            column: predicted,
            f"{column}_logprobs": matrix.tolist(),
            f"{column}_text": texts if texts is not None else [None] * mcq.height,
            f"{column}_hallucinated": halluc if halluc is not None else [None] * mcq.height,
        }, schema_overrides={f"{column}_logprobs": pl.List(pl.Float64), f"{column}_text": pl.String,
                             f"{column}_hallucinated": pl.Boolean}))
    return pl.concat(frames), scores.get("hidden")


def _drift_figures(base: pl.DataFrame, after: pl.DataFrame, probe_ids: list[str], modes: list[str],
                   base_hidden: Any, after_hidden: Any) -> dict:
    """KL per distribution mode and CKA per layer of the drift probes, base vs updated."""
    import numpy as np

    from .scoring import SCORING_MODES

    if not probe_ids:  # --drift-probes 0: drift is off
        return {"probes": 0, "kl": {}, "cka": None}
    probes = pl.DataFrame({"id": probe_ids})
    kl = {}
    for mode in modes:
        if mode not in SCORING_MODES:
            continue
        pair = (probes.join(base.filter(pl.col("mode") == mode).select("id", "p0_logprobs"), on="id", how="left")
                .join(after.filter(pl.col("mode") == mode).select("id", "p1_logprobs"), on="id", how="left"))
        kl[mode] = mean_choice_kl(np.array(pair["p0_logprobs"].to_list()), np.array(pair["p1_logprobs"].to_list()))
    cka = None
    if base_hidden is not None and after_hidden is not None:
        cka = cka_per_layer(np.asarray(base_hidden), np.asarray(after_hidden))
    return {"probes": len(probe_ids), "kl": kl, "cka": cka}


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
             log: Any = None, base_from: Path | None = None) -> dict:
    """Run (or resume) the evaluation described by `config` into `out`; returns metrics.json's content.

    `base_from`: another run folder of the same model, data, selection and modes (a sweep's previous method) whose
    base scores are copied instead of computed again.
    """
    import numpy as np

    from .models import WeightSnapshot, load_model
    from .openended import AnswerMatcher
    from .scoring import SCORING_MODES, make_scorer

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
    if base_from is not None:
        for name in ("base.parquet", "base-hidden.npy"):
            source, target = base_from / "parts" / name, out / "parts" / name
            if source.exists() and not target.exists():
                shutil.copyfile(source, target)
    model, tokenizer = load_model(config.model, dtype=config.dtype, device=config.device,
                                  trust_remote_code=config.trust_remote_code)
    family = getattr(model.config, "model_type", None)
    settings = load_settings(config.method, family, config.settings)
    probe_ids = drift_probe_ids(selection.mcq, config.drift_probes)
    # CKA needs hidden states, which only the hf backend exposes, from a cloze or letter pass.
    want_hidden = (config.backend == "hf" and bool(probe_ids)
                   and any(m in SCORING_MODES for m in config.modes))
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
        "drift_probe_ids": probe_ids,
        "versions": _versions(),
    }
    _write_json(out / "config.json", config_body)

    import torch

    matcher = (AnswerMatcher.from_tables(bench.nodes, bench.mcq, bench.requests) if "open" in config.modes
               else None)
    scorer_options = {"batch_size": config.batch_size, "progress": progress}
    base_path = out / "parts" / "base.parquet"
    hidden_path = out / "parts" / "base-hidden.npy"
    scorer = None
    if base_path.exists():
        base = pl.read_parquet(base_path)
        say(f"resuming: base scores from {base_path}")
    else:
        say(f"scoring the base model on {selection.mcq.height} questions ({', '.join(config.modes)})")
        scorer = make_scorer(config.backend, model, tokenizer, **scorer_options)
        base, hidden = _score_frame(scorer, selection.mcq, config.modes, "p0", matcher,
                                    probe_ids if want_hidden else None)
        if hidden is not None:
            _write_npy(hidden_path, np.asarray(hidden, dtype=np.float32))
        _write_parquet(base_path, base)
    base_hidden = np.load(hidden_path) if want_hidden and hidden_path.exists() else None

    geometry_wanted = config.method != "none" and config.geometry_rank > 0
    base_weights = (WeightSnapshot(model) if config.method != "none" and (len(config.ks) > 1 or geometry_wanted)
                    else None)
    base_svd_cache: dict = {}  # the base matrices' top singular triplets, shared by every k
    timing: dict[str, float] = {}
    drift: dict[str, dict] = {}
    geometry: dict[str, dict] = {}
    parts = []
    probe_set = pl.Series(probe_ids, dtype=pl.String).implode()
    for k in config.ks:
        part_path = out / "parts" / f"k={k}.parquet"
        drift_path = out / "parts" / f"drift-k={k}.json"
        geometry_path = out / "geometry" / f"k={k}.json"
        mcq_k = selection.mcq_for(k)
        if part_path.exists():
            say(f"resuming: k = {k} already scored")
            part = pl.read_parquet(part_path)
        elif config.method == "none":
            part = base.rename({"p0": "p1", "p0_logprobs": "p1_logprobs", "p0_text": "p1_text",
                                "p0_hallucinated": "p1_hallucinated"}).filter(
                pl.col("id").is_in(mcq_k["id"].implode())).with_columns(apply_seconds=pl.lit(0.0))
            after_probes = base.rename({"p0": "p1", "p0_logprobs": "p1_logprobs"})
            _write_json(drift_path, _drift_figures(base, after_probes, probe_ids, config.modes, base_hidden,
                                                   base_hidden))
            _write_parquet(part_path, part)
        else:
            if base_weights is not None:
                base_weights.restore(model)
            requests = requests_from_frame(selection.requests_for(k))
            say(f"k = {k}: applying {method.name} to {len(requests)} requests")
            torch.manual_seed(config.seed)
            started = time.perf_counter()
            # progress is how the run is shown, not a setting of the method: not in config.json
            model = method.apply(model, tokenizer, requests, mcq_k, settings | {"progress": progress})
            seconds = time.perf_counter() - started
            _write_method_outputs(out, k, method)
            if geometry_wanted:
                from .geometry import weight_geometry

                (out / "geometry").mkdir(exist_ok=True)
                _write_json(geometry_path, weight_geometry(base_weights.tensors, model, config.geometry_rank,
                                                           base_svd_cache))
            # The drift probes outside this k's rows are scored in the same pass (they are a fixed set across k).
            extra = selection.mcq.filter(pl.col("id").is_in(probe_set) & ~pl.col("id").is_in(mcq_k["id"].implode()))
            scored = pl.concat([mcq_k, extra], how="diagonal_relaxed") if extra.height else mcq_k
            say(f"k = {k}: {method.name} took {seconds:.1f} s; scoring {scored.height} questions")
            if scorer is not None and hasattr(scorer, "load_weights"):
                scorer.load_weights(model)  # vLLM: the edited weights in place, prefix cache reset; no new engine
            else:
                scorer = make_scorer(config.backend, model, tokenizer, **scorer_options)
            after, after_hidden = _score_frame(scorer, scored, config.modes, "p1", matcher,
                                               probe_ids if base_hidden is not None else None)
            _write_json(drift_path, _drift_figures(base, after, probe_ids, config.modes, base_hidden, after_hidden))
            part = (after.filter(pl.col("id").is_in(mcq_k["id"].implode()))
                    .with_columns(apply_seconds=pl.lit(seconds)))
            _write_parquet(part_path, part)
        timing[str(k)] = float(part["apply_seconds"][0]) if part.height else 0.0
        if drift_path.exists():
            drift[str(k)] = json.loads(drift_path.read_text())
        if geometry_path.exists():
            geometry[str(k)] = _geometry_summary(json.loads(geometry_path.read_text()))
        updated = mcq_k.select("id").with_columns(data_mod.asks_an_updated_fact(mcq_k, selection.requests_for(k)))
        parts.append(part.drop("apply_seconds").with_columns(k=pl.lit(k, dtype=pl.Int64))
                     .join(updated, on="id", how="left").with_columns(pl.col("asks_updated_fact").fill_null(False)))

    rows = selection.mcq.select("id", "request_id", "domain", "level", "branch_id", "probe_type", "role",
                                "distance", "answer", "target")
    predictions = (pl.concat(parts, how="diagonal_relaxed").join(base, on=["id", "mode"], how="left")
                   .join(rows, on="id", how="left")
                   .select("id", "k", "mode", "request_id", "domain", "level", "branch_id", "probe_type", "role",
                           "distance", "answer", "target", "p0", "p1", "p0_logprobs", "p1_logprobs",
                           "p0_text", "p1_text", "p0_hallucinated", "p1_hallucinated", "asks_updated_fact")
                   .sort("k", "mode", "id"))
    _write_parquet(out / "predictions.parquet", predictions)
    metrics = {"method": method.name, "kind": method.kind, "modes": config.modes, "ks": config.ks,
               "apply_seconds": timing, "metrics": compute_metrics(predictions, method.kind),
               "drift": drift_block(drift), "geometry": geometry}
    if "open" in config.modes:
        metrics["failure_modes"] = compute_failure_modes(predictions.filter(pl.col("mode") == "open"), method.kind)
    _write_json(out / "metrics.json", metrics)
    return metrics


def drift_block(per_k: dict[str, dict]) -> dict:
    """metrics.json's `drift`: KL per mode and k, CKA per layer and its mean per k, both also log-min-max normalised
    over the run's k (CKA as its drift 1 − CKA)."""
    ks = list(per_k)
    modes = sorted({mode for figures in per_k.values() for mode in figures.get("kl", {})})
    kl = {mode: {k: per_k[k]["kl"].get(mode) for k in ks} for mode in modes}
    cka = {k: per_k[k].get("cka") for k in ks}
    cka_mean = {k: (float(sum(v) / len(v)) if v else None) for k, v in cka.items()}
    return {
        "probes": next((figures.get("probes") for figures in per_k.values()), 0),
        "kl": kl,
        "kl_normalised": {mode: dict(zip(ks, log_min_max([kl[mode][k] for k in ks]), strict=True))
                          for mode in modes},
        "cka": cka,
        "cka_mean": cka_mean,
        "cka_drift_normalised": dict(zip(ks, log_min_max(
            [None if cka_mean[k] is None else 1.0 - cka_mean[k] for k in ks]), strict=True)),
    }


def _geometry_summary(geometry: dict) -> dict:
    """Headline of a geometry file: how many matrices changed, σ′/σ range and the largest rotations."""
    matrices = geometry.get("matrices", [])
    ratios = [r for m in matrices for r in m["sigma_ratio"] if r == r]  # r == r drops NaN
    return {
        "rank": geometry.get("rank"),
        "matrices_changed": len(matrices),
        "layers_changed": sorted({m["layer"] for m in matrices if m["layer"] is not None}),
        "sigma_ratio_min": min(ratios) if ratios else None,
        "sigma_ratio_max": max(ratios) if ratios else None,
        "left_angle_max": max((max(m["left_angles"], default=0.0) for m in matrices), default=None),
        "right_angle_max": max((max(m["right_angles"], default=0.0) for m in matrices), default=None),
        "relative_change_max": max((m["relative_change"] for m in matrices), default=None),
    }


SWEEP_FILE = "sweep.json"


def evaluate_sweep(configs: list[RunConfig], out: Path, *, overwrite: bool = False, progress: bool = True,
                   log: Any = None) -> dict[str, dict]:
    """Several methods on the same requests: RUN/<method>/ is a run folder per method, RUN/sweep.json lists them and
    holds the drift figures normalised over the whole sweep (every method and k on one scale)."""
    methods = [c.method for c in configs]
    for config in configs:  # a misspelt method or setting fails now, not after the first methods have run
        get_method(config.method)
        load_settings(config.method, None, config.settings)
    sweep_path = out / SWEEP_FILE
    if out.exists() and any(out.iterdir()):
        if (out / "config.json").exists():
            raise RunError(f"{out} holds a single-method run; pick another --out for a sweep of several methods")
        if not sweep_path.exists():
            raise RunError(f"{out} exists, is not empty and is not a ks-eval sweep folder; pick another --out")
        previous = json.loads(sweep_path.read_text()).get("methods")
        if previous != methods and not overwrite:
            raise RunError(f"{out} holds a sweep of {', '.join(previous or [])}; use another --out, or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    body = {"command": "ks-eval", "methods": methods, "runs": {m: m for m in methods}}
    _write_json(sweep_path, body)
    results: dict[str, dict] = {}
    previous_run: Path | None = None
    for config in configs:
        say = log or (lambda message: print(message, file=sys.stderr))
        say(f"sweep: method {config.method}")
        results[config.method] = evaluate(config, out / config.method, overwrite=overwrite, progress=progress,
                                          log=log, base_from=previous_run)
        previous_run = out / config.method
    body["drift_normalised"] = sweep_drift_normalised(results)
    _write_json(sweep_path, body)
    return results


def sweep_drift_normalised(results: dict[str, dict]) -> dict:
    """KL (per mode) and 1 − mean CKA log-min-max normalised over every (method, k) of a sweep."""
    points: dict[str, list[tuple[str, str, float | None]]] = {}
    for method, metrics in results.items():
        drift = metrics.get("drift", {})
        for mode, by_k in drift.get("kl", {}).items():
            points.setdefault(f"kl/{mode}", []).extend((method, k, v) for k, v in by_k.items())
        points.setdefault("cka_drift", []).extend(
            (method, k, None if v is None else 1.0 - v) for k, v in drift.get("cka_mean", {}).items())
    out: dict[str, dict] = {}
    for name, values in points.items():
        normalised = log_min_max([v for _, _, v in values])
        for (method, k, _), value in zip(values, normalised, strict=True):
            out.setdefault(name, {}).setdefault(method, {})[k] = value
    return out


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
