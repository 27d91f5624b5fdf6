"""Batch throughput, submissions per minute, with 1 and 2 workers side by side in one run.

Two workloads: "light" grades only Q1 and Q2 (no training: kernel start, the student's cells,
the probe, the checks), where the target is at least 1.8x on 2 workers; "full" grades every
question with the chosen profile (quick by default: training on the committed data slices),
whose figure is reported. Each run starts from an empty state file, so nothing is skipped; the
variants alternate per repeat, so a noisy neighbour slows all alike. "1 worker" already runs a
submission's questions in parallel kernels (one per core); "1 worker, 1 kernel" is fully
serial, the baseline a 2x speed-up is measured against.

    python benchmarks/bench_batch.py --submissions 12 --repeats 1
    python benchmarks/bench_batch.py --workload full --submissions 6
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from graders.batch.options import BatchOptions
from graders.batch.runner import run_batch
from graders.config import PROJECT_ROOT, GradeOptions

SCENARIOS = PROJECT_ROOT / "fixtures" / "submissions"
WORKLOADS = {"light": ("q1", "q2"), "full": ()}


def make_batch(folder: Path, count: int) -> None:
    """``count`` submissions copied round-robin from the fixture scenarios."""
    names = sorted(p.name for p in SCENARIOS.iterdir() if p.is_dir())
    folder.mkdir(parents=True)
    for i in range(count):
        shutil.copytree(
            SCENARIOS / names[i % len(names)], folder / f"s{i:03d}_{names[i % len(names)]}"
        )


def throughput(folder: Path, workers: int, options: GradeOptions, scratch: Path) -> float:
    out = scratch / f"out-{workers}-{time.monotonic_ns()}"
    started = time.monotonic()
    result = run_batch(BatchOptions(folder=folder, out=out, grade=options, workers=workers))
    minutes = (time.monotonic() - started) / 60
    shutil.rmtree(out, ignore_errors=True)
    assert result.graded == result.total, f"{result.crashed} crashed"
    return result.total / minutes


VARIANTS = {
    "1 worker, 1 kernel": (1, 1),
    "1 worker": (1, None),
    "2 workers": (2, None),
}
"""(workers, kernels per submission); None: the batch's plan (cores / workers kernels)."""


def measure(
    folder: Path,
    options: GradeOptions,
    repeats: int,
    scratch: Path,
    variants: Mapping[str, tuple[int, int | None]] = VARIANTS,
) -> dict[str, list[float]]:
    """Submissions per minute of each variant, the variants taking turns in every repeat."""
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(repeats):
        for variant, (workers, kernels) in variants.items():
            variant_options = replace(options, parallel=kernels)
            rates[variant].append(throughput(folder, workers, variant_options, scratch))
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workload", choices=[*WORKLOADS, "both"], default="both")
    parser.add_argument("--profile", default="quick")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, {args.submissions} submissions, profile {args.profile}")
    workloads = list(WORKLOADS) if args.workload == "both" else [args.workload]
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-") as tmp:
        scratch = Path(tmp)
        folder = scratch / "in"
        make_batch(folder, args.submissions)
        for workload in workloads:
            options = GradeOptions(profile=args.profile, only=WORKLOADS[workload])
            rates = measure(folder, options, args.repeats, scratch)
            medians = {v: statistics.median(r) for v, r in rates.items()}
            cells = "   ".join(f"{v} {m:6.1f}/min" for v, m in medians.items())
            serial, one, two = medians.values()
            print(
                f"{workload:>5}: {cells}   ratio 2 workers / 1 worker {two / one:.2f}x, "
                f"/ serial {two / serial:.2f}x"
            )


if __name__ == "__main__":
    main()
