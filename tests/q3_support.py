"""The harness of Q3's check tests: in-process "students" built from the reference solution,
the real probe run on their namespace exactly as the kernel would run it (through the probe
runtime, on the grader's inputs from ``make_inputs``), and the question's checks on what it
wrote. The committed 1,000-image test slice is the test set, as under the quick profile.

The test modules (``test_checks_q3*.py``) wrap ``train_reference``, ``load_test_slice`` and
``single_thread`` in their own module-scoped fixtures.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import torch
from nbformat.v4 import new_code_cell, new_notebook, new_output

from graders.check import run_check
from graders.config import FIXTURE_DATA_ROOT, Profile
from graders.models import (
    Artifact,
    CellError,
    ExecutionRecord,
    ProbeRecord,
    ProbeStatus,
    ProbeStepError,
    QuestionRun,
    RunStatus,
)
from graders.numerics.datasets import load_split
from graders.probe import write_inputs
from graders.questions import load_questions
from graders.questions.api import CheckContext, ExpectationContext, Outcome, ProbeContext
from graders.questions.expectations import LiveExpectations
from graders.questions.q3_fashion_mlp import SPEC, checks, make_inputs
from reference import q3_mlp as ref

RUNTIME = Path(__file__).resolve().parents[1] / "graders" / "kernel" / "probe_runtime.py"
EPOCHS = 4
LEARNING_RATE = 0.1
"""The fixture's learning rate (0.01 would need far more than 4 epochs), injected as a profile
would inject it, so the set-up check holds the optimizer to it."""
MIN_ACCURACY = 0.3
"""For these tests only: the trained reference below scores well above it, chance (0.1) below."""
THRESHOLDS = {
    "q3.min_test_accuracy": MIN_ACCURACY,
    "q3.train_loss_ratio_low": 0.9,
    "q3.train_loss_ratio_high": 1.15,
}
"""The loss band for these tests: around the fixture's own ratio (1.01), far from every slip
(a sum over 32 batches is 32 times the loss, a mean over images of batch means 1/64 of it)."""
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6"
    "kgAAAABJRU5ErkJggg=="
)
PLOT_CELL = "plt.plot(train_loss_history)\nplt.plot(test_loss_history)\nplt.show()"


@dataclass(frozen=True)
class Trained:
    model: ref.FashionMLP
    result: ref.TrainResult


def single_thread() -> Iterator[None]:
    """For a module-scoped autouse fixture: these forward passes are small, and torch's default
    threads only fight the machine's load."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_reference() -> Trained:
    """The reference trained for the tests (4 epochs at lr 0.1 on the 2,000 committed images)."""
    config = ref.TrainConfig(epochs=EPOCHS, lr=LEARNING_RATE, train_limit=2000, seed=2, threads=1)
    result = ref.train(config, FIXTURE_DATA_ROOT)
    return Trained(model=ref.model_from_state(result.state), result=result)


def load_test_slice() -> tuple[np.ndarray, np.ndarray]:
    return load_split(FIXTURE_DATA_ROOT, "FashionMNIST", train=False)


def training_data() -> torch.utils.data.TensorDataset:
    images, labels = load_split(FIXTURE_DATA_ROOT, "FashionMNIST", train=True)
    return torch.utils.data.TensorDataset(
        torch.from_numpy(images[:, None] / np.float32(255.0)), torch.from_numpy(labels)
    )


def student(trained: Trained, test_set: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """A correct student's namespace, as the notebook leaves it."""
    indices = np.random.default_rng(7).choice(len(test_set[1]), 3, replace=False)
    probabilities = ref.class_probabilities(trained.model, test_set[0][indices])
    data = training_data()
    return {
        "model": trained.model,
        "optimizer": torch.optim.SGD(trained.model.parameters(), lr=LEARNING_RATE),
        "loss": torch.nn.CrossEntropyLoss(),
        "trainingdata": data,
        "trainDataLoader": torch.utils.data.DataLoader(data, batch_size=64, shuffle=True),
        "LEARNING_RATE": LEARNING_RATE,
        "train_loss_history": list(trained.result.train_losses),
        "test_loss_history": list(trained.result.test_losses),
        "test_accuracy_history": list(trained.result.test_accuracies),
        "random_indices": indices,
        "sample_probabilities": [p.astype(np.float32) for p in probabilities],
        "EPOCHS": EPOCHS,
        "BATCH_SIZE": 64,
    }


def notebook(*cells: tuple[str, bool, str]) -> nbformat.NotebookNode:
    """Code cells as (source, drew an image, error ename or "")."""
    nb_cells = []
    for source, image, error in cells:
        outputs = []
        if image:
            outputs.append(new_output("display_data", data={"image/png": PNG}))
        if error:
            outputs.append(new_output("error", ename=error, evalue="boom", traceback=[]))
        nb_cells.append(new_code_cell(source, outputs=outputs))
    return new_notebook(cells=nb_cells)


def run_probe(ns: dict[str, Any], tmp_path: Path) -> tuple[Any, tuple[Artifact, ...], list[Any]]:
    """The real probe on ``ns``; returns the inputs and what it wrote, as ``collect`` would."""
    rng = np.random.default_rng(11)
    inputs = make_inputs(
        ProbeContext(profile=Profile(name="t"), data_root=FIXTURE_DATA_ROOT, rng=rng)
    )
    in_dir, out_dir = tmp_path / "in", tmp_path / "artifacts" / "q3"
    write_inputs(inputs, in_dir)
    out_dir.mkdir(parents=True)
    runtime: dict[str, Any] = {"__name__": "probe_runtime"}
    exec(compile(RUNTIME.read_text(encoding="utf-8"), "runtime", "exec"), runtime)
    question = dict(runtime)
    exec(compile(SPEC.probe_source, "probe", "exec"), question)
    runtime["run_probe"](question["probe"], ns, str(out_dir), str(in_dir), 30.0)
    errors = json.loads((out_dir / "probe_errors.json").read_text())
    artifacts = tuple(
        Artifact(name=p.stem, path=str(p.relative_to(tmp_path)), kind=p.suffix[1:], bytes=1)
        for p in sorted(out_dir.iterdir())
        if p.name not in {"probe_errors.json", "probe_done.json", "progress.json"}
    )
    return inputs, artifacts, errors


def grade(
    ns: dict[str, Any],
    tmp_path: Path,
    *,
    nb: nbformat.NotebookNode | None = None,
    cell_errors: tuple[CellError, ...] = (),
    parameters: Mapping[str, object] | None = None,
    thresholds: Mapping[str, float] | None = None,
    tamper: Callable[[Path], None] | None = None,
) -> dict[str, Outcome]:
    """The checks' outcomes for ``ns``; ``tamper`` edits the probe's files (the folder of them)
    before they are graded, as a hostile kernel could."""
    inputs, artifacts, errors = run_probe(ns, tmp_path)
    if tamper is not None:
        tamper(tmp_path / "artifacts" / "q3")
    nb = nb if nb is not None else notebook((PLOT_CELL, True, ""))
    (tmp_path / "executed").mkdir()
    nbformat.write(nb, str(tmp_path / "executed" / "q3.ipynb"))
    run = QuestionRun(
        question="q3",
        title=SPEC.title,
        notebook=None,
        execution=ExecutionRecord(
            question="q3",
            status=RunStatus.CELL_ERRORS if cell_errors else RunStatus.OK,
            cell_errors=cell_errors,
            executed_notebook="executed/q3.ipynb",
            parameters=dict(
                parameters
                if parameters is not None
                else {"EPOCHS": EPOCHS, "LEARNING_RATE": LEARNING_RATE}
            ),
        ),
        probe=ProbeRecord(
            question="q3",
            status=ProbeStatus.PARTIAL if errors else ProbeStatus.OK,
            artifacts=artifacts,
            errors=tuple(ProbeStepError(**e) for e in errors),
        ),
    )
    profile = Profile(name="t")
    full = next(q for q in load_questions() if q.id == "q3")
    live = ExpectationContext(inputs=inputs, data_root=FIXTURE_DATA_ROOT, profile=profile)
    ctx = CheckContext(
        run=run,
        result_dir=tmp_path,
        inputs=inputs,
        profile=profile,
        thresholds=thresholds if thresholds is not None else THRESHOLDS,
        data_root=FIXTURE_DATA_ROOT,
        expectations=LiveExpectations(full.expectations, live),
    )
    outcomes = {}
    for definition in checks.CHECKS:
        outcome, crashed = run_check(definition, ctx)
        assert not crashed, outcome.details.get("traceback")
        outcomes[definition.id] = outcome
    return outcomes


def scores(outcomes: Mapping[str, Outcome]) -> dict[str, float]:
    return {k.removeprefix("q3."): round(v.fraction, 3) for k, v in outcomes.items()}


def text(outcome: Outcome) -> str:
    return f"{outcome.message} {outcome.hint}".lower()


FULL = {
    "architecture": 1.0,
    "training_setup": 1.0,
    "loss_histories": 1.0,
    "test_accuracy": 1.0,
    "history_consistent": 1.0,
    "loss_plot": 1.0,
    "random_samples": 1.0,
    "sample_probabilities": 1.0,
}
