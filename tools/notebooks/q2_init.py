"""Question 2's notebook: how the variance of a layer's signal depends on the weights' scale.

Each part pairs a derivation (a free-response answer, graded by hand) with the formula it leads
to, written as a function of plain numbers, so the formula is graded on its own at random
arguments. The closing simulation is given code: it uses the student's functions to let them
test their formulas before submitting.
"""

from __future__ import annotations

from tools.notebooks.cells import NotebookSpec, code, free_response, md, parameters
from tools.notebooks.instructions import HOW_TO_ANSWER

Q2_INTRO = r"""
How large should random initial weights be? Take one fully connected layer with $n_{in}$
inputs and $n_{out}$ outputs, weights drawn independently from $\mathcal{N}(0, \sigma^2)$ and
biases set to 0. You will derive how the variance of the signal changes through the layer,
forwards and backwards, and turn each result into a small Python function.

Each part asks for a derivation (a written answer, graded by hand) **and** for the formula it
leads to (a function, checked by the grader at random arguments and by simulation). The
functions return plain numbers. At the end, a given cell lets you test your formulas by
simulation yourself.
"""

Q2_IMPORTS = """
import numpy as np
"""

Q2_PARAMETERS = """
SEED = 0  # seeds the simulation at the end of the notebook
"""

Q2_PART_A = r"""
## Part (a): the variance of one pre-activation

The inputs $x_1, \dots, x_{n_{in}}$ are independent, have mean 0 and variance $v^2$, and are
independent of the weights. Neuron $j$ computes $a_j = \sum_{i=1}^{n_{in}} w_{ij} x_i$.
Derive $\mathrm{Var}(a_j)$ step by step in terms of $\sigma^2$, $v^2$ and $n_{in}$ (answer q2a),
and implement the result as `activation_variance(n_in, sigma2, v2)`, where `sigma2` is
$\sigma^2$ and `v2` is $v^2$.
"""

Q2_ACTIVATION = '''
def activation_variance(n_in, sigma2, v2):
    """Var(a_j) for a linear layer with n_in inputs of variance v2 and N(0, sigma2) weights."""
    ### BEGIN SOLUTION
    return n_in * sigma2 * v2
    ### END SOLUTION
'''

Q2A = r"""
**Your answer (q2a):**

$E[a_j] = \sum_i E[w_{ij}]\,E[x_i] = 0$ because each weight is independent of its input and
both have mean 0, so $\mathrm{Var}(a_j) = E[a_j^2]$. Expanding the square,
$E[a_j^2] = \sum_i \sum_k E[w_{ij} w_{kj}]\,E[x_i x_k]$. For $i \ne k$ the weights are
independent with mean 0, so $E[w_{ij} w_{kj}] = 0$ and the cross terms vanish. For $i = k$,
$E[w_{ij}^2] = \mathrm{Var}(w_{ij}) + E[w_{ij}]^2 = \sigma^2$ and likewise $E[x_i^2] = v^2$.
Summing the $n_{in}$ equal diagonal terms:
$$\mathrm{Var}(a_j) = n_{in}\,\sigma^2 v^2 .$$
"""

Q2_PART_B = r"""
## Part (b): the fan-in rule

Using part (a), explain why a poorly chosen $\sigma^2$ makes the variance of $a_j$ vanish or
explode as $n_{in}$ grows, in particular when many layers are stacked (answer q2b). Deduce the
rule of thumb for $\sigma^2$ that keeps the variance of the outputs equal to that of the inputs,
and implement it as `forward_variance(n_in)`.
"""

Q2_FORWARD = '''
def forward_variance(n_in):
    """The weight variance sigma^2 that keeps Var(a_j) equal to the input variance."""
    ### BEGIN SOLUTION
    return 1.0 / n_in
    ### END SOLUTION
'''

Q2B = r"""
**Your answer (q2b):**

By part (a) one layer multiplies the variance by $n_{in}\sigma^2$. If this factor is below 1
the signal shrinks at every layer and after $L$ layers its variance is $(n_{in}\sigma^2)^L v^2$,
which goes to 0 (vanishing); above 1 it grows geometrically (exploding). A fixed $\sigma^2$
cannot work for every width, because the factor grows with the fan-in: $\sigma^2 = 0.01$ is fine
for $n_{in} = 100$ but multiplies the variance by 10 per layer when $n_{in} = 1000$.
Requiring the factor to be exactly 1 gives the rule of thumb
$$\sigma^2 = \frac{1}{n_{in}} .$$
"""

Q2_PART_C = r"""
## Part (c): ReLU layers

Now each output goes through a ReLU, $y_j = \max(0, a_j)$. The rule of thumb of part (b)
stays the same up to a constant factor. What is the factor? Give a short argument (answer q2c),
then implement `relu_factor()` (the factor) and `relu_forward_variance(n_in)` (the rule of
part (b) adjusted by it).
"""

Q2_RELU = '''
def relu_factor():
    """The constant by which the forward rule is multiplied for ReLU layers."""
    ### BEGIN SOLUTION
    return 2.0
    ### END SOLUTION


def relu_forward_variance(n_in):
    """The weight variance sigma^2 for a layer followed by a ReLU."""
    ### BEGIN SOLUTION
    return relu_factor() / n_in
    ### END SOLUTION
'''

Q2C = r"""
**Your answer (q2c):**

The pre-activation $a_j$ is symmetric about 0 (a sum of symmetric terms), with
$E[a_j^2] = n_{in}\sigma^2 v^2$. ReLU keeps $a_j$ where it is positive and zeroes the other half,
so $E[y_j^2] = E[a_j^2 \mathbb{1}\{a_j > 0\}] = \tfrac12 E[a_j^2] = \tfrac12 n_{in}\sigma^2 v^2$.
In part (a) the next layer only uses $E[x_i^2]$ (its inputs no longer have mean 0, but the
cross terms still vanish because the weights have mean 0), so the quantity to preserve is the
second moment, not the variance of $y$. Setting $\tfrac12 n_{in}\sigma^2 = 1$ gives
$\sigma^2 = 2/n_{in}$: the factor is **2** (He initialization). Subtracting $(E[y])^2$ would
give $2\pi/((\pi - 1)n_{in})$, which is not what propagates to the next layer.
"""

Q2_PART_D = r"""
## Part (d): the backward pass

Going backwards, the gradient with respect to the layer's inputs is $W^\top$ times the
gradient with respect to its outputs: $g^{in}_i = \sum_{j=1}^{n_{out}} w_{ij}\, g^{out}_j$.
Assume the output gradients are independent and identically distributed with variance $g^2$
(and independent of the weights). Which choice of $\sigma^2$ keeps the gradients from vanishing
or exploding? Answer q2d and implement `backward_variance(n_out)`.
"""

Q2_BACKWARD = '''
def backward_variance(n_out):
    """The weight variance sigma^2 that keeps the variance of backpropagated gradients."""
    ### BEGIN SOLUTION
    return 1.0 / n_out
    ### END SOLUTION
'''

Q2D = r"""
**Your answer (q2d):**

The computation is part (a) with the roles swapped: $g^{in}_i$ is a sum of $n_{out}$ terms
$w_{ij} g^{out}_j$, each with mean 0 (the weights have mean 0 and are independent of the
gradients), and the cross terms vanish for the same reason. Each term contributes
$E[w_{ij}^2]E[(g^{out}_j)^2] = \sigma^2 g^2$ (taking the output gradients to have mean 0), so
$\mathrm{Var}(g^{in}_i) = n_{out}\sigma^2 g^2$. To keep the gradient scale from layer to layer:
$$\sigma^2 = \frac{1}{n_{out}} .$$
"""

Q2_PART_E = r"""
## Part (e): both directions at once

The forward rule asks for $\sigma^2 = 1/n_{in}$ and the backward rule for $1/n_{out}$; unless
the two are equal, no single $\sigma^2$ satisfies both. Propose a compromise (answer q2e; it is
known as Xavier or Glorot initialization) and implement `xavier_variance(n_in, n_out)`.
"""

Q2_XAVIER = '''
def xavier_variance(n_in, n_out):
    """A weight variance that balances the forward and the backward rule."""
    ### BEGIN SOLUTION
    return 2.0 / (n_in + n_out)
    ### END SOLUTION
'''

Q2E = r"""
**Your answer (q2e):**

We need $n_{in}\sigma^2 \approx 1$ and $n_{out}\sigma^2 \approx 1$ at the same time. Both hold
exactly only when $n_{in} = n_{out}$, so we ask for the average of the two factors to be 1:
$\sigma^2 \cdot \frac{n_{in} + n_{out}}{2} = 1$, that is
$$\sigma^2 = \frac{2}{n_{in} + n_{out}} ,$$
the harmonic mean of the two rules. For a square layer it satisfies both exactly; otherwise
the forward factor $n_{in}\sigma^2 = 2n_{in}/(n_{in} + n_{out})$ and the backward factor
$2n_{out}/(n_{in} + n_{out})$ average to 1 and neither reaches 2, so no direction can vanish or
explode quickly.
"""

Q2_SIMULATION_INTRO = """
## Check your formulas by simulation

The cell below draws random inputs and weights, pushes them through layers and measures the
variances. It uses the functions you wrote above, so run it after you finish them: the measured
and predicted numbers should agree to within a few percent.
"""

Q2_SIMULATION = '''
rng = np.random.default_rng(SEED)


def measured_activation_variance(n_in, n_out, sigma2, v2, n_samples=2000):
    """Var(a_j) measured on random inputs pushed through one random linear layer."""
    x = rng.normal(0.0, np.sqrt(v2), size=(n_samples, n_in))
    w = rng.normal(0.0, np.sqrt(sigma2), size=(n_in, n_out))
    return float(np.var(x @ w))


def relu_stack_second_moments(width, depth, variance_rule, n_samples=2000):
    """E[y^2] after each of `depth` ReLU layers whose weights use variance_rule(width)."""
    h = rng.normal(size=(n_samples, width))
    moments = []
    for _ in range(depth):
        w = rng.normal(0.0, np.sqrt(variance_rule(width)), size=(width, width))
        h = np.maximum(h @ w, 0.0)
        moments.append(float(np.mean(h**2)))
    return moments


n_in, n_out = 300, 100
for sigma2, v2 in [(0.01, 1.0), (0.002, 4.0)]:
    measured = measured_activation_variance(n_in, n_out, sigma2, v2)
    predicted = activation_variance(n_in, sigma2, v2)
    print(f"sigma2={sigma2}, v2={v2}: measured {measured:.3f}, predicted {predicted:.3f}")

print("\\nE[y^2] after each of 10 ReLU layers of width 256")
for name, rule in [("forward_variance", forward_variance),
                   ("relu_forward_variance", relu_forward_variance)]:
    print(f"  {name:>22}:", np.round(relu_stack_second_moments(256, 10, rule), 3))

g_out = rng.normal(size=(2000, n_out))  # output gradients with variance 1
w = rng.normal(0.0, np.sqrt(backward_variance(n_out)), size=(n_in, n_out))
print("\\nbackward pass with backward_variance: Var(g_in) =", round(float(np.var(g_out @ w.T)), 3))
print(f"xavier_variance(300, 100) = {xavier_variance(300, 100):.5f}, between the forward rule "
      f"{forward_variance(300):.5f} and the backward rule {backward_variance(100):.5f}")
'''


def spec() -> NotebookSpec:
    return NotebookSpec(
        filename="q2_initialization.ipynb",
        question="q2",
        cells=(
            md("q2-title", "# Question 2: choosing the scale of the initial weights"),
            md("q2-instructions", Q2_INTRO, HOW_TO_ANSWER),
            code("q2-imports", Q2_IMPORTS),
            parameters("q2-parameters", Q2_PARAMETERS),
            md("q2-part-a", Q2_PART_A),
            code("q2-activation-variance", Q2_ACTIVATION),
            free_response("q2a", Q2A),
            md("q2-part-b", Q2_PART_B),
            code("q2-forward-variance", Q2_FORWARD),
            free_response("q2b", Q2B),
            md("q2-part-c", Q2_PART_C),
            code("q2-relu", Q2_RELU),
            free_response("q2c", Q2C),
            md("q2-part-d", Q2_PART_D),
            code("q2-backward-variance", Q2_BACKWARD),
            free_response("q2d", Q2D),
            md("q2-part-e", Q2_PART_E),
            code("q2-xavier-variance", Q2_XAVIER),
            free_response("q2e", Q2E),
            md("q2-simulation-intro", Q2_SIMULATION_INTRO),
            code("q2-simulation", Q2_SIMULATION),
        ),
    )
