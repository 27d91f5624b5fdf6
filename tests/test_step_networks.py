"""The grader's step-network evaluation: by switching points, exactly as the dense matrix."""

from __future__ import annotations

import numpy as np
import pytest

from graders.numerics.step_networks import StepNetwork


def _awkward_network(rng: np.random.Generator, n: int) -> StepNetwork:
    """Weights and biases where ``-b/w`` rounds: thirds, tenths, tiny and huge scales, zeros,
    repeated switching points, both signs; output weights far apart, so that one neuron wrongly
    on or off moves the output by far more than rounding does."""
    w = rng.choice([1.0, -1.0, 1 / 3, -0.1, 3.0, 1e-300, -1e300, 0.0, 7e-3], size=n)
    w = w * rng.uniform(0.5, 2.0, size=n) ** rng.integers(0, 2, size=n)
    b = rng.choice([0.0, 1.0, -1.0, 0.1, -1 / 3, 1e-300, -1e300, 2.5], size=n)
    b = b * rng.uniform(0.5, 2.0, size=n) ** rng.integers(0, 2, size=n)
    w_out = rng.choice([-1.0, 1.0], size=n) * rng.uniform(1.0, 2.0, size=n)
    return StepNetwork(w_hidden=w, b_hidden=b, w_out=w_out, b_out=0.25)


def _probe_points(net: StepNetwork, rng: np.random.Generator) -> np.ndarray:
    """Each switching point, two floats on either side of it, random points, zero, the
    extremes and non-finite values."""
    live = net.w_hidden != 0
    with np.errstate(all="ignore"):
        edges = -net.b_hidden[live] / net.w_hidden[live]
    edges = edges[np.isfinite(edges)]
    near = [edges]
    for direction in (np.inf, -np.inf):
        step = edges
        for _ in range(2):
            step = np.nextafter(step, direction)
            near.append(step)
    extremes = [0.0, -0.0, 5e-324, -5e-324, 1.7e308, -1.7e308, np.inf, -np.inf, np.nan]
    return np.concatenate([*near, rng.normal(0, 3, 200), extremes])


@pytest.mark.parametrize("seed", range(20))
def test_switching_points_give_the_dense_matrix_s_output_at_every_awkward_point(
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    net = _awkward_network(rng, 40)
    x = _probe_points(net, rng)
    with np.errstate(all="ignore"):
        dense = net._dense(x)
    fast = net(x)
    assert net._switches is not None
    np.testing.assert_allclose(fast, dense, rtol=0, atol=1e-9)


def test_the_box_network_is_exactly_open_at_its_edges() -> None:
    """h s(x) + h s(delta - x) - h: 0 at x = 0 and at x = delta, h just inside either edge."""
    delta, h = 0.3, 2.0
    net = StepNetwork(
        w_hidden=np.array([1.0, -1.0]),
        b_hidden=np.array([0.0, delta]),
        w_out=np.array([h, h]),
        b_out=-h,
    )
    inside = [np.nextafter(0.0, 1.0), np.nextafter(delta, 0.0)]
    outside = [np.nextafter(0.0, -1.0), 0.0, delta, np.nextafter(delta, 1.0)]
    assert list(net(np.array(inside))) == [h, h]
    assert list(net(np.array(outside))) == [0.0, 0.0, 0.0, 0.0]
    assert net(np.array([[0.1, 0.2], [0.4, -1.0]])).shape == (2, 2)
