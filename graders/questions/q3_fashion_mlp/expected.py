"""What the reference gives on Q3's probe inputs: the values its public checks compare with.

The reference side of Q3's checks: in the student kit the values are read from the data
``dlgrade kit build`` stored for the kit's fixed inputs, as for every question.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from graders.numerics import relu_mlp
from graders.questions.api import Argument, ExpectationContext, expectation
from graders.questions.q3_fashion_mlp.checks.shared import grader_weights


@expectation("reference_logits")
def reference_logits(
    ctx: ExpectationContext, _arguments: Mapping[str, Argument]
) -> dict[str, np.ndarray]:
    """The reference network's logits for the grader's weights (``ref.w0``, ``ref.b0``, ...) on
    the probe's images: what the student's model, loaded with the same weights, must give.

    Computed with the grader's numpy measure of the architecture (``relu_mlp``: Linear layers,
    ReLU between them), which a test holds to the reference module's own forward pass, rather
    than with that module: importing torch into the grader was most of Q3's scoring time
    (about 1.5 s of one core) and took a full correct submission over Gradescope's 768 MB when
    done beside the student's training. Cheap now, but still not ``ahead``: it would only
    move a few milliseconds."""
    arrays = ctx.inputs.arrays
    logits = relu_mlp.logits(grader_weights(arrays), arrays["images"])
    return {"logits": logits.astype(np.float64)}


EXPECTATIONS = (reference_logits,)
