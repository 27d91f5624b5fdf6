"""The Q3 network as the grader measures it: given weights in a ReLU MLP, in torch.

A student's trained weights are measured by the grader itself, never by the student's forward
pass: ``fitted_pairs`` reads the ``(weight, bias)`` pairs of 784-256-128-64-10 out of a
``state_dict`` (by position, whatever the layers are called), ``chain_model`` puts any chain of
pairs into Linear layers with ReLU between them, and ``evaluate`` / ``class_probabilities``
measure a model on images in large batches. Measuring given weights is no answer to Q3; the
module the student writes, its initialisation and its training loop are, and stay in
``reference/q3_mlp.py``, which builds on this module.

torch is imported here at the top: callers import this module late (a grading of another
question, or a student's self-check of one, should not pay seconds and ~650 MB for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Final

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

LAYERS: Final = (784, 256, 128, 64, 10)
"""The assignment's network: 784 inputs, ReLU layers of 256, 128 and 64, 10 logits."""
N_INPUTS: Final = LAYERS[0]
N_CLASSES: Final = LAYERS[-1]
EVAL_BATCH: Final = 4096
"""Images per forward pass when measuring: the whole 10,000-image test set in three."""

Pair = tuple[ArrayLike | torch.Tensor, ArrayLike | torch.Tensor]


def layer_shapes(sizes: Sequence[int] = LAYERS) -> list[tuple[int, ...]]:
    """The shapes a ``state_dict`` of the MLP has, in order (torch's (out, in) weight layout)."""
    shapes: list[tuple[int, ...]] = []
    for n_in, n_out in pairwise(sizes):
        shapes += [(n_out, n_in), (n_out,)]
    return shapes


def flatten_images(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28), (N, 28, 28) or (N, 784) -> (N, 784); anything else is a loud error.

    The course's ``x.view(-1, 784)`` would silently regroup a wrongly shaped batch.
    """
    if x.shape[-1] == N_INPUTS or tuple(x.shape[-2:]) == (28, 28):
        return x.reshape(-1, N_INPUTS)
    raise ValueError(f"expected images of shape (N, 784) or (N, [1,] 28, 28), got {tuple(x.shape)}")


def as_tensor(value: ArrayLike) -> torch.Tensor:
    """``torch.from_numpy``, copying a read-only array first (the grader hands its checks
    read-only arrays; torch would warn that it cannot honour that)."""
    array = np.asarray(value)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def as_float_tensor(value: ArrayLike | torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float32)
    return as_tensor(value).to(torch.float32)


def as_images(images: ArrayLike | torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1]; uint8 images (as ``load_split`` gives them) are scaled here."""
    t = images if isinstance(images, torch.Tensor) else as_tensor(images)
    if t.dtype == torch.uint8:
        return t.to(torch.float32) / 255.0
    return t.to(torch.float32)


def tensors_in_order(
    values: Iterable[ArrayLike | torch.Tensor], shapes: Sequence[tuple[int, ...]]
) -> list[torch.Tensor]:
    """The tensors with exactly ``shapes``, in order; others (a buffer, a scale) are passed
    over: what is measured is the layers' weights, whatever else a module keeps."""
    found: list[torch.Tensor] = []
    for value in values:
        if len(found) < len(shapes) and tuple(np.shape(value)) == shapes[len(found)]:
            found.append(as_float_tensor(value))
    return found


def fitted_pairs(
    state: Mapping[str, ArrayLike | torch.Tensor], sizes: Sequence[int] = LAYERS
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``(weight, bias)`` pairs of an MLP of ``sizes`` in ``state``, by position.

    A student's module names its layers as it likes; torch's ``state_dict`` lists parameters in
    registration order (the grader's ``used_order_state``: in the order forward applies them),
    so the pairs are the tensors of the right shapes, in order. Raises ValueError, naming the
    shapes found, when they do not fit.
    """
    shapes = layer_shapes(sizes)
    tensors = tensors_in_order(state.values(), shapes)
    if [tuple(t.shape) for t in tensors] != shapes:
        found = [tuple(np.shape(v)) for v in state.values()]
        chain = "-".join(str(n) for n in sizes)
        raise ValueError(f"weights do not fit {chain}: expected shapes {shapes}, got {found}")
    return list(zip(tensors[0::2], tensors[1::2], strict=True))


def chain_model(pairs: Sequence[Pair]) -> torch.nn.Module:
    """An MLP of the pairs' own sizes: Linear layers holding them, ReLU between, logits out."""
    layers: list[torch.nn.Module] = [torch.nn.Flatten()]
    for position, (weight, bias) in enumerate(pairs):
        w, b = as_float_tensor(weight), as_float_tensor(bias)
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(w)
            linear.bias.copy_(b)
        layers.append(linear)
        if position < len(pairs) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).eval()


@torch.no_grad()
def logits(model: torch.nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The model's outputs in ``EVAL_BATCH`` chunks, in eval mode (its mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        chunks = [model(c.to(device)) for c in torch.split(images, EVAL_BATCH)]
    finally:
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, N_CLASSES, device=device)


def evaluate(
    model: torch.nn.Module,
    images: ArrayLike | torch.Tensor,
    labels: ArrayLike | torch.Tensor,
    *,
    device: torch.device | str = "cpu",
) -> tuple[float, float, NDArray[np.float32]]:
    """Per-sample mean cross-entropy, accuracy and the logits.

    The model is left on ``device`` (moving it is the caller's choice).
    """
    dev = torch.device(device)
    model = model.to(dev)
    x = as_images(images)
    y = labels if isinstance(labels, torch.Tensor) else as_tensor(labels)
    y = y.to(dev, torch.int64)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as images (and some), got {len(x)} and {len(y)}")
    out = logits(model, x, dev)
    loss = torch.nn.functional.cross_entropy(out, y, reduction="sum").item() / len(y)
    accuracy = (out.argmax(dim=1) == y).sum().item() / len(y)
    return loss, accuracy, out.cpu().numpy()


def class_probabilities(
    model: torch.nn.Module, images: ArrayLike | torch.Tensor
) -> NDArray[np.float64]:
    """Softmax rows of the model's outputs (computed in float64: rows sum to 1)."""
    device = next(model.parameters()).device
    out = logits(model, as_images(images), device).double()
    return torch.softmax(out, dim=1).cpu().numpy()
