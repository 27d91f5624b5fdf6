"""Q1's part of ``dlgrade reference``: the exact box and the O(1/n) approximation error."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graders.questions.api import ReferenceReport
from reference import q1_step


def reference_report(_data_root: Path, _epochs: int | None) -> ReferenceReport:
    """The box at three sizes and the sup error of sin's approximation as n doubles."""
    lines = ["Q1 step networks"]
    for h, delta in ((1.0, 1.0), (-2.5, 0.3), (3.0, 2.0)):
        report = q1_step.boundary_report(q1_step.box_network(h, delta), h, delta)
        lines.append(
            f"  box h={h:<5} delta={delta:<4} f(0)={report.at_zero:g} f(delta)={report.at_delta:g} "
            f"interior max error {report.interior_max_error:.1e}  exact={report.exact}"
        )
    ns = (8, 16, 32, 64, 128)
    errors = [q1_step.sup_error(np.sin, q1_step.box_approximation(np.sin, 2.0, n), 2.0) for n in ns]
    slope = float(np.polyfit(np.log(ns), np.log(errors), 1)[0])
    cells = "  ".join(f"n={n}: {e:.4f}" for n, e in zip(ns, errors, strict=True))
    lines.append(f"  sin on [-2, 2], sup error {cells}  (log-log slope {slope:.2f}, O(1/n) is -1)")
    return ReferenceReport(lines=tuple(lines))
