"""Q3's tests: the architecture (by shapes and by behaviour), the loss histories, the grader's
own test accuracy of the trained weights, whether the reported history agrees with it, the loss
plot, and the three random test images with their class probabilities.

No printed number is read, and no number the student's code computed either: accuracy, test
loss and class probabilities are recomputed here, in the grader's own process, from the trained
weights the probe saved, on the grader's own copy of the test set. The weights go into the
reference network when they fit it (extra tensors such as a buffer are passed over); a
different stack of Linear layers (another architecture) goes into an MLP of those sizes with
ReLU between them, so a wrong architecture costs the architecture test and not every test
after it. The probe's own run of the student's model on the test images is never scored: a
forward pass can return anything (one looked the labels up in the test set's file).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np
from nbformat import NotebookNode
from numpy.typing import NDArray

from graders.data import as_data_error
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q3_fashion_mlp import diagnose
from graders.render.numbers import fixed, number, percent
from reference.datasets import load_split

if TYPE_CHECKING:
    import torch

    from reference.q3_mlp import FashionMLP

FloatArray = NDArray[np.float64]

N_CLASSES = 10
LAYERS = (784, 256, 128, 64, N_CLASSES)
"""The assignment's architecture (``reference.q3_mlp`` agrees: a test holds them together)."""


def _ref() -> ModuleType:
    """``reference.q3_mlp``, imported on first use: it brings torch (seconds, ~650 MB), which a
    grading of other questions, or a student's self-check of one, should not pay for."""
    from reference import q3_mlp

    return q3_mlp


SHAPES_PART = 0.5
"""Architecture: right Linear layers; the other half is the behaviour with the grader's weights."""
HISTORY_PART = 0.25
"""Loss histories: each well-formed history; the rest is the training loss going down."""
MIN_TRAIN_DECREASE = 0.01
"""The last epoch's training loss must be at least 1% below the first's. Epoch-to-epoch noise of
an unchanging model is about 0.1% (measured: lr = 0 gives 2.307, 2.306, ...); every profile's
budget takes the reference's training loss down by 25% or more (quick: 2.30 -> 1.6)."""
ACCURACY_TOLERANCE = 0.005
"""Reported vs measured accuracy: the same weights on the same images agree exactly on one
device; another device may flip a few near-ties (5 of 1,000 images is far more than that)."""
LOSS_RTOL = 0.02
"""Reported vs measured test loss: the course's mean of batch means weights the last, shorter
batch a little more than a per-image mean (0.5% at most on these test sets)."""
PROBABILITY_ATOL = 2e-3
SUM_ATOL = 1e-3
DEFAULT_N_SAMPLES = 3
"""The assignment asks for 3 random test images; a profile may inject N_SAMPLES."""
DEFAULT_BATCH_SIZE = 64
BATCH_ODDS_LIMIT = 1e-4
"""Flag indices drawn from the number of batches only when a correct draw from the whole test
set would look like that with less than this probability (3 of 10,000 below 157: 4e-6)."""
UNTRAINED_BELOW = 0.2
"""Accuracies below this are called untrained in the message: 300 random initialisations of the
network scored 0.05-0.19 on the 1,000-image test slice (mean 0.10)."""
HISTORY_NAMES = ("train_loss_history", "test_loss_history")


# -- shared helpers ------------------------------------------------------------------------------


def _first_cell_error(ctx: CheckContext) -> str:
    """The first failing cell in words; for the seed's hard-coded ``.cuda()``, what to do."""
    errors = ctx.run.execution.cell_errors
    if not errors:
        return ""
    e = errors[0]
    text = f"cell {e.cell_index} raised {e.ename}: {e.evalue[:200]}"
    if re.search(r"cuda|nvidia", f"{e.evalue} {e.source_excerpt}", re.IGNORECASE):
        text += "; the grader has no GPU: move models and tensors with .to(DEVICE), not .cuda()"
    return text


def _why(ctx: CheckContext, step: str) -> str:
    """The probe's explanation, plus the first failing cell: usually the actual cause."""
    text = ctx.why_missing(step)
    errors = ctx.run.execution.cell_errors
    if not errors:
        return text
    if errors[0].evalue and errors[0].evalue[:80] in text:  # the probe quoted it already
        return text
    return f"{text} ({_first_cell_error(ctx)})"


def _fmt(values: Sequence[float] | np.ndarray, digits: int = 3) -> str:
    return "[" + ", ".join(fixed(v, digits) for v in np.asarray(values).reshape(-1)) + "]"


def _chain(pairs: Sequence[tuple[int, int]]) -> str:
    """784 -> 256 -> 10 when the layers connect, else the (in, out) pairs as they are."""
    if not pairs:
        return "no Linear layers"
    if all(a[1] == b[0] for a, b in pairwise(pairs)):
        return " -> ".join(str(n) for n in [pairs[0][0], *(p[1] for p in pairs)])
    return ", ".join(f"Linear({i}, {o})" for i, o in pairs)


def _test_set(ctx: CheckContext) -> tuple[np.ndarray, np.ndarray]:
    with as_data_error():
        return load_split(ctx.data_root, "FashionMNIST", train=False)


def _parameter(ctx: CheckContext, name: str, default: int) -> int:
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


def _plain(value: float | None) -> float | None:
    """A number for ``details`` (result.json must stay strict JSON: no NaN)."""
    return value if value is not None and math.isfinite(value) else None


def _floats(values: object) -> list[float] | None:
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


# -- the behaviour of the student's model with the grader's weights ------------------------------


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    matches: bool | None
    """True: the reference logits; False: something else; None: could not be run."""
    message: str
    hint: str = ""


def _grader_params(arrays: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(LAYERS) - 1
    return [(arrays[f"ref.w{i}"], arrays[f"ref.b{i}"]) for i in range(n)]


def _reference_logits(arrays: Mapping[str, np.ndarray]) -> FloatArray:
    """The reference network's logits for the grader's weights on the probe's images."""
    state: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(_grader_params(arrays)):
        state[f"layer{i}.weight"], state[f"layer{i}.bias"] = w, b
    import torch

    model = _ref().model_from_state(state).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(arrays["images"], dtype=np.float32)))
    return logits.double().numpy()


def _behaviour(ctx: CheckContext, *, explain: bool = True) -> Behaviour:
    """Does the student's model compute the reference function? ``explain``: and if not, what
    does it compute instead (a search over variants, only worth it for the message)."""
    got = ctx.npz("reference_logits")
    if got is None or "logits" not in got:
        return Behaviour(
            matches=None,
            message="the grader could not run your model with its own weights: "
            + _why(ctx, "reference_weights_logits"),
            hint="forward must accept a batch of images of shape (N, 1, 28, 28) and return "
            "(N, 10) logits.",
        )
    expected = _reference_logits(ctx.inputs.arrays)
    found = np.asarray(got["logits"], dtype=np.float64)
    if found.shape != expected.shape and found.size == expected.size:
        found = found.reshape(expected.shape)
    if found.shape != expected.shape:
        return Behaviour(
            matches=False,
            message=f"for a batch of {len(expected)} images of shape (1, 28, 28) it returned "
            f"shape {found.shape}; expected {expected.shape}",
            hint="forward receives (N, 1, 28, 28): flatten to (N, 784) with "
            "x.reshape(len(x), -1) or nn.Flatten(), and return (N, 10) logits.",
        )
    if not np.all(np.isfinite(found)):
        return Behaviour(matches=False, message="it returned NaN or infinite outputs")
    if diagnose.close(found, expected):
        return Behaviour(
            matches=True, message="with the grader's weights it gives the reference logits"
        )
    if not explain:
        return Behaviour(matches=False, message="it does not give the reference logits")
    images = np.asarray(ctx.inputs.arrays["images"], dtype=np.float64)
    variant = diagnose.matching_variant(found, images, _grader_params(ctx.inputs.arrays))
    said = (
        diagnose.describe_variant(variant, LAYERS)
        if variant is not None
        else diagnose.describe_outputs(found, expected)
    )
    hint = "The model must be Linear -> ReLU three times, then a last Linear, and return its "
    hint += "raw outputs (logits)."
    if "probabilities" in said:
        hint = "Return the last Linear layer's output as it is: CrossEntropyLoss applies "
        hint += "log_softmax itself; use torch.softmax(logits, dim=1) only where you need "
        hint += "probabilities (the sample plots)."
    return Behaviour(
        matches=False,
        message=f"with the grader's weights loaded, your model {said}",
        hint=hint,
    )


# -- the grader's own measure of the trained weights ---------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Measure:
    """The trained model's outputs on the grader's test set, and what they score."""

    logits: FloatArray
    labels: np.ndarray
    accuracy: float
    loss: float
    source: str
    """Which forward pass produced ``logits``, in words for the student."""


REFERENCE_SOURCE = "the reference 784-256-128-64-10 network loaded with your trained weights"


def _mapped(ctx: CheckContext) -> tuple[FashionMLP | None, str]:
    """The student's trained weights in the reference network, or None and why not."""
    state = ctx.npz("state_dict")
    if state is None:
        return None, f"no trained weights were saved ({_why(ctx, 'model')})"
    try:
        return _ref().model_from_state(state), ""
    except ValueError as exc:
        return None, f"your weights do not fit the reference network: {exc}"


def _linear_chain(state: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) pairs of a stack of Linear layers from 784 inputs to 10 outputs, in
    the order the state holds them (torch's (out, in) weights); [] when there is none."""
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    values = list(state.values())
    width = LAYERS[0]
    for weight, bias in pairwise(values):
        if weight.ndim == 2 and bias.shape == (weight.shape[0],) and weight.shape[1] == width:
            pairs.append((weight, bias))
            width = weight.shape[0]
            if width == N_CLASSES:
                return pairs
    return []


def _chain_model(pairs: list[tuple[np.ndarray, np.ndarray]]) -> torch.nn.Module:
    """An MLP with the student's layer sizes, ReLU between the layers, their weights loaded."""
    import torch

    layers: list[torch.nn.Module] = [torch.nn.Flatten()]
    for position, (weight, bias) in enumerate(pairs):
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.as_tensor(np.array(weight, dtype=np.float32)))
            linear.bias.copy_(torch.as_tensor(np.array(bias, dtype=np.float32)))
        layers.append(linear)
        if position < len(pairs) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).eval()


def _measure(ctx: CheckContext) -> Measure | Outcome:
    """The student's trained weights measured by the grader: in the reference network when they
    fit it, else in an MLP of their own layer sizes; never the student's own forward pass."""
    images, labels = _test_set(ctx)
    mapped, not_mapped = _mapped(ctx)
    model: torch.nn.Module | None = mapped
    source = REFERENCE_SOURCE
    if model is None:
        state = ctx.npz("state_dict")
        pairs = _linear_chain(state) if state is not None else []
        if not pairs:
            if state is None:
                return Outcome.failed(f"No trained model to measure: {_why(ctx, 'model')}")
            return Outcome.failed(
                f"The grader could not measure your trained model: {not_mapped}, and its "
                "weights are not a stack of Linear layers from 784 inputs to 10 outputs either. "
                "The grader measures the weights itself; it does not take the outputs your own "
                "code computes.",
                hint="Keep your trained model in `model` (an nn.Module of Linear layers) and "
                "make sure every cell runs from top to bottom on a machine without a GPU.",
            )
        model = _chain_model(pairs)
        sizes = "-".join(str(n) for n in (LAYERS[0], *(w.shape[0] for w, _ in pairs)))
        source = (
            f"an MLP of your own layer sizes ({sizes}, ReLU between them) loaded with your "
            "trained weights, because they do not fit the assignment's network"
        )
    loss, accuracy, logits = _ref().evaluate(model, images, labels)
    return Measure(
        logits=logits.astype(np.float64),
        labels=labels,
        accuracy=accuracy,
        loss=loss,
        source=source,
    )


# -- q3.architecture -----------------------------------------------------------------------------


@check("q3.architecture", "Architecture 784-256-128-64-10 with ReLU, logits out")
def architecture(ctx: CheckContext) -> Outcome:
    summary = ctx.json("model_summary")
    if not isinstance(summary, dict):
        return Outcome.failed(f"No model to check: {_why(ctx, 'model')}")
    layers = summary.get("linear_layers", [])
    have = [(int(layer["in"]), int(layer["out"])) for layer in layers]
    want = list(pairwise(LAYERS))
    details = {"linear_layers": have, "module_types": summary.get("module_types", [])}
    if have != want:
        return Outcome.failed(
            f"Expected Linear layers {_chain(want)}, found {_chain(have)} "
            f"(in `{summary.get('name')}`, a {summary.get('class')})",
            hint="Three hidden Linear layers of 256, 128 and 64 units, each followed by a "
            "ReLU, and an output Linear layer of 10: Linear(784, 256), Linear(256, 128), "
            "Linear(128, 64), Linear(64, 10).",
            **details,
        )
    no_bias = [layer["name"] for layer in layers if not layer.get("bias", True)]
    behaviour = _behaviour(ctx)
    if no_bias:
        return Outcome(
            fraction=SHAPES_PART / 2,
            message=f"The Linear layers have the right sizes ({_chain(have)}), but "
            f"{', '.join(no_bias)} {'has' if len(no_bias) == 1 else 'have'} no bias; "
            f"{behaviour.message}",
            hint="Keep the default bias=True in every torch.nn.Linear.",
            details=details,
        )
    if behaviour.matches:
        return Outcome.passed(
            f"Linear layers {_chain(have)}, and {behaviour.message} (so the ReLUs are in place "
            "and the output is logits)",
            **details,
        )
    return Outcome(
        fraction=SHAPES_PART,
        message=f"The Linear layers are right ({_chain(have)}), but {behaviour.message}",
        hint=behaviour.hint,
        details=details,
    )


# -- q3.loss_histories ---------------------------------------------------------------------------


def _history_problem(name: str, values: list[float] | None, epochs: int | None) -> str:
    """What is wrong with one history, or "" when it is one finite float per epoch."""
    if values is None:
        return f"`{name}` is not defined"
    if not values:
        return f"`{name}` is empty: the training loop never appended to it"
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        return f"`{name}` has NaN or infinite values (epochs {bad[:5]})"
    if epochs is not None and len(values) != epochs:
        if len(values) > epochs and len(values) % epochs == 0:
            return (
                f"`{name}` has {len(values)} values, {len(values) // epochs} per epoch; "
                f"expected {epochs}: one mean loss per epoch, not one per batch"
            )
        return (
            f"`{name}` has {len(values)} values; expected {epochs}, one per epoch of the "
            f"EPOCHS = {epochs} the grader set"
        )
    return ""


def _shown_name(names: object, canonical: str) -> str:
    """The name the notebook used for a value (``train_losses``), or the assignment's."""
    found = names.get(canonical) if isinstance(names, dict) else None
    if isinstance(found, str) and re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_]*(\['[A-Za-z0-9_]+'\])?", found
    ):
        return found
    return canonical


@check("q3.loss_histories", "Train and test loss histories, one value per epoch")
def loss_histories(ctx: CheckContext) -> Outcome:
    histories = ctx.json("histories")
    if not isinstance(histories, dict):
        return Outcome.failed(f"No loss histories to check: {_why(ctx, 'histories')}")
    epochs = _parameter(ctx, "EPOCHS", 0) or None
    train = _floats(histories.get("train_loss_history"))
    test = _floats(histories.get("test_loss_history"))
    names = histories.get("names") if isinstance(histories.get("names"), dict) else {}
    problems = [
        problem
        for name, values in zip(HISTORY_NAMES, (train, test), strict=True)
        if (problem := _history_problem(_shown_name(names, name), values, epochs))
    ]
    failed = len(problems)  # counted before two "not defined" become the probe's one message
    searched = ctx.probe_errors("histories")
    if (train is None or test is None) and searched:  # the probe says which names it tried
        problems = [p for p in problems if not p.endswith("is not defined")]
        problems.insert(0, searched[0].message)
    went_down, trend, trend_hint = _decrease(train)
    fraction = HISTORY_PART * (2 - failed) + (1 - 2 * HISTORY_PART) * went_down
    hints = [trend_hint] if trend_hint else []
    if problems:
        hints.insert(
            0,
            "After each epoch append one float (the epoch's mean loss, e.g. "
            "running_loss / len(trainDataLoader)) to each list, and loop over range(EPOCHS).",
        )
        if _first_cell_error(ctx):
            problems.append(_first_cell_error(ctx))
    found = "; ".join(problems) if problems else f"{len(train or [])} epochs of train and test loss"
    return Outcome(
        fraction=fraction,
        message=f"{found[0].upper()}{found[1:]}; {trend}.",
        hint=" ".join(hints),
        details={
            "epochs": epochs,
            "train_loss": [_plain(v) for v in train or []],
            "test_loss": [_plain(v) for v in test or []],
        },
    )


def _decrease(train: list[float] | None) -> tuple[bool, str, str]:
    """Whether the training loss went down overall, what it did, and a hint when it did not."""
    if not train or not all(math.isfinite(v) for v in train):
        return False, "the training loss could not be followed", ""
    if len(train) < 2:
        return True, "one epoch only, so there is no trend to check", ""
    first, last = train[0], train[-1]
    if last <= first * (1 - MIN_TRAIN_DECREASE):
        return True, f"the training loss went down from {number(first)} to {number(last)}", ""
    return (
        False,
        f"the training loss did not go down: {number(first)} after the first epoch, "
        f"{number(last)} after the last (expected at least {percent(MIN_TRAIN_DECREASE)} lower)",
        "A flat training loss means the weights are not being updated: call "
        "optimizer.zero_grad(), loss.backward() and optimizer.step() for every batch, with "
        "the optimizer built on model.parameters() and lr=LEARNING_RATE.",
    )


# -- q3.test_accuracy ----------------------------------------------------------------------------


@check("q3.test_accuracy", "Test accuracy of your trained model, measured by the grader")
def test_accuracy(ctx: CheckContext) -> Outcome:
    need = ctx.threshold("q3.min_test_accuracy")
    measure = _measure(ctx)
    if isinstance(measure, Outcome):
        return measure
    n = len(measure.labels)
    details = {"accuracy": measure.accuracy, "threshold": need, "test_images": n}
    found = (
        f"The grader measured a test accuracy of {number(measure.accuracy)} on all {n} test images "
        f"with {measure.source}"
    )
    if measure.accuracy >= need:
        return Outcome.passed(f"{found}; at least {number(need)} was needed.", **details)
    untrained = " (about chance, 0.10: the weights look untrained)"
    epochs = _parameter(ctx, "EPOCHS", 0)
    return Outcome.failed(
        f"{found}{untrained if measure.accuracy < UNTRAINED_BELOW else ''}; at least "
        f"{number(need)} is needed under the {ctx.profile.name!r} profile"
        f"{f' after {epochs} epochs' if epochs else ''}.",
        hint="Train with CrossEntropyLoss on the logits and SGD(model.parameters(), "
        "lr=LEARNING_RATE), calling zero_grad(), backward() and step() for every batch, for "
        "EPOCHS epochs, and keep the trained model in `model`.",
        **details,
    )


# -- q3.history_consistent -----------------------------------------------------------------------


def _last(histories: Mapping[str, object], name: str) -> float | None:
    values = _floats(histories.get(name))
    return values[-1] if values else None


@check("q3.history_consistent", "Reported final test metrics match the trained model")
def history_consistent(ctx: CheckContext) -> Outcome:
    histories = ctx.json("histories")
    if not isinstance(histories, dict):
        return Outcome.failed(f"No histories to compare: {_why(ctx, 'histories')}")
    measure = _measure(ctx)
    if isinstance(measure, Outcome):
        return measure
    said: list[str] = []
    wrong: list[str] = []
    accuracy = _last(histories, "test_accuracy_history")
    if accuracy is None:
        wrong.append(
            "`test_accuracy_history` is missing or empty, so there is no reported "
            "accuracy to compare"
        )
    else:
        in_percent = 1.0 < accuracy <= 100.0
        value = accuracy / 100.0 if in_percent else accuracy
        read = number(accuracy) + (" (read as a percentage)" if in_percent else "")
        line = (
            f"the last test_accuracy_history entry is {read}, and the grader measured "
            f"{number(measure.accuracy)}"
        )
        (said if abs(value - measure.accuracy) <= ACCURACY_TOLERANCE else wrong).append(line)
    loss = _last(histories, "test_loss_history")
    if loss is None or not math.isfinite(loss):
        wrong.append("the last test_loss_history entry is missing or not a finite number")
    else:
        line = (
            f"the last test_loss_history entry is {number(loss)}, and the grader measured "
            f"{number(measure.loss)}"
        )
        ok = abs(loss - measure.loss) <= LOSS_RTOL * abs(measure.loss) + 1e-3
        (said if ok else wrong).append(line)
    details = {
        "measured_accuracy": measure.accuracy,
        "measured_loss": _plain(measure.loss),
        "reported_accuracy": _plain(accuracy),
        "reported_loss": _plain(loss),
    }
    if not wrong:
        return Outcome.passed(f"Consistent: {'; '.join(said)}.", **details)
    return Outcome(
        fraction=0.5 * len(said),
        message=f"Mismatch with the final model: {'; '.join(wrong)}"
        + (f" (whereas {'; '.join(said)})" if said else "")
        + f". Measured with {measure.source}.",
        hint="Append each epoch's metrics as computed on the whole test set with the model as "
        "it is after that epoch (model.eval(), torch.no_grad()); do not type numbers in or "
        "report a value from an earlier run.",
        details=details,
    )


# -- q3.loss_plot --------------------------------------------------------------------------------


def _student_code_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [
        c
        for c in nb.cells
        if c.cell_type == "code" and "dlgrader-injected" not in c.metadata.get("tags", [])
    ]


def _has_image(cell: NotebookNode) -> bool:
    return any(
        "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
        for out in cell.get("outputs", [])
    )


def _cell_error(cell: NotebookNode) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {str(out.get('evalue', ''))[:200]}"
    return ""


@check("q3.loss_plot", "Plot of the train and test loss curves")
def loss_plot(ctx: CheckContext) -> Outcome:
    nb = ctx.executed_notebook()
    if nb is None:
        return Outcome.failed(f"No executed notebook to look at: {_why(ctx, 'histories')}")
    cells = _student_code_cells(nb)
    uses_history = [c for c in cells if any(n in c.source for n in HISTORY_NAMES)]
    if any(_has_image(c) for c in uses_history):
        return Outcome.passed("A cell that uses the loss histories drew a figure.")
    about_loss = [c for c in cells if _has_image(c) and re.search(r"loss", c.source, re.I)]
    if about_loss:
        return Outcome.passed("A cell about the loss drew a figure.")
    plotting = [c for c in uses_history if re.search(r"\bplt\b|\.plot\(|matplotlib", c.source)]
    if plotting:
        error = _cell_error(plotting[0])
        found = (
            f"the cell that plots the histories raised {error}"
            if error
            else "the cell that plots the histories ran but showed no figure"
        )
        return Outcome.failed(
            f"No loss-curve figure in the executed notebook: {found}.",
            hint="Plot train_loss_history and test_loss_history against the epoch and call "
            "plt.show() (do not close or only save the figure).",
        )
    return Outcome.failed(
        "No loss-curve figure in the executed notebook: no cell plots train_loss_history or "
        "test_loss_history.",
        hint="Add a cell that plots both histories against the epoch with axis labels and a "
        "legend, and shows it with plt.show().",
    )


# -- q3.random_samples ---------------------------------------------------------------------------


def _indices(ctx: CheckContext) -> list[int] | None:
    samples = ctx.json("samples")
    found = samples.get("random_indices") if isinstance(samples, dict) else None
    if not isinstance(found, list) or not all(isinstance(i, int) for i in found):
        return None
    return found


@check("q3.random_samples", "Random test images drawn from the whole test set")
def random_samples(ctx: CheckContext) -> Outcome:
    indices = _indices(ctx)
    if indices is None:
        return Outcome.failed(f"No sampled indices to check: {_why(ctx, 'samples')}")
    samples = ctx.json("samples")
    found_as = {"random_indices": samples.get("name")} if isinstance(samples, dict) else {}
    label = _shown_name(found_as, "random_indices")
    n_test = len(_test_set(ctx)[1])
    k = _parameter(ctx, "N_SAMPLES", DEFAULT_N_SAMPLES)
    details = {"random_indices": indices, "test_images": n_test}
    hint = "Draw them with np.random.choice(len(testdata), N_SAMPLES, replace=False)."
    if len(indices) != k:
        return Outcome.failed(
            f"{label} holds {len(indices)} indices {indices}; expected {k}.",
            hint=hint,
            **details,
        )
    if len(set(indices)) != k:
        return Outcome.failed(
            f"{label} {indices} repeats an index; expected {k} distinct images.",
            hint=hint,
            **details,
        )
    outside = [i for i in indices if not 0 <= i < n_test]
    if outside:
        return Outcome.failed(
            f"{label} {indices}: {outside} lie outside the test set (0 to {n_test - 1}).",
            hint=hint,
            **details,
        )
    batch = _parameter(ctx, "BATCH_SIZE", DEFAULT_BATCH_SIZE) or DEFAULT_BATCH_SIZE
    n_batches = math.ceil(n_test / batch)
    odds = math.comb(n_batches, k) / math.comb(n_test, k)
    if max(indices) < n_batches and odds < BATCH_ODDS_LIMIT:
        return Outcome.failed(
            f"All {k} indices {indices} are below {n_batches}, the number of test batches "
            f"(len(testDataLoader) = ceil({n_test} / {batch})), not the number of test images "
            f"({n_test}): the indices come from the number of batches, not images. Drawn from "
            f"the whole test set, all {k} would land below {n_batches} with probability "
            f"C({n_batches}, {k}) / C({n_test}, {k}) = {number(odds, 2)}.",
            hint="len(testDataLoader) counts batches; draw from len(testdata) (the images) "
            "so that every test image can be picked.",
            odds=odds,
            **details,
        )
    return Outcome.passed(
        f"{k} distinct indices {indices} from the {n_test} test images.", **details
    )


# -- q3.sample_probabilities ---------------------------------------------------------------------


def _are_probabilities(rows: FloatArray) -> bool:
    return bool(
        np.all(np.isfinite(rows))
        and np.all(rows >= -1e-6)
        and np.allclose(rows.sum(axis=1), 1.0, atol=SUM_ATOL)
    )


@check("q3.sample_probabilities", "Class probabilities of the sampled images")
def sample_probabilities(ctx: CheckContext) -> Outcome:
    indices = _indices(ctx)
    if indices is None:
        return Outcome.failed(f"No sampled images to check: {_why(ctx, 'samples')}")
    stored = ctx.npz("sample_probabilities")
    if stored is None or "probabilities" not in stored:
        return Outcome.failed(
            "`sample_probabilities` is not defined or empty"
            + (f" ({_first_cell_error(ctx)})" if _first_cell_error(ctx) else ""),
            hint="Append each sampled image's 10 class probabilities (torch.softmax of the "
            "logits) to sample_probabilities.",
        )
    probs = np.asarray(stored["probabilities"], dtype=np.float64)
    if probs.shape != (len(indices), N_CLASSES):
        return Outcome.failed(
            f"sample_probabilities has shape {probs.shape}; expected ({len(indices)}, 10): one "
            "row of 10 probabilities per index in random_indices."
        )
    sums = probs.sum(axis=1)
    if not _are_probabilities(probs):
        return Outcome.failed(
            f"The rows of sample_probabilities are not probabilities (row sums {_fmt(sums)}, "
            f"smallest value {number(float(np.nanmin(probs)), 3)}).",
            hint="Apply torch.softmax(logits, dim=1) to the model's logits.",
        )
    measure = _measure(ctx)
    if isinstance(measure, Outcome):
        return measure
    n_test = len(measure.labels)
    if not all(0 <= i < n_test for i in indices):
        return Outcome.failed(f"random_indices {indices} are not all test-set indices.")
    outputs = measure.logits[indices]
    expected = diagnose.softmax(outputs)
    agree = [
        bool(np.allclose(p, e, atol=PROBABILITY_ATOL)) for p, e in zip(probs, expected, strict=True)
    ]
    if not all(agree):
        # A model whose forward pass already ends in a softmax (an architecture mistake,
        # charged there), its outputs put through softmax once more by the sample cell: the
        # grader computes that picture too, from its own logits, rather than charge it twice.
        twice = diagnose.softmax(expected)
        again = [
            bool(np.allclose(p, e, atol=PROBABILITY_ATOL))
            for p, e in zip(probs, twice, strict=True)
        ]
        agree = again if all(again) else agree
    if all(agree):
        return Outcome.passed(
            f"The probabilities of test images {indices} match the grader's softmax of "
            f"{measure.source}."
        )
    lines = [
        f"image {i}: yours {_fmt(p, 2)}, the grader's {_fmt(e, 2)}"
        for i, p, e, ok in zip(indices, probs, expected, agree, strict=True)
        if not ok
    ]
    return Outcome(
        fraction=sum(agree) / len(agree),
        message=f"{len(lines)} of {len(indices)} sampled images have probabilities that differ "
        f"from the grader's softmax of {measure.source}: " + "; ".join(lines),
        hint="For each index take testdata[idx], run the final trained model on it in eval "
        "mode and append torch.softmax(logits, dim=1) for that same image.",
    )


CHECKS = (
    architecture,
    loss_histories,
    test_accuracy,
    history_consistent,
    loss_plot,
    random_samples,
    sample_probabilities,
)
