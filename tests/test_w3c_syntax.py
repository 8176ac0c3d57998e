"""The W3C syntax suites (Turtle, N-Triples, N-Quads, TriG, RDF/XML) from the rdflib 7.6.0 sdist.

Every NegativeSyntax file is refused by `ks-build` with exit code 2 and a one-line syntax error, and every
PositiveSyntax or Eval file is accepted by the builder's parse stage, in the syntax its extension names. Positive
files are checked at the parse stage rather than by a full build because many of them hold no usable facts (only
prefixes, only blank nodes, or nothing), and "no usable facts" is a legitimate refusal of a build, not of a syntax.
NegativeEval tests are skipped: see `_EXPECTATIONS` in w3c_suites.py.

One case per test file, named `suite/test-name` (the suites are fetched at collection, see conftest.py);
`test_every_suite_accepts_its_valid_files_and_rejects_its_invalid_ones` runs them all in one go and prints the counts
(`pytest -s`, or `python bench/w3c_counts.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import fetch_kg_sources
from w3c_suites import (
    SUITES,
    Expect,
    Suite,
    W3cCase,
    format_tally,
    parse_with_builder,
    read_all,
    suites_root,
    tally,
)

from knowledgesmith.builder.errors import KsUserError
from knowledgesmith.builder.formats import describe, detect_format, read_head


def _cases_in_cache() -> list[W3cCase] | None:
    """The cases, fetched at collection through the same cache as the kg_sources fixture (None when offline)."""
    cache, _ = fetch_kg_sources()
    if cache is None:
        return None
    return read_all(suites_root(cache))


_CASES = _cases_in_cache()
_NOT_FETCHED = pytest.param(None, id="suites-not-fetched-yet")


def _params(expect: Expect) -> list[object]:
    if _CASES is None:
        return [_NOT_FETCHED]
    return [pytest.param(case, id=case.id) for case in _CASES if case.expect is expect]


def _require(case: W3cCase | None) -> W3cCase:
    if case is None:
        pytest.skip(f"the W3C suites are unavailable: {fetch_kg_sources()[1]}")
    return case


@pytest.mark.parametrize("case", _params(Expect.REJECT))
def test_invalid_file_is_rejected_with_exit_code_2_one_line_and_nothing_written(
        case: W3cCase | None, kg_sources: Path, run_ks_build: Callable[..., Any], tmp_path: Path) -> None:
    case = _require(case)
    out = tmp_path / "out"

    result = run_ks_build("--kg", case.action, "--out", out)

    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert result.err.endswith("\n") and result.err.count("\n") == 1, result.err
    # A refusal of the syntax itself, in the suite's syntax: not "no usable facts", not a wrong format guess.
    assert result.err.startswith(f"ks-build: error: {case.action}:"), result.err
    assert f": invalid {describe(case.suite.format)}: " in result.err, result.err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", _params(Expect.ACCEPT))
def test_valid_file_is_accepted_by_the_parse_stage_in_the_syntax_its_extension_names(
        case: W3cCase | None, kg_sources: Path) -> None:
    case = _require(case)
    try:
        fmt = parse_with_builder(case.action)
    except KsUserError as exc:
        pytest.fail(f"valid {describe(case.suite.format)} refused: {exc.format()}")
    assert fmt is case.suite.format


@pytest.mark.parametrize("suite", SUITES, ids=[suite.name for suite in SUITES])
def test_an_empty_file_is_refused_as_empty_not_as_bad_syntax(suite: Suite, tmp_path: Path,
                                                             run_ks_build: Callable[..., Any]) -> None:
    # The suites' empty files (e.g. turtle-syntax-file-01.ttl) are valid documents; the builder refuses any file
    # without statements, and says so plainly instead of blaming the syntax.
    empty = tmp_path / f"empty{suite.extension}"
    empty.write_bytes(b"")

    with pytest.raises(KsUserError, match="file is empty"):
        detect_format(empty, read_head(empty))
    result = run_ks_build("--kg", empty, "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err == f"ks-build: error: {empty}: file is empty\n"


def test_every_suite_accepts_its_valid_files_and_rejects_its_invalid_ones(kg_sources: Path, tmp_path: Path) -> None:
    tallies = tally(suites_root(kg_sources), tmp_path)
    print("\n" + format_tally(tallies))

    assert [t.suite.name for t in tallies if t.positive_total == 0 or t.negative_total == 0] == []
    assert {t.suite.name: t.wrong for t in tallies} == {t.suite.name: [] for t in tallies}
    for t in tallies:
        assert (t.positive_accepted, t.negative_rejected) == (t.positive_total, t.negative_total)
