"""Each metric of DESIGN.md on hand-made predictions whose figures are worked out by hand in the comments."""

from __future__ import annotations

import polars as pl
import pytest

from knowledgesmith.eval_harness.metrics import (
    accuracy,
    collateral_change,
    compute_metrics,
    conflict_rate,
    efficacy,
    residual_retention,
    summarise,
)

# request r1 (edit Italy's currency): four Q+ probes, two Q− probes; request r2: two Q+, two Q−.
ROWS = [
    # id,  request, probe_type,  role,     level,  dist, answer, target, p0, p1
    ("a", "r1", "direct", "q_plus", "leaf", 0, 0, 1, 0, 1),       # known, flipped to target
    ("b", "r1", "reverse", "q_plus", "leaf", 0, 2, -1, 2, 2),     # known, kept; target undecided
    ("c", "r1", "multi_hop", "q_plus", "leaf", 1, 3, 0, 3, 3),    # known, kept the old answer
    ("d", "r1", "conflict", "q_plus", "leaf", 0, 1, 2, 0, 2),     # not known before, now target
    ("e", "r1", "contextual", "q_minus", "leaf", 1, 0, 0, 0, 0),  # unchanged
    ("f", "r1", "contextual", "q_minus", "leaf", 3, 1, 1, 1, 2),  # changed
    ("g", "r2", "direct", "q_plus", "root", 0, 2, 3, 2, 2),       # known, not edited
    ("h", "r2", "comparison", "q_plus", "root", 0, 1, 1, 0, 0),   # target == answer; unknown before
    ("i", "r2", "contextual", "q_minus", "root", 2, 3, 3, 3, 3),  # unchanged
    ("j", "r2", "contextual", "q_minus", "root", 3, 0, 0, 1, 0),  # changed
]
COLUMNS = ["id", "request_id", "probe_type", "role", "level", "distance", "answer", "target", "p0", "p1"]


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema=COLUMNS, orient="row").with_columns(branch_id=pl.lit("B"))


def test_accuracy(frame: pl.DataFrame) -> None:
    # before: a b c e f g i = 7/10; after: b c e g i j = 6/10
    assert accuracy(frame, "p0") == pytest.approx(0.7)
    assert accuracy(frame, "p1") == pytest.approx(0.6)


def test_efficacy(frame: pl.DataFrame) -> None:
    # Q+ with target ≥ 0: a c d g h; p1 == target: a (1), d (2) → 2/5
    assert efficacy(frame) == pytest.approx(2 / 5)
    assert efficacy(frame.filter(pl.col("probe_type") == "direct")) == pytest.approx(1 / 2)


def test_residual_retention(frame: pl.DataFrame) -> None:
    # Q+ known before (p0 == answer): a b c g; still answer after: b c g → 3/4
    assert residual_retention(frame) == pytest.approx(3 / 4)


def test_collateral_change(frame: pl.DataFrame) -> None:
    # Q−: e f i j; changed: f j → 2/4; by distance 3: f j both changed → 1.0
    assert collateral_change(frame) == pytest.approx(0.5)
    assert collateral_change(frame.filter(pl.col("distance") == 3)) == 1.0
    assert collateral_change(frame.filter(pl.col("distance") == 1)) == 0.0


def test_conflict_rate_edit(frame: pl.DataFrame) -> None:
    # edit: Q+ probes with target ≥ 0 and target ≠ answer: r1 → a (new), c (old), d (new) → conflict;
    # r2 → g only (h has target == answer) → fewer than two probes, not counted. 1/1.
    assert conflict_rate(frame, "edit") == 1.0
    consistent = frame.with_columns(p1=pl.when(pl.col("id") == "c").then(0).otherwise(pl.col("p1")))
    assert conflict_rate(consistent, "edit") == 0.0


def test_conflict_rate_unlearn(frame: pl.DataFrame) -> None:
    # unlearn: every Q+ probe; new = p1 ≠ answer, old = p1 == answer.
    # r1: a (new), b (old) → conflict. r2: g (old), h (new) → conflict. 2/2.
    assert conflict_rate(frame, "unlearn") == 1.0
    forgotten = frame.with_columns(p1=pl.when(pl.col("role") == "q_plus").then((pl.col("answer") + 1) % 4)
                                   .otherwise(pl.col("p1")))
    assert conflict_rate(forgotten, "unlearn") == 0.0


def test_empty_denominators_are_none(frame: pl.DataFrame) -> None:
    q_minus_only = frame.filter(pl.col("role") == "q_minus")
    assert efficacy(q_minus_only) is None
    assert residual_retention(q_minus_only) is None
    assert conflict_rate(q_minus_only, "edit") is None
    with pytest.raises(ValueError):
        conflict_rate(frame, "other")


def test_summarise_groups(frame: pl.DataFrame) -> None:
    summary = summarise(frame, "edit")
    assert summary["overall"]["rows"] == 10
    assert summary["by_level"]["root"]["rr"] == 1.0  # g known and kept
    assert summary["by_level"]["leaf"]["rr"] == pytest.approx(2 / 3)  # a lost, b c kept
    assert summary["by_probe_type"]["direct"]["efficacy"] == pytest.approx(1 / 2)
    assert summary["by_level_and_probe_type"]["leaf"]["conflict"]["efficacy"] == 1.0
    assert summary["ccr_by_distance"] == {"1": {"rows": 1, "ccr": 0.0}, "2": {"rows": 1, "ccr": 0.0},
                                          "3": {"rows": 2, "ccr": 1.0}}
    assert "efficacy" not in summarise(frame, "unlearn")["overall"]


def test_compute_metrics_keys_by_mode_and_k(frame: pl.DataFrame) -> None:
    both = pl.concat([frame.with_columns(mode=pl.lit(m), k=pl.lit(k)) for m in ("cloze", "letter") for k in (1, 10)])
    metrics = compute_metrics(both, "edit")
    assert sorted(metrics) == ["cloze", "letter"]
    assert sorted(metrics["cloze"]) == ["1", "10"]
    assert metrics["letter"]["10"]["overall"]["ccr"] == 0.5


def test_q_minus_rows_asking_a_fact_another_request_updates_leave_the_q_minus_figures(frame: pl.DataFrame) -> None:
    # row f (changed, distance 3) asks a fact that request r2 updates: its change is intended, not collateral
    marked = frame.with_columns(asks_updated_fact=pl.col("id") == "f")
    summary = summarise(marked, "edit")
    assert summary["q_minus_asking_updated_facts"] == 1
    assert summary["overall"]["rows"] == 9
    assert summary["overall"]["ccr"] == pytest.approx(1 / 3)  # e, i unchanged; j changed
    assert summary["ccr_by_distance"]["3"] == {"rows": 1, "ccr": 1.0}
    assert summarise(frame, "edit")["q_minus_asking_updated_facts"] == 0


def test_asks_an_updated_fact_matches_subject_and_relation_of_q_minus_rows_only() -> None:
    from knowledgesmith.eval_harness.data import asks_an_updated_fact

    requests = pl.DataFrame({"subject_id": ["italy", "france"], "relation_id": ["capital", "currency"]})
    mcq = pl.DataFrame({
        "role": ["q_minus", "q_minus", "q_minus", "q_plus", "q_minus"],
        "query_subject_id": ["italy", "italy", "spain", "italy", None],
        "query_relation_id": ["capital", "currency", "capital", "capital", None],
    })
    assert asks_an_updated_fact(mcq, requests).to_list() == [True, False, False, False, False]
    assert asks_an_updated_fact(mcq.drop("query_subject_id"), requests).to_list() == [False] * 5
