"""dlgrade against otter-grader, nbgrader and bare nbclient on the same notebook, in one run.

Issue 17's figures, each measured whole process (wall time from spawn to exit of a real
command, as a TA would run it), the variants taking turns in every round so that a noisy
neighbour slows all alike; medians and ranges are printed, and one verdict per target:

1. one question (Q2 of ``all_correct``): ``dlgrade grade --only q2`` against bare nbclient in
   dlgrade's environment; ``otter run`` and ``nbgrader autograde`` against bare nbclient in
   their own environments (made once by ``peer_graders.py``), all on the same notebook with
   the values dlgrade injects. Target: dlgrade at most 1.15x its bare run.
2. the whole assignment (four questions, parallel kernels) against its slowest question alone.
   Target: at most 1.1x.
3. a batch of 20 on 2 workers against the same batch fully serial (``bench_batch.py``'s
   measurement). Target: at least 1.8x.
4. kernel start-up with and without the sandbox (``bench_sandbox_startup.py``). Budget: 0.1 s.

It asserts nothing about time: it reports (docs/benchmarks.md). It stops, naming the variant
and the output, if any grader fails to grade the correct notebook in full.

    python benchmarks/bench_peers.py --repeats 7   # 17 min on 2 busy cores; --skip-*: parts
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bench_batch
import bench_engine_overhead as overhead
import bench_sandbox_startup
import nbformat
import peer_graders as peers

from graders.config import PROJECT_ROOT, GradeOptions
from graders.questions import load_questions

TARGET_ONE_QUESTION = 1.15
TARGET_ASSIGNMENT = 1.1
TARGET_BATCH = 1.8
TARGET_SANDBOX_S = 0.1
RUN_TIMEOUT_S = 900
BATCH_SERIAL, BATCH_PARALLEL = "1 worker, 1 kernel", "2 workers"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="rounds; medians are reported")
    parser.add_argument(
        "--submission", type=Path, default=PROJECT_ROOT / "fixtures/submissions/all_correct"
    )
    parser.add_argument("--question", default="q2", help="the one-question notebook's id")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--skip-one-question", action="store_true")
    parser.add_argument("--skip-assignment", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-sandbox", action="store_true")
    parser.add_argument("--batch-submissions", type=int, default=20)
    parser.add_argument("--batch-repeats", type=int, default=1)
    parser.add_argument("--batch-workload", choices=sorted(bench_batch.WORKLOADS), default="light")
    parser.add_argument("--sandbox-repeats", type=int, default=10)
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(message, flush=True)


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# ---------------------------------------------------------------- a variant: one command


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One command timed whole process; ``argv`` gets a fresh, empty output folder."""

    name: str
    argv: Callable[[Path], Sequence[str | Path]]
    env: Mapping[str, str]
    cwd: Path | None = None
    """None: the output folder."""
    verify: Callable[[Path], str | None] = field(default=lambda out: None)
    """What is wrong with a run's output, or None: a grader that graded nothing is no timing."""


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (``/proc/stat``: user, nice,
    system, irq, softirq, steal), or None where there is no such file. Read around a run, it
    counts the run's kernels too, sandboxed or not, which a process's own rusage does not."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = sum(int(x) for x in fields[:3]) + sum(int(x) for x in fields[5:8])
    return ticks / os.sysconf("SC_CLK_TCK")


MACHINE_CPU: dict[str, list[float]] = {}
"""Per variant, the machine's busy CPU seconds during each run (``machine_busy_seconds``)."""


def run_once(variant: Variant, scratch: Path) -> float:
    """Seconds from spawn to exit; stops the benchmark if the command failed or graded wrong."""
    out = Path(tempfile.mkdtemp(prefix="run-", dir=scratch))
    argv = [str(a) for a in variant.argv(out)]
    busy = machine_busy_seconds()
    start = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            cwd=variant.cwd or out,
            env=dict(variant.env),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SystemExit(f"{variant.name}: no exit after {RUN_TIMEOUT_S} s: {argv}") from exc
    seconds = time.perf_counter() - start
    after = machine_busy_seconds()
    if busy is not None and after is not None:
        MACHINE_CPU.setdefault(variant.name, []).append(after - busy)
    problem = f"exit {done.returncode}" if done.returncode else variant.verify(out)
    if problem:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SystemExit(f"{variant.name}: {problem}\n  command: {' '.join(argv)}\n{tail}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds


Samples = dict[str, list[float]]


def rounds(
    variants: Sequence[Variant], repeats: int, scratch: Path, label: str, *, warm_up: bool
) -> Samples:
    """``repeats`` rounds, each starting one variant later than the one before; after one
    uncounted run of each if ``warm_up`` (page cache, compiled bytecode, a first proof that
    each grades: every run is verified all the same)."""
    for variant in variants if warm_up else ():
        run_once(variant, scratch)
    samples: Samples = {v.name: [] for v in variants}
    for index in range(repeats):
        shift = index % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            samples[variant.name].append(run_once(variant, scratch))
        row = ", ".join(f"{n} {s[-1]:.2f}" for n, s in samples.items())
        say(f"  {label} round {index + 1}/{repeats}: {row}")
    return samples


def print_table(samples: Samples) -> None:
    width = max(len(n) for n in samples) + 2
    say(f"  {'variant':<{width}}{'median s':>10}{'range s':>15}")
    for name, values in samples.items():
        spread = f"{min(values):.2f}-{max(values):.2f}"
        say(f"  {name:<{width}}{statistics.median(values):>10.2f}{spread:>15}")


@dataclass(frozen=True, kw_only=True)
class Ratio:
    of_medians: float
    per_round: float
    """The median of the rounds' own ratios: steadier when the load changes between rounds."""


def ratio(samples: Samples, top: str, bottom: str) -> Ratio:
    a, b = samples[top], samples[bottom]
    return Ratio(
        of_medians=statistics.median(a) / statistics.median(b),
        per_round=statistics.median(x / y for x, y in zip(a, b, strict=True)),
    )


def verdict(text: str, value: float, target: float, *, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    bound = "<=" if at_most else ">="
    return f"{'met    ' if met else 'NOT met'}  {text}: {value:.2f}x (target {bound} {target}x)"


# ---------------------------------------------------------------- the variants


def dlgrade_variant(
    name: str, submission: Path, only: Sequence[str], profile: str, env: Mapping[str, str]
) -> Variant:
    dlgrade = Path(sys.prefix) / "bin" / "dlgrade"
    if not dlgrade.exists():
        raise SystemExit(f"no {dlgrade}: run this with dlgrade's environment (.venv/bin/python)")
    flags = [arg for qid in only for arg in ("--only", qid)]

    def argv(out: Path) -> list[str | Path]:
        return [dlgrade, "grade", submission, *flags, "--profile", profile, "--out", out / "r"]

    return Variant(
        name=name,
        argv=argv,
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        verify=lambda out: dlgrade_problem(out, len(only) or len(load_questions())),
    )


def dlgrade_problem(out: Path, questions: int) -> str | None:
    found = list((out / "r").glob("*/result.json"))
    if len(found) != 1:
        return f"expected one result.json under {out / 'r'}, found {len(found)}"
    runs = json.loads(found[0].read_text())["run"]["questions"]
    bad = [
        f"{r['question']}: execution {r['execution']['status']}, probe {r['probe']['status']}"
        for r in runs
        if r["execution"]["status"] != "ok" or r["probe"]["status"] != "ok"
    ]
    if len(runs) != questions:
        bad.append(f"{len(runs)} question(s) graded, {questions} asked")
    return "; ".join(bad) or None


def bare_variant(environment: peers.Environment, notebook: Path, env: Mapping[str, str]) -> Variant:
    return Variant(
        name=f"bare nbclient ({environment.name} venv)",
        argv=lambda out: [environment.python, "-c", peers.BARE_RUNNER, notebook, out],
        env=environment.env(env),
    )


@dataclass(frozen=True, kw_only=True)
class OneQuestion:
    variants: list[Variant]
    pairs: list[tuple[str, str]]
    """(grader, its bare nbclient run), in the order reported."""


def one_question_variants(args: argparse.Namespace, scratch: Path) -> OneQuestion:
    """The four graders on one notebook: the notebook dlgrade's kernel runs (its parameters
    injected after the ``parameters`` cell, self-check cells blanked), for all of them."""
    plan = overhead.make_plan(
        overhead.parse_args(
            [
                *("--submission", str(args.submission)),
                *("--profile", args.profile),
                *("--questions", args.question),
            ]
        )
    )
    student_path = plan.paths[args.question]
    graded = overhead.with_parameters(student_path, plan.parameters[args.question])
    notebook = scratch / "notebook" / student_path.name
    notebook.parent.mkdir()
    nbformat.write(graded, str(notebook))
    env = overhead.kernel_env(plan.threads, plan.profile.device)
    say(f"notebook: {student_path} with {dict(plan.parameters[args.question])} injected")
    say(f"threads per kernel: {plan.threads} (OMP_NUM_THREADS etc. the same for every variant)")

    say("set-up (not timed):")
    own = peers.own_environment()
    peers.check_kernel(own, env)
    otter = peers.peer_environment("otter", env)
    peers.check_kernel(otter, env)
    nbgrader = peers.peer_environment("nbgrader", env)
    peers.check_kernel(nbgrader, env)
    autograder = peers.otter_autograder(otter, scratch / "otter", env)
    student = nbformat.read(str(student_path), as_version=4)
    course = peers.nbgrader_course(
        nbgrader, scratch / "nbgrader", graded, student, student_path.name, env
    )
    say(f"  otter: {autograder}; nbgrader: course {course.root}")

    graders = [
        dlgrade_variant(
            f"dlgrade grade --only {args.question}",
            student_path,
            [args.question],
            args.profile,
            env,
        ),
        otter_variant(otter, autograder, notebook, env),
        nbgrader_variant(nbgrader, course, env),
    ]
    bares = [bare_variant(e, notebook, env) for e in (own, otter, nbgrader)]
    return OneQuestion(
        variants=[v for pair in zip(graders, bares, strict=True) for v in pair],
        pairs=[(g.name, b.name) for g, b in zip(graders, bares, strict=True)],
    )


def otter_variant(
    otter: peers.Environment, autograder: Path, notebook: Path, env: Mapping[str, str]
) -> Variant:
    def argv(out: Path) -> list[str | Path]:
        return [otter.bin / "otter", "run", "-a", autograder, notebook, "-o", out, "--no-logo"]

    return Variant(
        name="otter run", argv=argv, env=otter.env(env), verify=peers.check_otter_results
    )


def nbgrader_variant(
    nbgrader: peers.Environment, course: peers.NbgraderCourse, env: Mapping[str, str]
) -> Variant:
    def argv(out: Path) -> list[str | Path]:
        return [
            *(nbgrader.bin / "nbgrader", "autograde", peers.NBGRADER_ASSIGNMENT),
            *("--student", peers.NBGRADER_STUDENT, "--force"),
        ]

    return Variant(
        name="nbgrader autograde",
        argv=argv,
        env=nbgrader.env(env),
        cwd=course.root,
        verify=lambda out: peers.check_nbgrader_score(nbgrader, course, env),
    )


# ---------------------------------------------------------------- the parts


def bench_one_question(args: argparse.Namespace, scratch: Path, verdicts: list[str]) -> None:
    setup = one_question_variants(args, scratch)
    say(f"\none question, whole process, {args.repeats} round(s) after a warm-up:")
    samples = rounds(setup.variants, args.repeats, scratch, "one question", warm_up=True)
    print_table(samples)
    say("  ratios (of the medians; median of the rounds' own ratios):")
    for grader, bare in setup.pairs:
        r = ratio(samples, grader, bare)
        say(f"    {grader} / {bare}: {r.of_medians:.2f}x; {r.per_round:.2f}x")
    dlgrade = setup.pairs[0][0]
    for grader, _ in setup.pairs[1:]:
        r = ratio(samples, dlgrade, grader)
        say(f"    {dlgrade} / {grader}: {r.of_medians:.2f}x; {r.per_round:.2f}x")
    own = ratio(samples, *setup.pairs[0])
    verdicts.append(
        verdict(f"{dlgrade} vs bare nbclient", own.of_medians, TARGET_ONE_QUESTION, at_most=True)
    )


def bench_assignment(args: argparse.Namespace, scratch: Path, verdicts: list[str]) -> None:
    env = dict(os.environ)
    ids = [q.id for q in load_questions()]
    whole = dlgrade_variant("all questions", args.submission, [], args.profile, env)
    singles = [dlgrade_variant(f"{q} alone", args.submission, [q], args.profile, env) for q in ids]
    warm_up = args.skip_one_question  # else warm from the part above
    how = "after a warm-up run of each" if warm_up else "warm from the part above"
    say(
        f"\nwhole assignment ({args.submission.name}), whole process, {args.repeats} round(s) "
        f"({how}):"
    )
    samples = rounds([whole, *singles], args.repeats, scratch, "assignment", warm_up=warm_up)
    print_table(samples)
    medians = {s.name: statistics.median(samples[s.name]) for s in singles}
    slowest = max(medians, key=medians.__getitem__)
    r = ratio(samples, whole.name, slowest)
    floor = overhead.parallel_floor(medians)
    say(
        f"  all / slowest ({slowest}): {r.of_medians:.2f}x; {r.per_round:.2f}x per round; one "
        f"after another {sum(medians.values()):.2f} s; floor on {os.cpu_count()} cores "
        f"max(slowest, sum / cores) = {floor:.2f} s "
        f"({statistics.median(samples[whole.name]) / floor:.2f}x of it)"
    )
    cpu = MACHINE_CPU.get(whole.name)
    if cpu:
        work = statistics.median(cpu)
        cores = os.cpu_count() or 1
        least = max(medians[slowest], work / cores)
        say(
            f"  the whole run kept the machine busy {work:.2f} CPU-s (median): on {cores} cores "
            f"it needs at least {least:.2f} s, {least / medians[slowest]:.2f}x {slowest}; "
            f"measured {statistics.median(samples[whole.name]) / least:.2f}x of that"
        )
    verdicts.append(
        verdict(f"all questions vs {slowest}", r.of_medians, TARGET_ASSIGNMENT, at_most=True)
    )


def bench_batch_throughput(args: argparse.Namespace, scratch: Path, verdicts: list[str]) -> None:
    folder = scratch / "batch"
    bench_batch.make_batch(folder, args.batch_submissions)
    only = bench_batch.WORKLOADS[args.batch_workload]
    variants = {v: bench_batch.VARIANTS[v] for v in (BATCH_SERIAL, BATCH_PARALLEL)}
    say(
        f"\nbatch of {args.batch_submissions} ({args.batch_workload}: "
        f"{', '.join(only) or 'every question'}), {args.batch_repeats} repeat(s), in-process:"
    )
    rates = bench_batch.measure(
        folder, GradeOptions(profile=args.profile, only=only), args.batch_repeats, scratch, variants
    )
    medians = {v: statistics.median(r) for v, r in rates.items()}
    for variant, rate in medians.items():
        seconds = 60 * args.batch_submissions / rate
        say(f"  {variant:<20} {rate:6.1f} submissions/min ({seconds:.1f} s)")
    speedup = medians[BATCH_PARALLEL] / medians[BATCH_SERIAL]
    say(f"  {BATCH_PARALLEL} / serial: {speedup:.2f}x")
    verdicts.append(
        verdict(f"batch, {BATCH_PARALLEL} vs serial", speedup, TARGET_BATCH, at_most=False)
    )


def bench_sandbox(args: argparse.Namespace, verdicts: list[str]) -> None:
    say(f"\nkernel start-up with and without the sandbox ({args.sandbox_repeats} repeats):")
    extra = bench_sandbox_startup.report(bench_sandbox_startup.measure(args.sandbox_repeats))
    met = "met    " if extra <= TARGET_SANDBOX_S else "NOT met"
    verdicts.append(f"{met}  the sandbox per kernel: {extra:+.3f} s (budget {TARGET_SANDBOX_S} s)")


def compile_own_bytecode() -> None:
    """The grader's bytecode in place, as a wheel install has it (the peers' is, from pip): an
    editable install under PYTHONDONTWRITEBYTECODE would compile ~100 modules in every run."""
    import compileall

    for package in ("graders", "reference", "reports"):
        compileall.compile_dir(PROJECT_ROOT / package, quiet=1, workers=0)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()
    say(f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; {platform.node()}")
    say(f"machine: {overhead.machine()}")
    say(f"load average before (1, 5, 15 min): {load()}")
    compile_own_bytecode()
    verdicts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dlgrade-peers-") as tmp:
        scratch = Path(tmp)
        if not args.skip_one_question:
            bench_one_question(args, scratch, verdicts)
        if not args.skip_assignment:
            bench_assignment(args, scratch, verdicts)
        if not args.skip_batch:
            bench_batch_throughput(args, scratch, verdicts)
    if not args.skip_sandbox:
        bench_sandbox(args, verdicts)
    say(f"\nload average after (1, 5, 15 min): {load()}; {time.monotonic() - started:.0f} s in all")
    say("verdicts (reported, not asserted):")
    for line in verdicts:
        say(f"  {line}")


if __name__ == "__main__":
    main()
