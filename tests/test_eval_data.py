"""Benchmark loading and selection for ks-eval: build folders, nested k sets, and clear errors for bad selections."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from knowledgesmith.eval_harness.data import DataError, load_benchmark, parse_ks, select


def test_build_folder_loads_every_row(mini_build_dir: Path) -> None:
    bench = load_benchmark(mini_build_dir)
    assert bench.requests.height == pl.read_parquet(mini_build_dir / "requests.parquet").height
    assert bench.mcq.height == bench.manifest["benchmark"]["mcq_rows"]
    assert bench.domains == ["mini_kg"]


def test_k_sets_are_nested_and_exact(mini_build_dir: Path) -> None:
    selection = select(load_benchmark(mini_build_dir), ks=[1, 10], levels=["leaf"])
    one, ten = selection.requests_for(1), selection.requests_for(10)
    assert one.height == 1 and ten.height == 10
    assert set(one["request_id"]) <= set(ten["request_id"])
    probes = selection.mcq_for(10)
    assert set(probes["request_id"]) <= set(ten["request_id"])
    # every probe of the chosen requests comes along, Q+ and Q−
    everything = load_benchmark(mini_build_dir).mcq
    assert probes.height == everything.filter(pl.col("request_id").is_in(ten["request_id"].implode())).height
    assert set(probes["role"]) == {"q_plus", "q_minus"}


def test_k_larger_than_the_pool_names_the_pool(mini_build_dir: Path) -> None:
    bench = load_benchmark(mini_build_dir)
    pool = bench.requests.filter(pl.col("level") == "leaf").height
    with pytest.raises(DataError, match=rf"k = 1000 is larger than the pool: mini_kg/leaf holds {pool} requests"):
        select(bench, ks=[1000], levels=["leaf"])


@pytest.mark.parametrize("text, message", [("abc", "comma-separated"), ("0", "comma-separated"),
                                           ("5", "powers of ten")])
def test_bad_k(text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        parse_ks(text)


def test_parse_ks_sorts_and_dedupes() -> None:
    assert parse_ks("100, 1,10,1") == [1, 10, 100]


def test_bad_selection_errors(mini_build_dir: Path, tmp_path: Path) -> None:
    bench = load_benchmark(mini_build_dir)
    with pytest.raises(DataError, match="--level 'leaves'"):
        select(bench, ks=[1], levels=["leaves"])
    with pytest.raises(DataError, match="--domain 'bio'"):
        select(bench, ks=[1], domain="bio")
    with pytest.raises(DataError, match="--branch 'Nowhere'"):
        select(bench, ks=[1], branch="Nowhere")
    with pytest.raises(DataError, match="no such folder"):
        load_benchmark(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no requests.parquet"):
        load_benchmark(tmp_path / "empty")


def test_branch_by_last_segment(mini_build_dir: Path) -> None:
    selection = select(load_benchmark(mini_build_dir), ks=[1], branch="Country")
    assert set(selection.requests["branch_id"]) == {"https://knowledgesmith.org/test/mini/Country"}


def test_staged_folder_and_hub_id_give_the_same_benchmark(mini_build_dir: Path, tmp_path: Path) -> None:
    """--data accepts what ks-publish stages, and the repo id once it is on a Hub (our test Hub on 127.0.0.1)."""
    import json
    import os
    import subprocess
    import sys

    from hubserver import FakeHub

    direct = select(load_benchmark(mini_build_dir), ks=[10], levels=["leaf"])
    stage = tmp_path / "stage"
    server = FakeHub()
    server.start()
    try:
        env = {**os.environ, "HF_ENDPOINT": server.url, "HF_TOKEN": "hf_test_write_token",
               "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0",
               "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        publish = subprocess.run([sys.executable, "-m", "knowledgesmith.builder.publish", str(mini_build_dir),
                                  "--repo-id", "knowledgesmith/mini", "--stage", str(stage), "--endpoint", server.url,
                                  "--quiet"],
                                 env=env, capture_output=True, text=True, timeout=300)
        assert publish.returncode == 0, publish.stderr[-2000:]
        staged = select(load_benchmark(stage), ks=[10], levels=["leaf"])
        assert staged.requests.sort("request_id").equals(direct.requests.select(staged.requests.columns)
                                                         .sort("request_id"))
        assert staged.mcq["id"].to_list() == direct.mcq["id"].to_list()
        script = ("import json\nfrom knowledgesmith.eval_harness.data import load_benchmark, select\n"
                  "s = select(load_benchmark('knowledgesmith/mini'), ks=[10], levels=['leaf'])\n"
                  "print(json.dumps(sorted(s.mcq['id'].to_list())))\n")
        result = subprocess.run([sys.executable, "-c", script], env={**env, "HF_HOME": str(tmp_path / "hf-2")},
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads(result.stdout.strip().splitlines()[-1]) == sorted(direct.mcq["id"].to_list())
    finally:
        server.stop()
