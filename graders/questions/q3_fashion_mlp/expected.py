"""What the reference gives on Q3's probe inputs: the values its public checks compare with.

The only module of Q3's checks that imports ``reference/``; in the student kit the values are
read from the data ``dlgrade kit build`` stored for the kit's fixed inputs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from graders.questions.api import Argument, ExpectationContext, expectation
from graders.questions.q3_fashion_mlp.checks.shared import grader_weights


@expectation("reference_logits")
def reference_logits(
    ctx: ExpectationContext, _arguments: Mapping[str, Argument]
) -> dict[str, np.ndarray]:
    """The reference network's logits for the grader's weights (``ref.w0``, ``ref.b0``, ...) on
    the probe's images: what the student's model, loaded with the same weights, must give.

    Not computed ahead, although it needs only the probe's inputs: most of its cost is
    importing torch into the grader (about 1.5 s, 250 MB and more), and held while the
    student's own torch trains it took a full correct submission over Gradescope's 768 MB."""
    import torch

    from reference import q3_mlp  # deferred, as torch is: grading other questions skips it

    arrays = ctx.inputs.arrays
    state: dict[str, np.ndarray] = {}
    for i, (weight, bias) in enumerate(grader_weights(arrays)):
        state[f"layer{i}.weight"], state[f"layer{i}.bias"] = weight, bias
    model = q3_mlp.model_from_state(state).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(arrays["images"], dtype=np.float32)))
    return {"logits": logits.double().numpy()}


EXPECTATIONS = (reference_logits,)
