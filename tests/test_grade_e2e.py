"""`grade` on the two reference submissions, with real kernels and the quick profile.

all_correct must yield every probe artifact of every question with no cell error; blank must
yield, per question, a clear message and no crash.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from graders.cli import main
from graders.models import GradeReport, ProbeStatus, RunStatus

pytestmark = pytest.mark.kernel

GradedSubmission = Callable[[str], tuple[GradeReport, Path]]
"""conftest's ``graded_submission``: each fixture submission graded once per session."""

SUBMISSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"
ARTIFACTS = {
    "q1": {"step", "box_network", "box_approximation"},
    "q2": {"formulas"},
    "q3": {
        "model_summary",
        "state_dict",
        "histories",
        "samples",
        "sample_probabilities",
        "reference_logits",
        "training_setup",
    },
    "q4": {
        "helpers",
        "final",
        "layout",
        "init",
        "forward",
        "forward_meta",
        "train_step",
        "train_meta",
        "input_scale",
    },
}


@pytest.fixture
def correct(graded_submission: GradedSubmission) -> tuple[GradeReport, Path]:
    """all_correct graded for real: it trains Q3 and Q4 (~20 s on 2 cores), so its tests are
    ``slow``; blank (no training) keeps the four questions' real run in the fast loop."""
    return graded_submission("all_correct")


@pytest.mark.slow
def test_all_correct_runs_cleanly_and_yields_every_artifact(
    correct: tuple[GradeReport, Path],
) -> None:
    report, out = correct
    for q in report.run.questions:
        assert q.execution.status is RunStatus.OK, q.execution.message
        assert q.probe.status is ProbeStatus.OK, q.probe.errors
        assert {a.name for a in q.probe.artifacts} == ARTIFACTS[q.question]
        for artifact in q.probe.artifacts:
            assert (out / "all_correct" / artifact.path).is_file()


@pytest.mark.slow
def test_result_json_is_written_with_the_profile_and_why(correct: tuple[GradeReport, Path]) -> None:
    _, out = correct
    data = json.loads((out / "all_correct" / "result.json").read_text())
    assert data["run"]["profile"] == {"name": "quick", "reason": "requested explicitly ('quick')"}
    assert [q["question"] for q in data["questions"]] == ["q1", "q2", "q3", "q4"]
    assert not list(out.glob(".*partial*"))


@pytest.mark.slow
def test_all_correct_scores_full_marks(correct: tuple[GradeReport, Path]) -> None:
    report, _ = correct
    for q in report.questions:
        failing = [(c.id, c.message) for c in q.checks if c.score < c.max_score]
        assert not failing, failing
    assert report.score == report.max_score > 0


@pytest.mark.slow
def test_blank_gives_a_message_per_question_and_no_crash(
    graded_submission: GradedSubmission,
) -> None:
    report, _ = graded_submission("blank")
    for q in report.run.questions:
        assert q.execution.status is RunStatus.CELL_ERRORS
        assert "NotImplementedError" in q.execution.message
        assert q.probe.errors, f"{q.question}: the probe should say what it could not find"
    # Only the tests of starter code the notebook gives (and a student may break) can score.
    starter = {"q1.step_function", "q4.helpers"}
    for q in report.questions:
        earned = {c.id for c in q.checks if c.score > 0}
        assert earned <= starter, earned
        assert all(c.message for c in q.checks)


def test_cli_grade_exit_code_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = SUBMISSIONS / "all_correct" / "q2_initialization.ipynb"
    code = main(["grade", str(notebook), "--profile", "quick", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "q2 Choosing the scale of initialization" in printed
    assert "q1 Step-activation networks: 0 /" in printed  # not submitted: no points, no crash
    assert (tmp_path / "q2_initialization" / "result.json").is_file()


def test_a_bubblewrap_that_fails_its_self_test_is_left_for_the_fallback_before_any_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real kernels are launched under bubblewrap while its self-test runs; a binary that
    cannot run fails both, and the grade goes on in the mode the machine falls back to, with
    the launcher's reason named where nothing else is allowed."""
    from graders.sandbox import confinement

    monkeypatch.setenv(confinement.BWRAP_ENV, str(tmp_path / "no-bwrap"))
    monkeypatch.delenv(confinement.MODE_ENV, raising=False)
    notebook = SUBMISSIONS / "all_correct" / "q2_initialization.ipynb"
    out = tmp_path / "out"
    argv = ["grade", str(notebook), "--profile", "quick", "--only", "q2", "--out", str(out)]
    assert main([*argv, "--allow-unconfined"]) == 0
    capsys.readouterr()
    result = json.loads((out / "q2_initialization" / "result.json").read_text(encoding="utf-8"))
    assert result["run"]["confinement"]["mode"] in ("user", "unconfined")
    (q2,) = result["questions"]
    assert q2["score"] == q2["max_score"] > 0

    monkeypatch.setattr(confinement, "_user_mode", lambda: (None, "no sandbox user here"))
    assert main([*argv, "--out", str(tmp_path / "refused")]) != 0
    said = capsys.readouterr().err
    assert "no-bwrap" in said and "--allow-unconfined" in said
    assert not (tmp_path / "refused" / "q2_initialization").exists()


@pytest.mark.slow
def test_grading_writes_every_format(correct: tuple[GradeReport, Path]) -> None:
    import csv

    import jsonschema

    _, out = correct
    folder = out / "all_correct"
    names = {
        "result.json",
        "feedback.html",
        "feedback.md",
        "gradescope_results.json",
        "gradebook.csv",
    }
    assert names <= {p.name for p in folder.iterdir()}
    schema = json.loads(
        (Path(__file__).parent / "schemas" / "gradescope_results.schema.json").read_text()
    )
    results = json.loads((folder / "gradescope_results.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(results)
    assert results["score"] == json.loads((folder / "result.json").read_text())["score"]
    with (folder / "gradebook.csv").open(newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["submission"] == "all_correct" and float(row["total"]) == results["score"]


GRADE_AND_REPORT_MODULES = """
import json, sys
from graders.cli import main
code = main(["grade", sys.argv[1], "--only", "q3", "--profile", "quick", "--out", sys.argv[2]])
found = {top: sorted(m for m in sys.modules if m.split(".")[0] == top)
         for top in ("torch", "matplotlib")}
print(json.dumps({"code": code, **found}))
"""


@pytest.mark.slow
def test_grading_q3_imports_neither_torch_nor_matplotlib_into_the_grader(tmp_path: Path) -> None:
    """The student's model is measured by the grader in numpy (``graders.numerics.relu_mlp``):
    torch in the grader cost about 1.5 s of a Q3 grade, and held beside the student's own torch
    it does not fit Gradescope's 768 MB. Its charts are written as SVG (``graders.render.svg``):
    matplotlib cost 1.3 s more. A full-marks Q3 grade, in a process of its own, whose two
    charts are the same drawing in the HTML page and beside the Markdown one."""
    done = subprocess.run(
        [sys.executable, "-c", GRADE_AND_REPORT_MODULES, SUBMISSIONS / "all_correct", tmp_path],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"code": 0, "torch": [], "matplotlib": []}
    folder = tmp_path / "all_correct"
    charts = {p.name: p.read_bytes() for p in folder.glob("feedback-*.svg")}
    assert sorted(charts) == ["feedback-q3-loss-curves.svg", "feedback-q3-sample-probabilities.svg"]
    html = (folder / "feedback.html").read_text()
    inline = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert sorted(base64.b64decode(s) for s in inline) == sorted(charts.values())
    result = json.loads((folder / "result.json").read_text())
    (q3,) = result["questions"]
    assert (q3["question"], q3["score"], q3["max_score"]) == ("q3", 10, 10)
