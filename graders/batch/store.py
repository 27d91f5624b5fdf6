"""The batch's state: one SQLite file holding every submission's hash, status, timings and result.

Why SQLite: one file a TA can copy, readable with any tool, and safe under two writers. WAL mode
lets a reader (a second batch, a TA's ``sqlite3`` shell) read while a batch writes; the busy
timeout makes a second writer wait instead of failing. Every state change is its own short
transaction, committed before the next submission starts, so ``kill -9`` loses at most the
submissions being graded at that instant; those are found again on the next run because the
process that claimed them is gone.

A row moves ``pending -> running -> done | crashed``. A pending row with ``questions`` set (comma-
separated ids) is a partial regrade: only those questions are graded again and merged into its
stored result (``--regrade-question``). A claim is one ``UPDATE ... WHERE
status = 'pending'``: of two batches racing for a row, exactly one sees a changed row count.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from graders.batch.manual_scores import ScoredPart
from graders.models import ManualScore

SCHEMA_VERSION = 3
"""2: ``questions`` (a partial regrade); 3: the ``manual_scores`` table and ``manual_applied``.
An older file gets the columns and the table when opened."""
BUSY_TIMEOUT_MS = 60_000
MAX_ATTEMPTS = 2
"""A submission whose grading process died this many times is recorded as crashed."""
WORKER_DIED = "the grading process died"
"""The error of a row crashed that way. Such a row is graded again by the next run (``sync``):
the death may be the machine's (the OOM killer choosing the grader under memory pressure), not
the submission's, and a crashed row is otherwise kept until its files or settings change."""


class RowStatus(StrEnum):
    """Where a submission stands in the batch; the table's CHECK constraint lists the same."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    CRASHED = "crashed"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
    name TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'crashed')),
    claimed_by TEXT,
    claimed_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    grader_version TEXT,
    profile TEXT,
    started_at REAL,
    finished_at REAL,
    seconds REAL,
    score REAL,
    max_score REAL,
    worker TEXT,
    error TEXT,
    result_json TEXT,
    questions TEXT,
    manual_applied TEXT
);
CREATE TABLE IF NOT EXISTS manual_scores (
    name TEXT NOT NULL,
    question TEXT NOT NULL,
    item TEXT NOT NULL,
    points REAL NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    merged_at REAL NOT NULL,
    PRIMARY KEY (name, question, item)
);
"""


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One submission the batch should have graded: where it is and what its files hash to."""

    name: str
    source: Path
    content_hash: str


@dataclass(frozen=True, kw_only=True)
class Row:
    """A submission's state as stored."""

    name: str
    source: str
    content_hash: str
    fingerprint: str
    status: RowStatus
    claimed_by: str | None
    attempts: int
    grader_version: str | None
    profile: str | None
    seconds: float | None
    score: float | None
    max_score: float | None
    worker: str | None
    error: str | None
    result_json: str | None
    questions: str | None = None
    """Comma-separated question ids of a pending partial regrade; None: grade everything."""
    manual_applied: str | None = None
    """Digest of the TAs' scores the result folder shows; None: none, or it was regraded."""

    def result(self) -> dict[str, Any] | None:
        return json.loads(self.result_json) if self.result_json else None

    @property
    def partial(self) -> tuple[str, ...]:
        """The questions to regrade into the stored result; () for a full grade."""
        if not self.questions or not self.result_json:
            return ()
        return tuple(q for q in self.questions.split(",") if q)


@dataclass(frozen=True, kw_only=True)
class SyncCounts:
    """What a sync found: new rows, rows set back to pending, rows whose result stands."""

    new: int
    changed: int
    kept: int


def owner_token() -> str:
    """Who claims a row: host and pid, so a later run can tell a dead claimer from a live one."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _claimer_alive(token: str | None) -> bool:
    """A claim by a process on this host that no longer exists is stale (kill -9, a reboot)."""
    if not token:
        return False
    host, _, pid = token.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's claim: assume alive; --regrade takes it over
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _opening_lock(path: Path) -> Iterator[None]:
    """Serialise opening the state file between processes.

    Switching a new file to WAL takes an exclusive lock that SQLite does not wait for: two
    batches started together failed with "database is locked" despite the busy timeout
    (22 of 300 paired starts here). An advisory lock on a sidecar file makes the second wait.
    """
    with open(path.with_name(path.name + ".lock"), "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Store:
    """The state file; one connection per process (SQLite connections are not shared)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        with _opening_lock(path):
            self._db = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._create_schema()

    def _create_schema(self) -> None:
        with self._write():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            columns = {r["name"] for r in self._db.execute("PRAGMA table_info(submissions)")}
            if "questions" not in columns:  # a version-1 state file
                self._db.execute("ALTER TABLE submissions ADD COLUMN questions TEXT")
            if "manual_applied" not in columns:  # version 2
                self._db.execute("ALTER TABLE submissions ADD COLUMN manual_applied TEXT")
            self._db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def close(self) -> None:
        with _opening_lock(self.path):  # the last close checkpoints and removes the WAL file
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``: take the write lock up front, so a read-then-write is atomic."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def sync(
        self,
        entries: Iterable[Entry],
        fingerprint: str,
        regrade: Iterable[str] = (),
        regrade_questions: Sequence[str] = (),
    ) -> SyncCounts:
        """Make a row for every entry; set back to pending what changed or is asked again.

        A row is graded again when its files changed, when the grading settings changed
        (``fingerprint``: grader version, profile, options, config files), when it is named
        in ``regrade``, when it was claimed by a process that is gone, or when its grading
        process died (``WORKER_DIED``: each run tries such a row again, ``MAX_ATTEMPTS`` times).

        With ``regrade_questions``, a graded row whose files did not change (of those named in
        ``regrade``, or of all when none are named) is set to regrade only those questions,
        even when the settings changed: the TA says the other questions' results stand.
        """
        again = set(regrade)
        partial = ",".join(regrade_questions)
        new = changed = kept = 0
        with self._write() as db:
            for entry in entries:
                row = db.execute(
                    "SELECT content_hash, fingerprint, status, claimed_by, result_json, error"
                    " FROM submissions WHERE name = ?",
                    (entry.name,),
                ).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO submissions (name, source, content_hash, fingerprint, status)"
                        " VALUES (?, ?, ?, ?, 'pending')",
                        (entry.name, str(entry.source), entry.content_hash, fingerprint),
                    )
                    new += 1
                    continue
                running = row["status"] == RowStatus.RUNNING
                stale = running and not _claimer_alive(row["claimed_by"])
                if running and not stale and entry.name not in again:
                    kept += 1
                    continue
                same_files = row["content_hash"] == entry.content_hash
                mergeable = (
                    same_files and row["status"] == RowStatus.DONE and bool(row["result_json"])
                )
                if partial and (entry.name in again or not again) and mergeable:
                    self._set_pending(entry, fingerprint, partial)
                    changed += 1
                elif (
                    not same_files
                    or row["fingerprint"] != fingerprint
                    or stale
                    or (entry.name in again)
                    or (row["status"] == RowStatus.CRASHED and row["error"] == WORKER_DIED)
                ):
                    self._set_pending(entry, fingerprint, None)
                    changed += 1
                else:
                    kept += 1
        return SyncCounts(new=new, changed=changed, kept=kept)

    def _set_pending(self, entry: Entry, fingerprint: str, questions: str | None) -> None:
        self._db.execute(
            "UPDATE submissions SET status = 'pending', source = ?, content_hash = ?,"
            " fingerprint = ?, claimed_by = NULL, attempts = 0, questions = ? WHERE name = ?",
            (str(entry.source), entry.content_hash, fingerprint, questions, entry.name),
        )

    def claim(self, name: str, owner: str) -> bool:
        """Take a pending row for grading; False when another batch took it first."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE submissions SET status = 'running', claimed_by = ?, claimed_at = ?,"
                " started_at = ?, attempts = attempts + 1 WHERE name = ? AND status = 'pending'",
                (owner, time.time(), time.time(), name),
            )
            return cursor.rowcount == 1

    def finish(
        self,
        name: str,
        *,
        result_json: str,
        seconds: float,
        grader_version: str,
        profile: str,
        score: float,
        max_score: float,
        worker: str,
    ) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE submissions SET status = 'done', claimed_by = NULL, finished_at = ?,"
                " seconds = ?, grader_version = ?, profile = ?, score = ?, max_score = ?,"
                " worker = ?, error = NULL, result_json = ?, questions = NULL,"
                " manual_applied = NULL WHERE name = ?",
                (
                    time.time(),
                    seconds,
                    grader_version,
                    profile,
                    score,
                    max_score,
                    worker,
                    result_json,
                    name,
                ),
            )

    def crash(self, name: str, *, error: str, seconds: float, worker: str) -> None:
        """Record that grading raised; the result of an earlier good run is dropped too."""
        with self._write() as db:
            db.execute(
                "UPDATE submissions SET status = 'crashed', claimed_by = NULL, finished_at = ?,"
                " seconds = ?, worker = ?, error = ?, result_json = NULL, score = NULL,"
                " max_score = NULL, questions = NULL WHERE name = ?",
                (time.time(), seconds, worker, error, name),
            )

    def release(self, name: str, *, error: str = "") -> RowStatus:
        """Give back a claim whose process died: pending again, or crashed after enough tries."""
        with self._write() as db:
            row = db.execute("SELECT attempts FROM submissions WHERE name = ?", (name,)).fetchone()
            if row is not None and row["attempts"] >= MAX_ATTEMPTS and error:
                db.execute(
                    "UPDATE submissions SET status = 'crashed', claimed_by = NULL, error = ?,"
                    " result_json = NULL, score = NULL, max_score = NULL, questions = NULL"
                    " WHERE name = ?",
                    (error, name),
                )
                return RowStatus.CRASHED
            db.execute(
                "UPDATE submissions SET status = 'pending', claimed_by = NULL WHERE name = ?",
                (name,),
            )
            return RowStatus.PENDING

    def save_manual_scores(self, scored: Iterable[ScoredPart]) -> int:
        """Add or replace TAs' scores (one per submission and part); returns how many."""
        count = 0
        with self._write() as db:
            for part in scored:
                s = part.score
                values = (part.submission, s.question, s.item, s.points, s.comment)
                db.execute(
                    "INSERT OR REPLACE INTO manual_scores"
                    " (name, question, item, points, comment, source, merged_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*values, part.source, time.time()),
                )
                count += 1
        return count

    def manual_scores(self) -> dict[str, tuple[ManualScore, ...]]:
        """Every stored score, by submission name, in part order."""
        found: dict[str, list[ManualScore]] = {}
        for r in self._db.execute(
            "SELECT name, question, item, points, comment FROM manual_scores"
            " ORDER BY name, question, item"
        ):
            score = ManualScore(
                question=r["question"], item=r["item"], points=r["points"], comment=r["comment"]
            )
            found.setdefault(r["name"], []).append(score)
        return {name: tuple(scores) for name, scores in found.items()}

    def set_manual_applied(self, name: str, digest: str) -> None:
        """Record which scores the result folder of ``name`` now shows (``finish`` clears it:
        the pipeline writes a folder without them)."""
        with self._write() as db:
            db.execute("UPDATE submissions SET manual_applied = ? WHERE name = ?", (digest, name))

    def rows(self, names: Sequence[str] | None = None) -> list[Row]:
        """Rows sorted by name (all of them, or those named)."""
        records = self._db.execute("SELECT * FROM submissions ORDER BY name").fetchall()
        wanted = set(names) if names is not None else None
        return [_row(r) for r in records if wanted is None or r["name"] in wanted]

    def row(self, name: str) -> Row | None:
        """One row: read alone, since the driver asks for each row it claims."""
        record = self._db.execute("SELECT * FROM submissions WHERE name = ?", (name,)).fetchone()
        return None if record is None else _row(record)

    def running(self) -> dict[str, str | None]:
        """Rows being graded now and who claimed them (no results read: polled every second)."""
        found = self._db.execute(
            "SELECT name, claimed_by FROM submissions WHERE status = 'running'"
        )
        return {name: owner for name, owner in found.fetchall()}

    def running_elsewhere(self, names: Sequence[str], owner: str) -> list[str]:
        """Rows of ours another live batch is still grading (we wait for them before reports)."""
        ours = set(names)
        return sorted(
            name
            for name, claimer in self.running().items()
            if name in ours and claimer != owner and _claimer_alive(claimer)
        )


def _row(record: sqlite3.Row) -> Row:
    values = {k: record[k] for k in Row.__dataclass_fields__}
    return Row(**{**values, "status": RowStatus(values["status"])})
