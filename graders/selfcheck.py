"""The student's self-check: the public tests, the quick profile, feedback in the terminal.

Two doors to the same thing. ``dlgrade check PATH [--question q3]`` grades a notebook (or a
folder) with the quick profile and prints the visible tests only; hidden tests are counted,
never shown. It exits 0 when tests fail (failing tests are the feedback the student asked
for) and non-zero only when the grader itself could not run. From a notebook cell::

    from graders.selfcheck import check_me; check_me("q3")

runs that command in a separate process on the notebook's saved file: the student's kernel
never shares a process with the grader, and a crash or a runaway training loop in the graded
copy cannot take the student's session down with it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from graders.errors import GraderError
from graders.models import (
    CheckStatus,
    GradeReport,
    ProbeStatus,
    QuestionResult,
    QuestionRun,
    RunStatus,
    Visibility,
)
from graders.render.numbers import points, seconds

if TYPE_CHECKING:
    from graders.questions.api import QuestionSpec

PROFILE = "quick"
IN_GRADER_ENV = "DLGRADE_IN_GRADER"
"""Set in a grading kernel's environment: a ``check_me`` cell inside a graded copy does nothing."""
_MARK = {
    CheckStatus.PASSED: "PASS",
    CheckStatus.PARTIAL: "PART",
    CheckStatus.FAILED: "FAIL",
    CheckStatus.ERROR: "ERR ",
}
_RUN = {
    RunStatus.OK: "ran cleanly",
    RunStatus.CELL_ERRORS: "some cells raised errors",
    RunStatus.TIMEOUT: "TIMED OUT",
    RunStatus.KERNEL_DIED: "the kernel DIED",
    RunStatus.NOT_RUN: "not run",
}
QUICK_NOTE = (
    "This self-check runs the public tests on small slices of the data with short training. "
    "Your grade also counts the hidden tests, run with the full profile."
)


def _run_lines(run: QuestionRun) -> list[str]:
    ex = run.execution
    name = run.notebook.original_name if run.notebook else "no notebook"
    cells = (
        f" ({ex.cells_run}/{ex.cells_total} cells)" if ex.status is not RunStatus.NOT_RUN else ""
    )
    lines = [f"    {name}: {_RUN[ex.status]}{cells}, {seconds(ex.seconds)}"]
    if ex.message:
        lines.append(f"    {ex.message}")
    if run.probe.status is ProbeStatus.FAILED and run.probe.message not in ("", ex.message):
        lines.append(f"    the grader could not inspect the results: {run.probe.message}")
    return lines


def _question_lines(result: QuestionResult, run: QuestionRun | None) -> list[str]:
    shown = [c for c in result.checks if c.visibility is Visibility.VISIBLE]
    hidden = [c for c in result.checks if c.visibility is not Visibility.VISIBLE]
    score = sum(c.score for c in shown)
    top = sum(c.max_score for c in shown)
    lines = [f"  {result.question} {result.title}: {points(score)} / {points(top)} public points"]
    if run is not None and run.missing is not None:  # one line, not a failed test per check
        return [*lines, f"    {run.missing.message}"]
    lines += _run_lines(run) if run is not None else []
    for c in shown:
        lines.append(f"    [{_MARK[c.status]}] {c.title} ({points(c.score)}/{points(c.max_score)})")
        if c.status is not CheckStatus.PASSED:
            lines += [f"           {line}" for line in c.message.splitlines() if line.strip()]
            if c.hint:
                lines.append(f"           hint: {c.hint}")
    if hidden:
        worth = points(sum(c.max_score for c in hidden))
        tests = f"{len(hidden)} hidden test{'s' if len(hidden) != 1 else ''}"
        pts = f"{worth} point{'s' if worth != '1' else ''}"
        lines.append(f"    + {tests} worth {pts}, run when you submit")
    if result.manual:
        done = [m.id for m in result.manual if m.answered]
        todo = [m.id for m in result.manual if not m.answered]
        text = f"    free response: {len(done)} of {len(result.manual)} answered"
        lines.append(text + (f" (still to answer: {', '.join(todo)})" if todo else ""))
    return lines


def selfcheck_lines(
    report: GradeReport, *, only_found: bool = False, questions: tuple[str, ...] = ()
) -> list[str]:
    """The student's summary: visible tests in full, hidden tests as a count and their points.

    ``only_found`` leaves out questions without a notebook (a single notebook was checked);
    with ``questions``, load problems about other questions' notebooks are left out too.
    """
    run = report.run
    lines = [
        f"Self-check of {run.submission.name} (public tests, profile {run.profile.name}: "
        f"{run.profile.reason})"
    ]
    lines += [
        f"  ! {p.path + ': ' if p.path else ''}{p.message}"
        for p in run.submission.problems
        if not questions or p.question in questions
    ]
    for result in report.questions:
        qrun = run.question(result.question)
        if only_found and (qrun is None or qrun.notebook is None):
            continue
        lines += _question_lines(result, qrun)
    lines.append(QUICK_NOTE)
    return lines


def run_self_check(
    source: Path,
    *,
    questions: tuple[str, ...] = (),
    out_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> GradeReport:
    """Grade with the quick profile and print the student's summary; returns the full report."""
    # Deferred: ``check_me()`` imports this module inside the student's own kernel, which must
    # not load the grader (the grading itself runs in a separate process).
    from graders.config import GradeOptions
    from graders.pipeline import grade
    from graders.questions import load_questions

    known = [q.id for q in load_questions()]
    unknown = [q for q in questions if q not in known]
    if unknown:
        raise GraderError(f"unknown question {', '.join(unknown)}; choose from {', '.join(known)}")
    # A student checks their own notebook on their own machine: bubblewrap where it exists,
    # else their code runs as they do (the report says so), as it would in Jupyter anyway.
    options = GradeOptions(profile=PROFILE, only=questions, public_only=True, allow_unconfined=True)
    with tempfile.TemporaryDirectory(prefix="dlgrade-check-") as tmp:
        report = grade(source, out_dir or Path(tmp), options, progress=say)
    single = source.suffix.lower() == ".ipynb" and not questions
    say("\n".join(selfcheck_lines(report, only_found=single, questions=questions)))
    return report


def cli_check(args: argparse.Namespace) -> int:
    """``dlgrade check``: 0 whatever the tests say; grader errors propagate to ``cli.main``."""
    run_self_check(args.path, questions=tuple(args.question or ()), out_dir=args.out)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a notebook, a folder of notebooks or a .zip")
    parser.add_argument(
        "--question", action="append", metavar="QID", help="check only this question (repeatable)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the results here (default: thrown away)"
    )


def _ipython_namespace() -> Mapping[str, object]:
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def _as_notebook(value: object, cwd: Path) -> Path | None:
    if not isinstance(value, str | os.PathLike) or not str(value):
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else cwd / path
    return path if path.suffix.lower() == ".ipynb" and path.is_file() else None


def _spec(question: str) -> QuestionSpec | None:
    from graders.questions import load_questions  # deferred: see run_self_check

    return next((q for q in load_questions() if q.id == question), None)


def _template_name(question: str) -> str:
    spec = _spec(question)
    return f"{spec.notebook_stem}.ipynb" if spec else "my_notebook.ipynb"


def _by_name(question: str, cwd: Path) -> Path | None:
    """The kernel's folder is the notebook's in Jupyter: one notebook named for the question."""
    spec = _spec(question)
    if spec is None:
        return None
    exact = cwd / f"{spec.notebook_stem}.ipynb"
    if exact.is_file():
        return exact
    matches = sorted(p for p in cwd.glob("*.ipynb") if spec.name_matches(p.name))
    return matches[0] if len(matches) == 1 else None


def find_notebook(
    question: str,
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    user_ns: Mapping[str, object] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The notebook to check: the path given, else what the front end says is running.

    VS Code sets ``__vsc_ipynb_file__`` in the kernel, ipykernel ``__session__`` and
    jupyter_server ``JPY_SESSION_NAME`` (the notebook's path); failing all of them, the one
    notebook in the kernel's folder named for the question.
    """
    cwd = cwd or Path.cwd()
    if path is not None:
        found = _as_notebook(os.fspath(path), cwd)
        if found is None:
            raise FileNotFoundError(f"{path}: no such notebook (.ipynb) from {cwd}")
        return found.resolve()
    ns = _ipython_namespace() if user_ns is None else user_ns
    env = os.environ if environ is None else environ
    for value in (ns.get("__vsc_ipynb_file__"), ns.get("__session__"), env.get("JPY_SESSION_NAME")):
        found = _as_notebook(value, cwd)
        if found is not None:
            return found.resolve()
    found = _by_name(question, cwd)
    if found is None:
        raise FileNotFoundError(
            f"could not tell which notebook is running; pass its path, for example "
            f'check_me("{question}", "{_template_name(question)}") (searched from {cwd})'
        )
    return found.resolve()


def self_check_subprocess(notebook: Path, question: str) -> int:
    """Run ``dlgrade check`` in its own process, echoing its output line by line as it comes."""
    project = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "graders.cli", "check", str(notebook), "--question", question]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=notebook.parent,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
        return proc.wait()
    except KeyboardInterrupt:  # the notebook's stop button: stop the grader and its kernels too
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def check_me(question: str, path: str | os.PathLike[str] | None = None) -> None:
    """Self-check one question of the running notebook (its saved file) and print the result."""
    if os.environ.get(IN_GRADER_ENV):
        print("self-check skipped: this notebook is being graded")
        return
    notebook = find_notebook(question, path)
    print(f"Checking {question} in {notebook.name} as last saved (save first to include edits)")
    code = self_check_subprocess(notebook, question)
    if code != 0:
        print(f"The self-check could not run (exit code {code}); the lines above say why.")
