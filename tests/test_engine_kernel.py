"""The execute step with real Jupyter kernels: errors, timeouts, deaths, limits and isolation.

Each test builds a tiny notebook in tmp_path and runs it through the real NbclientExecutor, the
same path a submission takes, so what is asserted is what a student would get.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from conftest import kernel_sandbox

from graders import execute, inject, sandbox
from graders.config import Limits
from graders.errors import ExecutionError
from graders.execute import KernelJob, KernelRun, NbclientExecutor
from graders.record import execution_record

pytestmark = pytest.mark.kernel

FAST = Limits(cell_timeout_s=20, total_timeout_s=60, probe_timeout_s=20, memory_mb=2048)


def _notebook(*sources: str, params: str | None = None) -> nbformat.NotebookNode:
    cells = []
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.v4.new_notebook(cells=cells)


def _run(
    tmp_path: Path,
    nb: nbformat.NotebookNode,
    *,
    limits: Limits = FAST,
    parameters: dict[str, object] | None = None,
    probe_source: str = "print('probe ran')",
    argv: list[str] | None = None,
) -> tuple[KernelRun, inject.PreparedNotebook, sandbox.Sandbox]:
    prepared = inject.prepare(
        nb,
        parameters=parameters or {},
        preamble=inject.preamble_source(seed=0, threads=1, uses_torch=False, snapshot_names=("w",)),
    )
    box = kernel_sandbox(tmp_path, limits)
    if argv is not None:
        box = replace(box, argv=argv)
    job = KernelJob(
        question="qx",
        prepared=prepared,
        sandbox=box,
        limits=limits,
        probe_source=probe_source,
        write_probe_inputs=lambda: box.probe_in.mkdir(exist_ok=True),
    )
    return asyncio.run(NbclientExecutor().run(job)), prepared, box


def _statuses(run: KernelRun, prepared: inject.PreparedNotebook) -> dict[int, str]:
    return {
        prepared.origin[c.position]: c.status
        for c in run.cells
        if prepared.origin[c.position] is not None
    }


def test_an_error_does_not_stop_later_cells_and_indices_are_the_students(tmp_path: Path) -> None:
    nb = _notebook("x = 1", "1 / 0", "y = x + 1", "print(y)", params="EPOCHS = 5")
    run, prepared, _ = _run(tmp_path, nb, parameters={"EPOCHS": 1})
    assert _statuses(run, prepared) == {0: "ok", 1: "ok", 2: "error", 3: "ok", 4: "ok"}
    record = execution_record("qx", run, prepared, tmp_path, threads=1)
    assert record.status.value == "cell_errors"
    (error,) = record.cell_errors
    assert error.cell_index == 2 and error.ename == "ZeroDivisionError"
    assert "1 / 0" in error.source_excerpt
    assert "Cell 2 raised ZeroDivisionError" in record.message
    printed = "".join(o.get("text", "") for o in run.notebook.cells[-1].outputs)
    assert printed.strip() == "2"
    assert run.probe_status == "ok"


def test_injected_parameters_override_the_students_values(tmp_path: Path) -> None:
    nb = _notebook("print(EPOCHS, DATA_ROOT)", params="EPOCHS = 25\nDATA_ROOT = './data'")
    run, _, _ = _run(tmp_path, nb, parameters={"EPOCHS": 2, "DATA_ROOT": "/srv/data"})
    printed = "".join(o.get("text", "") for o in run.notebook.cells[-1].outputs)
    assert printed.strip() == "2 /srv/data"


def test_a_cell_timeout_interrupts_and_the_next_cell_still_runs(tmp_path: Path) -> None:
    limits = replace(FAST, cell_timeout_s=3)
    nb = _notebook("import time\nwhile True: time.sleep(0.1)", "print('after')")
    run, prepared, _ = _run(tmp_path, nb, limits=limits)
    statuses = _statuses(run, prepared)
    assert statuses[0] == "timeout" and statuses[1] == "ok"
    record = execution_record("qx", run, prepared, tmp_path, threads=1)
    assert record.timed_out_cells == (0,)


@pytest.mark.slow
def test_the_total_deadline_skips_the_remaining_cells(tmp_path: Path) -> None:
    # A cell far longer than the whole budget, and far shorter a cell timeout than it sleeps:
    # whatever the machine's speed, the budget runs out during the first cell.
    limits = replace(FAST, cell_timeout_s=60, total_timeout_s=4)
    nb = _notebook("import time; time.sleep(600)", "print('late')")
    run, prepared, _ = _run(tmp_path, nb, limits=limits)
    assert run.total_timed_out
    assert _statuses(run, prepared)[0] == "timeout"
    assert _statuses(run, prepared)[1] == "not_run"
    record = execution_record("qx", run, prepared, tmp_path, threads=1)
    assert record.status.value == "timeout"
    assert "ran out of its total time" in record.message


def test_a_kernel_that_kills_itself_is_recorded_not_raised(tmp_path: Path) -> None:
    nb = _notebook("x = 1", "import os; os._exit(3)", "print('never')")
    run, prepared, _ = _run(tmp_path, nb)
    assert run.kernel_died_at is not None and prepared.origin[run.kernel_died_at] == 1
    assert _statuses(run, prepared)[2] == "not_run"
    assert run.probe_status == "kernel_died"
    record = execution_record("qx", run, prepared, tmp_path, threads=1)
    assert record.status.value == "kernel_died"
    assert "while running cell 1" in record.message


def test_sys_exit_in_a_cell_is_an_ordinary_error(tmp_path: Path) -> None:
    nb = _notebook("import sys; sys.exit(1)", "print('still here')")
    run, prepared, _ = _run(tmp_path, nb)
    assert _statuses(run, prepared) == {0: "error", 1: "ok"}
    assert run.kernel_died_at is None


def test_memory_limit_turns_a_bomb_into_memory_error(tmp_path: Path) -> None:
    limits = replace(FAST, memory_mb=512)
    nb = _notebook("blob = bytearray(2 * 1024**3)", "print('survived')")
    run, prepared, _ = _run(tmp_path, nb, limits=limits)
    statuses = _statuses(run, prepared)
    assert statuses[0] == "error" and statuses[1] == "ok"
    (bomb,) = [c for c in run.cells if prepared.origin[c.position] == 0]
    assert bomb.ename == "MemoryError"


def test_output_is_capped(tmp_path: Path) -> None:
    limits = replace(FAST, output_cap_kb=16)
    nb = _notebook("for i in range(20000): print('x' * 100)")
    run, _, _ = _run(tmp_path, nb, limits=limits)
    kept = sum(len(o.get("text", "")) for c in run.notebook.cells for o in c.get("outputs", []))
    assert run.output_truncated
    assert kept < 64 * 1024


def test_the_kernel_cannot_import_the_grader_or_the_reference(tmp_path: Path) -> None:
    code = (
        "import importlib.util, json\n"
        "print(json.dumps({m: importlib.util.find_spec(m) is not None"
        " for m in ('graders', 'reference', 'numpy')}))"
    )
    run, _, _ = _run(tmp_path, _notebook(code))
    printed = "".join(o.get("text", "") for o in run.notebook.cells[-1].outputs)
    assert json.loads(printed) == {"graders": False, "reference": False, "numpy": True}


def test_kernel_runs_in_its_own_directory_with_a_minimal_environment(tmp_path: Path) -> None:
    code = (
        "import os, json\n"
        "print(json.dumps([os.getcwd(), os.environ.get('OMP_NUM_THREADS'),"
        " 'PYTHONPATH' in os.environ]))"
    )
    run, _, box = _run(tmp_path, _notebook(code))
    printed = "".join(o.get("text", "") for o in run.notebook.cells[-1].outputs)
    cwd, threads, has_pythonpath = json.loads(printed)
    assert cwd == box.kernel_paths.workdir
    assert threads == "1"
    assert has_pythonpath is False


def test_snapshots_keep_the_first_value_of_a_name(tmp_path: Path) -> None:
    nb = _notebook("w = [1, 2]", "w.append(3)", "w = 'trained'")
    probe = "print(__dlgrader_snapshots__['w'])"
    run, _, _ = _run(tmp_path, nb, probe_source=probe)
    assert run.probe_status == "ok"


def test_a_kernel_started_before_its_notebook_runs_it_and_an_unused_one_is_stopped(
    tmp_path: Path,
) -> None:
    """``Executor.start`` launches a kernel before the notebook is known (the grader reads the
    submission meanwhile); ``run`` takes that kernel over, hands it the notebook
    (``sandbox.deliver`` and the preamble) and runs it; ``stop`` ends one no job took, and no
    process of either is left."""
    before = set(_children())
    executor = NbclientExecutor()
    notebook = tmp_path / "mine.ipynb"
    nb = _notebook("import os\nprint(sorted(n for n in os.listdir('.') if n[0] != '.'))")
    nbformat.write(nb, str(notebook))

    async def both() -> KernelRun:
        box = kernel_sandbox(tmp_path / "used", FAST)
        spare = kernel_sandbox(tmp_path / "spare", FAST)
        started = await executor.start(box, FAST)
        unused = await executor.start(spare, FAST)
        assert len(set(_children()) - before) == 2, "two kernels should be booting"
        prepared = inject.prepare(
            nb,
            parameters={},
            preamble=inject.preamble_source(
                seed=0,
                threads=1,
                uses_torch=False,
                snapshot_names=(),
                files_from=box.kernel_paths.probe_in,
                files=sandbox.deliver(box, {notebook.name: notebook}),
            ),
        )
        job = KernelJob(
            question="qx",
            prepared=prepared,
            sandbox=box,
            limits=FAST,
            probe_source="print('probe ran')",
            write_probe_inputs=lambda: None,
            started=started,
        )
        await executor.stop(unused)
        return await executor.run(job)

    run = asyncio.run(both())
    printed = "".join(o.get("text", "") for o in run.notebook.cells[-1].outputs)
    assert printed.strip() == "['mine.ipynb']", "the notebook is in the kernel's folder"
    assert run.probe_status == "ok"
    assert set(_children()) <= before, "a kernel was left running"


def _children() -> list[int]:
    """This process's live child processes (the kernels' launchers)."""
    import os

    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry))
    return found


@pytest.mark.slow
def test_a_kernel_that_cannot_start_is_a_harness_error(tmp_path: Path) -> None:
    with pytest.raises(ExecutionError, match="could not start a Jupyter kernel"):
        _run(tmp_path, _notebook("x = 1"), argv=["/bin/false"])


def test_no_kernel_outlives_a_killed_grader(tmp_path: Path) -> None:
    """A TA's batch killed with SIGKILL must not leave kernels behind (PR_SET_PDEATHSIG)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    marker = f"dlgrade-orphan-{os.getpid()}"
    script = f"""
import asyncio, nbformat
from pathlib import Path
from graders import inject, sandbox
from graders.config import Limits
from graders.execute import KernelJob, NbclientExecutor
from graders.config import FIXTURE_DATA_ROOT
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    "import subprocess; subprocess.Popen(['/bin/sh', '-c', 'sleep 600; : {marker}']).wait()")])
limits = Limits(cell_timeout_s=900, total_timeout_s=900)
prepared = inject.prepare(nb, parameters={{}}, preamble="pass")
box = sandbox.prepare(plan=sandbox.choose(data_root=FIXTURE_DATA_ROOT), question="qx",
                      scratch=Path({str(tmp_path)!r}), limits=limits, threads=1, device="cpu",
                      data_root=FIXTURE_DATA_ROOT)
job = KernelJob(question="qx", prepared=prepared, sandbox=box, limits=limits,
                probe_source="pass", write_probe_inputs=lambda: None)
asyncio.run(NbclientExecutor().run(job))
"""
    grader = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)

    def alive() -> list[str]:
        found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
        return found.stdout.split()

    try:
        deadline = time.monotonic() + 120
        while not alive():  # the cell's child runs: the kernel is in the student's code
            assert time.monotonic() < deadline, "the kernel never started its cell"
            assert grader.poll() is None, "the grader exited early"
            time.sleep(0.2)
        os.kill(grader.pid, signal.SIGKILL)
        grader.wait()
        deadline = time.monotonic() + 20
        while True:
            left = alive()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not left, f"kernel processes outlived the grader: {left}"
    finally:
        if grader.poll() is None:
            grader.kill()


def test_the_largest_kernel_process_is_measured_inside_its_pid_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Gradescope run's "largest kernel" line: read from the kernel's own /proc before it
    stops. getrusage's children never see a kernel in a pid namespace of its own (a 300 MB
    kernel gave the launcher's few MB), so the figure must come from here."""
    monkeypatch.setattr(execute, "KERNEL_PEAKS", execute.KernelPeaks())
    nb = _notebook("block = bytearray(300 << 20)\nblock[::4096] = b'x' * len(block[::4096])")
    run, _, _ = _run(tmp_path, nb)
    assert run.probe_status == "ok"
    assert execute.KERNEL_PEAKS.mb >= 300
    monkeypatch.setattr(execute, "KERNEL_PEAKS", execute.KernelPeaks())
    _run(tmp_path / "small", _notebook("x = 1"))
    assert 0 < execute.KERNEL_PEAKS.mb < 300, "the small kernel's own peak, not the last one's"
