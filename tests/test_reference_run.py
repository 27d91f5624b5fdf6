"""``dlgrade reference`` runs each question's own reference report, in assignment order."""

from __future__ import annotations

import pytest

from graders.config import FIXTURE_DATA_ROOT
from graders.errors import ConfigError
from graders.questions import load_questions
from graders.reference_run import run_reference


@pytest.mark.slow  # trains Q3 and Q4 for an epoch each: 5 s quiet, 16 s on a loaded machine
def test_every_question_with_a_reference_report_prints_its_part(capsys):
    status = run_reference(data_root=FIXTURE_DATA_ROOT, epochs={"q3": 1, "q4": 1})
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if line[:1] == "Q" and line[1:2].isdigit()]
    assert [h.split()[0] for h in headers] == [
        q.id.upper() for q in load_questions() if q.reference_report is not None
    ]
    assert "1 epochs" in out  # the override reached Q3 and Q4
    assert "not compared" in out  # Q4's seed table is only compared at its own 3 epochs
    assert status == 0


def test_an_unknown_question_is_refused_before_anything_trains():
    with pytest.raises(ConfigError, match="q9"):
        run_reference(data_root=FIXTURE_DATA_ROOT, epochs={"q9": 2})
