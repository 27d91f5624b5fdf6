"""Q3 reference: the 784-256-128-64-10 ReLU MLP on Fashion-MNIST, trained with plain SGD.

The grader uses this module three ways: to train the reference (calibrating thresholds,
docs/profiles.md), to load a *student's* weights into a known architecture and measure
their test accuracy itself (a printed number is never trusted), and to compute class
probabilities for the images it picks.

Training preloads each split as one float tensor in [0, 1] instead of the course's
``DataLoader(ToTensor())``: the same values, about 3x faster per epoch on CPU, and no worker
processes to fight over the cores that parallel grading needs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Final

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from graders.numerics.datasets import load_scaled

N_INPUTS: Final = 28 * 28
HIDDEN: Final = (256, 128, 64)
N_CLASSES: Final = 10
N_PARAMETERS: Final = 242_762
SEED_FINAL_ACCURACY: Final = 0.8613
"""The seed notebook's test accuracy after 25 epochs (0.859-0.868 over 5 seeds; see
docs/assignment.md)."""

_EVAL_BATCH = 4096


class FashionMLP(torch.nn.Module):
    """Three ReLU hidden layers, logits out (``CrossEntropyLoss`` applies the softmax)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(N_INPUTS, HIDDEN[0])
        self.fc2 = torch.nn.Linear(HIDDEN[0], HIDDEN[1])
        self.fc3 = torch.nn.Linear(HIDDEN[1], HIDDEN[2])
        self.out = torch.nn.Linear(HIDDEN[2], N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = flatten_images(x)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        x = torch.relu(self.fc3(x))
        logits: torch.Tensor = self.out(x)
        return logits


def flatten_images(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, 28, 28), (N, 28, 28) or (N, 784) -> (N, 784); anything else is a loud error.

    The course's ``x.view(-1, 784)`` would silently regroup a wrongly shaped batch.
    """
    if x.shape[-1] == N_INPUTS or tuple(x.shape[-2:]) == (28, 28):
        return x.reshape(-1, N_INPUTS)
    raise ValueError(f"expected images of shape (N, 784) or (N, [1,] 28, 28), got {tuple(x.shape)}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The assignment's settings; tests and calibration shrink epochs and data through here."""

    epochs: int = 25
    """The seed's choice, which reached 0.8613."""
    batch_size: int = 64
    lr: float = 0.01
    seed: int = 0
    """Seeds both the weight initialisation and the per-epoch shuffling."""
    device: str = "auto"
    """"auto" picks CUDA when visible, else the CPU; or any torch device string."""
    train_limit: int | None = None
    """Train on the first N images only (None = all 60,000)."""
    test_limit: int | None = None
    """Test on the first N images only (None = all 10,000)."""
    threads: int | None = None
    """torch's intra-op threads while training; None leaves torch's default (docs/assignment.md:
    the default made one step 30x slower with two busy processes)."""


@dataclass(frozen=True, kw_only=True)
class EpochRecord:
    epoch: int
    """0-based, as the seed prints it."""
    train_loss: float
    """Mean of the batch losses, as the course computes it."""
    test_loss: float
    """Mean over test *samples* (the course's mean over batches overweights the last batch)."""
    test_accuracy: float
    seconds: float
    """Wall time of the epoch, training and test evaluation together."""


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    config: TrainConfig
    history: tuple[EpochRecord, ...]
    state: dict[str, NDArray[np.float32]]
    """The final ``state_dict`` as numpy arrays: plain data a probe or a check can save."""
    device: str
    """The device actually used ("cpu", "cuda", ...), after resolving "auto"."""

    @property
    def train_losses(self) -> list[float]:
        return [r.train_loss for r in self.history]

    @property
    def test_losses(self) -> list[float]:
        return [r.test_loss for r in self.history]

    @property
    def test_accuracies(self) -> list[float]:
        return [r.test_accuracy for r in self.history]

    @property
    def final_accuracy(self) -> float:
        return self.history[-1].test_accuracy


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_model(seed: int) -> FashionMLP:
    """Initialise from ``seed`` without disturbing the caller's global RNG state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FashionMLP()


def model_from_state(state: Mapping[str, ArrayLike | torch.Tensor]) -> FashionMLP:
    """A ``FashionMLP`` holding someone else's weights.

    A student's module names its layers as it likes, so keys that are not ours are matched by
    position instead, provided every shape agrees in order (torch's ``state_dict`` lists
    parameters in registration order, i.e. layer by layer for any sequential MLP).
    """
    model = build_model(0)
    ours = list(model.state_dict())
    if set(state) == set(ours):
        tensors = [_as_float_tensor(state[k]) for k in ours]
    else:
        tensors = _in_order(state, layer_shapes())
    got = [tuple(t.shape) for t in tensors]
    if got != layer_shapes():
        shapes = [tuple(np.shape(v)) for v in state.values()]
        raise ValueError(
            f"weights do not fit 784-256-128-64-10: expected shapes {layer_shapes()}, got {shapes}"
        )
    model.load_state_dict(dict(zip(ours, tensors, strict=True)))
    return model


def _in_order(
    state: Mapping[str, ArrayLike | torch.Tensor], shapes: list[tuple[int, ...]]
) -> list[torch.Tensor]:
    """The tensors of ``state`` with exactly ``shapes``, in order; others (a buffer, a scale)
    are passed over: what is measured is the layers' weights, whatever else a module keeps."""
    found: list[torch.Tensor] = []
    for value in state.values():
        if len(found) < len(shapes) and tuple(np.shape(value)) == shapes[len(found)]:
            found.append(_as_float_tensor(value))
    return found


def layer_shapes() -> list[tuple[int, ...]]:
    """The shapes a ``state_dict`` must have, in order (torch's (out, in) weight layout)."""
    sizes = (N_INPUTS, *HIDDEN, N_CLASSES)
    shapes: list[tuple[int, ...]] = []
    for n_in, n_out in pairwise(sizes):
        shapes += [(n_out, n_in), (n_out,)]
    return shapes


def _tensor(value: ArrayLike) -> torch.Tensor:
    """``torch.from_numpy``, copying a read-only array first (the grader hands its checks
    read-only arrays; torch would warn that it cannot honour that)."""
    array = np.asarray(value)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _as_float_tensor(value: ArrayLike | torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float32)
    return _tensor(value).to(torch.float32)


def state_to_numpy(model: torch.nn.Module) -> dict[str, NDArray[np.float32]]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _as_model(model_or_state: torch.nn.Module | Mapping[str, ArrayLike]) -> torch.nn.Module:
    if isinstance(model_or_state, torch.nn.Module):
        return model_or_state
    return model_from_state(model_or_state)


def _as_images(images: ArrayLike | torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1]; uint8 images (as ``load_split`` gives them) are scaled here."""
    t = images if isinstance(images, torch.Tensor) else _tensor(images)
    if t.dtype == torch.uint8:
        return t.to(torch.float32) / 255.0
    return t.to(torch.float32)


@torch.no_grad()
def _logits(model: torch.nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        chunks = [model(c.to(device)) for c in torch.split(images, _EVAL_BATCH)]
    finally:
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, N_CLASSES, device=device)


def evaluate(
    model_or_state: torch.nn.Module | Mapping[str, ArrayLike],
    images: ArrayLike | torch.Tensor,
    labels: ArrayLike | torch.Tensor,
    *,
    device: str = "cpu",
) -> tuple[float, float, NDArray[np.float32]]:
    """Per-sample mean cross-entropy, accuracy and the logits, for any weights that fit.

    The model is left on ``device`` when one is passed in (moving it is the caller's choice).
    """
    dev = resolve_device(device)
    model = _as_model(model_or_state).to(dev)
    x = _as_images(images)
    y = labels if isinstance(labels, torch.Tensor) else _tensor(labels)
    y = y.to(dev, torch.int64)
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as images (and some), got {len(x)} and {len(y)}")
    logits = _logits(model, x, dev)
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="sum").item() / len(y)
    accuracy = (logits.argmax(dim=1) == y).sum().item() / len(y)
    return loss, accuracy, logits.cpu().numpy()


def class_probabilities(
    model: torch.nn.Module | Mapping[str, ArrayLike], images: ArrayLike | torch.Tensor
) -> NDArray[np.float64]:
    """Softmax rows for the images the grader picked (computed in float64: rows sum to 1)."""
    m = _as_model(model)
    device = next(m.parameters()).device
    logits = _logits(m, _as_images(images), device).double()
    return torch.softmax(logits, dim=1).cpu().numpy()


def _train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One shuffled pass; the loss is summed on the device so a GPU never waits per batch."""
    model.train()
    order = torch.randperm(len(y), generator=generator).to(x.device)
    total = torch.zeros((), device=x.device)
    batches = 0
    for idx in torch.split(order, batch_size):
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        torch.autograd.backward(loss)  # what loss.backward() calls (which is unannotated)
        optimizer.step()
        total += loss.detach()
        batches += 1
    return total.item() / batches


def _load(
    data_root: Path | str, train: bool, limit: int | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_scaled(data_root, "FashionMNIST", train=train, limit=limit)
    return torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)


def train(
    config: TrainConfig,
    data_root: Path | str,
    *,
    progress: Callable[[int, EpochRecord], None] | None = None,
) -> TrainResult:
    """The assignment's experiment, one record per epoch.

    On the CPU a seed fixes every number given the same thread count; a different count changes
    the order of float reductions, hence the last digits (0.6803 vs 0.6804 after 2 epochs).
    """
    device = resolve_device(config.device)
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        x_train, y_train = _load(data_root, True, config.train_limit, device)
        x_test, y_test = _load(data_root, False, config.test_limit, device)
        model = build_model(config.seed).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
        generator = torch.Generator().manual_seed(config.seed)
        history: list[EpochRecord] = []
        for epoch in range(config.epochs):
            start = time.perf_counter()
            train_loss = _train_epoch(
                model, optimizer, x_train, y_train, config.batch_size, generator
            )
            test_loss, accuracy, _ = evaluate(model, x_test, y_test, device=str(device))
            record = EpochRecord(
                epoch=epoch,
                train_loss=train_loss,
                test_loss=test_loss,
                test_accuracy=accuracy,
                seconds=time.perf_counter() - start,
            )
            history.append(record)
            if progress is not None:
                progress(epoch, record)
    finally:
        torch.set_num_threads(previous_threads)
    return TrainResult(
        config=config, history=tuple(history), state=state_to_numpy(model), device=str(device)
    )


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
