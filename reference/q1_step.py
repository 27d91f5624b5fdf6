"""Q1 reference: one-hidden-layer networks of step neurons, sigma(u) = 1 for u > 0 else 0.

The box of part (a) is *open*: f(x) = h on 0 < x < delta and 0 everywhere else, so a correct
network gives exactly 0 at x = 0 and at x = delta. The seed's ``h*(s(x) - s(x - delta))`` is
right everywhere except x = delta (it gives h there); ``h*s(x) + h*s(delta - x) - h`` is exact
because ``s(delta - x)`` switches off *at* delta, not after it. The grader gives most credit for
the interior, so ``boundary_report`` measures the interior, the exterior and each edge apart and
words what it finds. Evaluating a given network (``StepNetwork``, ``as_network``,
``boundary_report``) is the grader's machinery, in ``graders.numerics.step_networks``; this
module holds the answers, and re-exports those names for its callers.

Part (b) needs boxes that tile [-B, B] with no gaps and no overlaps: n open boxes would leave
every interior edge at 0, a spike of size |f(edge)| that a grid missing the edges never sees.
``box_approximation`` therefore builds half-open boxes [e_k, e_{k+1}) (the last one closed at B)
from steps of ``e - x``, and ``sup_error`` always evaluates at every breakpoint of the network and
at its floating-point neighbours, so a spike at an edge cannot hide between grid points.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from graders.numerics.step_networks import (
    PARAM_NAMES,
    BoundaryReport,
    FloatArray,
    Params,
    StepNetwork,
    as_network,
    boundary_report,
    check_finite,
    check_positive,
    evaluate_network,
    step,
)

__all__ = [
    "PARAM_NAMES",
    "BoundaryReport",
    "FloatArray",
    "Params",
    "StepNetwork",
    "as_network",
    "boundary_report",
    "box_approximation",
    "box_network",
    "error_grid",
    "evaluate_network",
    "step",
    "sup_error",
]


def box_network(h: float, delta: float) -> StepNetwork:
    """f(x) = h*s(x) + h*s(delta - x) - h: exactly h on (0, delta), exactly 0 elsewhere.

    At x = 0 the first step is off (h - h = 0); at x = delta the second is off (h - h = 0);
    every sum is of +-h terms, so the values are exact in floating point, not just close.
    """
    check_finite("h", h)
    check_positive("delta", delta)
    return StepNetwork(
        w_hidden=np.array([1.0, -1.0]),
        b_hidden=np.array([0.0, float(delta)]),
        w_out=np.array([float(h), float(h)]),
        b_out=-float(h),
    )


def box_approximation(f: Callable[[FloatArray], ArrayLike], B: float, n: int) -> StepNetwork:
    """n boxes (2n hidden neurons) of height f(midpoint) tiling [-B, B] exactly once.

    With e_0 = -B < ... < e_n = B, box k covers [e_k, e_{k+1}) through
    ``s(e_{k+1} - x) - s(e_k - x)`` (1 exactly when e_k <= x < e_{k+1}), and the last box covers
    [e_{n-1}, B] through ``1 - s(e_{n-1} - x) - s(x - B)`` (its 1 is folded into b_out). Every
    x in [-B, B] lies in exactly one box, the network is 0 outside [-B, B], and the error is at
    most max|f'| * B / n: O(1/n).
    """
    check_positive("B", B)
    if int(n) != n or n < 1:
        raise ValueError(f"need a positive whole number of boxes, got n = {n!r}")
    n = int(n)
    edges = np.linspace(-float(B), float(B), n + 1)
    heights = _call(f, (edges[:-1] + edges[1:]) / 2)
    if not np.all(np.isfinite(heights)):
        raise ValueError("f is not finite at every box midpoint; it must be bounded on [-B, B]")
    w_hidden = np.full(2 * n, -1.0)
    b_hidden = np.empty(2 * n)
    b_hidden[0::2], b_hidden[1::2] = edges[1:], edges[:-1]
    w_out = np.empty(2 * n)
    w_out[0::2], w_out[1::2] = heights, -heights
    w_hidden[-2], b_hidden[-2] = 1.0, -float(B)  # last box: s(x - B) switches off past B
    w_out[-2] = -heights[-1]
    return StepNetwork(w_hidden=w_hidden, b_hidden=b_hidden, w_out=w_out, b_out=heights[-1])


def sup_error(
    f: Callable[[FloatArray], ArrayLike],
    net: StepNetwork,
    B: float,
    *,
    grid: int | ArrayLike = 4097,
) -> float:
    """max |f(x) - net(x)| over [-B, B], on a grid that always contains the network's edges.

    ``grid`` is a number of evenly spaced points or the points themselves; to either, the
    breakpoints of ``net`` inside [-B, B] and their floating-point neighbours on both sides are
    added, because a step network's error peaks at (or just beside) its jumps. NaN anywhere
    in either function gives NaN, which no threshold passes.
    """
    check_positive("B", B)
    x = error_grid(net, B, grid=grid)
    return float(np.max(np.abs(_call(f, x) - net(x))))


def error_grid(net: StepNetwork, B: float, *, grid: int | ArrayLike = 4097) -> FloatArray:
    """The points ``sup_error`` uses: ``grid`` plus every edge of ``net`` and its neighbours."""
    base = (
        np.linspace(-float(B), float(B), grid)
        if isinstance(grid, int | np.integer)
        else np.asarray(grid, dtype=np.float64).ravel()
    )
    edges = net.breakpoints()
    near = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    points = np.concatenate([base, near, [-float(B), float(B)]])
    return np.unique(points[(points >= -B) & (points <= B)])


def _call(f: Callable[[FloatArray], ArrayLike], x: FloatArray) -> FloatArray:
    """f at x as floats of x's shape; a constant f (returning a scalar) is broadcast."""
    return np.broadcast_to(np.asarray(f(x), dtype=np.float64), x.shape)
