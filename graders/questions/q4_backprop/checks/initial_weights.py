"""Q4's ``q4.init``: the initial weights are the seeded normal draws with variance
``1/max(n_in, n_out)`` and the biases are zero.

Full marks need the exact draws of ``default_rng(80085)`` in layer order (``ctx.expected("init")``:
the reference's draws as flat positions and values per layer; the student kit holds only a
sample of the positions, so that it never holds the answer itself); the right distribution drawn
otherwise earns part. A variance is judged by a test with a known false-alarm
rate (``variance_z``), and a wrong one is named by the usual mistake it is consistent with.
"""

from __future__ import annotations

import math

import numpy as np

from graders.numerics.numpy_mlp import Params
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q4_backprop.checks.shared import LAYERS, canonical_params, stored_as_float32
from graders.render.numbers import number

INIT_RTOL = 1e-10
"""Same draws from the same generator; only the last bits may differ (``z * s`` vs ``z / n``)."""
INIT_RTOL_FLOAT32 = 4 * float(np.finfo(np.float32).eps)
"""The same draws stored as float32: rounded once to float32 (scaled before or after the cast),
so within a few float32 units in the last place; different draws differ in the first digit."""
INIT_Z = 5.0
"""How many standard errors a layer's second moment may stray from the required variance."""
INIT_PARTIAL = 0.75
"""Right shapes, variances and zero biases, but not the seeded draws."""
BIASES_NONZERO_PARTIAL = 0.5


def _seeded_draws(w: np.ndarray, index: np.ndarray, expected: np.ndarray) -> bool:
    """The generator's stream, whether drawn with ``size=(n_in, n_out)`` or ``(n_out, n_in)``,
    compared at the precision the notebook stored it in, at the flat positions ``index``.

    The probe hands over ``(in, out)``; a matrix drawn as ``(out, in)`` and stored so holds the
    same numbers in the same order once transposed back, so both count as the seeded draws.
    Stored as float32, the draws are compared with the reference's cast to float32.
    """
    if stored_as_float32(w):
        want, rtol = expected.astype(np.float32).astype(np.float64), INIT_RTOL_FLOAT32
    else:
        want, rtol = expected, INIT_RTOL
    return any(
        np.allclose(candidate.reshape(-1)[index], want, rtol=rtol, atol=0.0)
        for candidate in (w, w.T)
    )


def variance_z(values: np.ndarray, variance: float) -> float:
    """How many standard errors the second moment about 0 is from ``variance``.

    For N iid N(0, s^2) values, N * m2 / s^2 is chi-square with N degrees of freedom; the
    Wilson-Hilferty cube-root transform makes it standard normal with tails that match the
    normal's even for N = 320, the last layer (simulated out to z = 4.5), so |z| <= 5 fails a
    correct initialization with probability ~6e-7 per layer. The normal approximation of the
    variance itself would be skewed at N = 320.
    """
    n = values.size
    ratio = float(np.mean(np.square(values))) / variance
    z: float = (ratio ** (1 / 3) - (1 - 2 / (9 * n))) / math.sqrt(2 / (9 * n))
    return z


def _variance_diagnosis(values: np.ndarray, n_in: int, n_out: int) -> str:
    """Name the usual wrong variance when the sample is consistent with it."""
    big = max(n_in, n_out)
    candidates = {
        "1/max(n_in, n_out)^2: the standard deviation was set to the variance": 1 / big**2,
        "1/n_out instead of 1/max(n_in, n_out)": 1 / n_out,
        "1/n_in instead of 1/max(n_in, n_out)": 1 / n_in,
        "2/(n_in + n_out) (Xavier) instead of 1/max(n_in, n_out)": 2 / (n_in + n_out),
        "1: the draws were not scaled": 1.0,
        "1/sqrt(max(n_in, n_out)): the variance was used as the standard deviation": (
            1 / math.sqrt(big)
        ),
    }
    for name, var in candidates.items():
        if not math.isclose(var, 1 / big) and abs(variance_z(values, var)) <= INIT_Z:
            return name
    return ""


def _layer_variance_problem(i: int, w: np.ndarray) -> tuple[str, str]:
    """(what is wrong with layer i's variance, the likely cause), or ("", "") if nothing."""
    n_in, n_out = LAYERS[i], LAYERS[i + 1]
    required = 1 / max(n_in, n_out)
    z = variance_z(w, required)
    if abs(z) <= INIT_Z:
        return "", ""
    measured = float(np.mean(np.square(w)))
    return (
        f"weights[{i}] ({n_in} -> {n_out}): expected variance 1/{max(n_in, n_out)} = "
        f"{number(required)}, got {number(measured)} ({number(round(abs(z)))} standard errors off; "
        f"{number(INIT_Z)} allowed)"
    ), _variance_diagnosis(w, n_in, n_out)


def _variance_failure(params: Params) -> Outcome | None:
    found = [_layer_variance_problem(i, w) for i, w in enumerate(params.weights)]
    problems = [(text, cause) for text, cause in found if text]
    if not problems:
        return None
    causes = list(dict.fromkeys(cause for _, cause in problems))
    if len(causes) == 1 and causes[0]:
        message = "; ".join(text for text, _ in problems) + f". The variance is {causes[0]}."
    else:
        message = "; ".join(text + (f" (that is {c})" if c else "") for text, c in problems)
    return Outcome.failed(
        message,
        hint="Draw each layer with rng.normal(loc=0, scale=np.sqrt(1 / max(n_in, n_out)), "
        "size=(n_in, n_out)): `scale` is the standard deviation, the square root of the "
        "variance.",
    )


@check("q4.init", "Initial weights: seeded normal draws with variance 1/max(n_in, n_out)")
def init(ctx: CheckContext) -> Outcome:
    """Full marks for the seeded reference draws; 0.75 for the right distribution otherwise."""
    data = ctx.npz("init")
    if data is None:
        return Outcome.failed(f"Could not be checked: {ctx.why_missing('initial_weights')}")
    params, problem = canonical_params(data)
    if params is None:
        return Outcome.failed(
            f"Initial weights: {problem}",
            hint="Layers 784 -> 32 -> 32 -> 10: weights[i] of shape (n_in, n_out), biases[i] "
            "of shape (n_out,).",
        )
    expected = ctx.expected("init")
    zero_biases = all(not np.any(b) for b in params.biases)
    if zero_biases and all(
        _seeded_draws(w, expected[f"w{i}.index"], expected[f"w{i}.values"])
        for i, w in enumerate(params.weights)
    ):
        return Outcome.passed("The initial weights are exactly the draws of default_rng(80085).")
    wrong_variance = _variance_failure(params)
    if wrong_variance is not None:
        return wrong_variance
    if not zero_biases:
        return Outcome(
            fraction=BIASES_NONZERO_PARTIAL,
            message="The weights have the right shapes and variances, but the biases are not "
            "all zero.",
            hint="Initialize every bias to zero: biases.append(np.zeros(n_out)).",
        )
    return Outcome(
        fraction=INIT_PARTIAL,
        message=(
            "The weights have the right shapes and variances (each layer within "
            f"{number(INIT_Z)} standard errors of 1/max(n_in, n_out)) and the biases are zero, but "
            "they are not the draws of default_rng(80085) in layer order."
        ),
        hint="Use rng = default_rng(80085) and draw the layers one after the other, first "
        "layer first, with rng.normal(..., size=(n_in, n_out)), and nothing else drawn between.",
    )
