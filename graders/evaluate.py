"""The grade without its reports: execute -> probe -> check -> score, for a loaded submission.

``pipeline.grade`` wraps this with loading, the staged result folder and the reports; the
self-check, which has no renderer but its own summary (and so runs unchanged in the student
kit), calls it directly. Questions run in parallel kernels, each with its share of the cores.

A ``Basis`` says what the notebooks are held to: the questions, the probe's inputs and the
expected values. The grader's (``LiveBasis``) draws the inputs per submission and computes the
expectations from each question's reference side; the student kit's (``graders.kit.store``)
reads fixed inputs and the expectations ``dlgrade kit build`` computed for them. Everything
else, from the kernel to the points, is the same code.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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
from graders.errors import DataError
from graders.execute import Executor, KernelJob, NbclientExecutor
from graders.load import missing_notebook
from graders.models import (
    Confinement,
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
from graders.questions.api import (
    CheckContext,
    ExpectationContext,
    Expectations,
    ProbeContext,
    QuestionSpec,
)
from graders.questions.expectations import LiveExpectations
from graders.record import execution_record, free_responses
from graders.rubric import Rubric, load_rubric
from graders.score import grade_report, score_question


class Basis(Protocol):
    """What a grade holds the notebooks to: the questions, their probe inputs and expectations."""

    def questions(self) -> tuple[QuestionSpec, ...]: ...

    def inputs(self, spec: QuestionSpec, ctx: ProbeContext) -> ProbeInputs: ...

    def expectations(self, spec: QuestionSpec, ctx: ExpectationContext) -> Expectations: ...


class LiveBasis:
    """The grader's: every question with its reference side, inputs drawn from the seeded
    generator, expectations computed from the reference on those inputs."""

    def questions(self) -> tuple[QuestionSpec, ...]:
        return load_questions()

    def inputs(self, spec: QuestionSpec, ctx: ProbeContext) -> ProbeInputs:
        return ProbeInputs() if spec.make_inputs is None else spec.make_inputs(ctx)

    def expectations(self, spec: QuestionSpec, ctx: ExpectationContext) -> Expectations:
        return LiveExpectations(spec.expectations, ctx)


@dataclass(frozen=True, kw_only=True)
class Setup:
    """Everything decided before a notebook is read: a bad profile, missing data or a machine
    that cannot confine student code stops here, before anything runs."""

    options: GradeOptions
    basis: Basis
    profile: Profile
    choice: ProfileChoice
    data_root: Path
    plan: sandbox.SandboxPlan
    confinement: Confinement
    all_questions: tuple[QuestionSpec, ...]
    """Every question: a notebook of an unselected one is matched, not called unknown."""
    questions: tuple[QuestionSpec, ...]
    """The questions graded now (``options.only``)."""
    rubric: Rubric
    thresholds: Thresholds


def prepare(
    options: GradeOptions, *, basis: Basis | None = None, profiles: Profiles | None = None
) -> Setup:
    profiles = profiles or load_profiles(options.profiles_file)
    profile, choice = choose_profile(profiles, options.profile)
    data_root = profile.data_root(options.data_root or default_data_root(), options.fixtures_root)
    _check_data(data_root)
    plan = sandbox.choose(
        options.sandbox, allow_unconfined=options.allow_unconfined, data_root=data_root
    )
    basis = basis or LiveBasis()
    all_questions = basis.questions()
    return Setup(
        options=options,
        basis=basis,
        profile=profile,
        choice=choice,
        data_root=data_root,
        plan=plan,
        confinement=sandbox.describe(plan, profile.limits, options.sandbox),
        all_questions=all_questions,
        questions=tuple(q for q in all_questions if not options.only or q.id in options.only),
        rubric=load_rubric(options.rubric_file),
        thresholds=load_thresholds(options.thresholds_file),
    )


def _check_data(data_root: Path) -> None:
    for name in ("MNIST", "FashionMNIST"):
        if not (data_root / name / "raw").is_dir():
            raise DataError(
                f"{name} is not under {data_root}; run `dlgrade data` to place the real "
                f"datasets (or grade with --profile quick to use the committed slices)",
                path=data_root,
            )


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
    setup: Setup
    submission: Submission
    scratch: Path
    result_dir: Path
    threads: int
    executor: Executor
    meanwhile: Callable[[], None] | None = None
    """The caller's work for the time a kernel boots (``KernelJob.meanwhile``)."""

    @property
    def profile(self) -> Profile:
        return self.setup.profile

    @property
    def data_root(self) -> Path:
        return self.setup.data_root

    @property
    def seed(self) -> int:
        return self.setup.options.seed


class _Inputs:
    """The probe's inputs per question, seeded per submission and question, drawn once: while
    the question's kernel boots (``KernelJob.meanwhile``), or else when first asked for. The
    probe writes them after the student's cells; the checks reuse the same ones."""

    def __init__(self, ctx: _RunContext):
        self._ctx = ctx
        self._drawn: dict[str, ProbeInputs] = {}

    def get(self, spec: QuestionSpec) -> ProbeInputs:
        if spec.id not in self._drawn:
            ctx = self._ctx
            rng = np.random.default_rng(_probe_seed(ctx.submission, spec.id, ctx.seed))
            probe_ctx = ProbeContext(profile=ctx.profile, data_root=ctx.data_root, rng=rng)
            self._drawn[spec.id] = ctx.setup.basis.inputs(spec, probe_ctx)
        return self._drawn[spec.id]


def _meanwhile(spec: QuestionSpec, inputs: _Inputs, ctx: _RunContext) -> None:
    """While this question's kernel boots: its inputs, then the caller's work."""
    inputs.get(spec)
    if ctx.meanwhile is not None:
        ctx.meanwhile()


async def _run_question(
    spec: QuestionSpec, ref: NotebookRef, inputs: _Inputs, ctx: _RunContext
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
        plan=ctx.setup.plan,
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
        write_probe_inputs=lambda: probe.write_inputs(inputs.get(spec), box.probe_in),
        meanwhile=lambda: _meanwhile(spec, inputs, ctx),
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


async def _run_all(inputs: _Inputs, ctx: _RunContext, parallel: int) -> list[QuestionRun]:
    gate = asyncio.Semaphore(parallel)

    async def one(spec: QuestionSpec) -> QuestionRun:
        ref = ctx.submission.notebook_for(spec.id)
        if ref is None:
            return _not_run(spec, ctx.submission)
        async with gate:
            return await _run_question(spec, ref, inputs, ctx)

    return list(await asyncio.gather(*(one(spec) for spec in ctx.setup.questions)))


def _score_all(
    runs: list[QuestionRun], inputs: _Inputs, ctx: _RunContext
) -> tuple[QuestionResult, ...]:
    """The checks, in the grader's own process, after every kernel is gone."""
    setup = ctx.setup
    thresholds: Mapping[str, float] = setup.thresholds.for_profile(setup.profile.name)
    results = []
    for spec, run in zip(setup.questions, runs, strict=True):
        expected = ExpectationContext(
            inputs=inputs.get(spec), data_root=ctx.data_root, profile=ctx.profile
        )
        check_ctx = CheckContext(
            run=run,
            result_dir=ctx.result_dir,
            inputs=inputs.get(spec),
            profile=ctx.profile,
            thresholds=thresholds,
            data_root=ctx.data_root,
            expectations=setup.basis.expectations(spec, expected),
        )
        checks = spec.checks
        if setup.options.public_only:
            checks = tuple(
                c for c in checks if setup.rubric.entry(c.id).visibility is Visibility.VISIBLE
            )
        results.append(score_question(checks, check_ctx, setup.rubric))
    return tuple(results)


def run_submission(
    setup: Setup,
    submission: Submission,
    *,
    scratch: Path,
    result_dir: Path,
    output_dir: Path,
    executor: Executor | None = None,
    progress: Callable[[str], None] | None = None,
    started: float,
    started_at: str,
    meanwhile: Callable[[], None] | None = None,
) -> GradeReport:
    """Run and score one loaded submission; probe artifacts and executed notebooks land in
    ``result_dir`` (a staging folder that will become ``output_dir``, which the report names).
    ``started`` (``time.monotonic()``) and ``started_at`` (ISO, UTC) are when the grade began,
    so its time includes loading. ``meanwhile``: called (it must return at once) while the
    kernels boot, e.g. to get the renderers ready on a thread."""
    say = progress or (lambda _msg: None)
    questions = setup.questions
    parallel = setup.options.parallel or max(1, len(questions))
    say(f"grading {submission.name} with profile {setup.choice.name} ({setup.choice.reason})")
    ctx = _RunContext(
        setup=setup,
        submission=submission,
        scratch=scratch,
        result_dir=result_dir,
        threads=sandbox.thread_share(min(parallel, len(questions) or 1), setup.options.cores),
        executor=executor or NbclientExecutor(),
        meanwhile=meanwhile,
    )
    inputs = _Inputs(ctx)
    runs = asyncio.run(_run_all(inputs, ctx, parallel))
    scored = _score_all(runs, inputs, ctx)
    run = SubmissionRun(
        submission=submission,
        profile=ProfileChoice(name=setup.choice.name, reason=setup.choice.reason),
        questions=tuple(runs),
        grader_version=GRADER_VERSION,
        started_at=started_at,
        seconds=time.monotonic() - started,
        output_dir=output_dir,
        confinement=setup.confinement,
    )
    return grade_report(run, scored)
