"""Hostile and broken submissions (issue 8), each graded end to end with real kernels.

Every scenario is ``fixtures/hostile/<name>/`` (``tools/make_hostile.py``): the correct Q2
notebook with one hostile cell appended. Each test grades it with the real pipeline under a
profile with short limits and asserts what the student is told, that what could be graded was
scored, and that nothing leaked, was forged or outlived the grading.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import stat
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hostile_support import (
    CONFINED,
    FULL_Q2,
    HOSTILE,
    LIMITS,
    MODE,
    _grade,
    _last_cell,
    _marked_processes,
    _no_stray_processes,
    _peak_rss_growth_kib,
    _profiles,
    _q2,
    _result_dir,
    grade_with_the_cli,
)

from graders.config import GradeOptions
from graders.errors import UnsafeSubmissionError
from graders.models import ProbeStatus, RunStatus, SandboxMode
from graders.pipeline import grade
from graders.plain_data import PlainDataError, check_npz, open_zip
from graders.sandbox import cgroups
from tools import make_hostile

__all__ = ["_no_stray_processes"]  # the autouse fixture, used by being here

# --- 0. the fixtures are what the generator writes ----------------------------------------


def test_committed_fixtures_are_up_to_date() -> None:
    assert make_hostile.main(["--check"]) == 0


# --- 1. time ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.kernel
def test_infinite_loop_is_interrupted_and_the_rest_is_graded(tmp_path: Path) -> None:
    report = _grade(tmp_path, "infinite_loop", {"cell_timeout_s": 4})
    run, score = _q2(report)
    last = _last_cell(report)
    assert run.execution.timed_out_cells == (last,)
    assert f"Cell {last} raised CellTimeoutError" in run.execution.message
    assert run.probe.status is ProbeStatus.OK
    assert score == FULL_Q2


@pytest.mark.kernel
@pytest.mark.slow
def test_sleep_past_the_total_budget_stops_the_notebook_and_still_probes(tmp_path: Path) -> None:
    report = _grade(tmp_path, "sleep_past_total", {"cell_timeout_s": 30, "total_timeout_s": 6})
    run, score = _q2(report)
    assert run.execution.status is RunStatus.TIMEOUT
    assert "ran out of its total time" in run.execution.message
    assert run.probe.status is ProbeStatus.OK
    assert score == FULL_Q2


# --- 2. resources -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.kernel
def test_memory_bomb_becomes_memory_error_in_its_cell(tmp_path: Path) -> None:
    report = _grade(tmp_path, "memory_bomb", {"cell_timeout_s": 60})  # slow on a busy machine
    run, score = _q2(report)
    (error,) = run.execution.cell_errors
    assert error.cell_index == _last_cell(report) and error.ename == "MemoryError"
    assert run.execution.status is RunStatus.CELL_ERRORS
    # The bomb's list still holds the memory when the probe runs: whatever it could measure
    # is scored, and nothing crashes.
    assert 0 <= score <= FULL_Q2


@pytest.mark.kernel
def test_children_that_leave_the_session_do_not_outlive_grading(tmp_path: Path) -> None:
    report = _grade(tmp_path, "fork_children")
    _, score = _q2(report)
    assert score == FULL_Q2
    assert _marked_processes() == []


@pytest.mark.kernel
def test_fork_bomb_is_capped_when_a_process_limit_holds(tmp_path: Path) -> None:
    if not CONFINED:
        pytest.skip("unconfined: nothing caps the number of processes (docs/security.md)")
    report = _grade(tmp_path, "fork_bomb", {"max_processes": 64})
    run, score = _q2(report)
    (error,) = run.execution.cell_errors
    assert error.cell_index == _last_cell(report)
    assert error.ename == "BlockingIOError" and "Resource temporarily unavailable" in error.evalue
    # The bomb's copies hold the cap until the kernel ends: the probe may then find no room
    # for a thread. Either way it says what happened, and nothing ran away.
    assert run.probe.status is ProbeStatus.OK or run.probe.message
    assert 0 <= score <= FULL_Q2


def test_empty_kernel_cgroups_a_killed_grader_left_are_swept(tmp_path: Path) -> None:
    """A grader killed with SIGKILL never removes its kernel's cgroups; the next grader
    removes such groups once they are an hour old and empty, and nothing else."""
    names = ("dlgrade-k-a", "dlgrade-k-b", "dlgrade-k-c", "x")
    old, young, busy, other = (tmp_path / n for n in names)
    for folder in (old, young, busy, other):
        folder.mkdir()
    (busy / "cgroup.procs").write_text("123\n")  # a real group with tasks refuses rmdir too
    hours_ago = time.time() - 2 * cgroups.STALE_CGROUP_S
    for folder in (old, busy, other):
        os.utime(folder, (hours_ago, hours_ago))
    cgroups._sweep_stale(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dlgrade-k-b", "dlgrade-k-c", "x"]


@pytest.mark.kernel
@pytest.mark.slow
def test_a_gigabyte_of_output_is_capped_and_the_grader_stays_flat(tmp_path: Path) -> None:
    # The first grade in a process imports torch and the checks (~650 MiB): measure after it.
    _grade(tmp_path / "warm", "sys_exit")
    # Memory enough for the kernel to send its buffer as messages of hundreds of MiB.
    report, grown = _peak_rss_growth_kib(
        lambda: _grade(tmp_path, "big_output", {"cell_timeout_s": 120, "memory_mb": 4096})
    )
    run, score = _q2(report)
    assert run.execution.output_truncated
    assert run.execution.executed_notebook is not None
    executed = _result_dir(tmp_path, report) / run.execution.executed_notebook
    assert executed.stat().st_size < 4 * LIMITS["output_cap_kb"] * 1024
    assert "output beyond the size cap was dropped" in executed.read_text(encoding="utf-8")
    # 640 MiB before the cap held; allocators differ (glibc's arenas follow the core count)
    assert grown < 300 * 1024, f"grader RSS grew by {grown} KiB"
    assert score == FULL_Q2


@pytest.mark.kernel
def test_a_file_past_the_size_limit_fails_in_its_cell(tmp_path: Path) -> None:
    report = _grade(tmp_path, "disk_fill")
    run, score = _q2(report)
    (error,) = run.execution.cell_errors
    assert error.ename == "OSError" and "File too large" in error.evalue
    assert score == FULL_Q2


# --- 3. exits -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.kernel
def test_sys_exit_is_an_error_in_its_cell(tmp_path: Path) -> None:
    report = _grade(tmp_path, "sys_exit")
    run, score = _q2(report)
    (error,) = run.execution.cell_errors
    assert error.ename == "SystemExit"
    assert score == FULL_Q2


@pytest.mark.slow
@pytest.mark.kernel
def test_os_exit_is_reported_with_its_cell(tmp_path: Path) -> None:
    report = _grade(tmp_path, "os_exit")
    run, score = _q2(report)
    assert run.execution.status is RunStatus.KERNEL_DIED
    assert f"The kernel died while running cell {_last_cell(report)}" in run.execution.message
    assert run.probe.status is ProbeStatus.FAILED
    assert "died before the probe" in run.probe.message
    assert score == 0
    result = json.loads((_result_dir(tmp_path, report) / "result.json").read_text())
    assert result["run"]["questions"][0]["execution"]["status"] == "kernel_died"


@pytest.mark.slow
@pytest.mark.kernel
def test_killing_its_own_kernel_is_contained(tmp_path: Path) -> None:
    report = _grade(tmp_path, "kill_own_kernel")
    run, score = _q2(report)
    # The kernel may end itself like any process; what it cannot do is reach anything else.
    assert run.execution.status is RunStatus.KERNEL_DIED
    assert f"while running cell {_last_cell(report)}" in run.execution.message
    assert score == 0


@pytest.mark.kernel
def test_exit_inside_a_probed_function_costs_only_that_function(tmp_path: Path) -> None:
    report = _grade(tmp_path, "exit_in_probed_function")
    run, score = _q2(report)
    assert run.execution.status is RunStatus.OK
    failed = {e.step.split("[")[0] for e in run.probe.errors}
    assert failed == {"forward_variance", "backward_variance"}
    assert any("SystemExit" in e.message for e in run.probe.errors)
    (result,) = report.questions
    scores = {c.id: c.score for c in result.checks}
    assert scores["q2.activation_variance"] == 1.0 and scores["q2.xavier_rule"] == 1.0
    assert scores["q2.forward_rule"] == 0 and scores["q2.backward_rule"] == 0
    assert 0 < score < FULL_Q2


@pytest.mark.kernel
def test_os_exit_inside_a_probed_function_says_which_step(tmp_path: Path) -> None:
    report = _grade(tmp_path, "os_exit_in_probed_function")
    run, score = _q2(report)
    assert run.execution.status is RunStatus.OK
    assert run.probe.status is ProbeStatus.FAILED
    assert "forward_variance" in run.probe.message
    assert score == 0


# --- 4. reading the grader's files, forging results ---------------------------------------


@pytest.mark.kernel
def test_the_kernel_cannot_import_the_grader_reference_or_reports(tmp_path: Path) -> None:
    report = _grade(tmp_path, "read_grader_files")
    run, score = _q2(report)
    assert run.execution.executed_notebook is not None
    executed = _result_dir(tmp_path, report) / run.execution.executed_notebook
    text = executed.read_text(encoding="utf-8")
    found = json.loads(text.split("LEAKCHECK ", 1)[1].split("\\n", 1)[0].replace('\\"', '"'))
    assert found["graders"] is False and found["reference"] is False
    assert found["reports"] is False
    by_path = {k: v for k, v in found.items() if "/" in k}
    if CONFINED:
        # bubblewrap: not on the kernel's file system; sandbox user: not the user's to read.
        assert by_path and all(isinstance(v, str) for v in by_path.values()), found
    assert score == FULL_Q2


@pytest.mark.slow
@pytest.mark.kernel
def test_planted_results_do_not_survive(tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = _grade(tmp_path, "plant_results", OUT_GUESS=str(out))
    _, score = _q2(report)
    assert score == FULL_Q2
    time.sleep(1.5)  # the planted child would rewrite result.json every 0.1 s
    result = json.loads((out / "plant_results" / "result.json").read_text(encoding="utf-8"))
    assert make_hostile.PLANTED not in json.dumps(result)
    assert result["questions"][0]["score"] == FULL_Q2
    assert _marked_processes() == []


@pytest.mark.kernel
@pytest.mark.slow
def test_another_submissions_result_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "out"
    good = grade(
        HOSTILE / "sys_exit",
        out,
        GradeOptions(profile="quick", only=("q2",), profiles_file=_profiles(tmp_path)),
    )
    before = (out / "sys_exit" / "result.json").read_text(encoding="utf-8")
    _grade(tmp_path, "plant_results", OUT_GUESS=str(out))
    time.sleep(1.5)
    assert (out / "sys_exit" / "result.json").read_text(encoding="utf-8") == before
    assert good.score == FULL_Q2


# --- 5. fooling the probe -----------------------------------------------------------------


@pytest.mark.kernel
def test_a_results_file_the_kernel_set_to_mode_0_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel owns its results file and sets its mode to 0 after each write of the probe:
    an ordinary user's grader (this test runs again as one, ``test_as_ordinary_user.py``) still
    reads it, through the descriptor it opened before the kernel started, and scores it."""
    from graders.sandbox import ResultsFile

    modes: list[int] = []
    read = ResultsFile.read

    def recorded(self: ResultsFile, limit: int) -> bytes:
        modes.append(stat.S_IMODE(self.path.stat().st_mode))
        return read(self, limit)

    monkeypatch.setattr(ResultsFile, "read", recorded)
    report = _grade(tmp_path, "lock_results")
    run, score = _q2(report)
    assert modes == [0], "the kernel should have left its results file at mode 0"
    assert run.probe.status is ProbeStatus.OK, run.probe.errors
    assert score == FULL_Q2


@pytest.mark.kernel
def test_monkeypatching_numpy_json_and_print_does_not_raise_the_grade(tmp_path: Path) -> None:
    report = _grade(tmp_path, "monkeypatch")
    _, score = _q2(report)
    (result,) = report.questions
    scores = {c.id: c.score for c in result.checks}
    # The notebook's Xavier rule is wrong (1/(n_in+n_out)): no patch in the kernel can hide it.
    assert scores["q2.xavier_rule"] == 0
    assert score < FULL_Q2
    assert "999" not in json.dumps([c.message for c in result.checks])


# --- 6. network ---------------------------------------------------------------------------


@pytest.mark.kernel
def test_network_is_isolated_when_the_sandbox_can(tmp_path: Path) -> None:
    received: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.2)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                with conn:
                    received.append(conn.recv(100))

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        report = _grade(tmp_path, "network", NET_PORT=server.getsockname()[1])
        stop.set()
        thread.join()
    run, score = _q2(report)
    assert score == FULL_Q2
    if MODE is not SandboxMode.BUBBLEWRAP:
        pytest.skip("only bubblewrap isolates the network (docs/security.md)")
    (error,) = run.execution.cell_errors
    assert error.ename in ("ConnectionRefusedError", "OSError", "TimeoutError")
    assert received == []


# --- 7. broken files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "words"),
    [("load_not_json", "JSON"), ("load_empty", "the file is empty")],
)
def test_an_unreadable_notebook_is_a_message_not_a_crash(
    tmp_path: Path, scenario: str, words: str
) -> None:
    report = _grade(tmp_path, scenario)
    run, score = _q2(report)
    assert run.execution.status is RunStatus.NOT_RUN
    assert words in run.execution.message and "q2_initialization.ipynb" in run.execution.message
    assert score == 0


@pytest.mark.kernel
@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param("load_nbformat3", marks=pytest.mark.slow),
        "load_odd_names",
        pytest.param("load_wrong_slot", marks=pytest.mark.slow),
    ],
)
def test_odd_but_readable_notebooks_are_graded(tmp_path: Path, scenario: str) -> None:
    report = _grade(tmp_path, scenario)
    run, score = _q2(report)
    assert run.execution.status is RunStatus.OK, run.execution.message
    assert score == FULL_Q2


@pytest.mark.slow
def test_ten_thousand_cells_are_refused_with_a_message(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    make_hostile.write_many_cells(folder / make_hostile.NOTEBOOK)
    report = _grade(tmp_path, folder)
    run, score = _q2(report)
    assert "10" in run.execution.message and "cells" in run.execution.message
    assert score == 0


def test_a_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    bomb = make_hostile.write_zip_bomb(tmp_path / "bomb.zip")
    with pytest.raises(UnsafeSubmissionError, match="unpacks to more than"):
        _grade(tmp_path, bomb)
    assert not list((tmp_path / "out").glob("bomb*"))


def _peak_traced(action: Callable[[], object]) -> int:
    """The most memory Python allocations held while ``action`` ran, in bytes (tracemalloc:
    exact and the same on every machine, unlike a process's resident size)."""
    tracemalloc.start()
    try:
        with contextlib.suppress(Exception):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("zip64", [True, False], ids=["zip64-record", "ordinary-record"])
def test_a_zip_directory_of_a_million_entries_is_refused_before_python_reads_it(
    tmp_path: Path, zip64: bool
) -> None:
    """An upload that is nothing but a central directory: zipfile builds an object for every
    entry before anything can count them (378 MiB for this 47 MB file), and a ZIP64 end
    record overrides the ordinary one's counts."""
    bomb = make_hostile.write_zip_directory_bomb(tmp_path / "bomb.zip", zip64=zip64)
    with pytest.raises(UnsafeSubmissionError, match=r"lists \d+ entries") as refused:
        _grade(tmp_path, bomb)
    assert "bomb.zip" in str(refused.value)
    peak = _peak_traced(lambda: _grade(tmp_path, bomb))
    assert peak < 16 << 20, f"refusing it took {peak >> 20} MiB"


def test_a_results_file_whose_zip64_record_hides_its_directory_is_refused_unread() -> None:
    """The probe's results file: the end record says 0 entries, the ZIP64 record a million
    (285 MiB and 11 s to build before the old check read the 16-bit counts)."""
    data = make_hostile.zip_directory_bomb(1_000_000)
    with pytest.raises(PlainDataError, match="lists 1000000 entries"):
        open_zip(data, name="artifacts.zip", max_entries=256)
    peak = _peak_traced(lambda: open_zip(data, name="artifacts.zip", max_entries=256))
    assert peak < 1 << 20, f"refusing it took {peak >> 20} MiB"


def _npy(shape: str, data: bytes) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


@pytest.mark.parametrize("shape", ["(-2, -4)", "(-1, -8)", "(True, 8)"])
def test_an_npy_header_whose_sizes_are_not_counts_is_refused(shape: str) -> None:
    """Their product matches the data (8 numbers), so the size check passed them; numpy then
    failed in the check that loaded them, which reported a bug of the grader's."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("w.npy", _npy(shape, bytes(64)))
    with pytest.raises(PlainDataError, match="is not a list of sizes"):
        check_npz(archive.getvalue(), name="state.npz")


@pytest.mark.kernel
def test_a_zip_with_escaping_paths_grades_the_safe_part_only(tmp_path: Path) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    archive = make_hostile.write_zip_slip(tmp_path / "deep" / "er" / "slip.zip")
    report = _grade(tmp_path, archive)
    _, score = _q2(report)
    assert score == FULL_Q2
    skipped = [p for p in report.run.submission.problems if "unsafe" in p.message]
    assert len(skipped) == 2
    assert not list(tmp_path.rglob(f"*{make_hostile.PLANTED}*"))
    assert not list(Path("/tmp").glob(f"absolute-{make_hostile.PLANTED}*"))


# --- a batch goes on ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.kernel
def test_a_batch_with_a_dying_submission_grades_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = HOSTILE / "os_exit"
    good = make_hostile.SOURCE
    code, results = grade_with_the_cli(tmp_path, hostile, good)
    assert code == 0, capsys.readouterr()
    assert results["os_exit"]["score"] == 0 and results["q2_initialization"]["score"] == FULL_Q2
