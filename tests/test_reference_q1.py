"""The Q1 reference: exact open boxes, O(1/n) approximation, edges covered exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from reference.q1_step import (
    StepNetwork,
    as_network,
    boundary_report,
    box_approximation,
    box_network,
    error_grid,
    evaluate_network,
    step,
    sup_error,
)

BOX_CASES = [(1.0, 1.0), (2.5, 0.3), (-1.7, 4.0), (-0.001, 1e-6), (1e6, 123.0), (0.0, 2.0)]


def _box_grid(delta: float) -> np.ndarray:
    """An even grid around the box plus both edges and their floating-point neighbours."""
    edges = np.array([0.0, delta])
    return np.concatenate(
        [
            np.linspace(-delta, 2 * delta, 3001),
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
        ]
    )


def _seed_box(h: float, delta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The seed's h*(s(x) - s(x - delta)): right everywhere except at x = delta."""
    return np.array([1.0, 1.0]), np.array([0.0, -delta]), np.array([h, -h]), 0.0


def test_step_is_strict() -> None:
    u = np.array([-1.0, -0.0, 0.0, 5e-324, 1.0, np.nan])
    np.testing.assert_array_equal(step(u), [0.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    assert step(u).dtype == np.float64


@pytest.mark.parametrize(("h", "delta"), BOX_CASES)
def test_box_is_exact_everywhere_including_both_edges(h: float, delta: float) -> None:
    x = _box_grid(delta)
    expected = np.where((x > 0) & (x < delta), h, 0.0)
    np.testing.assert_array_equal(box_network(h, delta)(x), expected)


@pytest.mark.parametrize(("h", "delta"), BOX_CASES)
def test_boundary_report_passes_the_reference(h: float, delta: float) -> None:
    report = boundary_report(box_network(h, delta), h, delta)
    assert report.exact, report.problems()
    assert report.problems() == ()


@pytest.mark.parametrize(("h", "delta"), [c for c in BOX_CASES if c[0] != 0.0])
def test_seed_construction_is_caught_at_delta_only(h: float, delta: float) -> None:
    seed = _seed_box(h, delta)
    assert evaluate_network(seed, delta) == h  # the hole: the box is still on at x = delta
    report = boundary_report(seed, h, delta)
    assert report.interior_ok and report.exterior_ok and report.zero_ok
    assert not report.delta_ok and not report.exact
    (problem,) = report.problems()
    assert "f(delta)" in problem and "open" in problem


def test_boundary_report_separates_each_kind_of_mistake() -> None:
    h, delta = 2.0, 0.5
    closed_at_zero = (np.array([-1.0, -1.0]), np.array([0.0, delta]), np.array([-h, h]), 0.0)
    report = boundary_report(closed_at_zero, h, delta)  # h on [0, delta): wrong at 0 only
    assert report.interior_ok and report.delta_ok and not report.zero_ok
    upside_down = (np.array([1.0, -1.0]), np.array([0.0, delta]), np.array([-h, -h]), h)
    report = boundary_report(upside_down, h, delta)
    assert not report.interior_ok and report.zero_ok and report.delta_ok
    assert any("inside (0, delta)" in p for p in report.problems())
    leaky = (np.array([1.0, -1.0]), np.array([0.0, delta]), np.array([h, h]), -h + 0.1)
    report = boundary_report(leaky, h, delta)
    assert not report.exterior_ok and not report.interior_ok


def test_boundary_report_treats_nan_as_wrong() -> None:
    net = StepNetwork(
        w_hidden=np.array([1.0, -1.0]),
        b_hidden=np.array([0.0, 1.0]),
        w_out=np.array([1e308, 1e308]),
        b_out=-1e308,
    )
    with np.errstate(over="ignore"):
        report = boundary_report(net, 1e308, 1.0)  # inside, 1e308 + 1e308 overflows to inf
    assert not report.interior_ok and report.exterior_ok


def test_validation_names_the_array_and_the_expected_shape() -> None:
    params = (np.ones(3), np.ones(3), np.ones(3), 0.0)
    with pytest.raises(
        ValueError,
        match=r"w_hidden has shape \(3,\), expected \(2,\) for a "
        r"2-neuron box network",
    ):
        evaluate_network(params, 0.5, n_hidden=2, label="box network")
    with pytest.raises(ValueError, match=r"b_hidden has shape \(2, 2\), expected \(2,\)"):
        as_network((np.ones(2), np.ones((2, 2)), np.ones(2), 0.0))
    with pytest.raises(ValueError, match="b_out has shape"):
        as_network((np.ones(2), np.ones(2), np.ones(2), np.ones(2)))
    with pytest.raises(ValueError, match="expected 4 arrays"):
        as_network((np.ones(2), np.ones(2), np.ones(2)))
    with pytest.raises(ValueError, match="missing b_out"):
        as_network({"w_hidden": [1, 1], "b_hidden": [0, 0], "w_out": [1, 1]})
    with pytest.raises(ValueError, match="w_out contains NaN"):
        as_network(([1, 1], [0, 0], [1, np.nan], 0.0))
    with pytest.raises(ValueError, match="b_hidden is not an array of numbers"):
        as_network(([1, 1], ["a", object()], [1, 1], 0.0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected \\(w_hidden"):
        as_network("1 2 3 4")


def test_torch_layouts_and_mappings_are_accepted() -> None:
    h, delta = 3.0, 2.0
    ref = box_network(h, delta)
    x = _box_grid(delta)
    column = (ref.w_hidden.reshape(2, 1), ref.b_hidden, ref.w_out.reshape(1, 2), [ref.b_out])
    as_dict = {
        "w_hidden": list(ref.w_hidden),
        "b_hidden": ref.b_hidden,
        "w_out": ref.w_out,
        "b_out": np.array(ref.b_out),
    }
    cases: list[Any] = [column, as_dict, ref]
    for params in cases:
        np.testing.assert_array_equal(evaluate_network(params, x, n_hidden=2), ref(x))


def test_network_is_frozen_and_vectorised_over_any_shape() -> None:
    net = box_network(1.0, 1.0)
    with pytest.raises(ValueError):
        net.w_out[0] = 5.0  # read-only array
    x = np.linspace(-1, 2, 24).reshape(2, 3, 4)
    assert net(x).shape == (2, 3, 4)
    assert net(0.5).shape == ()


# --- part (b): approximation --------------------------------------------------------------


def _bump(x: np.ndarray) -> np.ndarray:
    return np.exp(-(x**2) / (2 * 0.5**2))


SMOOTH: list[tuple[str, Callable[[np.ndarray], np.ndarray], float, float]] = [
    # name, f, B, max |f'| on [-B, B] (derived by hand, not measured)
    ("sin", np.sin, 3.0, 1.0),
    ("cubic", lambda x: x**3 - 2 * x, 2.0, 10.0),
    ("gaussian bump", _bump, 2.5, np.exp(-0.5) / 0.5),
]
NS = np.array([8, 16, 32, 64, 128, 256, 512])


@pytest.mark.parametrize(("name", "f", "B", "lipschitz"), SMOOTH, ids=[s[0] for s in SMOOTH])
def test_sup_error_falls_like_one_over_n(
    name: str, f: Callable[[np.ndarray], np.ndarray], B: float, lipschitz: float
) -> None:
    errors = np.array([sup_error(f, box_approximation(f, B, int(n)), B) for n in NS])
    slope = np.polyfit(np.log(NS), np.log(errors), 1)[0]
    assert -1.2 <= slope <= -0.8, f"{name}: slope {slope:.3f}"
    # midpoint heights: no point is further than B/n from its box's midpoint
    assert np.all(errors * NS <= lipschitz * B * (1 + 1e-9) + 1e-9 * NS), errors * NS


@pytest.mark.parametrize(("B", "n"), [(1.0, 1), (1.0, 7), (3.0, 64), (0.1, 33)])
def test_every_point_of_the_interval_is_covered_exactly_once(B: float, n: int) -> None:
    net = box_approximation(lambda x: 1.0, B, n)
    assert net.n_hidden == 2 * n
    x = error_grid(net, B, grid=1001)
    edges = np.linspace(-B, B, n + 1)
    assert np.isin(edges, x).all()
    np.testing.assert_allclose(net(x), 1.0, rtol=0, atol=1e-12)
    outside = np.concatenate([np.nextafter([-B, B], [-np.inf, np.inf]), [-2 * B, 2 * B]])
    np.testing.assert_allclose(net(outside), 0.0, rtol=0, atol=1e-12)


def test_interior_edges_take_one_neighbouring_height() -> None:
    B, n = 2.0, 9
    net = box_approximation(np.cos, B, n)
    edges = np.linspace(-B, B, n + 1)
    heights = np.cos((edges[:-1] + edges[1:]) / 2)
    values = net(edges)
    np.testing.assert_allclose(values[:-1], heights, rtol=0, atol=1e-12)  # [e_k, e_{k+1})
    np.testing.assert_allclose(values[-1], heights[-1], rtol=0, atol=1e-12)  # closed at B


def test_sup_error_sees_spikes_at_edges_between_grid_points() -> None:
    """Open boxes leave every interior edge at 0; the coarse grid never lands on one."""
    B, n = 1.0, 7
    edges = np.linspace(-B, B, n + 1)
    open_boxes = StepNetwork(  # sum of h*s(x - e_k) + h*s(e_{k+1} - x) - h, h = 1
        w_hidden=np.tile([1.0, -1.0], n),
        b_hidden=np.column_stack([-edges[:-1], edges[1:]]).ravel(),
        w_out=np.ones(2 * n),
        b_out=-float(n),
    )
    coarse = np.linspace(-B, B, 101)[1:-1]
    assert not np.isin(edges, coarse).any()
    assert np.max(np.abs(1.0 - open_boxes(coarse))) < 1e-12  # a grid alone would pass it
    x = error_grid(open_boxes, B, grid=coarse)
    spikes = x[np.abs(1.0 - open_boxes(x)) > 0.5]
    np.testing.assert_array_equal(spikes, edges)  # every edge, and nothing else
    assert sup_error(lambda x: 1.0, open_boxes, B, grid=coarse) == 1.0
    assert sup_error(lambda x: 1.0, box_approximation(lambda x: 1.0, B, n), B) < 1e-12


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_box_approximation_rejects_bad_n(bad: float) -> None:
    with pytest.raises(ValueError, match="whole number of boxes"):
        box_approximation(np.sin, 1.0, bad)  # type: ignore[arg-type]


def test_box_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="delta"):
        box_network(1.0, 0.0)
    with pytest.raises(ValueError, match="h must be"):
        box_network(np.inf, 1.0)
    with pytest.raises(ValueError, match="bounded"):
        box_approximation(lambda x: np.where(x == 0, np.inf, 1.0), 1.0, 1)  # midpoint is 0
