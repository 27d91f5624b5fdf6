"""Q3's checks of how the network was built and trained, on artifacts made by the real probe from
in-process "students" (``q3_support``): the Linear layers in the order forward applies them
(``q3.architecture`` and the grader's own measurement), the training set-up read from the live
objects (``q3.training_setup``), and the last training-loss entry held to the grader's own
loss of the trained weights (``q3.loss_histories``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from q3_support import (
    FULL,
    LEARNING_RATE,
    THRESHOLDS,
    Trained,
    grade,
    load_test_slice,
    scores,
    single_thread,
    student,
    text,
    train_reference,
)

from graders.config import FIXTURE_DATA_ROOT
from graders.numerics.datasets import load_split
from graders.questions.q3_fashion_mlp import checks
from graders.render.numbers import number
from reference import q3_mlp as ref


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    yield from single_thread()


@pytest.fixture(scope="module")
def trained() -> Trained:
    return train_reference()


@pytest.fixture(scope="module")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    return load_test_slice()


def with_model(ns: dict[str, Any], model: torch.nn.Module) -> dict[str, Any]:
    """``ns`` with ``model`` in it and the optimizer rebuilt over its parameters."""
    return {
        **ns,
        "model": model,
        "optimizer": torch.optim.SGD(model.parameters(), lr=LEARNING_RATE),
    }


def lost(outcomes: dict[str, Any]) -> dict[str, float]:
    """The checks that did not give full marks, with their fractions."""
    return {k: v for k, v in scores(outcomes).items() if v < 1.0}


# -- the layers in the order forward applies them ------------------------------------------------


class OutFirst(torch.nn.Module):
    """Correct, with its layers created output first and under names of its own, F.relu."""

    def __init__(self, inner: ref.FashionMLP) -> None:
        super().__init__()
        self.head = torch.nn.Linear(64, 10)
        self.c = torch.nn.Linear(128, 64)
        self.b = torch.nn.Linear(256, 128)
        self.a = torch.nn.Linear(784, 256)
        for mine, theirs in ((self.a, inner.fc1), (self.b, inner.fc2), (self.c, inner.fc3)):
            mine.load_state_dict(theirs.state_dict())
        self.head.load_state_dict(inner.out.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = torch.nn.functional.relu(self.a(x))
        x = torch.nn.functional.relu(self.b(x))
        return self.head(torch.nn.functional.relu(self.c(x)))


class MisleadingNames(torch.nn.Module):
    """Correct, with the reference's own attribute names on the wrong layers: ``out`` is the
    first layer, ``fc1`` the last. Matching by name would load every weight into the wrong
    place; the order of use is what counts."""

    def __init__(self, inner: ref.FashionMLP) -> None:
        super().__init__()
        self.out = torch.nn.Linear(784, 256)
        self.fc3 = torch.nn.Linear(256, 128)
        self.fc2 = torch.nn.Linear(128, 64)
        self.fc1 = torch.nn.Linear(64, 10)
        for mine, theirs in zip(
            (self.out, self.fc3, self.fc2, self.fc1),
            (inner.fc1, inner.fc2, inner.fc3, inner.out),
            strict=True,
        ):
            mine.load_state_dict(theirs.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.out(x.reshape(len(x), -1)))
        x = torch.relu(self.fc2(torch.relu(self.fc3(x))))
        return self.fc1(x)


class Wrapped(torch.nn.Module):
    """Correct: an nn.Sequential inside a Module, registered after an unused spare layer."""

    def __init__(self, inner: ref.FashionMLP) -> None:
        super().__init__()
        self.spare = torch.nn.Linear(64, 64)
        self.body = torch.nn.Sequential(
            torch.nn.Flatten(),
            inner.fc1,
            torch.nn.ReLU(),
            inner.fc2,
            torch.nn.ReLU(),
            inner.fc3,
            torch.nn.ReLU(),
            inner.out,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.body(x)
        return result


@pytest.mark.parametrize("build", [OutFirst, MisleadingNames], ids=["out_first", "misleading"])
def test_any_creation_order_and_any_names_get_full_marks(
    trained: Trained, test_set: Any, tmp_path: Path, build: Any
) -> None:
    outcomes = grade(with_model(student(trained, test_set), build(trained.model)), tmp_path)
    assert scores(outcomes) == FULL, {k: o.message for k, o in outcomes.items()}
    # the grader measured the trained weights in the reference network, not a fallback
    assert checks.accuracy.REFERENCE_SOURCE in outcomes["q3.test_accuracy"].message
    summary = json.loads((tmp_path / "artifacts" / "q3" / "model_summary.json").read_text())
    assert [(layer["in"], layer["out"]) for layer in summary["linear_layers"]] == [
        (784, 256),
        (256, 128),
        (128, 64),
        (64, 10),
    ]
    assert summary["order"] == "forward"


def test_a_sequential_inside_a_module_and_an_unused_layer(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    outcomes = grade(with_model(student(trained, test_set), Wrapped(trained.model)), tmp_path)
    assert scores(outcomes) == FULL, {k: o.message for k, o in outcomes.items()}
    said = outcomes["q3.architecture"].message
    assert "`spare` (Linear(64, 64)) is created but never applied by forward" in said


class Reused(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 256)
        self.fc2 = torch.nn.Linear(256, 128)
        self.mid = torch.nn.Linear(128, 128)
        self.fc3 = torch.nn.Linear(128, 64)
        self.out = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc2(torch.relu(self.fc1(x.reshape(len(x), -1)))))
        x = torch.relu(self.mid(torch.relu(self.mid(x))))
        return self.out(torch.relu(self.fc3(x)))


def test_a_layer_applied_twice_counts_twice(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    outcome = grade(with_model(student(trained, test_set), Reused()), tmp_path)["q3.architecture"]
    assert outcome.fraction == 0.0
    assert "found 784 -> 256 -> 128 -> 128 -> 128 -> 64 -> 10" in outcome.message
    assert "forward applies `mid` 2 times" in outcome.message


class Uncopyable(torch.nn.Module):
    """The trained network holding a generator, which copy.deepcopy cannot copy."""

    def __init__(self, inner: ref.FashionMLP) -> None:
        super().__init__()
        self.inner = inner
        self.stream = (i for i in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.inner(x)
        return result


def test_a_model_the_probe_cannot_copy_keeps_its_layers_and_its_setup(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """The order falls back to the order of creation, and the set-up is still read."""
    ns = student(trained, test_set)
    ns["model"] = Uncopyable(trained.model)
    outcomes = grade(ns, tmp_path)
    architecture = outcomes["q3.architecture"]
    assert architecture.fraction == checks.architecture.SHAPES_PART  # the behaviour is not run
    assert "the model could not be copied (typeerror" in text(architecture)
    assert "taken in the order your __init__ creates them" in architecture.message
    assert outcomes["q3.training_setup"].fraction == 1.0
    assert outcomes["q3.test_accuracy"].fraction == 1.0  # measured from the saved weights


# -- q3.training_setup ---------------------------------------------------------------------------


def _setup(outcomes: dict[str, Any]) -> str:
    return text(outcomes["q3.training_setup"])


@pytest.mark.parametrize(
    ("optimizer", "phrases"),
    [
        (
            lambda p: torch.optim.Adam(p, lr=LEARNING_RATE),
            ["the optimizer is adam; the assignment asks for sgd"],
        ),
        (
            lambda p: torch.optim.SGD(p, lr=0.01),
            [f"lr is 0.01 but learning_rate is {LEARNING_RATE}"],
        ),
        (
            lambda p: torch.optim.SGD(p, lr=LEARNING_RATE, momentum=0.9, nesterov=True),
            ["momentum is 0.9", "nesterov is on"],
        ),
        (
            lambda p: torch.optim.SGD(p, lr=LEARNING_RATE, weight_decay=5e-4),
            ["weight_decay is 0.0005"],
        ),
        (
            lambda p: torch.optim.SGD(ref.build_model(9).parameters(), lr=LEARNING_RATE),
            ["holds none of the model's parameters"],
        ),
    ],
    ids=["adam", "lr", "momentum", "weight_decay", "fresh_model"],
)
def test_each_optimizer_difference_is_named_and_costs_the_setup_point(
    trained: Trained, test_set: Any, tmp_path: Path, optimizer: Any, phrases: list[str]
) -> None:
    ns = student(trained, test_set)
    ns["optimizer"] = optimizer(trained.model.parameters())
    outcomes = grade(ns, tmp_path)
    assert lost(outcomes) == {"training_setup": 0.0}, _setup(outcomes)
    for phrase in phrases:
        assert phrase in _setup(outcomes)


def _stepped(optimizer: torch.optim.Optimizer, steps: int) -> dict[str, Any]:
    """What the compatibility layer's step count holds for ``optimizer`` (compat._record_steps)."""
    import weakref

    params = [id(p) for g in optimizer.param_groups for p in g["params"]]
    return {
        "class": type(optimizer).__name__,
        "module": type(optimizer).__module__,
        "params": params,
        "steps": steps,
        "ref": weakref.ref(optimizer),
    }


def test_the_optimizer_that_stepped_on_the_model_is_the_one_held_to_sgd(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """`optimizer` rebound to the assignment's SGD after an Adam (kept under a private name)
    trained the model: the count of steps names Adam."""
    ns = student(trained, test_set)
    hidden = torch.optim.Adam(trained.model.parameters(), lr=1e-3)
    ns["_adam"] = hidden
    # Sixty dummies stepped first, on a parameter of their own, hide nothing.
    dummies = [torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1) for _ in range(60)]
    ns["__dlgrader_steps__"] = {id(d): _stepped(d, 1) for d in dummies}
    ns["__dlgrader_steps__"][id(hidden)] = _stepped(hidden, 940)
    outcomes = grade(ns, tmp_path / "adam")
    assert lost(outcomes) == {"training_setup": 0.0}, _setup(outcomes)
    assert "the model was trained by adam, 940 steps" in _setup(outcomes)


def test_steps_on_another_model_or_none_at_all_leave_the_setup_alone(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """An experiment with Adam on a scratch model is not this model's set-up, and a model no
    optimizer stepped is charged by its accuracy and losses, not here."""
    ns = student(trained, test_set)
    scratch = torch.optim.Adam(ref.build_model(9).parameters(), lr=1e-3)
    sgd = ns["optimizer"]
    ns["__dlgrader_steps__"] = {id(scratch): _stepped(scratch, 50), id(sgd): _stepped(sgd, 940)}
    assert lost(grade(ns, tmp_path / "scratch")) == {}
    ns["__dlgrader_steps__"] = {}
    assert lost(grade(ns, tmp_path / "none")) == {}


def test_a_learning_rate_changed_in_the_notebook_is_held_to_the_assignments(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """Without a LEARNING_RATE of the profile's, the assignment's 0.01 is what was asked for,
    whatever the notebook's parameters cell says."""
    ns = student(trained, test_set)
    outcomes = grade(ns, tmp_path, parameters={"EPOCHS": 4})
    assert (
        "lr is 0.1: learning_rate was changed to 0.1 in the notebook; the assignment's is 0.01"
        in _setup(outcomes)
    )


def test_a_scheduler_that_moved_the_learning_rate_is_named(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    scheduler = torch.optim.lr_scheduler.StepLR(ns["optimizer"], step_size=1, gamma=0.5)
    ns["optimizer"].step()
    scheduler.step()
    ns["optimizer"].zero_grad()
    assert "scheduler moved lr from 0.1 to 0.05" in _setup(grade(ns, tmp_path))


def test_the_batch_size_is_read_from_the_training_loader(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    data = ns.pop("trainingdata")
    del ns["trainDataLoader"]
    ns["testDataLoader"] = torch.utils.data.DataLoader(data, batch_size=64)  # not the training one
    ns["train_loader"] = torch.utils.data.DataLoader(data, batch_size=128, shuffle=True)
    ns["trainingdata"] = data
    outcomes = grade(ns, tmp_path)
    assert lost(outcomes) == {"training_setup": 0.0}
    assert "`train_loader`'s batch_size is 128 but batch_size is 64" in _setup(outcomes)


class WithDropout(torch.nn.Module):
    """The trained network with dropout after each hidden layer: at evaluation it is the
    reference function, so only the set-up check can see the dropout."""

    def __init__(self, inner: ref.FashionMLP, *, functional: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.out = inner.fc1, inner.fc2, inner.fc3, inner.out
        self.functional = functional
        self.drop = torch.nn.Dropout(p=0.2)

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        if self.functional:
            return torch.nn.functional.dropout(x, p=0.2, training=self.training)
        result: torch.Tensor = self.drop(x)
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._drop(torch.relu(self.fc1(x.reshape(len(x), -1))))
        x = self._drop(torch.relu(self.fc2(x)))
        return self.out(self._drop(torch.relu(self.fc3(x))))


@pytest.mark.parametrize(
    ("functional", "phrase"),
    [
        (False, "a dropout(p=0.2) layer the assignment did not ask for"),
        (True, "forward is random in training mode"),
    ],
    ids=["module", "functional"],
)
def test_dropout_costs_the_setup_point_only(
    trained: Trained, test_set: Any, tmp_path: Path, functional: bool, phrase: str
) -> None:
    model = WithDropout(trained.model, functional=functional)
    outcomes = grade(with_model(student(trained, test_set), model), tmp_path)
    assert lost(outcomes) == {"training_setup": 0.0}, {k: o.message for k, o in outcomes.items()}
    assert phrase in _setup(outcomes)


class WithBatchNorm(torch.nn.Module):
    def __init__(self, inner: ref.FashionMLP) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.out = inner.fc1, inner.fc2, inner.fc3, inner.out
        self.norm = torch.nn.BatchNorm1d(256)
        with torch.no_grad():
            self.norm.running_mean.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm(self.fc1(x.reshape(len(x), -1))))
        return self.out(torch.relu(self.fc3(torch.relu(self.fc2(x)))))


def test_a_layer_that_changes_the_function_is_charged_once_under_architecture(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    outcomes = grade(with_model(student(trained, test_set), WithBatchNorm(trained.model)), tmp_path)
    assert outcomes["q3.architecture"].fraction == checks.architecture.SHAPES_PART
    setup = outcomes["q3.training_setup"]
    assert setup.fraction == 1.0
    assert "a batchnorm1d layer the assignment did not ask for (charged under q3.architecture" in (
        text(setup)
    )


def test_a_dropout_that_forward_never_applies_costs_nothing(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    model = Wrapped(trained.model)
    model.unused_drop = torch.nn.Dropout(0.5)
    outcomes = grade(with_model(student(trained, test_set), model), tmp_path)
    assert scores(outcomes) == FULL
    assert "dropout `unused_drop` is created but never applied" in _setup(outcomes)


@pytest.mark.parametrize(
    ("criterion", "phrase"),
    [
        (torch.nn.MSELoss(), "the loss is mseloss; the assignment asks for crossentropyloss"),
        (torch.nn.CrossEntropyLoss(label_smoothing=0.1), "label_smoothing=0.1"),
    ],
)
def test_another_loss_is_named(
    trained: Trained, test_set: Any, tmp_path: Path, criterion: torch.nn.Module, phrase: str
) -> None:
    ns = student(trained, test_set)
    ns["loss"] = criterion
    outcomes = grade(ns, tmp_path)
    assert outcomes["q3.training_setup"].fraction == 0.0
    assert phrase in _setup(outcomes)


def test_no_optimizer_and_no_loader_are_named(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    del ns["optimizer"], ns["trainDataLoader"]
    said = _setup(grade(ns, tmp_path))
    assert "no torch.optim optimizer is left in the notebook" in said
    assert "no training dataloader was found" in said


def test_a_forged_setup_file_is_a_difference_not_a_crash(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """Every value in the file came from the student's kernel: wrong types are read as what
    they are (no number, no name), and the grader's own run of the check does not crash."""
    forged = {
        "optimizers": [{"class": 5, "groups": [{"lr": "0.1"}], "model_params_held": True}],
        "model_params": -3,
        "train_loader": {"name": ["x"], "batch_size": "64"},
        "modules": [1, {"type": None}, {"type": "Dropout", "torch": True, "used": True, "p": "x"}],
        "losses": "CrossEntropyLoss",
        "LEARNING_RATE": {"nested": [1, 2]},
    }

    def tamper(folder: Path) -> None:
        (folder / "training_setup.json").write_text(json.dumps(forged), encoding="utf-8")

    outcomes = grade(student(trained, test_set), tmp_path, tamper=tamper)
    said = _setup(outcomes)
    assert outcomes["q3.training_setup"].fraction == 0.0
    assert "the optimizer is ?" in said and "lr is not a number" in said
    assert "has no fixed batch_size" in said and "a dropout layer the assignment" in said


def test_when_forward_could_not_be_traced_every_module_counts_as_used(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """A dropout the trace did not see (forward raised on the grader's images) is charged: the
    grader cannot tell it is unused."""
    model = Wrapped(trained.model)
    model.unused_drop = torch.nn.Dropout(0.5)

    def untraced(folder: Path) -> None:
        path = folder / "training_setup.json"
        setup = json.loads(path.read_text(encoding="utf-8"))
        setup["traced"] = False
        path.write_text(json.dumps(setup), encoding="utf-8")

    outcomes = grade(with_model(student(trained, test_set), model), tmp_path, tamper=untraced)
    assert outcomes["q3.training_setup"].fraction == 0.0
    assert "a dropout(p=0.5) layer the assignment did not ask for" in _setup(outcomes)


def test_a_forged_model_summary_is_read_as_unreadable(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    def tamper(folder: Path) -> None:
        path = folder / "model_summary.json"
        summary = json.loads(path.read_text(encoding="utf-8"))
        summary["linear_layers"] = [{"name": "fc1", "in": "784", "out": 256}]
        path.write_text(json.dumps(summary), encoding="utf-8")

    outcomes = grade(student(trained, test_set), tmp_path, tamper=tamper)
    assert outcomes["q3.architecture"].fraction == 0.0
    assert "could not read your model's linear layers" in text(outcomes["q3.architecture"])
    assert outcomes["q3.test_accuracy"].fraction == 1.0  # measured in the stored order instead


# -- the last training-loss entry against the grader's own measure -------------------------------


def _histories(outcomes: dict[str, Any]) -> Any:
    return outcomes["q3.loss_histories"]


@pytest.mark.parametrize(
    ("history", "phrases"),
    [
        (lambda h: [v * 32 for v in h], ["sum over the epoch's 32 batches", "not below ln 10"]),
        (lambda h: [v / 64 for v in h], ["divided by the number of images"]),
        (
            lambda h: [v * 32 / 64 for v in h],
            ["divided by batch_size (64) instead of the number of batches (32)"],
        ),
        (lambda h: [1.8004, 0.8813, 0.6920, 0.3291], ["not this model's mean training loss"]),
        (lambda h: [27.8, 14.2, 7.31, 3.96], ["3.96", "not below ln 10 = 2.303"]),
    ],
    ids=["sums", "per_image_of_batch_means", "over_batch_size", "typed_in", "above_chance"],
)
def test_a_training_history_that_is_not_the_models_mean_loss_loses_its_share(
    trained: Trained, test_set: Any, tmp_path: Path, history: Any, phrases: list[str]
) -> None:
    ns = student(trained, test_set)
    ns["train_loss_history"] = history(ns["train_loss_history"])
    outcomes = grade(ns, tmp_path)
    assert lost(outcomes) == {"loss_histories": checks.histories.HISTORY_PART}, text(
        _histories(outcomes)
    )
    said = text(_histories(outcomes))
    for phrase in phrases:
        assert phrase in said
    json.dumps(_histories(outcomes).details, allow_nan=False)


def _measured_train_loss(trained: Trained) -> float:
    images, labels = load_split(FIXTURE_DATA_ROOT, "FashionMNIST", train=True)
    loss, _, _ = ref.evaluate(trained.model, images, labels)
    return loss


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda h, m: [torch.tensor(v) for v in h],
        lambda h, m: torch.tensor(h, dtype=torch.float64),
        lambda h, m: np.array(h, dtype=np.float64) * 1.003,  # a per-image weighted mean
        lambda h, m: [*h[:-1], m],  # measured after the epoch on the whole training set
    ],
    ids=["tensors", "float64_tensor", "per_image_weighted", "measured_after_the_epoch"],
)
def test_legitimate_ways_of_keeping_the_training_loss_get_full_marks(
    trained: Trained, test_set: Any, tmp_path: Path, rewrite: Any
) -> None:
    ns = student(trained, test_set)
    ns["train_loss_history"] = rewrite(ns["train_loss_history"], _measured_train_loss(trained))
    outcomes = grade(ns, tmp_path)
    assert scores(outcomes) == FULL, text(_histories(outcomes))


def test_another_setup_is_held_to_a_wider_band(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """1.5 times the measured loss is outside the band of the assignment's training, inside the
    one for a notebook trained otherwise (charged once, under q3.training_setup)."""
    ns = student(trained, test_set)
    ns["train_loss_history"] = [*ns["train_loss_history"][:-1], 1.5 * _measured_train_loss(trained)]
    as_assigned = grade(ns, tmp_path / "sgd")
    assert lost(as_assigned) == {"loss_histories": checks.histories.HISTORY_PART}
    assert f"expected {number(THRESHOLDS['q3.train_loss_ratio_low'])} to" in text(
        _histories(as_assigned)
    )
    ns["optimizer"] = torch.optim.Adam(trained.model.parameters(), lr=LEARNING_RATE)
    otherwise = grade(ns, tmp_path / "adam")
    assert lost(otherwise) == {"training_setup": 0.0}
    assert "see q3.training_setup" not in text(_histories(otherwise))  # it agreed, nothing to say


def test_the_training_loss_is_measured_on_the_first_train_limit_images(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    outcome = grade(
        student(trained, test_set),
        tmp_path,
        parameters={"EPOCHS": 4, "LEARNING_RATE": LEARNING_RATE, "TRAIN_LIMIT": 1000},
    )["q3.loss_histories"]
    assert "on the 1000 training images" in outcome.message
    assert outcome.details["train_loss_ratio"] == pytest.approx(
        outcome.details["train_loss"][-1] / outcome.details["measured_train_loss"]
    )
    assert math.isfinite(outcome.details["measured_train_loss"])


def test_the_courses_mean_of_batch_means_is_computed_from_the_graders_own_logits() -> None:
    """Ten images in batches of four: the last batch (two images) weighs a third of the course's
    mean and a fifth of the per-image one; the grader computes both and accepts either."""
    labels = np.zeros(10, dtype=np.int64)
    logits = np.zeros((10, 10))
    logits[8:, 0] = -5.0  # the last two images: a far higher loss
    losses = -checks.variants.log_softmax(logits)[np.arange(10), labels]
    measure = checks.accuracy.Measure(
        logits=logits, labels=labels, accuracy=0.0, loss=float(losses.mean()), source="test"
    )
    course = checks.histories.mean_of_batch_means(measure, 4)
    assert course == pytest.approx((losses[:4].mean() + losses[4:8].mean() + losses[8:].mean()) / 3)
    assert course > measure.loss * 1.1
