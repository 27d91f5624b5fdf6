"""Run one prepared notebook, then the grader's probe, in one sandboxed kernel.

``Executor`` is the seam: ``NbclientExecutor`` starts a real Jupyter kernel through nbclient;
tests of the later steps use a fake one (``tests/fakes.py``) the way httpx tests use a mock
transport. Cells run one at a time so that an error in one never stops the next, each has its
own timeout, and all of them share one total deadline. nbclient's exceptions are mapped here
into outcomes (data) or, for faults of the machinery itself, into ``ExecutionError``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.connect import channel_socket_types
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell

from graders.config import Limits
from graders.errors import ExecutionError
from graders.inject import PreparedNotebook
from graders.models import KernelStatus
from graders.sandbox import Sandbox, cgroups
from graders.sandbox.relay import KernelRelay
from graders.sandbox.watchdog import MemoryWatchdog, peak_resident

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TIMEOUT_ENAME = "CellTimeoutError"
_TRACEBACK_CHARS = 4000
MAX_MESSAGE_BYTES = 8 << 20
"""The largest kernel message the grader takes in, all its frames together. ipykernel sends
everything printed between two flushes as one message: a fast 1 GiB print arrived as one
message of hundreds of MiB, and the grader's memory grew by 640 MiB decoding it. ZMQ drops a
frame over this size (and the connection) before holding any of it; ``_BudgetSocket`` drops a
message whose frames add up to more (120 frames of 30 MB each took 3.7 GB otherwise)."""
QUEUED_MESSAGES = {"iopub": 64, "shell": 16, "control": 16, "stdin": 4, "hb": 16}
"""How many messages ZMQ may queue per channel before the kernel's are dropped: a kernel that
sends faster than the grader reads (or on a channel it never reads) cannot fill its memory."""
_DROP_NOTE = "[dlgrader: output beyond the size cap was dropped]\n"
_LOG_TAIL_BYTES = 16 << 10
_ERROR_FIELD_CHARS = {"ename": 200, "evalue": 4000}
_TRACEBACK_LINES, _TRACEBACK_LINE_CHARS = 60, 2000
SEND_TIMEOUT_MS = 20_000
REPLY_DROPPED = "KernelReplyDropped"
_WATCH_S = 0.25
_UNCOUNTED = frozenset({"status", "execute_input", "shutdown_reply"})
"""Small bookkeeping messages the executor needs; every other message counts against the cap."""


@dataclass(kw_only=True)
class StartedKernel:
    """A kernel launched before its notebook is known (``Executor.start``): it boots in its own
    process, about 0.7 s of Python, IPython and ipykernel imports, while the grader reads the
    submission and draws the probe's inputs. ``Executor.run`` takes it over with a job of the
    same sandbox; ``Executor.stop`` ends one that no job took (a question without a notebook, a
    submission that could not be read)."""

    sandbox: Sandbox
    limits: Limits
    state: Any = None
    """The executor's own (nbclient's client, the kernel's log, cgroups, relays)."""


@dataclass(frozen=True, kw_only=True)
class KernelJob:
    """Everything one kernel run needs; built by the pipeline from the earlier steps."""

    question: str
    prepared: PreparedNotebook
    sandbox: Sandbox
    limits: Limits
    probe_source: str
    """The probe cell's code (grader-owned), run after the student's cells."""
    write_probe_inputs: Callable[[], None]
    """Called just before the probe cell, so the student's code never sees the inputs."""
    started: StartedKernel | None = None
    """This sandbox's kernel, already launched (``Executor.start``); None: ``run`` starts one."""


@dataclass(frozen=True, kw_only=True)
class CellOutcome:
    position: int
    """Index in the prepared notebook."""
    status: KernelStatus
    ename: str = ""
    evalue: str = ""
    traceback: str = ""

    def __post_init__(self) -> None:  # a plain string (a test's fake kernel) is checked here
        object.__setattr__(self, "status", KernelStatus(self.status))


@dataclass(frozen=True, kw_only=True)
class KernelRun:
    """The raw result of one kernel run, before it becomes an ``ExecutionRecord``."""

    notebook: NotebookNode
    cells: tuple[CellOutcome, ...]
    probe_status: KernelStatus
    probe_message: str = ""
    kernel_died_at: int | None = None
    """Position of the cell during which the kernel died, if it did."""
    total_timed_out: bool = False
    output_truncated: bool = False
    seconds: float = 0.0
    probe_seconds: float = 0.0
    """The grader's probe alone (part of ``seconds``), so a slow probe is told from slow cells."""
    memory_killed: bool = False
    """The kernel tree's memory cgroup killed a process (the kernel or one of its children)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "probe_status", KernelStatus(self.probe_status))


class Executor(Protocol):
    async def start(self, box: Sandbox, limits: Limits) -> StartedKernel: ...

    async def run(self, job: KernelJob) -> KernelRun: ...

    async def stop(self, started: StartedKernel) -> None: ...


def plain_traceback(lines: list[str]) -> str:
    text = _ANSI.sub("", "\n".join(lines))
    if len(text) > _TRACEBACK_CHARS:
        text = "...\n" + text[-_TRACEBACK_CHARS:]
    return text


def _error_of(cell: NotebookNode) -> dict[str, Any] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return dict(out)
    return None


class MessageTooLarge(zmq.ZMQError):
    """A kernel message whose frames add up to more than ``MAX_MESSAGE_BYTES``."""

    def __init__(self, size: int):
        super().__init__(zmq.EMSGSIZE, f"a kernel message of {size} bytes was dropped")


class _BudgetSocket(zmq.asyncio.Socket):
    """A socket that reads a multipart message frame by frame and keeps it only while all its
    frames fit the budget; an output message over it is skipped (and noted), any other is an
    error the executor turns into a lost reply."""

    skip_oversize = False
    skipped = False

    async def recv_multipart(  # type: ignore[override]
        self, flags: int = 0, copy: bool = True, track: bool = False
    ) -> list[Any]:
        while True:
            parts: list[Any] = []
            total, over = 0, False
            while True:
                part = await self.recv(flags, copy=copy, track=track)
                total += len(part)
                if total > MAX_MESSAGE_BYTES:
                    over = True
                else:
                    parts.append(part)
                if not self.get(zmq.RCVMORE):
                    break
            if not over:
                return parts
            if not self.skip_oversize:
                raise MessageTooLarge(total)
            self.skipped = True


class BoundedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse messages over ``MAX_MESSAGE_BYTES`` and never block.

    ZMQ drops a connection whose peer sent a message over the limit and does not connect it
    again; a request sent on a channel without a connection then waits forever. So every
    channel is watched for a drop, and requests give up after ``SEND_TIMEOUT_MS``.
    """

    _monitors: dict[str, Any] | None = None

    def _create_connected_socket(self, channel: str, identity: bytes | None = None) -> Any:
        sock = self.context.socket(channel_socket_types[channel], socket_class=_BudgetSocket)
        sock.linger = 1000
        sock.skip_oversize = channel == "iopub"
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # before connect: per connection
        sock.setsockopt(zmq.RCVHWM, QUEUED_MESSAGES.get(channel, 16))
        if channel != "iopub":
            sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
        if identity:
            sock.identity = identity
        sock.connect(self._make_url(channel))
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        if self._monitors is None:
            self._monitors = {}
        self._monitors[channel] = (monitor, zmq.Socket.shadow(monitor.underlying))
        return sock

    def dropped(self, channel: str) -> bool:
        """Whether ZMQ cut ``channel`` (a message over the limit) since the last call."""
        if not self._monitors or channel not in self._monitors:
            return False
        sync = self._monitors[channel][1]
        dropped = False
        while sync.poll(0):
            sync.recv_multipart()
            dropped = True
        return dropped

    def output_was_dropped(self) -> bool:
        """Whether output was dropped since the last call: a message over the budget skipped,
        or the channel cut (which ``dropped("iopub")`` reports, and the executor repairs)."""
        socket = getattr(self._iopub_channel, "socket", None)
        skipped = isinstance(socket, _BudgetSocket) and socket.skipped
        if skipped and isinstance(socket, _BudgetSocket):
            socket.skipped = False
        return skipped or self._peek_dropped("iopub")

    def _peek_dropped(self, channel: str) -> bool:
        if not self._monitors or channel not in self._monitors:
            return False
        return bool(self._monitors[channel][1].poll(0))

    def start_channels(
        self,
        shell: bool = True,
        iopub: bool = True,
        stdin: bool = True,
        hb: bool = True,
        control: bool = True,
    ) -> None:
        """Shell, iopub and control only. No stdin: notebooks get no input, and a channel
        nobody reads is one a kernel could queue messages on. No heartbeat: the manager tells
        a dead kernel by its process, and jupyter_client's heartbeat socket has no size limit
        (a kernel that answered its ping with a 1 GiB frame grew the grader by 2 GiB, and one
        left it waiting for the rest of a reply at shutdown, forever)."""
        del stdin, hb
        super().start_channels(shell, iopub, False, False, control)

    async def reconnect(self, timeout_s: float = 30.0) -> None:
        """New sockets for every channel (a dropped connection stays dropped otherwise)."""
        self.stop_channels()
        for name in ("_shell", "_iopub", "_stdin", "_hb", "_control"):
            setattr(self, f"{name}_channel", None)
        if self.context.closed:  # stop_channels destroys a context the client made itself
            self.context = zmq.asyncio.Context()
            self._created_context = True
        self._monitors = {}
        self.start_channels()
        await self._async_wait_for_ready(timeout=timeout_s)


def _message_size(msg: dict[str, Any]) -> int:
    """Roughly the bytes a message costs the grader: its content and any binary buffers."""
    buffers = msg.get("buffers") or []
    return len(str(msg.get("content", ""))) + sum(len(b) for b in buffers)


def _bounded_error(content: dict[str, Any]) -> dict[str, Any]:
    """An error message cut to a readable size (a 100 MB exception text stays a message)."""
    bounded = dict(content)
    for key, limit in _ERROR_FIELD_CHARS.items():
        bounded[key] = str(content.get(key, ""))[:limit]
    lines = [str(line)[:_TRACEBACK_LINE_CHARS] for line in list(content.get("traceback", []))]
    bounded["traceback"] = lines[-_TRACEBACK_LINES:]
    return bounded


class CappedClient(NotebookClient):
    """An nbclient client that keeps at most ``cap_bytes`` of output for the whole notebook.

    A student who prints a gigabyte must not make the grader hold a gigabyte: every message a
    kernel sends counts (streams, displays, display updates, errors, comms), what is past the
    cap is dropped as it arrives, and one note says so. Errors are always kept, cut to a
    readable size, because the record needs them; comm messages (widgets) are never kept.
    """

    def __init__(self, nb: NotebookNode, *, cap_bytes: int, **kw: Any):
        super().__init__(nb, **kw)
        self.cap_bytes = cap_bytes
        self.kept_bytes = 0
        self.truncated = False
        self.timed_out = False
        """Set when the current cell hit its timeout (the kernel was interrupted)."""

    async def _async_handle_timeout(
        self, timeout: int, cell: NotebookNode | None = None
    ) -> dict[str, Any] | None:
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    def note_dropped(self, outs: list[NotebookNode]) -> None:
        """Say once, where it happened, that output was dropped."""
        if not self.truncated:
            self.truncated = True
            outs.append(NotebookNode(output_type="stream", name="stderr", text=_DROP_NOTE))

    def process_message(
        self, msg: dict[str, Any], cell: NotebookNode, cell_index: int
    ) -> NotebookNode | None:
        msg_type = msg.get("msg_type", "")
        if msg_type in _UNCOUNTED:
            return super().process_message(msg, cell, cell_index)
        if msg_type.startswith("comm"):
            return None  # widget state: nothing the grader uses, and unbounded
        if msg_type == "error":
            msg = {**msg, "content": _bounded_error(dict(msg.get("content") or {}))}
            first = not any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            size = _message_size(msg)
            if not first and self.kept_bytes + size > self.cap_bytes:
                self.note_dropped(cell.setdefault("outputs", []))  # the record has its first
                return None
            self.kept_bytes += size
            return super().process_message(msg, cell, cell_index)
        size = _message_size(msg)
        if self.kept_bytes + size > self.cap_bytes:
            self.note_dropped(cell.setdefault("outputs", []))
            return None
        self.kept_bytes += size
        return super().process_message(msg, cell, cell_index)


class _LogTail:
    """The kernel process's own stdout and stderr (the launcher's and bwrap's messages), read
    from a pipe and kept only as a short tail: a kernel writing to fd 2 forever costs nothing."""

    def __init__(self) -> None:
        self._read, self.write_fd = os.pipe()
        self._tail = bytearray()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while chunk := os.read(self._read, 65536):
            self._tail += chunk
            del self._tail[:-_LOG_TAIL_BYTES]
        os.close(self._read)

    def close_writer(self) -> None:
        """Close the write end once (called again, it must not close whatever descriptor the
        number has been given to since: the relay's sockets were cut that way)."""
        fd, self.write_fd = self.write_fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def text(self, wait_s: float = 1.0) -> str:
        self._thread.join(wait_s)
        return bytes(self._tail).decode("utf-8", "replace").strip()


def _manager_class(box: Sandbox, relays: list[KernelRelay]) -> type[AsyncKernelManager]:
    """A kernel manager that starts the sandbox's command and talks to it over unix sockets
    (the kernel has no network, not even loopback), through a relay that holds every message
    of the kernel's to ``MAX_MESSAGE_BYTES`` (``graders/sandbox/relay.py``, started once the
    ports are chosen and kept in ``relays`` for the caller to close), interrupting it by
    message: under bubblewrap the kernel is in its own session, where a signal to the group
    would not reach."""

    class SandboxKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.client_factory = BoundedKernelClient
            self.transport = "ipc"
            self.ip = box.ip
            self.connection_file = str(box.connection_file)
            # The sandbox's own spec, not one looked up among the installed kernels: the
            # command is the sandbox's anyway (``format_kernel_cmd``), an installed spec's
            # ``env`` would reach the kernel, and the lookup imports ipykernel into the grader
            # (0.07 s before the kernel could start).
            self._kernel_spec = KernelSpec(
                argv=list(box.argv),
                display_name="dlgrade sandbox",
                language="python",
                interrupt_mode="message",
            )

        async def _async_wait(self, pollinterval: float = 0.1) -> None:
            # jupyter_client polls for a killed kernel's exit every 0.1 s; it is gone in a
            # few milliseconds (0.1 s of every grade otherwise)
            await super()._async_wait(pollinterval=min(pollinterval, 0.005))

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            relay = KernelRelay(box.ip, box.kernel_prefix, budget=MAX_MESSAGE_BYTES)
            relays.append(relay)
            relay.start(
                (self.shell_port, self.iopub_port, self.stdin_port, self.hb_port, self.control_port)
            )
            return [a.replace("{connection_file}", self.connection_file) for a in box.argv]

    return SandboxKernelManager


class _ReplyLost(Exception):
    """The kernel's reply to a request was dropped (over the size limit) or never sent."""


class KernelPeaks:
    """The largest peak resident set of any kernel process this grader ran, as
    ``getrusage(RUSAGE_CHILDREN)`` would give it were the kernels not in pid namespaces of
    their own (``watchdog.peak_resident``): the Gradescope run's memory line. Process-wide,
    as rusage is; kernels of one process run on one event loop."""

    def __init__(self) -> None:
        self._bytes = 0

    def note(self, peak_bytes: int) -> None:
        self._bytes = max(self._bytes, peak_bytes)

    @property
    def mb(self) -> float:
        return self._bytes / (1 << 20)


KERNEL_PEAKS = KernelPeaks()


def _kernel_pid(client: NotebookClient) -> int | None:
    """The launcher's process (the root of the kernel's tree), as jupyter_client started it."""
    process = getattr(getattr(client.km, "provisioner", None), "process", None)
    pid = getattr(process, "pid", None)
    return pid if isinstance(pid, int) else None


@dataclass(kw_only=True)
class _RunState:
    """What one run has found so far (mutable: filled in as the cells run)."""

    outcomes: list[CellOutcome] = field(default_factory=list)
    died_at: int | None = None
    total_timed_out: bool = False
    probe_status: KernelStatus = KernelStatus.NOT_RUN
    probe_message: str = ""
    probe_seconds: float = 0.0


def _has_kernel(client: NotebookClient) -> bool:
    return client.km is not None and bool(client.km.has_kernel)


@dataclass(kw_only=True)
class _Launch:
    """One launched kernel's machinery on the grader's side, until ``finish``."""

    client: CappedClient
    relays: list[KernelRelay]
    log: _LogTail
    groups: cgroups.KernelCgroups
    failed: Exception | None = None
    """Why the launch failed, raised by ``run``."""
    _finished: bool = False

    def finish(self) -> bool:
        """Close the relays and the log, remove the cgroups (killing what is left in them);
        whether their memory limit killed a process. Once."""
        if self._finished:
            return False
        self._finished = True
        self.log.close_writer()
        for relay in self.relays:
            relay.close()
        killed = self.groups.oom_kills() > 0
        cgroups.remove(self.groups)
        return killed


class NbclientExecutor:
    """Real kernels, one per job, through nbclient: ``start`` launches, ``run`` waits for the
    kernel to be ready and runs the job's notebook, then the probe."""

    startup_timeout_s: float = 120.0

    async def start(self, box: Sandbox, limits: Limits) -> StartedKernel:
        """Launch the sandbox's kernel and return at once: it is waited for in ``run``. A launch
        that fails is reported by ``run`` too, as a kernel that could not start."""
        relays: list[KernelRelay] = []
        client = CappedClient(
            # The job's notebook replaces it in ``run``. Not ``new_notebook()``: that validates,
            # and compiling nbformat's validator (0.08 s) would come before the kernel starts.
            NotebookNode(cells=[], metadata={}, nbformat=4, nbformat_minor=5),
            cap_bytes=limits.output_cap_kb * 1024,
            timeout=int(limits.cell_timeout_s),
            startup_timeout=int(self.startup_timeout_s),
            kernel_name="python3",
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "", "traceback": []},
            record_timing=False,
            shutdown_kernel="immediate",  # the probe has answered: nothing in the kernel is wanted
            kernel_manager_class=_manager_class(box, relays),
            resources={"metadata": {"path": str(box.base)}},
        )
        groups = cgroups.make(limits, box.cgroups, cpus=box.threads)
        launch = _Launch(client=client, relays=relays, log=_LogTail(), groups=groups)
        client.km = client.create_kernel_manager()
        try:
            await client.async_start_new_kernel(
                env={**box.env, "DLGRADE_CGROUPS": ":".join(map(str, launch.groups.procs))},
                cwd=str(box.base),
                stdout=launch.log.write_fd,
                stderr=launch.log.write_fd,
            )
        except Exception as exc:  # reported by ``run``, where a start fails
            launch.failed = exc
        launch.log.close_writer()  # the kernel holds its own copy
        return StartedKernel(sandbox=box, limits=limits, state=launch)

    async def stop(self, started: StartedKernel) -> None:
        """End a started kernel that no job took."""
        launch: _Launch = started.state
        try:
            if launch.failed is None and _has_kernel(launch.client):
                await launch.client._async_cleanup_kernel()
        finally:
            launch.finish()

    async def run(self, job: KernelJob) -> KernelRun:
        started = job.started or await self.start(job.sandbox, job.limits)
        if started.sandbox is not job.sandbox:
            raise ValueError("a started kernel runs only a job of its own sandbox")
        began = time.monotonic()
        launch: _Launch = started.state
        client, log, groups = launch.client, launch.log, launch.groups
        nb = client.nb = job.prepared.notebook
        limits = job.limits
        state = _RunState()
        watchdog: MemoryWatchdog | None = None
        if launch.failed is not None:
            launch.finish()
            said = log.text()
            raise ExecutionError(
                f"could not start a Jupyter kernel: {launch.failed}"
                + (f"; the kernel said: {said[-1500:]}" if said else ""),
                question=job.question,
            ) from launch.failed
        try:
            async with client.async_setup_kernel():  # launched already: wait until it is ready
                log.close_writer()
                with contextlib.ExitStack() as stack:
                    pid = _kernel_pid(client)
                    if groups.memory is None and pid is not None:  # no cgroup: the fallback
                        watchdog = MemoryWatchdog(pid, limits.memory_mb << 20)
                        stack.enter_context(watchdog)
                    await self._run_cells(client, job, state)
                    if pid is not None:  # before it is shut down: the probe has run
                        KERNEL_PEAKS.note(peak_resident(pid))
        except DeadKernelError as exc:  # died while starting or shutting down
            # After a finished probe a death at shutdown changes nothing the grader needs.
            if state.died_at is None and state.probe_status != KernelStatus.OK:
                state.died_at = -1
                state.probe_status = KernelStatus.KERNEL_DIED
                state.probe_message = f"kernel died: {exc}"
        except (RuntimeError, TimeoutError) as exc:
            atexit.unregister(client._cleanup_kernel)  # nbclient's hook would fail at exit
            if not state.outcomes:
                said = log.text()
                raise ExecutionError(
                    f"could not start a Jupyter kernel: {exc}"
                    + (f"; the kernel said: {said[-1500:]}" if said else ""),
                    question=job.question,
                ) from exc
            state.probe_status = KernelStatus.ERROR
            state.probe_message = f"kernel machinery failed: {exc}"
        finally:
            memory_killed = launch.finish() or bool(watchdog and watchdog.killed)
        return KernelRun(
            notebook=nb,
            cells=tuple(
                o
                if o.status != KernelStatus.KERNEL_DIED
                else CellOutcome(
                    position=o.position,
                    status=KernelStatus.ERROR,
                    ename="KernelDied",
                    evalue=o.evalue,
                )
                for o in state.outcomes
            ),
            probe_status=state.probe_status,
            probe_message=state.probe_message,
            kernel_died_at=state.died_at,
            total_timed_out=state.total_timed_out,
            output_truncated=client.truncated,
            seconds=time.monotonic() - began,
            probe_seconds=state.probe_seconds,
            memory_killed=memory_killed,
        )

    async def _run_cells(self, client: CappedClient, job: KernelJob, state: _RunState) -> None:
        """The student's cells in order under one deadline, then the probe if the kernel lives."""
        limits = job.limits
        # The student's budget starts with their first cell, not with kernel start-up.
        deadline = time.monotonic() + limits.total_timeout_s
        for position, cell in enumerate(job.prepared.notebook.cells):
            if cell.cell_type != "code":
                continue
            remaining = deadline - time.monotonic()
            if state.died_at is not None or state.total_timed_out or remaining <= 0:
                state.total_timed_out = state.total_timed_out or state.died_at is None
                state.outcomes.append(CellOutcome(position=position, status=KernelStatus.NOT_RUN))
                continue
            clipped = remaining < limits.cell_timeout_s
            outcome = await self._run_cell(
                client, cell, position, min(limits.cell_timeout_s, remaining)
            )
            state.outcomes.append(outcome)
            if outcome.status == KernelStatus.KERNEL_DIED:
                state.died_at = position
            elif outcome.status == KernelStatus.TIMEOUT and clipped:
                state.total_timed_out = True
        if state.died_at is None:
            job.write_probe_inputs()
            probe_started = time.monotonic()
            state.probe_status, state.probe_message = await self._run_probe(client, job)
            state.probe_seconds = time.monotonic() - probe_started
        else:
            state.probe_status = KernelStatus.KERNEL_DIED
            state.probe_message = "the kernel had died before the probe could run"

    async def _execute(self, client: CappedClient, cell: NotebookNode, position: int) -> None:
        """nbclient's execution of one cell, given up as soon as the kernel's reply is lost.

        A reply over the size limit is dropped with its connection; nbclient would wait for it
        until the cell's timeout and then send the next request into the void. Watching the
        request channel for the drop ends the cell at once; new sockets then let the next
        cell run. ``_ReplyLost`` says what happened.
        """
        kc = client.kc
        task = asyncio.ensure_future(client.async_execute_cell(cell, position))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=_WATCH_S)
                if not task.done() and isinstance(kc, BoundedKernelClient) and kc.dropped("shell"):
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    raise _ReplyLost()
            task.result()
        except (DeadKernelError, CellTimeoutError, _ReplyLost):
            raise
        except Exception as exc:  # a message the grader could not read: never the grader's end
            raise _ReplyLost(f"{type(exc).__name__}: {exc}") from exc
        finally:
            if not task.done():
                task.cancel()

    async def _recover(self, client: CappedClient, position: int, why: str) -> CellOutcome:
        """After a lost reply: new channels, and the cell recorded as the reason."""
        why = why or f"larger than {MAX_MESSAGE_BYTES >> 20} MiB"
        lost = CellOutcome(
            position=position,
            status=KernelStatus.ERROR,
            ename=REPLY_DROPPED,
            evalue=f"the kernel sent a message the grader does not accept ({why}); it was dropped",
        )
        kc = client.kc
        try:
            if isinstance(kc, BoundedKernelClient):
                await kc.reconnect()
        except (RuntimeError, TimeoutError, zmq.ZMQError):
            return CellOutcome(
                position=position,
                status=KernelStatus.KERNEL_DIED,
                evalue=f"{lost.evalue}, and the kernel could not be reached again",
            )
        return lost

    async def _run_cell(
        self, client: CappedClient, cell: NotebookNode, position: int, timeout: float
    ) -> CellOutcome:
        client.timeout = max(1, int(timeout))
        client.timed_out = False
        try:
            await self._execute(client, cell, position)
        except _ReplyLost as exc:
            return await self._recover(client, position, str(exc)[:300])
        except DeadKernelError as exc:
            return CellOutcome(position=position, status=KernelStatus.KERNEL_DIED, evalue=str(exc))
        except CellTimeoutError as exc:
            return CellOutcome(
                position=position, status=KernelStatus.TIMEOUT, ename=TIMEOUT_ENAME, evalue=str(exc)
            )
        finally:
            if isinstance(client.kc, BoundedKernelClient) and client.kc.output_was_dropped():
                client.note_dropped(cell.setdefault("outputs", []))
        kc = client.kc
        if isinstance(kc, BoundedKernelClient) and kc.dropped("iopub"):
            # ZMQ cut the output channel (a frame over the limit): new sockets, so the next
            # cells' output and their "idle" still reach the grader.
            outcome = await self._recover(client, position, "output over the size limit")
            if outcome.status == KernelStatus.KERNEL_DIED:
                return outcome
        error = _error_of(cell)
        if client.timed_out:
            return CellOutcome(
                position=position,
                status=KernelStatus.TIMEOUT,
                ename=TIMEOUT_ENAME,
                evalue=f"the cell ran longer than {client.timeout} s and was interrupted",
            )
        if error is None:
            return CellOutcome(position=position, status=KernelStatus.OK)
        return CellOutcome(
            position=position,
            status=KernelStatus.ERROR,
            ename=str(error.get("ename", "")),
            evalue=str(error.get("evalue", ""))[:2000],
            traceback=plain_traceback(list(error.get("traceback", []))),
        )

    async def _run_probe(self, client: CappedClient, job: KernelJob) -> tuple[KernelStatus, str]:
        cell = new_code_cell(job.probe_source)
        client.timeout = max(1, int(job.limits.probe_timeout_s))
        client.nb.cells.append(cell)  # nbclient stores outputs by index; removed again below
        client.timed_out = False
        try:
            await self._execute(client, cell, len(client.nb.cells) - 1)
        except _ReplyLost:
            return (
                KernelStatus.ERROR,
                "the kernel's reply to the probe was larger than the grader accepts",
            )
        except DeadKernelError:
            return KernelStatus.KERNEL_DIED, "the kernel died while the grader probed it"
        except CellTimeoutError:
            return KernelStatus.TIMEOUT, f"the probe did not finish within {client.timeout} s"
        finally:
            client.nb.cells.pop()
        error = _error_of(cell)
        if client.timed_out:
            return KernelStatus.TIMEOUT, f"the probe did not finish within {client.timeout} s"
        if error is None:
            return KernelStatus.OK, ""
        return KernelStatus.ERROR, f"{error.get('ename')}: {error.get('evalue')}"
