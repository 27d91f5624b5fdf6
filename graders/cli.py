"""The ``dlgrade`` command: thin argument parsing over the library; one exit code per error kind."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from graders import calibrate as calibrate_command
from graders import data as data_command
from graders import selfcheck
from graders.errors import GraderError
from graders.pipeline import GradeOptions, grade
from graders.render.summary import print_report_summary


def _grade(args: argparse.Namespace) -> int:
    options = GradeOptions(
        profile=args.profile,
        profiles_file=args.profiles,
        data_root=args.data_root,
        only=tuple(args.only or ()),
        parallel=args.parallel,
    )
    worst = 0
    for source in args.submissions:
        result = grade(source, args.out, options, progress=lambda m: print(m, flush=True))
        print_report_summary(result)
        worst = max(worst, 0)
    return worst


def _reference(args: argparse.Namespace) -> int:
    from graders.reference_run import run_reference

    return run_reference(
        data_root=args.data_root, q3_epochs=args.q3_epochs, q4_epochs=args.q4_epochs
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlgrade", description="Autograder for Deep Learning Assignment 1."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_data = sub.add_parser("data", help="place the real MNIST and Fashion-MNIST (offline)")
    data_command.add_arguments(p_data)
    p_data.set_defaults(func=data_command.run)

    p_ref = sub.add_parser("reference", help="run the reference solutions end to end")
    p_ref.add_argument("--data-root", type=Path, default=None)
    p_ref.add_argument("--q3-epochs", type=int, default=25)
    p_ref.add_argument("--q4-epochs", type=int, default=3)
    p_ref.set_defaults(func=_reference)

    p_grade = sub.add_parser("grade", help="grade submissions (folder, .ipynb or .zip)")
    p_grade.add_argument("submissions", nargs="+", type=Path)
    p_grade.add_argument("--out", type=Path, default=Path("grading-output"), help="results folder")
    p_grade.add_argument(
        "--profile", default="auto", help="auto (gpu if CUDA is visible, else cpu), cpu, gpu, quick"
    )
    p_grade.add_argument(
        "--profiles", type=Path, default=None, help="a profiles TOML to use instead"
    )
    p_grade.add_argument("--data-root", type=Path, default=None)
    p_grade.add_argument(
        "--only", action="append", metavar="QID", help="grade only this question (repeatable)"
    )
    p_grade.add_argument(
        "--parallel", type=int, default=None, help="kernels at once (default: one per question)"
    )
    p_grade.set_defaults(func=_grade)

    p_check = sub.add_parser(
        "check", help="student self-check: the public tests with the quick profile"
    )
    selfcheck.add_arguments(p_check)
    p_check.set_defaults(func=selfcheck.cli_check)

    p_cal = sub.add_parser(
        "calibrate", help="set a profile's pass thresholds from reference runs over seeds"
    )
    calibrate_command.add_arguments(p_cal)
    p_cal.set_defaults(func=calibrate_command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GraderError as exc:
        print(f"dlgrade: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            "dlgrade: interrupted; finished results are kept, nothing half-written", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
