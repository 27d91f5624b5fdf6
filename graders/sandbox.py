"""Where and how a student's kernel runs: its own folder, environment, limits and thread share.

The kernel gets a fresh working directory with a copy of the notebook and nothing else, a
minimal environment (no inherited secrets, ``HOME`` inside the sandbox), its share of the
cores (DESIGN.md "Threads": an oversubscribed torch ran 30x slower), and resource limits applied
by ``kernel_boot.py`` before the first line of student code.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from graders.config import PROJECT_ROOT, Limits

_BOOT_SOURCE = (Path(__file__).resolve().parent / "kernel_boot.py").read_text(encoding="utf-8")
_HIDDEN_PACKAGES = ("graders", "reference", "reports")
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
_PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    """One kernel's private space. ``probe_in``/``probe_out`` are made only when the probe runs."""

    question: str
    workdir: Path
    """The kernel's cwd: a copy of the notebook and whatever the student's code writes."""
    probe_in: Path
    probe_out: Path
    threads: int
    env: dict[str, str]
    argv: list[str]
    """Kernel command with ``{connection_file}`` left for jupyter_client to fill in."""


def thread_share(parallel_kernels: int, cores: int | None = None) -> int:
    """Cores per kernel when ``parallel_kernels`` run at once; never below one."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, parallel_kernels))


def rlimits(limits: Limits) -> dict[str, int]:
    return {
        "RLIMIT_DATA": limits.memory_mb << 20,
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_NPROC": limits.max_processes,
        "RLIMIT_FSIZE": limits.max_file_mb << 20,
        "RLIMIT_CORE": 0,
    }


def kernel_env(workdir: Path, threads: int, device: str) -> dict[str, str]:
    """A minimal environment: nothing of the grader's own is inherited but the basics."""
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    env.setdefault("PATH", "/usr/bin:/bin")
    env.update(
        HOME=str(workdir),
        MPLCONFIGDIR=str(workdir / ".config" / "matplotlib"),
        TORCH_HOME=str(workdir / ".cache" / "torch"),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        JUPYTER_PLATFORM_DIRS="1",
        DLGRADE_IN_GRADER="1",  # a self-check call inside a graded notebook does nothing
    )
    env.update({var: str(threads) for var in _THREAD_VARS})
    if device == "cpu":
        # A CPU profile grades as a CPU machine would: a hard-coded .cuda() fails here too.
        env["CUDA_VISIBLE_DEVICES"] = ""
    elif "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def prepare(
    *,
    question: str,
    scratch: Path,
    limits: Limits,
    threads: int,
    device: str,
) -> Sandbox:
    """Make a fresh working directory under ``scratch`` and the kernel command for it."""
    base = scratch / f"{question}-{secrets.token_hex(4)}"
    workdir = base / "work"
    workdir.mkdir(parents=True)
    token = secrets.token_hex(8)
    config = {
        "cwd": str(workdir),
        "rlimits": rlimits(limits),
        "hidden_roots": [str(PROJECT_ROOT)],
        "hidden_packages": list(_HIDDEN_PACKAGES),
    }
    argv = [sys.executable, "-I", "-c", _BOOT_SOURCE, json.dumps(config), "-f", "{connection_file}"]
    return Sandbox(
        question=question,
        workdir=workdir,
        probe_in=base / f"probe-in-{token}",
        probe_out=base / f"probe-out-{token}",
        threads=threads,
        env=kernel_env(workdir, threads, device),
        argv=argv,
    )


def cleanup(sandbox: Sandbox) -> None:
    """Remove everything the kernel left behind (after its artifacts were copied out)."""
    shutil.rmtree(sandbox.workdir.parent, ignore_errors=True)
