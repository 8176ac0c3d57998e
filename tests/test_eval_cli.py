"""`ks-eval` end to end on the mini build: the run folder, sweeps from a fresh model, resumption, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from knowledgesmith.eval_harness.cli import main as ks_eval_main

pytest.importorskip("torch")


def run_eval(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = ks_eval_main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_score_only_run_folder(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_eval(capsys, "--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf",
                                 "--k", "1,10", "--modes", "cloze,letter", "--out", out, "--quiet")
    assert code == 0, err
    assert "acc before" in stdout and "run folder" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["ks"] == [1, 10] and config["method"]["name"] == "none"
    assert config["data"]["requests"] == {"1": 1, "10": 10}
    assert "torch" in config["versions"]
    predictions = pl.read_parquet(out / "predictions.parquet")
    rows_10 = config["data"]["mcq_rows"]["10"]
    assert predictions.filter((pl.col("k") == 10) & (pl.col("mode") == "cloze")).height == rows_10
    assert predictions.filter(pl.col("k") == 1).height == 2 * config["data"]["mcq_rows"]["1"]
    # no intervention: nothing changes, so RR is 1 where defined and CCR is 0
    assert (predictions["p0"] == predictions["p1"]).all()
    metrics = json.loads((out / "metrics.json").read_text())
    overall = metrics["metrics"]["cloze"]["10"]["overall"]
    assert overall["ccr"] == 0.0 and overall["rr"] in (1.0, None)
    # Q− rows asking a fact another request of k = 10 updates are left out of the figures (the mini KG has some)
    cloze_10 = predictions.filter((pl.col("k") == 10) & (pl.col("mode") == "cloze"))
    updated = (pl.col("role") == "q_minus") & pl.col("asks_updated_fact")
    assert metrics["metrics"]["cloze"]["10"]["q_minus_asking_updated_facts"] == cloze_10.filter(updated).height > 0
    assert overall["accuracy_before"] == pytest.approx(
        float(cloze_10.filter(~updated).select((pl.col("p0") == pl.col("answer")).mean()).item()))


def test_rerun_resumes_and_other_config_is_refused(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = ["--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf", "--k", "1,10", "--method", "ft",
            "--set", "num_steps=2", "--set", "layer=0", "--modes", "cloze", "--out", out]
    assert run_eval(capsys, *args)[0] == 0
    first = (out / "predictions.parquet").read_bytes()
    (out / "parts" / "k=10.parquet").unlink()
    code, _, err = run_eval(capsys, *args)
    assert code == 0
    assert "resuming: base scores" in err and "resuming: k = 1 already scored" in err
    assert (out / "predictions.parquet").read_bytes() == first  # k = 10 recomputed from a fresh model: same result

    before = sorted(p.name for p in out.rglob("*"))
    code, _, err = run_eval(capsys, *args[:-4], "--set", "lr=0.1", "--modes", "cloze", "--out", out)
    assert code == 2 and "different configuration" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.rglob("*")) == before
    assert (out / "predictions.parquet").read_bytes() == first


def test_each_k_starts_from_the_base_model(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """k = 1 alone and k = 1 inside a sweep after nothing else give the same scores; a sweep's later k does not
    inherit the earlier k's edit (its scores equal a run of that k alone)."""
    common = ["--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf", "--method", "ft",
              "--set", "num_steps=3", "--set", "layer=1", "--set", "lr=0.05", "--set", "norm_constraint=1",
              "--modes", "cloze", "--quiet"]
    assert run_eval(capsys, *common, "--k", "1,10", "--out", tmp_path / "sweep")[0] == 0
    assert run_eval(capsys, *common, "--k", "10", "--out", tmp_path / "alone")[0] == 0
    sweep = pl.read_parquet(tmp_path / "sweep" / "predictions.parquet").filter(pl.col("k") == 10)
    alone = pl.read_parquet(tmp_path / "alone" / "predictions.parquet")
    assert sweep["id"].to_list() == alone["id"].to_list()
    for after_sweep, after_alone in zip(sweep["p1_logprobs"].to_list(), alone["p1_logprobs"].to_list(), strict=True):
        assert after_sweep == pytest.approx(after_alone, abs=1e-4)
    # the edit did something: the tiny model's scores moved
    moved = [a != pytest.approx(b, abs=1e-4)
             for a, b in zip(sweep["p0_logprobs"].to_list(), sweep["p1_logprobs"].to_list(), strict=True)]
    assert any(moved)


@pytest.mark.parametrize("args, message", [
    (["--method", "rome"], "--method 'rome' is not known"),
    (["--k", "1000"], "larger than the pool"),
    (["--k", "7"], "powers of ten"),
    (["--modes", "cloze,guess"], "--modes"),
    (["--set", "nope=1", "--method", "ft"], "--set nope: not a setting of ft"),
])
def test_user_errors_are_one_line_exit_2(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    out = tmp_path / "run"
    code, _, err = run_eval(capsys, "--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf", "--out", out,
                            *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (out / "predictions.parquet").exists()


def test_missing_model_and_foreign_folder(mini_build_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_eval(capsys, "--model", tmp_path / "no-such-model", "--data", mini_build_dir,
                            "--out", tmp_path / "r")
    assert code == 2 and err.startswith("ks-eval: ") and err.count("\n") == 1
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    code, _, err = run_eval(capsys, "--model", tmp_path / "no-such-model", "--data", mini_build_dir, "--out", foreign)
    assert code == 2
    assert (foreign / "keep.txt").read_text() == "mine"


def test_killed_run_resumes(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path) -> None:
    """SIGKILL after the base scores are written: the rerun reuses them and finishes with the same predictions."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "knowledgesmith.eval_harness.cli", "--model", str(tiny_lm_dir), "--data",
               str(mini_build_dir), "--level", "leaf", "--k", "1,10", "--method", "ft", "--set", "num_steps=40",
               "--set", "layer=0",
               "--modes", "cloze", "--quiet", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "parts" / "base.parquet").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (out / "parts" / "base.parquet").exists()
    assert not (out / "predictions.parquet").exists()
    base = (out / "parts" / "base.parquet").read_bytes()
    finished = subprocess.run(command[:-1] + [str(out)], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert (out / "parts" / "base.parquet").read_bytes() == base
    clean = tmp_path / "clean"
    subprocess.run(command[:-1] + [str(clean)], check=True, capture_output=True)
    assert pl.read_parquet(out / "predictions.parquet").equals(pl.read_parquet(clean / "predictions.parquet"))


def test_layers_and_module_flags_reach_the_editor(mini_build_dir: Path, tiny_lm_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, _, err = run_eval(capsys, "--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf", "--k", "1",
                       "--method", "memit", "--layers", "1", "--module", "model.layers.{}.mlp.down_proj",
                       "--set", "v_num_grad_steps=2", "--set", "num_prefixes=0", "--set", "corpus_samples=50",
                       "--modes", "cloze", "--drift-probes", "0", "--out", out, "--quiet")
    assert code == 0, err
    settings = json.loads((out / "config.json").read_text())["method"]["settings"]
    assert settings["layers"] == [1] and settings["module"] == "model.layers.{}.mlp.down_proj"
    assert json.loads((out / "reports" / "k=1.json").read_text())["layers"] == [1]
    code, _, err = run_eval(capsys, "--model", tiny_lm_dir, "--data", mini_build_dir, "--level", "leaf", "--k", "1",
                       "--method", "memit", "--module", "model.layers.nothing", "--out", tmp_path / "bad", "--quiet")
    assert code == 2 and "--module" in err and "Traceback" not in err
