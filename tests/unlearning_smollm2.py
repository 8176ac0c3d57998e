"""Unlearning facts SmolLM2-135M knows: the measurement behind the README's unlearning table.

The requests are the mini KG's leaf requests whose Q+ probes the base model answers best (cloze and open-ended scoring
together); each method is applied to the same base weights and scored again on the same probes. RR is read on the Q+
probes the base model answered right in that mode; Q− accuracy on the contextual Q− probes (facts near the forgotten
ones that no retain set trains on).

    python tests/unlearning_smollm2.py --requests 20 --method relearn --set kl_weight=2 --out /tmp/unlearn

prints one JSON line per method and writes it, with the base scores (reused by the next call with the same --out),
under --out.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from smollm2_measure import (
    append_result,
    apply_and_rescore,
    measurement_parser,
    method_overrides,
    mini_build_and_smollm2,
)

MODES = ("cloze", "open")


@dataclass
class Probes:
    """The chosen requests, the probes scored (Q+ of the requests, their contextual Q−) and the base model's
    predictions on them (`mode`, `id`, `p0`)."""

    requests: pl.DataFrame
    mcq: pl.DataFrame
    base: pl.DataFrame


def score(model: Any, tokenizer: Any, mcq: pl.DataFrame, matcher: Any, column: str,
          modes: tuple[str, ...] = MODES) -> pl.DataFrame:
    """(id, mode, column) predictions of `model` on `mcq` in `modes` (open: matched to the choices, −1 for none)."""
    from knowledgesmith.eval_harness.run import _score_frame
    from knowledgesmith.eval_harness.scoring import make_scorer

    scorer = make_scorer("hf", model, tokenizer, batch_size=32, progress=False)
    frame, _ = _score_frame(scorer, mcq, list(modes), column, matcher)
    return frame.select("id", "mode", column, f"{column}_text")


def known_requests(bench: Any, model: Any, tokenizer: Any, matcher: Any, n: int,
                   cache: Path | None = None, rank_modes: tuple[str, ...] = MODES) -> Probes:
    """The `n` leaf requests whose Q+ probes the base model answers best (right answers in `rank_modes` together,
    ties by request id), their probes and the base scores in both modes. `cache`: a parquet file of base scores
    reused when present."""
    leaf = bench.requests.filter(pl.col("level") == "leaf")
    mcq = bench.mcq.filter(pl.col("request_id").is_in(leaf["request_id"].implode())
                           & ((pl.col("role") == "q_plus") & (pl.col("probe_type") != "conflict")
                              | (pl.col("role") == "q_minus") & (pl.col("probe_type") == "contextual")))
    if cache is not None and cache.exists():
        base = pl.read_parquet(cache)
    else:
        plus = mcq.filter(pl.col("role") == "q_plus")
        base = score(model, tokenizer, plus, matcher, "p0", rank_modes)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            base.write_parquet(cache)
    plus = mcq.filter(pl.col("role") == "q_plus").select("id", "request_id", "answer")
    right = (base.filter(pl.col("mode").is_in(list(rank_modes))).join(plus, on="id")
             .group_by("request_id").agg((pl.col("p0") == pl.col("answer")).mean().alias("right"))
             .sort(["right", "request_id"], descending=[True, False]))
    chosen = right.head(n)["request_id"]
    requests = leaf.filter(pl.col("request_id").is_in(chosen.implode())).sort("request_id")
    probes = mcq.filter(pl.col("request_id").is_in(chosen.implode())).sort("id")
    for mode in MODES:  # what the ranking did not score: the chosen requests' Q− probes, the other mode
        done = base.filter(pl.col("mode") == mode)["id"].implode()
        missing = probes.filter(~pl.col("id").is_in(done))
        if missing.height:
            base = pl.concat([base, score(model, tokenizer, missing, matcher, "p0", (mode,))])
    if cache is not None:
        base.write_parquet(cache)
    return Probes(requests, probes, base.filter(pl.col("id").is_in(probes["id"].implode())))


def figures(probes: Probes, after: pl.DataFrame, matcher: Any = None) -> dict[str, Any]:
    """RR (Q+ right before → still right) and Q− accuracy before/after (in %), per mode; Q− rows asking a fact that
    another chosen request forgets are left out, as the harness's metrics leave them out. With `matcher` and answer
    texts (open mode): the share of Q+ and Q− answers that abstain ("I am not sure …")."""
    from knowledgesmith.eval_harness.data import asks_an_updated_fact

    updated = probes.mcq.select("id", "role").with_columns(asks_an_updated_fact(probes.mcq, probes.requests))
    joined = (after.join(probes.base.select("id", "mode", "p0"), on=["id", "mode"])
              .join(probes.mcq.select("id", "answer"), on="id").join(updated, on="id"))
    out: dict[str, Any] = {}
    for mode in sorted(set(joined["mode"])):
        rows = joined.filter(pl.col("mode") == mode)
        known = rows.filter((pl.col("role") == "q_plus") & (pl.col("p0") == pl.col("answer")))
        minus = rows.filter((pl.col("role") == "q_minus") & ~pl.col("asks_updated_fact"))
        out[mode] = {
            "q_plus_known": known.height,
            "rr": float((known["p1"] == known["answer"]).mean()) if known.height else None,
            "q_minus": minus.height,
            "q_minus_asking_updated_facts": int(rows["asks_updated_fact"].sum()),
            "q_minus_before": 100 * float((minus["p0"] == minus["answer"]).mean()),
            "q_minus_after": 100 * float((minus["p1"] == minus["answer"]).mean()),
        }
        out[mode]["q_minus_drop"] = out[mode]["q_minus_before"] - out[mode]["q_minus_after"]
        if matcher is not None and "p1_text" in rows.columns and rows["p1_text"].drop_nulls().len():
            plus = rows.filter(pl.col("role") == "q_plus")
            out[mode]["abstained_q_plus"] = float(matcher.abstained(plus["p1_text"].fill_null("").to_list()).mean())
            out[mode]["abstained_q_minus"] = float(matcher.abstained(minus["p1_text"].fill_null("").to_list()).mean())
    return out


def unlearn(bench: Any, model: Any, tokenizer: Any, matcher: Any, probes: Probes, method_name: str,
            overrides: dict[str, Any], modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """Apply `method_name` (hparams of the model's family, then `overrides`) to the chosen requests, score the probes
    again, and restore the base weights; returns the figures, the settings, the seconds, the curve's ends and the
    predictions after (`after`)."""
    method, seconds, after = apply_and_rescore(bench, model, tokenizer, probes.requests, probes.mcq, method_name,
                                               overrides,
                                               lambda: score(model, tokenizer, probes.mcq, matcher, "p1", modes))
    curve = method.curve
    training = method.artifacts["training_set"]
    return {"method": method_name, "overrides": overrides, "requests": probes.requests.height,
            "seconds": round(seconds, 1), "steps": len(curve),
            "forget": int((training["role"] == "forget").sum()), "retain": int((training["role"] == "retain").sum()),
            "first_terms": curve[0]["terms"], "last_terms": curve[-1]["terms"],
            "figures": figures(probes, after, matcher), "after": after}


def main(argv: list[str] | None = None) -> int:

    from knowledgesmith.eval_harness.openended import AnswerMatcher

    args = measurement_parser(__doc__.split("\n\n")[0], "relearn, ga, npo").parse_args(argv)
    bench, model, tokenizer = mini_build_and_smollm2(args.out)
    matcher = AnswerMatcher.from_tables(bench.nodes, bench.mcq, bench.requests)
    probes = known_requests(bench, model, tokenizer, matcher, args.requests, args.out / "base.parquet")
    print(json.dumps({"requests": probes.requests.height, "probes": probes.mcq.group_by("role").len().rows()}),
          flush=True)
    for method_name in args.method:  # none: the base scores only
        result = unlearn(bench, model, tokenizer, matcher, probes, method_name, method_overrides(args.set, method_name))
        tag = f"{method_name}-{time.strftime('%H%M%S')}"
        result.pop("after").join(probes.mcq.select("id", "role", "question", "answer"), on="id").write_parquet(
            args.out / f"{tag}.parquet")
        append_result(args.out, json.dumps({"tag": tag, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
