"""Q2 reference: initialization variances, as closed forms and as Monte-Carlo measurements.

The closed forms are the derivations of parts (a)-(e). The simulators exist so the grader can
check a student's rule by *using* it (push random data through a layer or a deep stack with
that variance and measure) instead of only comparing numbers, and so the tests here can show
that each formula is what a real layer does.

Every estimate is a mean over independent *replicates*: each replicate draws fresh weights and
fresh inputs, pushes a batch through and records the mean square of what comes out. Entries
within a replicate share weights or inputs and are correlated; replicates are independent, so
the standard error of the mean over replicates (batch means) is honest without modelling the
correlation. ``agrees`` turns an estimate and a formula into a pass/fail at a stated tolerance.

Part (c): with a = w.x symmetric about 0 (w is), y = ReLU(a) keeps exactly half of a's second
moment, E[y^2] = n_in s^2 v^2 / 2, hence the factor 2. The seed used var(y) = E[y^2] - E[y]^2
= n_in s^2 v^2 (pi - 1) / (2 pi) and got s^2 = 2 pi / ((pi - 1) n_in); but what the next layer
sees is E[y^2] (its inputs need not be zero-mean for Var(w.y) = n s^2 E[y^2]), so that rule
grows the signal by pi / (pi - 1) ~ 1.47 per layer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
InputKind = Literal["gaussian", "uniform", "rademacher"]
Activation = Literal["linear", "relu"]
VarianceRule = Callable[[int, int], float]
"""(n_in, n_out) -> weight variance; wrap one-argument rules: ``lambda i, o: 1 / i``."""

_CHUNK_ELEMENTS: Final = 1 << 21
"""Random numbers drawn per vectorised chunk of replicates: about 16 MB of float64."""
DEFAULT_Z: Final = 5.0
DEFAULT_REL_FLOOR: Final = 1e-3


# --- closed forms (parts a-e) ---------------------------------------------------------------


def activation_variance(n_in: float, sigma2: float, v2: float) -> float:
    """(a) var(a_j) = sum_i var(w_ij) var(x_i) = n_in s^2 v^2 (independent, zero-mean terms)."""
    return _positive("n_in", n_in) * _non_negative("sigma2", sigma2) * _non_negative("v2", v2)


def forward_variance(n_in: float) -> float:
    """(b) s^2 = 1 / n_in makes var(a_j) = v^2: the signal keeps its size layer after layer."""
    return 1.0 / _positive("n_in", n_in)


def relu_factor() -> float:
    """(c) ReLU halves the second moment of a symmetric pre-activation, so double s^2."""
    return 2.0


def relu_forward_variance(n_in: float) -> float:
    """(c) He initialization: s^2 = 2 / n_in."""
    return relu_factor() / _positive("n_in", n_in)


def relu_second_moment(n_in: float, sigma2: float, v2: float) -> float:
    """(c) E[ReLU(a)^2] = var(a) / 2: what the next layer sees (not var(ReLU(a)))."""
    return activation_variance(n_in, sigma2, v2) / 2.0


def backward_variance(n_out: float) -> float:
    """(d) s^2 = 1 / n_out keeps the gradient's variance through W^T (fan-out this time)."""
    return 1.0 / _positive("n_out", n_out)


def gradient_variance(n_out: float, sigma2: float, g2: float, g_mean: float = 0.0) -> float:
    """(d) E[g_in^2] = n_out s^2 (g^2 + mu_g^2); the seed's derivation keeps the mean too."""
    second = _non_negative("g2", g2) + float(g_mean) ** 2
    return _positive("n_out", n_out) * _non_negative("sigma2", sigma2) * second


def xavier_variance(n_in: float, n_out: float) -> float:
    """(e) Glorot: 2 / (n_in + n_out), the harmonic mean of 1 / n_in and 1 / n_out."""
    return 2.0 / (_positive("n_in", n_in) + _positive("n_out", n_out))


# --- estimates and the tolerance ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MCEstimate:
    """A Monte-Carlo mean with its standard error, over ``n`` independent replicates."""

    value: float
    """Mean of the replicate statistics."""
    stderr: float
    """Sample standard deviation of the replicate statistics over sqrt(n)."""
    n: int
    """Number of independent replicates behind ``value``."""

    @classmethod
    def from_replicates(cls, stats: ArrayLike) -> MCEstimate:
        """Batch means: each entry is one independent replicate's statistic."""
        s = np.asarray(stats, dtype=np.float64).ravel()
        if s.size < 2:
            raise ValueError(f"need at least 2 replicates for a standard error, got {s.size}")
        return cls(value=float(s.mean()), stderr=float(s.std(ddof=1) / math.sqrt(s.size)), n=s.size)

    def z_score(self, expected: float) -> float:
        """(value - expected) / stderr; +-inf when stderr is 0 and they differ."""
        diff = self.value - expected
        if self.stderr > 0:
            return diff / self.stderr
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)


def false_failure_probability(z: float = DEFAULT_Z) -> float:
    """P(|Z| > z) for a standard normal Z: the chance a correct rule fails one ``agrees``."""
    return math.erfc(z / math.sqrt(2.0))


def agrees(
    estimate: MCEstimate,
    expected: float,
    *,
    z: float = DEFAULT_Z,
    rel_floor: float = DEFAULT_REL_FLOOR,
) -> bool:
    """|value - expected| <= z * stderr + rel_floor * |expected|.

    By the central limit theorem the mean of many independent replicates is close to normal,
    so for a correct formula (value - expected) / stderr is about standard normal and exceeds
    z = 5 in size with probability erfc(5 / sqrt 2) ~ 5.7e-7: one false failure in ~1.7 million
    checks (``false_failure_probability``). The small relative floor absorbs rounding and a
    degenerate stderr of 0; at 0.1 % it is far below the nearest wrong answer we must catch
    (the seed's ReLU rule, 32 % off). Use at least ~50 replicates so the stderr is itself well
    estimated: with few replicates the t-distribution's tails are heavier than the normal's.
    """
    if not (z > 0 and rel_floor >= 0):
        raise ValueError(f"need z > 0 and rel_floor >= 0, got z={z}, rel_floor={rel_floor}")
    tolerance = z * estimate.stderr + rel_floor * abs(expected)
    return bool(abs(estimate.value - expected) <= tolerance)


# --- simulators -----------------------------------------------------------------------------


def mc_activation_variance(
    n_in: int,
    sigma2: float,
    v2: float,
    *,
    rng: np.random.Generator,
    samples: int = 200,
    n_out: int = 32,
    batch: int = 32,
    inputs: InputKind = "gaussian",
) -> MCEstimate:
    """(a) var(a_j) measured: ``samples`` layers W ~ N(0, s^2), each fed ``batch`` inputs.

    The mean is 0 by symmetry, so var(a_j) = E[a_j^2] and the statistic is the mean square.
    ``inputs`` picks the input law (all zero-mean with variance v2): the formula needs nothing
    else, and a non-Gaussian law shows that.
    """
    stats = _layer_statistic(n_in, n_out, sigma2, v2, rng, samples, batch, inputs, _identity)
    return MCEstimate.from_replicates(stats)


def mc_relu_second_moment(
    n_in: int,
    sigma2: float,
    v2: float,
    *,
    rng: np.random.Generator,
    samples: int = 200,
    n_out: int = 32,
    batch: int = 32,
    inputs: InputKind = "gaussian",
) -> MCEstimate:
    """(c) E[ReLU(a_j)^2] measured; compare with ``relu_second_moment`` (n_in s^2 v^2 / 2)."""
    stats = _layer_statistic(n_in, n_out, sigma2, v2, rng, samples, batch, inputs, _relu)
    return MCEstimate.from_replicates(stats)


def mc_backward_variance(
    n_in: int,
    n_out: int,
    sigma2: float,
    g2: float,
    *,
    rng: np.random.Generator,
    samples: int = 200,
    batch: int = 32,
    g_mean: float = 0.0,
) -> MCEstimate:
    """(d) E[g_in^2] measured for g_in = W^T g_out, W of shape (n_out, n_in), g_out i.i.d.

    Gaussian output gradients with mean ``g_mean`` and variance g2; compare with
    ``gradient_variance(n_out, sigma2, g2, g_mean)``.
    """
    _check_sizes(n_in=n_in, n_out=n_out, samples=samples, batch=batch)
    scale = math.sqrt(_non_negative("sigma2", sigma2))
    g_std = math.sqrt(_non_negative("g2", g2))
    stats = np.empty(samples)
    for lo, hi in _chunks(samples, n_out * (n_in + batch)):
        w = rng.normal(0.0, scale, size=(hi - lo, n_out, n_in))
        g_out = rng.normal(float(g_mean), g_std, size=(hi - lo, batch, n_out))
        g_in = g_out @ w  # row-vector form of W^T g_out, one row per example
        stats[lo:hi] = np.mean(g_in**2, axis=(1, 2))
    return MCEstimate.from_replicates(stats)


def mc_deep_forward(
    widths: Sequence[int],
    variance_rule: VarianceRule,
    *,
    rng: np.random.Generator,
    samples: int = 32,
    batch: int = 32,
    activation: Activation = "linear",
    v2: float = 1.0,
) -> tuple[MCEstimate, ...]:
    """E[h_l^2] after each layer l = 1..L of a stack with widths[0] -> ... -> widths[L].

    Layer l draws W_l ~ N(0, variance_rule(widths[l-1], widths[l])) and computes
    h_l = act(h_{l-1} W_l) from Gaussian inputs of variance v2. With the right rule every
    layer's value stays near v2 (linear: 1/n_in; ReLU: 2/n_in); a wrong one drifts
    geometrically with depth, by n_in * s^2 (linear) or n_in * s^2 / 2 (ReLU) per layer.
    """
    pairs = list(itertools.pairwise(int(w) for w in widths))
    stds = [_rule_std(variance_rule, n_in, n_out) for n_in, n_out in pairs]
    stats = mc_deep_replicates(
        widths, stds, rng=rng, samples=samples, batch=batch, activation=activation, v2=v2
    )
    return tuple(MCEstimate.from_replicates(row) for row in stats)


def mc_deep_replicates(
    widths: Sequence[int],
    stds: Sequence[float],
    *,
    rng: np.random.Generator,
    samples: int = 32,
    batch: int = 32,
    activation: Activation = "linear",
    v2: float = 1.0,
) -> FloatArray:
    """``mc_deep_forward``'s replicate statistics, layers x samples: replicate r's mean of
    h_l^2 after layer l, with layer l's weights of standard deviation ``stds[l - 1]``.

    Linear layers and the ReLU are positively homogeneous, so with every std positive the
    statistics are exactly ``prod(stds[:l])^2`` times those of unit stds drawn from the same
    generator: a caller may simulate unit weights once and scale them (``q2.monte_carlo``).
    """
    if activation not in ("linear", "relu"):
        raise ValueError(f"activation must be 'linear' or 'relu', got {activation!r}")
    sizes = [int(w) for w in widths]
    if len(sizes) < 2:
        raise ValueError(f"need at least an input and an output width, got {list(widths)}")
    _check_sizes(samples=samples, batch=batch, **{f"widths[{i}]": w for i, w in enumerate(sizes)})
    pairs = list(itertools.pairwise(sizes))
    if len(stds) != len(pairs):
        raise ValueError(f"{len(pairs)} layers need {len(pairs)} stds, got {len(stds)}")
    act = _relu if activation == "relu" else _identity
    input_std = math.sqrt(_non_negative("v2", v2))
    stats = np.empty((len(pairs), samples))
    per_replicate = max(n_in * n_out for n_in, n_out in pairs) + batch * max(sizes)
    for lo, hi in _chunks(samples, per_replicate):
        h = rng.normal(0.0, input_std, size=(hi - lo, batch, sizes[0]))
        for layer, ((_, n_out), std) in enumerate(zip(pairs, stds, strict=True)):
            h = act(_times_gaussian(h, float(std), n_out, rng))
            stats[layer, lo:hi] = np.mean(h**2, axis=(1, 2))
    return stats


def _times_gaussian(h: FloatArray, std: float, n_out: int, rng: np.random.Generator) -> FloatArray:
    """``h @ W`` for a fresh ``W ~ N(0, std^2)`` of shape ``(n_in, n_out)`` per replicate, with
    exactly that distribution but without drawing ``W`` when the batch is smaller than n_in.

    Given ``h`` (``batch x n_in``), the columns of ``h @ W`` are independent, each
    ``N(0, std^2 h h^T)``; a square root ``R`` of ``h h^T`` (``R R^T = h h^T``) times a
    ``batch x n_out`` standard normal matrix has that distribution. That draws ``batch`` numbers
    per output instead of ``n_in`` (12 times fewer in the grader's stacks of width 150-220 fed
    16 inputs), which is most of the simulation's time. Non-finite values (a rule that made the
    signal overflow, or nearly) take the direct draw, which carries them on as before.
    """
    k, batch, n_in = h.shape
    gram = h @ h.swapaxes(1, 2) if batch < n_in else None
    if gram is None or not np.all(np.isfinite(gram)):
        result: FloatArray = h @ rng.normal(0.0, std, size=(k, n_in, n_out))
        return result
    values, vectors = np.linalg.eigh(gram)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))[:, None, :]
    result = std * (root @ rng.standard_normal(size=(k, batch, n_out)))
    return result


# --- helpers ---------------------------------------------------------------------------------


def _layer_statistic(
    n_in: int,
    n_out: int,
    sigma2: float,
    v2: float,
    rng: np.random.Generator,
    samples: int,
    batch: int,
    inputs: InputKind,
    act: Callable[[FloatArray], FloatArray],
) -> FloatArray:
    """Per replicate: mean of act(x W)^2 over a batch x n_out block, W fresh, x fresh."""
    _check_sizes(n_in=n_in, n_out=n_out, samples=samples, batch=batch)
    scale = math.sqrt(_non_negative("sigma2", sigma2))
    v2 = _non_negative("v2", v2)
    stats = np.empty(samples)
    for lo, hi in _chunks(samples, n_in * (n_out + batch)):
        w = rng.normal(0.0, scale, size=(hi - lo, n_in, n_out))
        x = _draw_inputs(rng, (hi - lo, batch, n_in), v2, inputs)
        stats[lo:hi] = np.mean(act(x @ w) ** 2, axis=(1, 2))
    return stats


def _draw_inputs(
    rng: np.random.Generator, shape: tuple[int, ...], v2: float, kind: InputKind
) -> FloatArray:
    """Zero-mean inputs of variance v2 from the named law."""
    if kind == "gaussian":
        return rng.normal(0.0, math.sqrt(v2), size=shape)
    if kind == "uniform":  # U(-a, a) has variance a^2 / 3
        half_width = math.sqrt(3.0 * v2)
        return rng.uniform(-half_width, half_width, size=shape)
    if kind == "rademacher":
        signs = 2.0 * rng.integers(0, 2, size=shape) - 1.0
        return np.asarray(signs * math.sqrt(v2), dtype=np.float64)
    raise ValueError(f"inputs must be 'gaussian', 'uniform' or 'rademacher', got {kind!r}")


def _chunks(samples: int, per_replicate: int) -> Iterator[tuple[int, int]]:
    """Replicate ranges small enough that one chunk draws about ``_CHUNK_ELEMENTS`` numbers."""
    size = max(1, _CHUNK_ELEMENTS // max(1, per_replicate))
    for lo in range(0, samples, size):
        yield lo, min(samples, lo + size)


def _identity(a: FloatArray) -> FloatArray:
    return a


def _relu(a: FloatArray) -> FloatArray:
    return np.maximum(a, 0.0)


def _rule_std(rule: VarianceRule, n_in: int, n_out: int) -> float:
    value = float(rule(n_in, n_out))
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"variance rule gave {value!r} for n_in={n_in}, n_out={n_out}")
    return math.sqrt(value)


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive whole number, got {value!r}")
    if sizes.get("samples", 2) < 2:
        raise ValueError("samples must be at least 2 so the standard error can be estimated")


def _positive(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _non_negative(name: str, value: float) -> float:
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return v
