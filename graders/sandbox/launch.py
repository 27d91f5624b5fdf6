"""The kernel command: ``python -I launch.py PLAN.json -f CONNECTION_FILE``, started by the grader.

It runs on the host, as the grader's user, between jupyter_client and the kernel, and does in
order what must happen before any student code exists: die with the grader, join the kernel's
cgroups (so every later process is counted), set the resource limits (hard = soft, so they
cannot be raised again), and then start the kernel in the way the plan's mode says:

* ``bubblewrap``: ``exec bwrap ... python -I -c BOOT``. As root the bind sources are first made
  reachable for an unprivileged user (a private mount namespace with a tmpfs over ``/tmp``
  holding bind mounts of them; nothing of it is visible to anyone else and it ends with this
  process), then the launcher becomes the kernel's own unprivileged uid and runs bwrap as that
  user, exactly as an ordinary TA would. Small files (the connection file, ``/etc/passwd``)
  are handed to bwrap through pipes.
* ``user``: become the sandbox user and exec the boot code.
* ``unconfined``: exec the boot code as the grader's own user.

In every mode the kernel's five channel sockets are made here, on the host, in the grader's
own socket folder (at the plan's ``bind_prefix``, where the grader's relay connects: see
``graders/sandbox/relay.py``), and handed down as file descriptors (``graders/kernel/boot.py``
tells ZeroMQ to use them): the kernel never sees, let alone writes, the folder the grader
connects through.

Standard library only, and self-contained: it is run as a script, never imported.
"""

import contextlib
import ctypes
import json
import os
import resource
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

_PR_SET_PDEATHSIG = 1
_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000
_STAGE = "/tmp"
"""Where bind sources are staged for the unprivileged bwrap (root only, in a private mount
namespace: a fresh tmpfs over this folder hides the host's own)."""


def _fail(message: str) -> NoReturn:
    print(f"dlgrade launcher: {message}", file=sys.stderr, flush=True)
    os._exit(70)


def _die_with_grader() -> None:
    """SIGKILL this process (and so the whole sandbox) when the grader dies, even by SIGKILL."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the grader was already gone before prctl
        os._exit(1)


def _join_cgroups(procs_files: list[str]) -> None:
    for procs in procs_files:
        try:
            with open(procs, "w", encoding="ascii") as fh:
                fh.write(str(os.getpid()))
        except OSError as exc:
            _fail(f"could not join the kernel's cgroup {procs}: {exc}")


def _set_limits(limits: Mapping[str, int]) -> None:
    for name, value in limits.items():
        which = getattr(resource, name, None)
        if which is None or int(value) <= 0:
            continue
        _soft, hard = resource.getrlimit(which)
        value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError) as exc:
            _fail(f"could not set {name}={value}: {exc}")


def _become(run_as: Mapping[str, int]) -> None:
    uid, gid = int(run_as["uid"]), int(run_as["gid"])
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        _fail("could not switch to the kernel's user")


_KEYCTL_JOIN_SESSION_KEYRING = 1
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2


def _fresh_session_keyring(number: int | None) -> None:
    """A new, empty session keyring: the kernel must not inherit the grader's (a TA's login
    session keeps keys there); the seccomp filter then refuses the keyring calls altogether."""
    if number:
        ctypes.CDLL(None, use_errno=True).syscall(int(number), _KEYCTL_JOIN_SESSION_KEYRING, None)


class _SockFilterProgram(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _apply_seccomp(program: bytes) -> None:
    """Install the filter on this process (the fallback modes; bwrap installs it itself)."""
    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFilterProgram(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _fail("could not set no_new_privs")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        _fail(f"could not install the seccomp filter: {os.strerror(ctypes.get_errno())}")


def _mount(
    libc: ctypes.CDLL,
    source: str | None,
    target: str,
    fstype: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    def enc(value: str | None) -> bytes | None:
        return None if value is None else value.encode()

    if libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        _fail(f"mount {source} on {target}: {os.strerror(ctypes.get_errno())}")


def _stage_sources(sources: list[str]) -> dict[str, str]:
    """Root only: bind each source under a private tmpfs that any user can traverse.

    The kernel's user cannot reach paths such as a Python under ``/root`` or pytest's 0700
    folders; in a mount namespace of this process alone, each source is bind-mounted onto
    ``/tmp/s<n>``, and bwrap binds those. O_PATH descriptors are opened before the tmpfs hides
    ``/tmp`` (some sources live there) and after the namespace is made (a bind needs a source
    in the caller's own namespace).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        _fail(f"no private mount namespace: {os.strerror(ctypes.get_errno())}")
    _mount(libc, None, "/", None, _MS_REC | _MS_PRIVATE)
    fds = {src: os.open(src, os.O_PATH) for src in sources}
    _mount(libc, "tmpfs", _STAGE, "tmpfs", 0, "mode=0755,size=64k,nr_inodes=4096")
    staged: dict[str, str] = {}
    for number, (src, fd) in enumerate(fds.items()):
        target = f"{_STAGE}/s{number}"
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        _mount(libc, f"/proc/self/fd/{fd}", target, None, _MS_BIND | _MS_REC)
        os.close(fd)
        staged[src] = target
    return staged


def _pipe_with(data: bytes) -> int:
    """A pipe's read end already holding ``data`` (bwrap reads it to the end)."""
    read_end, write_end = os.pipe()
    if len(data) > 60_000:  # a pipe's buffer; these are a few hundred bytes
        _fail("a file for the sandbox is too large for a pipe")
    os.write(write_end, data)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    return read_end


_CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def _read_connection(path: str) -> dict[str, Any]:
    with open(path, "rb") as fh:
        info: dict[str, Any] = json.loads(fh.read())
    return info


def _bind_channels(info: Mapping[str, Any], prefix: str) -> dict[str, int]:
    """Listening unix sockets at ``prefix-<port>`` (the grader's relay connects there); port ->
    inheritable descriptor."""
    if info.get("transport") != "ipc":
        _fail("the kernel's channels must be unix sockets (transport ipc)")
    fds: dict[str, int] = {}
    for channel in _CHANNELS:
        port = int(info[channel])
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = f"{prefix}-{port}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener.bind(path)
        listener.listen(100)
        fd = listener.detach()
        os.set_inheritable(fd, True)
        fds[str(port)] = fd
    return fds


def _kernel_connection(info: Mapping[str, Any], kernel_ip: str) -> bytes:
    """The connection file as the kernel sees it: only an address string, never a host path."""
    return json.dumps({**info, "ip": kernel_ip}).encode()


def _bwrap_argv(plan: Mapping[str, Any], info: Mapping[str, Any]) -> list[str]:
    """bwrap's command line. Everything read from the host (the files to copy in) is opened
    before the staging hides ``/tmp``, where some of it may live."""
    box = plan["bwrap"]
    kernel_connection = _kernel_connection(info, plan["kernel_ip"])
    opened: dict[str, int] = {}
    for mount in box["mounts"]:
        if mount["kind"] == "file":
            opened[mount["dest"]] = os.open(mount["src"], os.O_RDONLY)
            os.set_inheritable(opened[mount["dest"]], True)
    sources = [m["src"] for m in box["mounts"] if "src" in m and m["kind"] != "file"]
    staged = _stage_sources(sources) if plan.get("stage") else {}
    argv = [box["binary"], *box["options"]]
    if plan.get("seccomp"):
        argv += ["--seccomp", str(_pipe_with(bytes.fromhex(plan["seccomp"])))]
    for mount in box["mounts"]:
        kind = mount["kind"]
        if kind in ("data", "connection"):
            text = mount["text"].encode() if kind == "data" else kernel_connection
            argv += ["--perms", mount.get("perms", "0444"), "--ro-bind-data"]
            argv += [str(_pipe_with(text)), mount["dest"]]
        elif kind == "file":
            argv += ["--perms", mount.get("perms", "0644"), "--file"]
            argv += [str(opened[mount["dest"]]), mount["dest"]]
        elif kind in ("ro-bind", "bind", "dev-bind"):
            argv += [f"--{kind}", staged.get(mount["src"], mount["src"]), mount["dest"]]
        elif kind == "tmpfs":
            argv += ["--perms", mount.get("perms", "0755"), "--size", str(mount["size"])]
            argv += ["--tmpfs", mount["dest"]]
        elif kind == "symlink":
            argv += ["--symlink", mount["target"], mount["dest"]]
        elif kind in ("proc", "dev", "dir", "remount-ro"):
            argv += [f"--{kind}", mount["dest"]]
        else:
            _fail(f"unknown mount kind {kind!r}")
    for name, value in plan["env"].items():
        argv += ["--setenv", name, value]
    return argv


def _connection_copy(info: Mapping[str, Any], folder: str, run_as: Mapping[str, int] | None) -> str:
    """The kernel's own copy of the connection file, in its working folder (the grader's copy
    lies in a folder the kernel's user cannot enter)."""
    copy = os.path.join(folder, ".dlgrade-connection.json")
    fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o400)
    try:
        if run_as:
            os.fchown(fd, int(run_as["uid"]), int(run_as["gid"]))
        os.write(fd, json.dumps(info).encode())
    finally:
        os.close(fd)
    return copy


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        plan = json.load(fh)
    info = _read_connection(sys.argv[sys.argv.index("-f") + 1])
    _die_with_grader()
    # The grader makes the cgroups right before the start and names them in the environment.
    _join_cgroups([p for p in os.environ.get("DLGRADE_CGROUPS", "").split(":") if p])
    _set_limits(plan.get("rlimits", {}))
    _fresh_session_keyring(plan.get("keyctl"))
    os.umask(0o077)
    boot_config = {**plan["boot"], "socket_fds": _bind_channels(info, plan["bind_prefix"])}
    boot = [plan["python"], "-I", "-c", plan["boot_source"], json.dumps(boot_config)]
    mode = plan["mode"]
    run_as = plan.get("run_as")
    if mode == "bubblewrap":
        argv = _bwrap_argv(plan, info)
        if run_as:
            _become(run_as)
            _die_with_grader()  # a change of user clears the parent-death signal
        argv += ["--", *boot, "-f", plan["bwrap"]["kernel_connection"]]
        _exec(argv)
    if mode not in ("user", "unconfined"):
        _fail(f"unknown sandbox mode {mode!r}")
    os.environ.clear()
    os.environ.update(plan["env"])
    copy = _connection_copy({**info, "ip": plan["kernel_ip"]}, plan["boot"]["cwd"], run_as)
    if run_as:
        _become(run_as)
        _die_with_grader()
    if plan.get("seccomp"):
        _apply_seccomp(bytes.fromhex(plan["seccomp"]))
    _exec([*boot, "-f", copy])


def _exec(argv: list[str]) -> NoReturn:
    try:
        os.execv(argv[0], argv)
    except OSError as exc:  # execv's own message names no file
        _fail(f"cannot run {argv[0]} as uid {os.getuid()}: {exc.strerror}")


main()
