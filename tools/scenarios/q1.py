"""Q1 scenarios: the seed's half-open box, a non-strict step, a non-converging approximator,
and one correct submission in torch's (H, 1) layout that must keep full marks."""

from __future__ import annotations

from tools.scenarios import Edit, Scenario

NOTEBOOK = "q1_step_network.ipynb"

CORRECT_BOX = """\
    w_hidden = np.array([1.0, -1.0])
    b_hidden = np.array([0.0, float(delta)])
    w_out = np.array([float(h), float(h)])
    b_out = -float(h)
"""

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
)
