"""The student's self-check: the public tests, the quick profile, feedback in the terminal.

Two doors to the same thing. ``dlgrade check PATH [--question q3]`` (in the student kit:
``dlgrade-check PATH``) grades a notebook (or a folder) with the quick profile and prints the
visible tests only; hidden tests are counted, never shown. It exits 0 when tests fail (failing
tests are the feedback the student asked for) and non-zero only when the grader itself could
not run. From a notebook cell::

    from graders.selfcheck import check_me; check_me("q3")

runs that command in a separate process on the notebook's saved file: the student's kernel
never shares a process with the grader, and a crash or a runaway training loop in the graded
copy cannot take the student's session down with it.

In a checkout of the grader the expected values come from the reference, live; in the student
kit (``graders.kit``) from the values stored with it, on its fixed inputs, and the student's
code runs without a sandbox: it is their own code on their own machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from graders.errors import GraderError

if TYPE_CHECKING:
    from graders.models import GradeReport
    from graders.questions.api import QuestionSpec

PROFILE = "quick"
IN_GRADER_ENV = "DLGRADE_IN_GRADER"
"""Set in a grading kernel's environment: a ``check_me`` cell inside a graded copy does nothing."""
SUMMARY_FILE = "selfcheck.md"
"""What ``--out`` keeps beside result.json: the summary as Markdown."""


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
    import time
    from datetime import UTC, datetime

    from graders.config import GradeOptions
    from graders.evaluate import LiveBasis, prepare, run_submission, start_kernels
    from graders.kit.store import KitBasis, installed_kit, kit_options
    from graders.load import load_submission
    from graders.render.json_result import write_result_json
    from graders.selfcheck_report import summary_lines, summary_markdown

    started, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    kit = installed_kit()
    notes: tuple[str, ...] = ()
    if kit is not None:
        basis = KitBasis(kit)
        setup = prepare(kit_options(only=questions), basis=basis)
        whole = not questions and source.suffix.lower() != ".ipynb"  # a folder or a zip
        if basis.manifest.left_out and whole:
            left_out = ", ".join(basis.manifest.left_out)
            notes = (f"This kit does not check {left_out} yet; the grader does.",)
    else:
        # A student checks their own notebook on their own machine: bubblewrap where it exists,
        # else their code runs as they do (the report says so), as it would in Jupyter anyway.
        options = GradeOptions(
            profile=PROFILE, only=questions, public_only=True, allow_unconfined=True
        )
        setup = prepare(options, basis=LiveBasis())
    known = [q.id for q in setup.all_questions]
    unknown = [q for q in questions if q not in known]
    if unknown:
        raise GraderError(f"unknown question {', '.join(unknown)}; choose from {', '.join(known)}")
    with tempfile.TemporaryDirectory(prefix="dlgrade-check-") as tmp:
        scratch = Path(tmp) / "work"
        scratch.mkdir()
        with start_kernels(setup, scratch) as kernels:  # they boot while the notebooks are read
            submission = load_submission(source, scratch, setup.all_questions)
            result_dir = (out_dir or Path(tmp)) / submission.name
            result_dir.mkdir(parents=True, exist_ok=True)
            report = run_submission(
                setup,
                submission,
                kernels=kernels,
                result_dir=result_dir,
                output_dir=result_dir,
                progress=say,
                started=started,
                started_at=started_at,
            )
    single = source.suffix.lower() == ".ipynb" and not questions
    if out_dir is not None:
        write_result_json(report, result_dir / "result.json")
        markdown = summary_markdown(
            report, setup.rubric, only_found=single, questions=questions, notes=notes
        )
        (result_dir / SUMMARY_FILE).write_text(markdown, encoding="utf-8")
    lines = summary_lines(report, setup.rubric, only_found=single, questions=questions, notes=notes)
    say("\n".join(lines))
    return report


def cli_check(args: argparse.Namespace) -> int:
    """``dlgrade check``: 0 whatever the tests say; grader errors propagate to ``cli.main``."""
    run_self_check(args.path, questions=tuple(args.question or ()), out_dir=args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``dlgrade-check`` (the student kit's command) and ``python -m graders.selfcheck``."""
    parser = argparse.ArgumentParser(
        prog="dlgrade-check",
        description="Check your Assignment 1 notebooks with the public tests (quick profile).",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cli_check(args)
    except GraderError as exc:
        print(f"dlgrade-check: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dlgrade-check: interrupted", file=sys.stderr)
        return 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a notebook, a folder of notebooks or a .zip")
    parser.add_argument(
        "--question", action="append", metavar="QID", help="check only this question (repeatable)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="keep result.json, the probe's data and selfcheck.md here (default: thrown away)",
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
    """Run the self-check in its own process, echoing its output line by line as it comes."""
    project = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "graders.selfcheck", str(notebook), "--question", question]
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


if __name__ == "__main__":
    sys.exit(main())
