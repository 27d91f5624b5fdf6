"""The steps in order, nothing else: load -> (execute -> probe -> check -> score) -> write.

``evaluate`` runs the middle for one loaded submission. Its kernels are started first, before
the submission is read: they boot in their own processes while it is loaded (no student code
runs before its notebook is handed over). The result folder is built beside its final place
and swapped in at the end, so an interrupted run never leaves a half-written result where a
good one was.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from graders.config import GradeOptions, Profiles, Thresholds
from graders.errors import InvalidSubmissionError, MergeMismatchError
from graders.evaluate import Basis, prepare, run_submission, start_kernels
from graders.execute import Executor
from graders.load import load_submission
from graders.models import GradeReport, QuestionRun
from graders.render import warm
from graders.render.gradebook import write_gradebook
from graders.render.gradescope import gradescope_results, write_results_json
from graders.render.json_result import write_result_json
from graders.rubric import Rubric
from graders.score import merge_reports

GRADESCOPE_RESULTS = "gradescope_results.json"
"""Gradescope's results.json for this submission, written beside result.json."""


def grade(
    source: Path,
    out_dir: Path,
    options: GradeOptions | None = None,
    *,
    executor: Executor | None = None,
    profiles: Profiles | None = None,
    progress: Callable[[str], None] | None = None,
    base: GradeReport | None = None,
    basis: Basis | None = None,
) -> GradeReport:
    """Grade one submission and write ``out_dir/<name>/result.json`` with its artifacts.

    ``base``: an earlier report of the same submission, graded into the same ``out_dir``; the
    questions graded now (``options.only``) replace its own, the rest are kept with their
    artifacts (``dlgrade batch --regrade-question``). ``basis``: what the notebooks are held to
    (default: the grader's questions and reference, ``evaluate.LiveBasis``).
    """
    options = options or GradeOptions()
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    # Before anything runs: a machine that cannot confine student code stops the grading here
    # (or, while bubblewrap's self-test runs, in ``run_submission``, still before any cell).
    setup = prepare(options, basis=basis, profiles=profiles)
    if base is not None and base.run.profile.name != setup.profile.name:
        raise MergeMismatchError(
            f"the stored result was graded with profile {base.run.profile.name}, this run would "
            f"use {setup.profile.name}: one report cannot mix them"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="dlgrade-") as tmp,
        start_kernels(setup, Path(tmp), executor) as kernels,  # they boot while it is read
    ):
        scratch = Path(tmp)
        warm.in_background()  # the renderers, on a thread, while the kernels boot
        submission = load_submission(source, scratch, setup.all_questions)
        staging = out_dir / f".{submission.name}.partial-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700)  # a result is for its grader: no kernel uid may read it
        try:
            result = run_submission(
                setup,
                submission,
                kernels=kernels,
                result_dir=staging,
                output_dir=out_dir / submission.name,
                progress=progress,
                started=started,
                started_at=started_at,
            )
            if base is not None:
                now = {q.id for q in setup.questions}
                result = merge_reports(base, result)
                kept = [r for r in result.run.questions if r.question not in now]
                _carry_artifacts(kept, out_dir / submission.name, staging)
            write_outputs(result, staging, setup.rubric, setup.thresholds)
            _swap_into_place(staging, out_dir / submission.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return result


def write_outputs(
    result: GradeReport, folder: Path, rubric: Rubric, thresholds: Thresholds
) -> None:
    """Every format of one graded submission, into its (staging) result folder."""
    from graders.render.write import write_reports  # imported by then (``render.warm``)

    write_result_json(result, folder / "result.json")
    write_reports(result, folder, thresholds=thresholds)
    gradescope = gradescope_results(result, hidden_visibility=rubric.hidden_visibility)
    write_results_json(gradescope, folder / GRADESCOPE_RESULTS)
    write_gradebook([result], folder / "gradebook.csv", rubric=rubric)


def _carry_artifacts(kept: list[QuestionRun], old: Path, staging: Path) -> None:
    """Copy the kept questions' probe artifacts from the earlier result folder: the reports
    draw their charts from the folder itself."""
    for run in kept:
        for artifact in run.probe.artifacts:
            source, target = old / artifact.path, staging / artifact.path
            if source.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)


def _swap_into_place(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging`` so one of the two complete folders is always there.

    Only a folder is ever replaced: a file or link of the submission's name in the output
    folder (a batch's ``state.sqlite``, ``gradebook.csv``) is someone else's, never moved away.
    """
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise InvalidSubmissionError(
            f"{final.name} in the output folder is a file, not this submission's result "
            "folder; rename the submission (or grade it into another --out)",
            path=final,
        )
    old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
