"""The steps in order, nothing else: load -> execute -> probe -> (check -> score) -> write.

Questions run in parallel kernels, each with its share of the cores. The result folder is
built beside its final place and swapped in at the end, so an interrupted run never leaves a
half-written result where a good one was.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import numpy as np

from graders import GRADER_VERSION, inject, probe, sandbox
from graders.config import (
    GradeOptions,
    Profile,
    Profiles,
    Thresholds,
    choose_profile,
    load_profiles,
    load_thresholds,
)
from graders.data import default_data_root
from graders.errors import DataError, MergeMismatchError
from graders.execute import Executor, KernelJob, NbclientExecutor
from graders.load import load_submission, missing_notebook
from graders.models import (
    ExecutionRecord,
    GradeReport,
    NotebookRef,
    ProbeInputs,
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
from graders.questions import load_questions
from graders.questions.api import CheckContext, ProbeContext, QuestionSpec
from graders.record import execution_record, free_responses
from graders.render.gradebook import write_gradebook
from graders.render.gradescope import gradescope_results, write_results_json
from graders.render.json_result import write_result_json
from graders.render.write import write_reports
from graders.rubric import Rubric, load_rubric
from graders.score import grade_report, merge_reports, score_question

GRADESCOPE_RESULTS = "gradescope_results.json"
"""Gradescope's results.json for this submission, written beside result.json."""


def _probe_seed(submission: Submission, question: str, seed: int) -> int:
    """Same submission, same question -> same probe inputs on a regrade; others differ."""
    digest = hashlib.sha256(f"{submission.name}:{question}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _not_run(spec: QuestionSpec, submission: Submission) -> QuestionRun:
    missing = missing_notebook(submission, spec)
    message = missing.message
    return QuestionRun(
        question=spec.id,
        title=spec.title,
        notebook=None,
        execution=ExecutionRecord(question=spec.id, status=RunStatus.NOT_RUN, message=message),
        probe=ProbeRecord(question=spec.id, status=ProbeStatus.NOT_RUN, message=message),
        missing=missing,
    )


@dataclass(frozen=True, kw_only=True)
class _RunContext:
    submission: Submission
    profile: Profile
    data_root: Path
    scratch: Path
    result_dir: Path
    threads: int
    seed: int
    executor: Executor
    plan: sandbox.SandboxPlan


def _inputs(spec: QuestionSpec, ctx: _RunContext) -> ProbeInputs:
    """The probe's inputs, seeded per submission and question; the checks reuse the same ones."""
    if spec.make_inputs is None:
        return ProbeInputs()
    rng = np.random.default_rng(_probe_seed(ctx.submission, spec.id, ctx.seed))
    return spec.make_inputs(ProbeContext(profile=ctx.profile, data_root=ctx.data_root, rng=rng))


async def _run_question(
    spec: QuestionSpec, ref: NotebookRef, inputs: ProbeInputs, ctx: _RunContext
) -> QuestionRun:
    student_nb = nbformat.read(str(ref.path), as_version=4)
    parameters = {
        "DATA_ROOT": str(ctx.data_root),
        "DEVICE": ctx.profile.device,
        "SEED": ctx.seed,
        **ctx.profile.parameters_for(spec.id),
    }
    preamble = inject.preamble_source(
        seed=ctx.seed,
        threads=ctx.threads,
        uses_torch=spec.uses_torch,
        snapshot_names=spec.snapshot_names,
        data_root=str(ctx.data_root),
        device=ctx.profile.device,
    )
    prepared = inject.prepare(student_nb, parameters=parameters, preamble=preamble)
    box = sandbox.prepare(
        plan=ctx.plan,
        question=spec.id,
        scratch=ctx.scratch,
        limits=ctx.profile.limits,
        threads=ctx.threads,
        device=ctx.profile.device,
        data_root=ctx.data_root,
        files_in={ref.path.name: ref.path},
    )
    job = KernelJob(
        question=spec.id,
        prepared=prepared,
        sandbox=box,
        limits=ctx.profile.limits,
        probe_source=probe.cell_source(
            spec, box, step_seconds=max(1.0, ctx.profile.limits.probe_timeout_s / 2)
        ),
        write_probe_inputs=lambda: probe.write_inputs(inputs, box.probe_in),
    )
    try:
        run = await ctx.executor.run(job)
        execution = execution_record(spec.id, run, prepared, ctx.result_dir, threads=ctx.threads)
        probe_record = probe.collect(spec, run, box, ctx.result_dir)
    finally:
        sandbox.cleanup(box)
    return QuestionRun(
        question=spec.id,
        title=spec.title,
        notebook=ref,
        execution=execution,
        probe=probe_record,
        free_responses=free_responses(student_nb, spec.free_response_ids),
    )


async def _run_all(
    questions: tuple[QuestionSpec, ...],
    inputs: dict[str, ProbeInputs],
    ctx: _RunContext,
    parallel: int,
) -> list[QuestionRun]:
    gate = asyncio.Semaphore(parallel)

    async def one(spec: QuestionSpec) -> QuestionRun:
        ref = ctx.submission.notebook_for(spec.id)
        if ref is None:
            return _not_run(spec, ctx.submission)
        async with gate:
            return await _run_question(spec, ref, inputs[spec.id], ctx)

    return list(await asyncio.gather(*(one(spec) for spec in questions)))


def _score_all(
    questions: tuple[QuestionSpec, ...],
    runs: list[QuestionRun],
    inputs: dict[str, ProbeInputs],
    ctx: _RunContext,
    rubric: Rubric,
    thresholds: Mapping[str, float],
    public_only: bool,
) -> tuple[QuestionResult, ...]:
    """The checks, in the grader's own process, after every kernel is gone."""
    results = []
    for spec, run in zip(questions, runs, strict=True):
        check_ctx = CheckContext(
            run=run,
            result_dir=ctx.result_dir,
            inputs=inputs[spec.id],
            profile=ctx.profile,
            thresholds=thresholds,
            data_root=ctx.data_root,
        )
        checks = spec.checks
        if public_only:
            checks = tuple(c for c in checks if rubric.entry(c.id).visibility is Visibility.VISIBLE)
        results.append(score_question(checks, check_ctx, rubric))
    return tuple(results)


def _check_data(profile: Profile, data_root: Path) -> None:
    for name in ("MNIST", "FashionMNIST"):
        if not (data_root / name / "raw").is_dir():
            raise DataError(
                f"{name} is not under {data_root}; run `dlgrade data` to place the real "
                f"datasets (or grade with --profile quick to use the committed slices)",
                path=data_root,
            )


def grade(
    source: Path,
    out_dir: Path,
    options: GradeOptions | None = None,
    *,
    executor: Executor | None = None,
    profiles: Profiles | None = None,
    progress: Callable[[str], None] | None = None,
    base: GradeReport | None = None,
) -> GradeReport:
    """Grade one submission and write ``out_dir/<name>/result.json`` with its artifacts.

    ``base``: an earlier report of the same submission, graded into the same ``out_dir``; the
    questions graded now (``options.only``) replace its own, the rest are kept with their
    artifacts (``dlgrade batch --regrade-question``).
    """
    options = options or GradeOptions()
    say = progress or (lambda _msg: None)
    started = time.monotonic()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    profiles = profiles or load_profiles(options.profiles_file)
    profile, choice = choose_profile(profiles, options.profile)
    if base is not None and base.run.profile.name != profile.name:
        raise MergeMismatchError(
            f"the stored result was graded with profile {base.run.profile.name}, this run would "
            f"use {profile.name}: one report cannot mix them"
        )
    data_root = profile.data_root(options.data_root or default_data_root())
    _check_data(profile, data_root)
    # Before anything runs: a machine that cannot confine student code stops the grading here.
    plan = sandbox.choose(
        options.sandbox, allow_unconfined=options.allow_unconfined, data_root=data_root
    )
    confinement = sandbox.describe(plan, profile.limits, options.sandbox)
    all_questions = load_questions()
    questions = tuple(q for q in all_questions if not options.only or q.id in options.only)
    rubric = load_rubric(options.rubric_file)
    all_thresholds = load_thresholds(options.thresholds_file)
    thresholds = all_thresholds.for_profile(profile.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dlgrade-") as tmp:
        scratch = Path(tmp)
        # Match against every question, so a notebook of an unselected one is not "unknown".
        submission = load_submission(source, scratch, all_questions)
        staging = out_dir / f".{submission.name}.partial-{secrets.token_hex(4)}"
        staging.mkdir(mode=0o700)  # a result is for its grader: no kernel uid may read it
        try:
            parallel = options.parallel or max(1, len(questions))
            say(f"grading {submission.name} with profile {choice.name} ({choice.reason})")
            ctx = _RunContext(
                submission=submission,
                profile=profile,
                data_root=data_root,
                scratch=scratch,
                result_dir=staging,
                threads=sandbox.thread_share(min(parallel, len(questions) or 1), options.cores),
                seed=options.seed,
                executor=executor or NbclientExecutor(),
                plan=plan,
            )
            inputs = {spec.id: _inputs(spec, ctx) for spec in questions}
            runs = asyncio.run(_run_all(questions, inputs, ctx, parallel))
            scored = _score_all(
                questions, runs, inputs, ctx, rubric, thresholds, options.public_only
            )
            run = SubmissionRun(
                submission=submission,
                profile=ProfileChoice(name=choice.name, reason=choice.reason),
                questions=tuple(runs),
                grader_version=GRADER_VERSION,
                started_at=started_at,
                seconds=time.monotonic() - started,
                output_dir=out_dir / submission.name,
                confinement=confinement,
            )
            result = grade_report(run, scored)
            if base is not None:
                now = {q.id for q in questions}
                result = merge_reports(base, result)
                kept = [r for r in result.run.questions if r.question not in now]
                _carry_artifacts(kept, out_dir / submission.name, staging)
            write_outputs(result, staging, rubric, all_thresholds)
            _swap_into_place(staging, out_dir / submission.name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return result


def write_outputs(
    result: GradeReport, folder: Path, rubric: Rubric, thresholds: Thresholds
) -> None:
    """Every format of one graded submission, into its (staging) result folder."""
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
    """Replace ``final`` by ``staging`` so one of the two complete folders is always there."""
    old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)
