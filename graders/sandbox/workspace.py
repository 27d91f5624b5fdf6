"""One kernel's sandbox: its host folders, its environment and the command that starts it.

``prepare`` makes a fresh folder per kernel under the grading's scratch folder and writes the
launcher's plan (``launch.py``): the mode, the limits, the cgroups to join, the user to
become, and under bubblewrap every mount of ``layout.py``. ``cleanup`` removes all of it and
gives the kernel's uid back. The grader's side keeps only host paths; the probe cell is told
the kernel's own paths (``KernelPaths``), which differ under bubblewrap.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from graders.config import PROJECT_ROOT, Limits
from graders.kernel import source as kernel_source
from graders.models import SandboxMode
from graders.sandbox import layout, seccomp
from graders.sandbox.cgroups import CgroupSupport
from graders.sandbox.results_file import ResultsFile
from graders.sandbox.users import KernelUid, RunAs, allocate_kernel_uid, sweep

LAUNCHER = Path(__file__).resolve().parent / "launch.py"
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
_PASSED_THROUGH = ("LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_MAX_SOCKET_PATH = 100
"""A unix socket's path must fit in 108 bytes; jupyter_client appends ``-<port>``."""
HIDDEN_PACKAGES = ("graders", "reference", "reports")
WATCHED_OPEN_FILES = 1024
"""RLIMIT_NOFILE of a kernel whose memory the watchdog measures: every socket holds buffers no
process's memory shows (two of them at the system's default size each), and the files a
kernel has in flight over unix sockets are capped by this number too. 1024 is Linux's usual
default; a kernel uses about 60."""
ARCHIVE_NAME = "artifacts.zip"


@dataclass(frozen=True, kw_only=True)
class SandboxPlan:
    """How every kernel of one grading is confined (chosen once by ``choose``)."""

    mode: SandboxMode
    bwrap: str | None = None
    """The bubblewrap binary (bubblewrap mode)."""
    kernel_uids: bool = False
    """A root grader: each kernel becomes a uid of its own (bubblewrap and the user mode)."""
    cgroups: CgroupSupport = field(default_factory=lambda: CgroupSupport(memory=None, pids=None))


@dataclass(frozen=True, kw_only=True)
class KernelPaths:
    """The kernel's own view of its folders: its working folder, and where the probe cell finds
    its inputs and writes its results."""

    workdir: str
    probe_in: str
    probe_archive: str


@dataclass(frozen=True, kw_only=True)
class Sandbox:
    """One kernel's private space, on the grader's side."""

    question: str
    mode: SandboxMode
    base: Path
    """The kernel's host folder; everything below goes with ``cleanup``."""
    argv: list[str]
    """Kernel command with ``{connection_file}`` left for jupyter_client to fill in."""
    env: dict[str, str]
    """The launcher's environment (the kernel's own is in the plan)."""
    connection_file: Path
    ip: str
    """The unix-socket prefix of the kernel's channels, as the grader connects to it (the
    relay listens there, ``graders/sandbox/relay.py``)."""
    kernel_prefix: str
    """The prefix of the kernel's own sockets, which the launcher binds and the relay opens."""
    runtime: Path
    """The grader's socket folder (the launcher binds the kernel's channels there)."""
    probe_in: Path
    probe_archive: Path
    results: ResultsFile
    """``probe_archive`` as the grader opened it before the kernel started: read only this."""
    kernel_paths: KernelPaths
    threads: int
    cgroups: CgroupSupport
    uid: KernelUid | None = None


def thread_share(parallel_kernels: int, cores: int | None = None) -> int:
    """Cores per kernel when ``parallel_kernels`` run at once; never below one."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, parallel_kernels))


def rlimits(limits: Limits) -> dict[str, int]:
    """Per-process limits the launcher sets (hard = soft). The process cap is set inside the
    kernel's own user namespace under bubblewrap (``boot.py``), so there it is left out."""
    return {
        "RLIMIT_DATA": limits.memory_mb << 20,
        "RLIMIT_CPU": limits.cpu_seconds,
        "RLIMIT_FSIZE": limits.max_file_mb << 20,
        "RLIMIT_CORE": 0,
    }


def kernel_env(*, home: str, tmp: str, threads: int, device: str) -> dict[str, str]:
    """The kernel's whole environment: nothing of the grader's own is inherited but locale."""
    python_bin = str(Path(layout.kernel_python()).parent)
    env = {k: os.environ[k] for k in _PASSED_THROUGH if k in os.environ}
    env.update(
        PATH=f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        HOME=home,
        USER="student",
        LOGNAME="student",
        MPLCONFIGDIR=f"{home}/.config/matplotlib",
        TORCH_HOME=f"{home}/.cache/torch",
        TMPDIR=tmp,
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


def _owned(path: Path, run_as: RunAs | None, mode: int) -> None:
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid, follow_symlinks=False)
    path.chmod(mode)


def _socket_folder(base: Path) -> Path:
    """The kernel's socket folder, in its own folder unless that path is too long for a socket."""
    folder = base / "runtime"
    if len(str(folder / "kernel-0000")) > _MAX_SOCKET_PATH:
        folder = Path(tempfile.mkdtemp(prefix="dlg-"))
    folder.mkdir(exist_ok=True)
    return folder


def _result_file(path: Path, run_as: RunAs | None) -> Path:
    """A pre-made empty file the kernel may write but not replace (its folder is not its own)."""
    path.touch(mode=0o600)
    _owned(path, run_as, 0o600)
    return path


def prepare(
    *,
    plan: SandboxPlan,
    question: str,
    scratch: Path,
    limits: Limits,
    threads: int,
    device: str,
    data_root: Path,
    boot_source: str | None = None,
) -> Sandbox:
    """Make one kernel's folders and its launch plan under ``scratch``.

    Nothing of the submission is needed: the kernel is started before the submission is read,
    and its notebook is handed over later (``deliver``). ``boot_source`` replaces the kernel's
    boot code (the sandbox self-test runs a one-liner).
    """
    base = Path(tempfile.mkdtemp(prefix=f"{question}-", dir=scratch))
    uid = allocate_kernel_uid() if plan.kernel_uids else None
    with contextlib.ExitStack() as undo:  # a failure below (a full disk) holds nothing
        undo.callback(shutil.rmtree, base, ignore_errors=True)
        if uid is not None:
            undo.callback(uid.release)
        run_as = uid.run_as if uid is not None else None
        empty_dir = base / "empty"
        empty_dir.mkdir(mode=0o555)
        empty_file = base / "empty-file"
        empty_file.touch(mode=0o444)
        runtime = _socket_folder(base)
        if base not in runtime.parents:  # a short path of its own, outside ``base``
            undo.callback(shutil.rmtree, runtime, ignore_errors=True)
        probe_in = base / "probe-in"
        probe_in.mkdir(mode=0o755)
        probe_out = base / "probe-out"
        probe_out.mkdir(mode=0o755)
        host = layout.HostPaths(
            probe_in=probe_in,
            probe_archive=_result_file(probe_out / ARCHIVE_NAME, run_as),
            empty_dir=empty_dir,
            empty_file=empty_file,
        )
        results = ResultsFile(host.probe_archive)
        undo.callback(results.close)
        runtime.chmod(0o700)  # the grader's alone: the kernel gets its sockets as descriptors
        boot_config: dict[str, object] = {
            "hidden_roots": [str(PROJECT_ROOT)],
            "hidden_packages": list(HIDDEN_PACKAGES),
        }
        process_limits = rlimits(limits)
        launch: dict[str, object] = {
            "mode": plan.mode.value,
            "python": layout.kernel_python(),
            "boot_source": boot_source if boot_source is not None else kernel_source("boot"),
            "run_as": None if run_as is None else {"uid": run_as.uid, "gid": run_as.gid},
        }
        if plan.mode is SandboxMode.BUBBLEWRAP:
            env = kernel_env(home=layout.WORKSPACE, tmp="/tmp", threads=threads, device=device)
            boot_config.update(
                cwd=layout.WORKSPACE, max_processes=limits.max_processes, no_capabilities=True
            )
            mounts = layout.kernel_mounts(
                host=host,
                data_root=data_root,
                disk_mb=limits.disk_mb,
                tmp_mb=limits.tmp_mb,
                cuda=device == "cuda",
                uid=run_as.uid if run_as is not None else os.getuid(),
                gid=run_as.gid if run_as is not None else os.getgid(),
            )
            launch["stage"] = os.geteuid() == 0
            launch["bwrap"] = {
                "binary": plan.bwrap,
                "options": list(layout.BWRAP_OPTIONS),
                "mounts": mounts,
                "kernel_connection": layout.KERNEL_CONNECTION,
            }
            kernel = KernelPaths(
                workdir=layout.WORKSPACE,
                probe_in=layout.KERNEL_PROBE_IN,
                probe_archive=f"{layout.KERNEL_PROBE_OUT}/{ARCHIVE_NAME}",
            )
        else:
            workdir = base / "work"
            workdir.mkdir()
            if run_as is not None:
                os.chown(workdir, run_as.uid, run_as.gid, follow_symlinks=False)
            workdir.chmod(0o700)
            env = kernel_env(home=str(workdir), tmp=str(workdir), threads=threads, device=device)
            boot_config.update(cwd=str(workdir), no_capabilities=run_as is not None)
            process_limits["RLIMIT_NPROC"] = limits.max_processes
            kernel = KernelPaths(
                workdir=str(workdir),
                probe_in=str(probe_in),
                probe_archive=str(host.probe_archive),
            )
            if run_as is not None:  # the user must reach its folders, and list none of the grader's
                scratch.chmod(0o711)
                base.chmod(0o711)
                for folder, mode in ((probe_in, 0o750), (probe_out, 0o710)):
                    # Its group alone: no other local user may read the submission or reach
                    # a results file the kernel made setuid (it owns that file).
                    os.chown(folder, -1, run_as.gid, follow_symlinks=False)
                    folder.chmod(mode)
        launch["env"] = env
        launch["boot"] = boot_config
        launch["kernel_ip"] = layout.KERNEL_IP
        launch["bind_prefix"] = str(runtime / "kernel")
        confined = plan.mode in (SandboxMode.BUBBLEWRAP, SandboxMode.USER)
        watched = confined and plan.cgroups.memory is None
        if watched:  # the watchdog measures memory: bound what it cannot see (seccomp.py)
            process_limits["RLIMIT_NOFILE"] = WATCHED_OPEN_FILES
        launch["rlimits"] = process_limits
        policy = seccomp.Policy(unix_sockets_only=confined, uncounted_memory=watched)
        filter_program = seccomp.program(policy)
        launch["seccomp"] = filter_program.hex() if filter_program else None
        launch["keyctl"] = seccomp.syscall_number("keyctl")
        plan_file = base / "launch.json"
        plan_file.write_text(json.dumps(launch), encoding="utf-8")
        plan_file.chmod(0o600)
        box = Sandbox(
            question=question,
            mode=plan.mode,
            base=base,
            argv=[sys.executable, "-I", str(LAUNCHER), str(plan_file), "-f", "{connection_file}"],
            env={"PATH": "/usr/bin:/bin", **{k: v for k, v in env.items() if k in _PASSED_THROUGH}},
            connection_file=base / "connection.json",
            ip=str(runtime / "k"),
            kernel_prefix=str(runtime / "kernel"),
            runtime=runtime,
            probe_in=probe_in,
            probe_archive=host.probe_archive,
            results=results,
            kernel_paths=kernel,
            threads=threads,
            cgroups=plan.cgroups,
            uid=uid,
        )
        undo.pop_all()
    return box


def deliver(box: Sandbox, files: Mapping[str, Path]) -> tuple[str, ...]:
    """Hand files (the student's notebook) to a kernel that may already be booting: they are
    copied, read-only, into its inputs folder, and the preamble cell copies them into its
    working folder before the student's first cell (``inject.preamble_source(files=...)``),
    where they are the kernel user's own, as in Jupyter. Returns the names to give the
    preamble. The probe's inputs join that folder only after the student's cells."""
    names = []
    for name, path in files.items():
        if name != Path(name).name or name.startswith("."):
            raise ValueError(f"not a plain file name: {name!r}")
        target = box.probe_in / name
        shutil.copyfile(path, target)
        target.chmod(0o444)
        names.append(name)
    return tuple(names)


def cleanup(box: Sandbox) -> None:
    """Remove everything of the kernel's (after its artifacts were copied out); without
    namespaces also whatever its uid left in the host's shared folders and IPC tables."""
    box.results.close()
    shutil.rmtree(box.base, ignore_errors=True)
    if box.base not in box.runtime.parents:
        shutil.rmtree(box.runtime, ignore_errors=True)
    if box.uid is not None:
        if box.mode is SandboxMode.USER:
            sweep(box.uid.run_as.uid)
        box.uid.release()
