"""`ks-kg`: generate a checked hierarchical KG through any OpenAI-compatible endpoint. User mistakes print one line
and exit 2; an interrupted or over-budget run keeps its cache, and the same command resumes it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from knowledgesmith.builder import __version__
from knowledgesmith.builder.errors import KsUserError

from .endpoint import ChatEndpoint
from .generate import GenerationConfig, generate_kg, write_outputs


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "knowledgesmith" / "kggen"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ks-kg", description="Knowledge graphs generated through an LLM.")
    parser.add_argument("--version", action="version", version=f"ks-kg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="generate")
    gen = sub.add_parser(
        "generate", help="generate a verified hierarchical KG of a domain (Turtle that ks-build reads)",
        description="Generate a hierarchical KG of a domain through an OpenAI-compatible chat endpoint (OpenAI, "
                    "vLLM, llama.cpp, Ollama), in stages: root concepts → sub-themes → a relation vocabulary → "
                    "entities → facts, each fact confirmed by a second phrasing and checked against the relation's "
                    "domain, range and functionality. Writes OUT (Turtle) and OUT's .report.json beside it. Every "
                    "answer is cached: a rerun costs nothing and an interrupted run resumes.",
        epilog="Example: vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000 & ks-kg generate --domain law "
               "--model Qwen/Qwen2.5-7B-Instruct --endpoint http://127.0.0.1:8000/v1 --out kg/law.ttl")
    gen.add_argument("--domain", required=True, help="the domain, in words (e.g. law, 'internal medicine')")
    gen.add_argument("--model", required=True, help="model name as the endpoint knows it")
    gen.add_argument("--endpoint", metavar="URL",
                     help="base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 (default: "
                          "$OPENAI_BASE_URL, else the OpenAI API). The key comes from $OPENAI_API_KEY; local "
                          "servers need none")
    gen.add_argument("--out", type=Path, required=True, metavar="FILE.ttl", help="the Turtle file to write")
    gen.add_argument("--cache", type=Path, default=None, metavar="DIR",
                     help=f"answer cache (default {default_cache()}); reruns and resumed runs replay it")
    gen.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0)")
    gen.add_argument("--seed", type=int, default=0, help="seed sent with every request (default 0)")
    gen.add_argument("--roots", type=_positive, default=8, metavar="N", help="root concepts (default 8)")
    gen.add_argument("--subthemes", type=_positive, default=6, metavar="N",
                     help="sub-themes per root concept (default 6)")
    gen.add_argument("--leaves", type=_positive, default=12, metavar="N",
                     help="entities per sub-theme (default 12)")
    gen.add_argument("--relations", type=_positive, default=None, metavar="N",
                     help="relations to propose (default: the relation guide's count, 12)")
    gen.add_argument("--relation-guide", type=Path, metavar="FILE.yaml",
                     help="replace the shipped instructions for the relation vocabulary (same keys as "
                          "kggen/relations.yaml)")
    gen.add_argument("--max-requests", type=_positive, metavar="N",
                     help="stop with an error after N HTTP requests (retries count; cached answers do not)")
    gen.add_argument("--max-tokens-total", type=_positive, metavar="N",
                     help="stop with an error once the endpoint reports N tokens used by this run")
    gen.add_argument("--concurrency", type=_positive, default=4, metavar="N",
                     help="requests in flight at once (default 4); the KG does not depend on it")
    gen.add_argument("--no-structured", action="store_true",
                     help="ask for JSON mode instead of structured outputs (json_schema); the fallback is also "
                          "automatic when the server rejects json_schema")
    gen.add_argument("--stream", action="store_true", help="stream the answers (server-sent events)")
    gen.add_argument("--timeout", type=float, default=120.0, metavar="S", help="seconds per request (default 120)")
    gen.add_argument("--retries", type=int, default=4, metavar="N",
                     help="retries of a request after a rate limit, timeout, server error or invalid JSON "
                          "(default 4)")
    gen.add_argument("--backoff", type=float, default=1.0, metavar="S",
                     help="first retry delay in seconds, doubled each retry (default 1; a Retry-After wins)")
    gen.add_argument("--max-answer-tokens", type=_positive, metavar="N", help="max_tokens of each answer")
    gen.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cache = args.cache or default_cache()
    try:
        endpoint = ChatEndpoint(args.model, base_url=args.endpoint, cache_dir=cache,
                                temperature=args.temperature, seed=args.seed, timeout=args.timeout,
                                retries=args.retries, backoff=args.backoff, structured=not args.no_structured,
                                stream=args.stream, max_requests=args.max_requests,
                                max_tokens_total=args.max_tokens_total, concurrency=args.concurrency,
                                max_answer_tokens=args.max_answer_tokens)
        config = GenerationConfig(domain=args.domain, roots=args.roots, subthemes=args.subthemes,
                                  leaves=args.leaves, relations=args.relations, relation_guide=args.relation_guide)
        kg = generate_kg(config, endpoint, progress=not args.quiet)
        report = write_outputs(kg, args.out)
    except KsUserError as exc:
        print(f"ks-kg: error: {exc.format()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"ks-kg: interrupted; the answers so far are cached in {cache}: rerun the same command to resume",
              file=sys.stderr)
        return 130
    if not args.quiet:
        _print_summary(kg.report, args.out, report)
    return 0


def _print_summary(report: dict, out: Path, report_file: Path) -> None:
    counts, run = report["counts"], report["cost"]["this_run"]
    print(f"{out}: root {counts['root']}, intermediate {counts['intermediate']}, leaf {counts['leaf']}, "
          f"{counts['facts']} facts kept of {counts['facts_proposed']} proposed, {counts['relations']} relations",
          file=sys.stderr)
    if report["drop_counts"]:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in report["drop_counts"].items()), file=sys.stderr)
    print(f"this run: {run['http_requests']} HTTP requests, {run['cache_hits']} cached answers, {run['retries']} "
          f"retries, {run['total_tokens']} tokens; report: {report_file}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
