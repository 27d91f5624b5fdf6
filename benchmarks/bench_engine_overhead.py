"""Time the grading harness against plain nbclient on the same notebooks, side by side.

The harness (load, sandbox, preamble, probe, checks, result.json, reports) must stay cheap next
to the student's own cells: the target is under 0.3 s per notebook over a plain nbclient run of the
same notebook with the same parameters and threads, and all four questions graded in parallel
kernels in about the time of the slowest one alone. Variants alternate within each repeat so a
noisy neighbour slows both sides alike; medians are reported, and each part of a graded run is
timed on its own so that the harness's share stays visible when the totals are noisy.

    python benchmarks/bench_engine_overhead.py --repeats 3   # docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
from nbclient import NotebookClient
from nbformat import NotebookNode

from graders import inject, pipeline
from graders.config import PROJECT_ROOT, GradeOptions, Profile, Profiles, load_profiles
from graders.data import default_data_root
from graders.execute import CappedClient, CellOutcome, KernelJob, KernelRun, NbclientExecutor
from graders.models import GradeReport
from graders.pipeline import grade
from graders.questions import load_questions
from graders.questions.api import ProbeContext, QuestionSpec
from graders.sandbox import thread_share

THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
GRADE_PARTS = (
    "kernel",
    "injected",
    "cells",
    "probe",
    "load",
    "inputs",
    "checks",
    "reports",
    "rest",
)
"""Where a graded run's time goes: in the kernel (first four), then in the grader process."""
TARGET_OVERHEAD_S = 0.3
PEER_RATIO = 1.53
"""docs/assignment.md: otter-grader ``otter run`` and nbgrader ``autograde``, each 1.53x plain
nbclient on a trivial notebook (whole process), and neither grades in parallel here."""


@dataclass(frozen=True, kw_only=True)
class Timing:
    """One run of one variant; the parts say where the time went."""

    total: float
    parts: Mapping[str, float] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--submission", type=Path, default=PROJECT_ROOT / "fixtures/submissions/all_correct"
    )
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--questions", nargs="*", default=None, help="ids (default: all)")
    parser.add_argument("--timeout", type=int, default=300, help="per cell, plain nbclient")
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=3,
        help="cap the profile's EPOCHS for both variants (0: the profile's own values)",
    )
    return parser.parse_args(argv)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "none"
    if shutil.which("nvidia-smi"):
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
        gpu = listed.stdout.strip().replace("\n", "; ") or "none"
    return f"{os.cpu_count()} cores, {cpu}; GPU: {gpu}; Python {platform.python_version()}"


# ---------------------------------------------------------------- plain nbclient


class TimedClient(NotebookClient):
    """Plain nbclient, plus the seconds spent inside cells (kernel start is the remainder)."""

    cell_seconds: float = 0.0

    async def async_execute_cell(
        self,
        cell: NotebookNode,
        cell_index: int,
        execution_count: int | None = None,
        store_history: bool = True,
    ) -> NotebookNode:
        start = time.perf_counter()
        try:
            return await super().async_execute_cell(
                cell, cell_index, execution_count, store_history
            )
        finally:
            self.cell_seconds += time.perf_counter() - start


def with_parameters(path: Path, parameters: Mapping[str, Any]) -> NotebookNode:
    """The student's notebook with the grader's values in a cell after ``parameters``; no more
    (but the self-check cells the grader blanks are blanked here too: same code on both sides)."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if inject.SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            cell.source = ""
    at = inject.find_parameters_cell(nb)
    cell = nbformat.v4.new_code_cell(inject.parameters_source(parameters))
    nb.cells.insert(0 if at is None else at + 1, cell)
    return nb


def kernel_env(threads: int, device: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({var: str(threads) for var in THREAD_VARS})
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # as the sandbox does for a CPU profile
    return env


def run_plain(
    path: Path, parameters: Mapping[str, Any], env: dict[str, str], timeout: int
) -> Timing:
    nb = with_parameters(path, parameters)
    with tempfile.TemporaryDirectory(prefix="bench-plain-") as tmp:
        shutil.copyfile(path, Path(tmp) / path.name)
        client = TimedClient(
            nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": tmp}}
        )
        start = time.perf_counter()
        client.execute(env=env, cwd=tmp, stderr=subprocess.DEVNULL)
        total = time.perf_counter() - start
    return Timing(
        total=total, parts={"cells": client.cell_seconds, "kernel": total - client.cell_seconds}
    )


# ---------------------------------------------------------------- what both variants run


@dataclass(frozen=True, kw_only=True)
class Plan:
    source: Path
    profiles: Profiles
    """Passed to ``grade``: the chosen profile, with EPOCHS capped as asked."""
    profile: Profile
    questions: tuple[QuestionSpec, ...]
    paths: Mapping[str, Path]
    parameters: Mapping[str, Mapping[str, Any]]
    threads: int
    timeout: int


def capped(profiles: Profiles, name: str, max_epochs: int) -> Profiles:
    """The profile with EPOCHS capped: the harness's cost does not grow with the student's
    training, and the cap keeps a run of the benchmark short. Both variants get the same."""
    profile = profiles.get(name)
    if max_epochs > 0:
        parameters = {
            qid: {k: min(v, max_epochs) if k == "EPOCHS" else v for k, v in values.items()}
            for qid, values in profile.parameters.items()
        }
        profile = replace(profile, parameters=parameters)
    return replace(profiles, profiles={**profiles.profiles, name: profile})


def make_plan(args: argparse.Namespace) -> Plan:
    profiles = capped(load_profiles(), args.profile, args.max_epochs)
    profile = profiles.get(args.profile)
    wanted = set(args.questions or [])
    questions = tuple(q for q in load_questions() if not wanted or q.id in wanted)
    data_root = profile.data_root(default_data_root())
    paths: dict[str, Path] = {}
    parameters: dict[str, dict[str, Any]] = {}
    for spec in questions:
        found = sorted(args.submission.glob(f"{spec.notebook_stem}*.ipynb"))
        if not found:
            raise SystemExit(f"no {spec.notebook_stem}.ipynb in {args.submission}")
        paths[spec.id] = found[0]
        # What pipeline._run_question injects (GradeOptions().seed is 0).
        parameters[spec.id] = {
            "DATA_ROOT": str(data_root),
            "DEVICE": profile.device,
            "SEED": GradeOptions().seed,
            **profile.parameters_for(spec.id),
        }
    return Plan(
        source=args.submission,
        profiles=profiles,
        profile=profile,
        questions=questions,
        paths=paths,
        parameters=parameters,
        threads=thread_share(1),
        timeout=args.timeout,
    )


# ---------------------------------------------------------------- the grader


class TimingExecutor(NbclientExecutor):
    """The real executor, timing its steps: for one job at a time only."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    def _add(self, key: str, seconds: float) -> None:
        self.parts[key] = self.parts.get(key, 0.0) + seconds

    async def run(self, job: KernelJob) -> KernelRun:
        start = time.perf_counter()
        try:
            return await super().run(job)
        finally:
            self._add("executor", time.perf_counter() - start)

    async def _run_cell(
        self, client: CappedClient, cell: NotebookNode, position: int, timeout: float
    ) -> CellOutcome:
        start = time.perf_counter()
        try:
            return await super()._run_cell(client, cell, position, timeout)
        finally:
            injected = inject.INJECTED_TAG in cell.get("metadata", {}).get("tags", [])
            self._add("injected" if injected else "cells", time.perf_counter() - start)

    async def _run_probe(self, client: CappedClient, job: KernelJob) -> tuple[str, str]:
        start = time.perf_counter()
        try:
            return await super()._run_probe(client, job)
        finally:
            self._add("probe", time.perf_counter() - start)


def check_ok(report: GradeReport) -> None:
    for run in report.run.questions:
        if run.execution.status != "ok" or run.probe.status != "ok":
            raise SystemExit(
                f"{run.question}: execution {run.execution.status} ({run.execution.message}), "
                f"probe {run.probe.status} ({run.probe.message}); the timing would be meaningless"
            )


STEPS = {
    "load_submission": "load",
    "_inputs": "inputs",
    "_score_all": "checks",
    "write_reports": "reports",
}
"""Grader-process steps of ``pipeline.grade`` timed by wrapping them (those that exist)."""


@contextlib.contextmanager
def timing_steps(parts: dict[str, float]) -> Iterator[None]:
    """Time the grader-process steps around the kernels by wrapping the pipeline's names."""
    originals = {name: getattr(pipeline, name) for name in STEPS if hasattr(pipeline, name)}

    def timed(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                label = STEPS[name]
                parts[label] = parts.get(label, 0.0) + time.perf_counter() - start

        return wrapper

    for name, original in originals.items():
        setattr(pipeline, name, timed(name, original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(pipeline, name, original)


def run_grade(plan: Plan, only: tuple[str, ...], *, timed: bool) -> tuple[Timing, GradeReport]:
    executor = TimingExecutor() if timed else None
    steps: dict[str, float] = {}
    options = GradeOptions(profile=plan.profile.name, only=only)
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp, timing_steps(steps):
        start = time.perf_counter()
        result = grade(plan.source, Path(tmp), options, executor=executor, profiles=plan.profiles)
        total = time.perf_counter() - start
    check_ok(result)
    if executor is None:
        return Timing(total=total), result
    parts = dict(executor.parts)
    in_kernel = parts.pop("executor", 0.0)
    parts["kernel"] = in_kernel - sum(parts.values())
    parts.update(steps)
    parts["rest"] = total - in_kernel - sum(steps.values())
    return Timing(total=total, parts=parts), result


# ---------------------------------------------------------------- the rounds


Samples = dict[str, list[Timing]]


def one_round(plan: Plan, index: int, samples: Samples, say: Callable[[str], None]) -> None:
    env = kernel_env(plan.threads, plan.profile.device)
    for spec in plan.questions:
        qid = spec.id

        def plain(qid: str = qid) -> None:
            samples.setdefault(f"plain:{qid}", []).append(
                run_plain(plan.paths[qid], plan.parameters[qid], env, plan.timeout)
            )

        def graded(qid: str = qid) -> None:
            timing, result = run_grade(plan, (qid,), timed=True)
            used = result.run.questions[0].execution.threads
            if used != plan.threads:
                say(f"  note: grade gave {qid} {used} thread(s), plain used {plan.threads}")
            samples.setdefault(f"grade:{qid}", []).append(timing)

        for step in (plain, graded) if index % 2 == 0 else (graded, plain):
            step()
    every = tuple(q.id for q in plan.questions)
    timing, _ = run_grade(plan, every, timed=False)
    samples.setdefault("grade:all", []).append(timing)
    say(f"  round {index + 1}: all {len(plan.questions)} in parallel {timing.total:.2f} s")


def median(timings: list[Timing], part: str | None = None) -> float:
    values = [t.total if part is None else t.parts.get(part, 0.0) for t in timings]
    return statistics.median(values)


# ---------------------------------------------------------------- where the overhead goes


def inputs_seconds(plan: Plan, repeats: int) -> dict[str, float]:
    """The probe inputs are made in the grader process (data slices read, weights drawn)."""
    seconds: dict[str, float] = {}
    data_root = Path(str(next(iter(plan.parameters.values()))["DATA_ROOT"]))
    for spec in plan.questions:
        if spec.make_inputs is None:
            continue
        times = []
        for _ in range(repeats):
            ctx = ProbeContext(
                profile=plan.profile, data_root=data_root, rng=np.random.default_rng(0)
            )
            start = time.perf_counter()
            spec.make_inputs(ctx)
            times.append(time.perf_counter() - start)
        seconds[spec.id] = statistics.median(times)
    return seconds


MPL_SNIPPET = (
    "import matplotlib; matplotlib.use('agg'); import matplotlib.pyplot as plt; "
    "plt.plot([0, 1]); plt.gcf().canvas.draw()"
)


def matplotlib_seconds(repeats: int) -> tuple[float, float]:
    """A sandbox's fresh config dir makes matplotlib rebuild its font list in every kernel."""
    fresh: list[float] = []
    warm: list[float] = []
    subprocess.run([sys.executable, "-c", MPL_SNIPPET], check=True)  # warm the user's cache
    for _ in range(repeats):
        for cold, times in ((True, fresh), (False, warm)):
            with tempfile.TemporaryDirectory(prefix="bench-mpl-") as tmp:
                env = {**os.environ, "MPLCONFIGDIR": tmp} if cold else dict(os.environ)
                start = time.perf_counter()
                subprocess.run([sys.executable, "-c", MPL_SNIPPET], env=env, check=True)
                times.append(time.perf_counter() - start)
    return statistics.median(fresh), statistics.median(warm)


PLAIN_START = "import nbclient, nbformat"
GRADER_START = (
    "import sys; from graders.pipeline import grade; from graders.questions import load_questions; "
    "load_questions(); print('torch' in sys.modules)"
)


def startup_seconds(repeats: int) -> tuple[float, float, bool]:
    """A fresh process's imports: paid once per ``dlgrade grade``, invisible in the rounds above."""
    plain: list[float] = []
    grader: list[float] = []
    torch_loaded = False
    for _ in range(repeats):
        for code, times in ((PLAIN_START, plain), (GRADER_START, grader)):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            times.append(time.perf_counter() - start)
            torch_loaded = torch_loaded or done.stdout.strip() == "True"
    return statistics.median(plain), statistics.median(grader), torch_loaded


HARNESS_PARTS = ("injected", "probe", "load", "inputs", "checks", "reports", "rest")
"""Parts that only a graded run has, each timed directly: steadier than a difference of two
noisy totals. ``injected`` holds the preamble's ``import torch`` for a torch question, an import
the student's own first cell would otherwise pay."""


def report_totals(plan: Plan, samples: Samples, repeats: int) -> list[float]:
    ids = [q.id for q in plan.questions]
    print()
    print(
        f"medians of {repeats} round(s); profile {plan.profile.name!r}; {plan.threads} thread(s) "
        "per kernel alone; injected: "
        + "; ".join(f"{q} {dict(plan.profile.parameters_for(q))}" for q in ids)
    )
    print("(best = fastest grade minus fastest plain: the harness's own cost on a noisy machine)")
    print(f"{'notebook':<10}{'plain s':>9}{'grade s':>9}{'overhead s':>12}{'ratio':>8}{'best':>8}")
    overheads: list[float] = []
    for qid in ids:
        p, g = samples[f"plain:{qid}"], samples[f"grade:{qid}"]
        plain, graded = median(p), median(g)
        best = min(t.total for t in g) - min(t.total for t in p)
        overheads.append(graded - plain)
        print(
            f"{qid:<10}{plain:>9.2f}{graded:>9.2f}{graded - plain:>12.2f}"
            f"{graded / plain:>7.2f}x{best:>8.2f}"
        )
    return overheads


def report_parts(plan: Plan, samples: Samples) -> dict[str, float]:
    print()
    print("where the time goes (median s): plain = kernel start/stop + cells; grade = kernel")
    print("start/stop + injected cells (preamble, parameters) + student cells + probe, and in the")
    print("grader process: load, probe inputs, checks, reports (HTML/Markdown), rest (sandbox,")
    print("records, collect, result.json); harness = injected + probe + the grader-process parts")
    header = "".join(f"{c[:7]:>8}" for c in GRADE_PARTS)
    print(f"{'notebook':<10}{'plain':>12}{header}{'harness':>9}")
    harness: dict[str, float] = {}
    for spec in plan.questions:
        p, g = samples[f"plain:{spec.id}"], samples[f"grade:{spec.id}"]
        plain_parts = f"{median(p, 'kernel'):.2f}+{median(p, 'cells'):.2f}"
        harness[spec.id] = sum(median(g, c) for c in HARNESS_PARTS)
        row = "".join(f"{median(g, c):>8.2f}" for c in GRADE_PARTS)
        note = "  (injected: incl. import torch)" if spec.uses_torch else ""
        print(f"{spec.id:<10}{plain_parts:>12}{row}{harness[spec.id]:>9.2f}{note}")
    return harness


def report_causes(plan: Plan, repeats: int) -> None:
    inputs = inputs_seconds(plan, repeats)
    print(
        "probe inputs made in the grader process (s): "
        + ", ".join(f"{q} {s:.3f}" for q, s in inputs.items())
    )
    print(f"torch imported by the grader process: {'torch' in sys.modules}")
    fresh, warm = matplotlib_seconds(repeats)
    print(
        f"matplotlib import + first figure in a new process: {fresh:.2f} s with a fresh "
        f"MPLCONFIGDIR (each sandbox has one), {warm:.2f} s with the user's warm font cache"
    )


def parallel_floor(singles: Mapping[str, float]) -> float:
    """The least time these questions can take in parallel kernels on this machine: the slowest
    alone, or, with fewer cores than kernels, the work itself spread over the cores."""
    cores = os.cpu_count() or 1
    return max(max(singles.values()), sum(singles.values()) / min(cores, len(singles)))


def report_targets(
    plan: Plan, samples: Samples, overheads: list[float], harness: dict[str, float]
) -> None:
    ids = [q.id for q in plan.questions]
    worst = max(overheads)
    verdict = "met" if max(harness.values()) < TARGET_OVERHEAD_S else "NOT met"
    print()
    print(
        f"target: overhead per notebook < {TARGET_OVERHEAD_S} s: {verdict} by the parts "
        f"(harness {', '.join(f'{q} {v:.2f}' for q, v in harness.items())} s); by the totals "
        f"median {statistics.median(overheads):.2f} s, worst {worst:.2f} s"
    )
    singles = {qid: median(samples[f"grade:{qid}"]) for qid in ids}
    slowest = max(singles, key=singles.__getitem__)
    together = median(samples["grade:all"])
    cores = os.cpu_count() or 1
    floor = parallel_floor(singles)
    print(
        f"target: {len(ids)} questions in about the time of the slowest alone: "
        f"{together:.2f} s together vs {singles[slowest]:.2f} s for {slowest} alone "
        f"({together / singles[slowest]:.2f}x); one after another {sum(singles.values()):.2f} s; "
        f"floor on {cores} cores max(slowest, sum/cores) = {floor:.2f} s "
        f"({together / floor:.2f}x of it); in parallel each kernel gets "
        f"{thread_share(len(ids))} thread(s)"
    )
    report_peers(plan, samples, singles, together)


def report_peers(plan: Plan, samples: Samples, singles: dict[str, float], together: float) -> None:
    ids = [q.id for q in plan.questions]
    plain_sum = sum(median(samples[f"plain:{q}"]) for q in ids)
    print(
        f"context: otter-grader and nbgrader take {PEER_RATIO}x plain nbclient on a trivial "
        f"notebook (docs/assignment.md); here grade/plain is "
        f"{sum(singles.values()) / plain_sum:.2f}x over "
        f"the {len(ids)} notebooks one by one, {together / plain_sum:.2f}x all at once"
    )
    plain_start, grader_start, torch_loaded = startup_seconds(len(samples["grade:all"]))
    fastest = min(ids, key=lambda q: median(samples[f"plain:{q}"]))
    whole_plain = plain_start + median(samples[f"plain:{fastest}"])
    whole_grade = grader_start + singles[fastest]
    print(
        f"whole process (as the peers were measured): start-up imports {plain_start:.2f} s for "
        f"nbclient, {grader_start:.2f} s for the grader (torch imported: {torch_loaded}); "
        f"{fastest} alone {whole_grade:.2f} s vs {whole_plain:.2f} s plain "
        f"({whole_grade / whole_plain:.2f}x, overhead {whole_grade - whole_plain:.2f} s)"
    )


def report(plan: Plan, samples: Samples, repeats: int) -> None:
    overheads = report_totals(plan, samples, repeats)
    harness = report_parts(plan, samples)
    report_causes(plan, repeats)
    report_targets(plan, samples, overheads, harness)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    plan = make_plan(args)
    print(f"machine: {machine()}")
    print(f"submission: {plan.source}; notebooks: {', '.join(p.name for p in plan.paths.values())}")
    first = plan.questions[0].id
    say = lambda msg: print(msg, flush=True)  # noqa: E731
    say(f"warm-up (not counted): plain and grade of {first}")
    env = kernel_env(plan.threads, plan.profile.device)
    run_plain(plan.paths[first], plan.parameters[first], env, args.timeout)
    _, warm = run_grade(plan, (first,), timed=False)
    say(f"  {first} scored {warm.score:g} of {warm.max_score:g}")
    samples: Samples = {}
    for index in range(args.repeats):
        one_round(plan, index, samples, say)
    report(plan, samples, args.repeats)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
