"""``dlgrade reference``: run every reference solution end to end and print one results table.

It is the proof that the reference (what students are compared with) does what the assignment
says, on the real data: the exact box, the 1/n approximation, the variance rules measured by
Monte Carlo, the MLP's accuracy, and the seed's Q4 table reproduced to the digit. Each question
says what its part is (``QuestionSpec.reference_report``); this module only runs them in order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from graders.data import as_data_error, default_data_root
from graders.errors import ConfigError
from graders.questions import load_questions


def run_reference(*, data_root: Path | None, epochs: Mapping[str, int] | None = None) -> int:
    """Print the table; exit status 1 if a question's reference did not reproduce what the
    assignment pins down. ``epochs`` overrides a question's default (e.g. ``{"q3": 5}``)."""
    root = data_root or default_data_root()
    epochs = dict(epochs or {})
    questions = [q for q in load_questions() if q.reference_report is not None]
    unknown = sorted(set(epochs) - {q.id for q in questions})
    if unknown:
        known = ", ".join(q.id for q in questions)
        raise ConfigError(f"--epochs names {unknown}, which have no reference run; known: {known}")
    started = time.monotonic()
    table: list[str] = []
    problems: list[str] = []
    for spec in questions:
        assert spec.reference_report is not None
        with as_data_error():
            report = spec.reference_report(root, epochs.get(spec.id))
        table += report.lines
        if not report.ok:
            problems.append(report.problem or f"{spec.id}: the reference did not reproduce")
    print("\n" + "=" * 30 + " reference results " + "=" * 30)
    print("\n".join(table))
    print(f"({time.monotonic() - started:.0f} s; data root {root})")
    for problem in problems:
        print(problem)
    return 1 if problems else 0
