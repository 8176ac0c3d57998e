"""What the SmolLM2 measurement scripts (tests/editing_smollm2.py, tests/unlearning_smollm2.py) share: their command
line, the mini KG's build and the model, `--set` overrides per method, and the results file."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def measurement_parser(description: str, methods: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--method", action="append", default=[], help=f"{methods} (repeatable)")
    parser.add_argument("--set", action="append", default=[], metavar="METHOD.KEY=VALUE or KEY=VALUE")
    parser.add_argument("--out", type=Path, required=True)
    return parser


def mini_build_and_smollm2(out: Path) -> tuple[Any, Any, Any]:
    """The mini KG built under OUT/mini (once) and loaded, and SmolLM2-135M-Instruct in float32 on the CPU."""
    import torch
    from minikg import build_mini  # tests/ is on the path: the scripts run from it

    from knowledgesmith.eval_harness import data as data_mod
    from knowledgesmith.eval_harness.models import load_model, smollm2_folder

    torch.manual_seed(0)
    build = out / "mini"
    if not (build / "requests.parquet").exists():
        build_mini(build)
    model, tokenizer = load_model(str(smollm2_folder()), dtype="float32", device="cpu")
    return data_mod.load_benchmark(build), model, tokenizer


def method_overrides(sets: list[str], method_name: str) -> dict[str, Any]:
    """`--set KEY=VALUE` (every method) and `--set METHOD.KEY=VALUE` (that method), values read as YAML."""
    import yaml

    overrides = {}
    for item in sets:
        key, _, value = item.partition("=")
        target, _, name = key.rpartition(".")
        if target in ("", method_name):
            overrides[name] = yaml.safe_load(value)
    return overrides


def append_result(out: Path, line: str) -> None:
    print(line, flush=True)
    with (out / "results.jsonl").open("a") as stream:
        stream.write(line + "\n")


def apply_and_rescore(bench: Any, model: Any, tokenizer: Any, requests: Any, mcq: Any, method_name: str,
                      overrides: dict[str, Any], rescore: Callable[[], Any]) -> tuple[Any, float, Any]:
    """Apply `method_name` (hparams of the model's family, then `overrides`) to `requests`, call `rescore()` on the
    changed model and restore the base weights; returns the method (its report and curve), the seconds it took, and
    what `rescore` returned."""
    import torch

    from knowledgesmith.eval_harness.methods import get_method, load_settings, requests_from_frame
    from knowledgesmith.eval_harness.models import WeightSnapshot

    settings = load_settings(method_name, model.config.model_type, overrides)
    method = get_method(method_name)
    method.benchmark_mcq = bench.mcq
    snapshot = WeightSnapshot(model)
    torch.manual_seed(0)
    started = time.perf_counter()
    try:
        method.apply(model, tokenizer, requests_from_frame(requests), mcq, settings)
        seconds = time.perf_counter() - started
        return method, seconds, rescore()
    finally:
        snapshot.restore(model)
