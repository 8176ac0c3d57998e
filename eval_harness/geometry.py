"""Weight geometry of an intervention: how each changed weight matrix was scaled and rotated.

For a matrix W (base) and W′ (updated) with singular value decompositions W = U Σ Vᵀ and W′ = U′ Σ′ V′ᵀ:

* scaling: σ′ᵢ / σᵢ for the top-r singular values (sorted, index by index) — 1 everywhere for an untouched matrix;
* rotation: the principal angles θ₁ ≤ … ≤ θ_r between span(U_r) and span(U′_r) (and between V_r and V′_r). With
  orthonormal bases, the cosines of the angles are the singular values of U_rᵀ U′_r (Björck & Golub, 1973); the
  arcsine of the singular values of (I − U_r U_rᵀ) U′_r is used for the small angles, where the cosine loses them.

Computed on CPU in float64, whatever device and dtype the model runs in: a bf16 model's changes near rounding noise
would otherwise look like rotations. Only the top r singular triplets are needed, so they come from the eigenvectors
of the smaller Gram matrix (WᵀW or WWᵀ) — four times faster than a full SVD, and exact enough for the largest
singular values, whose relative error the squaring does not hurt. A LoRA method changes every linear layer (about
200 matrices in a 135M model), so the base's triplets are computed once per run and reused for every k. LoRA methods
merge their adapters before scoring, so the merged weights are what is compared.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Decoder-layer index inside a parameter name: model.layers.12.mlp…, transformer.h.3.attn…, blocks.7…
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\.")


def principal_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Principal angles (radians, ascending) between the column spans of a (n×p) and b (n×q); min(p, q) of them.

    The columns need not be orthonormal: both are orthonormalised by QR first.
    """
    qa, _ = np.linalg.qr(np.asarray(a, dtype=np.float64))
    qb, _ = np.linalg.qr(np.asarray(b, dtype=np.float64))
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa
    cosines = np.clip(np.linalg.svd(qa.T @ qb, compute_uv=False), -1.0, 1.0)
    angles = np.arccos(cosines)  # the cosines come descending, so the angles ascending
    # arccos is ill-conditioned near 0: recompute small angles from the sines of the residual's singular values.
    residual = qb - qa @ (qa.T @ qb)
    sines = np.clip(np.linalg.svd(residual, compute_uv=False), -1.0, 1.0)[::-1]  # ascending
    small = angles < np.pi / 4
    angles[small] = np.arcsin(sines[small])
    return angles


@dataclass
class MatrixGeometry:
    """Scaling and rotation of one weight matrix, top-r."""

    name: str
    layer: int | None
    shape: tuple[int, int]
    rank: int
    relative_change: float  # ‖W′ − W‖_F / ‖W‖_F
    sigma_before: list[float]
    sigma_ratio: list[float]  # σ′ᵢ / σᵢ, i = 1 … r
    left_angles: list[float]  # degrees, ascending
    right_angles: list[float]


def layer_of(name: str) -> int | None:
    """The decoder layer a parameter belongs to, from its name; None for embeddings, norms outside layers, heads."""
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


TopSingular = tuple[np.ndarray, np.ndarray, np.ndarray]  # U_r (m×r), σ_r (descending), V_r (n×r)


def top_singular(w: np.ndarray, rank: int) -> TopSingular:
    """The top-`rank` singular triplets of w, from the eigen-decomposition of its smaller Gram matrix."""
    w = np.asarray(w, dtype=np.float64)
    r = min(rank, *w.shape)
    tall = w.shape[0] >= w.shape[1]
    gram = w.T @ w if tall else w @ w.T
    values, vectors = np.linalg.eigh(gram)  # ascending
    values, vectors = values[::-1][:r], vectors[:, ::-1][:, :r]
    sigma = np.sqrt(np.clip(values, 0.0, None))
    safe = np.where(sigma > 0, sigma, 1.0)
    if tall:
        return (w @ vectors) / safe, sigma, vectors
    return vectors, sigma, (w.T @ vectors) / safe


def matrix_geometry(name: str, before: np.ndarray, after: np.ndarray, rank: int,
                    before_svd: TopSingular | None = None) -> MatrixGeometry:
    """σ′/σ and principal angles (degrees) of the top-`rank` singular subspaces of one matrix, before vs after.

    `before_svd`: the base's top_singular(before, rank), when already known (it is the same for every k)."""
    w0 = np.asarray(before, dtype=np.float64)
    w1 = np.asarray(after, dtype=np.float64)
    u0, s0, v0 = before_svd if before_svd is not None else top_singular(w0, rank)
    u1, s1, v1 = top_singular(w1, rank)
    r = len(s0)
    ratio = np.divide(s1, s0, out=np.full(r, np.nan), where=s0 > 0)
    left = np.degrees(principal_angles(u0, u1))
    right = np.degrees(principal_angles(v0, v1))
    norm = float(np.linalg.norm(w0))
    return MatrixGeometry(name=name, layer=layer_of(name), shape=(int(w0.shape[0]), int(w0.shape[1])), rank=r,
                          relative_change=float(np.linalg.norm(w1 - w0) / norm) if norm else float("nan"),
                          sigma_before=s0.tolist(), sigma_ratio=ratio.tolist(), left_angles=left.tolist(),
                          right_angles=right.tolist())


def changed_matrices(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Names of the 2-D tensors present in both state dicts whose values differ (exact comparison)."""
    import torch

    names = []
    for name, tensor in after.items():
        old = before.get(name)
        if old is None or tensor.ndim != 2 or tuple(old.shape) != tuple(tensor.shape):
            continue
        if not torch.equal(old.to("cpu"), tensor.detach().to("cpu")):
            names.append(name)
    return names


def weight_geometry(before: Mapping[str, Any], model: Any, rank: int = 16,
                    base_cache: dict[str, TopSingular] | None = None) -> dict:
    """Geometry of every 2-D weight `model` changed relative to the `before` state dict (CPU tensors).

    `base_cache` keeps the base matrices' top singular triplets between calls (a sweep's k share one base).

    Returns {"rank", "matrices": [MatrixGeometry as dict], "by_layer": {layer: summary}}; layer "none" gathers
    changed matrices outside decoder layers (embeddings, the LM head).
    """
    after = {name: t.detach() for name, t in model.state_dict().items()}
    # Tied weights appear under several names; each matrix is analysed once.
    seen: set[int] = set()
    matrices = []
    for name in changed_matrices(before, after):
        pointer = after[name].data_ptr()
        if pointer in seen:
            continue
        seen.add(pointer)
        w0 = before[name].double().numpy()
        cached = None
        if base_cache is not None:
            cached = base_cache.get(name)
            if cached is None or len(cached[1]) != min(rank, *w0.shape):
                cached = base_cache[name] = top_singular(w0, rank)
        matrices.append(matrix_geometry(name, w0, after[name].to("cpu").double().numpy(), rank, cached))
    return {"rank": rank, "matrices": [asdict(m) for m in matrices], "by_layer": summarise_by_layer(matrices)}


def summarise_by_layer(matrices: list[MatrixGeometry]) -> dict[str, dict]:
    """Per layer: matrices changed, mean relative change, σ′/σ (mean, min, max over the top r of every matrix),
    and the largest and mean principal angle of the left and right subspaces, in degrees."""
    groups: dict[str, list[MatrixGeometry]] = {}
    for m in matrices:
        groups.setdefault("none" if m.layer is None else str(m.layer), []).append(m)
    out = {}
    for layer in sorted(groups, key=lambda key: (key == "none", int(key) if key != "none" else 0)):
        members = groups[layer]
        ratios = np.concatenate([np.asarray(m.sigma_ratio, dtype=np.float64) for m in members])
        left = np.concatenate([np.asarray(m.left_angles, dtype=np.float64) for m in members])
        right = np.concatenate([np.asarray(m.right_angles, dtype=np.float64) for m in members])
        out[layer] = {
            "matrices": [m.name for m in members],
            "relative_change": float(np.mean([m.relative_change for m in members])),
            "sigma_ratio_mean": float(np.nanmean(ratios)), "sigma_ratio_min": float(np.nanmin(ratios)),
            "sigma_ratio_max": float(np.nanmax(ratios)),
            "left_angle_max": float(left.max()), "left_angle_mean": float(left.mean()),
            "right_angle_max": float(right.max()), "right_angle_mean": float(right.mean()),
        }
    return out
