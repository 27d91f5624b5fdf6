"""Every scenario submission graded end to end with real kernels, against expected.toml.

A scenario is the correct solution with one known mistake (tools/scenarios/q*.py): it must lose
points exactly in its own question, with a message naming the mistake, and nowhere else.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from graders.pipeline import GradeOptions, grade

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

SUBMISSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"
EXPECTED = tomllib.loads((SUBMISSIONS / "expected.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_scenario_scores_and_messages(scenario: str, tmp_path: Path) -> None:
    expected = EXPECTED[scenario]
    report = grade(SUBMISSIONS / scenario, tmp_path, GradeOptions(profile="quick"))
    scores = {q.question: q.score for q in report.questions}
    want = {k: float(v) for k, v in expected.items() if k.startswith("q")}
    assert scores == pytest.approx(want, abs=1e-6), _explain(report)
    checks = {c.id: c for q in report.questions for c in q.checks}
    for check_id, phrase in expected.get("messages", {}).items():
        result = checks[check_id]
        assert result.score < result.max_score, f"{check_id} should fail in {scenario}"
        text = f"{result.message} {result.hint}".lower()
        assert phrase.lower() in text, f"{check_id}: {result.message!r} lacks {phrase!r}"


def _explain(report: object) -> str:
    from graders.render.summary import report_lines

    return "\n".join(report_lines(report))  # type: ignore[arg-type]
