"""The sandbox holds: each attack class of the security model, graded end to end.

Each test grades a scenario of ``fixtures/hostile/`` (``tools/make_hostile.py``) with the real
pipeline and asserts the concrete evidence: a secret's marker absent from every output, a
listener on the host that nobody connected to, a classmate's score unchanged, nothing left on
the host, the grader alive and small. They run as root (CI) and, through
``tests/test_as_ordinary_user.py``, again as an unprivileged account: the same sandbox must
hold for both. docs/security.md maps each class to its mechanism and to the test here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_support import (
    CONFINED,
    FULL_Q2,
    HOSTILE,
    LIMITS,
    MODE,
    _grade,
    _marked_processes,
    _no_stray_processes,
    _peak_rss_growth_kib,
    _profiles,
    _q2,
    _result_dir,
    _rss_kib,
    grade_with_the_cli,
    printed,
)

from graders.batch.options import BatchOptions
from graders.batch.runner import run_batch
from graders.config import GradeOptions
from graders.models import GradeReport, RunStatus, SandboxMode
from tools import make_hostile

__all__ = ["_no_stray_processes"]
BWRAP = MODE is SandboxMode.BUBBLEWRAP
pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not CONFINED, reason="nothing confines student code on this machine"),
]


def _every_output(tmp_path: Path) -> str:
    """Every file the grading wrote, as text: a secret must be in none of them."""
    texts = []
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


@pytest.fixture
def marker() -> str:
    return f"dlgrade-secret-{secrets.token_hex(6)}"


# --- /proc: other processes, a classmate's kernel ---------------------------------------------


@pytest.fixture
def host_process(marker: str, tmp_path: Path) -> Iterator[int]:
    """A process on the host with the marker in its command line, its environment and the name
    of a file in its working folder (a classmate's live kernel, a TA's shell)."""
    home = tmp_path / "victim"
    home.mkdir()
    (home / f"{marker}.ipynb").write_text("the classmate's notebook")
    proc = subprocess.Popen(
        ["sleep", "600", marker], cwd=home, env={"PATH": "/usr/bin:/bin", "SECRET": marker}
    )
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_the_hosts_processes_are_invisible(tmp_path: Path, marker: str, host_process: int) -> None:
    report = _grade(tmp_path, "proc_scan", MARKER=marker)
    _, score = _q2(report)
    found = printed(tmp_path, report, "PROCSCAN")
    assert found is not None, "the scan did not run"
    assert found["environ"] is False and found["cwd_files"] == []
    if BWRAP:  # a private /proc: only the sandbox's own processes exist
        assert found["cmdline"] is False
        assert found["pids"] <= 4, found
    assert score == FULL_Q2


_KEY_SYSCALLS = {"x86_64": (248, 250), "aarch64": (217, 219)}
"""(add_key, keyctl) by machine."""
_USER_KEYRING = -4
_KEYCTL_UNLINK = 9


@pytest.fixture
def users_key(marker: str) -> Iterator[str]:
    """A key in the grading user's own keyring, named with the marker (a token a TA's login or
    a credential helper keeps there)."""
    import ctypes

    numbers = _KEY_SYSCALLS.get(os.uname().machine)
    if numbers is None:
        pytest.skip(f"no key syscall numbers for {os.uname().machine}")
    add_key, keyctl = numbers
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    payload = b"not for students"
    serial = libc.syscall(
        add_key, b"user", marker.encode(), payload, len(payload), ctypes.c_long(_USER_KEYRING)
    )
    if serial < 0:
        pytest.skip(f"this machine keeps no keyrings (errno {ctypes.get_errno()})")
    try:
        yield marker
    finally:
        libc.syscall(keyctl, _KEYCTL_UNLINK, ctypes.c_long(serial), ctypes.c_long(_USER_KEYRING))


def test_the_keys_of_the_grading_user_are_not_listed(tmp_path: Path, users_key: str) -> None:
    """``/proc/keys`` lists every key the reader's uid may view, even in a private /proc: as an
    ordinary user the kernel runs as the TA, and saw the TA's own keys by name."""
    report = _grade(tmp_path, "proc_keys")
    _, score = _q2(report)
    found = printed(tmp_path, report, "PROCKEYS")
    assert found is not None, "the listing did not run"
    assert users_key not in json.dumps(found)
    if BWRAP:
        assert found == {"/proc/keys": "", "/proc/key-users": ""}
    assert score == FULL_Q2


@pytest.mark.slow
def test_a_classmates_kernel_in_the_same_batch_cannot_be_driven(tmp_path: Path) -> None:
    """Two submissions graded at once: the attacker looks for the other kernel's connection
    file and sockets and, found, would redefine the classmate's answer as a wrong one."""
    batch = tmp_path / "batch"
    batch.mkdir()
    for name in ("victim_waits", "attack_classmate"):
        shutil.copytree(HOSTILE / name, batch / name)
    profiles = _profiles(tmp_path, {"cell_timeout_s": 30, "total_timeout_s": 60}, VICTIM_SECONDS=15)
    options = BatchOptions(
        folder=batch,
        out=tmp_path / "out",
        workers=2,
        grade=GradeOptions(profile="quick", only=("q2",), profiles_file=profiles),
    )
    run_batch(options, stream=open(os.devnull, "w"))  # noqa: SIM115
    victim = json.loads((tmp_path / "out" / "victim_waits" / "result.json").read_text())
    assert victim["score"] == FULL_Q2, "the classmate's answers were changed"
    executed = (tmp_path / "out" / "attack_classmate").rglob("*.ipynb")
    text = "".join(p.read_text() for p in executed)
    assert '"hijacked": []' in text.replace('\\"', '"')


# --- unix sockets of the host -----------------------------------------------------------------


@pytest.fixture
def listeners(marker: str) -> Iterator[tuple[list[str], str, list[bytes]]]:
    """A unix socket like a TA's tmux server (in a folder anyone may enter) and an abstract one;
    whatever connects is recorded."""
    folder = Path(tempfile.mkdtemp(prefix="dlgrade-tmux-"))
    folder.chmod(0o755)
    path = folder / "default"
    abstract = f"{marker}-abstract"
    received: list[bytes] = []
    servers = []
    for address in (str(path), "\0" + abstract):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(address)
        server.listen(8)
        server.settimeout(0.2)
        servers.append(server)
    os.chmod(path, 0o777)
    stop = threading.Event()

    def accept(server: socket.socket) -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                received.append(conn.recv(100) or b"(connected)")

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield [str(path)], abstract, received
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for server in servers:
            server.close()
        path.unlink(missing_ok=True)
        folder.rmdir()


def test_no_unix_socket_of_the_host_can_be_reached(
    tmp_path: Path, listeners: tuple[list[str], str, list[bytes]]
) -> None:
    paths, abstract, received = listeners
    report = _grade(tmp_path, "unix_sockets", SOCKETS=paths, ABSTRACT=abstract)
    _, score = _q2(report)
    found = printed(tmp_path, report, "SOCKETS")
    assert found is not None
    if BWRAP:
        assert found["connected"] == [] and received == []
    else:  # the user mode has no mount or network namespace: only permissions stand between
        assert not any(p in found["connected"] for p in paths if not os.access(p, os.W_OK))
    assert score == FULL_Q2


# --- default-deny files: solutions, reference, rubric, results, other folders -----------------


@pytest.fixture
def host_secrets(marker: str) -> Iterator[dict[str, Path]]:
    """The marker in a world-readable file (in bubblewrap's empty root it does not exist at
    all) and in a private one (0600 in a 0700 folder, like a TA's home)."""
    public_dir = Path(tempfile.mkdtemp(prefix="dlgrade-public-"))
    public_dir.chmod(0o755)
    private_dir = Path(tempfile.mkdtemp(prefix="dlgrade-private-"))
    made = {"public": public_dir / "notes.txt", "private": private_dir / "key.txt"}
    for path in made.values():
        path.write_text(marker)
    made["public"].chmod(0o644)
    made["private"].chmod(0o600)
    try:
        yield made
    finally:
        for path in made.values():
            path.unlink()
            path.parent.rmdir()


def test_a_blank_notebook_finds_no_solution_reference_rubric_or_secret(
    tmp_path: Path, marker: str, host_secrets: dict[str, Path]
) -> None:
    out = tmp_path / "out"
    wanted = [host_secrets["private"]] + ([host_secrets["public"]] if BWRAP else [])
    report = _grade(
        tmp_path, "steal_solutions", OUT_GUESS=str(out), SECRETS=[str(p) for p in wanted]
    )
    _, score = _q2(report)
    found = printed(tmp_path, report, "LEAKCHECK")
    assert found is not None
    for key in ("solution", "reference", "rubric", "thresholds", "git", "shadow"):
        assert isinstance(found[key], str) and found[key].endswith("Error"), (key, found[key])
    assert score == 0, "the blank notebook scored by running the fixture's solution"
    assert marker not in _every_output(tmp_path)


# --- root powers --------------------------------------------------------------------------------


def test_no_capability_is_left(tmp_path: Path) -> None:
    """Lowering its own OOM score, real-time scheduling, a higher priority, mounts, root: all
    refused; and the grader's OOM score is as it was (the kernel may raise only its own and its
    sandbox's, which are all it can see)."""
    graders_oom = Path("/proc/self/oom_score_adj").read_text()
    report = _grade(tmp_path, "capabilities")
    _, score = _q2(report)
    found = printed(tmp_path, report, "CAPS")
    assert found is not None
    powers = ("nice", "sched_fifo", "oom_score_adj", "setuid_root", "chroot", "mount", "setsid")
    for power in (*powers, "keyctl"):
        assert found[power] != "allowed", (power, found)
    assert Path("/proc/self/oom_score_adj").read_text() == graders_oom
    assert int(found["CapEff"], 16) == 0
    assert score == FULL_Q2


# --- nothing of a grading survives it -------------------------------------------------------------


def _shm_keys() -> set[int]:
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return {int(line.split()[0]) for line in lines if line.strip()}


def test_no_segment_file_or_process_outlives_the_grading(tmp_path: Path, marker: str) -> None:
    key = 0x44000000 + secrets.randbelow(1 << 20)
    report = _grade(tmp_path, "ipc_leftovers", MARKER=marker, SHM_KEY=key)
    _, score = _q2(report)
    assert score == FULL_Q2
    assert key not in _shm_keys()
    assert not (Path("/dev/shm") / marker).exists()
    assert not (Path(tempfile.gettempdir()) / marker).exists()
    assert _marked_processes() == []


# --- resources of the whole kernel tree --------------------------------------------------------


@pytest.mark.slow
def test_memory_is_capped_for_the_kernel_and_its_children(tmp_path: Path) -> None:
    """Five children of 400 MB under a 1 GB limit: at most two can hold their memory at once,
    whether a cgroup or the grader's watchdog enforces it, and the report says which."""
    report = _grade(tmp_path, "memory_children", {"cell_timeout_s": 60, "memory_mb": 1024})
    run, _ = _q2(report)
    found = printed(tmp_path, report, "MEMCHILDREN")
    held = None if found is None else int(found)
    assert held is None or held <= 2, f"{held} children of 400 MB held memory under 1 GB"
    if held is None:  # the kernel itself was killed for the tree's memory
        assert run.execution.status is RunStatus.KERNEL_DIED
        assert "memory" in run.execution.message
    memory_line = report.run.confinement.limits[0]
    assert "kernel and all its children" in memory_line


def test_memory_in_anonymous_files_counts_too(tmp_path: Path) -> None:
    """1.6 GB in memfd files under a 1 GB limit: the kernel is killed for it (a cgroup charges
    those pages; the watchdog adds the files' sizes), before it can say it holds them."""
    report = _grade(tmp_path, "memfd_hoard", {"cell_timeout_s": 60, "memory_mb": 1024})
    run, _ = _q2(report)
    assert printed(tmp_path, report, "HOARDED") is None, "1.6 GB held under a 1 GB limit"
    if run.execution.status is RunStatus.KERNEL_DIED:  # killed for the tree's memory
        assert "memory" in run.execution.message
    else:  # or the allocation itself refused by the cgroup
        (error,) = run.execution.cell_errors
        assert error.ename in ("OSError", "MemoryError"), error


def test_many_small_files_meet_the_disk_budget(tmp_path: Path) -> None:
    if not BWRAP:
        pytest.skip("the user mode caps each file, not their total (docs/security.md)")
    report = _grade(tmp_path, "disk_many_files", {"disk_mb": 32, "tmp_mb": 16})
    run, score = _q2(report)
    (error,) = run.execution.cell_errors
    assert error.ename == "OSError" and "No space left on device" in error.evalue
    assert score == FULL_Q2


# --- the grader's side: hostile probe results and output floods --------------------------------


@pytest.mark.slow
def test_forged_probe_results_fail_that_question_and_the_next_submission_is_graded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, results = grade_with_the_cli(
        tmp_path, HOSTILE / "forged_probe_results", make_hostile.SOURCE
    )
    assert code == 0, capsys.readouterr()
    forged, fine = results["forged_probe_results"], results["q2_initialization"]
    assert forged["score"] < FULL_Q2 and fine["score"] == FULL_Q2
    errors = forged["run"]["questions"][0]["probe"]["errors"]
    said = " ".join(e["message"] for e in errors)
    assert any(
        words in said
        for words in ("levels deep", "not a file this question's probe writes", "entries")
    ), said


@pytest.mark.parametrize(
    "scenario",
    [
        "huge_error",
        *(
            pytest.param(name, marks=pytest.mark.slow)
            for name in (
                "reply_flood",
                "multiframe_flood",
                "malformed_message",
                "error_loop",
                "display_updates",
                "comm_flood",
            )
        ),
    ],
)
def test_every_kind_of_kernel_message_counts_against_the_output_cap(
    tmp_path: Path, scenario: str
) -> None:
    _grade(tmp_path / "warm", "sys_exit")  # imports and first-run costs, before measuring
    before = _rss_kib()
    report = _grade(tmp_path, scenario, {"cell_timeout_s": 120, "memory_mb": 2048})
    grown = _rss_kib() - before
    run, score = _q2(report)
    assert run.execution.executed_notebook is not None
    executed = _result_dir(tmp_path, report) / run.execution.executed_notebook
    assert executed.stat().st_size < 4 * 256 * 1024, "the executed notebook outgrew the cap"
    assert grown < 200 * 1024, f"grader RSS grew by {grown} KiB"
    assert score == FULL_Q2
    if scenario == "huge_error":  # cut to size in the kernel, kept as an ordinary error
        (error,) = run.execution.cell_errors
        assert error.ename == "ValueError" and len(error.evalue) <= 4100
    if scenario == "reply_flood":  # dropped, said so, and the rest (the probe) still ran
        (error,) = run.execution.cell_errors
        assert error.ename == "KernelReplyDropped" and "MiB" in error.evalue


@pytest.mark.slow
def test_a_message_of_many_small_frames_is_cut_before_the_grader_holds_it(
    tmp_path: Path,
) -> None:
    """200 frames of 4 MiB in one output message, each under libzmq's per-frame limit: libzmq
    held all 800 MiB before the grader could read a frame. The relay cuts it on the way."""
    _grade(tmp_path / "warm", "sys_exit")
    report, grown = _peak_rss_growth_kib(
        lambda: _grade(tmp_path, "multipart_flood", {"cell_timeout_s": 120, "memory_mb": 2048})
    )
    run, score = _q2(report)
    assert grown < 200 * 1024, f"grader RSS peaked {grown} KiB higher"
    assert run.execution.output_truncated
    assert score == FULL_Q2


def test_the_grader_opens_no_heartbeat_a_kernel_could_answer(tmp_path: Path) -> None:
    """The heartbeat channel had no size limit: a kernel that took the grader's connection
    over and answered its ping with 1 GiB grew the grader by 2 GiB (and left it waiting for
    the rest of an unfinished reply at shutdown, forever). The grader opens none."""
    _grade(tmp_path / "warm", "sys_exit")
    report, grown = _peak_rss_growth_kib(
        lambda: _grade(tmp_path, "heartbeat_takeover", {"cell_timeout_s": 60})
    )
    found = printed(tmp_path, report, "HEARTBEAT")
    assert found == {"connected": False, "sent_mb": 0}, found
    assert grown < 200 * 1024, f"grader RSS peaked {grown} KiB higher"
    _, score = _q2(report)
    assert score == FULL_Q2


def test_a_results_file_whose_zip64_record_lists_its_entries_is_refused_unread(
    tmp_path: Path,
) -> None:
    """The probed function rewrites the results file as a directory of entries announced by a
    ZIP64 end record (the ordinary one says none): refused from the end records alone."""
    report = _grade(tmp_path, "zip64_directory", MAX_FILE_MB=LIMITS["max_file_mb"])
    run, score = _q2(report)
    said = " ".join(e.message for e in run.probe.errors)
    assert "lists" in said and "entries (limit" in said, said
    assert score < FULL_Q2


def test_only_the_folders_of_the_disk_budget_are_writable(tmp_path: Path) -> None:
    """Every mount of the kernel's file system is tried: bwrap's /dev was a writable tmpfs of
    half the machine's memory, outside the disk budget (and, without a memory cgroup, outside
    the memory limit too: 1.6 GB written there under a 1 GB limit)."""
    if not BWRAP:
        pytest.skip("the user mode caps each file, not where it lies (docs/security.md)")
    report = _grade(tmp_path, "writable_mounts")
    found = printed(tmp_path, report, "WRITABLE")
    assert found is not None and found["mounts"] > 10
    assert found["writable"] == ["/dev/shm", "/tmp", "/workspace"]
    _, score = _q2(report)
    assert score == FULL_Q2


def test_no_descriptor_of_the_sandbox_opens_a_host_file_or_folder(tmp_path: Path) -> None:
    """The launcher opens bind sources and copies in (as root, before the staging hides /tmp);
    none of those descriptors may reach the kernel or the sandbox's first process: through
    /proc/<pid>/fd one would lead past the sandbox's root."""
    if not BWRAP:
        pytest.skip("without namespaces a kernel's files are the host's (docs/security.md)")
    report = _grade(tmp_path, "inherited_descriptors")
    found = printed(tmp_path, report, "DESCRIPTORS")
    assert found is not None and found["kinds"].get("other", 0) > 10, found
    assert found["outside"] == [], found


HOARD_LIMIT_MB = 512


@pytest.mark.parametrize(
    "scenario",
    [
        "hoard_socket_buffers",
        "hoard_loopback_tcp",
        "hoard_sysv_segments",
        "hoard_files_in_flight",
        "hoard_page_tables",
    ],
)
def test_memory_no_process_shows_is_held_to_the_limit_too(tmp_path: Path, scenario: str) -> None:
    """900 MB under a 512 MB limit, in kernel memory a process's PSS does not show: socket
    buffers, loopback TCP buffers, detached System V segments, anonymous files in flight,
    page tables. A memory cgroup is charged for most of them (not TCP); the watchdog (no
    cgroup) saw none. Each must be refused, bounded or counted: the kernel never holds it."""
    report = _grade(
        tmp_path, scenario, {"cell_timeout_s": 60, "memory_mb": HOARD_LIMIT_MB}, HOARD_MB=900
    )
    run, _ = _q2(report)
    found = printed(tmp_path, report, "HOARD")
    if found is not None:
        assert found["held_mb"] < HOARD_LIMIT_MB, f"{scenario} held {found}"
    elif run.execution.status is RunStatus.KERNEL_DIED:
        assert "memory" in run.execution.message, run.execution.message
    else:  # refused: the hoarding cell failed with the system's error
        (error,) = run.execution.cell_errors
        assert error.ename in ("OSError", "PermissionError", "MemoryError"), error


def _report_mode(report: GradeReport) -> str:
    return report.run.confinement.mode.value


def test_every_report_says_how_student_code_was_confined(tmp_path: Path) -> None:
    report = _grade(tmp_path, "sys_exit")
    out = _result_dir(tmp_path, report)
    assert _report_mode(report) == MODE.value
    for name in ("feedback.html", "feedback.md"):
        assert f"{MODE.value}" in (out / name).read_text(), name
    gradescope = json.loads((out / "gradescope_results.json").read_text())
    assert gradescope["extra_data"]["sandbox"] == MODE.value
    assert f"Sandbox: {MODE.value}" in gradescope["output"]
    assert stat.S_IMODE(out.stat().st_mode) & 0o002 == 0


def test_the_grader_runs_as_the_user_the_suite_expects(tmp_path: Path) -> None:
    """Run by test_as_ordinary_user.py, this must be that account, graded as such."""
    expected = os.environ.get("DLGRADE_TEST_EXPECT_UID")
    report = _grade(tmp_path, "sys_exit")
    reason = report.run.confinement.reason
    if os.geteuid() == 0:
        assert expected is None
        assert "uid of its own" in reason
    else:
        assert expected is None or os.geteuid() == int(expected)
        assert "ordinary user" in reason


def test_a_kernel_is_held_to_its_share_of_the_cores(tmp_path: Path) -> None:
    """As root each kernel's processes share one CPU cgroup with a quota of its threads; and
    nowhere may a process start a session of its own (an autogroup: its own CPU share)."""
    report = _grade(tmp_path, "sys_exit")
    cpu_line = next(line for line in report.run.confinement.limits if line.startswith("cpu:"))
    if os.geteuid() == 0 and Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").exists():
        assert "a CPU cgroup" in cpu_line
    else:
        assert "session of its own" in cpu_line or "a CPU cgroup" in cpu_line


# --- the sandbox itself: a bubblewrap that does less than it is asked ------------------------

_NO_NETWORK_NAMESPACE = """#!/bin/sh
# bwrap with the network namespace left out; every other option passed on as given
for arg do
  shift
  if [ "$arg" = --unshare-all ]; then
    set -- "$@" --unshare-pid --unshare-ipc --unshare-uts --unshare-cgroup-try
  else
    set -- "$@" "$arg"
  fi
done
exec {bwrap} "$@"
"""


@pytest.mark.skipif(not BWRAP, reason="only the bubblewrap mode has a self-test")
def test_a_bubblewrap_that_leaves_a_namespace_out_is_refused_before_any_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``bwrap`` that drops one option (a patched build, a wrapper someone wrote to make it
    start) still starts kernels; the self-test sees the grader's network namespace from
    inside, the kernels launched meanwhile get no notebook, and the grade is refused naming
    what the sandbox lacks."""
    from graders.cli import main
    from graders.sandbox import confinement

    real = shutil.which("bwrap")
    assert real is not None
    # Not under /tmp: a root grader's kernels never see the host's /tmp, even to exec bwrap.
    folder = Path(tempfile.mkdtemp(prefix="dlgrade-fake-bwrap-", dir="/var/tmp"))
    try:
        folder.chmod(0o755)
        fake = folder / "bwrap"
        fake.write_text(_NO_NETWORK_NAMESPACE.format(bwrap=real), encoding="utf-8")
        fake.chmod(0o755)
        monkeypatch.setenv(confinement.BWRAP_ENV, str(fake))
        notebook = HOSTILE / "sys_exit" / "q2_initialization.ipynb"
        out = tmp_path / "out"
        argv = ["grade", str(notebook), "--only", "q2", "--profile", "quick", "--out", str(out)]
        assert main([*argv, "--sandbox", "bubblewrap"]) != 0
        said = capsys.readouterr().err
        assert "shares the grader's net namespace" in said, said
        assert "pid namespace" not in said and "working folder" not in said, said
        assert not out.exists() or not any(out.iterdir())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
