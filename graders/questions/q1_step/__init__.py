"""Q1: step-activation networks (the box of part a, the n-box approximator of part b)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graders.models import ProbeInputs
from graders.questions.api import ProbeContext, QuestionSpec
from graders.questions.q1_step import checks, reference_runs

# Smooth bounded functions the grader may hand to the student's approximator (part b). The
# probe sees only the chosen expressions, at probe time, after the student's code has run.
FUNCTION_POOL = (
    "np.sin({a} * x)",
    "np.exp(-{a} * x ** 2)",
    "np.tanh({a} * x) + 0.3 * np.cos(x)",
    "x ** 3 / {B} ** 3 - 0.5 * x / {B}",
    "1.0 / (1.0 + {a} * x ** 2)",
)
APPROX_NS = (16, 32, 64, 128, 256, 512)
"""Box counts for part (b). They start at 16 because the O(1/n) regime starts late for the
pool's fastest functions: from n = 4, a correct left-endpoint approximation of sin(2x) on
[-3, 3] fits a log-log slope of only -0.76; from 16 the worst correct variant fits -0.96."""


def make_inputs(ctx: ProbeContext) -> ProbeInputs:
    rng = ctx.rng
    cases = [[1.0, 1.0]] + [
        [
            round(float(rng.choice([-1, 1]) * rng.uniform(0.5, 3.0)), 3),
            round(float(rng.uniform(0.25, 2.5)), 3),
        ]
        for _ in range(3)
    ]
    picks = rng.choice(len(FUNCTION_POOL), size=2, replace=False)
    functions = []
    for i in picks:
        big_b = round(float(rng.uniform(1.0, 3.0)), 3)
        a = round(float(rng.uniform(0.5, 2.0)), 3)
        functions.append({"expr": FUNCTION_POOL[int(i)].format(a=a, B=big_b), "B": big_b})
    step_u = np.concatenate([[-1.0, -1e-9, 0.0, 1e-9, 1.0], rng.normal(size=11)])
    return ProbeInputs(
        arrays={"step_u": step_u},
        values={"box_cases": cases, "functions": functions, "ns": list(APPROX_NS)},
    )


SPEC = QuestionSpec(
    id="q1",
    title="Step-activation networks",
    order=1,
    notebook_stem="q1_step_network",
    name_pattern=r"(^|[^a-z0-9])q(uestion)?[ _-]?0?1([^0-9]|$)|step[ _-]?net",
    content_markers=("box_network", "box_approximation", "network_output"),
    free_response_ids=("q1a", "q1b", "q1c"),
    make_inputs=make_inputs,
    artifacts=(
        "step.npz",
        "box_network.npz",
        "box_approximation.npz",
    ),
    checks=checks.CHECKS,
    reference_report=reference_runs.reference_report,
    package_dir=Path(__file__).resolve().parent,
)
