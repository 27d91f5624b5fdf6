"""Generate the student template notebooks and the two fixture submissions from one source.

Notebooks are JSON that nobody can review in a diff, so every cell lives here as a string and
the ``.ipynb`` files are build outputs. Code cells mark their answers the nbgrader way::

    ### BEGIN SOLUTION
    <the answer>
    ### END SOLUTION

The template replaces each such block with ``# YOUR CODE HERE`` / ``raise NotImplementedError()``
at the block's indentation; the ``all_correct`` fixture keeps the answer and drops the markers.
Free-response cells hold a model answer that the template swaps for ``YOUR ANSWER HERE``. Cell
ids are fixed strings, so running the script twice gives byte-identical files and a test can
hold the committed notebooks to this source (``--check``).

    python tools/make_notebooks.py            # (re)write all notebooks
    python tools/make_notebooks.py --check    # exit 1 if any committed notebook is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import nbformat
from nbformat import NotebookNode

REPO_ROOT: Final = Path(__file__).resolve().parents[1]

BEGIN_SOLUTION: Final = "### BEGIN SOLUTION"
END_SOLUTION: Final = "### END SOLUTION"
CODE_MARKER: Final = "# YOUR CODE HERE"
CODE_RAISE: Final = "raise NotImplementedError()"
ANSWER_PLACEHOLDER: Final = "YOUR ANSWER HERE"
PARAMETERS_TAG: Final = "parameters"
FREE_RESPONSE_TAG: Final = "free_response"

TEMPLATE_DIRS: Final = ("student_template", "fixtures/submissions/blank")
"""Folders that receive the untouched template."""
SOLUTION_DIRS: Final = ("fixtures/submissions/all_correct",)
"""Folders that receive the filled-in notebooks."""

KERNELSPEC: Final = {"display_name": "Python 3", "language": "python", "name": "python3"}


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One cell before it is split into its template and solution forms."""

    id: str
    """The nbformat 4.5 cell id, fixed so that regeneration is byte-identical."""
    kind: Literal["markdown", "code"]
    source: str
    """Code may contain solution blocks; a free-response cell holds the model answer."""
    tags: tuple[str, ...] = ()
    answer_id: str | None = None
    """Set on free-response cells: the id the grader files the student's answer under."""


@dataclass(frozen=True, kw_only=True)
class NotebookSpec:
    """One question's notebook."""

    filename: str
    question: str
    """"q1" ... "q4": the key the grader's profiles and rubric use."""
    cells: tuple[Cell, ...]


def md(cell_id: str, *parts: str) -> Cell:
    """A markdown cell; several parts become paragraphs (shared instruction blocks)."""
    return Cell(id=cell_id, kind="markdown", source="\n\n".join(p.strip("\n") for p in parts))


def code(cell_id: str, text: str) -> Cell:
    return Cell(id=cell_id, kind="code", source=text.strip("\n"))


def parameters(cell_id: str, text: str) -> Cell:
    return Cell(id=cell_id, kind="code", source=text.strip("\n"), tags=(PARAMETERS_TAG,))


def free_response(answer_id: str, model_answer: str) -> Cell:
    return Cell(
        id=f"{answer_id.replace('_', '-')}-answer",
        kind="markdown",
        source=model_answer.strip("\n"),
        tags=(FREE_RESPONSE_TAG,),
        answer_id=answer_id,
    )


# ---------------------------------------------------------------------------------------------
# Shared instruction text
# ---------------------------------------------------------------------------------------------

HOW_TO_ANSWER = """
**How to fill this notebook in**

* Wherever a cell says `# YOUR CODE HERE` followed by `raise NotImplementedError()`, delete
  those two lines and write your code in their place. Keep every function name, argument list
  and variable name that the instructions mention: the grader looks them up by name.
* The cell tagged `parameters` holds the settings. You may change them while you experiment,
  but the grader replaces them with its own values, so later cells must always use these
  variables and never repeat the numbers.
* Written answers go in the cells that begin with **Your answer (...)**: replace
  `YOUR ANSWER HERE` with your text and keep the first line as it is.
* Before you submit, restart the kernel and run all cells from the top.
"""

DATA_RULES = """
**Data and hardware.** The grader has no internet access. Datasets are read only from
`DATA_ROOT` with `download=False` (torchvision layout: `DATA_ROOT/<Dataset>/raw/`). Do not
assume a GPU: put models and tensors on `DEVICE` with `.to(DEVICE)`, which falls back to the
CPU when CUDA is not available.
"""


# ---------------------------------------------------------------------------------------------
# Q1: networks of step neurons
# ---------------------------------------------------------------------------------------------

Q1_INTRO = r"""
In this question nothing is trained: you choose the weights of small networks by hand.

Every hidden neuron computes $\sigma(w x + b)$ for a scalar input $x$, with the **step
activation** $\sigma(u) = 1$ if $u > 0$ and $\sigma(u) = 0$ otherwise (note that
$\sigma(0) = 0$). The output neuron has no activation: it returns
$\sum_i w^{out}_i \cdot \text{hidden}_i + b^{out}$.

A network with $H$ hidden neurons is described by a tuple
`(w_hidden, b_hidden, w_out, b_out)`: three arrays of shape `(H,)` and one number. The given
function `network_output(params, x)` evaluates such a network at one or many inputs, so you can
look at what your weights do.

1. **Part (a)**: implement `box_network(h, delta)`.
2. **Part (b)**: implement `box_approximation(f, B, n)`.
3. Answer the written questions q1a, q1b and q1c (part (c) has no code).
"""

Q1_IMPORTS = """
import numpy as np
import matplotlib.pyplot as plt
"""

Q1_PARAMETERS = """
SEED = 0  # seeds the random points of the self-checks
"""

Q1_STARTER = '''
def step(u):
    """The step activation, elementwise: 1.0 where u > 0, else 0.0 (so step(0) is 0)."""
    return np.where(np.asarray(u, dtype=float) > 0, 1.0, 0.0)


def network_output(params, x):
    """Evaluate a network with one input, one hidden layer of step neurons and one output.

    params = (w_hidden, b_hidden, w_out, b_out): hidden neuron i computes
    step(w_hidden[i] * x + b_hidden[i]), and the output is the sum of w_out[i] * hidden_i
    plus b_out. x is a number or a 1-D array; the result holds one output per input.
    """
    w_hidden, b_hidden, w_out, b_out = params
    w_hidden = np.asarray(w_hidden, dtype=float)
    b_hidden = np.asarray(b_hidden, dtype=float)
    w_out = np.asarray(w_out, dtype=float)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    return w_out @ step(np.outer(w_hidden, x) + b_hidden[:, None]) + b_out
'''

Q1_PART_A = r"""
## Part (a): a box from two neurons

The box of height $h$ and width $\delta$ is $f(x) = h$ for $0 < x < \delta$ and $f(x) = 0$
otherwise. The interval is **open**: $f(0) = f(\delta) = 0$.

Write `box_network(h, delta)` returning `(w_hidden, b_hidden, w_out, b_out)` for a network with
**2 hidden step neurons** whose output equals $f$ at every $x$, including exactly at $x = 0$ and
$x = \delta$. Then explain in q1a how the network works, which weight and bias does what, and
any assumptions you make (for example about the sign of $h$ or $\delta$).
"""

Q1_BOX = '''
def box_network(h, delta):
    """Weights of a 2-hidden-neuron step network computing the box of height h, width delta.

    Returns (w_hidden, b_hidden, w_out, b_out) in the format network_output expects: the output
    is h for 0 < x < delta and 0 everywhere else, including x = 0 and x = delta.
    """
    ### BEGIN SOLUTION
    # step(x) switches on after 0, step(delta - x) switches off at delta; both are on exactly
    # on the open interval, where h + h - h = h. Everywhere else one of them is off: h - h = 0.
    w_hidden = np.array([1.0, -1.0])
    b_hidden = np.array([0.0, float(delta)])
    w_out = np.array([float(h), float(h)])
    b_out = -float(h)
    return w_hidden, b_hidden, w_out, b_out
    ### END SOLUTION
'''

Q1_BOX_CHECK = """
# Self-check: compare your network with the box at random points and at both edges.
rng = np.random.default_rng(SEED)
h, delta = 2.0, 0.5
xs = np.concatenate([rng.uniform(-1.0, 1.5, size=1000), [0.0, delta]])
expected = np.where((xs > 0) & (xs < delta), h, 0.0)
got = network_output(box_network(h, delta), xs)
print("points where the network differs from the box:", int(np.sum(~np.isclose(got, expected))))
print("value at x = 0:", got[-2], " value at x = delta:", got[-1])

grid = np.linspace(-0.5, 1.0, 1501)
plt.plot(grid, network_output(box_network(h, delta), grid))
plt.title(f"box_network(h={h}, delta={delta})")
plt.xlabel("x")
plt.ylabel("network output")
plt.show()
"""

Q1A = r"""
**Your answer (q1a):**

The network computes $g(x) = h\,\sigma(x) + h\,\sigma(\delta - x) - h$.

* Hidden neuron 1 has weight $1$ and bias $0$: it is on exactly when $x > 0$.
* Hidden neuron 2 has weight $-1$ and bias $\delta$: it is on exactly when $x < \delta$.
* Both output weights are $h$ and the output bias is $-h$.

For $0 < x < \delta$ both neurons are on and $g = h + h - h = h$. For $x \le 0$ only neuron 2
is on, for $x \ge \delta$ only neuron 1 is on, and in both cases $g = h - h = 0$; since
$\sigma(0) = 0$, the edges $x = 0$ and $x = \delta$ fall in these cases, so the box is open as
required. (The tempting $h\,(\sigma(x) - \sigma(x - \delta))$ gives $h$ at $x = \delta$.)
Assumptions: $\delta > 0$ so the interval is not empty; $h$ may have either sign.
"""

Q1_PART_B = r"""
## Part (b): many boxes approximate a smooth function

Let $f$ be smooth and bounded on $[-B, B]$ (ignore it outside, or treat it as 0 there).
Write `box_approximation(f, B, n)` returning `(w_hidden, b_hidden, w_out, b_out)` for a network
with **$2n$ hidden neurons** that approximates $f$ on $[-B, B]$ with $n$ boxes of equal width.

* `f` is a Python function of one number (the grader passes its own functions); `B > 0`; `n` is
  a positive integer.
* Take care at the points where two boxes meet: every point of $[-B, B]$, edges included, should
  get the height of a box it touches, not 0 and not the sum of two heights.
* The grader measures the largest error on $[-B, B]$ for several $n$ and expects it to shrink in
  proportion to $1/n$.

Then explain in q1b why the approximation gets better as $n$ grows.
"""

Q1_APPROX = '''
def box_approximation(f, B, n):
    """Weights of a step network with 2n hidden neurons approximating f on [-B, B] by n boxes.

    Returns (w_hidden, b_hidden, w_out, b_out) in the format network_output expects.
    """
    ### BEGIN SOLUTION
    # Edges e_0 = -B < e_1 < ... < e_n = B; box k has the height of f at its midpoint.
    # Box k is heights[k] * (step(x - e_k) - step(x - e_{k+1})), which is on for
    # e_k < x <= e_{k+1}: these half-open boxes tile (-B, B] with neither gaps nor overlaps.
    # The first box uses 1 - step(e_0 - x) instead of step(x - e_0) so that x = -B is covered.
    edges = np.linspace(-B, B, n + 1)
    midpoints = (edges[:-1] + edges[1:]) / 2
    heights = np.array([f(m) for m in midpoints], dtype=float)
    w_hidden = np.ones(2 * n)
    b_hidden = np.empty(2 * n)
    w_out = np.empty(2 * n)
    b_hidden[0::2] = -edges[:-1]  # step(x - e_k): switches on after the left edge
    b_hidden[1::2] = -edges[1:]  # step(x - e_{k+1}): switches the box off after its right edge
    w_out[0::2] = heights
    w_out[1::2] = -heights
    w_hidden[0], b_hidden[0], w_out[0] = -1.0, edges[0], -heights[0]  # -h0 * step(-B - x)
    b_out = heights[0]  # ... + h0: the first box is on for -B <= x <= e_1
    return w_hidden, b_hidden, w_out, b_out
    ### END SOLUTION
'''

Q1_APPROX_CHECK = """
# Self-check: approximate sin on [-pi, pi] and watch the largest error as n grows.
B = np.pi
grid = np.linspace(-B, B, 4001)
for n in [5, 10, 20, 40, 80]:
    approx = network_output(box_approximation(np.sin, B, n), grid)
    print(f"n = {n:3d}: largest error on the grid = {np.max(np.abs(approx - np.sin(grid))):.4f}")

plt.plot(grid, np.sin(grid), label="sin(x)")
for n in [5, 20]:
    plt.plot(grid, network_output(box_approximation(np.sin, B, n), grid), label=f"n = {n} boxes")
plt.xlabel("x")
plt.ylabel("value")
plt.legend()
plt.show()
"""

Q1B = r"""
**Your answer (q1b):**

Cut $[-B, B]$ into $n$ intervals of width $w = 2B/n$ and give each interval a box (part a, two
neurons) whose height is $f$ at the interval's midpoint. The boxes do not overlap, so the
network's output on each interval is that one height: a staircase that follows $f$.

Inside an interval every point is at most $w/2 = B/n$ from the midpoint, so if $|f'| \le L$ on
$[-B, B]$ (smooth on a closed interval implies this), the error is at most $L B / n$. Doubling
the number of boxes halves the worst error, and any accuracy can be reached with enough hidden
neurons. At the shared edges the boxes must be half-open so that each edge belongs to exactly
one box; otherwise the output drops to 0 or doubles there.
"""

Q1_PART_C = r"""
## Part (c): inputs with $d$ dimensions

Suppose now that $x \in \mathbb{R}^d$ (an image, say). Can the idea of part (b) be carried over?
If yes, discuss what goes wrong in practice, for instance how the number of neurons grows with
$d$. If not, explain why.
"""

Q1C = r"""
**Your answer (q1c):**

Yes, in principle. With step neurons $\sigma(w^\top x + b)$ each hidden neuron splits space
by a hyperplane; a second hidden layer (or an output threshold) can AND $2d$ half-spaces into a
small box (a hyper-rectangle), and summing boxes with heights $f(\text{centre})$ gives the same
staircase approximation as in part (b).

The cost is the problem: to keep cells of side $2B/n$ one needs $n^d$ boxes, each costing about
$2d$ neurons, so the network grows exponentially with the dimension. For a $28 \times 28$
image even $n = 2$ gives $2^{784}$ cells. Such a network also has one free height per cell, so
it would need data in every cell to set them and would generalise poorly (curse of
dimensionality). Practical networks work because real data lie near low-dimensional structure
and learned features are shared across regions instead of tiling space.
"""


def q1_spec() -> NotebookSpec:
    return NotebookSpec(
        filename="q1_step_network.ipynb",
        question="q1",
        cells=(
            md("q1-title", "# Question 1: what networks of step neurons can express"),
            md("q1-instructions", Q1_INTRO, HOW_TO_ANSWER),
            code("q1-imports", Q1_IMPORTS),
            parameters("q1-parameters", Q1_PARAMETERS),
            code("q1-starter", Q1_STARTER),
            md("q1-part-a", Q1_PART_A),
            code("q1-box-network", Q1_BOX),
            code("q1-box-check", Q1_BOX_CHECK),
            free_response("q1a", Q1A),
            md("q1-part-b", Q1_PART_B),
            code("q1-box-approximation", Q1_APPROX),
            code("q1-approximation-check", Q1_APPROX_CHECK),
            free_response("q1b", Q1B),
            md("q1-part-c", Q1_PART_C),
            free_response("q1c", Q1C),
        ),
    )


# ---------------------------------------------------------------------------------------------
# Q2: the scale of the initialization
# ---------------------------------------------------------------------------------------------

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


def q2_spec() -> NotebookSpec:
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


# ---------------------------------------------------------------------------------------------
# Q3: a multilayer perceptron for Fashion-MNIST (torch)
# ---------------------------------------------------------------------------------------------

Q3_INTRO = r"""
The course demo trained a logistic-regression classifier on Fashion-MNIST. Here you replace it
with a dense network with **three hidden layers of 256, 128 and 64 neurons, each followed by a
ReLU**, and an output layer of 10 logits (no softmax in the model: `CrossEntropyLoss` applies
it). Train it with plain SGD, plot the train and test loss per epoch, report the test accuracy,
and look at the predicted class probabilities of a few random test images.

Names the grader looks for, so keep them exactly:

| name | what it must be |
|---|---|
| `FashionMLP` | your `torch.nn.Module` class |
| `model` | an instance of it, moved to `DEVICE` |
| `loss` | `torch.nn.CrossEntropyLoss()` |
| `optimizer` | `torch.optim.SGD` over `model.parameters()` with `lr=LEARNING_RATE` |
| `train_loss_history`, `test_loss_history` | one mean loss (a float) per epoch |
| `test_accuracy_history` | test accuracy (a float in [0, 1]) per epoch |
| `random_indices` | the `N_SAMPLES` test-set indices you visualize |
| `sample_probabilities` | one array of 10 class probabilities per visualized image |

The grader recomputes the test accuracy of your trained `model` itself, so report what your
model really does.
"""

Q3_IMPORTS = """
import numpy as np
import torch
import torchvision
import matplotlib.pyplot as plt
from torch.utils.data import DataLoader
"""

Q3_PARAMETERS = """
EPOCHS = 25            # the grader may lower this on a CPU
BATCH_SIZE = 64
LEARNING_RATE = 0.01
DATA_ROOT = "./data"   # holds FashionMNIST/raw/
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TRAIN_LIMIT = None     # None = all 60,000 training images; the grader may use fewer
N_SAMPLES = 3          # random test images to visualize
SEED = 0
"""

Q3_SEEDS = """
torch.manual_seed(SEED)
np.random.seed(SEED)
print("device:", DEVICE)
"""

Q3_DATA_INTRO = """
## The data

torchvision reads the Fashion-MNIST files from `DATA_ROOT` (nothing is downloaded).
`ToTensor()` turns each 28x28 image into a float tensor of shape `(1, 28, 28)` with values in
[0, 1]. The labels are the integers 0-9; `CLASS_NAMES` says what they mean.
"""

Q3_DATA = """
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

trainingdata = torchvision.datasets.FashionMNIST(
    DATA_ROOT, train=True, download=False, transform=torchvision.transforms.ToTensor())
testdata = torchvision.datasets.FashionMNIST(
    DATA_ROOT, train=False, download=False, transform=torchvision.transforms.ToTensor())
if TRAIN_LIMIT:
    trainingdata = torch.utils.data.Subset(trainingdata, range(TRAIN_LIMIT))
print(len(trainingdata), "training images,", len(testdata), "test images")

image, label = trainingdata[0]
print(image.shape, label, CLASS_NAMES[label])
"""

Q3_LOADERS = """
trainDataLoader = DataLoader(trainingdata, batch_size=BATCH_SIZE, shuffle=True)
testDataLoader = DataLoader(testdata, batch_size=BATCH_SIZE, shuffle=False)
print(len(trainDataLoader), "training batches,", len(testDataLoader), "test batches")

images, labels = next(iter(trainDataLoader))
plt.figure(figsize=(10, 4))
for index in range(5):
    plt.subplot(1, 5, index + 1)
    plt.title(CLASS_NAMES[labels[index].item()])
    plt.imshow(images[index].squeeze(), cmap=plt.cm.gray)
    plt.axis("off")
plt.show()
"""

Q3_MODEL_INTRO = """
## The model

Complete `FashionMLP`: 784 inputs (a flattened image) -> 256 -> 128 -> 64 -> 10, with a ReLU
after each of the three hidden layers and none after the output layer. `forward` receives a
batch of images of shape `(N, 1, 28, 28)` and returns logits of shape `(N, 10)`.

Then create `model` on `DEVICE`, the loss function `loss` (cross entropy) and the optimizer
`optimizer` (SGD with learning rate `LEARNING_RATE`).
"""

Q3_MODEL = """
class FashionMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        ### BEGIN SOLUTION
        self.fc1 = torch.nn.Linear(28 * 28, 256)
        self.fc2 = torch.nn.Linear(256, 128)
        self.fc3 = torch.nn.Linear(128, 64)
        self.out = torch.nn.Linear(64, 10)
        ### END SOLUTION

    def forward(self, x):
        ### BEGIN SOLUTION
        x = x.reshape(-1, 28 * 28)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        x = torch.relu(self.fc3(x))
        return self.out(x)
        ### END SOLUTION
"""

Q3_SETUP = """
# Create `model` (on DEVICE), `loss` and `optimizer`.
### BEGIN SOLUTION
model = FashionMLP().to(DEVICE)
loss = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
### END SOLUTION
print(model)
"""

Q3_TRAIN_INTRO = """
## Training

Train for `EPOCHS` epochs. In each epoch, make one pass over `trainDataLoader` with SGD steps,
then evaluate the model on all of `testDataLoader` without computing gradients. After each
epoch append to the three lists below:

* `train_loss_history`: the mean training loss over the epoch's batches,
* `test_loss_history`: the mean test loss,
* `test_accuracy_history`: the fraction of test images classified correctly,

and print the epoch's numbers. Move every batch to `DEVICE` before using it.
"""

Q3_TRAIN = """
train_loss_history = []
test_loss_history = []
test_accuracy_history = []

### BEGIN SOLUTION
for epoch in range(EPOCHS):
    model.train()
    train_loss = 0.0
    for images, labels in trainDataLoader:
        images, labels = images.to(DEVICE), labels.to(DEVICE)
        optimizer.zero_grad()
        fit = loss(model(images), labels)
        fit.backward()
        optimizer.step()
        train_loss += fit.item()

    model.eval()
    test_loss = 0.0
    correct = 0
    with torch.no_grad():
        for images, labels in testDataLoader:
            images, labels = images.to(DEVICE), labels.to(DEVICE)
            logits = model(images)
            test_loss += loss(logits, labels).item()
            correct += (logits.argmax(dim=1) == labels).sum().item()

    train_loss_history.append(train_loss / len(trainDataLoader))
    test_loss_history.append(test_loss / len(testDataLoader))
    test_accuracy_history.append(correct / len(testdata))
    print(f"Epoch {epoch}, Train loss {train_loss_history[-1]:.4f}, "
          f"Test loss {test_loss_history[-1]:.4f}, Test accuracy {test_accuracy_history[-1]:.4f}")
### END SOLUTION
"""

Q3_PLOT_INTRO = """
## Loss curves

Plot the train and the test loss against the epoch in one figure, with axis labels and a
legend, and show it with `plt.show()`.
"""

Q3_PLOT = """
### BEGIN SOLUTION
epochs = range(1, len(train_loss_history) + 1)
plt.plot(epochs, train_loss_history, "-o", linewidth=2, label="Train loss")
plt.plot(epochs, test_loss_history, "-o", linewidth=2, label="Test loss")
plt.xlabel("Epoch")
plt.ylabel("Cross-entropy loss")
plt.grid(True)
plt.legend()
plt.show()
### END SOLUTION
"""

Q3_ACCURACY = """
print("Final test accuracy:", test_accuracy_history[-1])
"""

Q3_TEST_VS_TRAIN = r"""
**Your answer (q3_test_vs_train):**

The weights are fitted to the training images only: every SGD step lowers the loss on the
batch it sees, so the model partly adapts to details (and noise) of the training set that do
not carry over to new images. The test images were never used for fitting, so their loss is
an honest estimate of the error on unseen data and is normally higher; the gap between the two
curves measures this overfitting and tends to widen with more epochs. (Early on the reported
train loss can even be above the test loss, because it averages over the epoch while the model
was still improving, whereas the test loss is measured at the end of the epoch.)
"""

Q3_SAMPLES_INTRO = """
## Predictions on random test images

`visualize_pred` (given) shows an image next to a bar chart of its class probabilities. Draw
`N_SAMPLES` distinct random indices **from the whole test set** into `random_indices` (use
`np.random`, which is seeded above). For each index, take the image and label from `testdata`,
compute the class probabilities with the softmax of your model's logits, append them (an array
of 10 numbers) to `sample_probabilities` and call `visualize_pred(image, true_label,
probabilities)`.
"""

Q3_VISUALIZE = '''
def visualize_pred(image, true_label, probabilities):
    """Show a test image beside a bar chart of the predicted class probabilities.

    image: a (1, 28, 28) or (28, 28) tensor; probabilities: 10 numbers, shape (10,) or (1, 10).
    """
    probabilities = np.asarray(probabilities).reshape(-1)
    predicted_class = int(np.argmax(probabilities))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.imshow(image.squeeze().cpu().numpy(), cmap=plt.cm.gray)
    ax1.set_title(f"True: {CLASS_NAMES[true_label]}, Pred: {CLASS_NAMES[predicted_class]}")
    ax1.axis("off")
    ax2.bar(range(10), probabilities, color="blue", alpha=0.7)
    ax2.set_xticks(range(10))
    ax2.set_title(f"Class probabilities (Pred: {predicted_class})")
    ax2.set_xlabel("Class")
    ax2.set_ylabel("Probability")
    plt.tight_layout()
    plt.show()
'''

Q3_SAMPLES = """
sample_probabilities = []
### BEGIN SOLUTION
random_indices = np.random.choice(len(testdata), N_SAMPLES, replace=False)
model.eval()
for idx in random_indices:
    image, true_label = testdata[idx]
    with torch.no_grad():
        logits = model(image.unsqueeze(0).to(DEVICE))
    probabilities = torch.softmax(logits, dim=1).squeeze(0).cpu().numpy()
    sample_probabilities.append(probabilities)
    visualize_pred(image, true_label, probabilities)
### END SOLUTION
"""

Q3_OBSERVATIONS = r"""
**Your answer (q3_observations):**

*Loss curves.* Both losses fall quickly in the first epochs and then flatten; the training loss
keeps decreasing steadily while the test loss levels off, with bumps from epoch to epoch
because plain SGD at a fixed learning rate is noisy. The growing gap between them is the start
of overfitting, which also tells us when more epochs stop paying off.

*Sample predictions.* For distinctive classes (trousers, bags, sneakers, ankle boots) the bar
chart is usually one tall bar near 1: the model is confident and right. The mistakes and the
spread-out bar charts concentrate on the upper-body garments (T-shirt/top, pullover, coat,
shirt), which look alike at 28x28 pixels; there the second-highest bar is often the true class.
The probabilities therefore say something useful about how sure the model is, not only which
class it picks.
"""


def q3_spec() -> NotebookSpec:
    return NotebookSpec(
        filename="q3_fashion_mlp.ipynb",
        question="q3",
        cells=(
            md("q3-title", "# Question 3: a multilayer perceptron for Fashion-MNIST"),
            md("q3-instructions", Q3_INTRO, HOW_TO_ANSWER, DATA_RULES),
            code("q3-imports", Q3_IMPORTS),
            parameters("q3-parameters", Q3_PARAMETERS),
            code("q3-seeds", Q3_SEEDS),
            md("q3-data-intro", Q3_DATA_INTRO),
            code("q3-data", Q3_DATA),
            code("q3-loaders", Q3_LOADERS),
            md("q3-model-intro", Q3_MODEL_INTRO),
            code("q3-model", Q3_MODEL),
            code("q3-setup", Q3_SETUP),
            md("q3-train-intro", Q3_TRAIN_INTRO),
            code("q3-train", Q3_TRAIN),
            md("q3-plot-intro", Q3_PLOT_INTRO),
            code("q3-plot", Q3_PLOT),
            code("q3-accuracy", Q3_ACCURACY),
            md(
                "q3-test-vs-train-question",
                "**Why is the test loss higher than the training loss?**",
            ),
            free_response("q3_test_vs_train", Q3_TEST_VS_TRAIN),
            md("q3-samples-intro", Q3_SAMPLES_INTRO),
            code("q3-visualize", Q3_VISUALIZE),
            code("q3-samples", Q3_SAMPLES),
            md(
                "q3-observations-question",
                "**What do you observe in the loss curves and in the "
                "predicted probabilities of the sample images?**",
            ),
            free_response("q3_observations", Q3_OBSERVATIONS),
        ),
    )


# ---------------------------------------------------------------------------------------------
# Q4: backpropagation by hand in numpy (MNIST)
# ---------------------------------------------------------------------------------------------

Q4_INTRO = r"""
Here you build and train a small network on MNIST (handwritten digits) with nothing but numpy:
the forward pass, the gradients of the loss with respect to every weight and bias
(backpropagation, written out by hand instead of autodiff), and the SGD updates. torchvision is
used only to read the data files.

The network is 784 -> 32 -> 32 -> 10: sigmoid on both hidden layers, softmax on the output,
cross-entropy loss. Weights are stored as `(n_in, n_out)` matrices, so a layer computes
`z = a @ W + b`. Training goes one sample at a time, in the order of the training set
(no shuffling, no mini-batches).

The functions you write read and update the global lists `weights` and `biases`; the grader
calls them with weights of its own choosing, so they must not rely on anything else that a
training run changes. Keep all the names and signatures below.
"""

Q4_IMPORTS = """
import numpy as np
import matplotlib.pyplot as plt
import torchvision
"""

Q4_PARAMETERS = """
EPOCHS = 3
LEARNING_RATE = 0.003
DATA_ROOT = "./data"   # holds MNIST/raw/
TRAIN_LIMIT = None     # None = all 60,000
TEST_LIMIT = None      # None = all 10,000
"""

Q4_DATA_INTRO = """
## The data

The images become float32 vectors of 784 pixels scaled to [0, 1]; the labels are integers 0-9.
`TRAIN_LIMIT` and `TEST_LIMIT` keep only the first images of each set (useful while you debug).
"""

Q4_DATA = """
mnist_train = torchvision.datasets.MNIST(DATA_ROOT, train=True, download=False)
mnist_test = torchvision.datasets.MNIST(DATA_ROOT, train=False, download=False)
x_train = mnist_train.data.numpy().astype(np.float32) / 255.0
y_train = mnist_train.targets.numpy()
x_test = mnist_test.data.numpy().astype(np.float32) / 255.0
y_test = mnist_test.targets.numpy()
x_train = x_train.reshape(-1, 784)
x_test = x_test.reshape(-1, 784)
x_train, y_train = x_train[:TRAIN_LIMIT], y_train[:TRAIN_LIMIT]
x_test, y_test = x_test[:TEST_LIMIT], y_test[:TEST_LIMIT]
print(x_train.shape, y_train.shape, x_test.shape, y_test.shape)

plt.imshow(x_train[0].reshape(28, 28), cmap="gray")
plt.title(f"Label: {y_train[0]}")
plt.show()
"""

Q4_HELPERS_INTRO = """
## Helper functions

Sigmoid for the hidden neurons, softmax for the output layer and the cross-entropy loss, all
written to avoid overflow. Use them as they are.
"""

Q4_HELPERS = """
def sigmoid(x):
    # Numerically stable sigmoid function based on
    # http://timvieira.github.io/blog/post/2014/02/11/exp-normalize-trick/

    x = np.clip(x, -500, 500) # We get an overflow warning without this

    return np.where(
        x >= 0,
        1 / (1 + np.exp(-x)),
        np.exp(x) / (1 + np.exp(x))
    )

def dsigmoid(x): # Derivative of sigmoid
    return sigmoid(x) * (1 - sigmoid(x))

def softmax(x):
    # Numerically stable softmax based on (same source as sigmoid)
    # http://timvieira.github.io/blog/post/2014/02/11/exp-normalize-trick/
    b = x.max()
    y = np.exp(x - b)
    return y / y.sum()

def cross_entropy_loss(y, yHat):
    return -np.sum(y * np.log(yHat))

def integer_to_one_hot(x, max):
    # x: integer to convert to one hot encoding
    # max: the size of the one hot encoded array
    result = np.zeros(10)
    result[x] = 1
    return result
"""

Q4_INIT_INTRO = r"""
## Q1. Initialization

Create the layers 784 -> 32 -> 32 -> 10. Store them in two Python lists, in layer order:
`weights[i]` of shape `(n_in, n_out)` and `biases[i]` of shape `(n_out,)`. Draw every weight
matrix from a normal distribution with mean 0 and variance $1/\max(n_{in}, n_{out})$ using the
generator `rng` below, one layer after the other starting with the first (the grader compares
your initial weights with its own draws from the same seed); set all biases to 0.
"""

Q4_INIT = """
from numpy.random import default_rng

rng = default_rng(80085)

# Q1. Fill initialization code here.
### BEGIN SOLUTION
layer_sizes = [784, 32, 32, 10]
weights = []
biases = []
for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:]):
    std = np.sqrt(1 / max(n_in, n_out))
    weights.append(rng.normal(loc=0, scale=std, size=(n_in, n_out)))
    biases.append(np.zeros(n_out))
### END SOLUTION

print([w.shape for w in weights], [b.shape for b in biases])
"""

Q4_FORWARD_INTRO = """
## Q2. The forward pass

`feed_forward_sample(sample, y)` runs one image through the layers (sigmoid after the hidden
layers, softmax after the last) and returns its cross-entropy loss and its prediction as a
one-hot vector of length 10. `feed_forward_dataset(x, y)` fills in the loss and the prediction
of every sample; the given rest of it prints the average loss and the number of correct
predictions and returns both.

With the random initial weights the accuracy should be close to chance (about 1 in 10).
"""

Q4_FORWARD = '''
def feed_forward_sample(sample, y):
    """ Forward pass through the neural network.
    Inputs:
      sample: 1D numpy array of 784 pixels. The input sample (an MNIST digit).
      y: An integer from 0 to 9, the label.

    Returns: the cross entropy loss, the most likely class as a one-hot vector of length 10
    """
    # Q2. Fill code here.
    ### BEGIN SOLUTION
    a = sample.flatten()
    for i in range(len(weights)):
        z = np.dot(a, weights[i]) + biases[i]
        a = sigmoid(z) if i < len(weights) - 1 else softmax(z)
    loss = cross_entropy_loss(integer_to_one_hot(y, 10), a)
    one_hot_guess = np.zeros(10)
    one_hot_guess[np.argmax(a)] = 1
    return loss, one_hot_guess
    ### END SOLUTION


def feed_forward_dataset(x, y):
    losses = np.empty(x.shape[0])
    one_hot_guesses = np.empty((x.shape[0], 10))

    # Q2. Fill code here to calculate losses, one_hot_guesses
    ### BEGIN SOLUTION
    for i in range(x.shape[0]):
        losses[i], one_hot_guesses[i] = feed_forward_sample(x[i], y[i])
    ### END SOLUTION

    y_one_hot = np.zeros((y.size, 10))
    y_one_hot[np.arange(y.size), y] = 1

    correct_guesses = np.sum(y_one_hot * one_hot_guesses)
    correct_guess_percent = format((correct_guesses / y.shape[0]) * 100, ".2f")

    print("\\nAverage loss:", np.round(np.average(losses), decimals=2))
    print("Accuracy (# of correct guesses):", correct_guesses, "/", y.shape[0],
          "(", correct_guess_percent, "%)")
    return float(np.average(losses)), int(correct_guesses)


def feed_forward_training_data():
    print("Feeding forward all training data...")
    result = feed_forward_dataset(x_train, y_train)
    print("")
    return result


def feed_forward_test_data():
    print("Feeding forward all test data...")
    result = feed_forward_dataset(x_test, y_test)
    print("")
    return result
'''

Q4_FORWARD_RUN = """
feed_forward_test_data()
"""

Q4_BACKWARD_INTRO = """
## Q3. Backpropagation

`train_one_sample(sample, y, learning_rate)` does one SGD step on one image: a forward pass
that keeps each layer's pre-activation `z` and activation `a`, then the gradients of the loss
with respect to every weight matrix and bias vector, from the output layer back to the first,
and finally the update `parameter -= learning_rate * gradient` applied to the global `weights`
and `biases`. Compute all the gradients before changing any parameter.

Useful facts: for softmax followed by cross entropy, the gradient of the loss with respect to
the output layer's `z` is `output - one_hot(y)`; the derivative of a sigmoid layer is
`dsigmoid(z)`, evaluated at that layer's pre-activation `z`.
"""

Q4_BACKWARD = """
def train_one_sample(sample, y, learning_rate=0.003):
    a = sample.flatten()

    # We will store each layer's activations to calculate gradient
    activations = [a]
    pre_activations = []

    # Q3. Fill code here.
    ### BEGIN SOLUTION
    for i in range(len(weights)):
        z = np.dot(activations[-1], weights[i]) + biases[i]
        pre_activations.append(z)
        activations.append(sigmoid(z) if i < len(weights) - 1 else softmax(z))

    delta = activations[-1] - integer_to_one_hot(y, 10)  # dLoss/dz of the output layer
    weight_gradients = [None] * len(weights)
    bias_gradients = [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        if i < len(weights) - 1:
            delta = delta.dot(weights[i + 1].T) * dsigmoid(pre_activations[i])
        weight_gradients[i] = np.outer(activations[i], delta)
        bias_gradients[i] = delta

    for i in range(len(weights)):
        weights[i] -= weight_gradients[i] * learning_rate
        biases[i] -= bias_gradients[i] * learning_rate
    ### END SOLUTION
"""

Q4_EPOCH_INTRO = """
## Q4. Training

`train_one_epoch` makes one pass over the whole training set in order, one `train_one_sample`
call per image. The last cell trains for `EPOCHS` epochs and evaluates on the test set after
each one. With the full data the test accuracy should rise well above chance after the first
epoch.
"""

Q4_EPOCH = """
def train_one_epoch(learning_rate=LEARNING_RATE):
    print("Training for one epoch over the training dataset...")

    # Q4. Write the training loop over the epoch here.
    ### BEGIN SOLUTION
    for i in range(x_train.shape[0]):
        train_one_sample(x_train[i], y_train[i], learning_rate)
    ### END SOLUTION

    print("Finished training.\\n")
"""

Q4_TRAIN = """
feed_forward_test_data()

def test_and_train():
    train_one_epoch()
    feed_forward_test_data()

for i in range(EPOCHS):
    test_and_train()
"""

Q4_NOTES = r"""
**Your answer (q4_notes):**

Optional notes. The implementation follows the assignment exactly: weights drawn layer by layer
from `default_rng(80085)`, biases zero, per-sample SGD in the training set's order. The output
delta uses the softmax/cross-entropy shortcut `output - one_hot(y)`, and each hidden layer's
delta is `(delta_next @ W_next.T) * dsigmoid(z)` at that layer's pre-activation.
"""


def q4_spec() -> NotebookSpec:
    return NotebookSpec(
        filename="q4_numpy_backprop.ipynb",
        question="q4",
        cells=(
            md("q4-title", "# Question 4: backpropagation by hand with numpy"),
            md("q4-instructions", Q4_INTRO, HOW_TO_ANSWER, DATA_RULES),
            code("q4-imports", Q4_IMPORTS),
            parameters("q4-parameters", Q4_PARAMETERS),
            md("q4-data-intro", Q4_DATA_INTRO),
            code("q4-data", Q4_DATA),
            md("q4-helpers-intro", Q4_HELPERS_INTRO),
            code("q4-helpers", Q4_HELPERS),
            md("q4-init-intro", Q4_INIT_INTRO),
            code("q4-init", Q4_INIT),
            md("q4-forward-intro", Q4_FORWARD_INTRO),
            code("q4-forward", Q4_FORWARD),
            code("q4-forward-run", Q4_FORWARD_RUN),
            md("q4-backward-intro", Q4_BACKWARD_INTRO),
            code("q4-backward", Q4_BACKWARD),
            md("q4-epoch-intro", Q4_EPOCH_INTRO),
            code("q4-epoch", Q4_EPOCH),
            code("q4-train", Q4_TRAIN),
            md("q4-notes-intro", "**Notes (optional):** anything you want the grader to know."),
            free_response("q4_notes", Q4_NOTES),
        ),
    )


NOTEBOOKS: Final = (q1_spec, q2_spec, q3_spec, q4_spec)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def split_source(source: str, *, solution: bool) -> str:
    """The template (solution blocks -> marker and raise) or the solution (markers dropped)."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            if inside:
                raise ValueError(f"line {number}: nested {BEGIN_SOLUTION}")
            inside = True
            if not solution:
                out += [_indent_of(line) + CODE_MARKER, _indent_of(line) + CODE_RAISE]
        elif marker == END_SOLUTION:
            if not inside:
                raise ValueError(f"line {number}: {END_SOLUTION} without {BEGIN_SOLUTION}")
            inside = False
        elif solution or not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN_SOLUTION} is never closed")
    return "\n".join(out)


def free_response_header(answer_id: str) -> str:
    return f"**Your answer ({answer_id}):**"


def free_response_source(cell: Cell, *, solution: bool) -> str:
    """The model answer, or its header line followed by the placeholder."""
    assert cell.answer_id is not None
    header = free_response_header(cell.answer_id)
    if not cell.source.startswith(header):
        raise ValueError(f"free-response cell {cell.id} must start with {header!r}")
    return cell.source if solution else f"{header}\n\n{ANSWER_PLACEHOLDER}"


def render_cell(cell: Cell, *, solution: bool) -> NotebookNode:
    metadata: dict[str, object] = {}
    if cell.tags:
        metadata["tags"] = list(cell.tags)
    if cell.answer_id is not None:
        metadata["dlgrader"] = {"id": cell.answer_id}
        return nbformat.v4.new_markdown_cell(
            free_response_source(cell, solution=solution), id=cell.id, metadata=metadata
        )
    if cell.kind == "markdown":
        return nbformat.v4.new_markdown_cell(cell.source, id=cell.id, metadata=metadata)
    return nbformat.v4.new_code_cell(
        split_source(cell.source, solution=solution), id=cell.id, metadata=metadata
    )


def render_notebook(spec: NotebookSpec, *, solution: bool) -> str:
    """The notebook as the exact text written to disk (nbformat 4.5, validated)."""
    ids = [cell.id for cell in spec.cells]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{spec.filename}: duplicate cell ids")
    nb = nbformat.v4.new_notebook(
        cells=[render_cell(cell, solution=solution) for cell in spec.cells],
        metadata={
            "kernelspec": dict(KERNELSPEC),
            "language_info": {"name": "python"},
            "dlgrader": {"question": spec.question},
        },
    )
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def render_all() -> dict[str, str]:
    """Every generated file: path relative to the repository root -> its exact text."""
    files: dict[str, str] = {}
    for make_spec in NOTEBOOKS:
        spec = make_spec()
        template = render_notebook(spec, solution=False)
        solution = render_notebook(spec, solution=True)
        for folder in TEMPLATE_DIRS:
            files[f"{folder}/{spec.filename}"] = template
        for folder in SOLUTION_DIRS:
            files[f"{folder}/{spec.filename}"] = solution
    return files


def stale_files(root: Path) -> list[str]:
    """Generated files under ``root`` that are missing or differ from this script's output."""
    stale = []
    for relative, text in render_all().items():
        path = root / relative
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            stale.append(relative)
    return stale


def write_all(root: Path) -> list[Path]:
    written = []
    for relative, text in render_all().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root to write")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any notebook is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.root)
        for relative in stale:
            print(f"stale: {relative} (run python tools/make_notebooks.py)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.root):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
