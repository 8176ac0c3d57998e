"""Propagation metrics, one function per formula of DESIGN.md (Harness → Metrics).

Every function takes a predictions frame with at least `role`, `answer`, `target`, `p0` (prediction before the
update) and `p1` (after), and returns a share in [0, 1], or None when its denominator is empty — a missing figure,
never a zero that looks measured.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

Q_PLUS, Q_MINUS = "q_plus", "q_minus"


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def accuracy(frame: pl.DataFrame, prediction: str = "p1") -> float | None:
    """Share of rows whose prediction is the KG's answer."""
    return _share(int((frame[prediction] == frame["answer"]).sum()), frame.height)


def efficacy(frame: pl.DataFrame) -> float | None:
    """Share of Q+ rows with a decided target (target ≥ 0) where p₁ = target.

    On direct probes this is edit efficacy; on the other probe types it is propagation.
    """
    rows = frame.filter((pl.col("role") == Q_PLUS) & (pl.col("target") >= 0))
    return _share(int((rows["p1"] == rows["target"]).sum()), rows.height)


def residual_retention(frame: pl.DataFrame) -> float | None:
    """RR = |{q ∈ Q+ : p₀ = answer ∧ p₁ = answer}| / |{q ∈ Q+ : p₀ = answer}|."""
    known = frame.filter((pl.col("role") == Q_PLUS) & (pl.col("p0") == pl.col("answer")))
    return _share(int((known["p1"] == known["answer"]).sum()), known.height)


def collateral_change(frame: pl.DataFrame) -> float | None:
    """CCR = |{q ∈ Q− : p₁ ≠ p₀}| / |Q−|."""
    rows = frame.filter(pl.col("role") == Q_MINUS)
    return _share(int((rows["p1"] != rows["p0"]).sum()), rows.height)


def conflict_rate(frame: pl.DataFrame, kind: str) -> float | None:
    """Share of requests where, after the update, one Q+ probe supports the new state and another the old.

    Editing (`kind="edit"`): only Q+ probes the edit decides and changes (target ≥ 0, target ≠ answer) take part;
    new = p₁ = target, old = p₁ = answer. Unlearning (`kind="unlearn"`): every Q+ probe; new = p₁ ≠ answer,
    old = p₁ = answer. A request counts when at least two of its probes take part.
    """
    rows = frame.filter(pl.col("role") == Q_PLUS)
    if kind == "edit":
        rows = rows.filter((pl.col("target") >= 0) & (pl.col("target") != pl.col("answer")))
        new_state = pl.col("p1") == pl.col("target")
    elif kind == "unlearn":
        new_state = pl.col("p1") != pl.col("answer")
    else:
        raise ValueError(f"kind must be 'edit' or 'unlearn', not {kind!r}")
    per_request = (rows.group_by("request_id")
                   .agg(pl.len().alias("probes"), new_state.any().alias("new"),
                        (pl.col("p1") == pl.col("answer")).any().alias("old"))
                   .filter(pl.col("probes") >= 2))
    return _share(int((per_request["new"] & per_request["old"]).sum()), per_request.height)


def _row_figures(frame: pl.DataFrame, kind: str) -> dict[str, float | int | None]:
    figures: dict[str, float | int | None] = {
        "rows": frame.height,
        "accuracy_before": accuracy(frame, "p0"),
        "accuracy_after": accuracy(frame, "p1"),
        "rr": residual_retention(frame),
        "ccr": collateral_change(frame),
        "conflict_rate": conflict_rate(frame, kind),
    }
    if kind == "edit":
        figures["efficacy"] = efficacy(frame)
    return figures


def _grouped(frame: pl.DataFrame, keys: list[str], figures: Callable[[pl.DataFrame], dict]) -> dict:
    """{key value: figures} (nested for several keys), in sorted order so metrics.json is stable."""
    out: dict = {}
    for group_key, group in sorted(frame.group_by(keys, maintain_order=True), key=lambda kv: tuple(map(str, kv[0]))):
        node = out
        for value in group_key[:-1]:
            node = node.setdefault(str(value), {})
        node[str(group_key[-1])] = figures(group)
    return out


def without_updated_q_minus(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The frame without its Q− rows that ask a fact another request of the same run updates
    (`asks_updated_fact`, see data.asks_an_updated_fact): their change is intended, not collateral. Returns the
    frame and how many rows left."""
    if "asks_updated_fact" not in frame.columns:
        return frame, 0
    dropped = (pl.col("role") == Q_MINUS) & pl.col("asks_updated_fact").fill_null(False)
    kept = frame.filter(~dropped)
    return kept, frame.height - kept.height


def summarise(frame: pl.DataFrame, kind: str) -> dict:
    """All figures of one (mode, k) slice: overall, per level, probe type, level × probe type, branch, distance.

    Q− rows that ask a fact updated by another request of the run are left out (counted in
    `q_minus_asking_updated_facts`)."""

    def figures(f: pl.DataFrame) -> dict:
        return _row_figures(f, kind)

    frame, left_out = without_updated_q_minus(frame)
    q_minus = frame.filter(pl.col("role") == Q_MINUS)
    return {
        "q_minus_asking_updated_facts": left_out,
        "overall": figures(frame),
        "by_level": _grouped(frame, ["level"], figures),
        "by_probe_type": _grouped(frame, ["probe_type"], figures),
        "by_level_and_probe_type": _grouped(frame, ["level", "probe_type"], figures),
        "by_branch": _grouped(frame, ["branch_id"], figures),
        "ccr_by_distance": _grouped(q_minus, ["distance"], lambda f: {"rows": f.height, "ccr": collateral_change(f)}),
    }


def compute_metrics(predictions: pl.DataFrame, kind: str) -> dict:
    """metrics.json's body: {mode: {str(k): summarise(...)}} from a predictions frame with `mode` and `k` columns."""
    out: dict = {}
    for (mode,), by_mode in sorted(predictions.group_by(["mode"]), key=lambda kv: kv[0]):
        out[mode] = {str(k): summarise(by_k, kind)
                     for (k,), by_k in sorted(by_mode.group_by(["k"]), key=lambda kv: kv[0])}
    return out


# -- failure modes of open-ended answers -------------------------------------------------------------------------------

def knowledge_drift(frame: pl.DataFrame) -> float | None:
    """Share of Q− rows (unrelated facts) whose open-ended answer text changed at all, normalised as in matching —
    finer than CCR, which only sees a change of the matched choice."""
    from .openended import normalise_answer

    rows = frame.filter(pl.col("role") == Q_MINUS)
    changed = sum(normalise_answer(a or "") != normalise_answer(b or "")
                  for a, b in zip(rows["p0_text"].to_list(), rows["p1_text"].to_list(), strict=True))
    return _share(changed, rows.height)


def hallucination_rate(frame: pl.DataFrame, column: str) -> float | None:
    """Share of rows whose open-ended answer names no entity of the KG (and is no abstention)."""
    return _share(int(frame[column].fill_null(False).sum()), frame.height)


def _failure_figures(frame: pl.DataFrame, kind: str) -> dict[str, float | int | None]:
    before = frame.with_columns(p1=pl.col("p0"))  # the base model's own conflicts, for the emergence figure
    conflict_after, conflict_before = conflict_rate(frame, kind), conflict_rate(before, kind)
    h0, h1 = hallucination_rate(frame, "p0_hallucinated"), hallucination_rate(frame, "p1_hallucinated")
    return {
        "rows": frame.height,
        "under_forgetting_rr": residual_retention(frame),
        "over_spreading_ccr": collateral_change(frame),
        "conflict_rate": conflict_after,
        "conflict_emergence": None if conflict_after is None or conflict_before is None
        else conflict_after - conflict_before,
        "knowledge_drift": knowledge_drift(frame),
        "hallucination_before": h0,
        "hallucination_after": h1,
        "hallucination_increase": None if h0 is None or h1 is None else h1 - h0,
    }


def compute_failure_modes(open_predictions: pl.DataFrame, kind: str) -> dict:
    """metrics.json's `failure_modes`: {str(k): {overall, by_level}} on the open-ended answers (mode `open`).

    under-forgetting = RR, over-spreading = CCR, conflict emergence = conflict rate after − before, knowledge drift =
    share of unrelated (Q−) answers that changed, hallucination increase = share of answers naming no KG entity,
    after − before.
    """
    out: dict = {}
    for (k,), by_k in sorted(open_predictions.group_by(["k"]), key=lambda kv: kv[0]):
        by_k, _ = without_updated_q_minus(by_k)
        out[str(k)] = {"overall": _failure_figures(by_k, kind),
                       "by_level": _grouped(by_k, ["level"], lambda f: _failure_figures(f, kind))}
    return out
