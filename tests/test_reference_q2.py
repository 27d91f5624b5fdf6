"""The Q2 reference: closed forms, and Monte-Carlo layers that agree with them (or not)."""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest

from reference.q2_init import (
    InputKind,
    MCEstimate,
    activation_variance,
    agrees,
    backward_variance,
    false_failure_probability,
    forward_variance,
    gradient_variance,
    mc_activation_variance,
    mc_backward_variance,
    mc_deep_forward,
    mc_relu_second_moment,
    relu_factor,
    relu_forward_variance,
    relu_second_moment,
    xavier_variance,
)

SEEDS = [0, 1, 2]
LAYERS = [(1, 1.0, 1.0), (16, 0.3, 2.0), (256, 1 / 256, 1.0), (784, 0.01, 0.25)]
DEPTH, WIDTH = 20, 128


def _seed_relu_variance(n_in: float) -> float:
    """The seed's part (c): var(y) = E[y^2] - E[y]^2 set to v^2 gives 2 pi / ((pi - 1) n_in)."""
    return 2 * math.pi / ((math.pi - 1) * n_in)


# --- closed forms ---------------------------------------------------------------------------


def test_closed_forms_by_hand() -> None:
    assert activation_variance(256, 0.01, 2.0) == pytest.approx(5.12)
    assert forward_variance(4) == 0.25
    assert relu_factor() == 2.0
    assert relu_forward_variance(8) == 0.25
    assert relu_second_moment(10, 0.5, 3.0) == pytest.approx(7.5)
    assert backward_variance(5) == 0.2
    assert gradient_variance(10, 0.1, 2.0) == pytest.approx(2.0)
    assert gradient_variance(10, 0.1, 2.0, g_mean=1.0) == pytest.approx(3.0)
    assert xavier_variance(100, 300) == 0.005


@pytest.mark.parametrize("seed", SEEDS)
def test_each_rule_keeps_its_signal_at_random_points(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for n_in, n_out, v2 in zip(
        rng.integers(1, 5000, 20), rng.integers(1, 5000, 20), rng.uniform(0.01, 10, 20), strict=True
    ):
        assert activation_variance(n_in, forward_variance(n_in), v2) == pytest.approx(v2)
        assert relu_second_moment(n_in, relu_forward_variance(n_in), v2) == pytest.approx(v2)
        assert gradient_variance(n_out, backward_variance(n_out), v2) == pytest.approx(v2)
        xavier = xavier_variance(n_in, n_out)
        low, high = sorted([forward_variance(n_in), backward_variance(n_out)])
        assert low <= xavier <= high
        assert 1 / xavier == pytest.approx((1 / low + 1 / high) / 2)  # harmonic mean
    assert xavier_variance(64, 64) == forward_variance(64) == backward_variance(64)


@pytest.mark.parametrize(
    "call",
    [
        lambda: forward_variance(0),
        lambda: backward_variance(-3),
        lambda: activation_variance(10, -0.1, 1.0),
        lambda: activation_variance(10, 0.1, math.nan),
        lambda: xavier_variance(10, math.inf),
    ],
)
def test_closed_forms_reject_impossible_arguments(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


# --- the tolerance --------------------------------------------------------------------------


def test_z5_false_failure_probability_matches_the_normal_tail() -> None:
    x = np.linspace(5.0, 15.0, 200_001)
    density = np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
    two_tails = 2 * float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(x)))
    assert false_failure_probability(5.0) == pytest.approx(two_tails, rel=1e-6)
    assert 5e-7 < false_failure_probability() < 7e-7


def test_agrees_is_z_stderrs_plus_a_relative_floor() -> None:
    est = MCEstimate(value=10.5, stderr=0.1, n=100)
    assert agrees(est, 10.0, z=5.0, rel_floor=0.0)
    assert not agrees(est, 10.0, z=4.9, rel_floor=0.0)
    assert agrees(est, 10.0, z=4.0, rel_floor=0.01)  # 0.4 + 0.1 covers 0.5
    exact = MCEstimate(value=0.0, stderr=0.0, n=10)
    assert agrees(exact, 0.0) and not agrees(exact, 1e-9)
    with pytest.raises(ValueError):
        agrees(est, 10.0, z=0.0)


def test_estimate_from_replicates_and_z_score() -> None:
    est = MCEstimate.from_replicates([1.0, 2.0, 3.0, 4.0])
    assert est.value == 2.5 and est.n == 4
    assert est.stderr == pytest.approx(math.sqrt(5 / 3) / 2)
    assert est.z_score(2.5) == 0.0
    flat = MCEstimate.from_replicates([2.0, 2.0])
    assert flat.z_score(1.0) == math.inf and flat.z_score(3.0) == -math.inf
    with pytest.raises(ValueError, match="at least 2"):
        MCEstimate.from_replicates([1.0])


def test_standard_errors_are_honest_over_many_seeds() -> None:
    """z-scores of a correct formula must look standard normal; an underestimated stderr
    (say, treating the correlated entries of one layer as independent) would inflate them."""
    z = np.array(
        [
            mc_activation_variance(
                16, 0.1, 1.0, rng=np.random.default_rng(seed), samples=60, n_out=8, batch=8
            ).z_score(activation_variance(16, 0.1, 1.0))
            for seed in range(300)
        ]
    )
    assert 0.8 < z.std() < 1.25
    assert abs(z.mean()) < 0.3
    assert np.mean(np.abs(z) > 3) < 0.02


# --- one layer ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("n_in", "sigma2", "v2"), LAYERS)
@pytest.mark.parametrize("inputs", get_args(InputKind))
def test_activation_variance_matches_formula(
    n_in: int, sigma2: float, v2: float, seed: int, inputs: InputKind
) -> None:
    est = mc_activation_variance(n_in, sigma2, v2, rng=np.random.default_rng(seed), inputs=inputs)
    assert agrees(est, activation_variance(n_in, sigma2, v2)), est
    assert not agrees(est, 1.5 * activation_variance(n_in, sigma2, v2)), est


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("n_in", "sigma2", "v2"), LAYERS)
def test_relu_second_moment_is_half_and_the_seeds_variance_is_not(
    n_in: int, sigma2: float, v2: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    est = mc_relu_second_moment(n_in, sigma2, v2, rng=rng, inputs="uniform")
    assert agrees(est, relu_second_moment(n_in, sigma2, v2)), est
    seed_value = activation_variance(n_in, sigma2, v2) * (math.pi - 1) / (2 * math.pi)
    assert not agrees(est, seed_value), est
    assert abs(est.z_score(seed_value)) > 10  # twice the tolerance: not a near miss


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("n_in", "n_out", "sigma2", "g2", "g_mean"),
    [(10, 300, 0.01, 2.0, 0.0), (300, 10, 0.1, 0.5, 0.0), (64, 32, 1 / 32, 1.0, 0.7)],
)
def test_backward_variance_matches_formula(
    n_in: int, n_out: int, sigma2: float, g2: float, g_mean: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    est = mc_backward_variance(n_in, n_out, sigma2, g2, rng=rng, g_mean=g_mean)
    assert agrees(est, gradient_variance(n_out, sigma2, g2, g_mean)), est
    assert not agrees(est, gradient_variance(n_in, sigma2, g2, g_mean)), est  # fan-in: wrong


def test_simulators_are_reproducible_and_reject_bad_arguments() -> None:
    a = mc_activation_variance(8, 1.0, 1.0, rng=np.random.default_rng(7), samples=10)
    b = mc_activation_variance(8, 1.0, 1.0, rng=np.random.default_rng(7), samples=10)
    assert a == b
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="samples"):
        mc_activation_variance(8, 1.0, 1.0, rng=rng, samples=1)
    with pytest.raises(ValueError, match="inputs must be"):
        mc_activation_variance(8, 1.0, 1.0, rng=rng, inputs="cauchy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_in"):
        mc_backward_variance(0, 8, 1.0, 1.0, rng=rng)
    with pytest.raises(ValueError, match="variance rule gave"):
        mc_deep_forward([4, 4], lambda i, o: -1.0, rng=rng)
    with pytest.raises(ValueError, match="activation"):
        mc_deep_forward([4, 4], lambda i, o: 1.0, rng=rng, activation="tanh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least an input"):
        mc_deep_forward([4], lambda i, o: 1.0, rng=rng)


# --- deep stacks ----------------------------------------------------------------------------


def _profile(rule: object, activation: str, seed: int = 0, v2: float = 1.0) -> np.ndarray:
    moments = mc_deep_forward(
        [WIDTH] * (DEPTH + 1),
        rule,  # type: ignore[arg-type]
        rng=np.random.default_rng(seed),
        activation=activation,  # type: ignore[arg-type]
        v2=v2,
    )
    assert len(moments) == DEPTH
    return np.array([m.value for m in moments]) / v2


@pytest.mark.parametrize("seed", SEEDS)
def test_right_rules_keep_a_deep_stack_stable(seed: int) -> None:
    for rule, activation in [
        (lambda i, o: forward_variance(i), "linear"),
        (xavier_variance, "linear"),  # equal widths: same as 1/n_in
        (lambda i, o: relu_forward_variance(i), "relu"),
    ]:
        ratios = _profile(rule, activation, seed, v2=2.5)
        assert np.all((ratios > 0.5) & (ratios < 2)), (activation, ratios)


@pytest.mark.parametrize(
    ("rule", "activation", "vanishes"),
    [
        (lambda i, o: 1 / (2 * i), "linear", True),
        (lambda i, o: 2 / i, "linear", False),
        (lambda i, o: 1 / i, "relu", True),  # forgot the ReLU factor
        (lambda i, o: _seed_relu_variance(i), "relu", False),  # the seed's (c)
    ],
    ids=["linear-half", "linear-double", "relu-no-factor", "relu-seed"],
)
def test_wrong_rules_drift_by_more_than_ten(rule: object, activation: str, vanishes: bool) -> None:
    ratios = _profile(rule, activation)
    final = ratios[-1]
    assert final < 0.1 if vanishes else final > 10, ratios
    assert np.all(np.diff(np.log(ratios)) < 0 if vanishes else np.diff(np.log(ratios)) > 0)


def test_forward_rule_uses_fan_in_not_fan_out() -> None:
    widths = [16, 32, 64, 128, 256]  # each layer doubles: 1/n_out halves the signal each time
    rng = np.random.default_rng(3)
    fan_in = mc_deep_forward(widths, lambda i, o: 1 / i, rng=rng, samples=100)
    fan_out = mc_deep_forward(widths, lambda i, o: 1 / o, rng=rng, samples=100)
    assert all(agrees(m, 1.0) for m in fan_in), fan_in
    assert all(agrees(m, 0.5 ** (k + 1)) for k, m in enumerate(fan_out)), fan_out


def test_the_layer_draw_without_weights_has_the_distribution_of_one_with_them() -> None:
    """``h @ W`` sampled through a square root of ``h h^T``: its columns have the covariance
    ``std^2 h h^T`` of a real Gaussian ``W``, and non-finite rows take the direct draw."""
    from reference.q2_init import _times_gaussian

    rng = np.random.default_rng(7)
    h = rng.normal(size=(1, 3, 20))
    h[0, 2] = 0.5 * h[0, 0] + 0.1 * h[0, 2]  # correlated rows, as a layer's outputs are
    std = 0.3
    out = _times_gaussian(np.repeat(h, 4000, axis=0), std, 5, rng)
    columns = out.transpose(0, 2, 1).reshape(-1, 3)  # every (replicate, output) pair: one column
    expected = std**2 * (h[0] @ h[0].T)
    assert np.allclose(np.cov(columns, rowvar=False, bias=True), expected, rtol=0.05, atol=0.02)
    assert np.allclose(columns.mean(axis=0), 0.0, atol=0.05)
    wide = np.full((2, 3, 4), np.inf)  # batch 3 < n_in 4, but not finite: the direct draw
    with np.errstate(invalid="ignore"):  # inf * a normal of either sign: inf, -inf or nan
        assert not np.any(np.isfinite(_times_gaussian(wide, 1.0, 2, rng)))
