"""Edit benchmark: AlphaEdit's target-vector optimisation batched (one padded batch, one optimiser over all
requests' δ) against one request after another, on the same requests and model, and the wall time of whole edits.

Prints, for `--requests N` leaf requests of a build (default: the mini KG of the tests, built on the fly):
* z-optimisation requests/s batched and one-by-one, and the ratio (same settings, same seed, same steps cap), on the
  first `--compare` requests (one by one is the slow side: 100 requests one by one take hours on a CPU);
* the wall time of `--method` (alphaedit) applied to all N requests end to end (key statistics cached first, so the
  time is the edit itself; the statistics' one-time cost is printed separately).

Usage: python bench/edit.py [--model smollm2] [--data BUILD] [--requests 20] [--compare 10] [--method alphaedit]
                            [--device cpu] [--set KEY=VALUE ...]
       python bench/edit.py --data build/econ --requests 100 --compare 0    (100 edits end to end only)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--data", help="a ks-build folder (default: build the tests' mini KG)")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--compare", type=int, default=None,
                        help="requests for the batched ÷ one-by-one z comparison (default: all; 0 skips it)")
    parser.add_argument("--method", default="alphaedit", choices=("alphaedit", "memit"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a method setting (value read as YAML), on top of the model family's")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    from knowledgesmith.eval_harness.data import load_benchmark
    from knowledgesmith.eval_harness.methods import get_method, load_settings, requests_from_frame
    from knowledgesmith.eval_harness.methods.alphaedit import LocateThenEditor, corpus_texts
    from knowledgesmith.eval_harness.methods.base import parse_overrides
    from knowledgesmith.eval_harness.models import load_model

    data = args.data
    if data is None:
        sys.path.insert(0, str(REPO / "tests"))
        from minikg import build_mini

        data = str(Path(tempfile.mkdtemp()) / "mini")
        build_mini(Path(data))
    bench = load_benchmark(data)
    requests = requests_from_frame(bench.requests.filter(pl.col("level") == "leaf").sort("k_min", "request_id")
                                   .head(args.requests))
    model, tokenizer = load_model(args.model, device=args.device, dtype="float32")
    settings = load_settings(args.method, model.config.model_type, parse_overrides(args.set))
    settings["progress"] = True
    print(f"model {args.model} ({model.config.model_type}, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M "
          f"params) on {next(model.parameters()).device}, {len(requests)} requests, torch threads "
          f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")

    editor = LocateThenEditor(model, tokenizer, settings, project=args.method == "alphaedit")
    texts, name = corpus_texts(settings["corpus"], int(settings["corpus_samples"]), 0, bench.mcq, bench.mcq,
                               sample_model=lambda: editor.sampled_corpus(True))
    started = time.perf_counter()
    editor.prepare_statistics(texts, name, progress=True)
    editor.prepare_projectors()
    print(f"key statistics ({name}; {len(texts)} texts): {time.perf_counter() - started:.1f} s (cached afterwards)")
    prefixes = editor._contexts()

    compared = requests[: len(requests) if args.compare is None else args.compare]
    if compared:
        started = time.perf_counter()
        editor.target_vectors(compared, prefixes)
        batched = time.perf_counter() - started
        started = time.perf_counter()
        for request in compared:
            editor.target_vectors([request], prefixes)
        single = time.perf_counter() - started
        print(f"z optimisation of {len(compared)} requests: batched {len(compared) / batched:.2f} requests/s "
              f"({batched:.1f} s), one-by-one {len(compared) / single:.2f} requests/s ({single:.1f} s): "
              f"batched ÷ one-by-one = {single / batched:.1f}×", flush=True)

    method = get_method(args.method)
    method.benchmark_mcq = bench.mcq
    started = time.perf_counter()
    method.apply(model, tokenizer, requests, bench.mcq, settings)
    whole = time.perf_counter() - started
    batches = method.report["batches"]
    print(f"{args.method}: {len(requests)} edits in {whole:.1f} s ({len(requests) / whole:.2f} edits/s) end to end; "
          f"{len(batches)} batch(es), z steps {[b['z_steps'] for b in batches]}, z loss "
          f"{[round(b['z_final_loss'], 3) for b in batches]}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
