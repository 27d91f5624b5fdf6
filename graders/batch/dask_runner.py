"""Grade on a Dask ``distributed`` cluster: the same task as the local pool, sent to workers.

Each submission is one Dask task running ``run_task``; its outcome comes back as plain data
and the driver commits it to the state file, exactly as with local processes. The workers must
see the submission and output folders at the same paths (a shared file system), and run the
same grader version (checked: a mismatch is a crashed row, never a silently different score).
GPU-profile work asks the scheduler for ``resources={"GPU": 1}``, so start GPU workers with
``dask worker ADDRESS --resources GPU=1``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol

from graders import GRADER_VERSION
from graders.batch.tasks import GradeTask, TaskOutcome, run_task
from graders.config import GradeOptions, load_profiles


def _wants_gpu(options: GradeOptions) -> bool:
    if options.profile in (None, "auto"):
        return False  # auto picks per worker: whatever the worker sees
    return load_profiles(options.profiles_file).get(options.profile).device != "cpu"


def run_on_worker(task: GradeTask, host_threads: dict[str, int]) -> TaskOutcome:
    """``run_task`` with this machine's cores shared among the Dask threads it hosts: two
    single-thread workers on a 2-core machine give each submission one core, not two."""
    from distributed import get_worker

    host = get_worker().address.rsplit(":", 1)[0]
    threads = host_threads.get(host, 1)
    cores = max(1, (os.cpu_count() or 1) // max(1, threads))
    return run_task(replace(task, cores=cores))


class _Client(Protocol):
    """What the pool uses of ``distributed.Client`` (its constructor, ``nthreads`` and ``close``
    are unannotated there)."""

    def nthreads(self) -> dict[str, int]: ...

    def submit(
        self,
        func: Callable[..., TaskOutcome],
        *args: Any,
        key: str,
        resources: dict[str, int] | None,
        pure: bool,
    ) -> object: ...

    def close(self) -> object: ...


class DaskPool:
    def __init__(self, address: str, options: GradeOptions):
        from distributed import Client

        connect: Callable[[str], _Client] = Client
        self._client = connect(address)
        nthreads = self._client.nthreads()
        self.slots = max(1, sum(nthreads.values()))
        self._host_threads: dict[str, int] = {}
        for worker, count in nthreads.items():
            host = worker.rsplit(":", 1)[0]
            self._host_threads[host] = self._host_threads.get(host, 0) + count
        self._resources = {"GPU": 1} if _wants_gpu(options) else None

    def submit(self, task: GradeTask) -> object:
        return self._client.submit(
            run_on_worker,
            task,
            self._host_threads,
            pure=False,
            key=f"dlgrade-{task.name}-{secrets.token_hex(4)}",
            resources=self._resources,
        )

    def wait(self, handles: Iterable[object], timeout: float) -> list[object]:
        from distributed import TimeoutError as DaskTimeout
        from distributed import wait as dask_wait

        wait: Callable[..., tuple[Iterable[object], Iterable[object]]] = dask_wait  # unannotated

        pending = list(handles)
        if not pending:
            return []
        try:
            done, _ = wait(pending, timeout=timeout, return_when="FIRST_COMPLETED")
        except (DaskTimeout, TimeoutError):
            return []
        return list(done)

    def outcome(self, handle: object, name: str) -> TaskOutcome | None:
        from distributed import KilledWorker

        future: Any = handle
        try:
            result = future.result()
        except KilledWorker:
            return None
        except Exception as exc:
            return TaskOutcome(name=name, ok=False, seconds=0.0, worker="dask", error=repr(exc))
        assert isinstance(result, TaskOutcome)
        if result.grader_version != GRADER_VERSION:
            return TaskOutcome(
                name=name,
                ok=False,
                seconds=result.seconds,
                worker=result.worker,
                error=f"worker runs grader {result.grader_version}, this batch {GRADER_VERSION}",
            )
        return result

    def close(self, *, cancel: bool) -> None:
        self._client.close()
