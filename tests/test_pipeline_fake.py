"""The whole pipeline with a scripted kernel: what lands in result.json, and what never does."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from fakes import FakeExecutor, Script, npz_bytes, pickled_npz_bytes

from graders.config import FIXTURE_DATA_ROOT, GradeOptions, Profile
from graders.errors import SandboxError, SubmissionError
from graders.models import GradeReport, ProbeStatus, QuestionRun, RunStatus, SandboxMode
from graders.pipeline import grade
from graders.record import free_responses
from graders.render.json_result import to_plain
from graders.sandbox import confinement

QUICK = GradeOptions(profile="quick")


@pytest.fixture
def correct(fixture_submissions: Path) -> Path:
    return fixture_submissions / "all_correct"


def result_json(out: Path, name: str = "all_correct") -> dict[str, Any]:
    return json.loads((out / name / "result.json").read_text(encoding="utf-8"))


def runs(report: GradeReport) -> dict[str, QuestionRun]:
    """What each question's kernel and probe produced, by question id."""
    return {q.question: q for q in report.run.questions}


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def code_cells(notebook: Path) -> list[int]:
    nb = nbformat.read(str(notebook), as_version=4)
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]


def cell_source(notebook: Path, index: int) -> str:
    return str(nbformat.read(str(notebook), as_version=4).cells[index].source)


def test_result_json_has_one_entry_per_question(correct, tmp_path, questions):
    report = grade(correct, tmp_path / "out", QUICK, executor=FakeExecutor())
    written = result_json(tmp_path / "out")
    assert written.pop("schema_version") >= 1
    assert written == json.loads(json.dumps(to_plain(report)))  # the report, nothing else
    assert [q["question"] for q in written["questions"]] == [q.id for q in questions]
    assert list(runs(report)) == [q.id for q in questions]
    assert report.run.profile.name == "quick" and "quick" in report.run.profile.reason
    for qrun in report.run.questions:
        assert qrun.execution.status is RunStatus.OK
        assert qrun.probe.status is ProbeStatus.OK
        executed = tmp_path / "out" / "all_correct" / str(qrun.execution.executed_notebook)
        nbformat.validate(nbformat.read(str(executed), as_version=4))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["all_correct"]


def test_every_kernel_gets_the_quick_profiles_parameters_and_its_probe_inputs(
    correct, tmp_path, quick_profile: Profile
):
    fake = FakeExecutor()
    report = grade(correct, tmp_path / "out", QUICK, executor=fake)
    assert sorted(job.question for job in fake.jobs) == ["q1", "q2", "q3", "q4"]
    for job in fake.jobs:
        params = job.prepared.parameters
        assert params["DATA_ROOT"] == str(FIXTURE_DATA_ROOT)  # the committed slices
        assert params["DEVICE"] == "cpu"
        assert quick_profile.parameters_for(job.question).items() <= params.items()
        assert job.limits == quick_profile.limits
        assert "inputs.json" in fake.inputs_seen[job.question]
        assert not job.sandbox.base.exists()  # the kernel's folder is gone afterwards
    recorded = runs(report)["q4"].execution.parameters
    assert recorded["EPOCHS"] == quick_profile.parameters_for("q4")["EPOCHS"]


def test_grading_never_touches_the_submitted_folder(correct, tmp_path):
    source = tmp_path / "student"
    shutil.copytree(correct, source)
    before = tree(source)
    grade(source, tmp_path / "out", QUICK, executor=FakeExecutor())
    assert tree(source) == before


def test_a_missing_notebook_is_not_run_with_a_message_naming_the_expected_file(correct, tmp_path):
    source = tmp_path / "partial"
    source.mkdir()
    for name in ("q1_step_network", "q2_initialization", "q3_fashion_mlp"):
        shutil.copyfile(correct / f"{name}.ipynb", source / f"{name}.ipynb")
    fake = FakeExecutor()
    q4 = runs(grade(source, tmp_path / "out", QUICK, executor=fake))["q4"]
    assert q4.execution.status is RunStatus.NOT_RUN
    assert q4.probe.status is ProbeStatus.NOT_RUN
    assert "q4_numpy_backprop.ipynb" in q4.execution.message
    assert q4.notebook is None
    assert "q4" in [q["question"] for q in result_json(tmp_path / "out", "partial")["questions"]]
    assert sorted(job.question for job in fake.jobs) == ["q1", "q2", "q3"]


def test_an_unreadable_notebook_is_not_run_and_says_why(correct, tmp_path):
    source = tmp_path / "broken"
    shutil.copytree(correct, source)
    (source / "q2_initialization.ipynb").write_text('{"cells": [', encoding="utf-8")
    report = grade(source, tmp_path / "out", QUICK, executor=FakeExecutor())
    q2 = runs(report)["q2"].execution
    assert q2.status is RunStatus.NOT_RUN
    assert q2.message.startswith("no notebook for q2: q2_initialization.ipynb: not a readable")
    assert [p.path for p in report.run.submission.problems] == ["q2_initialization.ipynb"]
    assert runs(report)["q1"].execution.status is RunStatus.OK


def test_a_crash_mid_grade_keeps_the_previous_result_and_leaves_no_partial_folder(
    correct, tmp_path
):
    out = tmp_path / "out"
    grade(correct, out, QUICK, executor=FakeExecutor())
    before = tree(out / "all_correct")
    crashing = FakeExecutor({"q3": Script(raises=RuntimeError("harness fault"))})
    with pytest.raises(RuntimeError, match="harness fault"):
        grade(correct, out, QUICK, executor=crashing)
    assert tree(out / "all_correct") == before
    assert sorted(p.name for p in out.iterdir()) == ["all_correct"]  # no .partial-*, no .old-*


def test_a_crash_on_the_first_grade_leaves_nothing(correct, tmp_path):
    out = tmp_path / "out"
    crashing = FakeExecutor({"q1": Script(raises=RuntimeError("harness fault"))})
    with pytest.raises(RuntimeError):
        grade(correct, out, QUICK, executor=crashing)
    assert list(out.iterdir()) == []


def test_a_regrade_replaces_the_previous_result_whole(correct, tmp_path):
    out = tmp_path / "out"
    first = FakeExecutor({"q1": Script(probe_files={"step.npz": npz_bytes(u=np.zeros(2))})})
    grade(correct, out, QUICK, executor=first)
    assert (out / "all_correct" / "artifacts" / "q1" / "step.npz").is_file()
    grade(correct, out, QUICK, executor=FakeExecutor())
    assert not (out / "all_correct" / "artifacts").exists()  # nothing of the old run survives
    assert sorted(p.name for p in out.iterdir()) == ["all_correct"]


def later_code_cells(correct: Path) -> list[int]:
    """q4 code cells after its parameters cell: two injected cells precede them."""
    return [i for i in code_cells(correct / "q4_numpy_backprop.ipynb") if i > 3]


@pytest.mark.parametrize("which", [0, -1], ids=["first-after-parameters", "last"])
def test_a_cell_error_is_reported_at_the_students_own_cell_index(correct, tmp_path, which):
    notebook = correct / "q4_numpy_backprop.ipynb"
    index = later_code_cells(correct)[which]
    fake = FakeExecutor({"q4": Script(error_cells={index: ("ValueError", "shapes do not align")})})
    execution = runs(grade(correct, tmp_path / "out", QUICK, executor=fake))["q4"].execution
    assert execution.status is RunStatus.CELL_ERRORS
    [error] = execution.cell_errors
    assert error.cell_index == index
    assert error.ename == "ValueError" and error.evalue == "shapes do not align"
    source_lines = cell_source(notebook, index).splitlines()
    assert error.source_excerpt.splitlines()[0] == source_lines[0]
    assert len(error.source_excerpt.splitlines()) <= min(len(source_lines), 6) + 1
    assert f"Cell {index} raised ValueError" in execution.message
    assert execution.cells_total == len(code_cells(notebook))
    assert execution.cells_run == len(code_cells(notebook))


def test_a_dead_kernel_is_reported_at_the_students_cell_and_skips_the_probe(correct, tmp_path):
    notebook = correct / "q4_numpy_backprop.ipynb"
    index = later_code_cells(correct)[1]
    fake = FakeExecutor({"q4": Script(died_at=index)})
    q4 = runs(grade(correct, tmp_path / "out", QUICK, executor=fake))["q4"]
    assert q4.execution.status is RunStatus.KERNEL_DIED
    assert f"cell {index}" in q4.execution.message
    assert q4.execution.cells_run == len([i for i in code_cells(notebook) if i <= index])
    assert q4.probe.status is ProbeStatus.FAILED
    assert "q4" not in fake.inputs_seen  # the inputs are written only for a probe that runs


def test_a_total_timeout_names_the_cell_and_counts_what_ran(correct, tmp_path):
    notebook = correct / "q4_numpy_backprop.ipynb"
    index = later_code_cells(correct)[2]
    fake = FakeExecutor({"q4": Script(total_timeout_at=index)})
    execution = runs(grade(correct, tmp_path / "out", QUICK, executor=fake))["q4"].execution
    assert execution.status is RunStatus.TIMEOUT
    assert execution.timed_out_cells == (index,)
    assert execution.cells_run == len([i for i in code_cells(notebook) if i <= index])


def test_pickled_probe_output_never_reaches_the_result_folder(correct, tmp_path):
    files = {"step.npz": npz_bytes(x=np.arange(3)), "box_network.npz": pickled_npz_bytes()}
    fake = FakeExecutor({"q1": Script(probe_files=files)})
    probe = runs(grade(correct, tmp_path / "out", QUICK, executor=fake))["q1"].probe
    assert [a.name for a in probe.artifacts] == ["step"]
    assert [(e.step, e.kind) for e in probe.errors] == [("box_network", "bad_value")]
    assert probe.status is ProbeStatus.PARTIAL
    assert sorted(p.name for p in (tmp_path / "out" / "all_correct").rglob("*.npz")) == ["step.npz"]


def test_an_unfinished_probe_is_failed_with_its_step(correct, tmp_path):
    script = Script(
        probe_finishes=False, progress_step="train_one_sample", probe_message="probe timed out"
    )
    report = grade(correct, tmp_path / "out", QUICK, executor=FakeExecutor({"q4": script}))
    probe = runs(report)["q4"].probe
    assert probe.status is ProbeStatus.FAILED
    assert "train_one_sample" in probe.message and "probe timed out" in probe.message


@pytest.mark.parametrize(("scenario", "answered"), [("all_correct", True), ("blank", False)])
def test_free_responses_are_collected_for_manual_grading(
    fixture_submissions, tmp_path, questions, scenario, answered
):
    source = fixture_submissions / scenario
    report = grade(source, tmp_path / "out", QUICK, executor=FakeExecutor())
    for spec in questions:
        responses = runs(report)[spec.id].free_responses
        assert [r.id for r in responses] == list(spec.free_response_ids)
        assert all(r.answered is answered for r in responses)


def free_response_cell(text: str, info: object) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["tags"] = ["free_response"]
    cell.metadata["dlgrader"] = info
    return cell


def test_free_responses_tolerate_metadata_a_student_mangled():
    nb = nbformat.v4.new_notebook(
        cells=[
            free_response_cell("**Your answer (a):**\n\nBecause sigma(0) = 0.", {"id": "a"}),
            free_response_cell("**Your answer (b):**\n\nYOUR ANSWER HERE", {"id": "b"}),
            free_response_cell("**Your answer (c):**\n\nMy answer.", "c"),  # not a table
            free_response_cell("Untagged id", {"id": 3}),
        ]
    )
    answers = {r.id: r.answered for r in free_responses(nb, ("a", "b", "c"))}
    assert answers == {"a": True, "b": False, "c": True}  # c: found by its heading


def test_an_answer_cell_that_lost_its_tag_is_found_by_its_heading():
    """Re-created, pasted from another notebook, or saved by an editor that drops metadata."""
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("## Question (a)\n\nWhy is the box open?"),
            nbformat.v4.new_markdown_cell("**Your answer (A):**\n\nBecause step(0) = 0."),
            nbformat.v4.new_markdown_cell("**your answer (b):** on the heading's line."),
            nbformat.v4.new_markdown_cell("**Your answer (z):**\n\nNo such question."),
        ]
    )
    responses = {r.id: r for r in free_responses(nb, ("a", "b", "c"))}
    assert responses["a"].answered and "step(0) = 0" in responses["a"].text
    assert responses["b"].answered
    assert not responses["c"].answered and responses["c"].text == ""


def test_a_copy_of_the_answer_cell_left_with_the_placeholder_hides_no_answer():
    nb = nbformat.v4.new_notebook(
        cells=[
            free_response_cell("**Your answer (a):**\n\nThe real answer.", {"id": "a"}),
            free_response_cell("**Your answer (a):**\n\nYOUR ANSWER HERE", {"id": "a"}),
            free_response_cell("**Your answer (b):**\n\nFirst part.", {"id": "b"}),
            nbformat.v4.new_markdown_cell("**Your answer (b):**\n\nSecond part."),
        ]
    )
    responses = {r.id: r for r in free_responses(nb, ("a", "b"))}
    assert responses["a"].answered and responses["a"].text.endswith("The real answer.")
    both = responses["b"].text
    assert responses["b"].answered and "First part." in both and "Second part." in both
    assert "answer cell 2 of 2" in both


def test_overflowing_and_non_finite_values_fail_checks_never_the_grader(correct, tmp_path):
    """``10**400`` (no float holds it), ``1e999``, NaN and inf in what probes hand back: the
    checks judge them as the student's bad values; none becomes "the grader could not
    evaluate this test", and the reports (charts included) are written."""
    huge = str(10**400).encode()
    files = {
        "q1": {"step.npz": npz_bytes(u=np.array([np.inf, np.nan]), y=np.array([1e308, -np.inf]))},
        "q2": {
            "formulas.json": b'{"forward_variance": {"args": [[3]], "values": [' + huge + b"]}}"
        },
        "q3": {
            "histories.json": b'{"train_loss_history": [' + huge + b", 1e999, NaN], "
            b'"test_loss_history": [1, 2, 3]}',
            "samples.json": b'{"random_indices": [' + huge + b", -1, 5]}",
        },
        "q4": {
            "train_meta.json": b'{"learning_rate_passed": ' + huge + b"}",
            "layout.json": b'{"layers": [' + huge + b", 32]}",
        },
    }
    fake = FakeExecutor({q: Script(probe_files=f) for q, f in files.items()})
    report = grade(correct, tmp_path / "out", QUICK, executor=fake)
    errors = [c.id for q in report.questions for c in q.checks if c.status.value == "error"]
    assert errors == []
    assert (tmp_path / "out" / "all_correct" / "feedback.html").is_file()


def test_kernels_start_before_the_submission_is_read_and_unused_ones_are_stopped(
    correct: Path, tmp_path: Path, questions
) -> None:
    """Every graded question's kernel is started before the notebooks are read (they boot
    meanwhile); a question the submission has no notebook for gets its kernel stopped, and a
    submission that cannot be read at all stops them all."""
    only_q2 = tmp_path / "only_q2"
    only_q2.mkdir()
    shutil.copy(correct / "q2_initialization.ipynb", only_q2)
    fake = FakeExecutor()
    report = grade(only_q2, tmp_path / "out", QUICK, executor=fake)
    everyone = [q.id for q in questions]
    assert fake.started == everyone
    assert sorted(fake.stopped) == sorted(q for q in everyone if q != "q2")
    assert [job.question for job in fake.jobs] == ["q2"]
    assert fake.jobs[0].started is not None, "q2 ran in the kernel started for it"
    assert runs(report)["q2"].execution.status is RunStatus.OK
    assert "q2_initialization.ipynb" in fake.inputs_seen["q2"], "the notebook was handed over"

    unreadable = FakeExecutor()
    with pytest.raises(SubmissionError):
        grade(tmp_path / "no-such-folder", tmp_path / "out", QUICK, executor=unreadable)
    assert sorted(unreadable.stopped) == sorted(unreadable.started) == sorted(everyone)
    assert not unreadable.jobs


def test_kernels_launched_while_bubblewrap_is_tested_are_relaunched_where_it_fails(
    correct: Path, tmp_path: Path, questions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kernels launch under bubblewrap while its self-test runs. Where the test fails (here: no
    such binary), the grader stops them before any notebook reached them and launches them
    again under the mode it fell back to; told nothing may run unconfined, it stops them all."""
    monkeypatch.setenv(confinement.BWRAP_ENV, str(tmp_path / "no-bwrap"))
    monkeypatch.delenv(confinement.MODE_ENV, raising=False)
    monkeypatch.delenv(confinement.ALLOW_UNCONFINED_ENV, raising=False)
    everyone = [q.id for q in questions]
    fake = FakeExecutor()
    report = grade(correct, tmp_path / "out", replace(QUICK, allow_unconfined=True), executor=fake)
    fallback = report.run.confinement.mode
    assert fallback is not SandboxMode.BUBBLEWRAP
    assert fake.launched == [(q, SandboxMode.BUBBLEWRAP) for q in everyone] + [
        (q, fallback) for q in everyone
    ]
    assert fake.stopped == everyone, "the kernels launched under bubblewrap were stopped"
    assert sorted(job.question for job in fake.jobs) == sorted(everyone)
    assert {job.sandbox.mode for job in fake.jobs} == {fallback}
    assert all(job.started is not None for job in fake.jobs), "each ran in its relaunched kernel"
    assert all(runs(report)[q].execution.status is RunStatus.OK for q in everyone)

    refused = FakeExecutor()
    if os.geteuid() == 0:  # a root grader could fall back to the sandbox user: ask for it not
        monkeypatch.setattr(confinement, "_user_mode", lambda: (None, "no sandbox user here"))
    with pytest.raises(SandboxError, match="no-bwrap"):
        grade(correct, tmp_path / "refused", QUICK, executor=refused)
    assert refused.started == everyone and sorted(refused.stopped) == sorted(everyone)
    assert not refused.jobs, "no notebook reached a kernel"
    assert not (tmp_path / "refused" / "all_correct").exists()


def test_a_notebook_name_that_is_no_plain_file_name_is_not_delivered(tmp_path: Path) -> None:
    from conftest import kernel_sandbox

    from graders import sandbox
    from graders.config import Limits

    box = kernel_sandbox(tmp_path, Limits())
    source = tmp_path / "nb.ipynb"
    source.write_text("{}", encoding="utf-8")
    for name in ("../up.ipynb", "a/b.ipynb", ".hidden.ipynb"):
        with pytest.raises(ValueError, match="not a plain file name"):
            sandbox.deliver(box, {name: source})
    assert sandbox.deliver(box, {"nb.ipynb": source}) == ("nb.ipynb",)
    assert (box.probe_in / "nb.ipynb").read_text(encoding="utf-8") == "{}"
    sandbox.cleanup(box)


def test_the_ahead_expectations_start_before_any_kernel_runs(correct, tmp_path, monkeypatch):
    """Q2's unit stacks are simulated while the notebooks run, not after them."""
    from graders.questions.expectations import LiveExpectations

    events: list[str] = []
    prefetch = LiveExpectations.prefetch

    def recording_prefetch(self: LiveExpectations) -> None:
        events.append("prefetch")
        prefetch(self)

    class Recording(FakeExecutor):
        async def run(self, job):  # type: ignore[no-untyped-def]
            events.append(f"run {job.question}")
            return await super().run(job)

    monkeypatch.setattr(LiveExpectations, "prefetch", recording_prefetch)
    report = grade(correct, tmp_path / "out", QUICK, executor=Recording())
    ran = [e for e in events if e.startswith("run ")]
    assert len(ran) == len(report.run.questions)
    assert events[: -len(ran)] == ["prefetch"] * len(report.run.questions)
