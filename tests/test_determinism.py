"""Determinism and atomic output (issue 3): the same KG, templates and seed give byte-identical files, manifest
included; another seed gives other MCQ rows; a build killed with SIGKILL leaves no output (or the previous one
untouched), and a rerun gives the same bytes as a build that was never interrupted.
Killed builds leave their staging folder (`.DIR.tmp-*`) beside DIR; nothing here asks for it to be cleaned up.

The kill tests run `ks-build --domain hist --max-k 100` as a subprocess (the shipped history KG, a few seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from minikg import MINI_KG, build_mini, file_digests, mcq_rows

from knowledgesmith.builder.requests import SeededStream

MINI_FILES = {"manifest.json", "nodes.parquet", "triples.parquet", "relations.parquet", "requests.parquet",
              "mcq/intermediate-00000-of-00001.parquet", "mcq/leaf-00000-of-00001.parquet"}
HIST_BUILD = [sys.executable, "-m", "knowledgesmith.builder.cli", "--domain", "hist", "--max-k", "100", "--quiet"]


def test_two_builds_of_the_same_kg_and_seed_are_byte_identical(tmp_path: Path) -> None:
    build_mini(tmp_path / "a")
    build_mini(tmp_path / "b")
    first, second = file_digests(tmp_path / "a"), file_digests(tmp_path / "b")

    assert set(first) == MINI_FILES
    assert first == second


def test_the_manifest_records_the_sha256_and_row_count_of_every_file_it_lists(tmp_path: Path) -> None:
    build_mini(tmp_path / "out")
    digests = file_digests(tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())

    assert {name: entry["sha256"] for name, entry in manifest["files"].items()} == {
        name: digest for name, digest in digests.items() if name != "manifest.json"}
    assert manifest["files"]["mcq/leaf-00000-of-00001.parquet"]["rows"] == sum(
        row["level"] == "leaf" for row in mcq_rows(tmp_path / "out"))
    assert manifest["inputs"][0]["sha256"] == hashlib.sha256(MINI_KG.read_bytes()).hexdigest()
    assert manifest["seed"] == 0


def test_another_seed_changes_the_mcq_rows_but_not_the_kg_tables(tmp_path: Path) -> None:
    build_mini(tmp_path / "seed0")
    build_mini(tmp_path / "seed1", "--seed", "1")
    seed0, seed1 = file_digests(tmp_path / "seed0"), file_digests(tmp_path / "seed1")

    for name in ("nodes.parquet", "triples.parquet", "relations.parquet"):
        assert seed0[name] == seed1[name], name
    for name in ("requests.parquet", "mcq/leaf-00000-of-00001.parquet", "manifest.json"):
        assert seed0[name] != seed1[name], name
    rows0 = {row["id"]: (row["choice_ids"], row["answer"]) for row in mcq_rows(tmp_path / "seed0")}
    rows1 = {row["id"]: (row["choice_ids"], row["answer"]) for row in mcq_rows(tmp_path / "seed1")}
    assert rows0 != rows1
    assert json.loads((tmp_path / "seed1" / "manifest.json").read_text())["seed"] == 1


def test_a_build_in_a_fresh_interpreter_with_another_hash_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    # nothing may depend on the iteration order of sets or dicts of strings, which PYTHONHASHSEED changes
    subprocess.run([sys.executable, "-m", "knowledgesmith.builder.cli", "--kg", str(MINI_KG), "--out",
                    str(tmp_path / "subprocess"), "--max-k", "100", "--seed", "0", "--quiet"], check=True,
                   env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"})
    build_mini(tmp_path / "in-process")

    assert file_digests(tmp_path / "subprocess") == file_digests(tmp_path / "in-process")


@pytest.fixture(scope="module")
def hist_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], float]:
    """An uninterrupted build of the shipped history KG: its file digests and how long it took."""
    out = tmp_path_factory.mktemp("hist") / "reference"
    started = time.monotonic()
    subprocess.run([*HIST_BUILD, "--out", str(out)], check=True)
    return file_digests(out), time.monotonic() - started


def _kill(process: subprocess.Popen[bytes]) -> None:
    assert process.poll() is None, "the build finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def test_a_build_killed_mid_way_leaves_no_output_and_a_rerun_gives_the_same_bytes(
        hist_reference: tuple[dict[str, str], float], tmp_path: Path) -> None:
    reference, seconds = hist_reference
    out = tmp_path / "out"
    process = subprocess.Popen([*HIST_BUILD, "--out", str(out)])
    time.sleep(min(1.0, seconds / 2))
    _kill(process)

    assert not out.exists()
    subprocess.run([*HIST_BUILD, "--out", str(out)], check=True)
    assert file_digests(out) == reference


def test_a_build_killed_while_drafting_rows_leaves_nothing_once_rerun(
        hist_reference: tuple[dict[str, str], float], tmp_path: Path) -> None:
    # the rows spill to files inside the build's staging folder (not the system's temporary folder), which the next
    # build removes with the rest of the killed build's staging
    reference, _seconds = hist_reference
    out, scratch = tmp_path / "out", tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    process = subprocess.Popen([*HIST_BUILD, "--out", str(out)], env=env)
    while process.poll() is None and not any(tmp_path.glob(".out.tmp-*/.drafts/*.arrow")):
        time.sleep(0.002)
    _kill(process)

    assert not out.exists()
    subprocess.run([*HIST_BUILD, "--out", str(out)], check=True, env=env)
    assert file_digests(out) == reference
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "tmp"]
    assert not any(scratch.iterdir()) and not any(out.glob(".*"))


def test_a_build_killed_while_writing_leaves_the_previous_build_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_mini(out)  # the previous build in --out
    previous = file_digests(out)
    process = subprocess.Popen([*HIST_BUILD, "--out", str(out)])
    while process.poll() is None and not any(tmp_path.glob(".out.tmp-*")):  # the staging folder: writing has begun
        time.sleep(0.002)
    _kill(process)

    assert file_digests(out) == previous


def test_a_seeded_stream_is_a_function_of_seed_and_ids_and_draws_positions_without_repeats() -> None:
    first = SeededStream(0, "distractors", "req-x/direct/0")
    again = SeededStream(0, "distractors", "req-x/direct/0")
    assert [first.below(1000) for _ in range(20)] == [again.below(1000) for _ in range(20)]
    first, other_seed = SeededStream(0, "req-x"), SeededStream(1, "req-x")
    assert [first.below(1000) for _ in range(20)] != [other_seed.below(1000) for _ in range(20)]
    assert sorted(SeededStream(0, "small").positions(5, 64)) == [0, 1, 2, 3, 4]  # a small pool: every position once
    drawn = list(SeededStream(0, "large").positions(10**6, 64))
    assert len(drawn) == len(set(drawn)) == 64 and all(0 <= p < 10**6 for p in drawn)
    items = list(range(10))
    SeededStream(0, "shuffle").shuffle(items)
    assert sorted(items) == list(range(10)) and items != list(range(10))
