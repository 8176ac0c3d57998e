"""Drift and weight geometry (eval_harness/drift.py, geometry.py): the properties that make the figures readable —
CKA of a representation with itself is 1 and blind to rotations and scale, KL of identical distributions is 0,
principal angles of a rotated basis are the rotation, an untouched matrix has σ′/σ = 1 — on small exact inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from knowledgesmith.eval_harness.drift import (
    choice_distribution,
    cka_per_layer,
    kl_divergence,
    linear_cka,
    log_min_max,
    mean_choice_kl,
)
from knowledgesmith.eval_harness.geometry import layer_of, matrix_geometry, principal_angles, summarise_by_layer


def random_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    return q * np.sign(np.diag(r))


def test_cka_of_a_representation_with_itself_is_one() -> None:
    x = np.random.default_rng(0).normal(size=(50, 8))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 10))
    y = x @ rng.normal(size=(10, 10)) + 0.5 * rng.normal(size=(60, 10))
    reference = linear_cka(x, y)
    q = random_orthogonal(10, rng)
    assert linear_cka(x @ q, y) == pytest.approx(reference, abs=1e-12)
    assert linear_cka(x, 7.5 * y) == pytest.approx(reference, abs=1e-12)
    assert linear_cka(3.0 * (x @ q), 0.01 * y) == pytest.approx(reference, abs=1e-12)
    assert linear_cka(x @ q, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_of_unrelated_representations_is_small_and_not_invariant_to_anisotropic_scaling() -> None:
    rng = np.random.default_rng(2)
    x, noise = rng.normal(size=(500, 4)), rng.normal(size=(500, 4))
    assert linear_cka(x, noise) < 0.05
    stretched = x * np.array([10.0, 1.0, 1.0, 1.0])
    assert linear_cka(x, stretched) < 0.9


def test_cka_per_layer_compares_layer_by_layer() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(40, 3, 6))
    updated = base.copy()
    updated[:, 2] = rng.normal(size=(40, 6))  # only the last layer changed
    values = cka_per_layer(base, updated)
    assert values[0] == pytest.approx(1.0) and values[1] == pytest.approx(1.0) and values[2] < 0.5


def test_kl_of_identical_distributions_is_zero_and_positive_otherwise() -> None:
    scores = np.log(np.array([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]]))
    assert mean_choice_kl(scores, scores) == 0.0
    # softmax is shift-invariant: log-probs and unnormalised scores give the same distribution
    assert mean_choice_kl(scores, scores + 3.0) == pytest.approx(0.0, abs=1e-15)
    p = np.array([[0.5, 0.5, 0.0, 0.0]])
    q = np.array([[0.25, 0.25, 0.25, 0.25]])
    assert kl_divergence(p, q)[0] == pytest.approx(math.log(2))  # 0 · log 0 terms drop out
    assert choice_distribution(np.log(q)) == pytest.approx(q)


def test_log_min_max_maps_a_sweep_onto_zero_one_on_a_log_scale() -> None:
    assert log_min_max([1e-4, 1e-2, 1.0]) == pytest.approx([0.0, 0.5, 1.0])
    assert log_min_max([None, 0.3, 0.3]) == [None, 0.0, 0.0]
    assert log_min_max([0.0, 1e-12 * 1e6]) == pytest.approx([0.0, 1.0])  # 0 sits at the floor
    assert log_min_max([]) == []


def test_principal_angles_of_a_rotated_basis_equal_the_rotation() -> None:
    # span(e1, e2) rotated by θ in the (e2, e3) plane: angles 0 (e1 is kept) and θ.
    for degrees in (0.001, 5.0, 30.0, 89.0):
        theta = math.radians(degrees)
        a = np.eye(4)[:, :2]
        rotation = np.eye(4)
        rotation[1:3, 1:3] = [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
        angles = principal_angles(a, rotation @ a)
        assert angles == pytest.approx([0.0, theta], abs=1e-12)


def test_principal_angles_do_not_depend_on_the_basis_chosen_for_a_span() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=(9, 3))
    mixed = a @ rng.normal(size=(3, 3))  # same span, another basis
    assert principal_angles(a, mixed) == pytest.approx(np.zeros(3), abs=1e-7)


def test_an_untouched_matrix_has_singular_value_ratios_of_one_and_no_rotation() -> None:
    w = np.random.default_rng(5).normal(size=(12, 7))
    geometry = matrix_geometry("model.layers.3.mlp.down_proj.weight", w, w.copy(), rank=4)
    assert geometry.sigma_ratio == pytest.approx([1.0] * 4)
    assert geometry.left_angles == pytest.approx([0.0] * 4, abs=1e-6)
    assert geometry.right_angles == pytest.approx([0.0] * 4, abs=1e-6)
    assert geometry.relative_change == 0.0 and geometry.layer == 3


def test_a_scaled_matrix_shows_its_scale_and_a_rotated_one_its_angle() -> None:
    rng = np.random.default_rng(6)
    u, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    v, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    w = u[:, :5] @ np.diag([5.0, 4.0, 3.0, 2.0, 1.0]) @ v.T
    assert matrix_geometry("w", w, 2.0 * w, rank=3).sigma_ratio == pytest.approx([2.0, 2.0, 2.0])
    # Rotate the output space by 20° in the plane of the first and sixth left singular vectors (the sixth is outside
    # W's column space): the top-1 left subspace turns by exactly 20°, the singular values stay.
    theta = math.radians(20)
    rotation = np.eye(6) + (math.cos(theta) - 1) * (np.outer(u[:, 0], u[:, 0]) + np.outer(u[:, 5], u[:, 5])) \
        + math.sin(theta) * (np.outer(u[:, 5], u[:, 0]) - np.outer(u[:, 0], u[:, 5]))
    turned = matrix_geometry("w", w, rotation @ w, rank=1)
    assert turned.left_angles == pytest.approx([20.0], abs=1e-8)
    assert turned.right_angles == pytest.approx([0.0], abs=1e-6)
    assert turned.sigma_ratio == pytest.approx([1.0])


def test_weight_geometry_finds_exactly_the_changed_matrices_of_a_model() -> None:
    torch = pytest.importorskip("torch")
    from knowledgesmith.eval_harness.geometry import weight_geometry

    torch.manual_seed(0)
    model = torch.nn.ModuleDict({"layers": torch.nn.ModuleList([torch.nn.Linear(6, 4) for _ in range(3)])})
    before = {name: t.detach().clone() for name, t in model.state_dict().items()}
    with torch.no_grad():
        model["layers"][1].weight.mul_(3.0)
        model["layers"][2].bias.add_(1.0)  # 1-D: not a matrix, not analysed
    result = weight_geometry(before, model, rank=2)
    assert [m["name"] for m in result["matrices"]] == ["layers.1.weight"]
    assert result["matrices"][0]["sigma_ratio"] == pytest.approx([3.0, 3.0])
    assert list(result["by_layer"]) == ["1"]


def test_layers_are_read_from_parameter_names_of_several_architectures() -> None:
    assert layer_of("model.layers.12.mlp.down_proj.weight") == 12
    assert layer_of("transformer.h.3.mlp.c_proj.weight") == 3
    assert layer_of("model.embed_tokens.weight") is None
    summary = summarise_by_layer([matrix_geometry("model.embed_tokens.weight", np.eye(3), 2 * np.eye(3), 2)])
    assert list(summary) == ["none"] and summary["none"]["sigma_ratio_mean"] == pytest.approx(2.0)
