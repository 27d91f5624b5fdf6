"""Step networks as the grader evaluates them: 1-H-1 networks of strict step neurons.

A student's Q1 network arrives as four plain arrays (w_hidden, b_hidden, w_out, b_out) in
whatever layout the notebook used; ``as_network`` checks and normalizes them, ``StepNetwork``
evaluates them with the assignment's strict step (sigma(0) = 0) whatever the student's own
``step`` does, and ``boundary_report`` measures a would-be box at its edges, beside them,
inside and outside. Measuring a given network is no answer to Q1: building the box and the
n-box approximation is, and that stays in ``reference/q1_step.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
Params: TypeAlias = "StepNetwork | Mapping[str, ArrayLike] | Sequence[ArrayLike]"

PARAM_NAMES: Final = ("w_hidden", "b_hidden", "w_out", "b_out")
_EVAL_CHUNK: Final = 1 << 22
"""Hidden units x points evaluated at once: bounds the temporary matrix to about 32 MB."""
_EDGE_OFFSET: Final = 1e-9
""""Just inside/outside" an edge, as a fraction of delta: near enough to see the edge, far
enough that a network whose edge is off by a few rounding errors is not called wrong."""
OFFSET_ULPS: Final = 64
"""A coarser float type's "just inside/outside": 64 of its rounding errors of delta (float32:
8e-6 * delta), where 1e-9 * delta is below what its weights can place an edge at."""
EDGE_ULPS: Final = 8
"""How near an edge, in rounding errors of the box's width, a neuron's switch counts as at the
edge (``StepNetwork.at_edge``): in float64 7e6 times nearer than ``_EDGE_OFFSET``."""


def step(u: ArrayLike) -> FloatArray:
    """The assignment's activation; strictly ``u > 0``, so step(0) = 0 (NaN also gives 0)."""
    return (np.asarray(u, dtype=np.float64) > 0).astype(np.float64)


@dataclass(frozen=True, kw_only=True, eq=False)
class StepNetwork:
    """A 1-H-1 network: ``x -> w_out @ step(w_hidden * x + b_hidden) + b_out``.

    ``eq=False`` because elementwise array comparison has no single truth value; compare the
    networks' outputs instead. The arrays are copied and made read-only so a frozen network
    really cannot change.
    """

    w_hidden: FloatArray
    """Input-to-hidden weights, shape (H,)."""
    b_hidden: FloatArray
    """Hidden biases, shape (H,)."""
    w_out: FloatArray
    """Hidden-to-output weights, shape (H,); the output neuron is linear."""
    b_out: float
    """Output bias."""

    def __post_init__(self) -> None:
        n = _vector_size("w_hidden", self.w_hidden)
        for name in PARAM_NAMES[:3]:
            array = _as_vector(name, getattr(self, name), n, "network")
            array.flags.writeable = False
            object.__setattr__(self, name, array)
        object.__setattr__(self, "b_out", _as_scalar("b_out", self.b_out))

    @property
    def n_hidden(self) -> int:
        return int(self.w_hidden.shape[0])

    def __call__(self, x: ArrayLike) -> FloatArray:
        """Evaluate elementwise; the result has the shape of ``x``.

        By the neurons' switching points (``_switches``: a binary search per point, not a
        hidden-by-points matrix), which give exactly the on/off pattern of
        ``step(w_hidden * x + b_hidden)`` as float64 computes it; only non-finite ``x`` take
        the dense matrix.
        """
        xs = np.asarray(x, dtype=np.float64)
        flat = xs.ravel()
        out = self._switches.at(flat)
        odd = ~np.isfinite(flat)
        if odd.any():
            with np.errstate(invalid="ignore"):  # 0 * inf: that neuron is off, as step(NaN) is
                out[odd] = self._dense(flat[odd])
        return out.reshape(xs.shape)

    def _dense(self, flat: FloatArray) -> FloatArray:
        """The network as written: every hidden neuron at every point, in bounded chunks."""
        out = np.empty_like(flat)
        chunk = max(1, _EVAL_CHUNK // max(1, self.n_hidden))
        for start in range(0, flat.size, chunk):
            part = flat[start : start + chunk]
            hidden = step(np.multiply.outer(part, self.w_hidden) + self.b_hidden)
            out[start : start + chunk] = hidden @ self.w_out + self.b_out
        return out

    @cached_property
    def _switches(self) -> _Switches:
        return _Switches.of(self)

    def at_edge(
        self, x: float, scale: float, rounding: float = float(np.finfo(np.float64).eps)
    ) -> float:
        """The output at an edge ``x`` of a box of width ``scale``, a neuron that switches
        within rounding of ``x`` (``EDGE_ULPS`` times ``rounding`` of ``scale``: the weights'
        own float type's) taken to switch at ``x`` exactly, where ``step(0) = 0`` makes it off.
        ``w = [1/delta, -1/delta], b = [0, 1]`` is the assignment's box in real arithmetic; in
        float64 ``-(1/delta) * delta + 1`` may round to 1e-16 and keep that neuron on at
        ``delta``, which is no mistake of the student's."""
        live = self.w_hidden != 0
        switch = np.full_like(self.w_hidden, np.inf)
        switch[live] = -self.b_hidden[live] / self.w_hidden[live]
        near = np.abs(switch - x) <= EDGE_ULPS * rounding * abs(scale)
        hidden = np.where(near, 0.0, step(self.w_hidden * x + self.b_hidden))
        return float(hidden @ self.w_out + self.b_out)

    def breakpoints(self) -> FloatArray:
        """Where some hidden neuron switches (x = -b/w); the only places the output can jump."""
        live = self.w_hidden != 0
        return np.unique(-self.b_hidden[live] / self.w_hidden[live])


_NEAR: Final = 16
"""Floats either side of ``-b/w`` a switch is first looked for in (rounding puts it within 2)."""
_SIGN: Final = np.int64(-(2**63))
_MAGNITUDE: Final = np.int64(2**63 - 1)


def _order_key(x: FloatArray) -> NDArray[np.int64]:
    """Floats as integers in the same order, consecutive floats consecutive (both zeros 0)."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    return np.where(bits < 0, -(bits & _MAGNITUDE), bits)


def _from_key(key: NDArray[np.int64]) -> FloatArray:
    bits = np.where(key < 0, (-key) | _SIGN, key)
    return np.ascontiguousarray(bits, dtype=np.int64).view(np.float64)


@dataclass(frozen=True, kw_only=True, eq=False)
class _Switches:
    """A step network as the points where its neurons switch, sorted, and running sums.

    For finite weights, ``fl(fl(w * x) + b)`` is monotone in ``x`` (IEEE rounding is), so the
    set where a neuron with ``w > 0`` is on is exactly ``x > r`` for one float ``r`` (``w < 0``:
    ``x < f``), found by bisection over the floats where float64's own ``w * x + b`` changes
    sign (``_last_off``). A neuron with ``w = 0`` is on everywhere or nowhere. The output at
    ``x`` is then a sum of prefix sums, found by binary search: ``O(log H)`` a point instead of
    ``O(H)``.
    """

    rising: FloatArray
    """Sorted: the neuron is on where ``x > rising[k]`` (its ``w > 0``)."""
    rising_sums: FloatArray
    """``rising_sums[i]``: the output weights of the first ``i`` rising neurons, summed."""
    falling: FloatArray
    """Sorted: the neuron is on where ``x < falling[k]`` (its ``w < 0``)."""
    falling_sums: FloatArray
    """``falling_sums[i]``: the output weights of the falling neurons from ``i`` on, summed."""
    always: float
    """The output weights of the ``w = 0`` neurons that are always on, summed."""
    b_out: float

    @classmethod
    def of(cls, net: StepNetwork) -> _Switches:
        w, b, out = net.w_hidden, net.b_hidden, net.w_out
        rising = _last_off(w[w > 0], b[w > 0], up=True)
        falling = _last_off(w[w < 0], b[w < 0], up=False)
        up, down = np.argsort(rising, kind="stable"), np.argsort(falling, kind="stable")
        rising_out, falling_out = out[w > 0][up], out[w < 0][down]
        always = float(out[(w == 0) & (b > 0)].sum())
        return cls(
            rising=rising[up],
            rising_sums=np.concatenate([[0.0], np.cumsum(rising_out)]),
            falling=falling[down],
            falling_sums=np.concatenate([np.cumsum(falling_out[::-1])[::-1], [0.0]]),
            always=always,
            b_out=float(net.b_out),
        )

    def at(self, x: FloatArray) -> FloatArray:
        on_rising = np.searchsorted(self.rising, x, side="left")  # thresholds below x
        off_falling = np.searchsorted(self.falling, x, side="right")  # thresholds at most x
        hidden = self.rising_sums[on_rising] + self.falling_sums[off_falling] + self.always
        result: FloatArray = hidden + self.b_out  # as the dense pass: the hidden sum, then b_out
        return result


def _last_off(w: FloatArray, b: FloatArray, *, up: bool) -> FloatArray:
    """Each neuron's switching float, where float64's own ``w * x + b > 0`` changes: for ``up``
    (``w > 0``) the largest ``x`` where it is still false, else (``w < 0``) the smallest ``x``
    where it is false again.

    A bisection over the floats in order (``_order_key``): from a few floats either side of
    ``-b/w`` where they bracket the switch (a handful of halvings), else from -inf and +inf,
    where the neuron is off and on (or on and off), which 64 halvings bring to neighbouring
    floats wherever the switch is (e.g. among subnormals, where ``w * x`` underflows to 0).
    """
    bottom, top = _order_key(np.array([-np.inf, np.inf]))
    with np.errstate(all="ignore"):
        # Most switches are within a few floats of -b/w: start from there where that brackets
        # the switch (off below, on above: up; the reverse otherwise), else from -inf and inf.
        near = _order_key(-b / w)
        lo = np.clip(near - _NEAR, bottom, top)
        hi = np.clip(near + _NEAR, bottom, top)
        bracketed = ((w * _from_key(lo) + b > 0) != up) & ((w * _from_key(hi) + b > 0) == up)
        lo, hi = np.where(bracketed, lo, bottom), np.where(bracketed, hi, top)
        for _ in range(66):
            open_ = hi > lo + 1
            if not open_.any():
                break
            mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without overflow
            on = w * _from_key(mid) + b > 0
            moves_lo = on != up  # up: off at mid, so the switch is above it
            lo = np.where(open_ & moves_lo, mid, lo)
            hi = np.where(open_ & ~moves_lo, mid, hi)
    return _from_key(lo if up else hi)


def as_network(
    params: Params, *, n_hidden: int | None = None, label: str = "network"
) -> StepNetwork:
    """Turn a student's (w_hidden, b_hidden, w_out, b_out) into a checked ``StepNetwork``.

    Accepts a sequence of four arrays, a mapping with those four keys, or a ``StepNetwork``.
    Each vector may come as (H,), (H, 1) or (1, H): torch's ``Linear(1, H).weight`` is (H, 1)
    and a network in that layout is just as correct. Anything else raises ``ValueError`` with
    a message a student can act on, naming the array, its shape and the expected one.
    """
    w_hidden, b_hidden, w_out, b_out = _unpack(params)
    n = _vector_size("w_hidden", w_hidden) if n_hidden is None else n_hidden
    return StepNetwork(
        w_hidden=_as_vector("w_hidden", w_hidden, n, label),
        b_hidden=_as_vector("b_hidden", b_hidden, n, label),
        w_out=_as_vector("w_out", w_out, n, label),
        b_out=_as_scalar("b_out", b_out),
    )


def evaluate_network(
    params: Params, x: ArrayLike, *, n_hidden: int | None = None, label: str = "network"
) -> FloatArray:
    """Evaluate plain-array parameters at ``x`` after ``as_network``'s validation."""
    return as_network(params, n_hidden=n_hidden, label=label)(x)


def _six_digits(value: float) -> str:
    return f"{value:.6g}"


@dataclass(frozen=True, kw_only=True, eq=False)
class BoundaryReport:
    """What a would-be box network does in the interior, outside, and at each edge.

    "Inside"/"outside" points sit ``offset`` (= 1e-9 * delta) from an edge. Values are compared
    with ``tol``, a relative 1e-9 of max(1, |h|), so a correct network never fails on rounding.
    """

    h: float
    delta: float
    offset: float
    """Distance of the just-inside/just-outside points from each edge."""
    tol: float
    """Absolute tolerance every value is held to."""
    at_zero: float
    at_delta: float
    inside_zero: float
    """Value at x = offset (should be h)."""
    outside_zero: float
    """Value at x = -offset (should be 0)."""
    inside_delta: float
    """Value at x = delta - offset (should be h)."""
    outside_delta: float
    """Value at x = delta + offset (should be 0)."""
    interior_max_error: float
    """max |net - h| on an even grid strictly inside (0, delta)."""
    exterior_max_error: float
    """max |net| on grids left of 0 and right of delta, out to 100 * delta."""

    def _ok(self, value: float, expected: float) -> bool:
        return bool(abs(value - expected) <= self.tol)

    @property
    def interior_ok(self) -> bool:
        return (
            self.interior_max_error <= self.tol
            and self._ok(self.inside_zero, self.h)
            and self._ok(self.inside_delta, self.h)
        )

    @property
    def exterior_ok(self) -> bool:
        return (
            self.exterior_max_error <= self.tol
            and self._ok(self.outside_zero, 0.0)
            and self._ok(self.outside_delta, 0.0)
        )

    @property
    def zero_ok(self) -> bool:
        return self._ok(self.at_zero, 0.0)

    @property
    def delta_ok(self) -> bool:
        return self._ok(self.at_delta, 0.0)

    @property
    def exact(self) -> bool:
        return self.interior_ok and self.exterior_ok and self.zero_ok and self.delta_ok

    def shape_problems(self, show: Callable[[float], str] = _six_digits) -> list[str]:
        """One sentence per thing wrong inside (0, delta) and outside [0, delta], just beside
        the edges included, with the numbers written by ``show`` (Q1's checks pass their exact
        writing); the edges themselves are ``edge_problems``."""
        found: list[str] = []
        if self.interior_max_error > self.tol:
            found.append(
                f"inside (0, delta) the output is off from h = {show(self.h)} by up to "
                f"{show(self.interior_max_error)}"
            )
        for name, value, expected in (
            ("just right of x = 0", self.inside_zero, self.h),
            ("just left of x = delta", self.inside_delta, self.h),
            ("just left of x = 0", self.outside_zero, 0.0),
            ("just right of x = delta", self.outside_delta, 0.0),
        ):
            if not self._ok(value, expected):
                found.append(f"{name} the output is {show(value)}, expected {show(expected)}")
        if self.exterior_max_error > self.tol:
            found.append(
                f"outside [0, delta] the output reaches {show(self.exterior_max_error)}, expected 0"
            )
        return found

    def edge_problems(self, show: Callable[[float], str] = _six_digits) -> list[str]:
        """One sentence per edge (x = 0, x = delta) where the output is not 0."""
        return [
            f"f({name}) = {show(value)}, expected 0: the box is open, so it must already be off "
            f"at x = {name}"
            for name, value in (("0", self.at_zero), ("delta", self.at_delta))
            if not self._ok(value, 0.0)
        ]

    def problems(self) -> tuple[str, ...]:
        """One sentence per thing that is wrong, with the numbers; empty when exact."""
        return (*self.shape_problems(), *self.edge_problems())


def boundary_report(
    params: Params, h: float, delta: float, rounding: float = float(np.finfo(np.float64).eps)
) -> BoundaryReport:
    """Evaluate a 2-neuron box network at its edges, beside them, inside and outside; at the
    edges, a switch within rounding of one (``rounding``: the machine epsilon of the weights'
    float type) is taken to be at it (``StepNetwork.at_edge``)."""
    check_finite("h", h)
    check_positive("delta", delta)
    net = as_network(params, n_hidden=2, label="box network")
    offset = max(_EDGE_OFFSET, OFFSET_ULPS * rounding) * delta
    edges = net(np.array([offset, -offset, delta - offset, delta + offset]))
    interior = np.linspace(0.0, delta, 257)[1:-1]
    exterior = np.concatenate(
        [
            np.linspace(-delta, 0.0, 65)[:-1],
            np.linspace(delta, 2 * delta, 65)[1:],
            delta * np.array([-100.0, -10.0, 10.0, 100.0]),
        ]
    )
    return BoundaryReport(
        h=float(h),
        delta=float(delta),
        offset=offset,
        tol=1e-9 * max(1.0, abs(h)),
        at_zero=net.at_edge(0.0, delta, rounding),
        at_delta=net.at_edge(delta, delta, rounding),
        inside_zero=float(edges[0]),
        outside_zero=float(edges[1]),
        inside_delta=float(edges[2]),
        outside_delta=float(edges[3]),
        interior_max_error=_max_abs(net(interior) - h),
        exterior_max_error=_max_abs(net(exterior)),
    )


def _max_abs(values: FloatArray) -> float:
    """Like max |v| but NaN-propagating as +inf, so a NaN output counts as maximally wrong."""
    return float(np.max(np.where(np.isnan(values), np.inf, np.abs(values))))


def _unpack(params: Params) -> tuple[object, object, object, object]:
    if isinstance(params, StepNetwork):
        return params.w_hidden, params.b_hidden, params.w_out, params.b_out
    if isinstance(params, Mapping):
        missing = [k for k in PARAM_NAMES if k not in params]
        if missing:
            raise ValueError(f"network parameters are missing {', '.join(missing)}")
        return tuple(params[k] for k in PARAM_NAMES)  # type: ignore[return-value]
    if isinstance(params, str | bytes) or not isinstance(params, Sequence | np.ndarray):
        raise ValueError(
            f"expected (w_hidden, b_hidden, w_out, b_out), got {type(params).__name__}"
        )
    if len(params) != 4:
        raise ValueError(f"expected 4 arrays (w_hidden, b_hidden, w_out, b_out), got {len(params)}")
    return params[0], params[1], params[2], params[3]


def _as_array(name: str, value: object) -> FloatArray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not an array of numbers ({type(value).__name__})") from exc
    if value is None or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN, infinity or None")
    return array


def _is_vector_shape(shape: tuple[int, ...]) -> bool:
    return len(shape) >= 1 and sum(d != 1 for d in shape) <= 1


def _vector_size(name: str, value: object) -> int:
    array = _as_array(name, value)
    if not _is_vector_shape(array.shape) or array.size == 0:
        raise ValueError(f"{name} has shape {array.shape}, expected a vector of shape (H,)")
    return int(array.size)


def _as_vector(name: str, value: object, n: int, label: str) -> FloatArray:
    array = _as_array(name, value)
    if array.size != n or not _is_vector_shape(array.shape):
        raise ValueError(
            f"{name} has shape {array.shape}, expected ({n},) for a {n}-neuron {label}"
        )
    return array.reshape(n)


def _as_scalar(name: str, value: object) -> float:
    array = _as_array(name, value)
    if array.size != 1:
        raise ValueError(f"{name} has shape {array.shape}, expected a single number")
    return float(array.reshape(()))


def check_finite(name: str, value: float) -> None:
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_positive(name: str, value: float) -> None:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
