"""The linear algebra of MEMIT and AlphaEdit, as pure functions on tensors (tested in float64 on random matrices).

Shapes: keys K are d_in × n (one column per edit), residuals R are d_out × n, covariances are d_in × d_in, and an
update Δ is d_out × d_in, the layout of nn.Linear.weight (GPT-2's Conv1D stores the transpose; the caller adapts).
"""

from __future__ import annotations

from typing import Any


def nullspace_projector(second_moment: Any, threshold: float, relative: bool = False) -> tuple[Any, int]:
    """P = Û Ûᵀ over the eigenvectors of C₀ whose eigenvalue is below the threshold; returns (P, kept directions).

    `relative`: the threshold is a fraction of the largest eigenvalue, so it means the same on any model's scale
    (an absolute cut such as the published 2e-2 can keep every direction or none on another model).
    """
    import torch

    matrix = second_moment.to(torch.float64)
    matrix = (matrix + matrix.T) / 2  # symmetric up to rounding; eigh assumes it
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    cut = threshold * float(eigenvalues.max()) if relative else threshold
    null = eigenvectors[:, eigenvalues < cut]
    return null @ null.T, int(null.shape[1])


def memit_update(residuals: Any, keys: Any, second_moment: Any, moment_weight: float) -> Any:
    """Δ = R Kᵀ (λ C₀ + K Kᵀ)⁻¹, by a solve rather than an inverse."""
    import torch

    system = moment_weight * second_moment + keys @ keys.T
    return torch.linalg.solve(system, keys @ residuals.T).T


def alphaedit_update(residuals: Any, keys: Any, projector: Any, previous_keys_moment: Any, l2: float) -> Any:
    """Δ = R Kᵀ P (K_p K_pᵀ P + K Kᵀ P + α I)⁻¹, computed as Xᵀ with (P (K Kᵀ + K_p K_pᵀ) + α I) X = P K Rᵀ.

    X lies in P's range (rearrange the system: X = P(K Rᵀ − (K Kᵀ + K_p K_pᵀ) X) / α), so Δ K₀ = Xᵀ K₀ ≈ 0 for the
    preserved keys K₀ that P projects away: the update leaves their outputs as they were.
    """
    import torch

    size = projector.shape[0]
    system = projector @ (keys @ keys.T + previous_keys_moment) + l2 * torch.eye(size, dtype=keys.dtype,
                                                                                  device=keys.device)
    return torch.linalg.solve(system, projector @ keys @ residuals.T).T
