"""The ``dlgrade`` command: thin argument parsing over the library; one exit code per error kind.

The subcommands beside ``grade`` and ``check`` import their modules only when chosen (batch pulls
in SQLite and Dask, ``reference`` and ``kit`` the training code), so ``dlgrade --help`` stays
quick.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from graders import calibrate as calibrate_command
from graders import data as data_command
from graders import sandbox, selfcheck
from graders.config import GradeOptions
from graders.errors import GraderError, SubmissionError
from graders.pipeline import grade
from graders.render.controls import terminal_field


def _say(message: str) -> None:
    """A progress line ("grading NAME ..."): the name is a student's folder or file name, so
    its line breaks and escape sequences must not reach the terminal."""
    print(terminal_field(message), flush=True)


def _grade(args: argparse.Namespace) -> int:
    options = GradeOptions(
        profile=args.profile,
        profiles_file=args.profiles,
        data_root=args.data_root,
        only=tuple(args.only or ()),
        parallel=args.parallel,
        sandbox=args.sandbox,
        allow_unconfined=args.allow_unconfined,
    )
    worst = 0
    for source in args.submissions:
        try:
            result = grade(source, args.out, options, progress=_say)
        except SubmissionError as exc:  # this submission cannot be graded; the others still are
            print(f"dlgrade: {terminal_field(exc)}", file=sys.stderr)
            worst = max(worst, exc.exit_code)
            continue
        # Imported here: by now a thread has (``graders.render.warm``, while the kernels boot).
        from graders.render.summary import print_report_summary

        print_report_summary(result, verbose=args.verbose)
    return worst


def _reference(args: argparse.Namespace) -> int:
    from graders.reference_run import run_reference

    return run_reference(data_root=args.data_root, epochs=dict(args.epochs))


def _question_epochs(text: str) -> tuple[str, int]:
    question, _, value = text.partition("=")
    if not question or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected QUESTION=EPOCHS (e.g. q3=5), got {text!r}")
    return question, int(value)


def _gradescope_build(args: argparse.Namespace) -> int:
    from graders.gradescope.bundle import build_bundle

    out = build_bundle(args.out, profile=args.profile, parallel=args.parallel)
    print(f"wrote {out} (profile {args.profile}); upload it as the Gradescope autograder")
    return 0


def _gradescope_run(args: argparse.Namespace) -> int:
    """Always 0: the outcome, failures included, is in results.json."""
    from graders.gradescope.entry import run_autograder

    run_autograder(args.root)
    return 0


def _add_gradescope(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from graders.gradescope.bundle import DEFAULT_PROFILE

    p_gs = sub.add_parser("gradescope", help="build or run the Gradescope autograder bundle")
    gs = p_gs.add_subparsers(dest="gradescope_command", required=True)
    p_build = gs.add_parser("build", help="write autograder.zip for upload")
    p_build.add_argument("--out", type=Path, default=Path("autograder.zip"))
    p_build.add_argument("--profile", default=DEFAULT_PROFILE, help="the bundle's profile")
    p_build.add_argument("--parallel", type=int, default=1, help="kernels at once")
    p_build.set_defaults(func=_gradescope_build)
    p_run = gs.add_parser("run", help="grade /autograder/submission (run_autograder calls it)")
    p_run.add_argument(
        "--root", type=Path, default=None, help="default: $DLGRADE_AUTOGRADER_ROOT or /autograder"
    )
    p_run.set_defaults(func=_gradescope_run)


def _kit_build(args: argparse.Namespace) -> int:
    from graders.kit.build import build_kit

    plan = build_kit(args.out, say=lambda m: print(m, flush=True))
    checked = ", ".join(q.id for q in plan.questions)
    print(f"wrote {args.out} (checks {checked}); hand it to students (docs/kit.md)")
    return 0


def _add_kit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p_kit = sub.add_parser("kit", help="build the student kit: the public checks, no answers")
    kit = p_kit.add_subparsers(dest="kit_command", required=True)
    p_build = kit.add_parser("build", help="write the kit as a folder or a .zip")
    p_build.add_argument(
        "--out", type=Path, required=True, help="a new folder, or FILE.zip (docs/kit.md)"
    )
    p_build.set_defaults(func=_kit_build)


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
    p_ref.add_argument(
        "--epochs",
        type=_question_epochs,
        action="append",
        default=[],
        metavar="Q=N",
        help="train question Q's reference for N epochs instead of the seed notebook's "
        "(e.g. q3=5; repeatable); Q4's table is compared only at its own 3",
    )
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
    p_grade.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="the full summary: how each notebook ran, every test, hints and notices",
    )
    sandbox.add_arguments(p_grade)
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
    _add_gradescope(sub)
    _add_kit(sub)

    from graders.batch import command as batch_command

    p_batch = sub.add_parser(
        "batch", help="TA batch: grade a folder of submissions in parallel, resumably"
    )
    batch_command.add_arguments(p_batch)
    p_batch.set_defaults(func=batch_command.run)
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
