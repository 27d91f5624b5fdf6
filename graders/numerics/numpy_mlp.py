"""The Q4 network as the grader measures it: a sigmoid MLP on given weights, in numpy.

``Params`` holds weights ``(n_in, n_out)`` and biases ``(n_out,)``; ``forward_batch`` and
``evaluate_dataset`` measure a trained network's test loss and accuracy in one matrix pass.
``sigmoid``, ``dsigmoid`` and ``softmax`` are the template's own helpers (given to students),
written without overflow. Measuring given weights is no answer to Q4; drawing the initial
weights, the per-sample forward pass and its backward pass are, and stay in
``reference/q4_numpy.py``, which builds on this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

LAYER_SIZES: Final = (784, 32, 32, 10)
"""The assignment's network: 784 inputs, two sigmoid layers of 32, a softmax over 10 classes."""

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Params:
    """Weights ``(n_in, n_out)`` and biases ``(n_out,)``, layer by layer, in float64.

    Frozen so the functional API cannot rebind layers behind a caller's back; the arrays
    themselves stay writable because the reference's training loop updates them in place.
    """

    weights: tuple[FloatArray, ...]
    """One matrix per layer, shaped ``(n_in, n_out)`` as in the assignment (not torch's order)."""
    biases: tuple[FloatArray, ...]
    """One vector per layer, shaped ``(n_out,)``."""

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.biases) or not self.weights:
            raise ValueError(
                f"need one bias per weight matrix, got {len(self.weights)} weight matrices "
                f"and {len(self.biases)} bias vectors"
            )
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if w.ndim != 2 or b.shape != (w.shape[1],):
                raise ValueError(f"layer {i}: weight {w.shape} does not fit bias {b.shape}")
            if i and w.shape[0] != self.weights[i - 1].shape[1]:
                raise ValueError(
                    f"layer {i}: expects {w.shape[0]} inputs, "
                    f"previous layer gives {self.weights[i - 1].shape[1]}"
                )

    @classmethod
    def of(cls, weights: Sequence[ArrayLike], biases: Sequence[ArrayLike]) -> Params:
        """Copy arbitrary arrays (a student's lists, an ``object`` array) into float64 params."""
        return cls(
            weights=tuple(np.array(w, dtype=np.float64) for w in weights),
            biases=tuple(np.array(b, dtype=np.float64) for b in biases),
        )

    def copy(self) -> Params:
        return Params.of(self.weights, self.biases)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[0], *(w.shape[1] for w in self.weights))


def sigmoid(x: ArrayLike) -> FloatArray:
    """The course's stable sigmoid, with one ``exp`` instead of two.

    ``exp(-|x|)`` is bitwise the value the course's two branches compute (``exp(-x)`` for
    ``x >= 0``, ``exp(x)`` otherwise), so results are identical; it just never overflows, and it
    halves the cost in the per-sample training loop.
    """
    x = np.clip(x, -500, 500)
    e = np.exp(-np.abs(x))
    out: FloatArray = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return out


def dsigmoid(x: ArrayLike) -> FloatArray:
    s = sigmoid(x)
    return s * (1 - s)


def softmax(x: ArrayLike) -> FloatArray:
    """Max-subtracted softmax over the last axis (for a 1-D input, exactly the course's)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.exp(x - x.max(axis=-1, keepdims=True))
    out: FloatArray = y / y.sum(axis=-1, keepdims=True)
    return out


def forward_batch(params: Params, x: NDArray[np.floating]) -> FloatArray:
    """The output probabilities of every row of ``x`` (N, n_in): one matrix pass per layer."""
    h: NDArray[np.floating] = x
    for w, b in zip(params.weights[:-1], params.biases[:-1], strict=True):
        h = sigmoid(h @ w + b)
    return softmax(h @ params.weights[-1] + params.biases[-1])


def evaluate_dataset(
    params: Params, x: NDArray[np.floating], y: NDArray[np.integer]
) -> tuple[float, int]:
    """Mean test loss and correct count in one matrix pass (0.04 s instead of 0.4 s).

    ``-log(p[y])`` equals the course's ``-sum(one_hot * log(p))`` exactly whenever the latter is
    finite, and argmax breaks ties towards the lower class in both.
    """
    y = np.asarray(y)
    probs = forward_batch(params, np.asarray(x).reshape(len(y), -1))
    losses = -np.log(probs[np.arange(len(y)), y])
    return float(np.mean(losses)), int(np.sum(np.argmax(probs, axis=1) == y))
