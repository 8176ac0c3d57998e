"""`ks-build`: the command line of the builder. User mistakes print one line and exit 2; nothing is half-written."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .build import SHIPPED_DOMAINS, BuildConfig, default_kg_path, run_build, shipped_kg_paths
from .errors import KsUserError
from .formats import FORMAT_ALIASES, parse_format_name
from .verify import verify_folder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ks-build",
        usage="ks-build [--kg FILE ...] --out DIR [options]\n       ks-build verify DIR",
        description="Build a KnowledgeSmith dataset from one or more knowledge graphs: RDF (Turtle, N-Triples, "
                    "N-Quads, TriG, RDF/XML, N3, JSON-LD) or JSON (node-link, triple lists, nodes with "
                    "level/parent). Writes nodes.parquet, triples.parquet, relations.parquet and manifest.json.",
        epilog="Example: ks-build --kg pizza.owl --kg extra.ttl.gz --lang en,pt --out build/pizza",
    )
    parser.add_argument("--kg", action="append", type=Path, metavar="FILE",
                        help="a KG file (repeat to merge several; .gz/.bz2/.xz read transparently). "
                             "Default: the small sample KG shipped with the package")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder (replaced atomically when the build succeeds)")
    parser.add_argument("--format", metavar="FMT",
                        help="force the syntax of every --kg file instead of detecting it from the content: "
                             + ", ".join(sorted(set(FORMAT_ALIASES))))
    parser.add_argument("--lang", default="en", metavar="LANGS",
                        help="preferred label languages, best first, comma-separated (default: en); other "
                             "languages are the fallback")
    parser.add_argument("--domain", metavar="NAME",
                        help="domain name written into every row (default: the first KG file's name); without "
                             "--kg, builds the shipped KG of that domain: " + ", ".join(SHIPPED_DOMAINS))
    parser.add_argument("--jsonld-context", action="append", default=[], metavar="URL=FILE",
                        help="a local copy of a remote JSON-LD @context (remote contexts are never fetched)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every random choice of the build (default 0)")
    parser.add_argument("--templates", type=Path, metavar="DIR",
                        help="a folder of probe templates (<probe_type>.jinja) and relation phrasings (*.yaml) that "
                             "add to or replace the shipped ones")
    parser.add_argument("--max-k", type=int, default=10_000, metavar="N",
                        help="largest request set per level (default 10000; sets are nested 1 ⊂ 10 ⊂ … ⊂ N)")
    parser.add_argument("--workers", type=int, default=max(1, min(os.cpu_count() or 1, 8)), metavar="N",
                        help="processes for the probe and MCQ stage, partitioned by request (default: the number of "
                             "CPUs, at most 8); the output does not depend on it")
    parser.add_argument("--no-mcq", action="store_true",
                        help="stop after the KG tables (nodes, triples, relations): no requests, probes or MCQ")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    parser.add_argument("--version", action="version", version=f"ks-build {__version__}")
    return parser


def _contexts(pairs: Sequence[str]) -> dict[str, Path]:
    contexts = {}
    for pair in pairs:
        url, sep, file = pair.partition("=")
        if not sep or not url or not file:
            raise KsUserError(f"--jsonld-context expects URL=FILE, got {pair!r}")
        path = Path(file)
        if not path.is_file():
            raise KsUserError("no such JSON-LD context file", path=file)
        contexts[url] = path
    return contexts


def _verify_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ks-build verify",
        description="Re-prove every MCQ row of a build from its ids against the build's KG tables: gold entailed, "
                    "no distractor entailed, four distinct options that do not read alike, provenance, and a target "
                    "consistent with the request. Exits 1 naming the rows that fail.")
    parser.add_argument("folder", type=Path, metavar="DIR", help="a folder written by ks-build")
    parser.add_argument("--show", type=int, default=20, metavar="N", help="failing rows to list (default 20)")
    parser.add_argument("--workers", type=int, default=max(1, min(os.cpu_count() or 1, 8)), metavar="N",
                        help="processes checking row groups in parallel (default: the number of CPUs, at most 8)")
    return parser


def verify_main(argv: Sequence[str]) -> int:
    args = _verify_parser().parse_args(argv)
    try:
        report = verify_folder(args.folder, workers=max(1, args.workers), progress=True)
    except KsUserError as exc:
        print(f"ks-build verify: error: {exc.format()}", file=sys.stderr)
        return exc.exit_code
    if report.ok:
        print(f"{args.folder}: all {report.rows} MCQ rows verified")
        return 0
    print(f"{args.folder}: {len(report.failures)} of {report.rows} MCQ rows fail verification", file=sys.stderr)
    for row_id, reason in report.failures[:args.show]:
        print(f"  {row_id}: {reason}", file=sys.stderr)
    if len(report.failures) > args.show:
        print(f"  … and {len(report.failures) - args.show} more", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify":
        return verify_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.kg:
            kg_paths = args.kg
        elif args.domain:
            kg_paths = shipped_kg_paths(args.domain)
        else:
            kg_paths = [default_kg_path()]
            if not args.quiet:
                print(f"no --kg or --domain given: building the sample KG {kg_paths[0]}", file=sys.stderr)
        config = BuildConfig(
            kg_paths=kg_paths,
            out=args.out,
            format=parse_format_name(args.format) if args.format else None,
            languages=[lang.strip().lower() for lang in args.lang.split(",") if lang.strip()] or ["en"],
            domain=args.domain,
            jsonld_contexts=_contexts(args.jsonld_context),
            seed=args.seed,
            progress=not args.quiet,
            mcq=not args.no_mcq,
            templates=args.templates,
            max_k=args.max_k,
            workers=max(1, args.workers),
        )
        manifest = run_build(config)
    except KsUserError as exc:
        print(f"ks-build: error: {exc.format()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ks-build: interrupted; nothing was written", file=sys.stderr)
        return 130
    if not args.quiet:
        _print_summary(manifest, args.out)
    verified = manifest.get("verify")
    if verified is not None and not verified["ok"]:  # a bug of ours, never a user mistake: say so loudly
        print(f"ks-build: error: {verified['failures']} MCQ rows fail verification (see manifest.json 'verify'); "
              "please report this", file=sys.stderr)
        return 1
    return 0


def _print_summary(manifest: dict, out: Path) -> None:
    counts = manifest["counts"]
    levels = counts["nodes_per_level"]
    print(f"{out}: {counts['nodes']} nodes (root {levels['root']}, intermediate {levels['intermediate']}, "
          f"leaf {levels['leaf']}), {counts['facts']} facts over {counts['relations']} relations, "
          f"max depth {counts['max_depth']}", file=sys.stderr)
    for warning in manifest["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    benchmark = manifest.get("benchmark")
    if benchmark:
        print(summary_table(benchmark), file=sys.stderr)
        print("requests: " + ", ".join(f"{level} {r['requests']} (k ≤ {r['largest_k']})"
                                        for level, r in benchmark["requests_per_level"].items()), file=sys.stderr)
        letters = benchmark["letters"]
        print(f"{benchmark['mcq_rows']} MCQ rows, gold letters " + " ".join(f"{k} {v}" for k, v in letters.items())
              + f"; verified: {manifest['verify']['ok']}", file=sys.stderr)


def summary_table(benchmark: dict) -> str:
    """MCQ rows per level × probe type, as a polars table."""
    import polars as pl

    per = benchmark["mcq_per_level_and_probe_type"]
    frame = pl.DataFrame([{"level": level, **counts, "total": sum(counts.values())} for level, counts in per.items()])
    with pl.Config(tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, tbl_rows=10, tbl_cols=12):
        return str(frame)


if __name__ == "__main__":
    sys.exit(main())
