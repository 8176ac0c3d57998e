"""Partitioning the probe and MCQ stage over processes changes nothing in the output."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledgesmith.builder.build import BuildConfig, run_build, shipped_kg_paths

pytestmark = pytest.mark.slow


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_two_workers_write_the_same_bytes_as_one(tmp_path: Path) -> None:
    builds = {}
    for workers in (1, 2):
        out = tmp_path / f"workers-{workers}"
        manifest = run_build(BuildConfig(kg_paths=shipped_kg_paths("hist"), out=out, domain="hist", max_k=1000,
                                         progress=False, workers=workers))
        assert manifest["verify"]["ok"]
        builds[workers] = _files(out)
    assert builds[1] == builds[2]
    assert sum(name.startswith("mcq/") for name in builds[1]) >= 3  # one shard per level at least
