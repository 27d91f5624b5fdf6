"""What several of Q4's checks read alike: the layer sizes, the weights as canonical
``ref.Params``, the grader's injected weights, and one closeness test.

The probe has already turned weights stored ``(out, in)`` and biases shaped ``(1, n)`` or
``(n, 1)`` into the canonical ``(in, out)`` / ``(n,)`` layout, so everything here sees one
layout only. Kept apart so that each check module holds one check's logic and no copy of these.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from graders.questions.api import CheckContext
from graders.questions.common import array_text
from reference import q4_numpy as ref

LAYERS = ref.LAYER_SIZES
RTOL = 1e-6
"""Relative tolerance for values the student computes with the same formulas as the reference."""


def canonical_params(arrays: Mapping[str, np.ndarray]) -> tuple[ref.Params | None, str]:
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
    return ref.Params.of(found_w, [b.reshape(-1) for b in found_b]), ""


def stored_as_float32(values: np.ndarray) -> bool:
    """Every entry exactly a float32 value: an array the notebook stored as float32 (the probe
    hands every array over as float64, and computed float64 values never all are)."""
    with np.errstate(all="ignore"):
        return bool(np.array_equal(values.astype(np.float32).astype(np.float64), values))


def injected_params(ctx: CheckContext) -> ref.Params:
    """The weights the probe put into the student's globals before calling their functions."""
    arrays = ctx.inputs.arrays
    n = len(LAYERS) - 1
    return ref.Params.of([arrays[f"w{i}"] for i in range(n)], [arrays[f"b{i}"] for i in range(n)])


def close_to(found: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float) -> bool:
    return found.shape == expected.shape and bool(
        np.all(np.isfinite(found)) and np.allclose(found, expected, rtol=rtol, atol=atol)
    )


def shown(values: np.ndarray, limit: int = 4) -> str:
    """An array in a message as Q4's show it: its first ``limit`` values, then ``...``."""
    return array_text(values, limit=limit)
