"""Q4's tests: the helpers, the initial weights, one forward pass and one backprop step on the
grader's own weights, the grader's own test accuracy of the trained weights, and the accuracy the
notebook reported held to it.

Every number a student is held to is the reference's on the exact inputs the probe used
(``ctx.expected``: computed live in the grader, stored in the student kit) or measured here by
the grader's own numerics (the trained weights' accuracy); what the notebook printed is read
only to be compared with it. The probe
has already turned weights stored ``(out, in)`` and biases shaped ``(1, n)`` or ``(n, 1)`` into
the canonical ``(in, out)`` / ``(n,)`` layout, so the checks see one layout only.

One module per thing checked: ``activations`` (q4.helpers: sigmoid, dsigmoid, softmax),
``initial_weights`` (q4.init), ``forward`` (q4.forward), ``backprop`` (q4.backprop_step),
``accuracy`` (q4.final_accuracy) and ``reported`` (q4.reported_consistent); ``shared`` holds what
several of them read, ``evidence`` the words and evidence of a wrong update. ``CHECKS`` is the
order of the rubric and of every report.
"""

from __future__ import annotations

from graders.questions.q4_backprop.checks import (
    accuracy,
    activations,
    backprop,
    forward,
    initial_weights,
    reported,
)

CHECKS = (
    activations.helpers,
    initial_weights.init,
    forward.forward,
    backprop.backprop_step,
    accuracy.final_accuracy,
    reported.reported_consistent,
)
