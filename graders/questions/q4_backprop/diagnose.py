"""Q4's yardsticks beside the reference: finite differences, and the known wrong answers.

Reference side (the student kit has none of it; it gets the values): the reference says what a
correct update is; these say *why* a student's is not. Each known mistake is recomputed on the
grader's inputs, and a layer that matches one of them gets that mistake named in the feedback
instead of a bare "wrong" (the words are ``checks/evidence.py``). Finite differences of the
reference's own loss check the reference's gradients at a few coordinates per layer, so a
feedback message that quotes a loss gradient quotes one that does not depend on anybody's
backprop.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from graders.errors import ReferenceSolutionError
from graders.questions.q4_backprop.checks.evidence import Coordinate, FdPoint
from graders.render.numbers import number
from reference import q4_numpy as ref

FloatArray = NDArray[np.float64]

FD_STEP = 1e-6
"""Central-difference step: truncation error ~ h^2 = 1e-12, cancellation ~ eps * loss / h ~ 1e-9."""
FD_RTOL = 1e-4
FD_ATOL = 1e-7
"""Loss gradients of one sample are 1e-5 .. 1e-1 here; both errors above are far below these."""


def loss_of(params: ref.Params, sample: FloatArray, label: int) -> float:
    return ref.feed_forward_sample(params, sample, label)[0]


def _perturbed(params: ref.Params, at: Coordinate, delta: float) -> ref.Params:
    copy = params.copy()
    target = (copy.weights if at.kind == "weights" else copy.biases)[at.layer]
    target[at.index] += delta
    return copy


def finite_difference(params: ref.Params, sample: FloatArray, label: int, at: Coordinate) -> float:
    up = loss_of(_perturbed(params, at, FD_STEP), sample, label)
    down = loss_of(_perturbed(params, at, -FD_STEP), sample, label)
    return (up - down) / (2 * FD_STEP)


def probe_coordinates(
    gradients: tuple[tuple[FloatArray, ...], tuple[FloatArray, ...]], per_kind: int = 2
) -> list[Coordinate]:
    """Per layer and kind: the largest gradient entry, then fixed pseudo-random nonzero ones.

    The largest is where a wrong backprop shows most; the others keep the check from looking
    only at one corner. Fixed seed: the same inputs always probe the same coordinates.
    """
    rng = np.random.default_rng(4)
    coords: list[Coordinate] = []
    for kind, grads in zip(("weights", "biases"), gradients, strict=True):
        for layer, grad in enumerate(grads):
            flat = np.abs(grad).reshape(-1)
            chosen = [int(np.argmax(flat))]
            nonzero = np.flatnonzero(flat > 0)
            if len(nonzero):
                chosen += [int(i) for i in rng.choice(nonzero, size=per_kind - 1)]
            for i in dict.fromkeys(chosen):
                index = tuple(int(j) for j in np.unravel_index(i, grad.shape))
                coords.append(Coordinate(kind=kind, layer=layer, index=index))
    return coords


def verified_gradients(
    params: ref.Params, sample: FloatArray, label: int
) -> tuple[tuple[tuple[FloatArray, ...], tuple[FloatArray, ...]], list[FdPoint]]:
    """The reference's gradients, held to finite differences; a mismatch is the grader's bug."""
    gradients = ref.gradients_one_sample(params, sample, label)
    points = []
    for at in probe_coordinates(gradients):
        grads = gradients[0] if at.kind == "weights" else gradients[1]
        backprop = float(grads[at.layer][at.index])
        fd = finite_difference(params, sample, label, at)
        points.append(FdPoint(at=at, backprop=backprop, finite_difference=fd))
        if not np.isclose(backprop, fd, rtol=FD_RTOL, atol=FD_ATOL):
            raise ReferenceSolutionError(
                f"the reference backprop gradient at {at} is {number(backprop, 7)}, finite "
                f"differences give {number(fd, 7)}: the reference Q4 gradients are wrong",
                question="q4",
            )
    return gradients, points


# -- known wrong backward passes --------------------------------------------------------------

Factor = Callable[[FloatArray], FloatArray]
"""What multiplies ``delta @ W.T`` at a hidden layer, given that layer's activation ``a``."""


def _correct(a: FloatArray) -> FloatArray:
    return a * (1 - a)  # = dsigmoid(z)


def _dsigmoid_of_activation(a: FloatArray) -> FloatArray:
    return ref.dsigmoid(a)  # sigmoid applied twice: the classic slip


def _no_derivative(a: FloatArray) -> FloatArray:
    return np.ones_like(a)


def update_with(
    params: ref.Params,
    sample: FloatArray,
    label: int,
    lr: float,
    factor: Factor = _correct,
    *,
    update_while_backpropagating: bool = False,
) -> ref.Params:
    """One SGD step with a given hidden-layer derivative; optionally updating each layer
    before the next delta is computed from it (the other classic slip)."""
    new = params.copy()
    acts = ref._activations(params, sample)
    delta = acts[-1].copy()
    delta[label] -= 1
    for k in range(len(params.weights) - 1, -1, -1):
        w_new, b_new = new.weights[k], new.biases[k]  # the tuple is frozen, the arrays are not
        w_before = w_new.copy()
        w_new -= np.outer(acts[k], delta) * lr
        b_new -= delta * lr
        if k:
            w = new.weights[k] if update_while_backpropagating else w_before
            delta = delta.dot(w.T) * factor(acts[k])
    return new


MISTAKE_UPDATES: dict[str, Callable[[ref.Params, FloatArray, int, float], ref.Params]] = {
    "dsigmoid_on_activation": lambda p, x, y, lr: update_with(p, x, y, lr, _dsigmoid_of_activation),
    "no_derivative": lambda p, x, y, lr: update_with(p, x, y, lr, _no_derivative),
    "updated_before_backprop": lambda p, x, y, lr: update_with(
        p, x, y, lr, update_while_backpropagating=True
    ),
}
"""One SGD step as each of ``evidence.KNOWN_MISTAKES`` makes it, by the mistake's name."""
