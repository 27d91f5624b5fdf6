"""The student's self-check: visible tests only, exit 0 on failing tests, and ``check_me``.

The summary and the notebook finder are tested on synthetic reports and temporary folders;
the ``kernel`` tests run ``dlgrade check`` and ``check_me`` for real on the fixtures.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from test_gradescope import make_report

from graders import selfcheck
from graders.cli import main
from graders.models import Visibility
from graders.rubric import load_rubric
from graders.selfcheck import check_me, find_notebook, run_self_check
from graders.selfcheck_report import summary_lines, summary_markdown

SUBMISSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"


def test_the_summary_shows_visible_tests_and_only_counts_hidden_ones():
    rubric = load_rubric()
    report = make_report(rubric, fraction=0.0)
    text = "\n".join(summary_lines(report, rubric))
    checks = [c for q in report.questions for c in q.checks]
    hidden = [c for c in checks if c.visibility is not Visibility.VISIBLE]
    assert hidden, "the shipped rubric has hidden tests"
    for check in checks:
        shown = check.visibility is Visibility.VISIBLE
        assert (check.title in text) is shown
        assert (check.message in text) is shown
    assert "hidden test" in text
    for question in report.questions:
        public = sum(c.max_score for c in question.checks if c.visibility is Visibility.VISIBLE)
        assert f"{question.question} {question.title}: 0 / {public:g} public points" in text


def test_the_markdown_summary_says_the_same_and_is_inert():
    rubric = load_rubric()
    report = make_report(rubric, fraction=0.0)
    text = summary_markdown(report, rubric)
    assert "step\\_function" in text  # student and grader text carries no markup of its own
    text = text.replace("\\", "")
    for check in (c for q in report.questions for c in q.checks):
        assert (check.title in text) is (check.visibility is Visibility.VISIBLE)
    assert "hidden test" in text and text.startswith("# Self-check of")


def test_control_characters_in_a_message_do_not_reach_the_terminal():
    rubric = load_rubric()
    report = make_report(rubric, fraction=0.0)
    first = report.questions[0]
    loud = dataclasses.replace(first.checks[0], message="boom \x1b[2J\x1b]0;owned\x07 here")
    report = dataclasses.replace(
        report, questions=(dataclasses.replace(first, checks=(loud, *first.checks[1:])),)
    )
    lines = "\n".join(summary_lines(report, rubric))
    assert "boom [2J]0;owned here" in lines and "\x1b" not in lines and "\x07" not in lines
    assert "\x1b" not in summary_markdown(report, rubric)


# --- finding the running notebook -------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("q3_fashion_mlp.ipynb", "scratch.ipynb"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    return tmp_path


def test_an_explicit_path_wins(folder):
    found = find_notebook("q3", "scratch.ipynb", environ={}, user_ns={}, cwd=folder)
    assert found == (folder / "scratch.ipynb").resolve()
    with pytest.raises(FileNotFoundError, match=r"nothere\.ipynb"):
        find_notebook("q3", "nothere.ipynb", environ={}, user_ns={}, cwd=folder)


def test_the_front_ends_say_which_notebook_runs(folder):
    vscode = {"__vsc_ipynb_file__": str(folder / "scratch.ipynb")}
    assert find_notebook("q3", user_ns=vscode, environ={}, cwd=folder).name == "scratch.ipynb"
    session = {"__session__": "scratch.ipynb"}  # relative to the kernel's folder
    assert find_notebook("q3", user_ns=session, environ={}, cwd=folder).name == "scratch.ipynb"
    env = {"JPY_SESSION_NAME": str(folder / "scratch.ipynb")}
    assert find_notebook("q3", user_ns={}, environ=env, cwd=folder).name == "scratch.ipynb"


def test_without_a_front_end_the_notebook_named_for_the_question_is_used(folder):
    console = {"JPY_SESSION_NAME": str(folder / "console-1")}  # not a notebook: ignored
    found = find_notebook("q3", user_ns={}, environ=console, cwd=folder)
    assert found.name == "q3_fashion_mlp.ipynb"
    with pytest.raises(FileNotFoundError, match=r'check_me\("q4", "q4_'):
        find_notebook("q4", user_ns={}, environ={}, cwd=folder)


def test_check_me_grades_the_notebook_in_a_separate_process(folder, monkeypatch, capsys):
    calls: list[tuple[Path, str]] = []
    monkeypatch.delenv(selfcheck.IN_GRADER_ENV, raising=False)

    def fake(notebook: Path, question: str) -> int:
        calls.append((notebook, question))
        return 0

    monkeypatch.setattr(selfcheck, "self_check_subprocess", fake)
    check_me("q3", folder / "q3_fashion_mlp.ipynb")
    assert calls == [((folder / "q3_fashion_mlp.ipynb").resolve(), "q3")]
    assert "as last saved" in capsys.readouterr().out


def test_check_me_does_nothing_inside_a_grading_kernel(folder, monkeypatch, capsys):
    monkeypatch.setenv(selfcheck.IN_GRADER_ENV, "1")
    monkeypatch.setattr(selfcheck, "self_check_subprocess", lambda nb, q: pytest.fail("ran"))
    check_me("q3", folder / "q3_fashion_mlp.ipynb")
    assert "skipped" in capsys.readouterr().out


# --- exit codes -----------------------------------------------------------------------------


def test_grader_errors_exit_non_zero(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.ipynb")]) != 0
    assert main(["check", str(SUBMISSIONS / "blank"), "--question", "q9"]) != 0
    assert "unknown question q9" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.kernel
def test_a_blank_submission_exits_0_and_shows_only_visible_tests(capsys):
    assert main(["check", str(SUBMISSIONS / "blank"), "--question", "q1"]) == 0
    out = capsys.readouterr().out
    assert "Self-check of blank" in out and "q1 " in out
    assert "q2 " not in out  # only the question asked for


@pytest.mark.kernel
def test_the_self_check_prints_no_hidden_test(tmp_path):
    printed: list[str] = []
    report = run_self_check(SUBMISSIONS / "blank", questions=("q1",), say=printed.append)
    text = "\n".join(printed)
    checks = [c for q in report.questions for c in q.checks]
    assert checks, "q1 declares checks"
    for check in checks:
        assert (check.title in text) is (check.visibility is Visibility.VISIBLE), check.id
    assert [q.question for q in report.questions] == ["q1"]


@pytest.mark.slow
@pytest.mark.kernel
def test_check_me_runs_dlgrade_check_and_echoes_it(tmp_path, monkeypatch, capsys):
    shutil.copy(SUBMISSIONS / "all_correct" / "q2_initialization.ipynb", tmp_path)
    monkeypatch.delenv(selfcheck.IN_GRADER_ENV, raising=False)
    check_me("q2", tmp_path / "q2_initialization.ipynb")
    out = capsys.readouterr().out
    assert "Self-check of q2_initialization" in out and "[PASS]" in out
    assert "could not run" not in out
