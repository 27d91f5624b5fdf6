"""Name what a student's forward pass does when it is not the reference's.

The probe loaded the grader's weights into the student's model and ran it on a few real test
images. If those outputs are not the reference logits, a bare "outputs differ" teaches nothing;
here the grader replays the same weights through every plausible variant (another activation or
none after each hidden layer, a softmax, log_softmax or ReLU after the output layer) and
reports the variant that reproduces the student's numbers, e.g. "returns log-probabilities".
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from graders.render.numbers import number

FloatArray = NDArray[np.float64]
Transform = Callable[[FloatArray], FloatArray]

RTOL = 1e-3
"""Float32 forward passes of the same weights in another order agree to about 1e-6; a wrong
activation or output transform moves the outputs by far more than 1e-3 of their scale."""


def log_softmax(x: FloatArray) -> FloatArray:
    shifted = x - x.max(axis=1, keepdims=True)
    result: FloatArray = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result


def softmax(x: FloatArray) -> FloatArray:
    return np.exp(log_softmax(x))


def logsumexp(x: FloatArray) -> FloatArray:
    peak = x.max(axis=1)
    result: FloatArray = peak + np.log(np.exp(x - peak[:, None]).sum(axis=1))
    return result


HIDDEN: Mapping[str, Transform] = {
    "ReLU": lambda x: np.maximum(x, 0.0),
    "no activation": lambda x: x,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "LeakyReLU": lambda x: np.where(x > 0, x, 0.01 * x),
}
OUTPUT: Mapping[str, Transform] = {
    "logits": lambda x: x,
    "log_softmax": log_softmax,
    "softmax": softmax,
    "ReLU": lambda x: np.maximum(x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def close(found: FloatArray, expected: FloatArray) -> bool:
    """Equal up to float32 noise, relative to the size of the expected outputs."""
    if found.shape != expected.shape or not np.all(np.isfinite(found)):
        return False
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    return bool(np.allclose(found, expected, rtol=RTOL, atol=RTOL * scale))


@dataclass(frozen=True, kw_only=True)
class Variant:
    hidden: tuple[str, ...]
    """The activation after each hidden layer, by name (keys of ``HIDDEN``)."""
    output: str
    """What follows the output layer (a key of ``OUTPUT``)."""


def forward_from_first(
    first: FloatArray, params: Sequence[tuple[FloatArray, FloatArray]], variant: Variant
) -> FloatArray:
    """The MLP from the first layer's pre-activation on (shared by all variants: it is most of
    the work), with torch's (out, in) weight layout, in float64, as ``variant`` says."""
    x = first
    for i, (w, b) in enumerate(params[1:], start=1):
        x = HIDDEN[variant.hidden[i - 1]](x) @ w.T + b
    return OUTPUT[variant.output](x)


def matching_variant(
    found: FloatArray, images: FloatArray, params: Sequence[tuple[FloatArray, FloatArray]]
) -> Variant | None:
    """The first variant (fewest departures from the reference first) that gives ``found``."""
    as64 = [(w.astype(np.float64), b.astype(np.float64)) for w, b in params]
    first = images.reshape(len(images), -1).astype(np.float64) @ as64[0][0].T + as64[0][1]
    candidates = [
        Variant(hidden=hidden, output=output)
        for hidden in itertools.product(HIDDEN, repeat=len(params) - 1)
        for output in OUTPUT
    ]
    candidates.sort(key=lambda v: sum(h != "ReLU" for h in v.hidden) + (v.output != "logits"))
    with np.errstate(over="ignore"):  # sigmoid of large negatives: exp overflows to inf -> 0
        for variant in candidates[1:]:  # the first is the reference itself
            if close(found, forward_from_first(first, as64, variant)):
                return variant
    return None


def describe_variant(variant: Variant, sizes: Sequence[int]) -> str:
    """What the student's forward does, in words, for the architecture message."""
    said: list[str] = []
    for i, act in enumerate(variant.hidden):
        if act == "ReLU":
            continue
        layer = f"hidden layer {i + 1} ({sizes[i]} -> {sizes[i + 1]})"
        said.append(
            f"has no activation after {layer}"
            if act == "no activation"
            else f"applies {act} instead of ReLU after {layer}"
        )
    output = {
        "logits": "",
        "log_softmax": (
            "returns log-probabilities (log_softmax of the logits: every row's logsumexp is 0), "
            "not logits"
        ),
        "softmax": (
            "returns probabilities (softmax of the logits: every row sums to 1), not logits"
        ),
        "ReLU": "applies a ReLU after the output layer, so negative logits become 0",
        "sigmoid": "applies a sigmoid after the output layer, so it does not return logits",
    }[variant.output]
    if output:
        said.append(output)
    return "; ".join(said)


def describe_outputs(found: FloatArray, expected: FloatArray) -> str:
    """When no variant matches: what the rows look like, or how far they are from the logits."""
    if np.all(np.abs(logsumexp(found)) < 1e-3):
        return (
            "returns log-probabilities (every row's logsumexp is 0, as after log_softmax), "
            "not logits"
        )
    if np.all(found >= -1e-6) and np.allclose(found.sum(axis=1), 1.0, atol=1e-3):
        return "returns probabilities (every row sums to 1, as after softmax), not logits"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    worst = float(np.abs(found - expected).max()) / scale
    return (
        f"gives outputs that differ from the reference logits by up to {number(worst, 2)} of their "
        "scale (the grader tried every combination of ReLU, no activation, sigmoid, tanh and "
        "LeakyReLU in the hidden layers and of softmax/log_softmax at the output)"
    )
