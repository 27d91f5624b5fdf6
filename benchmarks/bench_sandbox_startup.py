"""What the sandbox costs a kernel: start-up to a first cell's result, with and without it.

Each repeat starts one kernel under bubblewrap (this machine's mode) and one unconfined (the
same launcher, the same pre-bound sockets, no namespaces), alternating, so a noisy neighbour
slows both alike; each runs one trivial cell and shuts down. The medians and their difference
are printed: the sandbox's budget is 0.1 s per kernel (docs/benchmarks.md).

    python benchmarks/bench_sandbox_startup.py --repeats 10
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path

import nbformat

from graders import inject, sandbox
from graders.config import FIXTURE_DATA_ROOT, Limits
from graders.execute import KernelJob, NbclientExecutor
from graders.models import SandboxMode

LIMITS = Limits(cell_timeout_s=60, total_timeout_s=60, probe_timeout_s=30)


def one_kernel(plan: sandbox.SandboxPlan) -> float:
    """Seconds from preparing the sandbox to the kernel gone, for one cell and an empty probe."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1")])
    prepared = inject.prepare(nb, parameters={}, preamble="pass")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlgrade-bench-") as tmp:
        box = sandbox.prepare(
            plan=plan,
            question="bench",
            scratch=Path(tmp),
            limits=LIMITS,
            threads=1,
            device="cpu",
            data_root=FIXTURE_DATA_ROOT,
        )
        job = KernelJob(
            question="bench",
            prepared=prepared,
            sandbox=box,
            limits=LIMITS,
            probe_source="pass",
            write_probe_inputs=lambda: None,
        )
        try:
            run = asyncio.run(NbclientExecutor().run(job))
        finally:
            sandbox.cleanup(box)
    if any(c.status != "ok" for c in run.cells):
        raise SystemExit(f"a benchmark kernel failed: {run.cells}")
    return time.perf_counter() - started


def measure(repeats: int) -> dict[str, list[float]]:
    """Seconds per kernel under bubblewrap and unconfined, alternating, after one warm-up each."""
    confined = sandbox.choose(data_root=FIXTURE_DATA_ROOT)
    bare = sandbox.choose("unconfined", allow_unconfined=True, data_root=FIXTURE_DATA_ROOT)
    if confined.mode is not SandboxMode.BUBBLEWRAP:
        raise SystemExit(f"bubblewrap is not what this machine uses ({confined.mode.value})")
    one_kernel(confined), one_kernel(bare)  # warm the page cache and the imports
    times: dict[str, list[float]] = {"bubblewrap": [], "unconfined": []}
    for _ in range(repeats):
        times["bubblewrap"].append(one_kernel(confined))
        times["unconfined"].append(one_kernel(bare))
    return times


def report(times: dict[str, list[float]]) -> float:
    """Print the medians and ranges; return what the sandbox adds per kernel (median s)."""
    medians = {name: statistics.median(values) for name, values in times.items()}
    repeats = len(times["bubblewrap"])
    print(f"machine: {platform.node()} {platform.machine()}, {repeats} repeats, alternating")
    for name, value in medians.items():
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(f"  {name:<11} median {value:.3f} s  (range {spread} s)")
    extra = medians["bubblewrap"] - medians["unconfined"]
    ratio = medians["bubblewrap"] / medians["unconfined"]
    print(f"  the sandbox adds {extra:+.3f} s per kernel ({ratio:.2f}x)")
    return extra


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    report(measure(args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
