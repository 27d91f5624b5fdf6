"""Question 1's notebook: networks of step neurons whose weights the student chooses by hand.

Nothing is trained and no data is read, so the notebook imports only numpy and matplotlib and
its one setting is the seed of the self-checks. The given ``network_output`` lets the student
look at their weights; the grader evaluates the returned weights with its own strict step.
"""

from __future__ import annotations

from tools.notebooks.cells import NotebookSpec, code, free_response, md, parameters
from tools.notebooks.instructions import HOW_TO_ANSWER

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


def spec() -> NotebookSpec:
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
