"""The benchmark stage: hierarchy-tagged KG tables in, requests and verified 4-way MCQ rows out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from .graph import KnowledgeGraph
from .hierarchy import LEVELS
from .kgindex import KgIndex
from .mcq import DraftRow, draft_row, finish_rows
from .probes import ProbeBuilder
from .requests import K_VALUES, build_requests, requests_table
from .templates import PROBE_TYPES, TemplateLibrary

SHARD_ROWS = 250_000


@dataclass
class Benchmark:
    requests: pa.Table
    mcq: pa.Table
    report: dict[str, object] = field(default_factory=dict)

    def mcq_shards(self) -> dict[str, pa.Table]:
        """`<level>-NNNNN-of-NNNNN` → rows, each level's rows in id order, at most SHARD_ROWS per shard."""
        shards: dict[str, pa.Table] = {}
        for level in LEVELS:
            rows = self.mcq.filter(pc.equal(self.mcq["level"], level))
            if rows.num_rows == 0:
                continue
            count = -(-rows.num_rows // SHARD_ROWS)
            for i in range(count):
                shards[f"{level}-{i:05d}-of-{count:05d}"] = rows.slice(i * SHARD_ROWS, SHARD_ROWS)
        return shards


def build_benchmark(kg: KnowledgeGraph, domain: str, *, seed: int = 0, templates_dir: Path | None = None,
                    max_k: int = K_VALUES[-1], progress: bool = False) -> Benchmark:
    index = KgIndex.from_tables(kg.nodes, kg.triples, kg.relations)
    templates = TemplateLibrary(templates_dir)
    requests, request_report = build_requests(index, templates, domain, seed, max_k)
    probes = ProbeBuilder(index, templates, seed)
    drafts: list[DraftRow] = []
    skipped: Counter[str] = Counter()
    for request in tqdm(requests, desc="probes", unit="request", disable=None if progress else True,
                        leave=False):
        for spec in probes.probes(request):
            result = draft_row(index, spec, request, seed)
            if isinstance(result, str):
                skipped[f"{spec.probe_type}: {result}"] += 1
            else:
                drafts.append(result)
    mcq, letters = finish_rows(drafts, index, seed)
    counts = Counter(zip(mcq["level"].to_pylist(), mcq["probe_type"].to_pylist(), strict=True))
    report = {
        "requests_per_level": request_report,
        "mcq_rows": mcq.num_rows,
        "mcq_per_level_and_probe_type": {level: {p: counts.get((level, p), 0) for p in PROBE_TYPES}
                                         for level in LEVELS},
        "letters": {letter: letters.get(letter, 0) for letter in "ABCD"},
        "probes_skipped": dict(sorted(skipped.items())),
    }
    return Benchmark(requests=requests_table(requests), mcq=mcq, report=report)
