"""Q2's part of ``dlgrade reference``: each variance rule measured by Monte Carlo."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graders.questions.api import ReferenceReport
from reference import q2_init


def reference_report(_data_root: Path, _epochs: int | None) -> ReferenceReport:
    """Closed forms against their Monte Carlo estimates, and a deep ReLU stack's moments."""
    rng = np.random.default_rng(0)
    lines = ["Q2 initialization (Monte Carlo vs closed form, z = |estimate - formula| / stderr)"]
    n_in, n_out, s2, v2 = 256, 128, 1 / 256, 1.0
    checks = [
        (
            "var(a_j) = n_in s^2 v^2",
            q2_init.mc_activation_variance(n_in, s2, v2, rng=rng),
            q2_init.activation_variance(n_in, s2, v2),
        ),
        (
            "ReLU E[y^2] = n_in s^2 v^2 / 2",
            q2_init.mc_relu_second_moment(n_in, s2, v2, rng=rng),
            q2_init.relu_second_moment(n_in, s2, v2),
        ),
        (
            "backward n_out s^2 g^2",
            q2_init.mc_backward_variance(n_in, n_out, 1 / n_out, 1.0, rng=rng),
            q2_init.gradient_variance(n_out, 1 / n_out, 1.0),
        ),
    ]
    for label, est, expected in checks:
        lines.append(
            f"  {label:<32} measured {est.value:.4f} +- {est.stderr:.4f}  formula {expected:.4f}  "
            f"z={est.z_score(expected):.2f}  agrees={q2_init.agrees(est, expected)}"
        )
    widths = [512] * 21
    deep = q2_init.mc_deep_forward(
        widths, lambda i, _o: q2_init.relu_forward_variance(i), rng=rng, activation="relu"
    )
    lines.append(
        f"  20-layer ReLU stack with s^2 = 2/n_in: second moment layer 1 {deep[0].value:.3f}, "
        f"layer 20 {deep[-1].value:.3f}"
    )
    return ReferenceReport(lines=tuple(lines))
