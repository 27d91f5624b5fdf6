"""Q4's checks on artifacts the reference produces, each known mistake, and accepted layouts.

Artifacts are written in the probe's own layout (``<name>.npz`` / ``.json`` beside a
``ProbeRecord``). The accepted variations go through the real probe, run in-process on small
"student" namespaces, so the layout conversions the checks rely on are exercised too.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from nbformat import NotebookNode

from graders import probe as probe_module
from graders.check import run_check
from graders.config import FIXTURE_DATA_ROOT, Profile
from graders.errors import ConfigError, ReferenceSolutionError
from graders.kernel import source as kernel_source
from graders.models import (
    Artifact,
    CellError,
    ExecutionRecord,
    ProbeInputs,
    ProbeRecord,
    ProbeStatus,
    ProbeStepError,
    QuestionRun,
    RunStatus,
)
from graders.numerics.datasets import load_scaled
from graders.questions import load_questions
from graders.questions.api import CheckContext, CheckDef, ExpectationContext, Outcome, ProbeContext
from graders.questions.expectations import LiveExpectations
from graders.questions.q4_backprop import (
    ROUND_RATES,
    SPEC,
    TEMPLATE_LEARNING_RATES,
    checks,
    diagnose,
    make_inputs,
    probe_learning_rate,
)
from graders.render.numbers import percent
from reference import q4_numpy as ref

Arrays = dict[str, np.ndarray]
RUNTIME = kernel_source("probe_runtime")


# -- building contexts -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(quick_profile: Profile) -> ProbeInputs:
    ctx = ProbeContext(
        profile=quick_profile, data_root=FIXTURE_DATA_ROOT, rng=np.random.default_rng(7)
    )
    return make_inputs(ctx)


def injected(inputs: ProbeInputs) -> ref.Params:
    return ref.Params.of(
        [inputs.arrays[f"w{i}"] for i in range(3)], [inputs.arrays[f"b{i}"] for i in range(3)]
    )


def as_arrays(params: ref.Params, prefix: str = "") -> Arrays:
    out: Arrays = {}
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        out[f"{prefix}w{i}"], out[f"{prefix}b{i}"] = w, b
    return out


@pytest.fixture(scope="module")
def trained() -> ref.Params:
    """The reference after one epoch on the committed 2,000-image slice (what quick trains)."""
    x, y = load_scaled(FIXTURE_DATA_ROOT, "MNIST", train=True)
    params = ref.init_params()
    ref.train_epoch(params, x, y)
    return params


def template_report(params: ref.Params, *, heading: str = "test") -> str:
    """What the template's feed_forward_test_data() prints for ``params`` on the grader's 1,000
    test images (feed_forward_dataset's own print statements, reproduced)."""
    x, y = load_scaled(FIXTURE_DATA_ROOT, "MNIST", train=False, limit=1000)
    loss, correct = ref.evaluate_dataset(params, x, y)
    share = format(correct / len(y) * 100, ".2f")
    return (
        f"Feeding forward all {heading} data...\n\nAverage loss: {np.round(loss, decimals=2)}\n"
        f"Accuracy (# of correct guesses): {float(correct)} / {len(y)} ( {share} %)\n\n"
    )


def printed(*outputs: str) -> NotebookNode:
    """An executed notebook whose code cells printed ``outputs``, one cell each, after a
    markdown cell and a grader-injected cell (neither counted in the student's numbering)."""
    nb = nbformat.v4.new_notebook()
    injected_cell = nbformat.v4.new_code_cell("# preamble")
    injected_cell.metadata["tags"] = ["dlgrader-injected"]
    injected_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Accuracy: 1%\n")]
    nb.cells = [injected_cell, nbformat.v4.new_markdown_cell("# Q4")]
    for text in outputs:
        cell = nbformat.v4.new_code_cell("test_and_train()")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
        nb.cells.append(cell)
    return nb


def reference_artifacts(inputs: ProbeInputs, final: ref.Params) -> dict[str, Any]:
    """What the probe records for a correct notebook, computed by the reference (and, under
    ``executed``, the executed notebook with the template's last test report)."""
    a, params, lr = inputs.arrays, injected(inputs), inputs.values["learning_rate"]
    forward = [
        ref.feed_forward_sample(params, x, int(y))
        for x, y in zip(a["samples"], a["labels"], strict=True)
    ]
    steps: Arrays = {}
    for i, (x, y) in enumerate(zip(a["train_samples"], a["train_labels"], strict=True)):
        steps |= as_arrays(ref.train_one_sample(params, x, int(y), lr), prefix=f"s{i}.")
    return {
        "helpers": {
            "sigmoid": ref.sigmoid(a["z"]),
            "dsigmoid": ref.dsigmoid(a["z"]),
            "softmax": np.stack([ref.softmax(row) for row in a["softmax_in"]]),
        },
        "init": as_arrays(ref.init_params()),
        "final": as_arrays(final),
        "forward": {
            "index": np.arange(len(forward)),
            "losses": np.array([f[0] for f in forward]),
            "guesses": np.stack([f[1] for f in forward]),
        },
        "forward_meta": {"input_shapes": ["flat"] * len(forward), "count": len(forward)},
        "layout": {"orientation": "in_out", "bias_shape": "flat"},
        "train_step": steps,
        "executed": printed(template_report(ref.init_params()), template_report(final)),
    }


def make_context(
    tmp_path: Path,
    inputs: ProbeInputs,
    profile: Profile,
    artifacts: Mapping[str, Any],
    *,
    probe_errors: Sequence[ProbeStepError] = (),
    cell_errors: Sequence[CellError] = (),
    thresholds: Mapping[str, float] | None = None,
    output_truncated: bool = False,
) -> CheckContext:
    folder = tmp_path / "artifacts" / "q4"
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    executed = None
    for name, value in artifacts.items():
        if isinstance(value, NotebookNode) and name == "executed":
            (tmp_path / "executed").mkdir(exist_ok=True)
            nbformat.write(value, str(tmp_path / "executed" / "q4.ipynb"))
            executed = "executed/q4.ipynb"
            continue
        if isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values()):
            path = folder / f"{name}.npz"
            np.savez(path, **value)
            kind = "npz"
        else:
            path = folder / f"{name}.json"
            path.write_text(json.dumps(value), encoding="utf-8")
            kind = "json"
        rel = str(path.relative_to(tmp_path))
        records.append(Artifact(name=name, path=rel, kind=kind, bytes=path.stat().st_size))
    status = RunStatus.CELL_ERRORS if cell_errors else RunStatus.OK
    run = QuestionRun(
        question="q4",
        title=SPEC.title,
        notebook=None,
        execution=ExecutionRecord(
            question="q4",
            status=status,
            cell_errors=tuple(cell_errors),
            executed_notebook=executed,
            output_truncated=output_truncated,
        ),
        probe=ProbeRecord(
            question="q4",
            status=ProbeStatus.PARTIAL if probe_errors else ProbeStatus.OK,
            artifacts=tuple(records),
            errors=tuple(probe_errors),
        ),
    )
    full = next(q for q in load_questions() if q.id == "q4")
    expectations = ExpectationContext(inputs=inputs, data_root=FIXTURE_DATA_ROOT, profile=profile)
    return CheckContext(
        run=run,
        result_dir=tmp_path,
        inputs=inputs,
        profile=profile,
        # One reference epoch on the committed slice lands between chance and 0.2.
        thresholds={"q4.min_test_accuracy": 0.1} if thresholds is None else thresholds,
        data_root=FIXTURE_DATA_ROOT,
        expectations=LiveExpectations(full.expectations, expectations),
    )


@pytest.fixture
def good(inputs: ProbeInputs, trained: ref.Params) -> dict[str, Any]:
    return reference_artifacts(inputs, trained)


@pytest.fixture
def grade(tmp_path: Path, inputs: ProbeInputs, quick_profile: Profile) -> Callable[..., Outcome]:
    """Run one check on the given artifacts; a crash of the check fails the test."""

    def run(definition: CheckDef, artifacts: Mapping[str, Any], **kwargs: Any) -> Outcome:
        ctx = make_context(tmp_path, inputs, quick_profile, artifacts, **kwargs)
        outcome, crashed = run_check(definition, ctx)
        assert not crashed, outcome.message
        return outcome

    return run


def text(outcome: Outcome) -> str:
    return f"{outcome.message} {outcome.hint}".lower()


# -- the reference passes ----------------------------------------------------------------------


def test_spec_declares_exactly_the_rubric_ids() -> None:
    assert [c.id for c in SPEC.checks] == [
        "q4.helpers",
        "q4.init",
        "q4.forward",
        "q4.backprop_step",
        "q4.final_accuracy",
        "q4.reported_consistent",
    ]


@pytest.mark.parametrize("definition", checks.CHECKS, ids=lambda c: c.id)
def test_the_reference_gets_full_marks(definition: CheckDef, grade, good) -> None:
    outcome = grade(definition, good)
    assert outcome.fraction == 1.0, outcome.message


# -- q4.helpers ----------------------------------------------------------------------------------


def test_softmax_without_the_max_overflows_near_900_and_costs_a_quarter(grade, good, inputs):
    with np.errstate(all="ignore"):
        naive = np.stack([np.exp(r) / np.exp(r).sum() for r in inputs.arrays["softmax_in"]])
    assert not np.all(np.isfinite(naive))  # the input really does overflow
    outcome = grade(
        checks.activations.helpers, good | {"helpers": good["helpers"] | {"softmax": naive}}
    )
    assert outcome.fraction == 0.75
    assert "+900" in outcome.message and "nan/inf" in text(outcome)
    assert "x.max()" in outcome.hint


def test_dsigmoid_written_for_the_activation_is_named(grade, good, inputs):
    z = inputs.arrays["z"]
    outcome = grade(
        checks.activations.helpers, good | {"helpers": good["helpers"] | {"dsigmoid": z * (1 - z)}}
    )
    assert outcome.fraction == 0.75
    assert "pre-activation" in outcome.message


def test_a_missing_helper_fails_its_part_with_the_probes_reason(grade, good):
    helpers = {k: v for k, v in good["helpers"].items() if k != "softmax"}
    error = ProbeStepError(
        step="helpers[softmax]",
        kind="missing_name",
        message="the notebook does not define `softmax`",
    )
    outcome = grade(checks.activations.helpers, good | {"helpers": helpers}, probe_errors=[error])
    assert outcome.fraction == 0.5
    assert "does not define `softmax`" in outcome.message


def test_a_wrong_sigmoid_fails_its_part(grade, good, inputs):
    wrong = np.tanh(inputs.arrays["z"])
    outcome = grade(
        checks.activations.helpers, good | {"helpers": good["helpers"] | {"sigmoid": wrong}}
    )
    assert outcome.fraction == 0.75 and "sigmoid(" in outcome.message


# -- q4.init -------------------------------------------------------------------------------------


def draws(
    layer_shape: Callable[[int, int], tuple[int, int]],
    scale: Callable[[int, int], float],
    seed: int = 80085,
) -> Arrays:
    rng = np.random.default_rng(seed)
    out: Arrays = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(ref.LAYER_SIZES)):
        w = rng.normal(0, scale(n_in, n_out), size=layer_shape(n_in, n_out))
        out[f"w{i}"] = w if w.shape == (n_in, n_out) else w.T  # the probe's canonical layout
        out[f"b{i}"] = np.zeros(n_out)
    return out


def std(n_in: int, n_out: int) -> float:
    return float(np.sqrt(1 / max(n_in, n_out)))


def test_the_seeded_draws_in_out_in_shape_count_as_exact(grade, good):
    outcome = grade(checks.initial_weights.init, good | {"init": draws(lambda i, o: (o, i), std)})
    assert outcome.fraction == 1.0, outcome.message


def as_float32(arrays: Arrays) -> Arrays:
    """What the probe hands over for arrays the notebook stored as float32: their float32
    values, as float64 (``as_array``)."""
    return {k: v.astype(np.float32).astype(np.float64) for k, v in arrays.items()}


@pytest.mark.parametrize(
    "shape", [lambda i, o: (i, o), lambda i, o: (o, i)], ids=["in_out", "out_in"]
)
def test_the_seeded_draws_stored_as_float32_count_as_exact(grade, good, shape):
    outcome = grade(checks.initial_weights.init, good | {"init": as_float32(draws(shape, std))})
    assert outcome.fraction == 1.0, outcome.message


def test_float32_draws_from_another_seed_or_scaled_slightly_off_are_not_exact(grade, good):
    other = as_float32(draws(lambda i, o: (i, o), std, seed=1))
    outcome = grade(checks.initial_weights.init, good | {"init": other})
    assert outcome.fraction == checks.initial_weights.INIT_PARTIAL
    # The right draws, but scaled 1e-5 off: far above float32's rounding, so not the same draws.
    off = as_float32({k: v * (1 + 1e-5) for k, v in draws(lambda i, o: (i, o), std).items()})
    outcome = grade(checks.initial_weights.init, good | {"init": off})
    assert outcome.fraction == checks.initial_weights.INIT_PARTIAL


def test_the_right_distribution_from_another_seed_is_partial(grade, good):
    outcome = grade(
        checks.initial_weights.init, good | {"init": draws(lambda i, o: (i, o), std, seed=1)}
    )
    assert outcome.fraction == checks.initial_weights.INIT_PARTIAL
    assert "default_rng(80085)" in outcome.message


def test_the_standard_deviation_used_as_the_variance_scores_zero(grade, good):
    wrong = draws(lambda i, o: (i, o), lambda i, o: 1 / max(i, o))
    outcome = grade(checks.initial_weights.init, good | {"init": wrong})
    assert outcome.fraction == 0.0
    assert "expected variance 1/784" in outcome.message
    assert "standard deviation" in text(outcome)


def test_variance_one_over_n_out_is_named(grade, good):
    wrong = draws(lambda i, o: (i, o), lambda i, o: float(np.sqrt(1 / o)))
    outcome = grade(checks.initial_weights.init, good | {"init": wrong})
    assert outcome.fraction == 0.0 and "1/n_out" in outcome.message
    assert "weights[0]" in outcome.message and "weights[1]" not in outcome.message


def test_nonzero_biases_cost_half(grade, good):
    init = good["init"] | {"b1": np.full(32, 0.1)}
    outcome = grade(checks.initial_weights.init, good | {"init": init})
    assert (
        outcome.fraction == checks.initial_weights.BIASES_NONZERO_PARTIAL
        and "biases" in outcome.message
    )


def test_wrong_shapes_score_zero_and_say_which(grade, good):
    init = good["init"] | {"w1": np.zeros((32, 16)), "b1": np.zeros(16)}
    outcome = grade(checks.initial_weights.init, good | {"init": init})
    assert outcome.fraction == 0.0
    assert "expected shape (32, 32)" in outcome.message and "(32, 16)" in outcome.message


def test_the_variance_test_rarely_fails_correct_draws_and_always_catches_a_factor_two() -> None:
    rng = np.random.default_rng(0)
    for n in (320, 1024, 25088):  # the three layers' sizes
        z_ok = [
            checks.initial_weights.variance_z(rng.normal(0, 1, size=n), 1.0) for _ in range(300)
        ]
        assert max(abs(z) for z in z_ok) < 4.5
        assert abs(np.mean(z_ok)) < 0.25 and 0.8 < np.std(z_ok) < 1.2  # ~ standard normal
        assert all(
            abs(checks.initial_weights.variance_z(rng.normal(0, 1, size=n), 2.0))
            > checks.initial_weights.INIT_Z
            for _ in range(20)
        )


# -- q4.forward ----------------------------------------------------------------------------------


def forward_with(params: ref.Params, inputs: ProbeInputs) -> Arrays:
    a = inputs.arrays
    out = [
        ref.feed_forward_sample(params, x, int(y))
        for x, y in zip(a["samples"], a["labels"], strict=True)
    ]
    return {
        "index": np.arange(len(out)),
        "losses": np.array([o[0] for o in out]),
        "guesses": np.stack([o[1] for o in out]),
    }


def test_a_forward_pass_without_biases_is_named(grade, good, inputs):
    params = injected(inputs)
    no_bias = ref.Params.of(params.weights, [np.zeros_like(b) for b in params.biases])
    outcome = grade(checks.forward.forward, good | {"forward": forward_with(no_bias, inputs)})
    assert outcome.fraction < 1.0
    assert "without the biases" in outcome.message


def test_a_forward_pass_ignoring_the_injected_weights_is_named(grade, good, inputs, trained):
    outcome = grade(checks.forward.forward, good | {"forward": forward_with(trained, inputs)})
    assert outcome.fraction < 0.75
    assert "instead of the global `weights`" in outcome.message


def test_samples_that_raised_cost_their_share_only(grade, good):
    fwd = {k: v[2:] for k, v in good["forward"].items()}
    errors = [
        ProbeStepError(step=f"feed_forward_sample[{i}]", kind="raised", message="ValueError: boom")
        for i in (0, 1)
    ]
    outcome = grade(checks.forward.forward, good | {"forward": fwd}, probe_errors=errors)
    n = len(good["forward"]["losses"])
    assert outcome.fraction == pytest.approx((n - 2) / n)
    assert "ValueError: boom" in outcome.message


def test_a_class_index_instead_of_a_one_hot_vector_fails_the_guesses(grade, good):
    fwd = good["forward"] | {"guesses": np.argmax(good["forward"]["guesses"], axis=1)[:, None]}
    outcome = grade(checks.forward.forward, good | {"forward": fwd})
    assert outcome.fraction == 0.5 and "expected (10,)" in outcome.message


# -- q4.backprop_step ----------------------------------------------------------------------------


def steps_with(
    update: Callable[[ref.Params, np.ndarray, int, float], ref.Params], inputs
) -> Arrays:
    a, params, lr = inputs.arrays, injected(inputs), inputs.values["learning_rate"]
    out: Arrays = {}
    for i, (x, y) in enumerate(zip(a["train_samples"], a["train_labels"], strict=True)):
        out |= as_arrays(update(params, x, int(y), lr), prefix=f"s{i}.")
    return out


def mistake(name: str) -> Callable[[ref.Params, np.ndarray, int, float], ref.Params]:
    return diagnose.MISTAKE_UPDATES[name]


def test_dsigmoid_on_the_activation_fails_the_hidden_layers_and_says_pre_activation(
    grade, good, inputs
):
    steps = steps_with(mistake("dsigmoid_on_activation"), inputs)
    outcome = grade(checks.backprop.backprop_step, good | {"train_step": steps})
    assert outcome.fraction == pytest.approx(1 / 3)  # the output layer is still right
    assert "pre-activation" in outcome.message and "dsigmoid" in outcome.message
    assert "weights[0]" in outcome.message and "weights[1]" in outcome.message
    assert "Correct: weights[2], biases[2]" in outcome.message


@pytest.mark.parametrize(
    ("name", "phrase"),
    [
        ("no_derivative", "without the sigmoid derivative"),
        ("updated_before_backprop", "already updated"),
    ],
)
def test_other_known_backprop_mistakes_are_named(grade, good, inputs, name, phrase):
    outcome = grade(
        checks.backprop.backprop_step, good | {"train_step": steps_with(mistake(name), inputs)}
    )
    assert outcome.fraction == pytest.approx(1 / 3) and phrase in outcome.message


def test_an_unchanged_network_scores_zero(grade, good, inputs):
    outcome = grade(
        checks.backprop.backprop_step,
        good | {"train_step": steps_with(lambda p, x, y, lr: p, inputs)},
    )
    assert outcome.fraction == 0.0 and "did not change" in outcome.message


@pytest.mark.parametrize(("factor", "phrase"), [(-1.0, "wrong sign"), (10 / 3, "3.333 times")])
def test_a_scaled_update_is_named(grade, good, inputs, factor, phrase):
    outcome = grade(
        checks.backprop.backprop_step,
        good
        | {
            "train_step": steps_with(
                lambda p, x, y, lr: ref.train_one_sample(p, x, y, lr * factor), inputs
            )
        },
    )
    assert outcome.fraction == 0.0 and phrase in outcome.message


def test_one_wrong_layer_costs_its_sixth_and_quotes_the_finite_difference(grade, good, inputs):
    steps = dict(good["train_step"])
    steps["s0.w1"] = steps["s0.w1"] + 1e-3 * np.random.default_rng(0).normal(size=(32, 32))
    outcome = grade(checks.backprop.backprop_step, good | {"train_step": steps})
    assert outcome.fraction == pytest.approx(5 / 6)
    assert "weights[1]" in outcome.message and "finite differences" in outcome.message


def test_a_raising_train_one_sample_scores_zero_with_its_error(grade, good):
    errors = [ProbeStepError(step="train_one_sample[0]", kind="raised", message="IndexError: nope")]
    outcome = grade(
        checks.backprop.backprop_step,
        {k: v for k, v in good.items() if k != "train_step"},
        probe_errors=errors,
    )
    assert outcome.fraction == 0.0 and "IndexError: nope" in outcome.message


def test_the_reference_gradients_agree_with_finite_differences(inputs):
    a = inputs.arrays
    _, points = diagnose.verified_gradients(
        injected(inputs), a["train_samples"][0], int(a["train_labels"][0])
    )
    assert {(p.at.kind, p.at.layer) for p in points} == {
        (k, i) for k in ("weights", "biases") for i in range(3)
    }
    assert all(np.isclose(p.backprop, p.finite_difference, rtol=1e-4, atol=1e-7) for p in points)


def test_a_wrong_reference_gradient_is_a_reference_error(inputs, monkeypatch):
    real = ref.gradients_one_sample

    def wrong(params, sample, y):
        w, b = real(params, sample, y)
        return (w[0], w[1] * 1.1, w[2]), b

    monkeypatch.setattr(ref, "gradients_one_sample", wrong)
    a = inputs.arrays
    with pytest.raises(ReferenceSolutionError, match=r"weights\[1\]"):
        diagnose.verified_gradients(
            injected(inputs), a["train_samples"][0], int(a["train_labels"][0])
        )


def test_an_update_made_with_the_templates_rate_does_not_scale_with_the_rate_passed(
    grade, good, inputs
):
    steps = steps_with(lambda p, x, y, lr: ref.train_one_sample(p, x, y, 0.003), inputs)
    outcome = grade(checks.backprop.backprop_step, good | {"train_step": steps})
    assert outcome.fraction == 0.0
    assert "did not scale with the learning rate passed" in outcome.message
    assert "0.003 (the template's default)" in outcome.message
    assert "learning_rate argument" in outcome.hint


def test_a_known_mistake_made_at_the_notebooks_own_rate_names_both(grade, good, inputs):
    wrong = mistake("dsigmoid_on_activation")
    steps = steps_with(lambda p, x, y, lr: wrong(p, x, y, 0.003), inputs)
    meta = {"learning_rate_passed": "keyword", "notebook_rates": {"LEARNING_RATE": 0.003}}
    outcome = grade(checks.backprop.backprop_step, good | {"train_step": steps, "train_meta": meta})
    assert outcome.fraction == 0.0
    assert "did not scale with the learning rate passed" in outcome.message
    assert "pre-activation" in outcome.message and "the global LEARNING_RATE" in outcome.message


def test_hostile_train_meta_is_ignored_not_trusted(grade, good, inputs):
    steps = steps_with(lambda p, x, y, lr: ref.train_one_sample(p, x, y, 0.003), inputs)
    meta = {
        "learning_rate_passed": ["x"],
        "globals_set": "LEARNING_RATE",
        "notebook_rates": {"<b>x</b>": 0.5, "lr": "0.003", "eta": True, "alpha": -1, "LR": 1e999},
    }
    outcome = grade(checks.backprop.backprop_step, good | {"train_step": steps, "train_meta": meta})
    assert outcome.fraction == 0.0 and "<b>" not in outcome.message
    assert "did not scale with the learning rate passed" in outcome.message


def test_an_update_off_by_more_than_rounding_is_not_called_a_rate_problem(grade, good, inputs):
    steps = steps_with(lambda p, x, y, lr: ref.train_one_sample(p, x, y, lr * (1 + 1e-4)), inputs)
    outcome = grade(checks.backprop.backprop_step, good | {"train_step": steps})
    assert outcome.fraction == 0.0
    assert "differs from -lr * the loss gradient" in outcome.message
    assert "did not scale" not in outcome.message and " 1 times" not in outcome.message


def test_the_probes_rate_is_off_every_default_and_round_literal() -> None:
    """A notebook that ignores its learning_rate argument (the template's 0.003, the global
    LEARNING_RATE, a typed-in 0.01) must not match the rate the grader passes."""
    rates = [probe_learning_rate(np.random.default_rng(seed)) for seed in range(300)]
    for rate in rates:
        assert all(abs(rate / c - 1) > 0.05 for c in (*TEMPLATE_LEARNING_RATES, *ROUND_RATES))
        assert rate >= 4 * max(TEMPLATE_LEARNING_RATES)
    assert len(set(rates)) > 50  # drawn, not one fixed value a notebook could learn


def test_make_inputs_passes_the_drawn_rate_and_keeps_the_arrays(quick_profile, inputs):
    again = make_inputs(
        ProbeContext(
            profile=quick_profile, data_root=FIXTURE_DATA_ROOT, rng=np.random.default_rng(7)
        )
    )
    assert again.values["learning_rate"] == inputs.values["learning_rate"]  # regrades agree
    assert inputs.values["learning_rate"] not in TEMPLATE_LEARNING_RATES


# -- q4.final_accuracy ---------------------------------------------------------------------------


def test_the_accuracy_is_the_graders_own_and_compared_with_the_threshold(grade, good, trained):
    x, y = load_scaled(FIXTURE_DATA_ROOT, "MNIST", train=False, limit=1000)
    _, correct = ref.evaluate_dataset(trained, x, y)
    passed = grade(
        checks.accuracy.final_accuracy, good, thresholds={"q4.min_test_accuracy": correct / len(y)}
    )
    assert passed.fraction == 1.0 and passed.details["correct"] == correct
    failed = grade(
        checks.accuracy.final_accuracy,
        good,
        thresholds={"q4.min_test_accuracy": (correct + 1) / len(y)},
    )
    assert failed.fraction == 0.0
    assert percent(correct / len(y)) in failed.message


def test_untrained_weights_fail_on_the_threshold_and_the_cell_error_is_named(grade, good):
    error = CellError(
        cell_index=2,
        ename="ModuleNotFoundError",
        evalue="No module named 'tensorflow'",
        source_excerpt="import tensorflow",
    )
    untrained = good | {"final": good["init"]}
    outcome = grade(
        checks.accuracy.final_accuracy,
        untrained,
        cell_errors=[error],
        thresholds={"q4.min_test_accuracy": 0.5},
    )
    assert outcome.fraction == 0.0
    assert "never trained" in outcome.message and "tensorflow" in outcome.message


def test_only_the_threshold_decides_even_for_untrained_weights(grade, good):
    """Initialized and trained in one cell, the snapshot equals the final weights: no penalty."""
    same = good | {"init": good["final"]}
    outcome = grade(checks.accuracy.final_accuracy, same, thresholds={"q4.min_test_accuracy": 0.0})
    assert outcome.fraction == 1.0


def claiming_raw_pixels(artifacts: dict[str, Any]) -> dict[str, Any]:
    """The rescaling attack: a network trained on /255 pixels, its first layer divided by 255
    (the same function on raw pixels) and ``x_train`` multiplied by 255 after training, so the
    probe reads a 0-255 training array."""
    final = dict(artifacts["final"])
    final["w0"] = final["w0"] / 255.0
    scale = {"name": "x_train", "shape": [2000, 784], "dtype": "float64", "min": 0.0,
             "max": 255.0, "mean": 33.3}  # fmt: skip
    return artifacts | {"final": final, "input_scale": scale}


def test_the_raw_pixel_threshold_is_granted_only_to_a_verified_backprop(grade, good, inputs):
    """The lower raw-pixel threshold rests on the notebook's own account of its pixels; a wrong
    backprop rescaling its network to claim it is held to the assignment's threshold."""
    claimed = claiming_raw_pixels(good)
    x, y = load_scaled(FIXTURE_DATA_ROOT, "MNIST", train=False, limit=1000)
    _, correct = ref.evaluate_dataset(injected_params_of(good["final"]), x, y)
    accuracy = correct / len(y)
    thresholds = {"q4.min_test_accuracy": accuracy + 0.05, "q4.min_test_accuracy_raw": 0.0}

    verified = grade(checks.accuracy.final_accuracy, claimed, thresholds=thresholds)
    assert verified.fraction == 1.0, verified.message  # the same function, on raw test pixels
    assert verified.details["threshold_key"] == "q4.min_test_accuracy_raw"
    assert verified.details["correct"] == correct and "raw 0-255 pixels" in verified.message

    wrong = claimed | {"train_step": steps_with(mistake("dsigmoid_on_activation"), inputs)}
    held = grade(checks.accuracy.final_accuracy, wrong, thresholds=thresholds)
    assert held.fraction == 0.0
    assert held.details["threshold_key"] == "q4.min_test_accuracy"
    assert held.details["correct"] == correct
    assert "verified (q4.backprop_step)" in held.message
    assert percent(accuracy + 0.05) in held.message

    unit = grade(
        checks.accuracy.final_accuracy,
        good | {"train_step": wrong["train_step"]},
        thresholds={"q4.min_test_accuracy": accuracy},
    )
    assert unit.fraction == 1.0 and "verified" not in unit.message  # /255: nothing withheld


def injected_params_of(arrays: Arrays) -> ref.Params:
    return ref.Params.of([arrays[f"w{i}"] for i in range(3)], [arrays[f"b{i}"] for i in range(3)])


@pytest.mark.parametrize(
    "definition",
    [checks.accuracy.final_accuracy, checks.reported.reported_consistent],
    ids=lambda c: c.id,
)
def test_missing_final_weights_say_why(grade, good, definition):
    error = ProbeStepError(
        step="final_weights", kind="missing_name", message="the notebook does not define `weights`"
    )
    without = {k: v for k, v in good.items() if k != "final"}
    outcome = grade(definition, without, probe_errors=[error])
    assert outcome.fraction == 0.0 and "does not define `weights`" in outcome.message


def test_no_forward_artifact_says_why(grade, good):
    error = ProbeStepError(
        step="feed_forward_sample", kind="missing_name", message="the notebook does not define x"
    )
    without = {k: v for k, v in good.items() if k != "forward"}
    outcome = grade(checks.forward.forward, without, probe_errors=[error])
    assert outcome.fraction == 0.0 and "does not define x" in outcome.message


def test_final_weights_with_nan_fail_without_crashing(grade, good):
    final = good["final"] | {"w2": np.full((32, 10), np.nan)}
    outcome = grade(checks.accuracy.final_accuracy, good | {"final": final})
    assert outcome.fraction == 0.0 and "NaN" in outcome.message


def test_a_missing_threshold_is_a_configuration_fault(tmp_path, inputs, quick_profile, good):
    ctx = make_context(tmp_path, inputs, quick_profile, good, thresholds={})
    with pytest.raises(ConfigError, match=r"q4\.min_test_accuracy"):
        run_check(checks.accuracy.final_accuracy, ctx)


# -- accepted variations, through the real probe ------------------------------------------------

HELPERS = """
import numpy as np
from numpy.random import default_rng
LEARNING_RATE = 0.003

def sigmoid(x):
    x = np.clip(x, -500, 500)
    return np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))

def dsigmoid(x):
    return sigmoid(x) * (1 - sigmoid(x))

def softmax(x):
    y = np.exp(x - x.max())
    return y / y.sum()

def one_hot(y):
    r = np.zeros(10)
    r[y] = 1
    return r
"""

OUT_IN_COLUMNS = """
rng = default_rng(80085)
weights, biases = [], []
for n_in, n_out in [(784, 32), (32, 32), (32, 10)]:
    weights.append(rng.normal(0, np.sqrt(1 / max(n_in, n_out)), size=(n_out, n_in)))
    biases.append(np.zeros((n_out, 1)))

def forward_all(sample):
    acts, zs = [sample.reshape(-1, 1)], []
    for i, (W, b) in enumerate(zip(weights, biases)):
        zs.append(W @ acts[-1] + b)
        acts.append(sigmoid(zs[-1]) if i < len(weights) - 1 else softmax(zs[-1]))
    return acts, zs

def feed_forward_sample(sample, y):
    out = forward_all(sample)[0][-1].reshape(-1)
    guess = np.zeros(10)
    guess[np.argmax(out)] = 1
    return -np.sum(one_hot(y) * np.log(out)), guess

def train_one_sample(sample, y, learning_rate=0.003):
    acts, zs = forward_all(sample)
    delta = acts[-1] - one_hot(y).reshape(-1, 1)
    grads = [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        if i < len(weights) - 1:
            delta = (weights[i + 1].T @ delta) * dsigmoid(zs[i])
        grads[i] = (delta @ acts[i].T, delta)
    for i, (gw, gb) in enumerate(grads):
        weights[i] -= learning_rate * gw
        biases[i] -= learning_rate * gb
"""

RETURNS_NEW_ROW_BIASES_IMAGE_INPUT = """
rng = default_rng(80085)
sizes = [(784, 32), (32, 32), (32, 10)]
weights = [rng.normal(0, np.sqrt(1 / max(i, o)), size=(i, o)) for i, o in sizes]
biases = [np.zeros((1, o)) for o in (32, 32, 10)]

def layers(sample):
    acts, zs = [sample.reshape(1, 784)], []
    for i, (W, b) in enumerate(zip(weights, biases)):
        zs.append(acts[-1] @ W + b)
        acts.append(sigmoid(zs[-1]) if i < 2 else softmax(zs[-1]))
    return acts, zs

def feed_forward_sample(sample, y):
    assert sample.shape == (28, 28), "this one wants images"
    out = layers(sample)[0][-1].reshape(-1)
    guess = np.zeros(10)
    guess[np.argmax(out)] = 1
    return -np.log(out[y]), guess

def train_one_sample(sample, y):  # reads LEARNING_RATE, returns the new lists
    acts, zs = layers(sample)
    delta = acts[-1] - one_hot(y)
    new_w, new_b = list(weights), list(biases)
    for i in (2, 1, 0):
        if i < 2:
            delta = (delta @ weights[i + 1].T) * dsigmoid(zs[i])
        new_w[i] = weights[i] - LEARNING_RATE * (acts[i].T @ delta)
        new_b[i] = biases[i] - LEARNING_RATE * delta
    return new_w, new_b
"""


SEED_OBJECT_ARRAYS = """
rng = default_rng(80085)
weights, biases = [], []
for n_in, n_out in [(784, 32), (32, 32), (32, 10)]:
    weights.append(rng.normal(loc=0, scale=np.sqrt(1 / max(n_in, n_out)), size=(n_in, n_out)))
    biases.append(np.zeros(n_out))
weights = np.array(weights, dtype=object)  # as the seed's notebook does
biases = np.array(biases, dtype=object)

def feed_forward_sample(sample, y):
    a = sample.flatten()
    for i in range(len(weights)):
        z = np.dot(a, weights[i]) + biases[i]
        a = sigmoid(z) if i < len(weights) - 1 else softmax(z)
    guess = np.zeros(10)
    guess[np.argmax(a)] = 1
    return -np.sum(one_hot(y) * np.log(a)), guess

def train_one_sample(sample, y, learning_rate=0.003):
    acts, zs = [sample.flatten()], []
    for i in range(len(weights)):
        zs.append(np.dot(acts[-1], weights[i]) + biases[i])
        acts.append(sigmoid(zs[-1]) if i < len(weights) - 1 else softmax(zs[-1]))
    delta = acts[-1] - one_hot(y)
    grads = []
    for i in range(len(weights) - 1, -1, -1):
        if i < len(weights) - 1:
            delta = delta.dot(weights[i + 1].T) * dsigmoid(zs[i])
        grads.insert(0, (np.outer(acts[i], delta), delta))
    for i, (gw, gb) in enumerate(grads):
        weights[i] -= gw * learning_rate
        biases[i] -= gb * learning_rate
    return
"""


def run_probe(
    tmp_path: Path, inputs: ProbeInputs, student: str
) -> tuple[dict[str, Any], list[ProbeStepError]]:
    """The real runtime and Q4 probe, on a namespace built from ``student`` source."""
    ns: dict[str, Any] = {}
    exec(compile(HELPERS + student, "<student>", "exec"), ns)
    ns["__dlgrader_snapshots__"] = {  # as the preamble keeps them, all cells being one here
        name: copy.deepcopy(ns[name]) for name in SPEC.snapshot_names if name in ns
    }
    runtime: dict[str, Any] = {"__name__": "runtime"}
    exec(compile(RUNTIME, "<runtime>", "exec"), runtime)
    question = dict(runtime)
    exec(compile(SPEC.probe_source, "<probe>", "exec"), question)
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    out_dir.mkdir()
    probe_module.write_inputs(inputs, in_dir)
    runtime["run_probe"](question["probe"], ns, str(out_dir), str(in_dir), 30.0)
    artifacts: dict[str, Any] = {}
    for path in out_dir.iterdir():
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                artifacts[path.stem] = {k: data[k] for k in data.files}
        elif path.stem not in ("probe_errors", "probe_done", "progress"):
            artifacts[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    errors = [ProbeStepError(**e) for e in json.loads((out_dir / "probe_errors.json").read_text())]
    return artifacts, errors


PARAMS_DICT_ROW_INPUT = """
rng = default_rng(80085)
params = {}
for i, (n_in, n_out) in enumerate([(784, 32), (32, 32), (32, 10)], start=1):
    params[f"W{i}"] = rng.normal(0, np.sqrt(1 / max(n_in, n_out)), size=(n_in, n_out))
    params[f"b{i}"] = np.zeros(n_out)

def forward(x):
    a1 = sigmoid(x @ params["W1"] + params["b1"])
    a2 = sigmoid(a1 @ params["W2"] + params["b2"])
    return x, a1, a2, softmax((a2 @ params["W3"] + params["b3"]).reshape(-1))

def feed_forward_sample(sample, y):
    assert sample.shape == (1, 784), "this one wants a (1, 784) row"
    out = forward(sample)[-1]
    guess = np.zeros(10)
    guess[np.argmax(out)] = 1
    return -np.log(out[y]), guess

def train_one_sample(sample, y, lr=0.003):  # returns the loss, updates `params` in place
    x, a1, a2, out = forward(sample.reshape(1, 784))
    d3 = (out - one_hot(y)).reshape(1, -1)
    d2 = (d3 @ params["W3"].T) * a2 * (1 - a2)
    d1 = (d2 @ params["W2"].T) * a1 * (1 - a1)
    for i, (a, d) in enumerate([(x, d1), (a1, d2), (a2, d3)], start=1):
        params[f"W{i}"] -= lr * (a.T @ d)
        params[f"b{i}"] -= lr * d.reshape(-1)
    return -np.log(out[y])
"""

SEPARATE_GLOBALS = """
rng = default_rng(80085)
w1 = rng.normal(0, np.sqrt(1 / 784), size=(784, 32))
w2 = rng.normal(0, np.sqrt(1 / 32), size=(32, 32))
w3 = rng.normal(0, np.sqrt(1 / 32), size=(32, 10))
b1, b2, b3 = np.zeros(32), np.zeros(32), np.zeros(10)
weights = [w1, w2, w3]   # an alias list the functions below never read
biases = [b1, b2, b3]

def feed_forward_sample(sample, y):
    a = sigmoid(sample @ w1 + b1)
    a = sigmoid(a @ w2 + b2)
    out = softmax(a @ w3 + b3)
    guess = np.zeros(10)
    guess[np.argmax(out)] = 1
    return -np.log(out[y]), guess

def train_one_sample(sample, y, learning_rate=0.003):
    global w1, w2, w3, b1, b2, b3  # rebinds: the alias list goes stale, as in real notebooks
    a1 = sigmoid(sample @ w1 + b1)
    a2 = sigmoid(a1 @ w2 + b2)
    out = softmax(a2 @ w3 + b3)
    d3 = out - one_hot(y)
    d2 = (d3 @ w3.T) * dsigmoid(a1 @ w2 + b2)
    d1 = (d2 @ w2.T) * dsigmoid(sample @ w1 + b1)
    w3, b3 = w3 - learning_rate * np.outer(a2, d3), b3 - learning_rate * d3
    w2, b2 = w2 - learning_rate * np.outer(a1, d2), b2 - learning_rate * d2
    w1, b1 = w1 - learning_rate * np.outer(sample, d1), b1 - learning_rate * d1
"""

ARRAYS_AS_ARGUMENTS = """
rng = default_rng(80085)
weights, biases = [], []
for n_in, n_out in [(784, 32), (32, 32), (32, 10)]:
    weights.append(rng.normal(0, np.sqrt(1 / max(n_in, n_out)), size=(n_in, n_out)))
    biases.append(np.zeros(n_out))

def run_layers(sample, weights, biases):
    acts, zs = [sample], []
    for i, (W, b) in enumerate(zip(weights, biases)):
        zs.append(acts[-1] @ W + b)
        acts.append(sigmoid(zs[-1]) if i < 2 else softmax(zs[-1]))
    return acts, zs

def feed_forward_sample(sample, y, weights, biases):
    out = run_layers(sample, weights, biases)[0][-1]
    guess = np.zeros(10)
    guess[np.argmax(out)] = 1
    return -np.log(out[y]), guess

def train_one_sample(sample, y, weights, biases, eta):  # returns new lists, never in place
    acts, zs = run_layers(sample, weights, biases)
    delta = acts[-1] - one_hot(y)
    new_w, new_b = list(weights), list(biases)
    for i in (2, 1, 0):
        if i < 2:
            delta = (delta @ weights[i + 1].T) * dsigmoid(zs[i])
        new_w[i] = weights[i] - eta * np.outer(acts[i], delta)
        new_b[i] = biases[i] - eta * delta
    return new_w, new_b
"""


@pytest.mark.parametrize(
    ("student", "layout", "input_shape", "store"),
    [
        (OUT_IN_COLUMNS, ("out_in", "column"), "flat", "`weights` and `biases`"),
        (RETURNS_NEW_ROW_BIASES_IMAGE_INPUT, ("in_out", "row"), "image", "`weights`"),
        (SEED_OBJECT_ARRAYS, ("in_out", "flat"), "flat", "the lists"),
        (PARAMS_DICT_ROW_INPUT, ("in_out", "flat"), "row", "the dict `params`"),
        (SEPARATE_GLOBALS, ("in_out", "flat"), "flat", "the globals w1, w2, w3 and b1, b2, b3"),
        (ARRAYS_AS_ARGUMENTS, ("in_out", "flat"), "flat", "the lists"),
    ],
    ids=[
        "out_in_column_biases",
        "returns_new_row_biases_image_input",
        "seed_object_arrays",
        "params_dict_row_input_returns_loss",
        "separate_globals_rebound_beside_a_stale_list",
        "arrays_as_arguments_returned_anew",
    ],
)
def test_accepted_layouts_get_full_marks_on_the_function_checks(
    tmp_path, inputs, quick_profile, student, layout, input_shape, store
):
    artifacts, errors = run_probe(tmp_path, inputs, textwrap.dedent(student))
    assert errors == []
    assert (artifacts["layout"]["orientation"], artifacts["layout"]["bias_shape"]) == layout
    assert store in artifacts["layout"]["store"]
    assert set(artifacts["forward_meta"]["input_shapes"]) == {input_shape}
    ctx = make_context(tmp_path / "ctx", inputs, quick_profile, artifacts, probe_errors=errors)
    for definition in (
        checks.activations.helpers,
        checks.initial_weights.init,
        checks.forward.forward,
        checks.backprop.backprop_step,
    ):
        outcome, crashed = run_check(definition, ctx)
        assert not crashed and outcome.fraction == 1.0, (definition.id, outcome.message)


def test_a_parameter_the_grader_cannot_fill_is_named(tmp_path, inputs):
    student = SEED_OBJECT_ARRAYS.replace(
        "def feed_forward_sample(sample, y):", "def feed_forward_sample(sample, y, config):"
    )
    _, errors = run_probe(tmp_path, inputs, textwrap.dedent(student))
    messages = [e.message for e in errors if e.step.startswith("feed_forward_sample")]
    assert messages, errors
    assert all("`config`" in m and "cannot fill" in m for m in messages)


def test_parameters_kept_nowhere_the_grader_looks_say_what_was_expected(tmp_path, inputs):
    student = """
    layer_one = np.zeros((784, 32))

    def feed_forward_sample(sample, y):
        return 0.0, np.zeros(10)
    """
    _, errors = run_probe(tmp_path, inputs, textwrap.dedent(student))
    (final,) = [e for e in errors if e.step == "final_weights"]
    assert "`weights`" in final.message and "w1, w2, w3" in final.message
    assert "params" in final.message


# -- the learning rate passed, through the real probe --------------------------------------------

FUNCTION_CHECKS = (
    checks.activations.helpers,
    checks.initial_weights.init,
    checks.forward.forward,
    checks.backprop.backprop_step,
)


def probed_outcomes(
    tmp_path: Path, inputs: ProbeInputs, profile: Profile, student: str
) -> dict[str, Outcome]:
    artifacts, errors = run_probe(tmp_path, inputs, textwrap.dedent(student))
    assert errors == []
    ctx = make_context(tmp_path / "ctx", inputs, profile, artifacts, probe_errors=errors)
    outcomes = {}
    for definition in FUNCTION_CHECKS:
        outcome, crashed = run_check(definition, ctx)
        assert not crashed, outcome.message
        outcomes[definition.id] = outcome
    return outcomes


IN_PLACE_UPDATE = "weights[i] -= gw * learning_rate\n        biases[i] -= gb * learning_rate"


@pytest.mark.parametrize(
    ("rate", "holder"),
    [("LEARNING_RATE", "the global LEARNING_RATE, the template's default"), ("0.003", "default")],
    ids=["the_global", "a_literal"],
)
def test_a_function_ignoring_its_learning_rate_fails_backprop_and_says_so(
    tmp_path, inputs, quick_profile, rate, holder
):
    student = SEED_OBJECT_ARRAYS.replace(
        IN_PLACE_UPDATE, f"weights[i] -= gw * {rate}\n        biases[i] -= gb * {rate}"
    )
    outcomes = probed_outcomes(tmp_path, inputs, quick_profile, student)
    step = outcomes["q4.backprop_step"]
    assert step.fraction == 0.0
    assert "did not scale with the learning rate passed" in step.message
    assert holder in step.message and "learning_rate argument" in step.hint
    assert all(o.fraction == 1.0 for k, o in outcomes.items() if k != "q4.backprop_step")


def test_without_a_rate_parameter_the_global_it_reads_is_set_to_the_graders(
    tmp_path, inputs, quick_profile
):
    """Course notebooks: train_one_sample(sample, y) reading a global rate, here `eta`."""
    student = (
        SEED_OBJECT_ARRAYS.replace("def train_one_sample(sample, y, learning_rate=0.003):",
                                   "eta = 0.003\n\ndef train_one_sample(sample, y):")
        .replace(IN_PLACE_UPDATE, "weights[i] -= gw * eta\n        biases[i] -= gb * eta")
    )  # fmt: skip
    (tmp_path / "meta").mkdir()
    artifacts, _ = run_probe(tmp_path / "meta", inputs, textwrap.dedent(student))
    assert "eta" in artifacts["train_meta"]["globals_set"]  # beside LEARNING_RATE, always set
    assert artifacts["train_meta"]["notebook_rates"]["eta"] == 0.003
    outcomes = probed_outcomes(tmp_path, inputs, quick_profile, student)
    assert all(o.fraction == 1.0 for o in outcomes.values()), outcomes


def test_without_a_rate_parameter_or_global_the_update_is_named(tmp_path, inputs, quick_profile):
    student = SEED_OBJECT_ARRAYS.replace(
        "def train_one_sample(sample, y, learning_rate=0.003):", "def train_one_sample(sample, y):"
    ).replace(IN_PLACE_UPDATE, "weights[i] -= gw * 0.01\n        biases[i] -= gb * 0.01")
    step = probed_outcomes(tmp_path, inputs, quick_profile, student)["q4.backprop_step"]
    assert step.fraction == 0.0
    assert "did not scale with the learning rate passed" in step.message
    assert "as if the rate were 0.01" in step.message
    assert "takes no learning-rate parameter" in step.hint


FLOAT32_EVERYWHERE = """
rng = default_rng(80085)
weights, biases = [], []
for n_in, n_out in [(784, 32), (32, 32), (32, 10)]:
    w = rng.normal(loc=0, scale=np.sqrt(1 / max(n_in, n_out)), size=(n_in, n_out))
    weights.append(w.astype(np.float32))
    biases.append(np.zeros(n_out, dtype=np.float32))

def layers32(sample):
    acts, zs = [np.asarray(sample, dtype=np.float32).reshape(-1)], []
    for i in range(3):
        zs.append(acts[-1] @ weights[i].astype(np.float32) + biases[i].astype(np.float32))
        out = sigmoid(zs[-1]) if i < 2 else softmax(zs[-1])
        acts.append(out.astype(np.float32))
    return acts, zs

def feed_forward_sample(sample, y):
    out = layers32(sample)[0][-1]
    guess = np.zeros(10)
    guess[np.argmax(out)] = 1
    return -np.log(out[y]), guess

def train_one_sample(sample, y, learning_rate=0.003):
    acts, zs = layers32(sample)
    delta = acts[-1] - one_hot(y).astype(np.float32)
    lr = np.float32(learning_rate)
    for i in (2, 1, 0):
        grad_w, grad_b = np.outer(acts[i], delta), delta
        if i:
            delta = (delta @ weights[i].astype(np.float32).T) * acts[i] * (1 - acts[i])
        weights[i] = weights[i].astype(np.float32) - lr * grad_w
        biases[i] = biases[i].astype(np.float32) - lr * grad_b
"""


def test_float32_storage_and_arithmetic_get_full_marks(tmp_path, inputs, quick_profile):
    (tmp_path / "raw").mkdir()
    artifacts, _ = run_probe(tmp_path / "raw", inputs, textwrap.dedent(FLOAT32_EVERYWHERE))
    stored = artifacts["train_step"]["s0.w1"]
    assert np.array_equal(stored.astype(np.float32).astype(np.float64), stored)  # really float32
    outcomes = probed_outcomes(tmp_path, inputs, quick_profile, FLOAT32_EVERYWHERE)
    assert all(o.fraction == 1.0 for o in outcomes.values()), {
        k: o.message for k, o in outcomes.items()
    }


def test_float32_precision_is_no_cover_for_a_wrong_update(tmp_path, inputs, quick_profile):
    student = FLOAT32_EVERYWHERE.replace(
        "biases[i] = biases[i].astype(np.float32) - lr * grad_b",
        "biases[i] = biases[i].astype(np.float32)",
    )
    step = probed_outcomes(tmp_path, inputs, quick_profile, student)["q4.backprop_step"]
    assert step.fraction == pytest.approx(0.5)
    assert "biases[0], biases[1], biases[2]" in step.message


# -- q4.reported_consistent --------------------------------------------------------------------


def reported(grade, artifacts: Mapping[str, Any], *outputs: str, **kwargs: Any) -> Outcome:
    return grade(
        checks.reported.reported_consistent, {**artifacts, "executed": printed(*outputs)}, **kwargs
    )


def test_the_last_printed_test_report_is_held_to_the_graders_measurement(grade, good, trained):
    outcome = grade(checks.reported.reported_consistent, good)
    assert outcome.fraction == 1.0, outcome.message
    assert "cell 2" in outcome.message  # the student's numbering: the injected cell not counted
    assert outcome.details["reported_correct"] == outcome.details["measured_correct"]


def test_a_typed_in_percentage_is_named_and_costs_half(grade, good, trained):
    text = template_report(trained)
    typed = re.sub(r"\( [0-9.]+ %\)", "( 97.50 %)", text)
    assert typed != text
    outcome = reported(grade, good, typed)
    assert outcome.fraction == 0.5
    assert "97.5 %" in outcome.message and "accuracy is wrong" in outcome.message
    assert "average loss agrees" in outcome.message


def test_a_report_from_before_training_disagrees_with_the_final_weights(grade, good, trained):
    outcome = reported(
        grade,
        good,
        template_report(ref.init_params()),
        template_report(trained, heading="training"),
    )
    assert outcome.fraction == 0.0
    assert "cell 1" in outcome.message and "accuracy and average loss are wrong" in outcome.message


def test_a_report_before_a_failing_cell_says_the_weights_may_have_changed(grade, good, trained):
    error = CellError(cell_index=4, ename="KeyboardInterrupt", evalue="", source_excerpt="train")
    outcome = reported(grade, good, template_report(ref.init_params()), cell_errors=[error])
    assert outcome.fraction == 0.0
    assert "cell 4 raised KeyboardInterrupt" in outcome.message


def test_no_report_and_only_training_reports_get_clear_messages(grade, good, trained):
    nothing = reported(grade, good, "Training for one epoch...\nFinished training.\n")
    assert nothing.fraction == 0.0
    assert "No reported test accuracy" in nothing.message and "feed_forward_dataset" in nothing.hint
    training = reported(grade, good, template_report(trained, heading="training"))
    assert training.fraction == 0.0 and "training data only" in training.message
    truncated = reported(grade, good, "", output_truncated=True)
    assert "size cap" in truncated.message


def test_a_nan_loss_leaves_the_accuracy_to_decide(grade, good, trained):
    text = re.sub(r"Average loss: [0-9.]+", "Average loss: nan", template_report(trained))
    outcome = reported(grade, good, text)
    assert outcome.fraction == 1.0 and "only the accuracy is compared" in outcome.message


def test_a_report_over_fewer_images_is_measured_on_as_many(grade, good, trained):
    x, y = load_scaled(FIXTURE_DATA_ROOT, "MNIST", train=False, limit=300)
    loss, correct = ref.evaluate_dataset(trained, x, y)
    text = f"Accuracy (# of correct guesses): {float(correct)} / 300 ( {correct / 3:.2f} %)\n"
    outcome = reported(grade, good, f"Average loss: {loss:.2f}\n" + text)
    assert outcome.fraction == 1.0, outcome.message
    assert outcome.details["measured_total"] == 300
    too_many = reported(grade, good, "Accuracy (# of correct guesses): 10.0 / 5000 ( 0.20 %)\n")
    assert too_many.fraction == 0.0 and "the test set has 1000" in too_many.message


@pytest.mark.parametrize(
    "text",
    [
        "Accuracy: " + "9" * 400 + " / 1000\n",
        "Accuracy (# of correct guesses): 1e999 / 1000 ( 1e999 %)\nAverage loss: 1e999\n",
        "accuracy" * 5000 + "\n" + "Accuracy: 1 / 0\n",
        "Average loss: -inf\nAccuracy : 0.0 / 1000 (0 %)\x00\x1b[31m\n",
        "<script>alert(1)</script> Accuracy 55 % " + "/" * 10000,
    ],
    ids=["long_number", "overflowing", "huge_line_then_zero", "control_characters", "markup"],
)
def test_hostile_printed_text_never_crashes_or_is_echoed(grade, good, text):
    outcome = reported(grade, good, text)
    assert outcome.fraction < 1.0
    assert "<script>" not in outcome.message and "\x1b" not in outcome.message
