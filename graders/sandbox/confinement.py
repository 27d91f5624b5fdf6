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

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from graders.config import PROJECT_ROOT, Limits
from graders.errors import SandboxError
from graders.models import Confinement, SandboxMode
from graders.sandbox import cgroups, layout, seccomp
from graders.sandbox.users import KERNEL_UID_BASE, can_reach
from graders.sandbox.workspace import Sandbox, SandboxPlan, cleanup, prepare

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
_SELF_TEST_TIMEOUT_S = 60
_SELF_TEST = """
import json, os, sys
expect = json.loads(EXPECT)
status = dict(
    line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line
)
checks = [("its working folder is not " + expect["cwd"], os.getcwd() == expect["cwd"])]
checks += [
    ("it shares the grader's " + name + " namespace", os.readlink("/proc/self/ns/" + name) != ns)
    for name, ns in expect["namespaces"].items()
]
checks += [
    ("new privileges are allowed", status.get("NoNewPrivs", "").strip() == "1"),
    ("no seccomp filter", not expect["seccomp"] or status.get("Seccomp", "").strip() == "2"),
    ("it runs as root", not expect["not_root"] or os.getuid() != 0),
]
def unseen(path):  # absent, or one of the launcher's masks: an empty folder or file
    if os.path.isdir(path):
        return not os.listdir(path)
    return not os.path.exists(path) or os.path.getsize(path) == 0
checks += [("the host's " + p + " is visible", not os.path.exists(p)) for p in expect["absent"]]
checks += [("the host's " + p + " is visible", unseen(p)) for p in expect["masked"]]
failed = [what for what, ok in checks if not ok]
if failed:
    print("the sandbox is not what bubblewrap was asked for: " + "; ".join(failed), file=sys.stderr)
    sys.exit(3)
"""
"""The self-test's kernel: the sandbox must be the one the launcher asked bubblewrap for (a
binary that drops options, or an old one that ignores some, fails here and is named with what
its sandbox lacks): every namespace a new one, no new privileges, the seccomp filter, the kernel
uid, the host's folders out of sight. A millisecond, from inside."""
_NAMESPACES = ("user", "pid", "net", "ipc", "uts", "mnt", "cgroup")
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`) and allow unprivileged "
    "user namespaces (`sysctl kernel.unprivileged_userns_clone=1`; in a container, run it "
    "with a seccomp profile that permits them)"
)


def _bwrap_binary() -> str | None:
    return os.environ.get(BWRAP_ENV) or shutil.which("bwrap")


def _self_test_source(scratch: Path, not_root: bool) -> str:
    """The self-test's program, given what the grader sees of its own process."""
    namespaces = {
        name: os.readlink(f"/proc/self/ns/{name}")
        for name in _NAMESPACES
        if os.path.lexists(f"/proc/self/ns/{name}")
    }
    expect = {
        "cwd": layout.WORKSPACE,
        "namespaces": namespaces,
        "seccomp": seccomp.program() is not None,
        "not_root": not_root,
        "absent": [str(scratch)],
        "masked": [
            str(PROJECT_ROOT / "graders"),
            *(str(p) for p in layout.grader_paths(layout.python_trees())),
        ],
    }
    return f"EXPECT = {json.dumps(json.dumps(expect))}\n{_SELF_TEST}"


class _SelfTest:
    """The launcher started with a one-line kernel in a real sandbox, in the background: it
    runs while the grader launches its kernels under the plan it is expected to confirm
    (``PlanChoice``); ``problem`` waits for it."""

    def __init__(self, binary: str, data_root: Path):
        self._tmp = tempfile.TemporaryDirectory(prefix="dlgrade-selftest-")
        self._process: subprocess.Popen[str] | None = None
        self._box: Sandbox | None = None
        self._failed: str | None = None
        plan = SandboxPlan(mode=SandboxMode.BUBBLEWRAP, bwrap=binary, kernel_uids=os.geteuid() == 0)
        try:
            box = self._box = prepare(
                plan=plan,
                question="selftest",
                scratch=Path(self._tmp.name),
                limits=Limits(),
                threads=1,
                device="cpu",
                data_root=data_root,
                boot_source=_self_test_source(Path(self._tmp.name), plan.kernel_uids),
            )
        except OSError as exc:
            self._failed = f"the sandbox's folders could not be made ({exc})"
            return
        channels = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
        info = {"ip": box.ip, "transport": "ipc", **{c: n for n, c in enumerate(channels, 1)}}
        try:  # a failure here is the self-test's verdict; ``problem`` still releases the uid
            box.connection_file.write_text(json.dumps(info), encoding="utf-8")
        except OSError as exc:
            self._failed = f"the sandbox's folders could not be made ({exc})"
            return
        argv = [a.replace("{connection_file}", str(box.connection_file)) for a in box.argv]
        try:
            self._process = subprocess.Popen(
                argv,
                env=box.env,
                cwd=box.base,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            self._failed = f"bubblewrap did not start ({exc})"

    def problem(self) -> str | None:
        """None if the sandbox worked, else why (once; the folders are gone after it)."""
        try:
            if self._process is not None:
                try:
                    _, stderr = self._process.communicate(timeout=_SELF_TEST_TIMEOUT_S)
                except subprocess.TimeoutExpired as exc:
                    self._process.kill()
                    self._process.communicate()
                    return f"bubblewrap did not start ({exc})"
                if self._process.returncode != 0:
                    said = (stderr.strip().splitlines() or ["no message"])[-1]
                    return f"bubblewrap could not make a sandbox here: {said}"
            return self._failed
        finally:
            if self._box is not None:
                cleanup(self._box)  # its folders, a socket folder outside them, its uid
            self._tmp.cleanup()


def _bubblewrap_plan(binary: str) -> SandboxPlan:
    return SandboxPlan(
        mode=SandboxMode.BUBBLEWRAP,
        bwrap=binary,
        kernel_uids=os.geteuid() == 0,
        cgroups=cgroups.support(),
    )


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


def _decide(
    requested: str, allow_unconfined: bool, bubblewrap: SandboxPlan | str | None
) -> SandboxPlan:
    """The mode, given how bubblewrap fared: its plan, why it cannot be used, or None where it
    was not tried (another mode was asked for)."""
    tried: list[str] = []
    if isinstance(bubblewrap, SandboxPlan):
        return bubblewrap
    if bubblewrap is not None:
        tried.append(bubblewrap)
        if requested != "auto":
            raise SandboxError(
                f"the bubblewrap sandbox was asked for, but {bubblewrap}; {INSTALL_HINT}"
            )
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


_Key = tuple[str, bool, Path, str | None]
"""The mode asked for, whether unconfined is allowed, the data root, the bubblewrap binary."""


class PlanChoice:
    """This process's sandbox plan, while bubblewrap's self-test may still be running.

    The self-test (0.13-0.16 s: a sandbox made and a Python started in it) decides the mode, so
    it used to come before the first kernel's launch. Now ``likely`` is the plan the machine is
    expected to confirm, and kernels may be *launched* under it at once; ``settle`` waits for
    the self-test and gives the plan every kernel must run under. The grader hands no
    notebook to a kernel and runs no cell before ``settle``, and a kernel launched under a
    ``likely`` plan that did not hold is stopped and launched again under the settled one
    (``evaluate.StartedKernels.confirm``): until then a kernel holds nothing but its own boot.
    """

    def __init__(self, key: _Key):
        requested, _allow, data_root, binary = key
        self._key = key
        self._test: _SelfTest | None = None
        self._tested: SandboxPlan | None = None
        """The bubblewrap plan under test; None where bubblewrap is not tried."""
        if binary is not None and requested in ("auto", SandboxMode.BUBBLEWRAP.value):
            self._test = _SelfTest(binary, data_root)
            self._tested = _bubblewrap_plan(binary)
        self._plan: SandboxPlan | None = None
        self._error: SandboxError | None = None
        self._lock = threading.Lock()

    @property
    def likely(self) -> SandboxPlan:
        """The plan to launch kernels under now: the settled one, or the one being tested."""
        if self._tested is not None and self._plan is None:
            return self._tested
        return self.settle()

    def settle(self) -> SandboxPlan:
        """The plan every kernel runs under (waits for the self-test); SandboxError where the
        machine cannot confine student code and the caller did not allow that."""
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._plan is None:
                requested, allow, _root, _binary = self._key
                bubblewrap: SandboxPlan | str | None = None
                if self._test is not None:
                    problem = self._test.problem()
                    bubblewrap = self._tested if problem is None else problem
                elif requested in ("auto", SandboxMode.BUBBLEWRAP.value):
                    bubblewrap = "bubblewrap (`bwrap`) is not installed"
                try:
                    self._plan = _decide(requested, allow, bubblewrap)
                except SandboxError as exc:
                    self._error = exc
                    with _choices_lock:  # the next ``choose_ahead`` tries afresh
                        if _choices.get(self._key) is self:
                            del _choices[self._key]
                    raise
            return self._plan


_choices: dict[_Key, PlanChoice] = {}
_choices_lock = threading.Lock()


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


def choose_ahead(
    requested: str | None = None,
    *,
    allow_unconfined: bool = False,
    data_root: Path | None = None,
) -> PlanChoice:
    """The plan for every kernel of this process, its self-test started (see ``PlanChoice``).
    One per set of arguments; one that failed is tried afresh by the next call."""
    mode = requested or os.environ.get(MODE_ENV) or "auto"
    if mode not in _MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r}; choose one of {', '.join(_MODES)}")
    allow = allow_unconfined or os.environ.get(ALLOW_UNCONFINED_ENV) == "1"
    root = (data_root or Path(sys.prefix)).resolve()
    key = (mode, allow, root, _bwrap_binary())
    with _choices_lock:
        choice = _choices.get(key)
        if choice is None:
            choice = _choices[key] = PlanChoice(key)
    if choice._tested is None:  # nothing being tested: a refusal is said now
        choice.settle()
    return choice


def choose(
    requested: str | None = None,
    *,
    allow_unconfined: bool = False,
    data_root: Path | None = None,
) -> SandboxPlan:
    """The plan for every kernel of this process (cached); raises SandboxError where the
    machine cannot confine student code and the caller did not allow that."""
    return choose_ahead(requested, allow_unconfined=allow_unconfined, data_root=data_root).settle()


def describe(plan: SandboxPlan, limits: Limits, requested: str | None = None) -> Confinement:
    """The report's account of the sandbox: mode, why, and what held for these limits."""
    mode = requested or os.environ.get(MODE_ENV) or "auto"
    return Confinement(
        mode=plan.mode, reason=_reason(plan, mode), limits=_limit_lines(plan, limits)
    )
