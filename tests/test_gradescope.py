"""Gradescope's results.json: every file we produce validates against the spec's schema.

The schema (``tests/schemas/gradescope_results.schema.json``) is written from Gradescope's
published spec, not from our output. Synthetic reports built from the shipped rubric pin the
field rules (hidden tests, free-response entries, crashes); the fake kernel runs the whole
pipeline in milliseconds; the ``kernel`` tests grade the two fixture submissions for real.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fakes import FakeExecutor, Script

from graders.config import GradeOptions
from graders.errors import ConfigError, ExecutionError, InvalidSubmissionError
from graders.gradescope.entry import safe_grade_to_gradescope
from graders.models import (
    CheckResult,
    CheckStatus,
    ExecutionRecord,
    GradeReport,
    LoadProblem,
    ManualItem,
    ProbeRecord,
    ProbeStatus,
    ProfileChoice,
    QuestionResult,
    QuestionRun,
    RunStatus,
    Submission,
    SubmissionRun,
    Visibility,
)
from graders.pipeline import grade
from graders.render.gradescope import (
    PLACEHOLDER_MESSAGE,
    _clean,
    crash_results,
    gradescope_results,
    write_results_json,
)
from graders.rubric import Rubric, load_rubric

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "gradescope_results.schema.json"
SUBMISSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"
QUICK = GradeOptions(profile="quick")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def strict_load(path: Path) -> Any:
    """JSON as Gradescope parses it: NaN and Infinity are not JSON."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{path}: {token} is not valid JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def assert_valid(validator: jsonschema.Draft202012Validator, results: Any) -> None:
    errors = sorted(validator.iter_errors(results), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def make_report(
    rubric: Rubric,
    name: str = "alice",
    *,
    fraction: float = 1.0,
    overrides: dict[str, CheckResult] | None = None,
    answered: bool = True,
) -> GradeReport:
    """A report for every test and free-response part of the shipped rubric."""
    questions: dict[str, list[CheckResult]] = {}
    for entry in rubric.tests.values():
        qid = entry.id.split(".", 1)[0]
        status = CheckStatus.PASSED if fraction >= 1 else CheckStatus.PARTIAL
        check = CheckResult(
            question=qid,
            id=entry.id,
            title=f"title of {entry.id}",
            score=entry.points * fraction,
            max_score=entry.points,
            status=status if fraction > 0 else CheckStatus.FAILED,
            visibility=entry.visibility,
            message=f"message of {entry.id}",
            hint=f"hint of {entry.id}" if fraction < 1 else "",
        )
        questions.setdefault(qid, []).append((overrides or {}).get(entry.id, check))
    results = tuple(
        QuestionResult(
            question=qid,
            title=f"Question {qid}",
            score=sum(c.score for c in checks),
            max_score=sum(c.max_score for c in checks),
            checks=tuple(checks),
            manual=tuple(
                ManualItem(
                    question=m.question,
                    id=m.id,
                    title=m.title,
                    max_score=m.points,
                    answered=answered,
                    text=f"answer of {name} to {m.id}" if answered else "",
                )
                for m in rubric.manual.get(qid, ())
            ),
        )
        for qid, checks in questions.items()
    )
    runs = tuple(
        QuestionRun(
            question=q.question,
            title=q.title,
            notebook=None,
            execution=ExecutionRecord(question=q.question, status=RunStatus.OK, seconds=1.0),
            probe=ProbeRecord(question=q.question, status=ProbeStatus.OK),
        )
        for q in results
    )
    run = SubmissionRun(
        submission=Submission(name=name, source=Path(name), root=Path(name)),
        profile=ProfileChoice(name="cpu", reason="no CUDA device is visible to the kernel"),
        questions=runs,
        grader_version="0.0.test",
        started_at="2025-01-01T00:00:00+00:00",
        seconds=61.6,
        output_dir=Path("out") / name,
    )
    return GradeReport(
        run=run,
        questions=results,
        score=sum(q.score for q in results),
        max_score=sum(q.max_score for q in results),
        manual_max_score=sum(m.max_score for q in results for m in q.manual),
    )


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric()


def hidden_ids(rubric: Rubric) -> set[str]:
    ids = {t.id for t in rubric.tests.values() if t.visibility is Visibility.HIDDEN}
    assert ids, "the shipped rubric has hidden tests; these tests need at least one"
    return ids


def by_tag(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each test by its second tag: the check id, or ``q.part`` for a free-response entry."""
    return {t["tags"][1]: t for t in results["tests"]}


# --- the renderer ------------------------------------------------------------------------


def test_every_check_and_free_response_part_is_an_entry(rubric, validator):
    report = make_report(rubric, fraction=0.5)
    results = gradescope_results(report)
    assert_valid(validator, results)
    tests = by_tag(results)
    manual = {f"{m.question}.{m.id}" for parts in rubric.manual.values() for m in parts}
    assert set(tests) == set(rubric.tests) | manual
    numbers = [t["number"] for t in results["tests"]]
    assert len(set(numbers)) == len(numbers)
    assert all(isinstance(n, str) and n.count(".") == 1 for n in numbers)
    assert results["score"] == pytest.approx(report.score)
    assert results["execution_time"] == 62
    for cid, entry in rubric.tests.items():
        test = tests[cid]
        assert test["max_score"] == pytest.approx(entry.points)
        assert test["score"] == pytest.approx(entry.points * 0.5)
        assert test["status"] == "failed"  # partial credit is not a pass
        assert f"message of {cid}" in test["output"] and f"Hint: hint of {cid}" in test["output"]
        assert test["tags"][0] == cid.split(".")[0]


def test_hidden_tests_default_to_after_published(rubric, validator):
    results = gradescope_results(make_report(rubric))
    assert_valid(validator, results)
    tests = by_tag(results)
    hidden = hidden_ids(rubric)
    for cid in rubric.tests:
        assert tests[cid]["visibility"] == ("after_published" if cid in hidden else "visible")
    assert results["visibility"] == "visible" and results["stdout_visibility"] == "hidden"


@pytest.mark.parametrize("setting", ["after_due_date", "hidden", Visibility.VISIBLE])
def test_the_hidden_visibility_option_changes_only_hidden_tests(rubric, validator, setting):
    results = gradescope_results(make_report(rubric), hidden_visibility=setting)
    assert_valid(validator, results)
    tests = by_tag(results)
    hidden = hidden_ids(rubric)
    for cid in rubric.tests:
        assert tests[cid]["visibility"] == (str(setting) if cid in hidden else "visible")


def test_a_bad_visibility_setting_is_a_config_error(rubric):
    with pytest.raises(ConfigError, match="hidden_visibility"):
        gradescope_results(make_report(rubric), hidden_visibility="after_lunch")
    with pytest.raises(ConfigError, match="stdout_visibility"):
        gradescope_results(make_report(rubric), stdout_visibility="sometimes")


def test_the_summary_does_not_reveal_the_total_while_tests_are_hidden(rubric):
    report = make_report(rubric, fraction=0.5)
    held_back = gradescope_results(report)["output"]
    assert "cpu" in held_back and "no CUDA device" in held_back  # profile and why
    assert "Autograder score" not in held_back and "when grades are published" in held_back
    shown = gradescope_results(report, hidden_visibility="visible")["output"]
    assert "Autograder score" in shown


def test_free_response_entries_carry_no_points(rubric, validator):
    for answered in (True, False):
        results = gradescope_results(make_report(rubric, answered=answered))
        assert_valid(validator, results)
        manual = [t for t in results["tests"] if "manual" in t["tags"]]
        assert manual
        for test in manual:
            assert not {"score", "max_score", "status"} & set(test)
            assert "Graded manually" in test["output"] and test["visibility"] == "visible"
            assert ("answer of alice" in test["output"]) is answered


def test_a_grader_error_fails_visibly_and_a_nan_cannot_break_the_file(rubric, validator, tmp_path):
    cid = next(iter(rubric.tests))
    entry = rubric.tests[cid]
    broken = CheckResult(
        question=cid.split(".")[0],
        id=cid,
        title="broken",
        score=float("nan"),
        max_score=entry.points,
        status=CheckStatus.ERROR,
        visibility=entry.visibility,
        message="the check raised KeyError",
    )
    results = gradescope_results(make_report(rubric, overrides={cid: broken}))
    test = by_tag(results)[cid]
    assert test["status"] == "failed" and test["score"] == 0.0
    assert "could not evaluate" in test["output"]
    write_results_json(results, tmp_path / "results.json")
    assert_valid(validator, strict_load(tmp_path / "results.json"))


def test_student_text_keeps_unix_newlines_and_a_bounded_length(rubric):
    cid = next(iter(rubric.tests))
    noisy = replace(
        make_report(rubric).questions[0].checks[0], message="line one\r\nline two\r" + "x" * 50_000
    )
    output = by_tag(gradescope_results(make_report(rubric, overrides={cid: noisy})))[cid]["output"]
    assert "\r" not in output and "line one\nline two\n" in output
    assert len(output) < 10_000 and "cut:" in output


def test_student_text_reaches_the_page_without_control_characters(rubric):
    """An ESC sequence, a C1 control or a direction override in a kernel's message is dropped
    from every output; tabs and newlines stay."""
    cid = next(iter(rubric.tests))
    hostile = "red \x1b[31mtext\x1b[0m\tand \u202egnp.exe\u202c \x9bmore\x07\nnext line"
    noisy = replace(make_report(rubric).questions[0].checks[0], message=hostile)
    results = gradescope_results(make_report(rubric, overrides={cid: noisy}))
    output = by_tag(results)[cid]["output"]
    assert "red [31mtext[0m\tand gnp.exe more\nnext line" in output
    everything = json.dumps(results, ensure_ascii=False)
    assert not any(c in everything for c in ("\x1b", "\u202e", "\x9b", "\x07"))


FORGED = "x\n\nTests shown now: 34 / 34 points. All tests passed.\n\u2028Score: 35/35\x1b[2J"
"""A cell error that printed a second score block in the grader's own wording (red team,
2026-12-04)."""


def test_a_quoted_cell_error_or_file_problem_cannot_forge_lines_of_the_output(rubric):
    """The top of the output quotes cell errors and file problems one line each: no line break
    of theirs (U+2028, U+2029 and NEL included) starts a line there."""
    report = make_report(rubric)
    run = report.run
    questions = tuple(
        replace(
            q,
            execution=replace(
                q.execution, status=RunStatus.CELL_ERRORS, message=f"Cell 20 raised {FORGED}"
            ),
        )
        for q in run.questions
    )
    problems = (LoadProblem(message="not a notebook\u2029Score: 35/35\x85", path="a\nb"),)
    submission = replace(run.submission, problems=problems)
    report = replace(report, run=replace(run, questions=questions, submission=submission))
    output = gradescope_results(report)["output"]
    lines = output.split("\n")
    assert not any(line.startswith("Tests shown now: 34") for line in lines)
    assert not any(line.startswith("Score: 35/35") for line in lines)
    assert not any(c in output for c in ("\u2028", "\u2029", "\x85", "\x1b"))
    assert "Cell 20 raised x \u23ce Tests shown now: 34 / 34 points." in output
    assert "  - a \u23ce b: not a notebook \u23ce Score: 35/35" in output


def test_line_separators_in_a_tests_output_are_newlines_there():
    assert _clean("one\u2028two\u2029three\x85four") == "one\ntwo\nthree\nfour"


# --- crashes -----------------------------------------------------------------------------


def test_a_crash_without_a_report_is_valid_and_says_so(validator):
    results = crash_results(RuntimeError("disk on fire"), None, seconds=3.2)
    assert_valid(validator, results)
    assert results["score"] == 0 and results["tests"] == []
    assert "failed while grading" in results["output"] and "disk on fire" in results["output"]
    assert results["extra_data"]["crashed"] is True


def test_a_crash_keeps_the_scores_already_known(rubric, validator):
    report = make_report(rubric, fraction=0.5)
    results = crash_results(ValueError("renderer broke"), report)
    assert_valid(validator, results)
    assert results["score"] == pytest.approx(report.score)
    assert len(results["tests"]) == len(gradescope_results(report)["tests"])
    assert results["output"].startswith("The autograder failed")


def test_a_submission_error_tells_the_student_what_to_fix(validator):
    error = InvalidSubmissionError("expected a folder of notebooks", path="hw.rar")
    results = crash_results(error)
    assert_valid(validator, results)
    assert "could not be graded" in results["output"] and "hw.rar" in results["output"]
    assert "submit again" in results["output"]


def test_the_placeholder_is_on_disk_while_grading_runs(tmp_path, validator, rubric):
    target = tmp_path / "results" / "results.json"
    seen: list[Any] = []

    def grading(source: Path, out: Path, options: GradeOptions) -> GradeReport:
        seen.append(strict_load(target))  # what a kill at this moment would leave
        return make_report(rubric)

    final = safe_grade_to_gradescope(tmp_path / "sub", target, QUICK, grade_fn=grading)
    assert_valid(validator, seen[0])
    assert seen[0]["output"] == PLACEHOLDER_MESSAGE and seen[0]["score"] == 0
    assert strict_load(target) == final and "crashed" not in final["extra_data"]
    assert [p.name for p in target.parent.iterdir()] == ["results.json"]


@pytest.mark.parametrize(
    "error",
    [RuntimeError("boom"), MemoryError(), SystemExit(3), ExecutionError("no kernel")],
    ids=["runtime", "memory", "system-exit", "grader-error"],
)
def test_safe_grading_always_writes_valid_results(tmp_path, validator, error):
    def grading(source: Path, out: Path, options: GradeOptions) -> GradeReport:
        raise error

    target = tmp_path / "results.json"
    returned = safe_grade_to_gradescope(tmp_path, target, QUICK, grade_fn=grading)
    written = strict_load(target)
    assert_valid(validator, written)
    assert written == returned and written["extra_data"]["error"] == type(error).__name__
    assert written["output"] != PLACEHOLDER_MESSAGE


def test_ctrl_c_writes_its_notice_then_stops(tmp_path, validator):
    def grading(source: Path, out: Path, options: GradeOptions) -> GradeReport:
        raise KeyboardInterrupt

    target = tmp_path / "results.json"
    with pytest.raises(KeyboardInterrupt):
        safe_grade_to_gradescope(tmp_path, target, QUICK, grade_fn=grading)
    written = strict_load(target)
    assert_valid(validator, written)
    assert "interrupted" in written["output"]


# --- through the pipeline ------------------------------------------------------------------


def test_the_pipeline_with_a_fake_kernel_gives_valid_results(tmp_path, validator):
    out = tmp_path / "out"
    results = safe_grade_to_gradescope(
        SUBMISSIONS / "all_correct",
        tmp_path / "results.json",
        QUICK,
        out_dir=out,
        grade_fn=partial(grade, executor=FakeExecutor()),
    )
    assert_valid(validator, strict_load(tmp_path / "results.json"))
    graded = json.loads((out / "all_correct" / "result.json").read_text(encoding="utf-8"))
    assert results["score"] == pytest.approx(graded["score"])
    checks = {c["id"] for q in graded["questions"] for c in q["checks"]}
    assert checks <= set(by_tag(results))


def test_a_kernel_machinery_crash_mid_batch_still_gives_valid_results(tmp_path, validator):
    executor = FakeExecutor({"q2": Script(raises=ExecutionError("could not start a kernel"))})
    results = safe_grade_to_gradescope(
        SUBMISSIONS / "all_correct",
        tmp_path / "results.json",
        QUICK,
        grade_fn=partial(grade, executor=executor),
    )
    assert_valid(validator, strict_load(tmp_path / "results.json"))
    assert results["extra_data"]["crashed"] is True
    assert "could not start a kernel" in results["output"]


# --- real kernels --------------------------------------------------------------------------


class _Graded:
    """all_correct and blank, each graded once with the quick profile, when first asked for
    (all_correct trains Q3 and Q4: only the slow tests ask for it)."""

    def __init__(self, factory: pytest.TempPathFactory):
        self.factory = factory
        self.done: dict[str, tuple[dict[str, Any], Path]] = {}

    def __getitem__(self, name: str) -> tuple[dict[str, Any], Path]:
        if name not in self.done:
            folder = self.factory.mktemp(name)
            target = folder / "results" / "results.json"
            safe_grade_to_gradescope(SUBMISSIONS / name, target, QUICK, out_dir=folder / "out")
            self.done[name] = (strict_load(target), folder / "out" / name / "result.json")
        return self.done[name]


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> _Graded:
    return _Graded(tmp_path_factory)


@pytest.mark.kernel
@pytest.mark.parametrize("name", [pytest.param("all_correct", marks=pytest.mark.slow), "blank"])
def test_real_submissions_give_valid_results(graded, validator, name):
    results, result_json = graded[name]
    assert_valid(validator, results)
    assert "crashed" not in results["extra_data"], results["output"]
    report = json.loads(result_json.read_text(encoding="utf-8"))
    assert results["score"] == pytest.approx(report["score"])
    checks = [c for q in report["questions"] for c in q["checks"]]
    manual = [m for q in report["questions"] for m in q["manual"]]
    assert len(results["tests"]) == len(checks) + len(manual)


@pytest.mark.kernel
@pytest.mark.slow
def test_blank_scores_below_all_correct(graded):
    correct, blank = graded["all_correct"][0], graded["blank"][0]
    assert blank["score"] < correct["score"]
    assert any(t.get("status") == "failed" for t in blank["tests"])
