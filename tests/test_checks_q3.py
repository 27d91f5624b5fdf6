"""Q3's checks on artifacts made by the real probe, run in this process on in-process "students".

Each test builds a student's namespace (a model, histories, sampled indices, probabilities)
from the reference solution, runs ``graders/questions/q3_fashion_mlp/probe.py`` on it exactly as
the kernel would (through the probe runtime, on the grader's inputs from ``make_inputs``), and
grades the artifacts with the question's checks (``q3_support``). The committed 1,000-image test
slice is the test set, as under the quick profile. The training set-up, the layer order and the
training-loss band have their own module, ``test_checks_q3_setup.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from q3_support import (
    EPOCHS,
    FULL,
    LEARNING_RATE,
    PLOT_CELL,
    THRESHOLDS,
    Trained,
    grade,
    load_test_slice,
    notebook,
    scores,
    single_thread,
    student,
    text,
    train_reference,
)

from graders.errors import ConfigError
from graders.models import GRADER_PROBABILITIES, CellError
from graders.questions.api import Outcome
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


# -- the reference and accepted variations -------------------------------------------------------


def test_reference_gets_full_marks(trained: Trained, test_set: Any, tmp_path: Path) -> None:
    outcomes = grade(student(trained, test_set), tmp_path)
    assert scores(outcomes) == FULL, {k: o.message for k, o in outcomes.items()}
    assert "reference 784-256-128-64-10 network" in outcomes["q3.test_accuracy"].message


def test_the_trained_model_is_measured_once_for_all_the_checks_that_read_it(
    trained: Trained, test_set: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accuracy, history consistency and the sample probabilities all read the grader's
    measure of the trained weights: one forward pass over the test set, shared read-only."""
    from graders.numerics import relu_mlp

    calls: list[int] = []
    evaluate = relu_mlp.evaluate

    def counting(pairs, images, labels):  # type: ignore[no-untyped-def]
        calls.append(len(images))
        loss, accuracy, logits = evaluate(pairs, images, labels)
        return loss, accuracy, logits

    monkeypatch.setattr(relu_mlp, "evaluate", counting)
    outcomes = grade(student(trained, test_set), tmp_path)
    assert scores(outcomes) == FULL
    assert calls.count(len(test_set[1])) == 1, calls  # (the loss check's own pass is on the
    # training images: another measure)


def test_the_names_course_notebooks_use_are_found(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """`net`, `train_losses`/`val_losses`, `idx`, `probs`: what a notebook written for the
    course's starter code calls them; graded like the assignment's names."""
    ns = student(trained, test_set)
    renamed = {
        "net": ns.pop("model"),
        "train_losses": ns.pop("train_loss_history"),
        "val_losses": ns.pop("test_loss_history"),
        "idx": ns.pop("random_indices"),
        "probs": ns.pop("sample_probabilities"),
        **ns,
    }
    plot = notebook(("plt.plot(train_losses)\nplt.plot(val_losses)\nplt.show()", True, ""))
    outcomes = grade(renamed, tmp_path, nb=plot)
    assert scores(outcomes) == FULL, {k: o.message for k, o in outcomes.items()}


def test_a_history_dict_and_indices_only_the_plotting_cell_names_are_found(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    picks = ns.pop("random_indices")
    ns["history"] = {
        "train_loss": ns.pop("train_loss_history"),
        "test_loss": ns.pop("test_loss_history"),
    }
    ns["picks"] = picks
    ns["labels_of_a_batch"] = np.arange(64)  # an integer array the plotting cell does not use
    ns["In"] = ["", "for k in picks:\n    plt.imshow(testdata[k][0][0])\nplt.show()"]
    outcomes = grade(ns, tmp_path)
    assert scores(outcomes) == FULL, {k: o.message for k, o in outcomes.items()}


def test_missing_histories_and_indices_say_what_was_looked_for(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    for name in ("train_loss_history", "test_loss_history", "random_indices"):
        ns.pop(name)
    outcomes = grade(ns, tmp_path)
    histories = text(outcomes["q3.loss_histories"])
    assert "train_losses" in histories and "test_loss_history" in histories
    assert outcomes["q3.loss_histories"].fraction == 0
    assert "random_indices" in text(outcomes["q3.random_samples"])
    assert outcomes["q3.random_samples"].fraction == 0


class Seedlike(torch.nn.Module):
    """The seed's model: its layer names, nn.ReLU modules and ``x.view``."""

    def __init__(self) -> None:
        super().__init__()
        self.ly1, self.act1 = torch.nn.Linear(784, 256), torch.nn.ReLU()
        self.ly2, self.act2 = torch.nn.Linear(256, 128), torch.nn.ReLU()
        self.ly3, self.act3 = torch.nn.Linear(128, 64), torch.nn.ReLU()
        self.oply = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 28 * 28)
        x = self.act3(self.ly3(self.act2(self.ly2(self.act1(self.ly1(x))))))
        return self.oply(x)


def _copy_weights(target: torch.nn.Module, source: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.copy_(s)
    return target


def test_sequential_under_another_name_is_accepted(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 10),
    )
    ns = student(trained, test_set)
    del ns["model"]
    ns["net"] = _copy_weights(net, trained.model)
    ns["optimizer"] = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE)
    ns["loss"] = torch.nn.CrossEntropyLoss()
    assert scores(grade(ns, tmp_path)) == FULL


def test_seed_layer_names_are_accepted(trained: Trained, test_set: Any, tmp_path: Path) -> None:
    ns = student(trained, test_set)
    ns["model"] = _copy_weights(Seedlike(), trained.model)
    ns["optimizer"] = torch.optim.SGD(ns["model"].parameters(), lr=LEARNING_RATE)
    assert scores(grade(ns, tmp_path)) == FULL


def test_percent_accuracy_and_course_batch_mean_loss_are_accepted(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    ns["test_accuracy_history"] = [100 * a for a in ns["test_accuracy_history"]]
    ns["test_loss_history"] = [v * 1.004 for v in ns["test_loss_history"]]
    outcome = grade(ns, tmp_path)["q3.history_consistent"]
    assert outcome.fraction == 1.0
    assert "percentage" in outcome.message


# -- architecture --------------------------------------------------------------------------------


class Wrapped(torch.nn.Module):
    """The trained model with something applied to its logits."""

    def __init__(self, inner: torch.nn.Module, how: str) -> None:
        super().__init__()
        self.inner, self.how = inner, how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        if self.how == "log_softmax":
            return torch.log_softmax(logits, dim=1)
        return torch.softmax(logits, dim=1)


@pytest.mark.parametrize(
    ("how", "phrase"), [("log_softmax", "log-probabilities"), ("softmax", "returns probabilities")]
)
def test_probability_outputs_fail_architecture_only(
    trained: Trained, test_set: Any, tmp_path: Path, how: str, phrase: str
) -> None:
    ns = student(trained, test_set)
    ns["model"] = model = Wrapped(trained.model, how)
    with torch.no_grad():  # what the notebook's sample cell computes with this model
        images = torch.from_numpy(test_set[0][ns["random_indices"]] / 255.0).float()
        ns["sample_probabilities"] = list(torch.softmax(model(images), dim=1).numpy())
    outcomes = grade(ns, tmp_path)
    assert outcomes["q3.architecture"].fraction == checks.architecture.SHAPES_PART
    assert phrase in text(outcomes["q3.architecture"])
    assert (
        checks.accuracy.REFERENCE_SOURCE in outcomes["q3.test_accuracy"].message
    )  # the grader's own
    assert outcomes["q3.test_accuracy"].fraction == 1.0
    assert outcomes["q3.sample_probabilities"].fraction == 1.0


def test_probabilities_model_shown_as_is_costs_architecture_only(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """A model that already outputs probabilities, plotted without a second softmax."""
    ns = student(trained, test_set)
    ns["model"] = Wrapped(trained.model, "softmax")
    outcomes = grade(ns, tmp_path)
    assert outcomes["q3.architecture"].fraction == checks.architecture.SHAPES_PART
    assert outcomes["q3.sample_probabilities"].fraction == 1.0


class MissingRelu(torch.nn.Module):
    def __init__(self, inner: ref.FashionMLP) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.out = inner.fc1, inner.fc2, inner.fc3, inner.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x.reshape(len(x), -1)))
        x = self.fc2(x)
        return self.out(torch.sigmoid(self.fc3(x)))


def test_activation_mistakes_are_named_per_layer(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    ns["model"] = MissingRelu(trained.model)
    outcome = grade(ns, tmp_path)["q3.architecture"]
    assert outcome.fraction == checks.architecture.SHAPES_PART
    assert "no activation after hidden layer 2 (256 -> 128)" in outcome.message
    assert "sigmoid instead of relu after hidden layer 3 (128 -> 64)" in text(outcome)


class Smaller(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 128)
        self.fc2 = torch.nn.Linear(128, 64)
        self.out = torch.nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc1(x.reshape(len(x), -1)))
        return self.out(torch.relu(self.fc2(x)))


def test_wrong_layers_fail_architecture_and_are_measured_in_an_mlp_of_their_sizes(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    ns["model"] = Smaller()
    outcomes = grade(ns, tmp_path)
    assert outcomes["q3.architecture"].fraction == 0.0
    assert "found 784 -> 128 -> 64 -> 10" in outcomes["q3.architecture"].message
    accuracy = outcomes["q3.test_accuracy"]
    assert "an MLP of your own layer sizes (784-128-64-10" in accuracy.message
    assert "do not fit" in accuracy.message
    assert accuracy.fraction == 0.0  # an untrained smaller model; measured, not crashed


class LabelLookup(torch.nn.Module):
    """A forged model: untrained layers, an extra buffer so its weights no longer match the
    reference network's, and a forward pass that answers the test images from their labels."""

    def __init__(self, inner: ref.FashionMLP, test_set: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.out = inner.fc1, inner.fc2, inner.fc3, inner.out
        self.register_buffer("calibration", torch.zeros(1))
        scaled = (test_set[0] / 255.0).astype(np.float32)
        self.answers = {img.tobytes(): int(y) for img, y in zip(scaled, test_set[1], strict=True)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(len(x), -1).numpy()
        found = [self.answers.get(row.reshape(28, 28).tobytes()) for row in rows]
        if all(y is not None for y in found):  # the grader's test images: the labels' one-hot
            return torch.nn.functional.one_hot(torch.tensor(found), 10).float() * 20
        x = torch.relu(self.fc1(x.reshape(len(x), -1)))
        return self.out(torch.relu(self.fc3(torch.relu(self.fc2(x)))))


def test_a_forward_pass_that_looks_up_the_labels_scores_what_its_weights_score(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    ns["model"] = LabelLookup(ref.build_model(5), test_set)
    outcomes = grade(ns, tmp_path)
    accuracy = outcomes["q3.test_accuracy"]
    assert accuracy.fraction == 0.0, accuracy.message  # measured by the grader: at chance
    assert (
        checks.accuracy.REFERENCE_SOURCE in accuracy.message
    )  # the buffer did not force a fallback


# -- the notebook's input transform ----------------------------------------------------------------


def expects_normalized(model: torch.nn.Module, mean: float, std: float) -> torch.nn.Module:
    """The same function of the raw pixels, for inputs normalized by (mean, std): the first
    layer takes (x - mean) / std (W * std, b + mean * W.sum(1)), as training on them makes it."""
    clone = copy.deepcopy(model)
    first = next(m for m in clone.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        first.bias += mean * first.weight.sum(dim=1)
        first.weight *= std
    return clone


NORMALIZE = torchvision.transforms.Compose(
    [torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((0.286,), (0.353,))]
)


def test_a_model_trained_on_normalized_images_is_measured_on_images_normalized_alike(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    baseline = scores(grade(student(trained, test_set), tmp_path / "raw"))
    ns = student(trained, test_set)
    ns["model"] = expects_normalized(trained.model, 0.286, 0.353)
    ns["optimizer"] = torch.optim.SGD(ns["model"].parameters(), lr=LEARNING_RATE)
    ns["trainingdata"].transform = NORMALIZE  # the probe reads it through trainDataLoader too
    outcomes = grade(ns, tmp_path / "normalized")
    assert scores(outcomes) == baseline == FULL
    assert "normalized as your training data was (normalize(0.286, 0.353))" in text(
        outcomes["q3.test_accuracy"]
    )
    del ns["trainingdata"].transform  # unseen: measured on raw pixels, it looks worse
    unseen = grade(ns, tmp_path / "unseen")
    assert unseen["q3.history_consistent"].fraction == 0.0


@pytest.mark.parametrize(
    "steps",
    [
        [{"type": "Normalize", "mean": [0.5], "std": [0.0]}],
        [{"type": "Normalize", "mean": [0.1, 0.2, 0.3], "std": [0.5, 0.5, 0.5]}],
        [{"type": "Normalize", "mean": ["0.5"], "std": [True]}],
        [{"type": "Normalize", "mean": [1e300], "std": [1.0]}],
        [{"type": "Normalize"}],
        "Normalize",
        [["Normalize", 0.5, 0.5]],
    ],
)
def test_a_forged_input_transform_is_measured_on_raw_pixels(
    trained: Trained, test_set: Any, tmp_path: Path, steps: object
) -> None:
    def forge(folder: Path) -> None:
        summary = json.loads((folder / "model_summary.json").read_text(encoding="utf-8"))
        summary["input_transform"] = {"found_on": "x", "steps": steps}
        (folder / "model_summary.json").write_text(json.dumps(summary), encoding="utf-8")

    outcomes = grade(student(trained, test_set), tmp_path, tamper=forge)
    assert scores(outcomes) == FULL
    assert "normalized" not in text(outcomes["q3.test_accuracy"])


def test_a_float64_model_is_run_on_the_graders_images_in_float64(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    ns["model"] = copy.deepcopy(trained.model).double()
    ns["optimizer"] = torch.optim.SGD(ns["model"].parameters(), lr=LEARNING_RATE)
    outcomes = grade(ns, tmp_path)
    assert scores(outcomes) == FULL, {k: text(v) for k, v in outcomes.items() if not v.fraction}


# -- loss histories ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "phrase"),
    [
        (lambda h: h + h[:1], f"has {EPOCHS + 1} values; expected {EPOCHS}"),
        (lambda h: [v for v in h for _ in range(32)], "not one per batch"),
        (lambda h: [*h[:-1], float("nan")], "nan or infinite"),
        (lambda h: [], "is empty"),
    ],
)
def test_malformed_train_history_costs_its_quarter(
    trained: Trained, test_set: Any, tmp_path: Path, history: Any, phrase: str
) -> None:
    ns = student(trained, test_set)
    ns["train_loss_history"] = history(ns["train_loss_history"])
    outcome = grade(ns, tmp_path)["q3.loss_histories"]
    assert phrase in text(outcome)
    assert outcome.fraction < 1.0
    json.dumps(outcome.details, allow_nan=False)  # result.json stays strict JSON


def test_flat_training_loss_fails_the_trend(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """An honest history of a model that never learned: the right loss, not going down."""
    ns = student(trained, test_set)
    ns["model"] = untrained = ref.build_model(3)
    ns["optimizer"] = torch.optim.SGD(untrained.parameters(), lr=LEARNING_RATE)
    ns["train_loss_history"] = [2.3057, 2.3049, 2.3062, 2.3060]
    outcome = grade(ns, tmp_path)["q3.loss_histories"]
    assert outcome.fraction == 2 * checks.histories.HISTORY_PART
    assert "did not go down" in outcome.message


def test_history_length_follows_the_injected_epochs(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    outcome = grade(student(trained, test_set), tmp_path, parameters={"EPOCHS": 25})
    assert outcome_fraction(outcome, "q3.loss_histories") == 0.5
    assert "expected 25" in outcome["q3.loss_histories"].message


def outcome_fraction(outcomes: Mapping[str, Outcome], key: str) -> float:
    return outcomes[key].fraction


# -- accuracy and consistency --------------------------------------------------------------------


def test_untrained_model_fails_accuracy_but_honest_history_is_consistent(
    test_set: Any, tmp_path: Path
) -> None:
    model = ref.build_model(3)
    images, labels = test_set
    loss, accuracy, _ = ref.evaluate(model, images, labels)
    indices = np.array([5, 500, 900])
    ns = {
        "model": model,
        "train_loss_history": [2.305, 2.306, 2.305, 2.306],
        "test_loss_history": [loss] * EPOCHS,
        "test_accuracy_history": [accuracy] * EPOCHS,
        "random_indices": indices,
        "sample_probabilities": list(ref.class_probabilities(model, images[indices])),
    }
    outcomes = grade(ns, tmp_path)
    assert outcomes["q3.test_accuracy"].fraction == 0.0
    assert "untrained" in outcomes["q3.test_accuracy"].message
    assert outcomes["q3.history_consistent"].fraction == 1.0
    assert outcomes["q3.sample_probabilities"].fraction == 1.0


def test_typed_in_accuracy_is_a_mismatch_naming_both_numbers(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    ns["test_accuracy_history"] = [*ns["test_accuracy_history"][:-1], 0.8613]
    measured = trained.result.test_accuracies[-1]
    outcome = grade(ns, tmp_path)["q3.history_consistent"]
    assert outcome.fraction == 0.5
    assert "0.8613" in outcome.message and number(measured) in outcome.message


@pytest.mark.parametrize("missing", sorted(THRESHOLDS))
def test_missing_threshold_is_a_configuration_fault(
    trained: Trained, test_set: Any, tmp_path: Path, missing: str
) -> None:
    others = {k: v for k, v in THRESHOLDS.items() if k != missing}
    with pytest.raises(ConfigError, match=missing.replace(".", r"\.")):
        grade(student(trained, test_set), tmp_path, thresholds=others)


def test_no_model_explains_the_failing_cell(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    del ns["model"], ns["sample_probabilities"]
    ns["train_loss_history"], ns["test_loss_history"] = [], []
    error = CellError(
        cell_index=10,
        ename="RuntimeError",
        evalue="Found no NVIDIA driver on your system.",
        source_excerpt="model = FashionMLP().cuda()",
    )
    outcomes = grade(ns, tmp_path, cell_errors=(error,))
    assert scores(outcomes) == {
        **FULL,
        "architecture": 0.0,
        "training_setup": 0.0,
        "loss_histories": 0.0,
        "test_accuracy": 0.0,
        "history_consistent": 0.0,
        "sample_probabilities": 0.0,
    }
    for key in (
        "q3.architecture",
        "q3.training_setup",
        "q3.test_accuracy",
        "q3.history_consistent",
    ):
        assert ".to(device), not .cuda()" in text(outcomes[key]), outcomes[key].message


# -- plot ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "ok", "phrase"),
    [
        (((PLOT_CELL, False, ""),), False, "showed no figure"),
        (((PLOT_CELL, False, "ValueError"),), False, "raised valueerror"),
        ((("print(train_loss_history)", False, ""), ("plt.imshow(x)", True, "")), False, "no cell"),
        ((("plt.plot(losses['train']); plt.title('Loss')", True, ""),), True, "about the loss"),
    ],
)
def test_loss_plot(
    trained: Trained, test_set: Any, tmp_path: Path, cells: Any, ok: bool, phrase: str
) -> None:
    outcome = grade(student(trained, test_set), tmp_path, nb=notebook(*cells))["q3.loss_plot"]
    assert outcome.fraction == (1.0 if ok else 0.0)
    assert phrase in text(outcome)


# -- random samples and their probabilities ------------------------------------------------------


@pytest.mark.parametrize(
    ("indices", "phrase"),
    [
        ([1, 6, 8], "number of batches, not images"),
        ([1, 1, 500], "repeats"),
        ([1, 500], "expected 3"),
        ([1, 500, 1000], "outside the test set"),
    ],
)
def test_bad_indices(
    trained: Trained, test_set: Any, tmp_path: Path, indices: list[int], phrase: str
) -> None:
    ns = student(trained, test_set)
    ns["random_indices"] = np.array(indices)
    outcome = grade(ns, tmp_path)["q3.random_samples"]
    assert outcome.fraction == 0.0
    assert phrase in outcome.message


def test_batch_rule_states_the_odds(trained: Trained, test_set: Any, tmp_path: Path) -> None:
    ns = student(trained, test_set)
    ns["random_indices"] = np.array([3, 9, 15])
    ns["sample_probabilities"] = list(
        ref.class_probabilities(trained.model, test_set[0][[3, 9, 15]])
    )
    outcomes = grade(ns, tmp_path)
    assert "C(16, 3) / C(1000, 3)" in outcomes["q3.random_samples"].message
    assert outcomes["q3.sample_probabilities"].fraction == 1.0  # right images, right numbers


def test_a_global_batch_size_cannot_hide_indices_drawn_from_the_batches(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """``BATCH_SIZE = 1`` set after the loaders were built would make every index look like a
    draw over the images; the assignment's batch size and the live loaders still count."""
    ns = student(trained, test_set)
    ns["random_indices"] = np.array([3, 9, 15])
    ns["BATCH_SIZE"] = 1
    outcome = grade(ns, tmp_path, parameters={"EPOCHS": EPOCHS})["q3.random_samples"]
    assert outcome.fraction == 0.0
    assert "C(16, 3) / C(1000, 3)" in outcome.message


def test_indices_drawn_from_a_loaders_length_are_flagged_with_its_name(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    images = torch.utils.data.TensorDataset(torch.from_numpy(test_set[0]))
    ns["testLoader"] = torch.utils.data.DataLoader(images, batch_size=250)  # 4 batches: too few
    ns["evalLoader"] = torch.utils.data.DataLoader(images, batch_size=40)  # 25 batches
    ns["random_indices"] = np.array([2, 11, 24])
    outcome = grade(ns, tmp_path)["q3.random_samples"]
    assert outcome.fraction == 0.0
    assert "len(evalLoader) = 25" in outcome.message and "C(25, 3)" in outcome.message
    ns["random_indices"] = np.array([2, 11, 640])  # a correct draw
    assert grade(ns, tmp_path / "again")["q3.random_samples"].fraction == 1.0


def test_the_probabilities_the_report_draws_are_the_graders_own(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    """The bars are the softmax of the grader's measure of the saved weights, whatever the
    notebook put in `sample_probabilities` (here: uniform rows, which the check fails)."""
    ns = student(trained, test_set)
    indices = [int(i) for i in ns["random_indices"]]
    ns["sample_probabilities"] = [np.full(10, 0.1, dtype=np.float32) for _ in indices]
    outcome = grade(ns, tmp_path)["q3.sample_probabilities"]
    assert outcome.fraction == 0.0
    drawn = outcome.details[GRADER_PROBABILITIES]
    assert drawn["indices"] == indices
    expected = ref.class_probabilities(trained.model, test_set[0][indices])
    np.testing.assert_allclose(drawn["rows"], expected, atol=1e-5)


def test_logits_instead_of_probabilities(trained: Trained, test_set: Any, tmp_path: Path) -> None:
    ns = student(trained, test_set)
    ns["sample_probabilities"] = [np.log(p) for p in ns["sample_probabilities"]]
    outcome = grade(ns, tmp_path)["q3.sample_probabilities"]
    assert outcome.fraction == 0.0
    assert "not probabilities" in outcome.message


def test_probabilities_of_another_image_cost_that_image(
    trained: Trained, test_set: Any, tmp_path: Path
) -> None:
    ns = student(trained, test_set)
    probs = list(ns["sample_probabilities"])
    probs[1] = ref.class_probabilities(trained.model, test_set[0][[ns["random_indices"][1] + 1]])[0]
    ns["sample_probabilities"] = probs
    outcome = grade(ns, tmp_path)["q3.sample_probabilities"]
    assert outcome.fraction == pytest.approx(2 / 3)
    assert f"image {ns['random_indices'][1]}:" in outcome.message


def test_the_checks_architecture_constants_match_the_reference() -> None:
    from graders.questions.q3_fashion_mlp.checks import shared
    from reference import q3_mlp

    assert (q3_mlp.N_INPUTS, *q3_mlp.HIDDEN, q3_mlp.N_CLASSES) == shared.LAYERS
    assert shared.N_CLASSES == q3_mlp.N_CLASSES


def test_loading_the_questions_does_not_import_torch_or_matplotlib() -> None:
    """Both cost the grader's start (torch ~2 s and 400 MB, matplotlib 0.6 s): only Q3's checks
    and a chart need them."""
    import subprocess
    import sys

    code = (
        "import sys, graders.pipeline, graders.questions as q; q.load_questions(); "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
