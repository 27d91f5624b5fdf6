"""The Q3 network as the grader measures it: given weights in a ReLU MLP, in numpy.

A student's trained weights are measured by the grader itself, never by the student's forward
pass: ``fitted_pairs`` reads the ``(weight, bias)`` pairs of 784-256-128-64-10 out of a
``state_dict`` (by position, whatever the layers are called), and ``logits`` and ``evaluate``
run any chain of pairs (Linear layers, ReLU between them, logits out) on images in batches.
Measuring given weights is no answer to Q3; the module the student writes, its initialisation
and its training loop are, and stay in ``reference/q3_mlp.py``.

numpy, not torch: the same float32 arithmetic torch's ``Linear`` does (``x @ W.T + b``), to
about 1e-6 of the outputs' scale, without importing torch into the grader. That import was
most of the cost of Q3's checks (about 1.5 s of one core and 250 MB and more, held beside the
student's own torch in Gradescope's 768 MB); the measure itself is a few matrix products.
``graders.numerics.torch_mlp`` is the torch side the reference trains with; a test holds the
two to the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

LAYERS: Final = (784, 256, 128, 64, 10)
"""The assignment's network: 784 inputs, ReLU layers of 256, 128 and 64, 10 logits."""
N_INPUTS: Final = LAYERS[0]
N_CLASSES: Final = LAYERS[-1]
EVAL_BATCH: Final = 4096
"""Images per forward pass: the whole 10,000-image test set in three, so that no more than
one batch of float32 pixels (13 MB) is held beside the stored uint8 images."""
BATCH_BYTES: Final = 64 << 20
"""At most this much for one batch's widest layer: a student's chain of its own sizes (the
fallback measure) may hold a layer far wider than the assignment's 256, and 4,096 rows of a
100,000-wide layer would be 1.6 GB of the grader's memory."""

Float32Array = NDArray[np.float32]
Pairs = Sequence[tuple[Float32Array, Float32Array]]
"""``(weight, bias)`` per Linear layer, torch's ``(out, in)`` weight layout, float32."""


def layer_shapes(sizes: Sequence[int] = LAYERS) -> list[tuple[int, ...]]:
    """The shapes a ``state_dict`` of the MLP has, in order (torch's (out, in) weight layout)."""
    shapes: list[tuple[int, ...]] = []
    for n_in, n_out in pairwise(sizes):
        shapes += [(n_out, n_in), (n_out,)]
    return shapes


def fitted_pairs(state: Mapping[str, ArrayLike], sizes: Sequence[int] = LAYERS) -> Pairs:
    """The ``(weight, bias)`` pairs of an MLP of ``sizes`` in ``state``, by position, as
    float32.

    A student's module names its layers as it likes; torch's ``state_dict`` lists parameters in
    registration order (the grader's ``used_order_state``: in the order forward applies them),
    so the pairs are the arrays of the right shapes, in order; others (a buffer, a scale) are
    passed over. Raises ValueError, naming the shapes found, when they do not fit.
    """
    shapes = layer_shapes(sizes)
    found: list[Float32Array] = []
    for value in state.values():
        if len(found) < len(shapes) and tuple(np.shape(value)) == shapes[len(found)]:
            found.append(np.asarray(value, dtype=np.float32))
    if [a.shape for a in found] != shapes:
        got = [tuple(np.shape(v)) for v in state.values()]
        chain = "-".join(str(n) for n in sizes)
        raise ValueError(f"weights do not fit {chain}: expected shapes {shapes}, got {got}")
    return list(zip(found[0::2], found[1::2], strict=True))


def as_pairs(pairs: Sequence[tuple[ArrayLike, ArrayLike]]) -> Pairs:
    """Any chain of ``(weight, bias)`` pairs as float32 arrays; ValueError when they do not
    connect (each weight ``(out, in)``, its bias ``(out,)``, ``in`` the previous ``out``)."""
    chain = [(np.asarray(w, dtype=np.float32), np.asarray(b, dtype=np.float32)) for w, b in pairs]
    for i, (w, b) in enumerate(chain):
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(f"layer {i}: weight {w.shape} does not fit bias {b.shape}")
        if i and w.shape[1] != chain[i - 1][0].shape[0]:
            raise ValueError(
                f"layer {i}: expects {w.shape[1]} inputs, the layer before gives "
                f"{chain[i - 1][0].shape[0]}"
            )
    if not chain:
        raise ValueError("no layers")
    return chain


def with_input_normalization(pairs: Pairs, shift: float, scale: float) -> Pairs:
    """The chain that computes on ``(x - shift) / scale`` what ``pairs`` computes on ``x``
    (a notebook's ``Normalize``, folded into the first layer: ``W/scale`` and
    ``b - shift/scale * W.sum(1)``, in float64 before float32), so that the images and every
    batch of the measure stay the grader's own pixels in [0, 1]."""
    (weight, bias), *rest = pairs
    wide = weight.astype(np.float64)
    folded = (wide / scale).astype(np.float32)
    moved = (bias.astype(np.float64) - shift / scale * wide.sum(axis=1)).astype(np.float32)
    return [(folded, moved), *rest]


def _batches(images: ArrayLike, rows: int) -> Iterator[Float32Array]:
    """Float32 pixels in [0, 1], flattened, ``rows`` images at a time: uint8 images (as
    ``load_split`` gives them) are scaled here, as ``ToTensor`` does (a float32 division)."""
    array = np.asarray(images)
    if array.shape[-1] != N_INPUTS and tuple(array.shape[-2:]) != (28, 28):
        raise ValueError(
            f"expected images of shape (N, 784) or (N, [1,] 28, 28), got {tuple(array.shape)}"
        )
    flat = array.reshape(-1, N_INPUTS)
    for start in range(0, len(flat), rows):
        chunk = flat[start : start + rows]
        if chunk.dtype == np.uint8:
            yield chunk.astype(np.float32) / np.float32(255.0)
        else:
            yield chunk.astype(np.float32, copy=False)


def _forward(pairs: Pairs, x: Float32Array) -> Float32Array:
    """Linear layers, ReLU between them (NaN and infinity from a diverged training go through
    as IEEE arithmetic takes them, as in torch; ``logits`` silences numpy's warnings)."""
    for position, (weight, bias) in enumerate(pairs):
        x = x @ weight.T
        x += bias
        if position < len(pairs) - 1:
            np.maximum(x, 0.0, out=x)
    return x


def logits(pairs: Sequence[tuple[ArrayLike, ArrayLike]], images: ArrayLike) -> Float32Array:
    """The network's outputs (float32) for images of shape (N, 784) or (N, [1,] 28, 28)."""
    chain = as_pairs(pairs)
    widest = max(N_INPUTS, *(w.shape[0] for w, _ in chain))
    rows = max(1, min(EVAL_BATCH, BATCH_BYTES // (4 * widest)))
    with np.errstate(all="ignore"):
        out = [_forward(chain, x) for x in _batches(images, rows)]
    n_out = chain[-1][0].shape[0]
    return np.concatenate(out) if out else np.empty((0, n_out), dtype=np.float32)


def evaluate(
    pairs: Sequence[tuple[ArrayLike, ArrayLike]], images: ArrayLike, labels: ArrayLike
) -> tuple[float, float, Float32Array]:
    """Per-sample mean cross-entropy, accuracy and the logits (the loss summed in float64)."""
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    out = logits(pairs, images)
    if len(out) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as images (and some), got {len(out)} and {len(y)}")
    if y.min() < 0 or y.max() >= out.shape[1]:
        raise ValueError(f"labels must be class indices below {out.shape[1]}")
    z = out.astype(np.float64)
    with np.errstate(all="ignore"):  # a diverged model's inf logits: a NaN loss, as in torch
        peak = z.max(axis=1)
        log_sum = peak + np.log(np.exp(z - peak[:, None]).sum(axis=1))
        loss = float(np.mean(log_sum - z[np.arange(len(y)), y]))
    accuracy = float(np.mean(out.argmax(axis=1) == y))
    return loss, accuracy, out
