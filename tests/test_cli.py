"""`ks-build` as a user meets it: defaults, shipped domains, the summary, help and version."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from knowledgesmith.builder import __version__
from knowledgesmith.builder.build import shipped_kg_paths
from knowledgesmith.builder.cli import main as ks_build_main

SAMPLE = "https://knowledgesmith.org/kg/sample/"


def test_without_kg_or_domain_the_sample_kg_is_built_and_summarised(run_ks_build: Callable[..., Any],
                                                                    tmp_path: Path) -> None:
    result = run_ks_build("--out", tmp_path / "out")

    assert result.code == 0, result.err
    assert "building the sample KG" in result.err
    assert f"{tmp_path / 'out'}: 107 nodes (root 5, intermediate 21, leaf 81), 198 facts over 9 relations" in result.err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["domain"] == "sample"
    assert manifest["inputs"][0]["file"] == "sample.ttl"


def test_a_shipped_domain_builds_without_kg_and_names_the_rows(run_ks_build: Callable[..., Any],
                                                              tmp_path: Path) -> None:
    result = run_ks_build("--domain", "sample", "--out", tmp_path / "out", "--quiet")

    assert result.code == 0, result.err
    assert result.err == ""
    nodes = pq.read_table(tmp_path / "out" / "nodes.parquet").to_pylist()
    assert {row["domain"] for row in nodes} == {"sample"}
    paris = next(row for row in nodes if row["node_id"] == SAMPLE + "Paris")
    assert (paris["label"], paris["level"], paris["depth"], paris["branch_id"]) == (
        "Paris", "leaf", 3, SAMPLE + "City")


def test_an_unknown_shipped_domain_is_a_one_line_error(run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    result = run_ks_build("--domain", "law", "--out", tmp_path / "out")

    assert result.code == 2
    assert result.err.startswith("ks-build: error: no shipped KG for domain 'law'; shipped: ")
    assert result.err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_shipped_domain_files_are_the_main_file_then_its_per_source_files() -> None:
    paths = shipped_kg_paths("sample")
    assert [p.name for p in paths] == ["sample.ttl"]


def test_the_sample_kg_keeps_annotations_and_properties_out_of_the_facts(run_ks_build: Callable[..., Any],
                                                                        tmp_path: Path) -> None:
    run_ks_build("--out", tmp_path / "out", "--quiet")
    triples = pq.read_table(tmp_path / "out" / "triples.parquet").to_pylist()
    relations = {row["relation_id"] for row in triples}
    assert "https://knowledgesmith.org/kg/relation/comment" not in relations  # an owl:AnnotationProperty
    capital = [row for row in triples if row["relation_id"].endswith("/capital")]
    assert len(capital) == 14
    assert {row["inverse_relation_id"] for row in capital} == {"https://knowledgesmith.org/kg/relation/capitalOf"}
    gold = next(row for row in triples if row["subject_id"] == SAMPLE + "Gold" and row["relation_id"].endswith(
        "atomicNumber"))
    assert (gold["object_id"], gold["object_is_literal"], gold["object_datatype"]) == (
        "79", True, "http://www.w3.org/2001/XMLSchema#integer")


def test_version_and_help_print_and_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ks_build_main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"ks-build {__version__}\n"
    with pytest.raises(SystemExit) as exit_info:
        ks_build_main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--kg FILE" in help_text and "--domain NAME" in help_text and "bio, econ, hist, phys" in help_text
