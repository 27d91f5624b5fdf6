"""``dlgrade batch``: parallel, resumable grading of a folder of submissions.

The kernel tests grade copies of the fixture scenarios with ``only=("q1",)`` and the quick
profile (seconds each) and check the scores against ``fixtures/submissions/expected.toml``,
written independently of the batch code. The batch of 20 (killed halfway and resumed, then run
on a Dask cluster), the question regrade and two batch processes sharing one state file take
from ten seconds to a minute each on 2 cores: they are marked ``slow``, and the fast loop grades
a batch of seven (the claims that keep two processes apart keep their fast tests).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from graders.batch.decode import report_from_plain
from graders.batch.discover import GRADESCOPE_METADATA, content_hash, discover
from graders.batch.options import BatchOptions
from graders.batch.progress import Progress
from graders.batch.reports import collect
from graders.batch.runner import grading_fingerprint, kernel_plan, run_batch
from graders.batch.store import Entry, RowStatus, Store
from graders.config import GradeOptions
from graders.render.json_result import to_plain

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "fixtures" / "submissions"
QUICK_Q1 = GradeOptions(profile="quick", only=("q1",))
EXPECTED = tomllib.loads((SCENARIOS / "expected.toml").read_text(encoding="utf-8"))
SCENARIO_NAMES = sorted(p.name for p in SCENARIOS.iterdir() if p.is_dir())


def _copy_batch(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        shutil.copytree(SCENARIOS / name, folder / name)
    return folder


def _gradebook(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open(encoding="utf-8") as fh:
        return {row["submission"]: row for row in csv.DictReader(fh)}


def _assert_expected_q1(name: str, row: dict[str, str]) -> None:
    """The scenario's q1 score from expected.toml; blank (not listed there) gets no full marks."""
    if name in EXPECTED:
        assert float(row["q1"]) == EXPECTED[name]["q1"], name
    else:
        assert float(row["q1"]) < float(row["max_total"]), name


def _kernel_threads(out: Path) -> set[int]:
    """The thread counts the kernels of every graded submission in ``out`` were given."""
    found = set()
    for result in out.glob("*/result.json"):
        data = json.loads(result.read_text(encoding="utf-8"))
        found |= {q["execution"]["threads"] for q in data["run"]["questions"]}
    return found


def _entry(name: str, digest: str = "h1") -> Entry:
    return Entry(name=name, source=Path("/nowhere") / name, content_hash=digest)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# --- the state file --------------------------------------------------------------------------


def test_a_row_is_claimed_by_one_batch_only(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as one, Store(tmp_path / "s.sqlite") as two:
        one.sync([_entry("alice")], "fp")
        assert one.claim("alice", "host:1") is True
        assert two.claim("alice", "host:2") is False
        assert two.row("alice").status == "running"  # type: ignore[union-attr]
        mode = one._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def _open_at_once(path: str, barrier, errors) -> None:  # type: ignore[no-untyped-def]
    barrier.wait()
    try:
        Store(Path(path)).close()
    except Exception as exc:  # reported to the parent
        errors.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
def test_batches_started_together_both_open_a_new_state_file(tmp_path: Path) -> None:
    """Two batches switching a new file to WAL at once: SQLite does not wait for that lock, so
    without the sidecar lock one failed with "database is locked" (CI saw it; 22 of 300 here)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    for attempt in range(60):
        path = str(tmp_path / f"s{attempt}.sqlite")
        barrier = ctx.Barrier(3)
        procs = [ctx.Process(target=_open_at_once, args=(path, barrier, errors)) for _ in range(3)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0]
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []


def test_sync_keeps_finished_work_and_redoes_what_changed(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        assert store.sync([_entry("a"), _entry("b"), _entry("c")], "fp").new == 3
        for name in "abc":
            assert store.claim(name, "me:1")
            store.finish(
                name,
                result_json="{}",
                seconds=1.0,
                grader_version="v",
                profile="quick",
                score=1.0,
                max_score=2.0,
                worker="w",
            )
        counts = store.sync([_entry("a"), _entry("b", "h2"), _entry("c")], "fp", regrade=["c"])
        assert (counts.new, counts.changed, counts.kept) == (0, 2, 1)
        assert [r.status for r in store.rows()] == ["done", "pending", "pending"]
        assert store.sync([_entry("a")], "other-settings").changed == 1


def _graded(store: Store, *names: str) -> None:
    for name in names:
        assert store.claim(name, "me:1")
        store.finish(
            name,
            result_json='{"score": 1}',
            seconds=1.0,
            grader_version="v",
            profile="quick",
            score=1.0,
            max_score=2.0,
            worker="w",
        )


def test_a_question_regrade_marks_graded_rows_partial_and_the_rest_full(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.sync([_entry(n) for n in ("a", "b", "c", "d")], "fp")
        _graded(store, "a", "b", "c")
        store.crash("c", error="boom", seconds=1.0, worker="w")
        entries = [_entry("a"), _entry("b", "changed"), _entry("c"), _entry("d")]
        # new settings (a fixed rubric): only q3 of the graded rows is redone
        counts = store.sync(entries, "fp2", regrade_questions=["q3"])
        rows = {r.name: r for r in store.rows()}
        assert rows["a"].status == "pending" and rows["a"].partial == ("q3",)
        assert rows["a"].fingerprint == "fp2"
        assert rows["b"].partial == ()  # its files changed: everything again
        assert rows["c"].partial == () and rows["c"].status == "pending"  # nothing to merge into
        assert rows["d"].status == "pending" and rows["d"].partial == ()
        assert counts.changed == 4  # d: still pending, under the new settings now
        _graded(store, "a")
        assert store.row("a").questions is None  # type: ignore[union-attr]
        # named students only; the others keep their result
        _graded(store, "b", "c", "d")
        store.sync(entries, "fp2", regrade=["d"], regrade_questions=["q1", "q2"])
        assert {r.name: r.partial for r in store.rows()} == {
            "a": (),
            "b": (),
            "c": (),
            "d": ("q1", "q2"),
        }
        assert [r.status for r in store.rows()] == ["done", "done", "done", "pending"]


@pytest.mark.parametrize(
    ("extra", "said"),
    [(["--regrade-question", "q7"], "the questions are q1, q2, q3, q4"),
     (["--only", "q1", "--regrade-question", "q3"], "this batch grades q1")],
)  # fmt: skip
def test_a_regrade_question_the_batch_cannot_grade_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], said: str
) -> None:
    from graders.cli import main

    out = tmp_path / "out"
    assert main(["batch", str(tmp_path), "--out", str(out), *extra]) == 4
    assert said in capsys.readouterr().err
    assert not out.exists()


def test_a_version_1_state_file_gets_the_new_columns_and_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE submissions (name TEXT PRIMARY KEY, source TEXT NOT NULL,"
            " content_hash TEXT NOT NULL, fingerprint TEXT NOT NULL, status TEXT NOT NULL,"
            " claimed_by TEXT, claimed_at REAL, attempts INTEGER NOT NULL DEFAULT 0,"
            " grader_version TEXT, profile TEXT, started_at REAL, finished_at REAL,"
            " seconds REAL, score REAL, max_score REAL, worker TEXT, error TEXT,"
            " result_json TEXT)"
        )
        db.execute(
            "INSERT INTO submissions (name, source, content_hash, fingerprint, status,"
            " result_json) VALUES ('old', '/x', 'h1', 'fp', 'done', '{}')"
        )
    db.close()
    with Store(path) as store:
        row = store.row("old")
        assert row is not None and row.status == "done" and row.questions is None
        assert row.manual_applied is None and store.manual_scores() == {}
        version = store._db.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == "3"


def test_a_claim_of_a_dead_process_is_taken_back(tmp_path: Path) -> None:
    import socket

    with Store(tmp_path / "s.sqlite") as store:
        store.sync([_entry("dead"), _entry("alive")], "fp")
        assert store.claim("dead", f"{socket.gethostname()}:{_dead_pid()}")
        assert store.claim("alive", f"{socket.gethostname()}:{os.getpid()}")
        store.sync([_entry("dead"), _entry("alive")], "fp")
        assert {r.name: r.status for r in store.rows()} == {"alive": "running", "dead": "pending"}


def test_the_fingerprint_follows_the_settings(tmp_path: Path) -> None:
    assert grading_fingerprint(QUICK_Q1) == grading_fingerprint(QUICK_Q1)
    assert grading_fingerprint(QUICK_Q1) != grading_fingerprint(GradeOptions(profile="quick"))
    rubric = tmp_path / "rubric.toml"
    rubric.write_text("x = 1\n")
    assert grading_fingerprint(QUICK_Q1) != grading_fingerprint(
        GradeOptions(profile="quick", only=("q1",), rubric_file=rubric)
    )


def test_kernels_and_threads_fit_the_cores() -> None:
    assert kernel_plan(workers=2, questions=4, cores=2) == (1, 1)
    assert kernel_plan(workers=1, questions=4, cores=2) == (2, 2)
    assert kernel_plan(workers=1, questions=1, cores=16) == (1, 16)


# --- discovery ------------------------------------------------------------------------------


def test_discovery_takes_folders_notebooks_and_zips(tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "q1.ipynb").write_text("{}")
    (tmp_path / "bob.ipynb").write_text("{}")
    (tmp_path / "carol.zip").write_bytes(b"PK")
    (tmp_path / "alice.zip").write_bytes(b"PK")  # same name as the folder
    (tmp_path / "notes.txt").write_text("not a submission")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / GRADESCOPE_METADATA).write_text("submission_1: {}\n")
    found = discover(tmp_path)
    assert [e.name for e in found.entries] == ["bob", "carol"]
    assert [(r.name, r.path.name) for r in found.refused] == [
        ("alice", "alice"),
        ("alice", "alice.zip"),
    ]
    assert found.gradescope


def test_a_name_taken_twice_is_graded_for_neither(tmp_path: Path) -> None:
    """``alice.zip`` (alice's) and ``alice.ipynb`` (someone else's): the first in sort order was
    graded as alice (red team, 2026-12-04). Neither is; both rows say why."""
    (tmp_path / "alice.zip").write_bytes(b"PK")
    (tmp_path / "alice.ipynb").write_text("{}")
    (tmp_path / "bob.ipynb").write_text("{}")
    found = discover(tmp_path)
    assert [e.name for e in found.entries] == ["bob"]
    assert [r.label for r in found.refused] == ["alice (alice.ipynb)", "alice (alice.zip)"]
    assert all("taken twice (alice.ipynb, alice.zip)" in r.reason for r in found.refused)
    crashed = collect([], found).crashed
    assert [c.name for c in crashed] == ["alice (alice.ipynb)", "alice (alice.zip)"]


@pytest.mark.parametrize(
    "name",
    [
        "gradebook.csv",
        "Summary.HTML",
        "manual_grading.html",
        "similarity.csv",
        "canvas_gradebook.csv",
        "state.sqlite",
        "state.sqlite-wal",
        "state.sqlite-shm",
        "state.sqlite.lock",
        "mystate.db",
        "mystate.db-wal",
    ],
)
def test_a_submission_named_like_a_batch_file_is_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "in"
    (folder / name).mkdir(parents=True)
    (folder / "alice").mkdir()
    out = tmp_path / "out"
    options = BatchOptions(folder=folder, out=out, state=out / "mystate.db")
    found = discover(folder, options.reserved)
    assert [e.name for e in found.entries] == ["alice"]
    [refused] = found.refused
    assert refused.name == name and "rename the submission" in refused.reason


def test_a_name_that_is_not_utf8_is_refused_not_stored(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkdir(os.fsencode(folder) + b"/b\xffd")
    [refused] = discover(folder).refused
    assert refused.label == "b\ufffdd (b\ufffdd)" and "not valid UTF-8" in refused.reason


def test_a_result_folder_never_replaces_a_file_of_its_name(tmp_path: Path) -> None:
    from graders.errors import InvalidSubmissionError
    from graders.pipeline import _swap_into_place

    state = tmp_path / "state.sqlite"
    state.write_bytes(b"SQLite format 3\x00")
    staging = tmp_path / ".state.sqlite.partial-1"
    staging.mkdir()
    with pytest.raises(InvalidSubmissionError, match="rename the submission"):
        _swap_into_place(staging, state)
    assert state.read_bytes() == b"SQLite format 3\x00"
    assert [p.name for p in tmp_path.iterdir() if ".old-" in p.name] == []


def test_the_hash_changes_with_any_file(tmp_path: Path) -> None:
    shutil.copytree(SCENARIOS / "all_correct", tmp_path / "s")
    before = content_hash(tmp_path / "s")
    assert content_hash(tmp_path / "s") == before
    (tmp_path / "s" / "extra.py").write_text("x = 1\n")
    assert content_hash(tmp_path / "s") != before


def test_progress_shows_count_and_eta() -> None:
    import io

    stream = io.StringIO()
    progress = Progress(total=10, todo=4, stream=stream)
    progress.update("alice", RowStatus.DONE)
    progress.update("bob", RowStatus.CRASHED)
    lines = stream.getvalue().splitlines()
    assert "8/10 graded, 1 crashed" in lines[-1] and "ETA" in lines[-1]
    assert "(bob: crashed)" in lines[-1]


HOSTILE_NAME = "bob\x1b]0;PWNED-TITLE\x07\x1b[2J\x1b[1;31mFAKE\n[######] 9/9 graded"
"""A submission folder's name that retitled, cleared and recoloured the TA's terminal and forged
a progress line (red team, 2026-12-04)."""


def test_progress_prints_a_name_on_its_line_without_its_escapes() -> None:
    import io

    texts = {}
    for tty in (False, True):
        stream = io.StringIO()
        stream.isatty = lambda tty=tty: tty  # type: ignore[method-assign]
        progress = Progress(total=2, todo=2, stream=stream)
        progress.update(HOSTILE_NAME, RowStatus.DONE)
        progress.note(f"note about {HOSTILE_NAME}")
        progress.close()
        texts[tty] = text = stream.getvalue()
        assert "\x07" not in text and "\x1b]" not in text and "\x1b[2J" not in text
        assert not any(line.startswith("[######] 9/9") for line in text.splitlines())
    logged = "(bob]0;PWNED-TITLE[2J[1;31mFAKE \u23ce [######] 9/9 graded: done)"
    assert logged in texts[False]


def test_the_batch_command_prints_names_on_their_line_without_their_escapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from graders.batch import command, runner
    from graders.batch.csv_input import InputProblem

    result = runner.BatchResult(
        total=2,
        graded=1,
        crashed=0,
        files={},
        problems=(InputProblem(path=tmp_path / "s.csv", line=3, message=HOSTILE_NAME),),
        unrostered=(HOSTILE_NAME, "carol"),
        unsubmitted=(HOSTILE_NAME,),
        refused=(f"{HOSTILE_NAME} (x): the name is taken twice",),
    )
    monkeypatch.setattr(runner, "run_batch", lambda options, stream=None: result)
    monkeypatch.setattr(command.sandbox, "choose", lambda *a, **k: None)
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    command.run(parser.parse_args([str(tmp_path), "--out", str(tmp_path / "out")]))
    printed = capsys.readouterr()
    for text in (printed.out, printed.err):
        assert "\x1b" not in text and "\x07" not in text
        assert not any(line.startswith("[######]") for line in text.splitlines())
    assert "left out of the Canvas gradebook): bob]0;PWNED-TITLE" in printed.out
    assert "FAKE \u23ce [######] 9/9 graded, carol" in printed.out
    assert "not graded: bob]0;PWNED-TITLE" in printed.err


def test_one_worker_death_releases_only_its_own_submission() -> None:
    """A worker that dies breaks its executor; with one shared executor every submission in
    flight was released and charged an attempt, and two deaths recorded classmates as crashed
    (red team, 2026-12-04). Each slot has its own executor: only ``dies`` is released."""
    from pool_support import die_or_finish

    from graders.batch.runner import LocalPool
    from graders.batch.tasks import GradeTask

    pool = LocalPool(2, 1, function=die_or_finish)
    outcomes: dict[str, object] = {}
    try:
        for round_ in range(2):  # the slot of the dead worker gets a fresh one
            handles = {
                pool.submit(
                    GradeTask(name=n, source=Path(n), out_dir=Path("out"), options=QUICK_Q1)
                ): n
                for n in ("dies", f"alice{round_}")
            }
            while handles:
                for handle in pool.wait(list(handles), 60):
                    name = handles.pop(handle)
                    outcomes[name] = pool.outcome(handle, name)
    finally:
        pool.close(cancel=True)
    assert outcomes["dies"] is None
    for name in ("alice0", "alice1"):
        assert getattr(outcomes[name], "ok", False), name


def test_a_row_crashed_by_its_worker_dying_is_graded_again_next_run(tmp_path: Path) -> None:
    from graders.batch.store import WORKER_DIED

    with Store(tmp_path / "state.sqlite") as store:
        store.sync([_entry("alice"), _entry("bob")], "f1")
        for _ in range(2):  # the worker grading alice died twice: crashed
            assert store.claim("alice", "me")
            status = store.release("alice", error=WORKER_DIED)
        assert status is RowStatus.CRASHED
        assert store.claim("bob", "me")
        store.crash("bob", error="ValueError: boom", seconds=1.0, worker="w")
        store.sync([_entry("alice"), _entry("bob")], "f1")
        status = {r.name: (r.status, r.attempts) for r in store.rows()}
    assert status == {"alice": (RowStatus.PENDING, 0), "bob": (RowStatus.CRASHED, 1)}


# --- real batches (kernels) ------------------------------------------------------------------

BATCH_NAMES = SCENARIO_NAMES[:20]
"""The issue's batch of 20 (the slow kill-and-resume and Dask tests grade it)."""
LOCAL_NAMES = ["all_correct", "blank", "q1_seed_box_boundary", "q1_step_ge", "q1_torch_layout"]
"""The fast local batch: full marks (also in torch's layouts), the blank template, two mistakes."""


@pytest.fixture(scope="module")
def local_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Five scenario folders, a lone notebook and a broken zip, graded with two workers."""
    base = tmp_path_factory.mktemp("batch")
    folder = _copy_batch(base / "in", LOCAL_NAMES)
    shutil.copyfile(SCENARIOS / "q1_step_ge" / "q1_step_network.ipynb", folder / "lone.ipynb")
    (folder / "broken.zip").write_bytes(b"this is not a zip archive")
    out = base / "out"
    run_batch(BatchOptions(folder=folder, out=out, grade=QUICK_Q1, workers=2))
    return folder, out


@pytest.mark.kernel
def test_every_submission_gets_its_row_and_its_expected_score(local_batch) -> None:
    _, out = local_batch
    rows = _gradebook(out)
    assert set(rows) == {*LOCAL_NAMES, "lone", "broken"}
    for name in LOCAL_NAMES:
        assert rows[name]["status"] != "crashed", rows[name]["notes"]
        _assert_expected_q1(name, rows[name])
        assert (out / name / "result.json").is_file()
    assert float(rows["lone"]["q1"]) == EXPECTED["q1_step_ge"]["q1"]
    assert rows["broken"]["status"] == "crashed" and "zip" in rows["broken"]["notes"]
    assert (out / "manual_grading.html").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    # two workers, one question: each submission's one kernel gets half the cores
    assert _kernel_threads(out) == {max(1, (os.cpu_count() or 1) // 2)}


@pytest.mark.kernel
def test_submissions_named_like_the_batchs_files_or_twice_break_nothing(tmp_path: Path) -> None:
    """``gradebook.csv/`` took the gradebook's place (no class gradebook, no pages) and
    ``state.sqlite/`` moved the state file away (no resume at all) (red team, 2026-12-04); of
    ``bob/`` and ``bob.ipynb`` the first was graded as bob. Each is a crashed row of its own
    now, and the batch, its pages and its resume are whole."""
    folder = tmp_path / "in"
    for name in ("alice", "bob", "gradebook.csv", "state.sqlite", "summary.html"):
        shutil.copytree(SCENARIOS / "all_correct", folder / name)
    shutil.copyfile(SCENARIOS / "blank" / "q1_step_network.ipynb", folder / "bob.ipynb")
    out = tmp_path / "out"
    options = BatchOptions(folder=folder, out=out, grade=QUICK_Q1, workers=1)
    first = run_batch(options)
    for _ in range(2):  # the rerun resumes from the state file, grading nothing
        rows = _gradebook(out)
        assert rows["alice"]["status"] != "crashed", rows["alice"]["notes"]
        for name in ("gradebook.csv", "state.sqlite", "summary.html"):
            row = rows[f"{name} ({name})"]
            assert row["status"] == "crashed" and "rename the submission" in row["notes"]
        for label in ("bob (bob)", "bob (bob.ipynb)"):
            assert rows[label]["status"] == "crashed" and "taken twice" in rows[label]["notes"]
        assert "bob" not in rows and not (out / "bob").exists()
        for name in ("gradebook.csv", "state.sqlite", "summary.html", "manual_grading.html"):
            assert (out / name).is_file(), name
        again = run_batch(options)
    assert (first.graded, again.graded) == (1, 0) and len(first.refused) == 5


@pytest.mark.kernel
def test_a_stored_result_decodes_to_the_same_report(local_batch) -> None:
    _, out = local_batch
    with Store(out / "state.sqlite") as store:
        row = store.row("all_correct")
    assert row is not None and row.result_json
    plain = json.loads(row.result_json)
    assert to_plain(report_from_plain(plain)) == plain
    on_disk = json.loads((out / "all_correct" / "result.json").read_text(encoding="utf-8"))
    assert on_disk["score"] == plain["score"]


@pytest.mark.slow
@pytest.mark.kernel
def test_a_rerun_skips_unchanged_work_and_regrades_who_is_asked(local_batch) -> None:
    folder, out = local_batch
    with Store(out / "state.sqlite") as store:
        before = {r.name: r.seconds for r in store.rows()}
        finished = dict(store._db.execute("SELECT name, finished_at FROM submissions").fetchall())
    again = run_batch(BatchOptions(folder=folder, out=out, grade=QUICK_Q1, workers=2))
    assert again.graded == 0 and again.total == len(before)
    result = run_batch(
        BatchOptions(folder=folder, out=out, grade=QUICK_Q1, workers=2, regrade=("blank",))
    )
    assert result.graded == 1
    with Store(out / "state.sqlite") as store:
        after = dict(store._db.execute("SELECT name, finished_at FROM submissions").fetchall())
    changed = {name for name in after if after[name] != finished[name]}
    assert changed == {"blank"}
    _assert_expected_q1("blank", _gradebook(out)["blank"])


def _batch_command(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "graders.cli", "batch", str(folder), "--out", str(out),
        "--profile", "quick", "--only", "q1", *extra,
    ]  # fmt: skip


def _done(state: Path) -> dict[str, float]:
    if not state.exists():
        return {}
    with sqlite3.connect(state, timeout=30) as db:
        rows = db.execute("SELECT name, finished_at FROM submissions WHERE status = 'done'")
        return dict(rows.fetchall())


KILL_NAMES = BATCH_NAMES
"""The issue's batch of 20: killed halfway, resumed, then graded again on a LocalCluster."""


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A batch killed with SIGKILL halfway (ten results), then resumed to the end."""
    base = tmp_path_factory.mktemp("kill")
    folder = _copy_batch(base / "in", KILL_NAMES)
    out = base / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        _batch_command(folder, out, "--workers", "1"),
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 400
    while len(_done(out / "state.sqlite")) < len(KILL_NAMES) // 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "the batch never got halfway"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the batch and its workers, as a crash would
    proc.wait()
    before = _done(out / "state.sqlite")
    run_batch(BatchOptions(folder=folder, out=out, grade=QUICK_Q1, workers=2))
    return folder, out, before


@pytest.mark.kernel
@pytest.mark.slow
def test_a_killed_batch_resumes_without_regrading_finished_work(killed_and_resumed) -> None:
    _, out, before = killed_and_resumed
    assert len(KILL_NAMES) // 2 <= len(before) < len(KILL_NAMES)
    after = _done(out / "state.sqlite")
    assert set(after) == set(KILL_NAMES)
    assert {n: after[n] for n in before} == before  # finished ones were not graded again
    rows = _gradebook(out)
    for name in KILL_NAMES:
        _assert_expected_q1(name, rows[name])
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging litter
    with sqlite3.connect(out / "state.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.kernel
@pytest.mark.slow
def test_the_same_batch_on_a_dask_local_cluster_gives_the_same_scores(
    killed_and_resumed, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    folder, local_out, _ = killed_and_resumed
    out = tmp_path / "dask-out"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = run_batch(
            BatchOptions(
                folder=folder, out=out, grade=QUICK_Q1, scheduler=cluster.scheduler_address
            )
        )
    assert result.graded == len(KILL_NAMES)
    assert _kernel_threads(out) == {max(1, (os.cpu_count() or 1) // 2)}  # 2 Dask threads here
    local, remote = _gradebook(local_out), _gradebook(out)
    assert set(local) == set(remote)
    skip = {"notes"}
    for name in local:
        assert {k: v for k, v in local[name].items() if k not in skip} == {
            k: v for k, v in remote[name].items() if k not in skip
        }


def _question(report: dict, qid: str, part: str = "questions") -> dict:  # type: ignore[type-arg]
    found = report["run"]["questions"] if part == "run" else report["questions"]
    return next(q for q in found if q["question"] == qid)


@pytest.mark.kernel
@pytest.mark.slow
def test_regrading_one_question_keeps_the_others_results(tmp_path: Path) -> None:
    """q2's rubric fixed: q2 is regraded for everyone with the new points while q1 keeps its
    stored result (not run again); then q1 for one student only, the other keeps everything."""
    names = ["all_correct", "q1_step_ge"]
    folder = _copy_batch(tmp_path / "in", names)
    out = tmp_path / "out"
    grade = replace(QUICK_Q1, only=("q1", "q2"))
    run_batch(BatchOptions(folder=folder, out=out, grade=grade, workers=1))

    def read(name: str) -> dict:  # type: ignore[type-arg]
        return json.loads((out / name / "result.json").read_text(encoding="utf-8"))

    before = {name: read(name) for name in names}
    rubric = tmp_path / "rubric.toml"
    original = (REPO / "graders" / "config" / "rubric.toml").read_text(encoding="utf-8")
    fixed = original.replace(
        "activation_variance = { points = 1.0 }", "activation_variance = { points = 3.0 }"
    )
    assert fixed != original
    rubric.write_text(fixed, encoding="utf-8")
    grade = replace(grade, rubric_file=rubric)
    first = run_batch(
        BatchOptions(folder=folder, out=out, grade=grade, workers=1, regrade_questions=("q2",))
    )
    assert first.graded == 2
    middle = {name: read(name) for name in names}
    for name in names:
        new, old = middle[name], before[name]
        assert _question(new, "q2")["max_score"] == _question(old, "q2")["max_score"] + 2
        assert _question(new, "q1") == _question(old, "q1")
        assert _question(new, "q1", "run") == _question(old, "q1", "run")  # not run again
        assert _question(new, "q2", "run")["execution"] != _question(old, "q2", "run")["execution"]
        assert new["score"] == pytest.approx(
            _question(new, "q1")["score"] + _question(new, "q2")["score"]
        )
        assert new["max_score"] == old["max_score"] + 2
        for artifact in _question(new, "q1", "run")["probe"]["artifacts"]:
            assert (out / name / artifact["path"]).is_file()
        assert float(_gradebook(out)[name]["total"]) == pytest.approx(new["score"])
    assert "q2" in (out / "all_correct" / "feedback.md").read_text(encoding="utf-8").lower()

    second = run_batch(
        BatchOptions(
            folder=folder,
            out=out,
            grade=grade,
            workers=1,
            regrade=("all_correct",),
            regrade_questions=("q1",),
        )
    )
    assert second.graded == 1
    assert read("q1_step_ge") == middle["q1_step_ge"]
    after = read("all_correct")
    assert _question(after, "q2", "run") == _question(middle["all_correct"], "q2", "run")
    assert _question(after, "q1", "run") != _question(middle["all_correct"], "q1", "run")
    with Store(out / "state.sqlite") as store:
        stored = store.row("all_correct")
        assert all(r.questions is None and r.status == "done" for r in store.rows())
    assert stored is not None
    assert json.loads(stored.result_json or "{}")["score"] == after["score"]
    assert run_batch(BatchOptions(folder=folder, out=out, grade=grade, workers=1)).graded == 0


@pytest.mark.kernel
@pytest.mark.slow
def test_a_question_regrade_over_another_profiles_result_grades_in_full(tmp_path: Path) -> None:
    """One report never mixes profiles: merging q2 (quick) into a result graded with cpu
    would, so the whole submission is graded again instead."""
    from graders.batch.tasks import GradeTask, run_task

    options = replace(QUICK_Q1, only=("q1", "q2"))
    task = GradeTask(name="all_correct", source=SCENARIOS / "all_correct", out_dir=tmp_path,
                     options=options)  # fmt: skip
    first = run_task(task)
    assert first.ok, first.detail
    stored = json.loads(first.result_json)
    stored["run"]["profile"]["name"] = "cpu"
    again = run_task(replace(task, questions=("q2",), base_json=json.dumps(stored)))
    assert again.ok, again.detail
    report = json.loads(again.result_json)
    assert report["run"]["profile"]["name"] == "quick"
    assert [q["question"] for q in report["questions"]] == ["q1", "q2"]
    assert (
        _question(report, "q1", "run")["execution"] != _question(stored, "q1", "run")["execution"]
    )


@pytest.mark.kernel
@pytest.mark.slow
def test_two_batches_on_one_state_file_split_the_work(tmp_path: Path) -> None:
    names = ["all_correct", "blank", "q1_step_ge", "q1_approx_fixed"]
    folder = _copy_batch(tmp_path / "in", names)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            _batch_command(folder, out, "--workers", "1"),
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(e[-4000:] for _, e in outputs)
    graded = [int(o.split(" graded now")[0].rsplit(" ", 1)[-1]) for o, _ in outputs]
    assert sum(graded) == len(names)  # nobody graded twice, nobody left out
    with sqlite3.connect(out / "state.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        statuses = db.execute("SELECT status FROM submissions").fetchall()
    assert [s for (s,) in statuses] == ["done"] * len(names)
    rows = _gradebook(out)
    for name in names:
        _assert_expected_q1(name, rows[name])


# --- similarity and summary ------------------------------------------------------------------

ORIGINAL = """
def box_network(h, delta):
    # weights of the hidden layer, one neuron per edge
    w_hidden = np.array([1.0, -1.0])
    b_hidden = np.array([0.0, delta])
    w_out = np.array([h, h])
    b_out = -h
    return w_hidden, b_hidden, w_out, b_out

def approximate(f, n, bound):
    edges = np.linspace(-bound, bound, n + 1)
    heights = [f((a + b) / 2) for a, b in zip(edges[:-1], edges[1:])]
    return edges, heights
"""

DISGUISED = '''
def box_network(height, width):
    """My own work."""
    first = np.array([1.0,-1.0])   # renamed everything
    second = np.array([0.0, width])
    third = np.array([height, height])


    fourth = -height
    return first, second, third, fourth

def approximate(func, count, limit):
    cuts = np.linspace(-limit, limit, count + 1)
    tops = [func((lo + hi) / 2) for lo, hi in zip(cuts[:-1], cuts[1:])]
    return cuts, tops
'''

INDEPENDENT = """
def box_network(h, delta):
    return (np.ones(2) * np.array([1, -1]), np.array([0, delta]), h * np.ones(2), -h)

def approximate(f, n, bound):
    step = 2 * bound / n
    points = [-bound + k * step for k in range(n + 1)]
    values = []
    for k in range(n):
        values.append(f(points[k] + step / 2))
    return points, values
"""


def _answer(name: str, code: str):
    from graders.batch.similarity import Answer

    return Answer.of(name, "q1", code)


def test_renamed_and_recommented_copies_are_flagged_and_independent_work_is_not() -> None:
    from graders.batch.similarity import normalize, similar_pairs

    assert normalize(ORIGINAL) == normalize(DISGUISED.replace('    """My own work."""\n', ""))
    pairs = similar_pairs(
        [_answer("ann", ORIGINAL), _answer("ben", DISGUISED), _answer("cat", INDEPENDENT)], 0.8
    )
    assert [(p.first, p.second) for p in pairs] == [("ann", "ben")]
    assert "return edges, heights" in [line.strip() for line in pairs[0].shared_lines]


def test_template_cells_are_not_answers(tmp_path: Path) -> None:
    import nbformat

    from graders.batch.similarity import find_similar

    template = nbformat.read(str(REPO / "student_template" / "q1_step_network.ipynb"), 4)
    for name in ("ann", "ben"):
        (tmp_path / name).mkdir()
        nbformat.write(template, str(tmp_path / name / "q1_step_network.ipynb"))
    sources = [(n, tmp_path / n) for n in ("ann", "ben")]
    assert find_similar(sources, 0.5) == []  # identical, but only starter code
    for name, code in (("ann", ORIGINAL), ("ben", DISGUISED)):
        nb = nbformat.read(str(tmp_path / name / "q1_step_network.ipynb"), 4)
        nb.cells.append(nbformat.v4.new_code_cell(code))
        nbformat.write(nb, str(tmp_path / name / "q1_step_network.ipynb"))
    assert [(p.first, p.second) for p in find_similar(sources, 0.8)] == [("ann", "ben")]


@pytest.mark.kernel
def test_the_summary_has_plots_causes_and_the_slowest(local_batch) -> None:
    _, out = local_batch
    html = (out / "summary.html").read_text(encoding="utf-8")
    assert html.count("data:image/svg+xml;base64,") == 2
    assert "q1.box_edges" in html and "q1_seed_box_boundary" in html  # a failure, by cause
    assert "Slowest submissions" in html and "not a readable zip" in html
    assert "<script" not in html


def test_an_answers_shingles_are_the_same_in_every_process() -> None:
    """A batch's workers read the answers and the driver compares them: the digests must not
    depend on the process (Python's ``hash`` of a string is salted per process)."""
    from graders.batch.similarity import Answer

    script = (
        "import sys; from graders.batch.similarity import Answer; "
        "print(sorted(Answer.of('ann', 'q1', sys.stdin.read()).shingles))"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", script],
            input=ORIGINAL,
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert seen == {f"{sorted(Answer.of('ann', 'q1', ORIGINAL).shingles)}\n"}


def test_answers_the_workers_read_are_compared_without_reading_the_submission_again(
    tmp_path: Path,
) -> None:
    from graders.batch.similarity import find_similar

    known = {"ann": [_answer("ann", ORIGINAL)], "ben": [_answer("ben", DISGUISED)]}
    gone = tmp_path / "deleted"  # neither path exists: only the answers given are compared
    pairs = find_similar([("ann", gone), ("ben", gone)], 0.8, known)
    assert [(p.first, p.second) for p in pairs] == [("ann", "ben")]
    assert find_similar([("ann", gone), ("ben", gone)], 0.8) == []


@pytest.mark.kernel
def test_the_summary_lists_the_pairs_of_answers_read_by_the_workers(local_batch) -> None:
    """Two workers read the answers (each in its own process); the summary's pairs are the
    ones found here, reading every graded submission in this one."""
    import re

    from graders.batch.similarity import find_similar

    folder, out = local_batch
    html = (out / "summary.html").read_text(encoding="utf-8")
    shown = set(re.findall(r"<h3>(q\d): (\S+) and (\S+) \(", html))
    graded = [(n, folder / n) for n in LOCAL_NAMES] + [("lone", folder / "lone.ipynb")]
    expected = {(p.question, p.first, p.second) for p in find_similar(graded, 0.8)}
    assert ("q1", "lone", "q1_step_ge") in expected  # the same notebook, twice
    assert shown == expected


@pytest.mark.kernel
def test_the_manual_page_shows_what_a_fresh_process_renders_from_the_stored_results(
    local_batch,
) -> None:
    """The workers render their students' answers for the manual-grading page: the page is
    the one a process that rendered every answer itself writes from the state file."""
    _, out = local_batch
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from graders.batch.decode import report_from_plain\n"
        "from graders.batch.store import RowStatus, Store\n"
        "from graders.render.manual import render_manual_html\n"
        "with Store(Path(sys.argv[1])) as store:\n"
        "    rows = store.rows(sys.argv[2:])\n"
        "done = [r for r in rows if r.status is RowStatus.DONE and r.result_json]\n"
        "reports = [report_from_plain(json.loads(r.result_json)) for r in done]\n"
        "sys.stdout.write(render_manual_html(reports))\n"
    )
    names = [*LOCAL_NAMES, "lone", "broken"]
    fresh = subprocess.run(
        [sys.executable, "-c", script, str(out / "state.sqlite"), *names],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    page = (out / "manual_grading.html").read_text(encoding="utf-8")
    assert 'class="answer md"' in page  # the scenarios answer the free-response parts
    assert page == fresh


def _pair(question: str, first: str, second: str, similarity: float):
    from graders.batch.similarity import SimilarPair

    return SimilarPair(
        question=question,
        first=first,
        second=second,
        similarity=similarity,
        first_code="x = 1",
        second_code="y = 1",
        shared_lines=("v0 = 1",),
    )


def test_a_class_that_shares_its_solution_gets_a_readable_page_and_every_pair_in_a_csv(
    tmp_path: Path,
) -> None:
    """Sixty students with one Q3 answer are 1,770 pairs: the page shows the most similar
    ``PAIRS_SHOWN`` of each question and says how many there are; the CSV lists them all."""
    import csv as csv_module
    import itertools
    import re

    from graders.batch.similarity import PAIRS_SHOWN, pairs_csv
    from graders.batch.summary import summary_view, write_summary_html

    names = [f"s{i:02d}" for i in range(60)]
    pairs = [
        _pair("q3", a, b, 1.0 - (i % 7) / 100)
        for i, (a, b) in enumerate(itertools.combinations(names, 2))
    ]
    pairs.append(_pair("q1", "=HYPERLINK(1)", "s01", 0.9))
    pairs.sort(key=lambda p: (-p.similarity, p.question, p.first, p.second))
    view = summary_view([], [], [], pairs, 0.8)
    write_summary_html(view, tmp_path / "summary.html")
    html = (tmp_path / "summary.html").read_text(encoding="utf-8")
    shown = re.findall(r"<h3>(q\d): (\S+) and (\S+) \((\S+) %\)</h3>", html)
    assert [q for q, *_ in shown].count("q3") == PAIRS_SHOWN
    assert [q for q, *_ in shown].count("q1") == 1
    assert all(float(s) == 100.0 for q, _, _, s in shown if q == "q3")  # the most similar
    assert re.search(r"<td>q3</td><td class=\"num\">1770</td><td class=\"num\">25</td>", html)
    rows = list(csv_module.DictReader(pairs_csv(pairs).splitlines()))
    assert len(rows) == len(pairs) == 1771
    assert {"question": "q1", "first": "'=HYPERLINK(1)", "second": "s01"}.items() <= next(
        r for r in rows if r["question"] == "q1"
    ).items()


@pytest.mark.kernel
def test_the_batch_writes_every_similar_pair_beside_its_summary(local_batch) -> None:
    import csv as csv_module
    import re

    _, out = local_batch
    html = (out / "summary.html").read_text(encoding="utf-8")
    shown = set(re.findall(r"<h3>(q\d): (\S+) and (\S+) \(", html))
    with (out / "similarity.csv").open(encoding="utf-8") as fh:
        listed = {(r["question"], r["first"], r["second"]) for r in csv_module.DictReader(fh)}
    assert shown and listed == shown  # a small class: every pair is on the page too


def test_a_huge_answer_is_cut_before_it_is_compared() -> None:
    """A 45 MiB cell cost a worker minutes and gigabytes in the similarity scan (red team,
    2026-12-04): what is tokenized is bounded, whatever the notebook holds."""
    from graders.batch.similarity import MAX_ANSWER_CHARS, answer_code

    huge = "\n".join(f"a{i} b{i} c{i} d{i}" for i in range(200_000))
    code = answer_code(["x = 1", huge], template=set())
    assert len(code) <= MAX_ANSWER_CHARS and code.startswith("x = 1\n\na0 b0")
    assert code.endswith(tuple(str(i) for i in range(10)))  # cut at a line's end
