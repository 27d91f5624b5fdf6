"""Q1's checks on artifacts made by the real probe, run in-process on reference-based answers.

Each test puts "student" functions (the reference, or the reference with one known mistake, or
in another accepted layout) in a namespace, runs the question's own probe over it exactly as
the kernel would (``probe_runtime`` + ``probe.py``, writing .npz files), and grades the
artifacts with the question's checks. So the probe's tolerance of layouts and the checks'
verdicts and messages are tested together, in milliseconds, with no kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fakes import code_numbers, full_spec, near_any, probe_context, probe_inputs

from graders.check import run_check
from graders.questions.api import CheckContext, CheckDef, Outcome
from graders.questions.q1_step import SPEC, checks, hidden
from graders.render.numbers import number
from reference import q1_step as ref

CHECK_IDS = ("step_function", "box_interior", "box_edges", "approx_neurons", "approx_converges")


PART_A = ("step_function", "box_interior", "box_edges")


def grade(
    namespace: Mapping[str, Any], root: Path, seed: int = 0, only: tuple[str, ...] = CHECK_IDS
) -> dict[str, Outcome]:
    """The outcomes of the checks in ``only`` (part (b)'s sup errors take ~0.5 s; skip them
    where a test is about part (a))."""
    ctx = probe_context(SPEC, namespace, root, seed)
    results: dict[str, Outcome] = {}
    for definition in full_spec("q1").checks:
        key = definition.id.removeprefix("q1.")
        if key in only:
            results[key] = _run(definition, ctx)
    return results


def text(outcome: Outcome) -> str:
    return f"{outcome.message} {outcome.hint}"


# --- "student" answers built on the reference -------------------------------------------------


def as_tuple(net: ref.StepNetwork) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    return net.w_hidden.copy(), net.b_hidden.copy(), net.w_out.copy(), net.b_out


def reference_box(h: float, delta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    return as_tuple(ref.box_network(h, delta))


def reference_approx(f: Callable[..., Any], big_b: float, n: int) -> tuple[Any, ...]:
    return as_tuple(ref.box_approximation(f, big_b, n))


def seed_box(h: float, delta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The seed's h*(s(x) - s(x - delta))."""
    return np.array([1.0, 1.0]), np.array([0.0, -delta]), np.array([h, -h]), 0.0


def open_boxes(f: Callable[..., Any], big_b: float, n: int) -> tuple[Any, ...]:
    """Part (a)'s open box reused n times: every shared edge is left at 0."""
    edges = np.linspace(-big_b, big_b, n + 1)
    heights = f((edges[:-1] + edges[1:]) / 2)
    w_hidden = np.tile([1.0, -1.0], n)
    b_hidden = np.empty(2 * n)
    b_hidden[0::2], b_hidden[1::2] = -edges[:-1], edges[1:]
    w_out = np.repeat(heights, 2)
    return w_hidden, b_hidden, w_out, -float(np.sum(heights))


def left_endpoint(f: Callable[..., Any], big_b: float, n: int) -> tuple[Any, ...]:
    """A legitimate variant: each box takes f at its left edge."""
    w_hidden, b_hidden, w_out, _ = reference_approx(f, big_b, n)
    edges = np.linspace(-big_b, big_b, n + 1)
    heights = f(edges[:-1])
    w_out[0::2], w_out[1::2] = heights, -heights
    w_out[-2] = -heights[-1]
    return w_hidden, b_hidden, w_out, float(heights[-1])


def increments(f: Callable[..., Any], big_b: float, n: int) -> tuple[Any, ...]:
    """Staircase increments used as box heights: 2n neurons, but the error never falls."""
    w_hidden, b_hidden, w_out, _ = reference_approx(f, big_b, n)
    heights = np.diff(f(np.linspace(-big_b, big_b, n + 1)))
    w_out[0::2], w_out[1::2] = heights, -heights
    w_out[-2] = -heights[-1]
    return w_hidden, b_hidden, w_out, float(heights[-1])


def fixed_ten(f: Callable[..., Any], big_b: float, n: int) -> tuple[Any, ...]:
    return reference_approx(f, big_b, 10)


CORRECT: dict[str, Any] = {
    "step": ref.step,
    "box_network": reference_box,
    "box_approximation": reference_approx,
}


def answer(**changes: Any) -> dict[str, Any]:
    return {**CORRECT, **changes}


# --- the reference and accepted variations ---------------------------------------------------


def test_the_reference_gets_every_point(tmp_path: Path) -> None:
    results = grade(CORRECT, tmp_path)
    assert {k: r.fraction for k, r in results.items()} == dict.fromkeys(CHECK_IDS, 1.0)
    converges = results["approx_converges"]
    slopes = converges.details["slopes"]
    assert all(-1.05 < slope < -0.95 for slope in slopes), slopes  # the error falls like 1/n
    assert all(f"slope {number(slope, 3)} (need <= -0.8)" in converges.message for slope in slopes)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_reference_passes_other_grader_inputs(tmp_path: Path, seed: int) -> None:
    results = grade(CORRECT, tmp_path, seed)
    assert all(r.fraction == 1.0 for r in results.values()), {
        k: r.message for k, r in results.items() if r.fraction < 1
    }


LAYOUTS: dict[str, Callable[[tuple[Any, ...]], Any]] = {
    "columns (H, 1)": lambda p: (p[0][:, None], p[1][:, None], p[2][:, None], np.array([[p[3]]])),
    "rows (1, H)": lambda p: (p[0][None, :], p[1][None, :], p[2][None, :], np.array([p[3]])),
    "float32 (torch's default)": lambda p: tuple(np.asarray(a, dtype=np.float32) for a in p),
    "mixed shapes": lambda p: (p[0][:, None], p[1], p[2][None, :], np.float64(p[3])),
    "plain lists": lambda p: [list(p[0]), list(p[1]), list(p[2]), float(p[3])],
    "dict": lambda p: dict(zip(ref.PARAM_NAMES, p, strict=True)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_other_layouts_of_the_same_networks_get_every_point(tmp_path: Path, layout: str) -> None:
    shape = LAYOUTS[layout]
    results = grade(
        answer(
            box_network=lambda h, d: shape(reference_box(h, d)),
            box_approximation=lambda f, b, n: shape(reference_approx(f, b, n)),
        ),
        tmp_path,
    )
    assert all(r.fraction == 1.0 for r in results.values()), {
        k: r.message for k, r in results.items() if r.fraction < 1
    }


def test_a_scalar_only_step_is_called_number_by_number(tmp_path: Path) -> None:
    results = grade(answer(step=lambda u: 1.0 if u > 0 else 0.0), tmp_path, only=PART_A)
    assert results["step_function"].fraction == 1.0


def test_a_boolean_step_counts(tmp_path: Path) -> None:
    results = grade(answer(step=lambda u: np.asarray(u) > 0), tmp_path, only=PART_A)
    assert results["step_function"].fraction == 1.0


# --- known mistakes ----------------------------------------------------------------------------


def test_the_seeds_box_loses_the_edges_only_and_is_told_what_happens_at_delta(
    tmp_path: Path,
) -> None:
    results = grade(answer(box_network=seed_box), tmp_path, only=PART_A)
    assert results["box_interior"].fraction == 1.0
    edges = results["box_edges"]
    assert edges.fraction == 0.0
    assert "box_network(1, 1): f(delta) = 1, expected 0" in edges.message
    assert "f(0) =" not in edges.message  # the edge it gets right is not blamed
    assert "step(delta - x)" in edges.hint
    others = {k for k, r in results.items() if r.fraction < 1}
    assert others == {"box_edges"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_box_scaled_by_1_over_delta_is_open_whatever_the_rounding(
    tmp_path: Path, seed: int, dtype: type[np.floating[Any]]
) -> None:
    """step(x / delta) + step(1 - x / delta) - 1: the assignment's box in real arithmetic,
    whose second neuron float rounding may leave on at x = delta (-(1/delta) * delta + 1 can be
    1e-16). A switch within rounding of an edge is at the edge: no edge is lost to it."""

    def scaled(h: float, delta: float) -> tuple[Any, ...]:
        return (
            np.array([1 / delta, -1 / delta], dtype=dtype),
            np.array([0.0, 1.0], dtype=dtype),
            np.array([h, h], dtype=dtype),
            dtype(-h),
        )

    results = grade(answer(box_network=scaled), tmp_path, seed, only=PART_A)
    assert all(r.fraction == 1.0 for r in results.values()), {
        k: r.message for k, r in results.items() if r.fraction < 1
    }


def test_a_box_mirrored_the_other_way_is_told_about_x_0(tmp_path: Path) -> None:
    def mirrored(h: float, delta: float) -> tuple[Any, ...]:
        """h*(s(delta - x) - s(-x)): right at delta, h at x = 0."""
        return np.array([-1.0, -1.0]), np.array([delta, 0.0]), np.array([h, -h]), 0.0

    edges = grade(answer(box_network=mirrored), tmp_path, only=PART_A)["box_edges"]
    assert edges.fraction == 0.0
    assert "f(0) = 1, expected 0" in edges.message
    assert "f(delta)" not in edges.message.split(". The box is open")[0]


def test_a_non_strict_step_costs_only_the_step_test(tmp_path: Path) -> None:
    results = grade(
        answer(step=lambda u: np.where(np.asarray(u) >= 0, 1.0, 0.0)), tmp_path, only=PART_A
    )
    step = results["step_function"]
    assert step.fraction == 0.0
    assert "step(0) = 1, expected 0" in step.message
    assert "u > 0, not u >= 0" in step.hint
    assert all(r.fraction == 1.0 for k, r in results.items() if k != "step_function")


def test_a_step_with_a_tolerance_fails_at_the_tiny_inputs(tmp_path: Path) -> None:
    step = grade(answer(step=lambda u: (np.asarray(u) > 1e-6) * 1.0), tmp_path, only=PART_A)[
        "step_function"
    ]
    assert step.fraction == 0.0
    assert "step(1e-9) = 0, expected 1" in step.message
    assert "exactly" in step.hint


@pytest.mark.parametrize(
    ("step", "wrong_at"),
    [
        (lambda u: np.where((np.asarray(u) > 0) & (np.asarray(u) < 4), 1.0, 0.0), "step(4) = 0"),
        (lambda u: np.where(np.abs(np.asarray(u)) < 1e5, np.asarray(u) > 0, 0.0), "step(1e6) = 0"),
        (
            lambda u: np.where(np.asarray(u) > 0, 1.0, np.where(np.asarray(u) < -999, 1.0, 0.0)),
            "-1000",
        ),
    ],
)
def test_a_step_wrong_only_far_from_zero_is_caught(
    tmp_path: Path, step: Callable[[Any], Any], wrong_at: str
) -> None:
    """Right near zero and over a standard normal's range, wrong for large |u|: tried at
    +-4, +-1e3, +-1e6, +-1e300 and at magnitudes spread over 1e-6..1e6 too."""
    result = grade(answer(step=step), tmp_path, only=PART_A)["step_function"]
    assert result.fraction == 0.0
    assert wrong_at in result.message


def test_a_network_that_is_0_everywhere_gets_no_edge_credit(tmp_path: Path) -> None:
    def zero_box(h: float, delta: float) -> tuple[Any, ...]:
        return np.array([1.0, -1.0]), np.array([0.0, delta]), np.zeros(2), 0.0

    results = grade(answer(box_network=zero_box), tmp_path, only=PART_A)
    assert results["box_interior"].fraction == 0.0
    assert "just right of x = 0 the output is 0, expected 1" in results["box_interior"].message
    assert results["box_edges"].fraction == 0.0
    assert "cannot be credited" in results["box_edges"].message
    assert "0 all through (0, delta)" in results["box_edges"].message


def wrong_sign_box(h: float, delta: float) -> tuple[Any, ...]:
    """-h inside (0, delta), exactly 0 at both edges and outside."""
    w_hidden, b_hidden, w_out, b_out = reference_box(h, delta)
    return w_hidden, b_hidden, -w_out, -b_out


def half_width_box(h: float, delta: float) -> tuple[Any, ...]:
    """h on (0, delta/2) only: 0 at both edges, wrong on [delta/2, delta)."""
    return reference_box(h, delta / 2)


@pytest.mark.parametrize("box", [wrong_sign_box, half_width_box], ids=lambda f: f.__name__)
def test_a_box_wrong_inside_but_0_at_both_edges_loses_the_interior_test_only(
    tmp_path: Path, box: Callable[..., Any]
) -> None:
    results = grade(answer(box_network=box), tmp_path, only=PART_A)
    assert results["box_interior"].fraction == 0.0
    assert results["box_edges"].fraction == 1.0, results["box_edges"].message
    assert results["step_function"].fraction == 1.0


H_GLOBAL, DELTA_GLOBAL, B_GLOBAL = 2.0, 0.5, math.pi
"""What the template's self-checks leave in the notebook's h, delta and B."""


@pytest.mark.parametrize(
    ("name", "box", "edges"),
    [
        ("h", lambda h, delta: reference_box(H_GLOBAL, delta), 1.0),
        # the one random delta below 0.5 sees the box still on at x = delta
        ("delta", lambda h, delta: reference_box(h, DELTA_GLOBAL), 3 / 4),
    ],
    ids=["h", "delta"],
)
def test_a_box_that_ignores_an_argument_is_wrong_at_every_case_and_asked_about_it(
    tmp_path: Path, name: str, box: Callable[..., Any], edges: float
) -> None:
    results = grade(answer(box_network=box), tmp_path, only=PART_A)
    interior = results["box_interior"]
    assert interior.fraction == 0.0
    assert f"does box_network use its argument {name}," in interior.message
    assert results["box_edges"].fraction == pytest.approx(edges)


def test_box_cases_are_credited_one_by_one(tmp_path: Path) -> None:
    def only_the_unit_box(h: float, delta: float) -> tuple[Any, ...]:
        if (h, delta) != (1.0, 1.0):
            raise ValueError("only the unit box is supported")
        return reference_box(h, delta)

    ctx = probe_context(SPEC, answer(box_network=only_the_unit_box), tmp_path)
    assert ctx.inputs.values["box_cases"][0] == [1.0, 1.0]
    for definition in (checks.box_interior, checks.box_edges):
        outcome = _run(definition, ctx)
        assert outcome.fraction == pytest.approx(1 / 4)
        assert "ValueError: only the unit box is supported" in outcome.message


def test_a_box_with_three_neurons_is_refused_in_words(tmp_path: Path) -> None:
    def three(h: float, delta: float) -> tuple[Any, ...]:
        w, b, v, c = reference_box(h, delta)
        return np.append(w, 1.0), np.append(b, -10 * delta), np.append(v, 0.0), c

    interior = grade(answer(box_network=three), tmp_path, only=PART_A)["box_interior"]
    assert interior.fraction == 0.0
    assert "expected (2,) for a 2-neuron box network" in interior.message


def test_a_nan_network_fails_without_crashing(tmp_path: Path) -> None:
    def nan_box(h: float, delta: float) -> tuple[Any, ...]:
        w, b, v, _ = reference_box(h, delta)
        return w, b, v, float("nan")

    results = grade(answer(box_network=nan_box), tmp_path, only=PART_A)
    assert results["box_interior"].fraction == 0.0
    assert "NaN" in results["box_interior"].message


def test_open_boxes_in_the_approximation_are_shown_their_edge_spike(tmp_path: Path) -> None:
    results = grade(answer(box_approximation=open_boxes), tmp_path)
    assert results["approx_neurons"].fraction == 1.0
    converges = results["approx_converges"]
    assert converges.fraction == 0.0
    assert "an edge of your boxes" in converges.message
    assert "half-open" in converges.message


def test_endpoint_heights_still_converge(tmp_path: Path) -> None:
    results = grade(answer(box_approximation=left_endpoint), tmp_path)
    assert results["approx_converges"].fraction == 1.0


def test_increments_as_heights_do_not_converge(tmp_path: Path) -> None:
    results = grade(answer(box_approximation=increments), tmp_path)
    assert results["approx_neurons"].fraction == 1.0
    converges = results["approx_converges"]
    assert converges.fraction == 0.0
    assert "need <= -0.8" in converges.message
    assert "Criterion:" in converges.message
    slopes = converges.details["slopes"]
    assert all(s > -0.2 for s in slopes)


def test_ignoring_n_costs_both_approximation_tests(tmp_path: Path) -> None:
    results = grade(answer(box_approximation=fixed_ten), tmp_path)
    neurons = results["approx_neurons"]
    assert neurons.fraction == 0.0
    assert "n = 16: 20 hidden neurons, expected 32" in neurons.message
    assert results["approx_converges"].fraction == 0.0


def test_an_approximator_that_fails_for_large_n_is_credited_per_call(tmp_path: Path) -> None:
    def small_only(f: Callable[..., Any], big_b: float, n: int) -> tuple[Any, ...]:
        if n > 128:
            raise MemoryError("too many boxes")
        return reference_approx(f, big_b, n)

    results = grade(answer(box_approximation=small_only), tmp_path)
    assert results["approx_neurons"].fraction == pytest.approx(4 / 6)
    assert "MemoryError: too many boxes" in results["approx_neurons"].message
    assert results["approx_converges"].fraction == 0.0
    assert "n = 256 could not be evaluated: MemoryError" in results["approx_converges"].message


def test_missing_functions_are_named_once(tmp_path: Path) -> None:
    results = grade({}, tmp_path)
    for key, outcome in results.items():
        assert outcome.fraction == 0.0
        assert "does not define" in outcome.message, (key, outcome.message)
    assert results["box_edges"].message.count("does not define") == 1


def _run(definition: CheckDef, ctx: CheckContext) -> Outcome:
    outcome, crashed = run_check(definition, ctx)
    assert not crashed, outcome.message
    return outcome


def test_an_approximator_that_always_raises_is_told_once(tmp_path: Path) -> None:
    def not_done(f: Callable[..., Any], big_b: float, n: int) -> tuple[Any, ...]:
        raise NotImplementedError("TODO")

    neurons = grade(answer(box_approximation=not_done), tmp_path, only=("approx_neurons",))
    message = neurons["approx_neurons"].message
    assert message == "Could not be checked: every call failed: NotImplementedError: TODO"


# --- the grader's inputs: a function that ignores an argument cannot pass ----------------------


def inputs(seed: int) -> dict[str, Any]:
    return probe_inputs(SPEC, seed).values


SEEDS = range(40)


def test_no_argument_is_a_number_the_template_uses() -> None:
    """h = 2.0, delta = 0.5, B = pi, n = 5 ... 80: a function using the notebook's global
    instead of its argument must be wrong at every random case."""
    template = code_numbers("q1_step_network.ipynb")
    assert {0.5, 2.0, math.pi, 20.0} <= template
    for seed in SEEDS:
        values = inputs(seed)
        for h, delta in values["box_cases"][1:]:
            assert not near_any(abs(h), template, 0.04), (seed, h)
            assert not near_any(delta, template, 0.04), (seed, delta)
        for spec in values["functions"]:
            assert not near_any(spec["B"], template, 0.04), (seed, spec)
        assert not any(near_any(n, template, 0.05) for n in values["ns"])


def test_b_falls_on_both_sides_of_every_b_a_student_might_hard_code() -> None:
    """One B above pi (a network tiling [-pi, pi] is 0 on (pi, B]); one so small that tiling
    [-1, 1] already makes the boxes more than BOUND_FACTOR times too wide."""
    for seed in SEEDS:
        small, large = sorted(spec["B"] for spec in inputs(seed)["functions"])
        assert large > 1.1 * math.pi, seed
        assert small * hidden.BOUND_FACTOR < 1.0, seed


def test_box_cases_straddle_the_templates_h_and_delta_and_take_both_signs() -> None:
    for seed in SEEDS:
        cases = inputs(seed)["box_cases"]
        hs = [h for h, _ in cases]
        deltas = [d for _, d in cases]
        assert min(hs) < 0 < max(hs)
        assert min(abs(h) for h in hs) < 1 < 2 < max(abs(h) for h in hs)
        assert sum(d < 0.5 for d in deltas) == 1 and max(deltas) > 1


@pytest.mark.parametrize("c", [1.0, 2.0, math.pi], ids=["1", "2", "pi"])
@pytest.mark.parametrize("seed", [0, 1])
def test_an_approximator_that_ignores_b_fails_for_both_functions(
    tmp_path: Path, c: float, seed: int
) -> None:
    """It tiles [-c, c] with n boxes (c = the self-check's B = pi left in the notebook)."""
    results = grade(
        answer(box_approximation=lambda f, big_b, n: reference_approx(f, c, n)), tmp_path, seed
    )
    assert results["approx_neurons"].fraction == 1.0
    converges = results["approx_converges"]
    assert converges.fraction == 0.0, converges.message
    assert "0 of 2 functions converge like 1/n" in converges.message


def test_one_box_too_many_costs_only_the_neuron_count(tmp_path: Path) -> None:
    results = grade(
        answer(box_approximation=lambda f, big_b, n: reference_approx(f, big_b, n + 1)), tmp_path
    )
    assert results["approx_neurons"].fraction == 0.0
    assert "n = 16: 34 hidden neurons, expected 32" in results["approx_neurons"].message
    assert results["approx_converges"].fraction == 1.0


def test_an_approximator_that_ignores_an_argument_is_asked_about_it(tmp_path: Path) -> None:
    results = grade(
        answer(box_approximation=lambda f, big_b, n: reference_approx(f, B_GLOBAL, n)), tmp_path
    )
    converges = results["approx_converges"].message
    assert converges.count("does box_approximation use its argument B,") == 2
    assert "edges run from -3.14159 to 3.14159" in converges
    neurons = grade(answer(box_approximation=fixed_ten), tmp_path / "n")["approx_neurons"]
    assert "gives 20 hidden neurons whatever n is" in neurons.message


def test_a_wrong_answer_that_uses_its_arguments_is_not_asked_about_them(tmp_path: Path) -> None:
    results = grade(answer(box_network=wrong_sign_box, box_approximation=increments), tmp_path)
    assert all("use its argument" not in r.message for r in results.values())
