"""Q2's checks on artifacts made by the real probe, run in-process on reference-based answers.

As for Q1: "student" functions (the reference closed forms, or one with a known mistake) go
in a namespace, the question's own probe runs over it as the kernel would and writes
``formulas.json``, and the question's checks grade that. The Monte-Carlo test then simulates
with the numbers the functions gave.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import code_numbers, full_spec, near_any, probe_context, probe_inputs

from graders.check import run_check
from graders.questions.api import Outcome
from graders.questions.q2_init import FUNCTIONS, SPEC, TEMPLATE_NUMBERS, checks, hidden
from reference import q2_init as ref

FORMULA_CHECKS = ("activation_variance", "forward_rule", "relu_factor", "backward_rule")
CHECK_IDS = (*FORMULA_CHECKS, "xavier_rule", "monte_carlo")


CLOSED_FORMS = CHECK_IDS[:-1]


def grade(
    namespace: Mapping[str, Any], root: Path, seed: int = 0, only: tuple[str, ...] = CHECK_IDS
) -> dict[str, Outcome]:
    """The outcomes of the checks in ``only`` (the Monte Carlo takes ~0.5 s; tests about the
    closed forms alone skip it)."""
    ctx = probe_context(SPEC, namespace, root, seed)
    results: dict[str, Outcome] = {}
    for definition in full_spec("q2").checks:
        key = definition.id.removeprefix("q2.")
        if key in only:
            outcome, crashed = run_check(definition, ctx)
            assert not crashed, outcome.message
            results[key] = outcome
    return results


def fractions(results: Mapping[str, Outcome]) -> dict[str, float]:
    return {k: r.fraction for k, r in results.items()}


CORRECT: dict[str, Any] = {name: getattr(ref, name) for name in FUNCTIONS}


def answer(**changes: Any) -> dict[str, Any]:
    return {**CORRECT, **changes}


def seed_relu_factor() -> float:
    """The seed's part (c): var(y) = E[y^2] - E[y]^2 set to v^2."""
    return 2 * math.pi / (math.pi - 1)


# --- the reference and accepted variations ---------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_the_reference_gets_every_point(tmp_path: Path, seed: int) -> None:
    results = grade(CORRECT, tmp_path, seed)
    assert fractions(results) == dict.fromkeys(CHECK_IDS, 1.0), {
        k: r.message for k, r in results.items() if r.fraction < 1
    }


def test_the_stack_uses_the_rules_values_at_its_own_widths(tmp_path: Path) -> None:
    ctx = probe_context(SPEC, CORRECT, tmp_path)
    stack = ctx.inputs.values["stack"]
    calls = ctx.inputs.values["calls"]
    for name, needed in checks.stack_calls(stack).items():
        assert all(args in calls[name] for args in needed), name
    moments = run_check(hidden.monte_carlo, ctx)[0].details
    assert set(moments) == {
        "forward_variance",
        "relu_forward_variance",
        "backward_variance",
        "xavier_variance",
    }
    expected = {s.rule: s.expected for s in hidden._stacks(stack)}
    for name, values in moments.items():
        assert len(values) == len(stack["widths"]) - 1
        ratios = [v / e for v, e in zip(values, expected[name], strict=True)]
        assert all(0.5 < r < 2 for r in ratios), (name, values)
    assert all(e == pytest.approx(1.0) for e in expected["relu_forward_variance"])
    assert expected["xavier_variance"][-1] < 0.2  # Glorot's rule shrinks this stack's signal


RETURN_TYPES: dict[str, Callable[[float], Any]] = {
    "numpy scalar": np.float64,
    "0-d array": np.array,
    "float32 0-d array": lambda v: np.array(v, dtype=np.float32),
    "one-element list": lambda v: [v],
    "Fraction": lambda v: Fraction(v).limit_denominator(10**12),
}


@pytest.mark.parametrize("kind", sorted(RETURN_TYPES))
def test_other_number_types_are_accepted(tmp_path: Path, kind: str) -> None:
    wrap = RETURN_TYPES[kind]

    def wrapped(fn: Any) -> Any:
        return lambda *args: wrap(fn(*args))

    namespace = {name: wrapped(fn) for name, fn in CORRECT.items()}
    results = grade(namespace, tmp_path, only=CLOSED_FORMS)
    # float32 is 6e-8 relative, inside the 1e-6 tolerance
    assert fractions(results) == dict.fromkeys(CLOSED_FORMS, 1.0)


def test_integer_arguments_are_plain_ints_and_closed_forms_match_by_hand(tmp_path: Path) -> None:
    ctx = probe_context(SPEC, CORRECT, tmp_path)
    record = ctx.json("formulas")
    args, values = record["forward_variance"]["args"], record["forward_variance"]["values"]
    assert all(isinstance(a[0], int) for a in args)
    assert values == pytest.approx([1 / a[0] for a in args], rel=1e-12)


# --- known mistakes ----------------------------------------------------------------------------


def test_the_seeds_relu_factor_is_pointed_at_e_y2_versus_var_y(tmp_path: Path) -> None:
    seed_rule = answer(
        relu_factor=seed_relu_factor,
        relu_forward_variance=lambda n_in: seed_relu_factor() / n_in,  # as in the notebook
    )
    results = grade(seed_rule, tmp_path)
    relu = results["relu_factor"]
    assert relu.fraction == 0.0
    assert "relu_factor() = 2.93388, expected 2." in relu.message
    assert "1.46694 times the expected one" in relu.message
    assert "E[y^2]" in relu.hint
    assert "var(y)" in relu.hint
    assert "pi/(pi-1)" in relu.hint
    mc = results["monte_carlo"]
    assert mc.fraction == 0.75
    assert "relu_forward_variance" in mc.hint
    assert "explodes" in mc.message
    relu_moments = mc.details["relu_forward_variance"]
    assert relu_moments[-1] > 10  # (pi/(pi-1))^10 ~ 46
    others = {k for k, r in results.items() if r.fraction < 1}
    assert others == {"relu_factor", "monte_carlo"}


def test_a_right_factor_with_a_wrong_rule_gets_half(tmp_path: Path) -> None:
    results = grade(answer(relu_forward_variance=lambda n_in: 1.0 / n_in), tmp_path)
    relu = results["relu_factor"]
    assert relu.fraction == 0.5
    assert "relu_factor() = 2, right." in relu.message
    assert "0.5 times the expected one" in relu.message
    assert "E[y^2]" in relu.hint
    assert results["monte_carlo"].fraction == 0.75
    assert "vanishes" in results["monte_carlo"].message


def test_half_of_xavier_fails_and_vanishes(tmp_path: Path) -> None:
    results = grade(answer(xavier_variance=lambda n_in, n_out: 1.0 / (n_in + n_out)), tmp_path)
    assert results["xavier_rule"].fraction == 0.0
    assert "0.5 times the expected one" in results["xavier_rule"].message
    assert "expected 2/(n_in + n_out) = " in results["xavier_rule"].message
    assert results["monte_carlo"].fraction == 0.75
    drift = re.search(
        r"the signal vanishes, by about x([0-9.]+) per layer", results["monte_carlo"].message
    )
    assert drift is not None and 0.45 < float(drift[1]) < 0.55


def test_a_backward_rule_that_ignores_n_out_is_told_so(tmp_path: Path) -> None:
    n_in = 300  # the notebook's global at grading time

    results = grade(answer(backward_variance=lambda n_out: 1.0 / n_in), tmp_path)
    backward = results["backward_rule"]
    assert backward.fraction == 0.0
    assert "returns 0.00333333 whatever its arguments" in backward.message
    assert "n_out" in backward.hint
    mc = results["monte_carlo"]
    assert mc.fraction == 0.75
    assert "backward_variance" in mc.hint


def test_the_fan_in_for_the_backward_rule_is_wrong_at_almost_every_point(tmp_path: Path) -> None:
    ctx = probe_context(SPEC, answer(backward_variance=lambda n_out: 2.0 / n_out), tmp_path)
    outcome = run_check(checks.backward_rule, ctx)[0]
    assert outcome.fraction == 0.0
    assert "2 times the expected one" in outcome.message


def test_points_are_credited_one_by_one(tmp_path: Path) -> None:
    def forward(n_in: int) -> float:
        return 1.0 / n_in if n_in < 1000 else 1.0 / 1000

    ctx = probe_context(SPEC, answer(forward_variance=forward), tmp_path)
    args = [a[0] for a in ctx.inputs.values["calls"]["forward_variance"]]
    outcome = run_check(checks.forward_rule, ctx)[0]
    right = sum(a <= 1000 for a in args)
    assert 0 < right < len(args)
    assert outcome.fraction == pytest.approx(right / len(args))
    assert "1/n_in" in outcome.message


def test_a_function_that_returns_none_or_raises_is_named(tmp_path: Path) -> None:
    def no_return(n_in: int, sigma2: float, v2: float) -> None:
        _ = n_in * sigma2 * v2

    def raises(n_in: int) -> float:
        raise ZeroDivisionError("no")

    results = grade(answer(activation_variance=no_return, forward_variance=raises), tmp_path)
    assert results["activation_variance"].fraction == 0.0
    assert "returned None (is a `return` missing?)" in results["activation_variance"].message
    assert results["forward_rule"].fraction == 0.0
    forward = results["forward_rule"].message
    assert "forward_variance failed at every one of the grader's" in forward
    assert forward.count("ZeroDivisionError: no") == 1
    assert "ZeroDivisionError" in results["monte_carlo"].message


def test_nan_and_negative_values_fail_without_crashing(tmp_path: Path) -> None:
    results = grade(
        answer(
            forward_variance=lambda n_in: float("nan"),
            relu_forward_variance=lambda n_in: -2.0 / n_in,
        ),
        tmp_path,
    )
    assert results["forward_rule"].fraction == 0.0
    assert "not a finite number" in results["forward_rule"].message
    mc = results["monte_carlo"]
    assert mc.fraction == 0.5
    assert "is negative, not a variance" in mc.message


def test_an_exploding_rule_overflows_into_a_message(tmp_path: Path) -> None:
    results = grade(answer(forward_variance=lambda n_in: 1e60), tmp_path)
    mc = results["monte_carlo"]
    assert mc.fraction == 0.75
    assert "explodes" in mc.message


def test_missing_functions_are_named(tmp_path: Path) -> None:
    results = grade({}, tmp_path)
    for key, outcome in results.items():
        assert outcome.fraction == 0.0
        assert "does not define" in outcome.message, (key, outcome.message)


def test_a_missing_record_says_why_instead_of_crashing(tmp_path: Path) -> None:
    ctx = probe_context(SPEC, CORRECT, tmp_path)
    (tmp_path / "artifacts" / "q2" / "formulas.json").write_text("{}", encoding="utf-8")
    for definition in full_spec("q2").checks:
        outcome, crashed = run_check(definition, ctx)
        assert not crashed
        assert outcome.fraction == 0.0


# --- the grader's inputs: a formula that ignores an argument cannot pass -----------------------


def inputs(seed: int) -> dict[str, Any]:
    return probe_inputs(SPEC, seed).values


SEEDS = range(40)


def test_no_argument_is_a_number_the_template_uses() -> None:
    """The notebook's globals n_in, n_out = 300, 100, its examples sigma2, v2 = 0.01, 1.0 and
    0.002, 4.0, its width 256: a formula that uses one of them instead of its argument must be
    wrong at every point, the stacks' widths included."""
    template = code_numbers("q2_initialization.ipynb")
    assert {0.002, 0.01, 4.0, 100.0, 256.0, 300.0} <= template
    assert template - {0.0} <= set(TEMPLATE_NUMBERS)
    for seed in SEEDS:
        values = inputs(seed)
        for name, calls in values["calls"].items():
            for args in calls:
                assert not any(near_any(a, template, 0.05) for a in args), (seed, name, args)


def test_every_argument_falls_on_both_sides_of_the_templates_values() -> None:
    for seed in SEEDS:
        calls = inputs(seed)["calls"]
        n_in, sigma2, v2 = zip(*calls["activation_variance"][:6], strict=True)
        for values, numbers in ((n_in, (100, 300)), (sigma2, (0.002, 0.01)), (v2, (1.0, 4.0))):
            assert min(values) < min(numbers) and max(values) > max(numbers), (seed, values)
        for name in ("forward_variance", "relu_forward_variance", "backward_variance"):
            widths = [a[0] for a in calls[name][:6]]
            assert min(widths) < 100 and max(widths) > 300, (seed, name, widths)


def test_xavier_is_asked_about_layers_far_from_square_only() -> None:
    for seed in SEEDS:
        values = inputs(seed)
        for n_in, n_out in values["calls"]["xavier_variance"]:
            assert max(n_in, n_out) / min(n_in, n_out) > 3, (seed, n_in, n_out)
        widths = values["stack"]["xavier_widths"]
        assert all(max(a, b) / min(a, b) > 3 for a, b in itertools.pairwise(widths)), widths


OTHER_MEANS: dict[str, Callable[[int, int], float]] = {
    "1/n_in": lambda n_in, n_out: 1 / n_in,
    "1/n_out": lambda n_in, n_out: 1 / n_out,
    "1/sqrt(n_in n_out)": lambda n_in, n_out: 1 / math.sqrt(n_in * n_out),
}


def _trajectory(widths: list[int], rule: Callable[[int, int], float]) -> np.ndarray:
    return np.cumprod([n_in * rule(n_in, n_out) for n_in, n_out in itertools.pairwise(widths)])


def test_the_xavier_stack_tells_the_symmetric_means_apart() -> None:
    """At the stack's own layers, what 1/n_in, 1/n_out or 1/sqrt(n_in n_out) predicts ends far
    outside the band around what 2/(n_in + n_out) predicts (no Monte Carlo: the closed forms)."""
    for seed in SEEDS:
        widths = inputs(seed)["stack"]["xavier_widths"]
        glorot = _trajectory(widths, ref.xavier_variance)
        for name, rule in OTHER_MEANS.items():
            off = np.max(np.abs(np.log(_trajectory(widths, rule) / glorot)))
            assert off > math.log(1.5 * hidden.BAND), (seed, name, math.exp(off))


@pytest.mark.parametrize("mean", sorted(OTHER_MEANS))
def test_another_mean_for_xavier_fails_the_stack(tmp_path: Path, mean: str) -> None:
    results = grade(answer(xavier_variance=OTHER_MEANS[mean]), tmp_path)
    assert results["xavier_rule"].fraction == 0.0
    mc = results["monte_carlo"]
    assert mc.fraction == 0.75, mc.message
    assert "times what 2/(n_in + n_out) gives" in mc.message
    assert "xavier_variance" in mc.hint


GLOBALS: dict[str, Callable[[int, int], float]] = {
    "1/n_out with n_out = 100": lambda n_in, _: 1 / 100,
    "1/n_in with n_in = 300": lambda n_in, _: 1 / 300,
    "2/(n_in + n_out) with n_out = 100": lambda n_in, _: 2 / (n_in + 100),
}
"""Forward rules reading the notebook's globals n_in, n_out = 300, 100, as (n_in, n_out) rules."""


def test_forward_rules_that_use_the_notebooks_globals_leave_the_band() -> None:
    for seed in SEEDS:
        widths = inputs(seed)["stack"]["widths"]
        for name, rule in GLOBALS.items():
            off = np.max(np.abs(np.log(_trajectory(widths, rule))))
            assert off > math.log(1.5 * hidden.BAND), (seed, name, math.exp(off))


def test_a_forward_rule_using_the_global_n_out_fails_both_tests(tmp_path: Path) -> None:
    n_out = 100  # the notebook's global at grading time
    results = grade(answer(forward_variance=lambda n_in: 1 / n_out), tmp_path)
    assert results["forward_rule"].fraction == 0.0
    assert "whatever its arguments" in results["forward_rule"].message
    assert results["monte_carlo"].fraction == 0.75
    assert "explodes" in results["monte_carlo"].message


@pytest.mark.parametrize("ignored", ["sigma2", "v2"])
def test_an_activation_variance_that_ignores_an_argument_is_wrong_everywhere(
    tmp_path: Path, ignored: str
) -> None:
    def formula(n_in: int, sigma2: float, v2: float) -> float:
        return n_in * (v2 if ignored == "sigma2" else sigma2)

    outcome = grade(answer(activation_variance=formula), tmp_path, only=("activation_variance",))
    assert outcome["activation_variance"].fraction == 0.0


# --- the unit stacks the check scales ------------------------------------------------------------


@pytest.mark.parametrize("factor", [1.0, 1.3, 0.6])
def test_scaled_unit_stacks_are_the_simulation_of_the_rule_itself(
    tmp_path: Path, factor: float
) -> None:
    """Homogeneity, checked: scaling the unit-weight replicates by the rule's variances gives
    what simulating with the rule gives from the same generator, to rounding."""
    stack = probe_context(SPEC, CORRECT, tmp_path).inputs.values["stack"]
    seed = int(stack["seed"])
    for i, s in enumerate(hidden._stacks(stack)):
        unit = hidden._unit_replicates(s, hidden._stack_rng(seed, i))

        def rule(n_in: int, n_out: int, s: Any = s) -> float:
            return factor * s.correct(n_in, n_out)

        scaled = hidden._scaled(s, rule, unit)
        assert scaled is not None, s.rule
        direct = ref.mc_deep_forward(
            s.widths,
            rule,
            rng=hidden._stack_rng(seed, i),
            samples=hidden.MC_SAMPLES,
            batch=hidden.MC_BATCH,
            activation=s.activation,
        )
        np.testing.assert_allclose(scaled.mean(axis=1), [e.value for e in direct], rtol=1e-9)


def test_a_rule_scaling_cannot_follow_is_simulated(tmp_path: Path) -> None:
    stack = probe_context(SPEC, CORRECT, tmp_path / "stack").inputs.values["stack"]
    first = hidden._stacks(stack)[0]
    unit = hidden._unit_replicates(first, hidden._stack_rng(0, 0))
    assert hidden._scaled(first, lambda i, o: 0.0, unit) is None
    assert hidden._scaled(first, lambda i, o: 1e300, unit) is None
    assert hidden._scaled(first, lambda i, o: 1e-300, unit) is None
    results = grade(answer(forward_variance=lambda n_in: 0.0), tmp_path / "zero")
    assert results["monte_carlo"].fraction == 0.75
    assert "it reached 0: the signal vanishes" in results["monte_carlo"].message


def test_the_unit_stacks_are_computed_ahead_and_stored_in_no_kit(tmp_path: Path) -> None:
    (unit,) = hidden.EXPECTATIONS
    assert unit.ahead
    assert unit.kit_arguments is not None
    assert unit.kit_arguments(probe_context(SPEC, CORRECT, tmp_path).inputs) == ()
