"""Q4's ``q4.helpers``: ``sigmoid``, ``dsigmoid`` and ``softmax`` on the grader's inputs.

A quarter each, the last quarter for softmax on inputs near +900, where ``exp`` overflows unless
the maximum is subtracted first. The inputs include +-1000 so that an unstable sigmoid shows too;
each wrong helper is named with its inputs, the expected values and the student's. The helpers
are the template's own (given to students), so the grader's copy in ``graders.numerics`` is
the yardstick, in the grader and in the student kit alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from graders.numerics import numpy_mlp as mlp
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q4_backprop.checks.shared import RTOL, close_to, shown

HELPER_ATOL = 1e-12


@dataclass(frozen=True, kw_only=True)
class Part:
    """One separately scored piece of a check."""

    weight: float
    ok: bool
    message: str
    hint: str = ""


def _helper_missing(ctx: CheckContext, name: str) -> str:
    return f"{name}: could not be checked: {ctx.why_missing(f'helpers[{name}]')}"


def _sigmoid_part(ctx: CheckContext, found: Mapping[str, np.ndarray]) -> Part:
    z = ctx.inputs.arrays["z"]
    if "sigmoid" not in found:
        return Part(weight=0.25, ok=False, message=_helper_missing(ctx, "sigmoid"))
    expected = mlp.sigmoid(z)
    if close_to(found["sigmoid"], expected, rtol=RTOL, atol=HELPER_ATOL):
        return Part(weight=0.25, ok=True, message="sigmoid is correct, including at +-1000")
    return Part(
        weight=0.25,
        ok=False,
        message=f"sigmoid({shown(z)}) should be {shown(expected)}, got {shown(found['sigmoid'])}",
        hint="sigmoid(x) = 1 / (1 + exp(-x)), element-wise; keep the given stable version.",
    )


def _dsigmoid_part(ctx: CheckContext, found: Mapping[str, np.ndarray]) -> Part:
    z = ctx.inputs.arrays["z"]
    if "dsigmoid" not in found:
        return Part(weight=0.25, ok=False, message=_helper_missing(ctx, "dsigmoid"))
    expected = mlp.dsigmoid(z)
    got = found["dsigmoid"]
    if close_to(got, expected, rtol=RTOL, atol=HELPER_ATOL):
        return Part(weight=0.25, ok=True, message="dsigmoid is correct")
    if close_to(got, z * (1 - z), rtol=RTOL, atol=HELPER_ATOL):
        return Part(
            weight=0.25,
            ok=False,
            message=(
                "dsigmoid(x) computes x * (1 - x): that is the derivative only when x is already "
                "the activation sigmoid(z); dsigmoid takes the pre-activation z"
            ),
            hint="Keep the given dsigmoid(x) = sigmoid(x) * (1 - sigmoid(x)).",
        )
    return Part(
        weight=0.25,
        ok=False,
        message=f"dsigmoid({shown(z)}) should be {shown(expected)}, got {shown(got)}",
        hint="dsigmoid(x) = sigmoid(x) * (1 - sigmoid(x)).",
    )


def _softmax_parts(ctx: CheckContext, found: Mapping[str, np.ndarray]) -> list[Part]:
    rows = ctx.inputs.arrays["softmax_in"]
    if "softmax" not in found:
        missing = _helper_missing(ctx, "softmax")
        return [
            Part(weight=0.25, ok=False, message=missing),
            Part(weight=0.25, ok=False, message=""),
        ]
    got = found["softmax"]
    if got.shape != rows.shape:
        message = f"softmax of a vector of {rows.shape[1]} values should return {rows.shape[1]} "
        message += f"probabilities, got shape {got.shape[1:]}"
        return [
            Part(weight=0.25, ok=False, message=message),
            Part(weight=0.25, ok=False, message=""),
        ]
    small, large = mlp.softmax(rows[0]), mlp.softmax(rows[1])
    parts = []
    if close_to(got[0], small, rtol=RTOL, atol=HELPER_ATOL):
        parts.append(Part(weight=0.25, ok=True, message="softmax is correct"))
    else:
        parts.append(
            Part(
                weight=0.25,
                ok=False,
                message=f"softmax({shown(rows[0])}) should be {shown(small)}, got {shown(got[0])}",
                hint="softmax(x) = exp(x) / sum(exp(x)), over the vector's entries.",
            )
        )
    if close_to(got[1], large, rtol=RTOL, atol=HELPER_ATOL):
        parts.append(Part(weight=0.25, ok=True, message="stable for inputs near +900"))
    elif not np.all(np.isfinite(got[1])):
        parts.append(
            Part(
                weight=0.25,
                ok=False,
                message="softmax of inputs near +900 gave NaN/inf: exp(900) overflows",
                hint="Subtract the maximum before exponentiating: y = exp(x - x.max()).",
            )
        )
    else:
        parts.append(
            Part(
                weight=0.25,
                ok=False,
                message=(
                    f"softmax of inputs near +900 should be {shown(large)}, got {shown(got[1])}"
                ),
                hint="Subtract the maximum before exponentiating: y = exp(x - x.max()).",
            )
        )
    return parts


def _combine(parts: Sequence[Part], all_ok: str) -> Outcome:
    fraction = sum(p.weight for p in parts if p.ok)
    failed = [p for p in parts if not p.ok and p.message]
    if not failed:
        return Outcome(fraction=fraction, message=all_ok)
    return Outcome(
        fraction=fraction,
        message="; ".join(p.message for p in failed),
        hint=" ".join(dict.fromkeys(p.hint for p in failed if p.hint)),
    )


@check("q4.helpers", "sigmoid, dsigmoid and a numerically stable softmax")
def helpers(ctx: CheckContext) -> Outcome:
    """A quarter each: sigmoid, dsigmoid, softmax, and softmax on inputs near +900."""
    found = ctx.npz("helpers") or {}
    parts = [_sigmoid_part(ctx, found), _dsigmoid_part(ctx, found), *_softmax_parts(ctx, found)]
    return _combine(parts, "sigmoid, dsigmoid and softmax are correct (softmax stable at +900)")
