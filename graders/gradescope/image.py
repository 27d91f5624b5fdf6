"""A Gradescope image on this machine: the zip unpacked as Gradescope lays it out, ``setup.sh``
run into it, ``run_autograder`` run on a submission, optionally under Gradescope's limits.

Why here and not in a test helper: the tests (the image's privilege drop, the 768 MB fit) and
``benchmarks/bench_gradescope_limits.py`` need the same steps, and a course's staff can use them
to try a bundle before uploading it (docs/gradescope.md).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from graders.gradescope.bundle import ROOT_ENV
from graders.sandbox import container_limits

SYSTEM_PYTHON = Path("/usr/bin/python3.11")
"""What setup.sh makes the image's venv from (the sandbox user must be able to read it)."""
DATA_SOURCE_ENV = "DLGRADE_DATA_SOURCE"
_CLEARED = ("PYTHONPATH", "VIRTUAL_ENV", "DLGRADE_PYTHON", "DLGRADE_GRADESCOPE_PROFILE")
"""This project's settings that would leak into the image's processes."""


def unpack(bundle: Path, root: Path) -> None:
    """``root/source`` from the zip and an empty ``root/submission``, as Gradescope has them."""
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    root.chmod(0o755)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)


def _env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    return {**env, ROOT_ENV: str(root), **(extra or {})}


def why_no_setup() -> str | None:
    """Why ``setup.sh`` cannot run on this machine, or None."""
    if os.geteuid() != 0:
        return "setup.sh runs as root, as on Gradescope"
    if not SYSTEM_PYTHON.exists():
        return f"no system Python 3.11 ({SYSTEM_PYTHON}) to make the image's venv from"
    return None


def run_setup(root: Path, *, data_source: Path | None = None, timeout_s: float = 1200) -> None:
    """Run the zip's ``setup.sh`` into ``root`` (root only); raise with its output on failure."""
    extra = {DATA_SOURCE_ENV: str(data_source)} if data_source else {}
    done = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")],
        env=_env(root, extra),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"setup.sh failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )


@dataclass(frozen=True, kw_only=True)
class Limits:
    """Gradescope's container limits, as cgroups; None: not limited."""

    memory_mb: int | None = None
    cpus: float | None = None


GRADESCOPE_DEFAULTS = Limits(memory_mb=768, cpus=0.5)


@dataclass(frozen=True, kw_only=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    oom_kills: int


def run_autograder(
    root: Path,
    limits: Limits = Limits(),
    timeout_s: float = 1800,
    extra_env: dict[str, str] | None = None,
) -> Run:
    """The image's ``/autograder/run_autograder`` with its own venv, inside ``limits``."""
    with contextlib.ExitStack() as stack:
        joins: list[Path] = []
        memory = None
        if limits.memory_mb is not None or container_limits.can_make_memory_cgroup():
            # unlimited, it still gets a cgroup of its own: its peak is then the run's alone
            memory = stack.enter_context(container_limits.memory_cgroup(limits.memory_mb))
            joins.append(memory.folder)
        if limits.cpus is not None:
            joins.append(stack.enter_context(container_limits.cpu_cgroup(limits.cpus)))

        def enter() -> None:
            for folder in joins:
                container_limits.join(folder)

        started = time.monotonic()
        done = subprocess.run(
            ["bash", str(root / "run_autograder")],
            env=_env(root, extra_env),
            cwd=root,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            preexec_fn=enter if joins else None,
        )
        seconds = time.monotonic() - started
        kills = container_limits.oom_kills(memory) if memory is not None else 0
    return Run(
        returncode=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        seconds=seconds,
        oom_kills=kills,
    )


def drop_page_cache() -> bool:
    """Start cold, as a fresh container does: library pages are then charged to the run."""
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1", encoding="ascii")
    except OSError:
        return False
    return True
