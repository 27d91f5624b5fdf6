"""``dlgrade batch``: argument parsing over ``run_batch``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graders import sandbox
from graders.batch.options import BatchOptions
from graders.config import GradeOptions
from graders.errors import ConfigError
from graders.questions import load_questions
from graders.render.controls import terminal_field


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", type=Path, help="one subfolder, .ipynb or .zip per student")
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument(
        "--workers", type=int, default=None, help="submissions at once (default: the cores)"
    )
    parser.add_argument(
        "--state", type=Path, default=None, help="SQLite state file (default OUT/state.sqlite)"
    )
    parser.add_argument(
        "--regrade", nargs="+", default=[], metavar="NAME", help="grade these students again"
    )
    parser.add_argument("--regrade-all", action="store_true", help="grade every submission again")
    parser.add_argument(
        "--regrade-question",
        nargs="+",
        default=[],
        metavar="QID",
        help="regrade only these questions (of the --regrade students, else of all), keeping "
        "the stored results of the other questions",
    )
    parser.add_argument(
        "--profile", default="auto", help="auto (gpu if CUDA is visible, else cpu), cpu, gpu, quick"
    )
    parser.add_argument("--profiles", type=Path, default=None, help="a profiles TOML to use")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument(
        "--only", action="append", metavar="QID", help="grade only this question (repeatable)"
    )
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS", help="grade on this Dask scheduler"
    )
    parser.add_argument(
        "--manual-scores",
        type=Path,
        action="append",
        default=[],
        metavar="FILE.csv",
        help="merge TA scores for free-response answers (the CSV that manual_grading.html "
        "downloads) into the state and every output; repeatable",
    )
    parser.add_argument(
        "--roster",
        type=Path,
        default=None,
        metavar="ROSTER.csv",
        help="map submission names to students (a 'submission' column beside Canvas's Student, "
        "ID, SIS User ID, SIS Login ID, Section); also writes OUT/canvas_gradebook.csv",
    )
    parser.add_argument(
        "--canvas-assignment",
        default="Deep Learning Assignment 1",
        metavar="NAME",
        help="the Canvas gradebook's assignment column (use 'Name (id)' as Canvas exports it "
        "to update that assignment)",
    )
    sandbox.add_arguments(parser)


def _question_ids(asked: list[str], only: list[str]) -> tuple[str, ...]:
    """The questions to regrade: known ones, and among ``--only``'s when that is given."""
    known = only or [q.id for q in load_questions()]
    unknown = [q for q in asked if q not in known]
    if unknown:
        within = "this batch grades" if only else "the questions are"
        raise ConfigError(
            f"--regrade-question: no question {', '.join(unknown)} here; {within} "
            f"{', '.join(known)}"
        )
    return tuple(dict.fromkeys(asked))


def _names(names: tuple[str, ...]) -> str:
    """Names for the TA's terminal: a submission name is a student's folder or file name, and
    a roster's a TA's cell, so each is shown on one line without its control characters (an
    ESC sequence would retitle or clear the terminal, a newline forge a line)."""
    return ", ".join(terminal_field(name) for name in names)


def run(args: argparse.Namespace) -> int:
    options = BatchOptions(
        folder=args.folder,
        out=args.out,
        workers=args.workers,
        state=args.state,
        regrade=tuple(args.regrade),
        regrade_all=args.regrade_all,
        regrade_questions=_question_ids(args.regrade_question, args.only or []),
        scheduler=args.scheduler,
        manual_scores=tuple(args.manual_scores),
        roster=args.roster,
        canvas_assignment=args.canvas_assignment,
        grade=GradeOptions(
            profile=args.profile,
            profiles_file=args.profiles,
            data_root=args.data_root,
            only=tuple(args.only or ()),
            sandbox=args.sandbox,
            allow_unconfined=args.allow_unconfined,
        ),
    )
    if args.scheduler is None:  # a machine that cannot confine student code stops here, once
        sandbox.choose(args.sandbox, allow_unconfined=args.allow_unconfined)
    from graders.batch.runner import run_batch  # SQLite, Dask: only when run

    result = run_batch(options, stream=sys.stderr)
    print(
        f"{result.total} submissions: {result.graded} graded now, {result.crashed} crashed, "
        f"{result.total - result.graded - result.crashed} unchanged"
    )
    for label, path in result.files.items():
        print(f"  {label}: {terminal_field(path)}")
    if args.manual_scores:
        print(
            f"  manual scores: {result.manual_merged} taken from {len(args.manual_scores)} file(s)"
        )
    for refused in result.refused:
        print(f"dlgrade: not graded: {terminal_field(refused)}", file=sys.stderr)
    if result.unrostered:
        names = _names(result.unrostered)
        print(f"dlgrade: not in the roster (left out of the Canvas gradebook): {names}")
    if result.unsubmitted:
        names = _names(result.unsubmitted)
        print(f"dlgrade: no graded submission (Canvas grade left empty): {names}")
    for problem in result.problems:
        print(f"dlgrade: row not taken: {terminal_field(problem)}", file=sys.stderr)
    if result.problems:
        print(
            f"dlgrade: {len(result.problems)} row(s) not taken; everything else was, and every "
            "output is written (fix those rows and rerun with the same files: rows already "
            "merged are taken again unchanged)",
            file=sys.stderr,
        )
        return ConfigError.exit_code
    return 0
