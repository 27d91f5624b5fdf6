"""A scripted stand-in for the kernel, so the steps around execution are tested in milliseconds.

Like httpx's ``MockTransport``: ``FakeExecutor`` implements the ``Executor`` protocol and plays
back, per question, what a real run would have produced: which of the student's cells raised
or timed out, whether the kernel died (and during which cell), whether the total time ran out,
and which files the probe left in its results file (``job.sandbox.probe_archive``), including
the bookkeeping files ``probe_runtime.Context.finish`` writes (``leave_probe_results``).
Scripts speak in the student's own cell indices; the fake translates them to positions in the
prepared notebook with ``job.prepared.origin``, the same map ``record.py`` uses the other way
round.
"""

from __future__ import annotations

import ast
import asyncio
import io
import json
import math
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
from nbformat import NotebookNode
from nbformat.v4 import new_output

from graders.config import Limits, Profile
from graders.execute import TIMEOUT_ENAME, CellOutcome, KernelJob, KernelRun, StartedKernel
from graders.kernel import source as kernel_source
from graders.models import (
    Artifact,
    ExecutionRecord,
    ProbeInputs,
    ProbeRecord,
    ProbeStatus,
    ProbeStepError,
    QuestionRun,
    RunStatus,
    SandboxMode,
)
from graders.probe import write_inputs
from graders.questions import load_questions
from graders.questions.api import CheckContext, ExpectationContext, ProbeContext, QuestionSpec
from graders.questions.expectations import LiveExpectations
from graders.sandbox import Sandbox

FileMaker = bytes | Callable[[Path], None]
"""A probe output file: its bytes, or a function that writes it at the given path."""


def npz_bytes(**arrays: Any) -> bytes:
    """An ``.npz`` as the probe runtime writes it (``np.savez`` of numeric arrays)."""
    buf = io.BytesIO()
    plain: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
    np.savez(buf, **plain)
    return buf.getvalue()


def pickled_npz_bytes() -> bytes:
    """An ``.npz`` whose array is an object array: loading it needs the unpickler."""
    buf = io.BytesIO()
    payload = np.empty(2, dtype=object)
    payload[0], payload[1] = {"not": "plain data"}, None
    np.savez(buf, payload=payload)
    return buf.getvalue()


def json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8")


def sparse_file(size: int) -> Callable[[Path], None]:
    """A file of ``size`` bytes that takes no disk space (for the size cap)."""

    def write(path: Path) -> None:
        with path.open("wb") as fh:
            fh.truncate(size)

    return write


def _content(maker: FileMaker) -> bytes:
    if isinstance(maker, bytes):
        return maker
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "made"
        maker(path)
        return path.read_bytes()


def leave_probe_results(
    archive: Path,
    files: Mapping[str, FileMaker],
    *,
    errors: Any = (),
    done: bool = True,
    step: str | None = None,
) -> None:
    """The file the probe runtime leaves on the host: an uncompressed zip of ``files``, its
    progress and, when it finished, ``probe_errors.json`` and ``probe_done.json``. ``errors``
    may be anything JSON (the grader must cope with what a kernel writes)."""
    members = {name: _content(maker) for name, maker in files.items()}
    if step is not None:
        members["progress.json"] = json_bytes({"step": step})
    if done:
        members["probe_errors.json"] = json_bytes(list(errors))
        members["probe_done.json"] = json_bytes({"written": sorted(files)})
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as packed:
        for name, data in members.items():
            packed.writestr(name, data)


@dataclass(frozen=True, kw_only=True)
class Script:
    """What the fake kernel does for one question. Cell numbers are the student's indices."""

    error_cells: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    """Cells that raise: index -> (ename, evalue)."""
    timeout_cells: tuple[int, ...] = ()
    """Cells interrupted by their own timeout; the next cell still runs."""
    died_at: int | None = None
    """The kernel dies while running this cell: later cells and the probe do not run."""
    total_timeout_at: int | None = None
    """The notebook's total time runs out during this cell; later cells do not run."""
    probe_files: Mapping[str, FileMaker] = field(default_factory=dict)
    """Packed into the probe's results file when the probe runs (name -> content)."""
    probe_errors: tuple[Mapping[str, str], ...] = ()
    """The probe runtime's ``probe_errors.json`` entries (step, kind, message)."""
    probe_finishes: bool = True
    """False: the probe stops early, no ``probe_errors.json``/``probe_done.json``."""
    progress_step: str | None = None
    """The step named in ``progress.json`` (the runtime writes it before every step)."""
    probe_status: str | None = None
    """Override the probe status the fake reports (default: ok, or timeout if unfinished)."""
    probe_message: str = ""
    raises: BaseException | None = None
    """Raise this from ``run`` instead of returning: a harness fault mid-batch."""


class FakeExecutor:
    """Plays back one ``Script`` per question; records every job it was given."""

    def __init__(
        self, scripts: Mapping[str, Script] | None = None, *, default: Script | None = None
    ):
        self.scripts = dict(scripts or {})
        self.default = default or Script()
        self.jobs: list[KernelJob] = []
        self.started: list[str] = []
        """The questions whose kernel was started before the submission was read."""
        self.stopped: list[str] = []
        """The questions whose started kernel no job took."""
        self.launched: list[tuple[str, SandboxMode]] = []
        """Every kernel started, in order: its question and the sandbox mode it was made for."""
        self.inputs_seen: dict[str, tuple[str, ...]] = {}
        """Per question: the files in ``probe_in`` when the probe ran (after write_probe_inputs)."""

    async def start(self, box: Sandbox, limits: Limits) -> StartedKernel:
        self.started.append(box.question)
        self.launched.append((box.question, box.mode))
        return StartedKernel(sandbox=box, limits=limits)

    async def stop(self, started: StartedKernel) -> None:
        self.stopped.append(started.sandbox.question)

    async def run(self, job: KernelJob) -> KernelRun:
        self.jobs.append(job)
        script = self.scripts.get(job.question, self.default)
        await asyncio.sleep(0)  # let other questions interleave, as real kernels would
        if script.raises is not None:
            raise script.raises
        nb = job.prepared.notebook
        outcomes, died_at, timed_out = _play_cells(nb, job.prepared.origin, script)
        if died_at is None:
            probe_status, probe_message = self._run_probe(job, script)
        else:
            probe_status = "kernel_died"
            probe_message = "the kernel had died before the probe could run"
        return KernelRun(
            notebook=nb,
            cells=tuple(outcomes),
            probe_status=probe_status,
            probe_message=probe_message,
            kernel_died_at=died_at,
            total_timed_out=timed_out,
            seconds=0.25,
        )

    def _run_probe(self, job: KernelJob, script: Script) -> tuple[str, str]:
        job.write_probe_inputs()
        box = job.sandbox
        self.inputs_seen[job.question] = tuple(sorted(p.name for p in box.probe_in.iterdir()))
        leave_probe_results(
            box.probe_archive,
            script.probe_files,
            errors=script.probe_errors,
            done=script.probe_finishes,
            step=script.progress_step,
        )
        if not script.probe_finishes:
            return script.probe_status or "timeout", script.probe_message or "the probe timed out"
        return script.probe_status or "ok", script.probe_message


def _play_cells(
    nb: NotebookNode, origin: tuple[int | None, ...], script: Script
) -> tuple[list[CellOutcome], int | None, bool]:
    _check_script(nb, origin, script)
    outcomes: list[CellOutcome] = []
    died_at: int | None = None
    timed_out = False
    for position, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if died_at is not None or timed_out:
            outcomes.append(CellOutcome(position=position, status="not_run"))
            continue
        student = origin[position]
        if student is not None and student == script.died_at:
            died_at = position
            outcomes.append(
                CellOutcome(position=position, status="error", ename="KernelDied", evalue="died")
            )
        elif student is not None and (
            student in script.timeout_cells or student == script.total_timeout_at
        ):
            timed_out = student == script.total_timeout_at
            outcomes.append(
                CellOutcome(position=position, status="timeout", ename=TIMEOUT_ENAME, evalue="")
            )
        elif student is not None and student in script.error_cells:
            ename, evalue = script.error_cells[student]
            traceback = [f"{ename}: {evalue}"]
            cell.outputs = [new_output("error", ename=ename, evalue=evalue, traceback=traceback)]
            outcomes.append(
                CellOutcome(
                    position=position,
                    status="error",
                    ename=ename,
                    evalue=evalue,
                    traceback="\n".join(traceback),
                )
            )
        else:
            outcomes.append(CellOutcome(position=position, status="ok"))
    return outcomes, died_at, timed_out


def _check_script(nb: NotebookNode, origin: tuple[int | None, ...], script: Script) -> None:
    """A script naming a markdown cell or a cell that does not exist is a mistake in the test."""
    code = {i for i, cell in zip(origin, nb.cells, strict=True) if cell.cell_type == "code"}
    named = set(script.error_cells) | set(script.timeout_cells)
    named |= {i for i in (script.died_at, script.total_timeout_at) if i is not None}
    if named - code:
        raise ValueError(f"the script names cells that are not code cells: {sorted(named - code)}")


# -- the kernel-side probe, run in this process -------------------------------------------------

PROBE_RUNTIME_SOURCE = kernel_source("probe_runtime")
PROBE_BOOKKEEPING = {"probe_errors.json", "probe_done.json", "progress.json"}


def probe_inputs(spec: QuestionSpec, seed: int = 0, root: Path = Path(".")) -> ProbeInputs:
    """The inputs ``spec`` draws for its probe from a generator seeded with ``seed``."""
    assert spec.make_inputs is not None
    rng = np.random.default_rng(seed)
    return spec.make_inputs(ProbeContext(profile=Profile(name="test"), data_root=root, rng=rng))


def full_spec(question: str) -> QuestionSpec:
    """The question as the grader runs it: its public spec joined to its reference side."""
    return next(q for q in load_questions() if q.id == question)


def probe_context(
    spec: QuestionSpec, namespace: Mapping[str, Any], root: Path, seed: int = 0
) -> CheckContext:
    """Run ``spec``'s probe on ``namespace`` in this process; the CheckContext of its artifacts,
    with the grader's live expectations for the inputs the probe was given."""
    inputs = probe_inputs(spec, seed, root)
    in_dir, out_dir = root / "probe_in", root / "artifacts" / spec.id
    write_inputs(inputs, in_dir)
    out_dir.mkdir(parents=True)
    runtime: dict[str, Any] = {"__name__": "test_probe_runtime"}
    exec(compile(PROBE_RUNTIME_SOURCE, "<probe runtime>", "exec"), runtime)
    question = dict(runtime)
    exec(compile(spec.probe_source, f"<probe {spec.id}>", "exec"), question)
    runtime["run_probe"](question["probe"], dict(namespace), str(out_dir), str(in_dir), 30.0)
    errors = json.loads((out_dir / "probe_errors.json").read_text(encoding="utf-8"))
    files = [p for p in sorted(out_dir.iterdir()) if p.name not in PROBE_BOOKKEEPING]
    record = ProbeRecord(
        question=spec.id,
        status=ProbeStatus.PARTIAL if errors else ProbeStatus.OK,
        artifacts=tuple(
            Artifact(
                name=p.stem,
                path=str(p.relative_to(root)),
                kind=p.suffix.lstrip("."),
                bytes=p.stat().st_size,
            )
            for p in files
        ),
        errors=tuple(ProbeStepError(**e) for e in errors),
    )
    run = QuestionRun(
        question=spec.id,
        title=spec.title,
        notebook=None,
        execution=ExecutionRecord(question=spec.id, status=RunStatus.OK),
        probe=record,
    )
    expectations = LiveExpectations(
        full_spec(spec.id).expectations,
        ExpectationContext(inputs=inputs, data_root=root, profile=Profile(name="test")),
    )
    return CheckContext(
        run=run,
        result_dir=root,
        inputs=inputs,
        profile=Profile(name="test"),
        thresholds={},
        data_root=root,
        expectations=expectations,
    )


CORRECT_SUBMISSION = (
    Path(__file__).resolve().parents[1] / "fixtures" / "submissions" / "all_correct"
)


def code_numbers(notebook: str) -> set[float]:
    """Every number the code cells of the correct submission's ``notebook`` write, as a student
    could pick it up instead of an argument: literals (without their sign) and ``np.pi``."""
    nb = nbformat.read(str(CORRECT_SUBMISSION / notebook), as_version=4)
    found: set[float] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Constant) and type(node.value) in (int, float):
                found.add(abs(float(node.value)))
            elif isinstance(node, ast.Attribute) and node.attr == "pi":
                found.add(math.pi)
    return found


def near_any(value: float, numbers: Iterable[float], rel: float) -> bool:
    return any(abs(value - n) <= rel * abs(n) for n in numbers)
