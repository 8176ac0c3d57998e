"""Ingest benchmark: our N-Triples ingest against pyoxigraph's raw parse stream over the same file.

Generates a synthetic hierarchical KG of N statements (labels, a class hierarchy, rdf:type, facts over 30 relations),
then, each in a fresh process so peak RSS is its own:

* `raw`    — iterate pyoxigraph.parse over the file and touch nothing (the floor);
* `ingest` — our `ingest()`: parse, apply the fact rule, choose labels, compute the hierarchy, build Arrow tables;
* `build`  — `ks-build` end to end (ingest plus writing the Parquet files and the manifest);
* `rdflib` — (with --rdflib) rdflib's in-memory Graph over the same file, for the memory comparison.

Prints seconds, ratio against `raw`, and peak RSS. Usage: python bench/ingest.py [--statements 1000000] [--rdflib]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EX = "http://bench.knowledgesmith.org/"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
SUBCLASS = "<http://www.w3.org/2000/01/rdf-schema#subClassOf>"
LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"


def generate(path: Path, statements: int, seed: int = 0) -> None:
    """A KG shaped like the domain KGs: ~2 % classes in a tree, every entity typed and labelled, the rest facts."""
    rng = random.Random(seed)
    n_classes = max(10, statements // 500)
    n_entities = max(100, statements // 10)
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        for c in range(n_classes):
            out.write(f'<{EX}C{c}> {LABEL} "Class {c}"@en .\n')
            written += 1
            if c >= 20:  # the first 20 classes are roots
                out.write(f"<{EX}C{c}> {SUBCLASS} <{EX}C{rng.randrange(c // 2)}> .\n")
                written += 1
        for e in range(n_entities):
            out.write(f'<{EX}E{e}> {LABEL} "Entity {e}"@en .\n')
            out.write(f"<{EX}E{e}> {RDF_TYPE} <{EX}C{rng.randrange(n_classes // 4, n_classes)}> .\n")
            written += 2
        while written < statements:
            s, o, p = rng.randrange(n_entities), rng.randrange(n_entities), rng.randrange(30)
            if p == 29:
                value = f'"{rng.randrange(10**6)}"^^<http://www.w3.org/2001/XMLSchema#integer>'
                out.write(f"<{EX}E{s}> <{EX}p{p}> {value} .\n")
            else:
                out.write(f"<{EX}E{s}> <{EX}p{p}> <{EX}E{o}> .\n")
            written += 1


def _measure(mode: str, path: Path, out: Path) -> dict[str, float]:
    """Runs in a child process: one mode, its wall time and its peak RSS."""
    started = time.perf_counter()
    if mode == "raw":
        import pyoxigraph

        count = 0
        for _ in pyoxigraph.parse(path=str(path), format=pyoxigraph.RdfFormat.N_TRIPLES):
            count += 1
    elif mode == "ingest":
        from knowledgesmith.builder import ingest

        kg, _ = ingest([path])
        count = kg.triples.num_rows
    elif mode == "build":
        from knowledgesmith.builder import BuildConfig, run_build

        manifest = run_build(BuildConfig(kg_paths=[path], out=out, progress=False))
        count = manifest["counts"]["facts"]  # type: ignore[index]
    elif mode == "rdflib":
        import rdflib

        graph = rdflib.Graph()
        graph.parse(str(path), format="nt")
        count = len(graph)
    else:
        raise ValueError(mode)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mib": peak_mib, "count": count}


def _run_child(mode: str, path: Path, out: Path) -> dict[str, float]:
    result = subprocess.run([sys.executable, __file__, "--child", mode, str(path), str(out)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the best time is reported")
    parser.add_argument("--rdflib", action="store_true", help="also measure rdflib's in-memory Graph (slow)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, path, out = args.child
        print(json.dumps(_measure(mode, Path(path), Path(out))))
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.nt"
        generate(path, args.statements)
        size_mib = path.stat().st_size / 2**20
        print(f"{args.statements:,} N-Triples statements, {size_mib:.0f} MiB")
        modes = ["raw", "ingest", "build"] + (["rdflib"] if args.rdflib else [])
        results = {}
        for mode in modes:
            runs = [_run_child(mode, path, Path(tmp) / "out") for _ in range(1 if mode == "rdflib" else args.repeat)]
            results[mode] = min(runs, key=lambda r: r["seconds"])
        floor = results["raw"]["seconds"]
        print(f"{'mode':8} {'seconds':>8} {'÷ raw':>7} {'peak RSS MiB':>13}")
        for mode, r in results.items():
            print(f"{mode:8} {r['seconds']:8.2f} {r['seconds'] / floor:7.2f} {r['peak_rss_mib']:13.0f}")


if __name__ == "__main__":
    main()
