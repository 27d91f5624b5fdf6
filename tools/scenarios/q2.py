"""Q2 scenarios: the seed's ReLU factor, wrong rules (another fan, another mean for Xavier, a
missing factor), formulas that ignore an argument (and use the notebook's global instead), and
correct submissions written differently (float32, lambdas, composed rules, other names) that
must keep full marks."""

from __future__ import annotations

from tools.scenarios import Edit, Scenario

NOTEBOOK = "q2_initialization.ipynb"
ACTIVATION = "def activation_variance(n_in, sigma2, v2):"
ACTIVATION_BODY = "return n_in * sigma2 * v2"
FORWARD = "return 1.0 / n_in"
BACKWARD = "return 1.0 / n_out"
RELU_FACTOR = 'ReLU layers."""\n    return 2.0'
XAVIER = "return 2.0 / (n_in + n_out)"
MONTE_CARLO_XAVIER = "times what 2/(n_in + n_out) gives"

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
                old=RELU_FACTOR,
                new=RELU_FACTOR.replace("2.0", "2 * np.pi / (np.pi - 1)  # from var(y) = v^2"),
            ),
        ),
        expected_scores={"q2": 4.75},
        expected_failures={"q2.relu_factor": "E[y^2]", "q2.monte_carlo": "explodes"},
    ),
    Scenario(
        name="q2_xavier_wrong",
        description="Xavier as 1/(n_in + n_out): half of Glorot's variance.",
        notebook=NOTEBOOK,
        edits=(Edit(old=XAVIER, new="return 1.0 / (n_in + n_out)"),),
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
        edits=(Edit(old=BACKWARD, new="return 1.0 / n_in"),),
        expected_scores={"q2": 4.75},
        expected_failures={
            "q2.backward_rule": "whatever its arguments",
            "q2.monte_carlo": "vanishes",
        },
    ),
    # --- a wrong rule: its closed form and the deep stack both lose points ------------------
    Scenario(
        name="q2_forward_uses_n_out",
        description=(
            "forward_variance divides by n_out, which at grading time is the notebook's global "
            "n_out = 100: a constant 1/100 whatever n_in is."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=FORWARD, new="return 1.0 / n_out"),),
        expected_scores={"q2": 4.75},
        expected_failures={
            "q2.forward_rule": "whatever its arguments",
            "q2.monte_carlo": "explodes",
        },
    ),
    Scenario(
        name="q2_forward_is_xavier",
        description=(
            "Glorot's 2/(n_in + n_out) given as the forward rule (n_out being the notebook's "
            "global 100): a layer wider than 100 multiplies the signal by more than 1."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=FORWARD, new="return 2.0 / (n_in + n_out)"),),
        expected_scores={"q2": 4.75},
        expected_failures={"q2.forward_rule": "expected 1/n_in", "q2.monte_carlo": "explodes"},
    ),
    Scenario(
        name="q2_relu_factor_one",
        description="relu_factor() returns 1 (the ReLU's halving forgotten): the rule is 1/n_in.",
        notebook=NOTEBOOK,
        edits=(Edit(old=RELU_FACTOR, new=RELU_FACTOR.replace("2.0", "1.0")),),
        expected_scores={"q2": 4.75},
        expected_failures={
            "q2.relu_factor": "relu_factor() = 1, expected 2",
            "q2.monte_carlo": "vanishes",
        },
    ),
    Scenario(
        name="q2_relu_rule_without_factor",
        description=(
            "relu_factor() is 2, but relu_forward_variance returns 1/n_in without it: half of "
            "the ReLU test, and the ReLU stack's signal halves at every layer."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old="return relu_factor() / n_in", new="return 1.0 / n_in"),),
        expected_scores={"q2": 5.25},
        expected_failures={
            "q2.relu_factor": "0.5 times the expected one",
            "q2.monte_carlo": "vanishes",
        },
    ),
    Scenario(
        name="q2_xavier_fan_in",
        description="Xavier as 1/n_in, the forward rule: right only for square layers.",
        notebook=NOTEBOOK,
        edits=(Edit(old=XAVIER, new="return 1.0 / n_in"),),
        expected_scores={"q2": 4.75},
        expected_failures={
            "q2.xavier_rule": "expected 2/(n_in + n_out)",
            "q2.monte_carlo": MONTE_CARLO_XAVIER,
        },
    ),
    Scenario(
        name="q2_xavier_geometric_mean",
        description=(
            "Xavier as 1/sqrt(n_in n_out), the geometric mean of the two rules instead of the "
            "harmonic one: right only for square layers."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=XAVIER, new="return 1.0 / np.sqrt(n_in * n_out)"),),
        expected_scores={"q2": 4.75},
        expected_failures={
            "q2.xavier_rule": "expected 2/(n_in + n_out)",
            "q2.monte_carlo": MONTE_CARLO_XAVIER,
        },
    ),
    # --- an argument ignored: only its closed form loses points -----------------------------
    Scenario(
        name="q2_activation_ignores_v2",
        description="activation_variance returns n_in * sigma2, as if the inputs had variance 1.",
        notebook=NOTEBOOK,
        edits=(Edit(old=ACTIVATION_BODY, new="return n_in * sigma2"),),
        expected_scores={"q2": 5.0},
        expected_failures={"q2.activation_variance": "expected n_in * sigma2 * v2"},
    ),
    Scenario(
        name="q2_activation_global_sigma2",
        description=(
            "activation_variance's parameter is called s2 but its body uses sigma2: at grading "
            "time the notebook's global sigma2 = 0.002 from the simulation's last example."
        ),
        notebook=NOTEBOOK,
        edits=(Edit(old=ACTIVATION, new="def activation_variance(n_in, s2, v2):"),),
        expected_scores={"q2": 5.0},
        expected_failures={"q2.activation_variance": "is right at 0 of"},
    ),
    # --- correct, written differently: full marks --------------------------------------------
    Scenario(
        name="q2_float32",
        description=(
            "Correct, computed in float32 (numpy scalars about 6e-8 off, inside the 1e-6 "
            "tolerance); full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(
                old=ACTIVATION_BODY,
                new="return np.float32(n_in) * np.float32(sigma2) * np.float32(v2)",
            ),
            Edit(old=FORWARD, new="return np.float32(1) / np.float32(n_in)"),
            Edit(old=RELU_FACTOR, new=RELU_FACTOR.replace("2.0", "np.float32(2)")),
            Edit(old=BACKWARD, new="return np.reciprocal(np.float32(n_out))"),
            Edit(old=XAVIER, new="return np.float32(2) / np.float32(n_in + n_out)"),
        ),
    ),
    Scenario(
        name="q2_lambdas_composed",
        description=(
            "Correct, composed: rules as lambdas, relu_factor returning the int 2, the ReLU "
            "rule as relu_factor() * forward_variance(n_in), Xavier as the harmonic mean of the "
            "forward and backward rules, and math.prod; full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old="import numpy as np", new="import math\n\nimport numpy as np"),
            Edit(old=ACTIVATION_BODY, new="return math.prod((n_in, sigma2, v2))"),
            Edit(
                old=(
                    "def forward_variance(n_in):\n"
                    '    """The weight variance sigma^2 that keeps Var(a_j) equal to the input '
                    'variance."""\n'
                    "    " + FORWARD
                ),
                new="forward_variance = lambda n_in: 1 / n_in  # keeps Var(a_j) = v^2",
            ),
            Edit(
                old=(
                    "def relu_factor():\n"
                    '    """The constant by which the forward rule is multiplied for ' + RELU_FACTOR
                ),
                new="relu_factor = lambda: 2  # a ReLU keeps half of E[a^2]",
            ),
            Edit(
                old="return relu_factor() / n_in",
                new="return relu_factor() * forward_variance(n_in)",
            ),
            Edit(
                old=XAVIER,
                new=(
                    "forward, backward = forward_variance(n_in), backward_variance(n_out)\n"
                    "    return 2 * forward * backward / (forward + backward)  # harmonic mean"
                ),
            ),
        ),
    ),
    Scenario(
        name="q2_other_names",
        description=(
            "Correct, with other parameter names (fan_in, fan_out, s2, var_x) and numpy "
            "arithmetic returning numpy floats; full marks."
        ),
        notebook=NOTEBOOK,
        edits=(
            Edit(old=ACTIVATION, new="def activation_variance(fan_in, s2, var_x):"),
            Edit(old=ACTIVATION_BODY, new="return np.multiply(fan_in, s2 * var_x)"),
            Edit(old="def forward_variance(n_in):", new="def forward_variance(fan_in):"),
            Edit(old=FORWARD, new="return np.divide(1.0, fan_in)"),
            Edit(old="def backward_variance(n_out):", new="def backward_variance(fan_out):"),
            Edit(old=BACKWARD, new="return np.float64(fan_out) ** -1"),
            Edit(
                old="def xavier_variance(n_in, n_out):",
                new="def xavier_variance(fan_in, fan_out):",
            ),
            Edit(old=XAVIER, new="return np.mean([fan_in, fan_out]) ** -1"),
        ),
    ),
)
