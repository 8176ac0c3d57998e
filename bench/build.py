"""Build benchmark: ≥ 1,000,000 MCQ rows end to end from a synthetic KG, against the floor measured in the same run.

Generates a hierarchical synthetic KG with `bench/synth_kg.py`, sized so the build yields about `--rows` MCQ rows, then,
each in a fresh process so that peak RSS (`ru_maxrss`) is its own:

* `build` — `run_build` end to end: ingest, requests, probes, MCQ rows, Parquet shards, manifest, verifier. Wall
  seconds, MCQ rows/s, CPU seconds (this process and its forked workers), peak RSS of the main process and of the
  largest worker (copy-on-write pages shared with the parent count in both), and a split by stage (ingest /
  requests+probes+MCQ / verify / writing the rest), timed by wrapping the stage functions `run_build` calls;
* `floor` — what any builder of the same rows must at least do, in one process: Jinja renders in a
  `SandboxedEnvironment` (StrictUndefined, as the builder's) of the shipped probe templates and generic phrasings, as
  many as the rows' text needs when each row is phrased on its own (`RENDERS`: the relation phrasing(s) plus the
  probe template per probe, emitted or skipped for want of distractors, and two per request; counted from the
  build's manifest) — the builder shares and memoises some renders, so it may make fewer — plus a pyarrow write of
  the same rows (the build's MCQ shards read back, then written again shard by shard with the builder's
  `PARQUET_OPTIONS`; only the write is timed).

Prints seconds, rows/s, the ratio build ÷ floor, CPU seconds and peak RSS (goals on 2 cores: ≤ 3× the floor, ≤ 20 s,
≤ 2 GB), and, to show whether RSS grows with the number of rows: with `--rss-rows` the build again on smaller KGs
sized for fewer rows, and with `--rss-max-k` the same KG built again with fewer requests (fewer rows, same KG — the
cleaner test, since a smaller KG also has a smaller index).
Wall times assume an otherwise idle machine; the load average is printed before and after.

Requests are capped at `--max-k` per domain and level. With one domain, ~1M rows need ~37,000 leaf requests (27 rows
per request at 947451d, 9 before its probes.yaml), so the default is one domain with `--max-k 200000`: one build of
1M rows is what the RSS goal is about (the builder continues the k scale past 10,000 by powers of ten for such
`--max-k`). `--domains N` (0: as many as `--max-k` needs) instead builds N synthetic domains one after another in the
same process.

Usage: python bench/build.py [--rows 1000000] [--repeat 1] [--rss-rows 250000] [--rss-max-k 10000,20000]
                             [--max-k 200000] [--domains 1]
       python bench/build.py --profile [--rows 100000]   (cProfile of build_benchmark in one process)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synth_kg import generate

# Empirical sizing (synthetic KG, seed 0, builder at 947451d with templates/probes.yaml as shipped, ~15k entities;
# fewer rows per entity on smaller KGs, whose classes have fewer siblings): MCQ rows per leaf entity when requests are
# not capped, and MCQ rows per request. Used only to size the KG; the tables report the rows actually built. (At
# 6ccc65a, before probes.yaml, they were 17 and 9.)
ROWS_PER_ENTITY = 50.0
ROWS_PER_REQUEST = 27.0

# Jinja renders behind one probe specification (built whether or not it finds 3 distractors) and one request:
# the relation phrasing(s) plus the probe-type template. See ProbeBuilder in builder/probes.py.
RENDERS = {
    # probe type: phrasing kinds rendered, then the probe template
    "direct": ("question",),
    "reverse": ("reverse",),
    "multi_hop": ("noun_phrase", "question"),
    "comparison": ("same",),
    "conflict": ("statement", "question"),
    "contextual": ("question",),
}
REQUEST_RENDERS = ("prompt", "neutral")  # a request's editor prompt and neutral answer


# -- what runs in the children ---------------------------------------------------------------------------------------

def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (wall time suffers when the machine is
    shared; CPU time much less)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _worker_peak_rss_mib() -> float:
    """The largest peak RSS among finished child processes (the builder's forked workers; shared pages included)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def measure_build(kg_paths: list[str], out: str, max_k: int, workers: int) -> dict[str, Any]:
    """One child: `run_build` of every domain KG, one after another; wall time, rows, stage split, peak RSS of this
    process and of the largest forked worker. `workers` ≤ 0 keeps the builder's default."""
    import dataclasses

    from knowledgesmith.builder import BuildConfig, run_build
    from knowledgesmith.builder import build as build_module

    stages: Counter[str] = Counter()

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[name] += time.perf_counter() - started
        return wrapper

    build_module.ingest = timed("ingest", build_module.ingest)
    build_module.build_benchmark = timed("requests+probes+mcq", build_module.build_benchmark)
    # the verifier re-proves each shard while the next ones are written: "shards+verify" is the writing with the
    # verification alongside, "verify rest" the wait for the row groups still being proved after the last shard
    build_module.write_mcq_shards = timed("shards+verify", build_module.write_mcq_shards)
    build_module.Verification.finish = timed("verify rest", build_module.Verification.finish)
    rows = requests = 0
    manifests = []
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    for i, path in enumerate(kg_paths):
        config = BuildConfig(kg_paths=[Path(path)], out=Path(out) / f"d{i}", domain=f"synth{i}", progress=False,
                             max_k=max_k)
        if workers > 0:
            config = dataclasses.replace(config, workers=workers)
        used_workers = getattr(config, "workers", 1)
        manifest = run_build(config)
        manifests.append(manifest)
    seconds, cpu_seconds = time.perf_counter() - started, _cpu_seconds() - cpu_started
    for manifest in manifests:
        bench = manifest["benchmark"]
        rows += bench["mcq_rows"]
        requests += sum(level["requests"] for level in bench["requests_per_level"].values())
        if not manifest["verify"]["ok"]:
            raise SystemExit(f"verifier failed: {manifest['verify']['first_failures'][:3]}")
    stages["rest"] = seconds - sum(stages.values())
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "rows": rows, "requests": requests,
            "peak_rss_mib": _peak_rss_mib(),
            "worker_peak_rss_mib": _worker_peak_rss_mib(), "workers": used_workers, "stages": dict(stages)}


def render_plan(manifests: list[dict[str, Any]]) -> tuple[Counter[str], int]:
    """How many probe specifications of each type the builds rendered (rows plus skipped probes), and requests."""
    specs: Counter[str] = Counter()
    requests = 0
    for manifest in manifests:
        bench = manifest["benchmark"]
        for per_type in bench["mcq_per_level_and_probe_type"].values():
            specs.update(per_type)
        for key, count in bench["probes_skipped"].items():
            specs[key.split(":", 1)[0]] += count
        requests += sum(level["requests"] for level in bench["requests_per_level"].values())
    return specs, requests


def measure_floor(out: str) -> dict[str, Any]:
    """One child: the same Jinja renders as the build(s) under `out`, then the same MCQ rows written with pyarrow."""
    import random

    import jinja2
    import pyarrow.parquet as pq
    import yaml
    from jinja2.sandbox import SandboxedEnvironment

    from knowledgesmith.builder.build import PARQUET_OPTIONS
    from knowledgesmith.builder.templates import label_form

    folders = sorted(p for p in Path(out).iterdir() if (p / "manifest.json").is_file())
    manifests = [json.loads((p / "manifest.json").read_text()) for p in folders]
    specs, requests = render_plan(manifests)

    # what gets rendered: the shipped probe templates and generic phrasings, with the KG's labels as variables
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    from importlib import resources

    shipped = Path(str(resources.files("knowledgesmith.templates")))
    probe_templates = {t: env.from_string((shipped / f"{t}.jinja").read_text(encoding="utf-8")) for t in RENDERS}
    generic = yaml.safe_load((shipped / "generic.yaml").read_text(encoding="utf-8"))
    relation_labels = [r for f in folders for r in pq.read_table(f / "relations.parquet", columns=["label"])
                       ["label"].to_pylist()]
    phrasings: dict[str, list[jinja2.Template]] = {}
    for kind in {k for kinds in RENDERS.values() for k in kinds} | set(REQUEST_RENDERS):
        phrasings[kind] = []
        for relation in relation_labels:
            texts = generic[label_form(relation)][kind]
            for text in [texts] if isinstance(texts, str) else texts:
                phrasings[kind].append(env.from_string(text, globals={"relation": relation}))
    labels = pq.read_table(folders[0] / "nodes.parquet", columns=["label"])["label"].to_pylist()
    rng = random.Random(0)
    labels = [labels[rng.randrange(len(labels))] for _ in range(4096)]
    outer_var = {"direct": ("question",), "reverse": ("reverse_question",), "multi_hop": ("second_hop_question",),
                 "comparison": ("same_question",), "conflict": ("context", "question"), "contextual": ("question",)}

    started, cpu_started = time.perf_counter(), _cpu_seconds()
    renders = 0
    n = 0
    for probe_type, count in specs.items():
        kinds, outer, names = RENDERS[probe_type], probe_templates[probe_type], outer_var[probe_type]
        for _ in range(count):
            n += 1
            subject, obj = labels[n & 4095], labels[(n * 7) & 4095]
            if probe_type == "multi_hop":  # the first hop's noun phrase is the second question's subject
                noun = phrasings["noun_phrase"][n % len(phrasings["noun_phrase"])].render(subject=subject, object=obj)
                inner = [phrasings["question"][n % len(phrasings["question"])].render(subject=noun, object=obj)]
            else:
                inner = [phrasings[k][n % len(phrasings[k])].render(subject=subject, object=obj) for k in kinds]
            outer.render(**dict(zip(names, inner, strict=True)))
            renders += len(kinds) + 1
    for _ in range(requests):
        n += 1
        for kind in REQUEST_RENDERS:
            phrasings[kind][n % len(phrasings[kind])].render(subject=labels[n & 4095], object=labels[(n * 7) & 4095])
            renders += 1
    render_seconds = time.perf_counter() - started

    read_started = _cpu_seconds()
    shards = [pq.read_table(path) for f in folders for path in sorted((f / "mcq").glob("*.parquet"))]
    read_cpu = _cpu_seconds() - read_started  # reading the shards back is not part of the floor
    rows = sum(t.num_rows for t in shards)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        for i, table in enumerate(shards):
            pq.write_table(table, Path(tmp) / f"{i}.parquet", **PARQUET_OPTIONS)
        write_seconds = time.perf_counter() - started
    cpu_seconds = _cpu_seconds() - cpu_started - read_cpu
    return {"seconds": render_seconds + write_seconds, "cpu_seconds": cpu_seconds, "render_seconds": render_seconds,
            "renders": renders, "write_seconds": write_seconds, "rows": rows, "peak_rss_mib": _peak_rss_mib()}


def profile_benchmark(kg_path: str, max_k: int, top: int) -> None:
    """cProfile of `build_benchmark` (requests + probes + MCQ) on an ingested KG, in one process; prints the top
    functions by cumulative and by own time."""
    import cProfile
    import inspect
    import pstats

    from knowledgesmith.builder import ingest
    from knowledgesmith.builder.benchmark import build_benchmark

    kg, _ = ingest([Path(kg_path)], domain="synth0")
    # one process: cProfile does not see forked workers
    extra = {"workers": 1} if "workers" in inspect.signature(build_benchmark).parameters else {}
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    bench = build_benchmark(kg, "synth0", max_k=max_k, **extra)
    profiler.disable()
    seconds = time.perf_counter() - started
    rows = int(bench.report["mcq_rows"])
    bench.close()
    print(f"build_benchmark: {rows:,} MCQ rows in {seconds:.1f} s under cProfile ({rows / seconds:,.0f} rows/s)")
    stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    stats.print_callers(r"__init__.py:\d+\(__iter__\)|fromkeys")


# -- the parent -----------------------------------------------------------------------------------------------------

def _run_child(*args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def plan_kg(rows: int, max_k: int, domains: int, rows_per_entity: float) -> tuple[int, int]:
    """(domains, leaf entities per domain) for about `rows` MCQ rows."""
    if domains <= 0:  # auto: as many domains as the cap on requests per domain and level needs
        domains = max(1, math.ceil(rows / ROWS_PER_REQUEST / max_k))
    return domains, math.ceil(rows / domains / rows_per_entity)


def make_kgs(folder: Path, rows: int, args: argparse.Namespace) -> tuple[list[str], str]:
    """Write the synthetic domain KGs for about `rows` rows; returns their paths and a one-line description."""
    domains, entities = plan_kg(rows, args.max_k, args.domains, args.rows_per_entity)
    folder.mkdir(parents=True, exist_ok=True)
    paths, statements, size = [], 0, 0
    for d in range(domains):
        path = folder / f"synth{d}.nt"
        statements += generate(path, entities, seed=args.seed + 1000 * d)["statements"]
        size += path.stat().st_size
        paths.append(str(path))
    text = (f"{domains} domain{'s' if domains > 1 else ''} × {entities:,} leaf entities: {statements:,} N-Triples "
            f"statements, {size / 2**20:.0f} MiB; max_k {args.max_k:,}")
    return paths, text


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def _rss_cells(r: dict[str, Any]) -> str:
    worker = r.get("worker_peak_rss_mib", 0.0) if r.get("workers", 1) > 1 else 0.0
    return f"{r['peak_rss_mib']:13.0f} {f'{worker:.0f}' if worker else '-':>15}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="target MCQ rows (the KG is sized for it)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode; the best time is reported")
    parser.add_argument("--rss-rows", type=str, default="250000",
                        help="comma-separated smaller row targets to build again for RSS against rows ('' for none)")
    parser.add_argument("--rss-max-k", type=str, default="10000,20000",
                        help="comma-separated smaller --max-k caps to build the same KG again, for RSS against rows at "
                             "a fixed KG ('' for none)")
    parser.add_argument("--max-k", type=int, default=200_000, help="requests per domain and level (BuildConfig.max_k)")
    parser.add_argument("--domains", type=int, default=1, help="domains built one after another (0: as the cap needs)")
    parser.add_argument("--workers", type=int, default=0,
                        help="BuildConfig.workers for the build (0: the builder's default); the floor is one process")
    parser.add_argument("--rows-per-entity", type=float, default=ROWS_PER_ENTITY,
                        help="sizing: MCQ rows the builder makes per leaf entity (the bench prints a corrected value "
                             "when the rows built miss --rows by more than 10 %%)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="keep the KGs and build outputs in this folder")
    parser.add_argument("--profile", action="store_true", help="cProfile build_benchmark at --rows instead")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, rest = args.child[0], args.child[1:]
        if mode == "build":
            result = measure_build(json.loads(rest[0]), rest[1], int(rest[2]), int(rest[3]))
        elif mode == "floor":
            result = measure_floor(rest[0])
        else:
            raise ValueError(mode)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = args.keep or Path(tmp_name)
        print(f"builder: {_builder_revision()}; {os.cpu_count()} CPUs; {_load()}")
        if args.profile:
            args.domains = 1
            paths, text = make_kgs(tmp / "kg-profile", args.rows, args)
            print(f"synthetic KG: {text}")
            profile_benchmark(paths[0], args.max_k, args.top)
            return
        paths, text = make_kgs(tmp / "kg", args.rows, args)
        print(f"synthetic KG: {text}")
        builds = [_run_child("build", json.dumps(paths), str(tmp / f"out{i}"), str(args.max_k), str(args.workers))
                  for i in range(args.repeat)]
        best = min(range(args.repeat), key=lambda i: builds[i]["seconds"])
        build = builds[best]
        floors = [_run_child("floor", str(tmp / f"out{best}")) for _ in range(args.repeat)]
        floor = min(floors, key=lambda r: r["seconds"])
        if floor["rows"] != build["rows"]:
            raise SystemExit(f"floor wrote {floor['rows']:,} rows, the build {build['rows']:,}")

        rows = build["rows"]
        if abs(rows - args.rows) > 0.1 * args.rows:
            print(f"note: {rows:,} rows for a target of {args.rows:,}; --rows-per-entity "
                  f"{args.rows_per_entity * rows / args.rows:.1f} would size the KG closer")
        print(f"{rows:,} MCQ rows from {build['requests']:,} requests; floor = {floor['renders']:,} Jinja renders "
              f"({floor['render_seconds']:.2f} s) + pyarrow write ({floor['write_seconds']:.2f} s)")
        print(f"{'mode':8} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'÷ floor':>8} {'CPU s':>8} {'peak RSS MiB':>13} "
              f"{'worker RSS MiB':>15}")
        for mode, r in (("build", build), ("floor", floor)):
            print(f"{mode:8} {rows:10,} {r['seconds']:8.2f} {rows / r['seconds']:9,.0f} "
                  f"{r['seconds'] / floor['seconds']:8.2f} {r['cpu_seconds']:8.1f} {_rss_cells(r)}")
        print(f"build: {build['workers']} worker(s); stages: "
              + ", ".join(f"{name} {s:.1f} s" for name, s in build["stages"].items()))

        sizes = [int(x) for x in args.rss_rows.split(",") if x.strip()]
        if sizes:
            points = []
            for target in sorted(sizes):
                small_paths, _ = make_kgs(tmp / f"kg-{target}", target, args)
                points.append((f"{target:,}", _run_child("build", json.dumps(small_paths), str(tmp / f"out-{target}"),
                                                         str(args.max_k), str(args.workers))))
            points.append((f"{args.rows:,}", build))
            _print_rss_table("RSS against rows, KG sized for the rows", "target rows", points)
        caps = [int(x) for x in args.rss_max_k.split(",") if x.strip()]
        if caps:
            points = [(f"{cap:,}", _run_child("build", json.dumps(paths), str(tmp / f"out-k{cap}"), str(cap),
                                              str(args.workers))) for cap in sorted(caps)]
            points.append((f"{args.max_k:,}", build))
            _print_rss_table("RSS against rows on the same KG, requests capped by --max-k", "max k", points)
        print(_load())


def _print_rss_table(title: str, first: str, points: list[tuple[str, dict[str, Any]]]) -> None:
    print(f"\n{title} (KiB/row: RSS added per row added):\n{first:>11} {'rows':>10} {'seconds':>8} {'rows/s':>9} "
          f"{'CPU s':>8} {'peak RSS MiB':>13} {'worker RSS MiB':>15} {'KiB/row':>8}")
    previous: dict[str, Any] | None = None
    for label, r in points:
        marginal = ""
        if previous is not None and r["rows"] != previous["rows"]:
            added_kib = (r["peak_rss_mib"] - previous["peak_rss_mib"]) * 1024
            marginal = f"{added_kib / (r['rows'] - previous['rows']):.2f}"
        print(f"{label:>11} {r['rows']:10,} {r['seconds']:8.2f} {r['rows'] / r['seconds']:9,.0f} "
              f"{r['cpu_seconds']:8.1f} {_rss_cells(r)} {marginal:>8}")
        previous = r


def _builder_revision() -> str:
    """Where `knowledgesmith.builder` is imported from: its git commit, and whether builder/ or templates/ differ
    from it (the code being measured)."""
    import importlib.util

    spec = importlib.util.find_spec("knowledgesmith.builder")
    folder = Path(spec.origin).parent if spec is not None and spec.origin else None
    if folder is None:
        return "knowledgesmith.builder not found"
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder.parent), "status", "--porcelain", "builder", "templates"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"{folder} (not a git checkout)"
    return f"{folder} at commit {head}" + (" + uncommitted changes in builder/ or templates/" if dirty else "")

if __name__ == "__main__":
    main()
