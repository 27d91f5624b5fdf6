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
import contextlib
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
from graders.errors import DataError, SandboxError
from graders.execute import Executor, KernelJob, NbclientExecutor, StartedKernel
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
    """Everything decided before a notebook is read: a bad profile or missing data stops here,
    and so does a machine that cannot confine student code, unless bubblewrap's self-test is
    still running (it then stops at ``StartedKernels.confirm``, still before any cell runs)."""

    options: GradeOptions
    basis: Basis
    profile: Profile
    choice: ProfileChoice
    data_root: Path
    sandboxing: sandbox.PlanChoice
    """The sandbox's plan; kernels may launch under ``likely`` while its self-test runs."""
    all_questions: tuple[QuestionSpec, ...]
    """Every question: a notebook of an unselected one is matched, not called unknown."""
    questions: tuple[QuestionSpec, ...]
    """The questions graded now (``options.only``)."""
    rubric: Rubric
    thresholds: Thresholds

    @property
    def plan(self) -> sandbox.SandboxPlan:
        """The plan every kernel runs under (waits for the sandbox's self-test)."""
        return self.sandboxing.settle()

    @property
    def confinement(self) -> Confinement:
        return sandbox.describe(self.plan, self.profile.limits, self.options.sandbox)


def prepare(
    options: GradeOptions, *, basis: Basis | None = None, profiles: Profiles | None = None
) -> Setup:
    profiles = profiles or load_profiles(options.profiles_file)
    profile, choice = choose_profile(profiles, options.profile)
    data_root = profile.data_root(options.data_root or default_data_root(), options.fixtures_root)
    _check_data(data_root)
    sandboxing = sandbox.choose_ahead(
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
        sandboxing=sandboxing,
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
    result_dir: Path
    kernels: StartedKernels

    @property
    def executor(self) -> Executor:
        return self.kernels.executor

    @property
    def threads(self) -> int:
        return self.kernels.threads

    @property
    def profile(self) -> Profile:
        return self.setup.profile

    @property
    def data_root(self) -> Path:
        return self.setup.data_root

    @property
    def seed(self) -> int:
        return self.setup.options.seed


def _inputs(spec: QuestionSpec, ctx: _RunContext) -> ProbeInputs:
    """The probe's inputs, seeded per submission and question; the checks reuse the same ones."""
    rng = np.random.default_rng(_probe_seed(ctx.submission, spec.id, ctx.seed))
    probe_ctx = ProbeContext(profile=ctx.profile, data_root=ctx.data_root, rng=rng)
    return ctx.setup.basis.inputs(spec, probe_ctx)


def _job(
    spec: QuestionSpec,
    ref: NotebookRef,
    student_nb: nbformat.NotebookNode,
    box: sandbox.Sandbox,
    started: StartedKernel | None,
    inputs: ProbeInputs,
    ctx: _RunContext,
) -> KernelJob:
    """The notebook the kernel runs (the student's, with the grader's cells) and its probe."""
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
        files_from=box.kernel_paths.probe_in,
        files=sandbox.deliver(box, {ref.path.name: ref.path}),
    )
    return KernelJob(
        question=spec.id,
        prepared=inject.prepare(student_nb, parameters=parameters, preamble=preamble),
        sandbox=box,
        limits=ctx.profile.limits,
        probe_source=probe.cell_source(
            spec, box, step_seconds=max(1.0, ctx.profile.limits.probe_timeout_s / 2)
        ),
        write_probe_inputs=lambda: probe.write_inputs(inputs, box.probe_in),
        started=started,
    )


async def _run_question(
    spec: QuestionSpec, ref: NotebookRef, inputs: ProbeInputs, ctx: _RunContext
) -> QuestionRun:
    started = ctx.kernels.take(spec.id)
    box = started.sandbox if started is not None else ctx.kernels.sandbox_for(spec)
    try:
        student_nb = nbformat.read(str(ref.path), as_version=4)
        job = _job(spec, ref, student_nb, box, started, inputs, ctx)
        run = await ctx.executor.run(job)
    except BaseException:
        if started is not None:  # a no-op for one that ``run`` ended already
            await ctx.executor.stop(started)
        sandbox.cleanup(box)
        raise
    try:
        execution = execution_record(
            spec.id, run, job.prepared, ctx.result_dir, threads=ctx.threads
        )
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

    return list(await asyncio.gather(*(one(spec) for spec in ctx.setup.questions)))


def _expectations(inputs: dict[str, ProbeInputs], ctx: _RunContext) -> dict[str, Expectations]:
    """Each question's expected values for its inputs, the ``ahead`` ones already computing
    (on threads of the grader, while the kernels run the notebooks)."""
    found = {}
    for spec in ctx.setup.questions:
        expected = ExpectationContext(
            inputs=inputs[spec.id], data_root=ctx.data_root, profile=ctx.profile
        )
        found[spec.id] = ctx.setup.basis.expectations(spec, expected)
        found[spec.id].prefetch()
    return found


def _score_all(
    runs: list[QuestionRun],
    inputs: dict[str, ProbeInputs],
    expectations: dict[str, Expectations],
    ctx: _RunContext,
) -> tuple[QuestionResult, ...]:
    """The checks, in the grader's own process, after every kernel is gone."""
    setup = ctx.setup
    thresholds: Mapping[str, float] = setup.thresholds.for_profile(setup.profile.name)
    results = []
    for spec, run in zip(setup.questions, runs, strict=True):
        check_ctx = CheckContext(
            run=run,
            result_dir=ctx.result_dir,
            inputs=inputs[spec.id],
            profile=ctx.profile,
            thresholds=thresholds,
            data_root=ctx.data_root,
            expectations=expectations[spec.id],
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
    kernels: StartedKernels,
    result_dir: Path,
    output_dir: Path,
    progress: Callable[[str], None] | None = None,
    started: float,
    started_at: str,
) -> GradeReport:
    """Run and score one loaded submission in ``kernels`` (started before it was read,
    ``start_kernels``); probe artifacts and executed notebooks land in ``result_dir`` (a staging
    folder that will become ``output_dir``, which the report names). ``started``
    (``time.monotonic()``) and ``started_at`` (ISO, UTC) are when the grade began, so its time
    includes loading."""
    say = progress or (lambda _msg: None)
    say(f"grading {submission.name} with profile {setup.choice.name} ({setup.choice.reason})")
    ctx = _RunContext(setup=setup, submission=submission, result_dir=result_dir, kernels=kernels)
    kernels.stop_unused(submission)  # a question without a notebook needs no kernel
    inputs = {spec.id: _inputs(spec, ctx) for spec in setup.questions}  # while kernels boot
    expectations = _expectations(inputs, ctx)
    kernels.confirm()  # the sandbox's self-test has passed before any notebook is handed over
    runs = kernels.runner.run(_run_all(inputs, ctx, kernels.parallel))
    scored = _score_all(runs, inputs, expectations, ctx)
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


class StartedKernels:
    """A kernel per graded question, launched before the submission is read: each boots in its
    own process (about 0.7 s of Python, IPython and ipykernel imports) while the grader reads
    and matches the notebooks, draws the probe's inputs and gets its renderers ready, which
    otherwise came before it, one after the other. Nothing of the submission is in a kernel
    until its job hands the notebook over (``sandbox.deliver``); no student code runs before.

    At most ``parallel`` kernels are started ahead (``--parallel``); the others start when a
    kernel slot is free. One event loop serves every step (``asyncio.Runner``), so the kernels
    started here are run by the same loop. Leaving the ``with`` stops every kernel no job took.
    """

    def __init__(self, setup: Setup, scratch: Path, executor: Executor):
        self.setup = setup
        self.scratch = scratch
        self.executor = executor
        questions = setup.questions
        self.parallel = setup.options.parallel or max(1, len(questions))
        self.threads = sandbox.thread_share(
            min(self.parallel, len(questions) or 1), setup.options.cores
        )
        self.runner = asyncio.Runner()
        self._waiting: dict[str, StartedKernel] = {}
        self._plan = setup.sandboxing.likely
        self._confirmed = False

    def sandbox_for(self, spec: QuestionSpec) -> sandbox.Sandbox:
        """A new kernel sandbox for ``spec`` (nothing of the submission in it yet)."""
        profile = self.setup.profile
        return sandbox.prepare(
            plan=self._plan,
            question=spec.id,
            scratch=self.scratch,
            limits=profile.limits,
            threads=self.threads,
            device=profile.device,
            data_root=self.setup.data_root,
        )

    async def _start(self, questions: tuple[QuestionSpec, ...]) -> None:
        for spec in questions:
            box = self.sandbox_for(spec)
            try:
                self._waiting[spec.id] = await self.executor.start(box, self.setup.profile.limits)
            except BaseException:
                sandbox.cleanup(box)
                raise

    def confirm(self) -> None:
        """Wait for the sandbox's plan to be settled (``sandbox.PlanChoice``): call it before
        any job. Kernels launched under a plan the self-test did not confirm are stopped and
        launched again under the plan chosen instead; SandboxError where there is none."""
        plan = self.setup.plan
        if plan != self._plan:
            relaunch = tuple(q for q in self.setup.questions if q.id in self._waiting)
            self.runner.run(self._stop(list(self._waiting)))
            self._plan = plan
            self.runner.run(self._start(relaunch))
        self._confirmed = True

    def take(self, question: str) -> StartedKernel | None:
        """The started kernel of ``question``, for its job (None: start one now)."""
        if not self._confirmed:
            raise RuntimeError("a job before the sandbox's plan was confirmed (`confirm`)")
        return self._waiting.pop(question, None)

    def stop_unused(self, submission: Submission) -> None:
        """Stop the kernels of the questions ``submission`` has no notebook for."""
        unused = [q for q in self._waiting if submission.notebook_for(q) is None]
        if unused:
            self.runner.run(self._stop(unused))

    async def _stop(self, questions: list[str]) -> None:
        for question in questions:
            started = self._waiting.pop(question)
            try:
                await self.executor.stop(started)
            finally:
                sandbox.cleanup(started.sandbox)

    def __enter__(self) -> StartedKernels:
        self.runner.__enter__()
        try:
            self.runner.run(self._start(self.setup.questions[: self.parallel]))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self._waiting:
                self.runner.run(self._stop(list(self._waiting)))
        finally:
            self.runner.close()
            with contextlib.suppress(SandboxError):  # the self-test's process is reaped
                self.setup.sandboxing.settle()


def start_kernels(setup: Setup, scratch: Path, executor: Executor | None = None) -> StartedKernels:
    """Start a kernel per graded question now (use as ``with``): see ``StartedKernels``."""
    return StartedKernels(setup, scratch, executor or NbclientExecutor())
