"""Editing facts SmolLM2-135M knows: the measurement behind the README's AlphaEdit/MEMIT table on SmolLM2.

The requests are the mini KG's leaf requests whose direct probes the base model answers right under cloze scoring
(all phrasings), one per subject, first by request id; each setting is applied to the same base weights (restored from a
snapshot between settings) and the probes are scored again. Figures, per setting:

* direct efficacy — share of the requests' direct probes (every phrasing) whose prediction is the new object;
* conflict efficacy — the same on the conflict Q+ probes (the new fact stated in the context);
* CCR — share of contextual Q− probes whose prediction changed; Q− accuracy before → after.

    python tests/editing_smollm2.py --requests 20 --method alphaedit --method memit \
        --set alphaedit.clamp_norm_factor=2 --out /tmp/edit

A method may carry settings of its own: `--method 'alphaedit;l2=1' --method 'alphaedit;l2=10'` sweeps α; within one
call, settings that leave the target vectors alone reuse them (see reuse_target_vectors). The script prints one JSON
line per method and appends it to OUT/results.jsonl (base scores are cached in OUT/base.parquet, the
predictions after each setting are kept in OUT/p1-METHOD-HHMMSS.parquet).
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

from knowledgesmith.eval_harness.data import asks_an_updated_fact

MODE = "cloze"


@dataclass
class EditProbes:
    requests: pl.DataFrame
    mcq: pl.DataFrame  # direct and conflict Q+, contextual Q− of the chosen requests
    base: pl.DataFrame  # id, p0
    updated: pl.Series  # per mcq row: a Q− row asking a fact that one of the requests updates


def score(model: Any, tokenizer: Any, mcq: pl.DataFrame, column: str) -> pl.DataFrame:
    from knowledgesmith.eval_harness.run import _score_frame
    from knowledgesmith.eval_harness.scoring import make_scorer

    scorer = make_scorer("hf", model, tokenizer, batch_size=32, progress=False)
    frame, _ = _score_frame(scorer, mcq, [MODE], column)
    return frame.select("id", column)


def known_requests(bench: Any, model: Any, tokenizer: Any, n: int, cache: Path) -> EditProbes:
    leaf = bench.requests.filter(pl.col("level") == "leaf")
    mcq = bench.mcq.filter(pl.col("request_id").is_in(leaf["request_id"].implode())
                           & (pl.col("probe_type").is_in(["direct", "conflict"]) & (pl.col("role") == "q_plus")
                              | (pl.col("probe_type") == "contextual")))
    if cache.exists():
        base = pl.read_parquet(cache)
    else:
        base = score(model, tokenizer, mcq, "p0")
        cache.parent.mkdir(parents=True, exist_ok=True)
        base.write_parquet(cache)
    direct = mcq.filter(pl.col("probe_type") == "direct").join(base, on="id")
    right = (direct.group_by("request_id").agg((pl.col("p0") == pl.col("answer")).all().alias("known"))
             .filter(pl.col("known")).sort("request_id"))
    # one request per subject (the first by id), as CounterFact's batches are: two edits of one subject in a batch
    # ask nearly the same key for two different target vectors
    # (a join does not keep the row order: sort again, or head(n) picks different requests from run to run)
    right = (right.join(leaf.select("request_id", "subject_id"), on="request_id").sort("request_id")
             .unique("subject_id", keep="first", maintain_order=True))
    chosen = right.head(n)["request_id"].implode()
    requests = leaf.filter(pl.col("request_id").is_in(chosen)).sort("request_id")
    probes = mcq.filter(pl.col("request_id").is_in(chosen)).sort("id")
    return EditProbes(requests, probes, base.filter(pl.col("id").is_in(probes["id"].implode())),
                      asks_an_updated_fact(probes, requests))


def figures(probes: EditProbes, after: pl.DataFrame, batch_size: int) -> dict[str, Any]:
    # batches are taken in the requests' order (sorted by id), as the method takes them
    batch_of = {r: i // batch_size for i, r in enumerate(probes.requests["request_id"].to_list())}
    rows = (probes.mcq.with_columns(probes.updated,
                                    batch=pl.col("request_id").replace_strict(batch_of, return_dtype=pl.Int64))
            .select("id", "probe_type", "role", "answer", "target", "template_id", "asks_updated_fact", "batch")
            .join(probes.base, on="id").join(after, on="id"))
    direct = rows.filter(pl.col("probe_type") == "direct")
    conflict = rows.filter((pl.col("probe_type") == "conflict") & (pl.col("role") == "q_plus"))
    # contextual Q− rows that ask a fact another chosen request updates are the edit's intended effect: left out,
    # as the harness's metrics leave them out
    minus = rows.filter((pl.col("probe_type") == "contextual") & ~pl.col("asks_updated_fact"))
    per_template = (direct.group_by("template_id").agg((pl.col("p1") == pl.col("target")).mean().round(2))
                    .sort("template_id").rows())
    return {
        "direct": direct.height,
        "direct_efficacy_per_template": per_template,
        "direct_efficacy": round(float((direct["p1"] == direct["target"]).mean()), 3),
        # sequential editing: each batch's direct efficacy after the last batch (batch 0 was applied first)
        "direct_efficacy_per_batch": direct.group_by("batch").agg((pl.col("p1") == pl.col("target")).mean()
                                                                  .round(3)).sort("batch")["p1"].to_list(),
        "direct_still_true": round(float((direct["p1"] == direct["answer"]).mean()), 3),
        "conflict_efficacy": round(float((conflict["p1"] == conflict["target"]).mean()), 3),
        "q_minus": minus.height,
        "q_minus_asking_updated_facts": int(rows.filter(pl.col("probe_type") == "contextual")["asks_updated_fact"]
                                            .sum()),
        "ccr": round(float((minus["p1"] != minus["p0"]).mean()), 3),
        "q_minus_before": round(100 * float((minus["p0"] == minus["answer"]).mean()), 1),
        "q_minus_after": round(100 * float((minus["p1"] == minus["answer"]).mean()), 1),
    }


def edit(bench: Any, model: Any, tokenizer: Any, probes: EditProbes, method_name: str,
         overrides: dict[str, Any]) -> tuple[dict[str, Any], pl.DataFrame]:
    method, seconds, after = apply_and_rescore(bench, model, tokenizer, probes.requests, probes.mcq, method_name,
                                               overrides, lambda: score(model, tokenizer, probes.mcq, "p1"))
    from knowledgesmith.eval_harness.methods import load_settings

    batch_size = int(load_settings(method_name, model.config.model_type, overrides)["edit_batch_size"])
    batches = method.report.get("batches", [])
    return {"method": method_name, "overrides": overrides, "requests": probes.requests.height,
            "seconds": round(seconds, 1), "z_final_loss": [round(b["z_final_loss"], 3) for b in batches],
            "z_realised": [round(b["z_realised"], 3) for b in batches],
            "z_nll_every_5_steps": [round(point["nll"], 3) for point in method.curve[::5]],
            "corpus": method.report.get("corpus"), "nullspace_directions": method.report.get("nullspace_directions"),
            "figures": figures(probes, after, batch_size)}, after


def reuse_target_vectors(folder: Path) -> None:
    """Memoise the z optimisation in `folder` (OUT/z-cache): AlphaEdit and MEMIT fit the same z for the same requests
    on the same weights (the method only changes the update), and z is most of an edit's time on the CPU. The key
    holds the editor's code, the requests, the contexts, every setting z depends on, the last edited layer (z lives
    there: the layers below it only share out the update, so [2..8] reuses the z of [4..8]) and a hash of the edited
    projection of every layer up to it (a later batch of a sequential run sees the earlier batches' edits, which
    differ between methods; the layers above the last edited one are never edited)."""
    import hashlib
    import inspect

    import torch

    from knowledgesmith.eval_harness.methods import alphaedit

    fit = alphaedit.LocateThenEditor.target_vectors
    folder.mkdir(parents=True, exist_ok=True)
    z_settings = ("fact_token", "v_num_grad_steps", "v_lr", "v_weight_decay", "clamp_norm_factor",
                  "kl_factor", "early_stop_loss")

    # the code z comes from: the fit and what it calls (not the update, so that a change there keeps the cache)
    z_code = [alphaedit.LocateThenEditor.target_vectors, alphaedit.LocateThenEditor._filled,
              alphaedit.LocateThenEditor._encode, alphaedit.logits_at]
    code = hashlib.sha256("".join(map(inspect.getsource, z_code)).encode()
                          + Path(alphaedit.__file__).with_name("locate.py").read_bytes()).hexdigest()

    def memoised(self: Any, requests: list, prefixes: list[str]) -> Any:
        key = (code, tuple((r.request_id, r.prompt, r.subject, r.target_new) for r in requests), tuple(prefixes),
               tuple(str(self.settings.get(name)) for name in z_settings), self.layers[-1],
               alphaedit._weights_fingerprint(self.arch, self.model, list(range(self.layers[-1] + 1))))
        path = folder / (hashlib.sha256(repr(key).encode()).hexdigest()[:24] + ".pt")
        if path.exists():
            z, report, curve = torch.load(path, weights_only=False)
            self.curve.extend(curve)
            return z, None, report
        curve_start = len(self.curve)
        z, prompts, report = fit(self, requests, prefixes)
        torch.save((z, report, self.curve[curve_start:]), path)
        return z, prompts, report

    alphaedit.LocateThenEditor.target_vectors = memoised


def main(argv: list[str] | None = None) -> int:

    args = measurement_parser(__doc__.split("\n\n")[0], "alphaedit, memit").parse_args(argv)
    bench, model, tokenizer = mini_build_and_smollm2(args.out)
    reuse_target_vectors(args.out / "z-cache")
    probes = known_requests(bench, model, tokenizer, args.requests, args.out / "base.parquet")
    print(json.dumps({"requests": probes.requests.height,
                      "probes": probes.mcq.group_by("probe_type").len().sort("probe_type").rows()}), flush=True)
    for spec in args.method:
        # "alphaedit" or "alphaedit;l2=1;nullspace_threshold=0.05": a method with settings of its own on top of --set
        method_name, *own = spec.split(";")
        overrides = method_overrides(args.set, method_name) | method_overrides(own, method_name)
        result, after = edit(bench, model, tokenizer, probes, method_name, overrides)
        finished = time.strftime("%H%M%S")
        after.write_parquet(args.out / f"p1-{method_name}-{finished}.parquet")  # the predictions, for a closer look
        append_result(args.out, json.dumps({"finished": finished, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
