"""What the hostile-submission tests share: grading one scenario under short limits, reading
back what its hostile cell printed, and finding the processes it left behind."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from graders import sandbox
from graders.config import FIXTURE_DATA_ROOT, GradeOptions
from graders.models import GradeReport, QuestionRun, SandboxMode
from graders.pipeline import grade
from tools import make_hostile

HOSTILE = make_hostile.HOSTILE
FULL_Q2 = 6.0
MODE = sandbox.choose(data_root=FIXTURE_DATA_ROOT).mode
"""The sandbox this machine gives student code (bubblewrap in CI, as root and as a TA)."""
CONFINED = MODE is not SandboxMode.UNCONFINED

# The cell timeout is wide: a hostile cell that merely probes (connects to a few sockets, lists
# /proc) must never be cut short on a slow, busy CI machine, where that once took over 4 s and
# the test read nothing. A test about the timeout itself passes its own short one.

LIMITS = {
    "cell_timeout_s": 20,
    "total_timeout_s": 60,
    "probe_timeout_s": 30,
    "memory_mb": 1024,
    "max_file_mb": 8,
    "output_cap_kb": 256,
    "max_processes": 256,
}


def _profiles(tmp_path: Path, limits: dict[str, int] | None = None, **params: object) -> Path:
    """A ``quick`` profile with short limits, and extra values injected into Q2."""
    lines = ["[profiles.quick]", 'data = "fixtures"', 'device = "cpu"', "[profiles.quick.limits]"]
    lines += [f"{k} = {v}" for k, v in {**LIMITS, **(limits or {})}.items()]
    lines.append("[profiles.quick.parameters.q2]")
    lines += [f"{k} = {json.dumps(v)}" for k, v in params.items()]
    path = tmp_path / "profiles.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _grade(
    tmp_path: Path,
    scenario: str | Path,
    limits: dict[str, int] | None = None,
    *,
    out: Path | None = None,
    **params: object,
) -> GradeReport:
    source = scenario if isinstance(scenario, Path) else HOSTILE / scenario
    options = GradeOptions(
        profile="quick", only=("q2",), profiles_file=_profiles(tmp_path, limits, **params)
    )
    return grade(source, out or tmp_path / "out", options)


def _q2(report: GradeReport) -> tuple[QuestionRun, float]:
    (run,) = [q for q in report.run.questions if q.question == "q2"]
    (result,) = [q for q in report.questions if q.question == "q2"]
    return run, result.score


def _last_cell(report: GradeReport) -> int:
    """The student's number of the hostile cell: the notebook's last cell."""
    del report  # every scenario appends one cell to the same notebook
    return len(nbformat.read(str(make_hostile.SOURCE), as_version=4).cells)


def _result_dir(tmp_path: Path, report: GradeReport) -> Path:
    return tmp_path / "out" / report.run.submission.name


def _marked_processes() -> list[int]:
    """Processes the fixtures started with the marker on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if make_hostile.FORK_MARKER.encode() in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    """Whatever a test asserts, leave no marked process behind for the next one."""
    yield
    for pid in _marked_processes():
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


def printed(tmp_path: Path, report: GradeReport, tag: str) -> Any:
    """The JSON a hostile cell printed after ``tag`` (``TAG {...}``), from the executed notebook
    the grader kept; None when the cell printed no such line."""
    run, _ = _q2(report)
    if run.execution.executed_notebook is None:
        return None
    nb = nbformat.read(str(_result_dir(tmp_path, report) / run.execution.executed_notebook), 4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for line in str(output.get("text", "")).splitlines():
                if line.startswith(f"{tag} "):
                    return json.loads(line[len(tag) + 1 :])
    return None


def grade_with_the_cli(tmp_path: Path, *sources: Path) -> tuple[int, dict[str, Any]]:
    """``dlgrade grade A B ...`` (quick profile, Q2 only) as a TA types it: the exit code and
    each submission's result.json by its name."""
    from graders.cli import main

    out = tmp_path / "out"
    code = main(
        [
            "grade",
            *map(str, sources),
            *("--profile", "quick", "--profiles", str(_profiles(tmp_path))),
            *("--only", "q2", "--out", str(out)),
        ]
    )
    results = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/result.json")}
    return code, results


def _rss_kib() -> int:
    """The grader's (this process's) resident size now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _peak_rss_growth_kib(action: Callable[[], GradeReport]) -> tuple[GradeReport, int]:
    """``action``'s report and how far the grader's resident size rose above where it started
    while it ran (sampled every 50 ms: a message held for an instant counts)."""
    baseline = _rss_kib()
    peak = [baseline]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _rss_kib())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        report = action()
    finally:
        done.set()
        watcher.join()
    return report, peak[0] - baseline
