"""Q2 scenarios: the seed's ReLU factor, a wrong Xavier rule, a backward rule that uses n_in."""

from __future__ import annotations

from tools.scenarios import Edit, Scenario

NOTEBOOK = "q2_initialization.ipynb"

SCENARIOS = (
    Scenario(
        name="q2_seed_relu_factor",
        description=(
            "The seed's part (c): var(y) = E[y^2] - E[y]^2 set to v^2, so the factor is "
            "2 pi/(pi - 1) and relu_forward_variance 2 pi/((pi - 1) n_in)."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old='ReLU layers."""\n    return 2.0',
                new='ReLU layers."""\n    return 2 * np.pi / (np.pi - 1)  # from var(y) = v^2',
            ),
        ),
        expected_scores={"q2": 4.75},
        expected_failures={"q2.relu_factor": "E[y^2]", "q2.monte_carlo": "explodes"},
    ),
    Scenario(
        name="q2_xavier_wrong",
        description="Xavier as 1/(n_in + n_out): half of Glorot's variance.",
        notebook=NOTEBOOK,
        edits=(Edit(old="return 2.0 / (n_in + n_out)", new="return 1.0 / (n_in + n_out)"),),
        expected_scores={"q2": 4.75},
        expected_failures={"q2.xavier_rule": "0.5 times", "q2.monte_carlo": "vanishes"},
    ),
    Scenario(
        name="q2_backward_uses_n_in",
        description=(
            "backward_variance divides by n_in, which at grading time is the notebook's global "
            "n_in = 300: a constant 1/300 whatever n_out is."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old="return 1.0 / n_out", new="return 1.0 / n_in"),),
        expected_scores={"q2": 4.75},
        expected_failures={
            "q2.backward_rule": "whatever its arguments",
            "q2.monte_carlo": "vanishes",
        },
    ),
)
