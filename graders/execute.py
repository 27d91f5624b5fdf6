"""Run one prepared notebook, then the grader's probe, in one sandboxed kernel.

``Executor`` is the seam: ``NbclientExecutor`` starts a real Jupyter kernel through nbclient;
tests of the later steps use a fake one (``tests/fakes.py``) the way httpx tests use a mock
transport. Cells run one at a time so that an error in one never stops the next, each has its
own timeout, and all of them share one total deadline. nbclient's exceptions are mapped here
into outcomes (data) or, for faults of the machinery itself, into ``ExecutionError``.
"""

from __future__ import annotations

import atexit
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import channel_socket_types
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from graders.config import Limits
from graders.errors import ExecutionError
from graders.inject import PreparedNotebook
from graders.sandbox import Sandbox, make_pids_cgroup, remove_pids_cgroup

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TIMEOUT_ENAME = "CellTimeoutError"
_TRACEBACK_CHARS = 4000
MAX_MESSAGE_BYTES = 32 << 20
"""The largest kernel message the grader takes in. ipykernel sends everything printed between
two flushes as one message: a fast 1 GiB print arrived as one message of hundreds of MiB, and
the grader's memory grew by 640 MiB decoding it. ZMQ drops a bigger message (and the
connection, which it reopens) before holding any of it."""
_DROP_NOTE = "[dlgrader: output beyond the size cap was dropped]\n"


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


@dataclass(frozen=True, kw_only=True)
class CellOutcome:
    position: int
    """Index in the prepared notebook."""
    status: str
    """``ok`` | ``error`` | ``timeout`` | ``not_run``"""
    ename: str = ""
    evalue: str = ""
    traceback: str = ""


@dataclass(frozen=True, kw_only=True)
class KernelRun:
    """The raw result of one kernel run, before it becomes an ``ExecutionRecord``."""

    notebook: NotebookNode
    cells: tuple[CellOutcome, ...]
    probe_status: str
    """``ok`` | ``error`` | ``timeout`` | ``kernel_died`` | ``not_run``"""
    probe_message: str = ""
    kernel_died_at: int | None = None
    """Position of the cell during which the kernel died, if it did."""
    total_timed_out: bool = False
    output_truncated: bool = False
    seconds: float = 0.0
    probe_seconds: float = 0.0
    """The grader's probe alone (part of ``seconds``), so a slow probe is told from slow cells."""


class Executor(Protocol):
    async def run(self, job: KernelJob) -> KernelRun: ...


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


class BoundedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse messages over ``MAX_MESSAGE_BYTES``."""

    _iopub_monitor: Any = None

    def _create_connected_socket(self, channel: str, identity: bytes | None = None) -> Any:
        sock = self.context.socket(channel_socket_types[channel])
        sock.linger = 1000
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # before connect: per connection
        if identity:
            sock.identity = identity
        sock.connect(self._make_url(channel))
        if channel == "iopub":
            monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self._iopub_monitor = (monitor, zmq.Socket.shadow(monitor.underlying))
        return sock

    def output_was_dropped(self) -> bool:
        """Whether ZMQ cut the output channel (a message over the limit) since the last call."""
        if self._iopub_monitor is None:
            return False
        sync = self._iopub_monitor[1]
        dropped = False
        while sync.poll(0):
            sync.recv_multipart()
            dropped = True
        return dropped


class CappedClient(NotebookClient):
    """An nbclient client that keeps at most ``cap_bytes`` of output for the whole notebook.

    A student who prints a gigabyte must not make the grader hold a gigabyte: outputs past the
    cap are dropped as they arrive, and one note says so.
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

    def output(
        self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int
    ) -> NotebookNode | None:
        if msg["msg_type"] != "error":
            size = len(str(msg.get("content", "")))
            if self.kept_bytes + size > self.cap_bytes:
                self.note_dropped(outs)
                return None
            self.kept_bytes += size
        return super().output(outs, msg, display_id, cell_index)


def _manager_class(argv: list[str], ipc_path: str | None = None) -> type[AsyncKernelManager]:
    """A kernel manager that starts the sandbox's command; over unix sockets when the kernel
    has its own network namespace (where localhost TCP would reach nothing)."""

    class SandboxKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.client_factory = BoundedKernelClient
            if ipc_path is not None:
                self.transport = "ipc"
                self.ip = ipc_path

        def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
            return [a.replace("{connection_file}", self.connection_file) for a in argv]

    return SandboxKernelManager


class NbclientExecutor:
    """Real kernels, one per job, through nbclient."""

    startup_timeout_s: float = 120.0

    async def run(self, job: KernelJob) -> KernelRun:
        started = time.monotonic()
        nb = job.prepared.notebook
        limits = job.limits
        client = CappedClient(
            nb,
            cap_bytes=limits.output_cap_kb * 1024,
            timeout=int(limits.cell_timeout_s),
            startup_timeout=int(self.startup_timeout_s),
            kernel_name="python3",
            allow_errors=True,
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "", "traceback": []},
            record_timing=False,
            kernel_manager_class=_manager_class(
                job.sandbox.argv,
                None if job.sandbox.ipc_path is None else str(job.sandbox.ipc_path),
            ),
            resources={"metadata": {"path": str(job.sandbox.workdir)}},
        )
        outcomes: list[CellOutcome] = []
        died_at: int | None = None
        total_timed_out = False
        probe_status, probe_message = "not_run", ""
        probe_seconds = 0.0
        log = (job.sandbox.workdir.parent / "kernel.log").open("ab")
        group = job.sandbox.pids_cgroup
        if group is not None:
            make_pids_cgroup(group, limits.max_processes)
        try:
            async with client.async_setup_kernel(
                env=job.sandbox.env, cwd=str(job.sandbox.workdir), stdout=log, stderr=log
            ):
                # The student's budget starts with their first cell, not with kernel start-up.
                deadline = time.monotonic() + limits.total_timeout_s
                for position, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    remaining = deadline - time.monotonic()
                    if died_at is not None or total_timed_out or remaining <= 0:
                        total_timed_out = total_timed_out or died_at is None
                        outcomes.append(CellOutcome(position=position, status="not_run"))
                        continue
                    clipped = remaining < limits.cell_timeout_s
                    outcome = await self._run_cell(
                        client, cell, position, min(limits.cell_timeout_s, remaining)
                    )
                    outcomes.append(outcome)
                    if outcome.status == "kernel_died":
                        died_at = position
                    elif outcome.status == "timeout" and clipped:
                        total_timed_out = True
                if died_at is None:
                    job.write_probe_inputs()
                    probe_started = time.monotonic()
                    probe_status, probe_message = await self._run_probe(client, job)
                    probe_seconds = time.monotonic() - probe_started
                else:
                    probe_status = "kernel_died"
                    probe_message = "the kernel had died before the probe could run"
        except DeadKernelError as exc:  # died while starting or shutting down
            # After a finished probe a death at shutdown changes nothing the grader needs.
            if died_at is None and probe_status != "ok":
                died_at = -1
                probe_status, probe_message = "kernel_died", f"kernel died: {exc}"
        except (RuntimeError, TimeoutError) as exc:
            atexit.unregister(client._cleanup_kernel)  # nbclient's hook would fail at exit
            if not outcomes:
                raise ExecutionError(
                    f"could not start a Jupyter kernel: {exc}", question=job.question
                ) from exc
            probe_status, probe_message = "error", f"kernel machinery failed: {exc}"
        finally:
            log.close()
            if group is not None:
                remove_pids_cgroup(group)
        return KernelRun(
            notebook=nb,
            cells=tuple(
                o
                if o.status != "kernel_died"
                else CellOutcome(
                    position=o.position, status="error", ename="KernelDied", evalue=o.evalue
                )
                for o in outcomes
            ),
            probe_status=probe_status,
            probe_message=probe_message,
            kernel_died_at=died_at,
            total_timed_out=total_timed_out,
            output_truncated=client.truncated,
            seconds=time.monotonic() - started,
            probe_seconds=probe_seconds,
        )

    async def _run_cell(
        self, client: CappedClient, cell: NotebookNode, position: int, timeout: float
    ) -> CellOutcome:
        client.timeout = max(1, int(timeout))
        client.timed_out = False
        try:
            await client.async_execute_cell(cell, position)
        except DeadKernelError as exc:
            return CellOutcome(position=position, status="kernel_died", evalue=str(exc))
        except CellTimeoutError as exc:
            return CellOutcome(
                position=position, status="timeout", ename=TIMEOUT_ENAME, evalue=str(exc)
            )
        finally:
            if isinstance(client.kc, BoundedKernelClient) and client.kc.output_was_dropped():
                client.note_dropped(cell.setdefault("outputs", []))
        error = _error_of(cell)
        if client.timed_out:
            return CellOutcome(
                position=position,
                status="timeout",
                ename=TIMEOUT_ENAME,
                evalue=f"the cell ran longer than {client.timeout} s and was interrupted",
            )
        if error is None:
            return CellOutcome(position=position, status="ok")
        return CellOutcome(
            position=position,
            status="error",
            ename=str(error.get("ename", "")),
            evalue=str(error.get("evalue", ""))[:2000],
            traceback=plain_traceback(list(error.get("traceback", []))),
        )

    async def _run_probe(self, client: CappedClient, job: KernelJob) -> tuple[str, str]:
        from nbformat.v4 import new_code_cell

        cell = new_code_cell(job.probe_source)
        client.timeout = max(1, int(job.limits.probe_timeout_s))
        client.nb.cells.append(cell)  # nbclient stores outputs by index; removed again below
        client.timed_out = False
        try:
            await client.async_execute_cell(cell, len(client.nb.cells) - 1)
        except DeadKernelError:
            return "kernel_died", "the kernel died while the grader probed it"
        except CellTimeoutError:
            return "timeout", f"the probe did not finish within {client.timeout} s"
        finally:
            client.nb.cells.pop()
        error = _error_of(cell)
        if client.timed_out:
            return "timeout", f"the probe did not finish within {client.timeout} s"
        if error is None:
            return "ok", ""
        return "error", f"{error.get('ename')}: {error.get('evalue')}"
