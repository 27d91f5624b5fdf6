"""Where and how a student's kernel runs: its own folder, environment, limits and thread share.

The kernel gets a fresh working directory with a copy of the notebook and nothing else, a
minimal environment (no inherited secrets, ``HOME`` inside the sandbox), its share of the
cores (DESIGN.md "Threads": an oversubscribed torch ran 30x slower), and resource limits applied
by ``kernel_boot.py`` before the first line of student code.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, replace
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
SANDBOX_USER_ENV = "DLGRADE_SANDBOX_USER"
DEFAULT_SANDBOX_USER = "dlgrade-student"


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
    run_as: RunAs | None = None
    """The unprivileged user the kernel becomes; None: it keeps the grader's user."""
    pids_cgroup: Path | None = None
    """A pids cgroup capping the kernel's tasks (root, where one can be made); None: none."""
    ipc_path: Path | None = None
    """Unix-socket prefix the kernel listens on when it has its own network namespace (there
    is no TCP there); None: TCP on localhost."""


@dataclass(frozen=True, kw_only=True)
class RunAs:
    """Who the kernel becomes before student code runs (only when the grader is root)."""

    user: str
    uid: int
    gid: int


@dataclass(frozen=True, kw_only=True)
class PrivilegeStatus:
    """Whether kernels drop to the sandbox user, and a sentence saying so for the output."""

    run_as: RunAs | None
    message: str


def _can_reach(path: Path, uid: int, gid: int) -> bool:
    """Whether ``uid`` could open ``path``: every folder on the way searchable, the end readable.

    A check up front, because a kernel that drops to a user who cannot read the Python
    installation dies on its first import, and the student would see every question crash.
    """
    path = path.resolve()
    chain = [*reversed(path.parents), path]
    for position, folder in enumerate(chain):
        try:
            info = folder.stat()
        except OSError:
            return False
        last = position == len(chain) - 1
        want = stat.S_IROTH if last and not stat.S_ISDIR(info.st_mode) else stat.S_IXOTH
        if last and stat.S_ISDIR(info.st_mode):
            want |= stat.S_IROTH
        if info.st_uid == uid:
            want <<= 6
        elif info.st_gid == gid:
            want <<= 3
        if info.st_mode & want != want:
            return False
    return True


def _kernel_needs() -> list[Path]:
    """What the kernel reads before any student code: the interpreter, stdlib and packages."""
    paths = sysconfig.get_paths()
    wanted = [Path(sys.executable), *(Path(paths[k]) for k in ("stdlib", "purelib", "platlib"))]
    return [p for p in wanted if p.exists()]


def privilege_status() -> PrivilegeStatus:
    """Drop to ``$DLGRADE_SANDBOX_USER`` (default ``dlgrade-student``) when root and possible."""
    name = os.environ.get(SANDBOX_USER_ENV) or DEFAULT_SANDBOX_USER
    if os.geteuid() != 0:
        return PrivilegeStatus(
            run_as=None,
            message="Student code ran as the grader's own user: the grader is not root, so it "
            "cannot switch to an unprivileged user.",
        )
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return PrivilegeStatus(
            run_as=None,
            message=f"Student code ran as root: there is no user {name!r} to switch to "
            "(the bundle's setup.sh creates it).",
        )
    if entry.pw_uid == 0:
        return PrivilegeStatus(run_as=None, message=f"Student code ran as root: {name!r} is root.")
    blocked = [p for p in _kernel_needs() if not _can_reach(p, entry.pw_uid, entry.pw_gid)]
    if blocked:
        return PrivilegeStatus(
            run_as=None,
            message=f"Student code ran as root: user {name!r} cannot read {blocked[0].resolve()} "
            "(the Python the kernel needs).",
        )
    return PrivilegeStatus(
        run_as=RunAs(user=name, uid=entry.pw_uid, gid=entry.pw_gid),
        message=f"Student code ran as the unprivileged user {name!r}.",
    )


def grant_to(box: Sandbox, scratch: Path) -> None:
    """Let ``box.run_as`` work in its folders and nothing else of the grader's.

    The scratch and sandbox folders stay root's and only searchable (no listing); the
    workdir and the probe's output folder become the user's; the probe's input folder stays
    root's so the student's code cannot swap it for a link before the grader writes into it.
    """
    if box.run_as is None:
        return
    uid, gid = box.run_as.uid, box.run_as.gid
    scratch.chmod(0o711)
    box.workdir.parent.chmod(0o711)
    runtime = {box.workdir.parent / "runtime"}
    if box.ipc_path is not None:  # the kernel creates its unix sockets there
        runtime.add(box.ipc_path.parent)
    for folder in (box.workdir, box.probe_out, *sorted(runtime)):
        folder.mkdir(parents=True, exist_ok=True)
        for path in (folder, *folder.rglob("*")):
            os.chown(path, uid, gid, follow_symlinks=False)
        folder.chmod(0o700)
    box.probe_in.mkdir(parents=True, exist_ok=True)
    box.probe_in.chmod(0o755)


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
        TMPDIR=str(workdir),  # the rest of the file system may be read-only (kernel_boot)
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
    run_as = _reachable_run_as(scratch)
    config = {
        "cwd": str(workdir),
        "rlimits": rlimits(limits),
        "hidden_roots": [str(PROJECT_ROOT)],
        "hidden_packages": list(_HIDDEN_PACKAGES),
        **_run_as_config(run_as, base),
        "namespaces": namespaces_available(),
    }
    argv = [sys.executable, "-I", "-c", _BOOT_SOURCE, json.dumps(config), "-f", "{connection_file}"]
    box = Sandbox(
        question=question,
        workdir=workdir,
        probe_in=base / f"probe-in-{token}",
        probe_out=base / f"probe-out-{token}",
        threads=threads,
        env=kernel_env(workdir, threads, device),
        argv=argv,
        run_as=run_as,
        ipc_path=_ipc_path(base) if namespaces_available() else None,
    )
    config.update(_confinement_config(box, scratch))
    if pids_cgroups_available():
        group = PIDS_CGROUP_ROOT / f"dlgrade-{secrets.token_hex(6)}"  # not the probe token
        config["cgroup_procs"] = str(group / "cgroup.procs")
        box = replace(box, pids_cgroup=group)
    if run_as is not None and box.ipc_path is not None and base not in box.ipc_path.parents:
        os.chown(box.ipc_path.parent, run_as.uid, run_as.gid)  # the kernel makes its sockets
    box = replace(box, argv=[*argv[:4], json.dumps(config), *argv[5:]])
    grant_to(box, scratch)
    return box


def _reachable_run_as(scratch: Path) -> RunAs | None:
    """The sandbox user, unless it could not even reach ``scratch`` (e.g. under pytest's
    0700 base folder): then the kernel keeps the grader's user rather than dying at start."""
    run_as = privilege_status().run_as
    if run_as is None or not _can_reach(scratch.resolve().parent, run_as.uid, run_as.gid):
        return None
    return run_as


def _run_as_config(run_as: RunAs | None, base: Path) -> dict[str, object]:
    """The part of kernel_boot's config that makes it drop privileges (empty: it does not)."""
    if run_as is None:
        return {}
    return {
        "run_as": {"user": run_as.user, "uid": run_as.uid, "gid": run_as.gid},
        "runtime_dir": str(base / "runtime"),
    }


def cleanup(sandbox: Sandbox) -> None:
    """Remove everything the kernel left behind (after its artifacts were copied out)."""
    shutil.rmtree(sandbox.workdir.parent, ignore_errors=True)
    if sandbox.ipc_path is not None and sandbox.workdir.parent not in sandbox.ipc_path.parents:
        shutil.rmtree(sandbox.ipc_path.parent, ignore_errors=True)


_UNSHARE_PROBE = "import ctypes, sys; sys.exit(ctypes.CDLL(None).unshare(0x60020000) != 0)"
_MAX_SOCKET_PATH = 100
"""A unix socket's path must fit in 108 bytes; jupyter_client appends ``-<port>``."""


@functools.cache
def namespaces_available() -> bool:
    """Whether a kernel can get its own PID and network namespaces (root, and not forbidden).

    Asked once, of a throwaway process, because a container may refuse ``unshare`` to root.
    """
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    try:
        probe = subprocess.run([sys.executable, "-I", "-c", _UNSHARE_PROBE], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def network_isolated() -> bool:
    """Whether student code runs without a network (its own, empty network namespace)."""
    return namespaces_available()


def _ipc_path(base: Path) -> Path:
    """Where the kernel's unix sockets go: in the sandbox, or a short folder if that is too long."""
    folder = base / "runtime"
    if len(str(folder / "kernel-0000")) > _MAX_SOCKET_PATH:
        folder = Path(tempfile.mkdtemp(prefix="dlg-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "kernel"


_MASKED_IN_PROJECT = (
    "graders",
    "reference",
    "reports",
    "tests",
    "tools",
    "scripts",
    "benchmarks",
    "docs",
    "student_template",
    "grading-output",
    ".git",
)
"""Project folders the kernel sees empty when it has its own mount namespace (the data and the
Python environment stay visible: the notebooks need them)."""


def masked_paths(scratch: Path) -> list[Path]:
    """The grader's code, reference, rubric, thresholds, results and the unpacked submission."""
    found = [PROJECT_ROOT / name for name in _MASKED_IN_PROJECT]
    for package in _HIDDEN_PACKAGES:  # also where an installed (non-editable) copy lives
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            found += [Path(p) for p in spec.submodule_search_locations]
    found.append(scratch / "submission")
    return sorted({p.resolve() for p in found if p.is_dir()})


def _confinement_config(box: Sandbox, scratch: Path) -> dict[str, object]:
    """What kernel_boot hides and leaves writable in the kernel's mount namespace."""
    if box.ipc_path is None:
        return {}
    writable = {box.workdir.parent, box.ipc_path.parent}
    return {
        "writable": sorted(str(p) for p in writable),
        "masked": [str(p) for p in masked_paths(scratch)],
    }


PIDS_CGROUP_ROOT = Path("/sys/fs/cgroup/pids")
"""The cgroup v1 pids hierarchy: the one limit on the number of processes that binds root."""


def pids_cgroups_available() -> bool:
    return os.geteuid() == 0 and os.access(PIDS_CGROUP_ROOT / "cgroup.procs", os.W_OK)


def make_pids_cgroup(group: Path, max_processes: int) -> bool:
    """Make the kernel's pids cgroup with ``pids.max`` set, right before the kernel starts.

    RLIMIT_NPROC does not bind root, so as root a fork bomb is capped only here; the kernel
    joins the group before its first fork, and its read-only ``/sys`` keeps it there. Made by
    the executor (and removed by it) so that a sandbox that never starts a kernel leaves none.
    """
    _sweep_stale_pids_cgroups(group.parent)
    try:
        group.mkdir()
        (group / "pids.max").write_text(str(max_processes), encoding="ascii")
    except OSError:
        with contextlib.suppress(OSError):
            group.rmdir()
        return False
    return True


STALE_CGROUP_S = 3600.0


def _sweep_stale_pids_cgroups(root: Path) -> None:
    """Remove empty groups a killed grader left behind (SIGKILL skips the executor's clean-up).
    An hour old and empty only: a live grader's group is younger or holds its kernel, and a
    group with processes cannot be removed anyway."""
    now = time.time()
    with contextlib.suppress(OSError):
        for old in root.glob("dlgrade-*"):
            with contextlib.suppress(OSError):
                if now - old.stat().st_mtime > STALE_CGROUP_S:
                    old.rmdir()


def remove_pids_cgroup(group: Path, wait_s: float = 5.0) -> None:
    """Kill whatever is still in the group, then remove it (a group with tasks cannot go)."""
    deadline = time.monotonic() + wait_s
    while True:
        with contextlib.suppress(OSError):
            group.rmdir()
            return
        if time.monotonic() > deadline:
            return
        with contextlib.suppress(OSError):
            for pid in (group / "cgroup.procs").read_text(encoding="ascii").split():
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.05)


def process_limit_holds() -> bool:
    """Whether a fork bomb in a kernel meets a limit (RLIMIT_NPROC or a pids cgroup)."""
    if os.geteuid() != 0 or privilege_status().run_as is not None:
        return True
    return pids_cgroups_available()
