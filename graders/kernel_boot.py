"""Kernel bootstrap: run as ``python -I -c <this file's source> CONFIG_JSON -f CONNECTION_FILE``.

It is the first code of the kernel process, before any student code: it applies the resource
limits, hides the grader's own packages, then becomes an ordinary IPython kernel. It is passed
as source (not imported) so that the kernel never has ``graders`` on its import path.
Standard library only.
"""

import contextlib
import json
import os
import resource
import signal
import sys


def _limit(name: str, value: int) -> None:
    which = getattr(resource, name, None)
    if which is None or value <= 0:
        return
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    # A limit the system refuses is left unset: the kernel still runs, and docs/engine.md says
    # which limits hold in which mode.
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(which, (value, value))


def _hide_grader(hidden_roots: list[str], hidden_packages: list[str]) -> None:
    """Drop the grader's source root and editable-install mappings from the import system.

    Exact folders only: the virtual environment may live inside the project folder and must stay.
    """
    roots = {os.path.realpath(r) for r in hidden_roots}
    sys.path[:] = [p for p in sys.path if not (p and os.path.realpath(p) in roots)]
    for finder in sys.meta_path:
        module = sys.modules.get(getattr(finder, "__module__", "") or "")
        mapping = getattr(module, "MAPPING", None)  # setuptools' editable-install finder
        if isinstance(mapping, dict):
            for pkg in hidden_packages:
                mapping.pop(pkg, None)
    for pkg in hidden_packages:
        sys.modules.pop(pkg, None)


def _private_connection_file(argv: list, runtime_dir: str, uid: int, gid: int) -> list:
    """Copy the connection file (root's, unreadable to the user) to one the user owns."""
    argv = list(argv)
    at = argv.index("-f") + 1
    with open(argv[at], "rb") as source:
        content = source.read()
    copy = os.path.join(runtime_dir, "kernel-connection.json")
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchown(fd, uid, gid)
        os.write(fd, content)
    finally:
        os.close(fd)
    argv[at] = copy
    return argv


def _drop_privileges(config: dict, argv: list) -> list:
    """Become the unprivileged user before IPython starts; refuse to go on as root.

    Limits were set as root with hard == soft, so the user cannot raise them afterwards.
    """
    run_as = config.get("run_as")
    if not run_as:
        return argv
    uid, gid = int(run_as["uid"]), int(run_as["gid"])
    argv = _private_connection_file(argv, config["runtime_dir"], uid, gid)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise SystemExit("kernel_boot: could not switch to the sandbox user")
    os.environ["USER"] = os.environ["LOGNAME"] = str(run_as["user"])
    return argv


_CLONE_NEWNS = 0x00020000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_FORWARDED = ("SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2")
_ENDING = ("SIGTERM", "SIGHUP")


def _enter_namespaces(config: dict) -> None:
    """Go on as PID 1 of new PID and network namespaces; this process stays as a supervisor.

    Root is exempt from RLIMIT_NPROC and may signal or write anything, so as root nothing a
    student starts (a `setsid` child, a fork bomb) may outlive the kernel: when PID 1 of a
    namespace ends, Linux kills every process in it, and none can leave it. The network
    namespace has no interfaces up: no socket reaches anything (the kernel talks to the grader
    over unix sockets). Only the forked child returns; on any failure nothing changes.
    """
    if not config.get("namespaces"):
        return
    import ctypes
    import select

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWNS) != 0:
        print("kernel_boot: no namespaces; the kernel is not isolated", file=sys.stderr)
        return
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(write_end)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if select.select([read_end], [], [], 0)[0]:  # the supervisor died before prctl
            os._exit(1)
        os.close(read_end)
        _confine_files(libc, config)
        _drop_capabilities(libc)
        return
    os.close(read_end)
    _supervise(child)


_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
_SPECIAL_MOUNTS = ("/proc", "/dev")
_READ_ONLY_PROC = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus")
"""Global kernel settings root could write (as Docker does, made read-only)."""
_DROPPED_CAPS = (2, 9, 12, 16, 17, 19, 21, 22, 24, 25, 27, 30, 32, 33, 34, 38, 39, 40)
"""DAC_READ_SEARCH (open_by_handle_at walks past mounts), LINUX_IMMUTABLE, NET_ADMIN,
SYS_MODULE, SYS_RAWIO, SYS_PTRACE, SYS_ADMIN (mount: undo what _confine_files did),
SYS_BOOT, SYS_RESOURCE (raise the hard limits), SYS_TIME, MKNOD (a raw disk device),
AUDIT_CONTROL, MAC_OVERRIDE, MAC_ADMIN, SYSLOG, PERFMON, BPF, CHECKPOINT_RESTORE."""


def _mount(libc, source, target, fstype, flags: int, data=None) -> bool:
    def enc(value):
        return None if value is None else value.encode()

    return libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) == 0


def _confine_files(libc, config: dict) -> None:
    """In the kernel's own mount namespace: hide the grader's files, make the rest read-only.

    The grader's folders (reference, rubric, thresholds, other results) get an empty
    read-only tmpfs over them; every other mount becomes read-only except the sandbox's own
    folders, so root's kernel cannot edit another submission's results or plant files.
    Nothing propagates back (the namespace is made private first); any failure leaves the
    kernel as it was and says so in the kernel log.
    """
    if not _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE):
        print("kernel_boot: mounts not private; files not confined", file=sys.stderr)
        return
    writable = [w for w in config.get("writable", []) if os.path.isdir(w)]
    for folder in writable:
        _mount(libc, folder, folder, None, _MS_BIND | _MS_REC)
    with open("/proc/self/mountinfo", encoding="utf-8") as fh:
        points = [line.split()[4].encode().decode("unicode_escape") for line in fh]
    for point in points:
        special = any(point == s or point.startswith(s + "/") for s in _SPECIAL_MOUNTS)
        if special or point in writable:
            continue
        flags = os.statvfs(point).f_flag & (_MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
        _mount(libc, None, point, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | flags)
    for path in _READ_ONLY_PROC:
        if os.path.exists(path) and _mount(libc, path, path, None, _MS_BIND):
            _mount(libc, None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)
    for folder in config.get("masked", []):
        if os.path.isdir(folder):
            mask = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
            if not _mount(libc, "tmpfs", folder, "tmpfs", mask, "size=4k,mode=000"):
                print(f"kernel_boot: could not hide {folder}", file=sys.stderr)


def _drop_capabilities(libc) -> None:
    """Give up the root powers that would undo the confinement (kept: file access, setuid)."""
    import ctypes

    for cap in _DROPPED_CAPS:
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP: no exec can bring it back
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable}
    if libc.capget(header, data) != 0:
        return
    for cap in _DROPPED_CAPS:
        word, bit = divmod(cap, 32)
        for field in range(3):
            data[word * 3 + field] &= ~(1 << bit) & 0xFFFFFFFF
    if libc.capset(header, data) != 0:
        print("kernel_boot: could not drop capabilities", file=sys.stderr)


def _supervise(child: int) -> None:
    """Pass signals on to the kernel and end with it; SIGTERM/SIGHUP end the kernel at once.

    An interrupt sent to the process group reaches the kernel directly; it is passed on only
    when student code moved the kernel to another group. PID 1 ignores a SIGTERM it has no
    handler for, so an ending signal becomes SIGKILL, which tears the namespace down.
    """

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            if signum in {getattr(signal, n) for n in _ENDING}:
                os.kill(child, signal.SIGKILL)
            elif os.getpgid(child) != os.getpgrp():
                os.kill(child, signum)

    for name in (*_FORWARDED, *_ENDING):
        signal.signal(getattr(signal, name), forward)
    try:
        _, status = os.waitpid(child, 0)
    except ChildProcessError:
        os._exit(1)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)


def _join_pids_cgroup(config: dict) -> None:
    """Enter the grader's pids cgroup before any fork, so every descendant is counted."""
    procs = config.get("cgroup_procs")
    if procs:
        try:
            with open(procs, "w", encoding="ascii") as fh:
                fh.write(str(os.getpid()))
        except OSError as exc:
            print(f"kernel_boot: no process cap ({exc})", file=sys.stderr)


def _die_with_grader() -> None:
    """End this process (and so, through the namespace or the supervisor, the kernel) when the
    grader that started it dies, even by SIGKILL: no kernel outlives a killed batch."""
    import ctypes

    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the grader was already gone before prctl
        os._exit(1)


def _main() -> None:
    config = json.loads(sys.argv[1])
    _die_with_grader()
    _join_pids_cgroup(config)
    for name, value in config.get("rlimits", {}).items():
        _limit(name, int(value))
    os.umask(0o077)
    _enter_namespaces(config)
    kernel_args = _drop_privileges(config, sys.argv[2:])
    os.chdir(config["cwd"])
    _hide_grader(config.get("hidden_roots", []), config.get("hidden_packages", []))
    sys.argv = ["ipykernel_launcher", *kernel_args]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


_main()
