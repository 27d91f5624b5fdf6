"""Kernel bootstrap, the first code of the kernel: ``python -I -c <source> CONFIG -f CONNECTION``.

It runs where the student's code will run (inside bubblewrap, or as the sandbox user in the
fallback mode) and before any of it: it sets the process cap that must be counted inside the
kernel's own user namespace, makes sure it holds no capability, hides the grader's packages
from the import system, and becomes an ordinary IPython kernel. Passed as source, never
imported: the kernel has no ``graders``. Standard library only (zmq and ipykernel come with the
kernel's environment).

The kernel's channels are unix sockets the launcher already created and bound on the host, in
a folder the kernel never sees; they arrive here as inherited file descriptors, and ZeroMQ is
told to use them (``ZMQ_USE_FD``) instead of binding sockets of its own. So the kernel needs no
writable folder shared with the grader: it cannot plant a link where a socket should be (the
grader's client would follow it when it reconnects) nor fill the host's disk through it.
"""

import contextlib
import json
import os
import resource
import sys
from collections.abc import Callable, Iterable
from typing import Any

_CAPABILITY_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapAmb")


def _refuse_capabilities() -> None:
    """Student code must not start with any capability, even inside its own user namespace."""
    with open("/proc/self/status", encoding="ascii") as fh:
        held = [
            line.split(":")[0]
            for line in fh
            if line.startswith(_CAPABILITY_FIELDS) and int(line.split()[1], 16) != 0
        ]
    if held:
        raise SystemExit(f"kernel boot: refusing to start with capabilities ({', '.join(held)})")


def _cap_processes(count: int | None) -> None:
    """RLIMIT_NPROC, set here because inside the kernel's own user namespace it counts the
    kernel's processes only (an ordinary user's other processes are not charged to it)."""
    if count:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NPROC, (int(count), int(count)))


def _hide_grader(hidden_roots: list[str], hidden_packages: list[str]) -> None:
    """Drop the grader's source root and editable-install mappings from the import system.

    Under bubblewrap none of it is on the kernel's file system at all; in the fallback mode
    this keeps ``import graders`` from finding the grader by its import machinery. Exact folders
    only: the virtual environment may live inside the project folder and must stay.
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


def _use_prebound_sockets(ip: str, fds: dict[str, int]) -> None:
    """Make ZeroMQ bind the kernel's channel addresses to the launcher's sockets."""
    import zmq

    by_address = {f"ipc://{ip}-{port}": int(fd) for port, fd in fds.items()}
    original = zmq.Socket.bind

    def bind(self: "zmq.Socket[Any]", addr: str, *args: Any, **kwargs: Any) -> Any:
        fd = by_address.pop(addr, None)
        if fd is not None:
            self.setsockopt(zmq.USE_FD, fd)
        return original(self, addr, *args, **kwargs)

    zmq.Socket.bind = bind  # type: ignore[method-assign]


_ERROR_TEXT_CHARS = 4000
_TRACEBACK_LINES, _TRACEBACK_LINE_CHARS = 60, 2000


class _Cut:
    """An exception's text, cut to a size the grader keeps (``str()`` is all ipykernel asks)."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text


def _bounded_tracebacks() -> None:
    """Errors leave the kernel at a readable size: an honest notebook that raises with a huge
    message (a printed array, a long repr) must not send a reply the grader has to drop."""
    import inspect

    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.zmqshell import ZMQInteractiveShell

    def cut(text: object) -> str:
        text = str(text)
        if len(text) <= _ERROR_TEXT_CHARS:
            return text
        return text[:_ERROR_TEXT_CHARS] + f"... ({len(text)} characters in all)"

    def cut_lines(lines: Iterable[object]) -> list[str]:
        return [str(line)[:_TRACEBACK_LINE_CHARS] for line in list(lines)[-_TRACEBACK_LINES:]]

    shown: Callable[..., Any] = ZMQInteractiveShell._showtraceback  # untyped in ipykernel

    def bounded_shown(  # the error message on iopub
        self: ZMQInteractiveShell, etype: object, evalue: object, stb: Iterable[object]
    ) -> Any:
        return shown(self, etype, _Cut(cut(evalue)), cut_lines(stb))

    executed: Callable[..., Any] = IPythonKernel.do_execute  # untyped in ipykernel

    async def bounded_reply(  # the execute_reply on shell
        self: IPythonKernel, *args: Any, **kwargs: Any
    ) -> Any:
        reply = executed(self, *args, **kwargs)
        if inspect.isawaitable(reply):
            reply = await reply
        if isinstance(reply, dict) and reply.get("status") == "error":
            reply["evalue"] = cut(reply.get("evalue", ""))
            reply["traceback"] = cut_lines(reply.get("traceback") or [])
        return reply

    ZMQInteractiveShell._showtraceback = bounded_shown  # type: ignore[method-assign]
    IPythonKernel.do_execute = bounded_reply  # type: ignore[method-assign]


def _connection_ip(kernel_args: list[str]) -> str:
    with open(kernel_args[kernel_args.index("-f") + 1], encoding="utf-8") as fh:
        return str(json.load(fh)["ip"])


def _main() -> None:
    config = json.loads(sys.argv[1])
    kernel_args = sys.argv[2:]
    _cap_processes(config.get("max_processes"))
    if config.get("no_capabilities"):
        _refuse_capabilities()
    os.chdir(config["cwd"])
    _hide_grader(config.get("hidden_roots", []), config.get("hidden_packages", []))
    if config.get("socket_fds"):
        _use_prebound_sockets(_connection_ip(kernel_args), config["socket_fds"])
    sys.argv = ["ipykernel_launcher", *kernel_args]
    from ipykernel.kernelapp import IPKernelApp

    # The grader wrote the connection file and keeps it; the kernel's copy is read-only.
    IPKernelApp.write_connection_file = lambda self, **kwargs: None  # type: ignore[method-assign]
    _bounded_tracebacks()
    IPKernelApp.launch_instance()


_main()
