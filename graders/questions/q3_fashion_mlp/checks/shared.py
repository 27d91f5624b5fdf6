"""What several of Q3's checks read alike: the assignment's layer sizes, the probe's
explanation of a missing artifact, the notebook's settings, and the histories as plain floats.

Kept apart so that each check module holds one check's logic and no copy of these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from graders.numerics import relu_mlp
from graders.questions.api import CheckContext
from graders.questions.common import first_cell_error

FloatArray = NDArray[np.float64]

LAYERS = relu_mlp.LAYERS
"""The assignment's architecture, as the grader measures it (784-256-128-64-10)."""
N_CLASSES = relu_mlp.N_CLASSES
DATASET = "FashionMNIST"
HISTORY_NAMES = ("train_loss_history", "test_loss_history")


def grader_weights(arrays: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) pairs ``make_inputs`` drew for the architecture check (``ref.w0``,
    ``ref.b0``, ...; torch's (out, in) layout): loaded into the student's model by the probe."""
    return [(arrays[f"ref.w{i}"], arrays[f"ref.b{i}"]) for i in range(len(LAYERS) - 1)]


def failing_cell(ctx: CheckContext) -> str:
    """The first failing cell in words; for the seed's hard-coded ``.cuda()``, what to do."""
    return first_cell_error(ctx, gpu_advice=True)


def why(ctx: CheckContext, step: str) -> str:
    """The probe's explanation, plus the first failing cell: usually the actual cause."""
    text = ctx.why_missing(step)
    errors = ctx.run.execution.cell_errors
    if not errors:
        return text
    if errors[0].evalue and errors[0].evalue[:80] in text:  # the probe quoted it already
        return text
    return f"{text} ({failing_cell(ctx)})"


def parameter(ctx: CheckContext, name: str, default: int) -> int:
    """An integer setting: the grader's injected value, else the notebook's own, else default."""
    value = ctx.run.execution.parameters.get(name)
    if value is None:
        histories = ctx.json("histories")
        value = histories.get(name) if isinstance(histories, dict) else None
    if isinstance(value, int | float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return default
    return default


def injected(ctx: CheckContext, name: str) -> object:
    """A setting the grader injected for this run (the profile's parameters), or None."""
    return ctx.run.execution.parameters.get(name)


def real(value: object) -> float | None:
    """A finite number from the kernel's JSON (never a bool), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def count(value: object) -> int | None:
    """A non-negative integer from the kernel's JSON (never a bool), or None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def text_of(value: object, limit: int = 80) -> str | None:
    """A short string from the kernel's JSON, or None."""
    return value[:limit] if isinstance(value, str) else None


@dataclass(frozen=True, kw_only=True)
class LinearLayer:
    """One Linear layer as the probe saw it: its attribute path, sizes and bias."""

    name: str
    n_in: int
    n_out: int
    bias: bool


def linear_layers(summary: object, key: str = "linear_layers") -> list[LinearLayer] | None:
    """The summary's Linear layers (``linear_layers``: in the order forward applies them, one
    entry per application), validated: the kernel wrote them, so a malformed entry makes the
    whole list None rather than a crash."""
    entries = summary.get(key) if isinstance(summary, dict) else None
    if not isinstance(entries, list):
        return None
    layers = []
    for entry in entries[:100]:
        if not isinstance(entry, dict):
            return None
        name = text_of(entry.get("name"), 200)
        n_in, n_out = count(entry.get("in")), count(entry.get("out"))
        if name is None or n_in is None or n_out is None:
            return None
        layers.append(
            LinearLayer(name=name, n_in=n_in, n_out=n_out, bias=entry.get("bias", True) is True)
        )
    return layers


def used_order_state(ctx: CheckContext) -> dict[str, np.ndarray] | None:
    """The trained weights, the Linear layers' tensors in the order forward applies them and
    named by position (``layer0.weight``, ``layer0.bias``, ...), so that the grader's
    measurement loads them the way the model uses them, whatever order ``__init__`` created
    them in (``state_dict`` keeps that order) and whatever their names. A layer applied twice
    is taken once, at its first use. Without a usable order (no summary, a name the state does
    not hold) the state as stored."""
    state = ctx.npz("state_dict")
    if state is None:
        return None
    layers = linear_layers(ctx.json("model_summary"))
    if not layers:
        return state
    ordered: dict[str, np.ndarray] = {}
    seen: list[str] = []
    for layer in layers:
        if layer.name in seen:
            continue
        seen.append(layer.name)
        position = len(seen) - 1
        weight = state.get(f"{layer.name}.weight" if layer.name else "weight")
        if weight is None:
            return state
        ordered[f"layer{position}.weight"] = weight
        bias = state.get(f"{layer.name}.bias" if layer.name else "bias")
        if bias is not None:
            ordered[f"layer{position}.bias"] = bias
    return ordered


def plain(value: float | None) -> float | None:
    """A number for ``details`` (result.json must stay strict JSON: no NaN)."""
    return value if value is not None and math.isfinite(value) else None


def floats(values: object) -> list[float] | None:
    """A history as floats (the probe writes non-finite numbers as strings), or None."""
    if not isinstance(values, list):
        return None
    out: list[float] = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def shown_name(names: object, canonical: str) -> str:
    """The name the notebook used for a value (``train_losses``), or the assignment's."""
    found = names.get(canonical) if isinstance(names, dict) else None
    if isinstance(found, str) and re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_]*(\['[A-Za-z0-9_]+'\])?", found
    ):
        return found
    return canonical
