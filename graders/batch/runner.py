"""Grade a folder of submissions in parallel, resumably: claim, grade, commit, repeat.

The driver process owns the state file; workers (local processes or Dask workers) only grade
and return plain data. A submission is claimed in the state file before it is sent out and its
result committed as soon as it comes back, so an interrupted batch resumes where it stopped,
and two batches on the same state file split the work instead of doing it twice.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, TextIO

from graders import GRADER_VERSION
from graders.batch.csv_input import InputProblem
from graders.batch.discover import Discovery, discover
from graders.batch.manual_scores import parts_of, read_manual_scores
from graders.batch.options import BatchOptions
from graders.batch.progress import Progress
from graders.batch.reports import collect, refresh_result_folders, write_batch_reports
from graders.batch.roster import read_roster
from graders.batch.similarity import Answer
from graders.batch.store import WORKER_DIED, Row, RowStatus, Store, owner_token
from graders.batch.tasks import GradeTask, TaskOutcome, run_task
from graders.config import CONFIG_DIR, GradeOptions
from graders.questions import load_questions
from graders.render.answers import remember as remember_rendered

WAIT_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    total: int
    graded: int
    """Graded by this run (the rest were unchanged, or graded by another batch)."""
    crashed: int
    files: dict[str, Path]
    manual_merged: int = 0
    """TA scores taken from ``--manual-scores`` files by this run."""
    problems: tuple[InputProblem, ...] = ()
    """Rows of those files (and of the roster) that were not taken, each with its file, line
    and reason."""
    unrostered: tuple[str, ...] = ()
    """Graded submissions the roster does not list (left out of the Canvas gradebook)."""
    unsubmitted: tuple[str, ...] = ()
    """Roster students without a graded submission (their Canvas grade is left empty)."""
    refused: tuple[str, ...] = ()
    """``name (file): why`` for each entry not graded because of its name (a crashed row)."""


class Pool(Protocol):
    """Where grading runs: local processes or a Dask cluster."""

    slots: int

    def submit(self, task: GradeTask) -> object: ...

    def wait(self, handles: Iterable[object], timeout: float) -> list[object]: ...

    def outcome(self, handle: object, name: str) -> TaskOutcome | None:
        """The task's outcome; None when its worker died (the claim is released, maybe retried)."""
        ...

    def close(self, *, cancel: bool) -> None: ...


def _file_digest(path: Path | None, default: Path) -> str:
    source = path or default
    return hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else "absent"


def grading_fingerprint(options: GradeOptions) -> str:
    """Everything besides the files that changes a result: version, profile, options, configs."""
    settings = {
        "grader_version": GRADER_VERSION,
        "profile": options.profile or "auto",
        "only": sorted(options.only),
        "seed": options.seed,
        "public_only": options.public_only,
        "data_root": str(options.data_root or ""),
        "profiles": _file_digest(options.profiles_file, CONFIG_DIR / "profiles.toml"),
        "rubric": _file_digest(options.rubric_file, CONFIG_DIR / "rubric.toml"),
        "thresholds": _file_digest(options.thresholds_file, CONFIG_DIR / "thresholds.toml"),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def kernel_plan(workers: int, questions: int, cores: int | None = None) -> tuple[int, int]:
    """(kernels per submission, cores per submission) so that workers x kernels fit the cores."""
    cores = cores or os.cpu_count() or 1
    per_submission = max(1, cores // max(1, workers))
    return max(1, min(questions, per_submission)), per_submission


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def _child_threads(cores: int) -> Iterator[None]:
    """Workers spawned inside inherit ``cores`` threads for their own numpy/torch (the checks
    run there): two workers each with the machine's thread count ran slower than one."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(cores) for k in _THREAD_VARS})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LocalPool:
    """Worker processes on this machine (spawned: no forked torch or kernel state).

    Each slot is an executor of one process of its own, not one slot of a shared pool: when a
    worker process dies (killed for memory, a crash in C), ``ProcessPoolExecutor`` fails every
    future it holds with ``BrokenProcessPool``. Shared, one death released every submission in
    flight and counted an attempt against each, so two deaths recorded innocent classmates as
    crashed. Alone in its executor, the one submission whose worker died is the one whose
    future fails, and the slot gets a fresh executor.
    """

    def __init__(
        self, workers: int, cores: int, function: Callable[[GradeTask], object] = run_task
    ):
        self.slots = workers
        self._cores = cores
        self._function = function
        self._executors: list[cf.ProcessPoolExecutor | None] = [None] * workers
        self._busy: dict[cf.Future[object], int] = {}

    def _executor(self, slot: int) -> cf.ProcessPoolExecutor:
        executor = self._executors[slot]
        if executor is None:
            executor = cf.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            self._executors[slot] = executor
        return executor

    def _renew(self, slot: int) -> None:
        executor = self._executors[slot]
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self._executors[slot] = None

    def submit(self, task: GradeTask) -> object:
        slot = next(i for i in range(self.slots) if i not in self._busy.values())
        with _child_threads(self._cores):  # processes start on demand, inside submit
            try:
                future = self._executor(slot).submit(self._function, task)
            except BrokenProcessPool:
                self._renew(slot)
                future = self._executor(slot).submit(self._function, task)
        self._busy[future] = slot
        return future

    def wait(self, handles: Iterable[object], timeout: float) -> list[object]:
        futures = [h for h in handles if isinstance(h, cf.Future)]
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def outcome(self, handle: object, name: str) -> TaskOutcome | None:
        assert isinstance(handle, cf.Future)
        slot = self._busy.pop(handle)
        try:
            result = handle.result()
        except BrokenProcessPool:  # this slot's own process died, grading ``name`` alone
            self._renew(slot)
            return None
        assert isinstance(result, TaskOutcome)
        return result

    def close(self, *, cancel: bool) -> None:
        for executor in self._executors:
            if executor is not None:
                executor.shutdown(wait=not cancel, cancel_futures=cancel)


def _record(store: Store, outcome: TaskOutcome) -> RowStatus:
    if outcome.ok:
        store.finish(
            outcome.name,
            result_json=outcome.result_json,
            seconds=outcome.seconds,
            grader_version=outcome.grader_version,
            profile=outcome.profile,
            score=outcome.score,
            max_score=outcome.max_score,
            worker=outcome.worker,
        )
        return RowStatus.DONE
    store.crash(outcome.name, error=outcome.error, seconds=outcome.seconds, worker=outcome.worker)
    return RowStatus.CRASHED


def _make_pool(options: BatchOptions, workers: int) -> Pool:
    if options.scheduler:
        from graders.batch.dask_runner import DaskPool  # deferred: dask costs ~1 s to import

        return DaskPool(options.scheduler, options.grade)
    return LocalPool(workers, kernel_plan(workers, 1)[1])


def _question_count(options: GradeOptions) -> int:
    return len([q for q in load_questions() if not options.only or q.id in options.only])


@dataclass
class _Graded:
    graded: int = 0
    crashed: int = 0
    answers: dict[str, tuple[Answer, ...]] = field(default_factory=dict)
    """What the workers read for the similarity scan, by submission."""


def _grade_pending(
    store: Store, discovery: Discovery, options: BatchOptions, stream: TextIO | None
) -> _Graded:
    owner = owner_token()
    rows = {r.name: r for r in store.rows([e.name for e in discovery.entries])}
    todo = deque(e for e in discovery.entries if rows[e.name].status is RowStatus.PENDING)
    workers = options.workers or os.cpu_count() or 1
    pool = _make_pool(options, workers)
    kernels, cores = kernel_plan(pool.slots, _question_count(options.grade))
    grade_options = options.grade
    if grade_options.parallel is None and not options.scheduler:
        grade_options = replace(grade_options, parallel=kernels)
    progress = Progress(total=len(discovery.entries), todo=len(todo), stream=stream)
    inflight: dict[object, str] = {}
    entries = {e.name: e for e in discovery.entries}
    done = _Graded()
    try:
        while todo or inflight:
            while todo and len(inflight) < pool.slots:
                entry = todo.popleft()
                if not store.claim(entry.name, owner):
                    progress.todo -= 1  # another batch took it
                    continue
                row = store.row(entry.name)
                partial = row.partial if row is not None else ()
                task = GradeTask(
                    name=entry.name,
                    source=entry.source,
                    out_dir=options.out,
                    options=grade_options,
                    cores=None if options.scheduler else cores,
                    questions=partial,
                    base_json=(row.result_json or "") if partial and row is not None else "",
                )
                inflight[pool.submit(task)] = entry.name
            for handle in pool.wait(list(inflight), WAIT_SECONDS):
                name = inflight.pop(handle)
                outcome = pool.outcome(handle, name)
                if outcome is None:
                    status = store.release(name, error=WORKER_DIED)
                    if status is RowStatus.PENDING:
                        todo.append(entries[name])  # claimed again, so the attempt counts
                        continue
                else:
                    status = _record(store, outcome)
                    if outcome.answers is not None:
                        done.answers[name] = outcome.answers
                    remember_rendered(outcome.rendered)  # for the manual-grading page
                done.graded += status is RowStatus.DONE
                done.crashed += status is RowStatus.CRASHED
                progress.update(name, status)
    except BaseException:
        for name in inflight.values():
            store.release(name)
        pool.close(cancel=True)
        progress.close()
        raise
    pool.close(cancel=False)
    progress.close()
    return done


def _wait_for_others(store: Store, names: list[str], owner: str, stream: TextIO | None) -> None:
    """Another batch on the same state file still grades some of ours: its results belong in
    the reports we write, so wait for them (each is committed the moment it finishes)."""
    said = False
    while busy := store.running_elsewhere(names, owner):
        if not said and stream is not None:
            stream.write(f"waiting for {len(busy)} submissions another batch is grading\n")
            said = True
        time.sleep(WAIT_SECONDS)


def _remove_leftovers(out: Path) -> None:
    """Staging folders of a killed run (``.name.partial-*``, ``.name.old-*``): never in place,
    so never read, but litter; removed only when no batch on this state file is grading."""
    for path in out.glob(".*"):
        if path.is_dir() and (".partial-" in path.name or ".old-" in path.name):
            shutil.rmtree(path, ignore_errors=True)


def run_batch(options: BatchOptions, *, stream: TextIO | None = None) -> BatchResult:
    """Grade every changed submission of ``options.folder``; write the batch's reports."""
    roster, roster_problems = read_roster(options.roster) if options.roster else (None, [])
    discovery = discover(options.folder, options.reserved)
    options.out.mkdir(parents=True, exist_ok=True)
    names = [e.name for e in discovery.entries]
    with Store(options.state_path) as store:
        store.sync(
            discovery.entries,
            grading_fingerprint(options.grade),
            names if options.regrade_all else options.regrade,
            options.regrade_questions,
        )
        done = _grade_pending(store, discovery, options, stream)
        _wait_for_others(store, names, owner_token(), stream)
        rows = store.rows(names)
        merged, problems = _merge_manual_scores(store, rows, discovery, options)
        if not store.running():
            _remove_leftovers(options.out)
        manual = store.manual_scores()
        collected = collect(rows, discovery, manual)
        refresh_result_folders(store, rows, collected.reports, manual, options)
    files = write_batch_reports(rows, discovery, options, collected, roster, done.answers)
    graded_names = {r.run.submission.name for r in collected.reports}
    listed = {e.submission for e in roster.entries} if roster else set()
    return BatchResult(
        total=len(names),
        graded=done.graded,
        crashed=done.crashed,
        files=files,
        manual_merged=merged,
        problems=(*roster_problems, *problems),
        unrostered=tuple(sorted(graded_names - listed)) if roster else (),
        unsubmitted=tuple(
            e.student or e.student_id
            for e in (roster.entries if roster else ())
            if e.submission not in graded_names
        ),
        refused=tuple(f"{r.label}: {r.reason}" for r in discovery.refused),
    )


def _merge_manual_scores(
    store: Store, rows: list[Row], discovery: Discovery, options: BatchOptions
) -> tuple[int, list[InputProblem]]:
    """Take every good row of the ``--manual-scores`` files into the state; list the rest."""
    if not options.manual_scores:
        return 0, []
    graded = collect(rows, discovery).reports
    parts = parts_of(graded)
    ungraded = {r.name for r in rows} - set(parts)
    merged, problems = 0, []
    for path in options.manual_scores:
        taken, bad = read_manual_scores(path, parts, ungraded)
        merged += store.save_manual_scores(taken)
        problems += bad
    return merged, problems
