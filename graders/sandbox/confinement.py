"""Which sandbox this machine gives student code, decided once per grader process.

1. **bubblewrap** when ``bwrap`` exists and a real kernel-shaped sandbox starts here (the
   self-test runs the launcher end to end: for a root grader through its staging and its
   change of uid, exactly as a kernel will). Root and ordinary users get the same sandbox.
2. Else, for a root grader, **user**: each kernel runs as an unprivileged uid of its own (as the
   Gradescope bundle does in containers without user namespaces), but only where such a user
   can read the Python it needs and cannot read the grader's own files; file permissions are
   then the confinement.
3. Else nothing confines student code, and the grader refuses to run it unless told
   ``--allow-unconfined``.

``DLGRADE_SANDBOX`` (or ``--sandbox``) asks for one mode; a mode that does not work here is an
error, never a silent downgrade. Every report carries the resulting ``Confinement``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from graders.config import PROJECT_ROOT, Limits
from graders.errors import SandboxError
from graders.models import Confinement, SandboxMode
from graders.sandbox import cgroups, layout, seccomp
from graders.sandbox.users import KERNEL_UID_BASE, can_reach
from graders.sandbox.workspace import SandboxPlan, prepare

_PRIVATE_IN_PROJECT = (
    "graders",
    "reference",
    "fixtures/submissions",
    "fixtures/hostile",
    "tests",
    "tools",
    ".git",
)
"""What a kernel without namespaces must not be able to read: the grader, the reference, the
fixtures holding complete solutions, the tests (their goldens show answers) and the history."""
MODE_ENV = "DLGRADE_SANDBOX"
BWRAP_ENV = "DLGRADE_BWRAP"
ALLOW_UNCONFINED_ENV = "DLGRADE_ALLOW_UNCONFINED"
_MODES = ("auto", *(m.value for m in SandboxMode if m is not SandboxMode.NOT_RECORDED))
_SELF_TEST = "import os, sys; sys.exit(0 if os.getcwd() == '/workspace' else 3)"
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`) and allow unprivileged "
    "user namespaces (`sysctl kernel.unprivileged_userns_clone=1`; in a container, run it "
    "with a seccomp profile that permits them)"
)


def _bwrap_binary() -> str | None:
    return os.environ.get(BWRAP_ENV) or shutil.which("bwrap")


def _self_test(binary: str, data_root: Path) -> str | None:
    """Start the launcher with a one-line kernel in a real sandbox; None if it worked, else why."""
    plan = SandboxPlan(mode=SandboxMode.BUBBLEWRAP, bwrap=binary, kernel_uids=os.geteuid() == 0)
    with tempfile.TemporaryDirectory(prefix="dlgrade-selftest-") as tmp:
        scratch = Path(tmp)
        try:
            box = prepare(
                plan=plan,
                question="selftest",
                scratch=scratch,
                limits=Limits(),
                threads=1,
                device="cpu",
                data_root=data_root,
                boot_source=_SELF_TEST,
            )
        except OSError as exc:
            return f"the sandbox's folders could not be made ({exc})"
        channels = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
        info = {"ip": box.ip, "transport": "ipc", **{c: n for n, c in enumerate(channels, 1)}}
        box.connection_file.write_text(json.dumps(info), encoding="utf-8")
        argv = [a.replace("{connection_file}", str(box.connection_file)) for a in box.argv]
        try:
            done = subprocess.run(
                argv, env=box.env, cwd=box.base, capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap did not start ({exc})"
        finally:
            if box.uid is not None:
                box.uid.release()
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"bubblewrap could not make a sandbox here: {said}"
    return None


def _bubblewrap(data_root: Path) -> tuple[SandboxPlan | None, str]:
    binary = _bwrap_binary()
    if binary is None:
        return None, "bubblewrap (`bwrap`) is not installed"
    problem = _self_test(binary, data_root)
    if problem is not None:
        return None, problem
    root = os.geteuid() == 0
    plan = SandboxPlan(
        mode=SandboxMode.BUBBLEWRAP, bwrap=binary, kernel_uids=root, cgroups=cgroups.support()
    )
    who = "as root, each kernel as a uid of its own" if root else "as an ordinary user"
    return plan, f"bubblewrap works here (the grader runs {who})"


def _user_mode() -> tuple[SandboxPlan | None, str]:
    """Root without namespaces: every kernel as a fresh uid, which the grader's files must keep
    out (as the Gradescope bundle's root-only source does) while the Python lets it in."""
    if os.geteuid() != 0:
        return None, "the grader is not root, so it cannot run kernels as another user"
    stranger = KERNEL_UID_BASE  # any kernel uid: it owns nothing and is in no group
    blocked = [p for p in layout.python_trees() if not can_reach(p, stranger, stranger)]
    if blocked:
        return None, f"an unprivileged user cannot read {blocked[0]} (the Python kernels need)"
    exposed = [
        p
        for p in (PROJECT_ROOT / name for name in _PRIVATE_IN_PROJECT)
        if p.exists() and can_reach(p, stranger, stranger)
    ]
    if exposed:
        return None, f"an unprivileged user could read the grader's own {exposed[0]}"
    plan = SandboxPlan(mode=SandboxMode.USER, kernel_uids=True, cgroups=cgroups.support())
    return plan, "student code runs as an unprivileged uid of its own per kernel"


def _limit_lines(plan: SandboxPlan, limits: Limits) -> tuple[str, ...]:
    bwrap = plan.mode is SandboxMode.BUBBLEWRAP
    if plan.cgroups.memory is not None:
        memory = f"memory: {limits.memory_mb} MB for the kernel and all its children (a cgroup)"
    else:
        memory = (
            f"memory: {limits.memory_mb} MB for the kernel and all its children, checked four "
            "times a second by the grader (no cgroup could be made here), and per process "
            "(RLIMIT_DATA)"
        )
    if plan.cgroups.pids is not None:
        processes = f"processes: {limits.max_processes} for the kernel tree (a pids cgroup)"
    elif bwrap:
        processes = (
            f"processes: {limits.max_processes} (RLIMIT_NPROC, counted in the kernel's own "
            "user namespace)"
        )
    elif plan.mode is SandboxMode.USER:
        processes = f"processes: {limits.max_processes} for the sandbox user (RLIMIT_NPROC)"
    else:
        processes = (
            f"processes: RLIMIT_NPROC {limits.max_processes}, counting the grader's own user"
        )
    if plan.cgroups.cpu is not None:
        cpu = "cpu: the kernel's share of the cores, for all its processes (a CPU cgroup)"
    elif bwrap:
        cpu = (
            "cpu: no CPU cgroup here; no process may start a session of its own, so the "
            "scheduler shares the cores between kernels, not between their processes"
        )
    else:
        cpu = f"cpu: {limits.cpu_seconds} s of CPU time per process (RLIMIT_CPU)"
    if bwrap:
        disk = (
            f"disk: a {limits.disk_mb} MB working folder and {limits.tmp_mb} MB /tmp and "
            f"/dev/shm in memory; on the host only the probe's results file "
            f"(at most {limits.max_file_mb} MB)"
        )
        network = "network: none (an empty network namespace, and no inet sockets)"
    else:
        disk = f"disk: at most {limits.max_file_mb} MB per file, no total cap"
        network = (
            "network: no inet sockets (a seccomp filter); unix sockets as file permissions allow"
            if plan.mode is SandboxMode.USER and seccomp.program() is not None
            else "network: not isolated"
        )
    return (memory, processes, cpu, disk, network)


@functools.cache
def _choose(requested: str, allow_unconfined: bool, data_root: Path) -> SandboxPlan:
    tried: list[str] = []
    if requested in ("auto", SandboxMode.BUBBLEWRAP.value):
        plan, why = _bubblewrap(data_root)
        if plan is not None:
            return plan
        tried.append(why)
        if requested != "auto":
            raise SandboxError(f"the bubblewrap sandbox was asked for, but {why}; {INSTALL_HINT}")
    if requested in ("auto", SandboxMode.USER.value):
        plan, why = _user_mode()
        if plan is not None:
            return plan
        tried.append(why)
        if requested != "auto":
            raise SandboxError(f"the unprivileged-user mode was asked for, but {why}")
    if allow_unconfined or requested == SandboxMode.UNCONFINED.value:
        if not allow_unconfined:
            raise SandboxError("the unconfined mode needs --allow-unconfined as well")
        return SandboxPlan(mode=SandboxMode.UNCONFINED, cgroups=cgroups.support())
    raise SandboxError(
        "student code would run unconfined on this machine, so the grader will not run it: "
        f"{'; '.join(tried)}. To fix it, {INSTALL_HINT}. To grade without any confinement "
        "anyway (trusted notebooks only), pass --allow-unconfined."
    )


def _reason(plan: SandboxPlan, requested: str) -> str:
    asked = "requested" if requested != "auto" else "chosen automatically"
    if plan.mode is SandboxMode.BUBBLEWRAP:
        who = (
            "the grader runs as root; each kernel also became a uid of its own"
            if plan.kernel_uids
            else "the grader runs as an ordinary user"
        )
        return (
            f"bubblewrap ({asked}): each kernel in its own user, pid, network, ipc, uts and "
            f"cgroup namespaces, an empty root with only what it needs, no capabilities; {who}"
        )
    if plan.mode is SandboxMode.USER:
        return (
            f"unprivileged user ({asked}): bubblewrap could not be used here, so each kernel "
            "ran as an unprivileged uid of its own; file permissions keep it from the grader's "
            "files and from other kernels"
            + (
                ", and a seccomp filter from the network"
                if seccomp.program() is not None
                else "; the network is not isolated"
            )
        )
    return (
        "unconfined: nothing confined student code (the grader was told --allow-unconfined); "
        "it ran as the grader's own user with the grader's rights"
    )


def choose(
    requested: str | None = None,
    *,
    allow_unconfined: bool = False,
    data_root: Path | None = None,
) -> SandboxPlan:
    """The plan for every kernel of this process (cached); raises SandboxError where the
    machine cannot confine student code and the caller did not allow that."""
    mode = requested or os.environ.get(MODE_ENV) or "auto"
    if mode not in _MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r}; choose one of {', '.join(_MODES)}")
    allow = allow_unconfined or os.environ.get(ALLOW_UNCONFINED_ENV) == "1"
    root = (data_root or Path(sys.prefix)).resolve()
    return _choose(mode, allow, root)


def describe(plan: SandboxPlan, limits: Limits, requested: str | None = None) -> Confinement:
    """The report's account of the sandbox: mode, why, and what held for these limits."""
    mode = requested or os.environ.get(MODE_ENV) or "auto"
    return Confinement(
        mode=plan.mode, reason=_reason(plan, mode), limits=_limit_lines(plan, limits)
    )
