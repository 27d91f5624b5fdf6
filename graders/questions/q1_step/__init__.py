"""Q1: step-activation networks (the box of part a, the n-box approximator of part b)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from graders.models import ProbeInputs
from graders.questions.api import ProbeContext, QuestionSpec, draw_away
from graders.questions.q1_step import checks

# Smooth bounded functions the grader may hand to the student's approximator (part b). The
# probe sees only the chosen expressions, at probe time, after the student's code has run.
FUNCTION_POOL = (
    "np.sin({a} * x)",
    "np.exp(-{a} * x ** 2)",
    "np.tanh({a} * x) + 0.3 * np.cos(x)",
    "x ** 3 / {B} ** 3 - 0.5 * x / {B}",
    "1.0 / (1.0 + {a} * x ** 2)",
)
FLAT_AT_THE_ENDS = frozenset({"np.exp(-{a} * x ** 2)"})
"""Pool functions that can be all but 0 near +-B: never given the large B (see ``B_BANDS``)."""
APPROX_NS = (16, 32, 64, 128, 256, 512)
"""Box counts for part (b). They start at 16 because the O(1/n) regime starts late for the
pool's fastest functions: from n = 4, a correct left-endpoint approximation of sin(2x) on
[-3, 3] fits a log-log slope of only -0.76; from 16 the worst correct variant fits -0.96.
None is one of the template's own n (5, 10, 20, 40, 80): an approximator that ignores n and
uses the notebook's last n = 20 gets no call right."""

TEMPLATE_NUMBERS = (0.5, 1.0, 1.5, 2.0, math.pi)
"""Numbers the template's code passes as arguments or leaves in globals (h, delta = 2.0, 0.5;
B = pi; the self-check's x range -1 .. 1.5): no probe argument comes within 5 % of one, so a
function that ignores its argument and uses the notebook's value instead is wrong at every
grader case."""
B_BANDS = ((0.12, 0.2), (3.6, 4.6))
"""Where the two functions' B are drawn: one on each side of every number a student might
hard-code for B (1, 2, pi). Above pi, a network that tiles the self-check's [-pi, pi] instead of
[-B, B] is 0 on (pi, B], so its error cannot fall; at B <= 0.2 a network tiling [-c, c] for any
c >= 1 has boxes at least 5 times too wide, so n * error exceeds the hidden test's bound on
n * error. (The grid on [-B, B] cannot see a network that is wider than asked otherwise.)"""
SHARPNESS_B = 3.0
"""The largest B the pool's parameters were calibrated at (a in [0.5, 2] on [-3, 3]): on a
wider interval a is scaled by (3 / B)^2, so no function is steeper on [-B, B] than there."""
H_BANDS = (((0.3, 0.8), -1.0), ((1.2, 1.8), 1.0), ((2.3, 3.5), -1.0))
"""(|h| band, sign of h) of the three random part (a) cases: |h| on both sides of the template's
1 and 2, and both signs, so a box that ignores h or its sign is wrong at a fixed number of cases."""
DELTA_BANDS = ((0.2, 0.45), (0.6, 0.9), (1.2, 2.5))
"""delta of the three random cases, one per band (paired with the h bands at random): on both
sides of the template's 0.5 and 1, so a box that ignores delta is wrong at every case, and
opens after delta at exactly one of them."""


STEP_SCALES = (4.0, 1e3, 1e6, 1e300)
"""Where ``step`` is also tried, both signs: near zero and at a standard normal's scale alone,
a step that is wrong only for |u| > 4 (``(u > 0) & (u < 4)``) passed every time."""


def make_inputs(ctx: ProbeContext) -> ProbeInputs:
    rng = ctx.rng
    cases = [[1.0, 1.0]]
    for delta_band, k in zip(DELTA_BANDS, rng.permutation(len(H_BANDS)), strict=True):
        h_band, sign = H_BANDS[int(k)]
        h = sign * draw_away(rng, *h_band, TEMPLATE_NUMBERS, digits=3)
        cases.append([h, draw_away(rng, *delta_band, TEMPLATE_NUMBERS, digits=3)])
    picks = [int(i) for i in rng.choice(len(FUNCTION_POOL), size=2, replace=False)]
    if FUNCTION_POOL[picks[1]] in FLAT_AT_THE_ENDS:
        picks.reverse()  # the large B goes to a function that is not ~0 near +-B
    functions = []
    for i, (b_low, b_high) in zip(picks, B_BANDS, strict=True):
        big_b = draw_away(rng, b_low, b_high, TEMPLATE_NUMBERS, digits=3)
        a = round(float(rng.uniform(0.5, 2.0)) * min(1.0, SHARPNESS_B / big_b) ** 2, 3)
        functions.append({"expr": FUNCTION_POOL[i].format(a=a, B=big_b), "B": big_b})
    step_u = np.concatenate(
        [
            [-1.0, -1e-9, -0.0, 0.0, 1e-9, 1.0],
            [sign * scale for scale in STEP_SCALES for sign in (1.0, -1.0)],
            rng.normal(size=11),
            rng.choice([-1.0, 1.0], size=11) * 10.0 ** rng.uniform(-6.0, 6.0, size=11),
        ]
    )
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
    package_dir=Path(__file__).resolve().parent,
)
