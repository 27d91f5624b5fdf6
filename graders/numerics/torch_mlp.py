"""The Q3 network's torch side, for the reference: images and weights as tensors, and the
reference's measure of a torch model during training (its per-epoch test loss, on its device).

The grader measures a student's weights with ``graders.numerics.relu_mlp`` (numpy: no torch in
the grader); this module builds on it (the layer sizes, the pairs read out of a
``state_dict``), and a test holds ``evaluate`` here and ``relu_mlp.evaluate`` to the same
numbers for the same weights.

torch is imported here at the top: callers import this module late (a grading, or a student's
self-check, should not pay seconds and ~650 MB for it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from graders.numerics import relu_mlp
from graders.numerics.relu_mlp import EVAL_BATCH, LAYERS, N_CLASSES, N_INPUTS, layer_shapes

__all__ = [
    "LAYERS",
    "N_CLASSES",
    "N_INPUTS",
    "as_images",
    "class_probabilities",
    "evaluate",
    "fitted_pairs",
    "flatten_images",
    "layer_shapes",
    "logits",
]


def flatten_images(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28), (N, 28, 28) or (N, 784) -> (N, 784); anything else is a loud error.

    The course's ``x.view(-1, 784)`` would silently regroup a wrongly shaped batch.
    """
    if x.shape[-1] == N_INPUTS or tuple(x.shape[-2:]) == (28, 28):
        return x.reshape(-1, N_INPUTS)
    raise ValueError(f"expected images of shape (N, 784) or (N, [1,] 28, 28), got {tuple(x.shape)}")


def _as_tensor(value: ArrayLike) -> torch.Tensor:
    """``torch.from_numpy``, copying a read-only array first (the grader hands read-only
    arrays around; torch would warn that it cannot honour that)."""
    array = np.asarray(value)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def as_images(images: ArrayLike | torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1]; uint8 images (as ``load_split`` gives them) are scaled here."""
    t = images if isinstance(images, torch.Tensor) else _as_tensor(images)
    if t.dtype == torch.uint8:
        return t.to(torch.float32) / 255.0
    return t.to(torch.float32)


def fitted_pairs(
    state: Mapping[str, ArrayLike | torch.Tensor], sizes: Sequence[int] = LAYERS
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``relu_mlp.fitted_pairs`` (by position; ValueError naming the shapes when they do not
    fit) for a state that may hold tensors, as float32 CPU tensors."""
    arrays = {
        k: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v for k, v in state.items()
    }
    return [
        (torch.from_numpy(np.array(w)), torch.from_numpy(np.array(b)))
        for w, b in relu_mlp.fitted_pairs(arrays, sizes)
    ]


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
    y = labels if isinstance(labels, torch.Tensor) else _as_tensor(labels)
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
