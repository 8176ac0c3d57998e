"""Real KGs written by others (pizza, schema.org, Brick) go all the way to MCQ rows that verify clean."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from knowledgesmith.builder.cli import main as ks_build_main
from knowledgesmith.builder.verify import verify_folder

RDFLIB = Path("rdflib") / "rdflib-7.6.0" / "test" / "data"
SOURCES = {
    "pizza": RDFLIB / "owl" / "pizza.owl",
    "schema_org": RDFLIB / "defined_namespaces" / "sdo.json-ld",
    "brick": Path("brick") / "x" / "brickschema" / "ontologies" / "1.5" / "Brick.ttl",
}


@pytest.fixture(scope="module", params=sorted(SOURCES))
def mcq_build(request: pytest.FixtureRequest, kg_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "out"
    code = ks_build_main(["--kg", str(kg_sources / SOURCES[request.param]), "--out", str(out), "--quiet",
                          "--max-k", "1000"])
    assert code == 0
    return out


def test_every_row_of_a_real_kg_verifies_and_the_build_says_so(mcq_build: Path) -> None:
    manifest = json.loads((mcq_build / "manifest.json").read_text())
    report = verify_folder(mcq_build)
    assert report.ok, report.failures[:5]
    assert manifest["verify"] == report.summary()
    rows = sum(pq.read_metadata(p).num_rows for p in (mcq_build / "mcq").glob("*.parquet"))
    assert rows == manifest["benchmark"]["mcq_rows"] == report.rows > 0


def test_gold_letters_are_balanced_within_one_row(mcq_build: Path) -> None:
    letters = json.loads((mcq_build / "manifest.json").read_text())["benchmark"]["letters"]
    assert max(letters.values()) - min(letters.values()) <= 1


def test_every_row_has_four_distinct_options_and_a_proof(mcq_build: Path) -> None:
    for shard in (mcq_build / "mcq").glob("*.parquet"):
        for row in pq.read_table(shard, columns=["choices", "choice_ids", "answer", "provenance"]).to_pylist():
            assert len(set(row["choice_ids"])) == len(row["choices"]) == 4
            assert 0 <= row["answer"] < 4 and row["provenance"]
