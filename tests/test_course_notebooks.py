"""Notebooks written for the course's starter code, graded as written (graders/kernel/compat.py).

The scenario suite grades each course-style fixture against ``expected.toml``; these tests
cover what the rubric adds on top: the CUDA deduction, off by default, and what every report
and Gradescope make of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from graders.config import CONFIG_DIR, GradeOptions
from graders.models import CheckStatus, GradeReport
from graders.pipeline import grade
from graders.render.gradescope import gradescope_results
from graders.rubric import load_rubric
from graders.score import cuda_deduction

REPO = Path(__file__).resolve().parents[1]
SUBMISSIONS = REPO / "fixtures" / "submissions"
SCHEMA = REPO / "tests" / "schemas" / "gradescope_results.schema.json"


def _rubric_with_deduction(tmp_path: Path, points: float) -> Path:
    text = (CONFIG_DIR / "rubric.toml").read_text(encoding="utf-8")
    assert "cuda_deduction = 0\n" in text, "the shipped rubric deducts nothing by default"
    path = tmp_path / "rubric.toml"
    path.write_text(text.replace("cuda_deduction = 0\n", f"cuda_deduction = {points}\n"))
    return path


def test_the_shipped_rubric_deducts_nothing_for_cuda() -> None:
    assert load_rubric().cuda_deduction == 0


def test_a_negative_deduction_is_refused(tmp_path: Path) -> None:
    from graders.errors import ConfigError

    with pytest.raises(ConfigError, match="cuda_deduction"):
        load_rubric(_rubric_with_deduction(tmp_path, -1))


@pytest.fixture(scope="module")
def graded_q3(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GradeReport]:
    """q3 of the hard-coded-CUDA fixture and of all_correct, under a rubric deducting 1.5."""
    tmp = tmp_path_factory.mktemp("cuda-deduction")
    options = GradeOptions(
        profile="quick", only=("q3",), rubric_file=_rubric_with_deduction(tmp, 1.5)
    )
    return {
        name: grade(SUBMISSIONS / name, tmp / name, options)
        for name in ("q3_hardcoded_cuda", "all_correct")
    }


@pytest.mark.kernel
@pytest.mark.slow
def test_hard_coded_cuda_costs_what_the_rubric_says_and_says_why(graded_q3) -> None:
    cuda, correct = (
        graded_q3["q3_hardcoded_cuda"].questions[0],
        graded_q3["all_correct"].questions[0],
    )
    assert correct.score == correct.max_score == 10, (
        "a notebook that picks its device loses nothing"
    )
    assert not any(c.id == "q3.cuda_on_cpu" for c in correct.checks)
    (deduction,) = [c for c in cuda.checks if c.id == "q3.cuda_on_cpu"]
    assert deduction.score == -1.5 and deduction.max_score == 0
    assert deduction.status is CheckStatus.FAILED
    assert "hard-codes CUDA" in deduction.message and "1.5" in deduction.message
    assert cuda.score == pytest.approx(10 - 1.5) and cuda.max_score == 10


@pytest.mark.kernel
@pytest.mark.slow
def test_the_deduction_reaches_gradescope_as_a_valid_negative_test(graded_q3) -> None:
    report = graded_q3["q3_hardcoded_cuda"]
    results = gradescope_results(report)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(results))
    assert not errors, [e.message for e in errors]
    (test,) = [t for t in results["tests"] if "q3.cuda_on_cpu" in t["tags"]]
    assert test["score"] == -1.5 and test["max_score"] == 0
    assert results["score"] == pytest.approx(sum(t.get("score", 0) for t in results["tests"]))


def test_the_deduction_never_takes_more_than_the_question_earned(tmp_path: Path) -> None:
    from graders.models import (
        ExecutionRecord,
        ProbeRecord,
        ProbeStatus,
        QuestionRun,
        RunStatus,
    )

    rubric = load_rubric(_rubric_with_deduction(tmp_path, 2))
    run = QuestionRun(
        question="q3",
        title="t",
        notebook=None,
        execution=ExecutionRecord(question="q3", status=RunStatus.OK),
        probe=ProbeRecord(
            question="q3",
            status=ProbeStatus.OK,
            notices=("CUDA code ran on the CPU: the grader has no GPU",),
        ),
    )
    assert cuda_deduction(run, rubric, earned=0.5).score == -0.5  # type: ignore[union-attr]
    assert cuda_deduction(run, rubric, earned=7).score == -2  # type: ignore[union-attr]
    quiet = QuestionRun(
        question="q3",
        title="t",
        notebook=None,
        execution=run.execution,
        probe=ProbeRecord(question="q3", status=ProbeStatus.OK),
    )
    assert cuda_deduction(quiet, rubric, earned=7) is None


@pytest.mark.kernel
@pytest.mark.slow
def test_one_notebook_holding_q3_and_q4_grades_both_in_full(tmp_path: Path) -> None:
    """ "Homework 1.ipynb": the correct Q3 and Q4 parts one after the other, each with its own
    parameters cell. Each question's kernel runs the notebook whole, with the grader's values
    after both parameters cells, and probes its own names."""
    import nbformat

    parts = [
        nbformat.read(str(SUBMISSIONS / "all_correct" / name), 4)
        for name in ("q3_fashion_mlp.ipynb", "q4_numpy_backprop.ipynb")
    ]
    parts[0].cells += parts[1].cells
    folder = tmp_path / "student"
    folder.mkdir()
    nbformat.write(parts[0], str(folder / "Homework 1.ipynb"))
    report = grade(folder, tmp_path / "out", GradeOptions(profile="quick", only=("q3", "q4")))
    scores = {q.question: (q.score, q.max_score) for q in report.questions}
    assert scores == {"q3": (10, 10), "q4": (13, 13)}, scores
    for run in report.run.questions:
        assert run.notebook is not None and run.notebook.original_name == "Homework 1.ipynb"
        assert run.execution.status.value == "ok", run.execution.message
