"""What several of Q4's checks read alike: the layer sizes, the weights as canonical
``Params``, the grader's injected weights, the reference's values as ``Params``, and one
closeness test.

The probe has already turned weights stored ``(out, in)`` and biases shaped ``(1, n)`` or
``(n, 1)`` into the canonical ``(in, out)`` / ``(n,)`` layout, so everything here sees one
layout only. Kept apart so that each check module holds one check's logic and no copy of these.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from graders.numerics.numpy_mlp import LAYER_SIZES, Params
from graders.questions.api import CheckContext
from graders.questions.common import array_text

LAYERS = LAYER_SIZES
TEMPLATE_LEARNING_RATE = 0.003
"""The template's learning rate (its ``LEARNING_RATE`` and ``train_one_sample``'s default): the
probe's is drawn away from it, and an update made with it instead is named (a test holds it to
the reference's)."""
RTOL = 1e-6
"""Relative tolerance for values the student computes with the same formulas as the reference."""


def canonical_params(arrays: Mapping[str, np.ndarray]) -> tuple[Params | None, str]:
    """Canonical params from ``w0, b0, ...``, or None and what is wrong with them."""
    shapes = list(itertools.pairwise(LAYERS))
    found_w = [arrays[f"w{i}"] for i in range(len(shapes)) if f"w{i}" in arrays]
    found_b = [arrays[f"b{i}"] for i in range(len(shapes)) if f"b{i}" in arrays]
    n_layers = sum(1 for k in arrays if k.startswith("w"))
    if n_layers != len(shapes) or len(found_w) != len(shapes) or len(found_b) != len(shapes):
        return None, f"expected {len(shapes)} weight matrices and bias vectors, found {n_layers}"
    for i, ((n_in, n_out), w, b) in enumerate(zip(shapes, found_w, found_b, strict=True)):
        if w.shape != (n_in, n_out):
            either = f" (or ({n_out}, {n_in}))" if n_in != n_out else ""
            return None, f"weights[{i}]: expected shape ({n_in}, {n_out}){either}, got {w.shape}"
        if b.size != n_out:
            return None, f"biases[{i}]: expected {n_out} values, got shape {b.shape}"
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            return None, f"weights[{i}] or biases[{i}] contain NaN or infinity"
    return Params.of(found_w, [b.reshape(-1) for b in found_b]), ""


def stored_as_float32(values: np.ndarray) -> bool:
    """Every entry exactly a float32 value: an array the notebook stored as float32 (the probe
    hands every array over as float64, and computed float64 values never all are)."""
    with np.errstate(all="ignore"):
        return bool(np.array_equal(values.astype(np.float32).astype(np.float64), values))


def injected_params(ctx: CheckContext) -> Params:
    """The weights the probe put into the student's globals before calling their functions."""
    arrays = ctx.inputs.arrays
    n = len(LAYERS) - 1
    return Params.of([arrays[f"w{i}"] for i in range(n)], [arrays[f"b{i}"] for i in range(n)])


def close_to(found: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float) -> bool:
    return found.shape == expected.shape and bool(
        np.all(np.isfinite(found)) and np.allclose(found, expected, rtol=rtol, atol=atol)
    )


def shown(values: np.ndarray, limit: int = 4) -> str:
    """An array in a message as Q4's show it: its first ``limit`` values, then ``...``."""
    return array_text(values, limit=limit)


def params_at(arrays: Mapping[str, np.ndarray], prefix: str = "") -> Params:
    """``Params`` from ``{prefix}w0, {prefix}b0, ...``: how expected values store a network."""
    n = len(LAYERS) - 1
    return Params.of(
        [arrays[f"{prefix}w{i}"] for i in range(n)], [arrays[f"{prefix}b{i}"] for i in range(n)]
    )


def params_arrays(params: Params, prefix: str = "") -> dict[str, np.ndarray]:
    """The inverse of ``params_at``: one array per weight matrix and bias vector."""
    out: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        out[f"{prefix}w{i}"], out[f"{prefix}b{i}"] = w, b
    return out
