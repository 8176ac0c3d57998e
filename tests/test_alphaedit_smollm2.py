"""AlphaEdit on a real pretrained model (SmolLM2-135M-Instruct): five sequential batches of facts it knows.

The issue's check "sequential editing of 5 batches keeps earlier edits": five requests whose direct probes the model
answers right, edited one batch after another (one request per batch), then the first request's direct probes are
asked again. The fuller measurement (20 requests, batches of 4, AlphaEdit against MEMIT) is tests/editing_smollm2.py.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")

# The z settings the README's SmolLM2 measurements use (40 steps, clamp 4, weight decay 0.1, the scoring frame among
# the rewrite frames), one sampled prefix to keep the test short.
SETTINGS = {"edit_batch_size": 1, "num_prefixes": 1, "v_num_grad_steps": 40, "clamp_norm_factor": 4,
            "v_weight_decay": 0.1, "rewrite_frames": ["{prompt}", "Question: {prompt}\nAnswer:"]}


def cloze(model, tokenizer, mcq: pl.DataFrame) -> pl.DataFrame:  # noqa: ANN001 - a model and its tokenizer
    from knowledgesmith.eval_harness.run import _score_frame
    from knowledgesmith.eval_harness.scoring import make_scorer

    frame, _ = _score_frame(make_scorer("hf", model, tokenizer, batch_size=16, progress=False), mcq, ["cloze"], "p")
    return mcq.select("id", "request_id", "answer", "target").join(frame.select("id", "p"), on="id")


def test_five_sequential_batches_keep_the_first_edit(mini_build_dir: Path, smollm2_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from knowledgesmith.eval_harness.data import load_benchmark
    from knowledgesmith.eval_harness.methods import get_method, load_settings, requests_from_frame
    from knowledgesmith.eval_harness.models import load_model

    monkeypatch.setenv("KS_STATS_CACHE", str(tmp_path / "stats"))
    torch.manual_seed(0)
    bench = load_benchmark(mini_build_dir)
    model, tokenizer = load_model(str(smollm2_dir), dtype="float32", device="cpu")
    leaf = bench.requests.filter(pl.col("level") == "leaf").sort("request_id")
    direct = bench.mcq.filter((pl.col("probe_type") == "direct") & (pl.col("role") == "q_plus"))
    # the first five requests by id, one per subject, whose direct probes the base model all answers right
    candidates = leaf.unique("subject_id", keep="first", maintain_order=True).head(12)
    before = cloze(model, tokenizer, direct.filter(pl.col("request_id").is_in(candidates["request_id"].implode())))
    known = (before.group_by("request_id").agg((pl.col("p") == pl.col("answer")).all().alias("known"))
             .filter(pl.col("known"))["request_id"])
    chosen = candidates.filter(pl.col("request_id").is_in(known.implode())).head(5)
    assert chosen.height == 5, "SmolLM2 should know five of the mini KG's first twelve leaf facts"

    method = get_method("alphaedit")
    method.benchmark_mcq = bench.mcq
    probes = bench.mcq.filter(pl.col("request_id").is_in(chosen["request_id"].implode()))
    method.apply(model, tokenizer, requests_from_frame(chosen), probes,
                 load_settings("alphaedit", model.config.model_type, SETTINGS))
    assert len(method.report["batches"]) == 5

    after = cloze(model, tokenizer, direct.filter(pl.col("request_id").is_in(chosen["request_id"].implode())))
    moved = after.group_by("request_id").agg((pl.col("p") == pl.col("target")).mean().alias("efficacy"))
    efficacy = dict(zip(moved["request_id"], moved["efficacy"], strict=True))
    first = chosen["request_id"][0]
    # Measured (2 cores, seed 0): the first request keeps all three of its direct probes on the new object after four
    # later batches; each later request moves one of its three (mean 0.6). The bounds sit below.
    assert efficacy[first] >= 2 / 3, f"the first batch's edit did not survive four later batches: {efficacy}"
    assert sum(efficacy.values()) / 5 >= 0.5, efficacy
