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
from pathlib import Path
from typing import Final

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from graders.numerics import torch_mlp
from graders.numerics.datasets import load_scaled
from graders.numerics.torch_mlp import flatten_images, layer_shapes  # noqa: F401 (re-exported)

N_INPUTS: Final = torch_mlp.N_INPUTS
HIDDEN: Final = torch_mlp.LAYERS[1:-1]
N_CLASSES: Final = torch_mlp.N_CLASSES
N_PARAMETERS: Final = 242_762
SEED_FINAL_ACCURACY: Final = 0.8613
"""The seed notebook's test accuracy after 25 epochs (0.859-0.868 over 5 seeds; see
docs/assignment.md)."""


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
        state = {k: state[k] for k in ours}
    tensors = [t for pair in torch_mlp.fitted_pairs(state) for t in pair]
    model.load_state_dict(dict(zip(ours, tensors, strict=True)))
    return model


def state_to_numpy(model: torch.nn.Module) -> dict[str, NDArray[np.float32]]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def _as_model(model_or_state: torch.nn.Module | Mapping[str, ArrayLike]) -> torch.nn.Module:
    if isinstance(model_or_state, torch.nn.Module):
        return model_or_state
    return model_from_state(model_or_state)


def evaluate(
    model_or_state: torch.nn.Module | Mapping[str, ArrayLike],
    images: ArrayLike | torch.Tensor,
    labels: ArrayLike | torch.Tensor,
    *,
    device: str = "cpu",
) -> tuple[float, float, NDArray[np.float32]]:
    """Per-sample mean cross-entropy, accuracy and the logits, for any weights that fit (the
    grader's measure, ``graders.numerics.torch_mlp.evaluate``).

    The model is left on ``device`` when one is passed in (moving it is the caller's choice).
    """
    return torch_mlp.evaluate(
        _as_model(model_or_state), images, labels, device=resolve_device(device)
    )


def class_probabilities(
    model: torch.nn.Module | Mapping[str, ArrayLike], images: ArrayLike | torch.Tensor
) -> NDArray[np.float64]:
    """Softmax rows for the images the grader picked (computed in float64: rows sum to 1)."""
    return torch_mlp.class_probabilities(_as_model(model), images)


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
