"""Q1 scenarios: the seed's half-open box, a non-strict step, a non-converging approximator,
functions that ignore an argument (and use the notebook's global instead), boxes wrong in one
way each, and correct submissions written differently (torch's (H, 1) layout, a loop, float32,
other heights and weights) that must keep full marks."""

from __future__ import annotations

from tools.notebooks.q1_step import Q1_APPROX
from tools.scenarios import Edit, Scenario

NOTEBOOK = "q1_step_network.ipynb"

CORRECT_BOX = """\
    w_hidden = np.array([1.0, -1.0])
    b_hidden = np.array([0.0, float(delta)])
    w_out = np.array([float(h), float(h)])
    b_out = -float(h)
"""
BOX_SIGNATURE = "def box_network(h, delta):"
APPROX_SIGNATURE = "def box_approximation(f, B, n):"
APPROX_HEIGHTS = "heights = np.array([f(m) for m in midpoints], dtype=float)"
APPROX_BODY = Q1_APPROX[Q1_APPROX.index("    edges = ") : Q1_APPROX.index("    return w_hidden")]
"""The correct solution's box_approximation body, up to its return (from the notebook source)."""

SCENARIOS = (
    Scenario(
        name="q1_seed_box_boundary",
        description="The seed's box h*(s(x) - s(x - delta)): h instead of 0 at x = delta.",
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=CORRECT_BOX,
                new="""\
    w_hidden = np.array([1.0, 1.0])
    b_hidden = np.array([0.0, -float(delta)])
    w_out = np.array([float(h), -float(h)])
    b_out = 0.0
""",
            ),
        ),
        expected_scores={"q1": 5.0},
        expected_failures={"q1.box_edges": "f(delta) = "},
    ),
    Scenario(
        name="q1_step_ge",
        description="step uses u >= 0, so step(0) = 1; the networks themselves are right.",
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="return np.where(np.asarray(u, dtype=float) > 0, 1.0, 0.0)",
                new="return np.where(np.asarray(u, dtype=float) >= 0, 1.0, 0.0)",
            ),
        ),
        expected_scores={"q1": 5.5},
        expected_failures={"q1.step_function": "step(0) = 1, expected 0"},
    ),
    Scenario(
        name="q1_approx_fixed",
        description=(
            "box_approximation gives each box the increment f(e_(k+1)) - f(e_k) (a staircase's "
            "heights) instead of f's value: 2n neurons, but the error never falls."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="heights = np.array([f(m) for m in midpoints], dtype=float)",
                new="heights = np.diff(np.array([f(e) for e in edges], dtype=float))",
            ),
        ),
        expected_scores={"q1": 3.5},
        expected_failures={"q1.approx_converges": "slope"},
    ),
    Scenario(
        name="q1_torch_layout",
        description=(
            "Correct, in other layouts: box_network returns torch-style (2, 1) / (1, 2) arrays, "
            "box_approximation a dict of plain lists; full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="""\
    w_hidden, b_hidden, w_out, b_out = params
    w_hidden = np.asarray(w_hidden, dtype=float)
    b_hidden = np.asarray(b_hidden, dtype=float)
    w_out = np.asarray(w_out, dtype=float)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    return w_out @ step(np.outer(w_hidden, x) + b_hidden[:, None]) + b_out""",
                new="""\
    if isinstance(params, dict):
        params = params["w_hidden"], params["b_hidden"], params["w_out"], params["b_out"]
    w_hidden, b_hidden, w_out, b_out = params
    w_hidden = np.asarray(w_hidden, dtype=float).reshape(-1, 1)  # (H, 1), like nn.Linear(1, H)
    b_hidden = np.asarray(b_hidden, dtype=float).reshape(-1, 1)
    w_out = np.asarray(w_out, dtype=float).reshape(1, -1)  # (1, H), like nn.Linear(H, 1)
    x = np.atleast_1d(np.asarray(x, dtype=float)).reshape(1, -1)
    return (w_out @ step(w_hidden @ x + b_hidden) + np.asarray(b_out, dtype=float)).ravel()""",
            ),
            Edit(
                old="    b_out = -float(h)\n    return w_hidden, b_hidden, w_out, b_out",
                new=(
                    "    b_out = -float(h)\n"
                    "    return (w_hidden.reshape(2, 1), b_hidden.reshape(2, 1), "
                    "w_out.reshape(1, 2), np.array([b_out]))"
                ),
            ),
            Edit(
                # after the edit above, only box_approximation's return is left
                old="    return w_hidden, b_hidden, w_out, b_out",
                new=(
                    '    return {"w_hidden": w_hidden.tolist(), "b_hidden": b_hidden.tolist(),\n'
                    '            "w_out": w_out.tolist(), "b_out": float(b_out)}'
                ),
            ),
        ),
    ),
    # --- an argument ignored: the notebook's global is used instead ---------------------------
    Scenario(
        name="q1_approx_ignores_b",
        description=(
            "box_approximation's parameter is called b but its body uses B: the notebook's "
            "global B = pi from the self-check, so it tiles [-pi, pi] whatever B is asked for."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=APPROX_SIGNATURE, new="def box_approximation(f, b, n):"),),
        expected_scores={"q1": 3.5},
        expected_failures={"q1.approx_converges": "0 of 2 functions converge like 1/n"},
    ),
    Scenario(
        name="q1_approx_ignores_n",
        description=(
            "box_approximation's parameter is called num_boxes but its body uses n: the "
            "notebook's last n = 20 from the self-check, so every call makes 20 boxes."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=APPROX_SIGNATURE, new="def box_approximation(f, B, num_boxes):"),),
        expected_scores={"q1": 3.0},
        expected_failures={
            "q1.approx_neurons": "40 hidden neurons, expected 32",
            "q1.approx_converges": "0 of 2 functions converge like 1/n",
        },
    ),
    Scenario(
        name="q1_box_ignores_h",
        description=(
            "box_network's parameter is called height but its body uses h: the notebook's "
            "global h = 2.0 from the self-check; the box is still 0 at both edges."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=BOX_SIGNATURE, new="def box_network(height, delta):"),),
        expected_scores={"q1": 4.5},
        expected_failures={"q1.box_interior": "0 of 4 boxes are right inside and outside"},
    ),
    Scenario(
        name="q1_box_ignores_delta",
        description=(
            "box_network's parameter is called width but its body uses delta: the notebook's "
            "global delta = 0.5, so every box ends at 0.5 (still on at x = delta for the one "
            "grader delta below 0.5)."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=BOX_SIGNATURE, new="def box_network(h, width):"),),
        expected_scores={"q1": 4.25},
        expected_failures={
            "q1.box_interior": "0 of 4 boxes are right inside and outside",
            "q1.box_edges": "3 of 4 boxes are right at both edges",
        },
    ),
    # --- a box wrong in one way: only the interior test loses its points -------------------
    Scenario(
        name="q1_box_wrong_sign",
        description="The box's output weights and bias have their signs swapped: -h inside.",
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="    w_out = np.array([float(h), float(h)])\n    b_out = -float(h)\n",
                new="    w_out = np.array([-float(h), -float(h)])\n    b_out = float(h)\n",
            ),
        ),
        expected_scores={"q1": 4.5},
        expected_failures={"q1.box_interior": "inside (0, delta) the output is off from h"},
    ),
    Scenario(
        name="q1_box_half_width",
        description=(
            "The second neuron switches off at delta/2: the box is 0 at x = 0 and x = delta, "
            "as asked, but only h on (0, delta/2)."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="b_hidden = np.array([0.0, float(delta)])",
                new="b_hidden = np.array([0.0, float(delta) / 2])",
            ),
        ),
        expected_scores={"q1": 4.5},
        expected_failures={"q1.box_interior": "just left of x = delta the output is 0"},
    ),
    # --- the approximator's count or its edges ----------------------------------------------
    Scenario(
        name="q1_approx_one_box_too_many",
        description=(
            "n + 2 edges, so n + 1 boxes and 2(n + 1) neurons: the error still falls like 1/n."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="edges = np.linspace(-B, B, n + 1)",
                new="edges = np.linspace(-B, B, n + 2)",
            ),
            Edit(old="2 * n", new="2 * len(heights)", rename=True),
        ),
        expected_scores={"q1": 5.5},
        expected_failures={"q1.approx_neurons": "34 hidden neurons, expected 32"},
    ),
    Scenario(
        name="q1_approx_open_boxes",
        description=(
            "Part (a)'s open box reused for every box: each shared edge belongs to no box, so "
            "the network drops to 0 there and the sup error does not fall."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=APPROX_BODY,
                new="""\
    edges = np.linspace(-B, B, n + 1)
    heights = np.array([f(m) for m in (edges[:-1] + edges[1:]) / 2], dtype=float)
    params = [box_network(hk, edges[k + 1] - edges[k]) for k, hk in enumerate(heights)]
    w_hidden = np.concatenate([p[0] for p in params])
    b_hidden = np.concatenate([p[1] - p[0] * e for p, e in zip(params, edges[:-1])])
    w_out = np.concatenate([p[2] for p in params])
    b_out = sum(p[3] for p in params)
""",
            ),
        ),
        expected_scores={"q1": 3.5},
        expected_failures={"q1.approx_converges": "half-open"},
    ),
    # --- correct, written differently: full marks --------------------------------------------
    Scenario(
        name="q1_approx_loop",
        description=(
            "Correct: box_approximation built box by box in a Python loop, as lists of floats, "
            "from steps of e - x (boxes [e_k, e_(k+1)), the last one closed at B); full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=APPROX_BODY,
                new="""\
    width = 2 * B / n
    w_hidden, b_hidden, w_out, b_out = [], [], [], 0.0
    for k in range(n):
        left, right = -B + k * width, -B + (k + 1) * width
        height = float(f(left + width / 2))
        if k < n - 1:  # height * (step(right - x) - step(left - x)): on for left <= x < right
            w_hidden += [-1.0, -1.0]
            b_hidden += [right, left]
            w_out += [height, -height]
        else:  # the last box also covers x = B: height * (1 - step(x - B) - step(left - x))
            w_hidden += [1.0, -1.0]
            b_hidden += [-B, left]
            w_out += [-height, -height]
            b_out = height
""",
            ),
        ),
    ),
    Scenario(
        name="q1_float32",
        description=(
            "Correct, in float32 throughout (as torch would compute): the box and the n boxes "
            "built from float32 arrays; full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=CORRECT_BOX,
                new="""\
    w_hidden = np.array([1.0, -1.0], dtype=np.float32)
    b_hidden = np.array([0.0, delta], dtype=np.float32)
    w_out = np.array([h, h], dtype=np.float32)
    b_out = -np.float32(h)
""",
            ),
            Edit(
                old="edges = np.linspace(-B, B, n + 1)",
                new="edges = np.linspace(-B, B, n + 1, dtype=np.float32)",
            ),
            Edit(
                old="for m in midpoints], dtype=float)",
                new="for m in midpoints], dtype=np.float32)",
            ),
            Edit(old="(2 * n)", new="(2 * n, dtype=np.float32)", rename=True),
        ),
    ),
    Scenario(
        name="q1_right_heights_scaled_box",
        description=(
            "Correct, other choices: each box takes f at its right edge (one vectorised call), "
            "the box's neurons are step(2x) and step(3(delta - x)), step is a lambda and b_out "
            "a numpy scalar; full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old="""\
def step(u):
    \"\"\"The step activation, elementwise: 1.0 where u > 0, else 0.0 (so step(0) is 0).\"\"\"
    return np.where(np.asarray(u, dtype=float) > 0, 1.0, 0.0)""",
                new="step = lambda u: (np.asarray(u) > 0).astype(float)  # 1.0 where u > 0",
            ),
            Edit(
                old=CORRECT_BOX,
                new="""\
    w_hidden = np.array([2.0, -3.0])  # step(2x) and step(3 * (delta - x))
    b_hidden = np.array([0.0, 3.0 * delta])
    w_out = np.array([h, h], dtype=float)
    b_out = np.float64(-h)
""",
            ),
            Edit(old=APPROX_HEIGHTS, new="heights = np.asarray(f(edges[1:]), dtype=float)"),
        ),
    ),
)
