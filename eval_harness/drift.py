"""Representation drift between the base and the updated model: KL over the choice distributions, linear CKA of
hidden states per layer, and the log-min-max normalisation that puts a sweep's figures on one [0, 1] scale.

* KL(p_base ‖ p_updated), averaged over a fixed probe set. p is the softmax of a row's four per-choice scores: for
  `letter` that is the renormalised A–D distribution itself; for `cloze` / `cloze_norm` it is the distribution the
  model's choice ranking implies (the choices' sequence log-probs renormalised over the four).
* Linear CKA (Kornblith et al., 2019): for centred representations X (n×d₁), Y (n×d₂) of the same n inputs,
  CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F) — HSIC with linear kernels, normalised. 1 for identical representations,
  invariant to orthogonal transforms and isotropic scaling of either side.
* log-min-max: x ↦ (log x − min log x) / (max log x − min log x) over the points of a sweep, so KL figures that span
  orders of magnitude (k = 1 vs k = 1000) share one readable axis. CKA is normalised as 1 − CKA (its drift).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Below this a KL or a CKA drift is numerically zero; the log of the normalisation needs a floor.
LOG_FLOOR = 1e-12


def choice_distribution(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of (n, 4) per-choice scores (log-probs or any log-scale score)."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise KL(p ‖ q) in nats for distributions over the last axis; 0 where p is 0 (0·log 0 = 0)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(np.maximum(q, np.finfo(np.float64).tiny))), 0.0)
    return np.maximum(terms.sum(axis=-1), 0.0)  # rounding can leave −1e-17 for identical rows


def mean_choice_kl(base_scores: np.ndarray, updated_scores: np.ndarray) -> float:
    """Mean over rows of KL(softmax(base) ‖ softmax(updated)) of (n, 4) score arrays."""
    if len(base_scores) == 0:
        return float("nan")
    return float(kl_divergence(choice_distribution(base_scores), choice_distribution(updated_scores)).mean())


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two (n, d) representations of the same n inputs (d may differ); in [0, 1]."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA compares representations of the same inputs: {x.shape[0]} vs {y.shape[0]} rows")
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    # Feature-space form (d×d Gram matrices): cheaper than n×n kernels when n > d, the same value.
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    if norm == 0.0:
        return float("nan")  # a constant representation carries no similarity structure
    return float(cross / norm)


def cka_per_layer(base_hidden: np.ndarray, updated_hidden: np.ndarray) -> list[float]:
    """Linear CKA per layer of (n, n_layers, d) hidden states, base vs updated."""
    if base_hidden.shape != updated_hidden.shape:
        raise ValueError(f"hidden states differ in shape: {base_hidden.shape} vs {updated_hidden.shape}")
    return [linear_cka(base_hidden[:, layer], updated_hidden[:, layer]) for layer in range(base_hidden.shape[1])]


def log_min_max(values: Sequence[float | None]) -> list[float | None]:
    """(log x − min log x) / (max log x − min log x) over the defined values; None stays None.

    Values are floored at LOG_FLOOR before the log (a KL of exactly 0 is a point at the bottom, not −∞). When all
    defined values are equal the normalised figure is 0 for each: no spread to show.
    """
    defined = [v for v in values if v is not None and np.isfinite(v)]
    if not defined:
        return [None for _ in values]
    logs = {i: float(np.log(max(v, LOG_FLOOR))) for i, v in enumerate(values) if v is not None and np.isfinite(v)}
    low, high = min(logs.values()), max(logs.values())
    span = high - low
    return [None if i not in logs else (0.0 if span == 0 else (logs[i] - low) / span) for i in range(len(values))]
