"""Read a submission (a folder, one notebook, or a zip) and assign notebooks to questions.

A bad file is a ``LoadProblem`` for that file, never a crash: the rest of the submission is
still graded. Notebooks are matched to questions by file name first; when the name says
nothing (or contradicts the code inside), by the definitions the code cells contain, and the
student is told which notebook was taken for which question and why.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat
from nbformat import NotebookNode
from nbformat.validator import ValidationError

from graders.errors import InvalidSubmissionError, UnsafeSubmissionError
from graders.models import LoadProblem, MatchedBy, MissingNotebook, NotebookRef, Submission
from graders.plain_data import (
    ZIP_TAIL_BYTES,
    PlainDataError,
    ZipDirectoryTooLarge,
    check_zip_directory,
)
from graders.questions.api import QuestionSpec

MAX_ZIP_FILES = 500
MAX_ZIP_BYTES = 200 << 20
MAX_NOTEBOOK_BYTES = 50 << 20
MAX_CELLS = 2000
MAX_FOUND_NAMED = 10
"""A missing question's line names at most this many of the notebooks found, then counts."""
_IGNORED_PARTS = {"__MACOSX", ".ipynb_checkpoints", ".git"}
_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate: JSON's ``"\\ud800"`` reads as one, but it is no character, and every
UTF-8 writer (the executed notebook, the feedback pages) fails on it."""


@dataclass(frozen=True, kw_only=True)
class _Candidate:
    path: Path
    display: str
    nb: NotebookNode
    scores: dict[str, int]


def _safe_member(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path


def _check_directory(archive: Path) -> None:
    """The archive's central directory, bounded before ``zipfile`` reads it: a 53 MB upload
    whose directory listed a million entries cost 378 MiB and 13 s before the count below
    could refuse it (``plain_data.check_zip_directory``, which ZIP64 records cannot fool)."""
    try:
        total = archive.stat().st_size
        with archive.open("rb") as fh:
            fh.seek(max(0, total - ZIP_TAIL_BYTES))
            tail = fh.read()
    except OSError as exc:
        raise InvalidSubmissionError(f"not a readable zip archive: {exc}", path=archive) from None
    try:
        check_zip_directory(tail, total, name="the archive", max_entries=MAX_ZIP_FILES)
    except ZipDirectoryTooLarge as exc:
        raise UnsafeSubmissionError(str(exc), path=archive) from None
    except PlainDataError as exc:
        raise InvalidSubmissionError(f"not a readable zip archive: {exc}", path=archive) from None


def unpack_zip(archive: Path, dest: Path) -> list[LoadProblem]:
    """Extract safely: no absolute or ``..`` paths, no links, bounded count and size."""
    problems: list[LoadProblem] = []
    _check_directory(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidSubmissionError(f"not a readable zip archive: {exc}", path=archive) from None
    with zf:
        members = zf.infolist()
        if len(members) > MAX_ZIP_FILES:
            raise UnsafeSubmissionError(
                f"the archive holds {len(members)} entries (limit {MAX_ZIP_FILES})", path=archive
            )
        if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
            raise UnsafeSubmissionError(
                f"the archive unpacks to more than {MAX_ZIP_BYTES >> 20} MiB", path=archive
            )
        for member in members:
            safe = _safe_member(member.filename)
            is_link = stat.S_ISLNK(member.external_attr >> 16)
            if safe is None or is_link:
                problems.append(
                    LoadProblem(message="skipped an unsafe archive entry", path=member.filename)
                )
                continue
            if member.is_dir():
                continue
            target = dest.joinpath(*safe.parts)
            try:
                _extract(zf, member, target)
            except _UNPACK_ERRORS as exc:
                # Encrypted (7-Zip, `zip -e`), an unknown method, a bad CRC, a name that is
                # both a file and a folder: this entry's problem, not the submission's.
                with contextlib.suppress(OSError):
                    if target.is_file():
                        target.unlink()
                problems.append(
                    LoadProblem(
                        message=f"could not unpack this archive entry: {exc}",
                        path=member.filename,
                    )
                )
    return problems


_UNPACK_ERRORS = (
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)


def _extract(zf: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with zf.open(member) as src, target.open("wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > MAX_ZIP_BYTES:
                raise UnsafeSubmissionError(
                    "an archive entry unpacks past the size limit", path=member.filename
                )
            out.write(chunk)


def _notebook_files(root: Path) -> list[Path]:
    found = [
        p
        for p in root.rglob("*.ipynb")
        if p.is_file()
        and not p.is_symlink()
        and not (_IGNORED_PARTS & set(p.relative_to(root).parts))
    ]
    return sorted(found)


def read_notebook(path: Path, display: str) -> tuple[NotebookNode | None, LoadProblem | None]:
    """Parse and validate one notebook; nbformat 3 is upgraded to 4."""
    size = path.stat().st_size
    if size == 0:
        return None, LoadProblem(message="the file is empty", path=display)
    if size > MAX_NOTEBOOK_BYTES:
        return None, LoadProblem(
            message=f"the file is {size >> 20} MiB (limit {MAX_NOTEBOOK_BYTES >> 20} MiB)",
            path=display,
        )
    # nbformat's reader and upgrader raise nearly anything on odd JSON (AttributeError for a
    # top-level list, jsonschema's ValidationError, AssertionError for a bad nbformat_minor):
    # the file is untrusted, so every failure to parse it is this file's problem, never a crash.
    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, LoadProblem(message=f"not a notebook (invalid JSON: {exc})", path=display)
    except ValidationError as exc:
        first = str(exc).splitlines()[0]
        return None, LoadProblem(message=f"the notebook does not validate: {first}", path=display)
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        return None, LoadProblem(message=f"not a readable notebook: {reason}", path=display)
    if len(nb.cells) > MAX_CELLS:
        return None, LoadProblem(
            message=f"the notebook has {len(nb.cells)} cells (limit {MAX_CELLS})", path=display
        )
    return nb, None


def _without_surrogates(value: object) -> tuple[object, int]:
    """``value`` (a parsed notebook's JSON) with each lone surrogate as U+FFFD, and how many."""
    if isinstance(value, str):
        return _SURROGATE.subn("\ufffd", value)
    if isinstance(value, dict):
        count = 0
        for key in list(value):
            item, n = _without_surrogates(value.pop(key) if _SURROGATE.search(key) else value[key])
            clean, k = _SURROGATE.subn("\ufffd", key)
            value[clean] = item
            count += n + k
        return value, count
    if isinstance(value, list):
        count = 0
        for i, item in enumerate(value):
            value[i], n = _without_surrogates(item)
            count += n
        return value, count
    return value, 0


def replace_surrogates(nb: NotebookNode, path: Path, display: str) -> LoadProblem | None:
    """Lone surrogates out of a loaded notebook (the grader's own copy at ``path`` is rewritten,
    since the kernel runs that file), and a problem saying so; None when it had none.

    Left in, one such escape in a comment crashed the grader on the first UTF-8 write (the
    executed notebook), so a student could turn their own grade into a "grader failure" at will.
    Replaced, the notebook runs as the student wrote it but for that one character.
    """
    _, count = _without_surrogates(nb)
    if not count:
        return None
    nbformat.write(nb, str(path))
    return LoadProblem(
        message=f"{count} character(s) that are not valid Unicode (lone surrogates such as "
        "\\ud800) were replaced by \ufffd before grading",
        path=display,
    )


def _code(nb: NotebookNode) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _choose(
    cand: _Candidate, questions: tuple[QuestionSpec, ...]
) -> tuple[QuestionSpec | None, MatchedBy]:
    by_name = [q for q in questions if q.name_matches(cand.path.name)]
    best = max(questions, key=lambda q: cand.scores[q.id])
    content_says = best.id if cand.scores[best.id] > 0 else None
    if len(by_name) == 1:
        named = by_name[0]
        if content_says in (None, named.id) or cand.scores[named.id] > 0:
            return named, MatchedBy.NAME
    if content_says is not None:
        return best, MatchedBy.CONTENT
    return None, MatchedBy.NAME


def match(
    candidates: list[_Candidate], questions: tuple[QuestionSpec, ...]
) -> tuple[list[NotebookRef], list[LoadProblem]]:
    """Assign at most one notebook per question: name first, unless the code says otherwise."""
    refs: dict[str, NotebookRef] = {}
    problems: list[LoadProblem] = []
    unassigned: list[_Candidate] = []
    choices = [(cand, *_choose(cand, questions)) for cand in candidates]
    # A notebook whose name says the question beats one matched by its code alone, whatever
    # the alphabetical order (a renamed draft must not displace the properly named notebook).
    choices.sort(key=lambda item: item[2] is not MatchedBy.NAME)
    for cand, choice, how in choices:
        if choice is None:
            unassigned.append(cand)
            continue
        if choice.id in refs:
            problems.append(
                LoadProblem(
                    message=f"two notebooks look like {choice.id}; graded "
                    f"{refs[choice.id].original_name}, ignored this one",
                    path=cand.display,
                    question=choice.id,
                )
            )
            continue
        refs[choice.id] = NotebookRef(
            question=choice.id, path=cand.path, original_name=cand.display, matched_by=how
        )
    # One notebook holding several questions ("Homework 1.ipynb"): a question no notebook
    # answers takes the one whose code defines most of its markers (at least two of them, so
    # a stray helper never pulls in another part's notebook). Each question's kernel runs that
    # notebook whole and probes its own names.
    for q in questions:
        ranked = sorted(candidates, key=lambda c: c.scores[q.id], reverse=True)
        if q.id in refs or not ranked:
            continue
        cand = ranked[0]
        if cand.scores[q.id] >= min(2, len(q.content_markers)):
            refs[q.id] = NotebookRef(
                question=q.id,
                path=cand.path,
                original_name=cand.display,
                matched_by=MatchedBy.CONTENT,
            )
            unassigned = [u for u in unassigned if u is not cand]
    for cand in unassigned:
        problems.append(
            LoadProblem(
                message="could not tell which question this notebook answers", path=cand.display
            )
        )
    return [refs[q.id] for q in questions if q.id in refs], problems


def load_submission(source: Path, workdir: Path, questions: tuple[QuestionSpec, ...]) -> Submission:
    """Copy or unpack the submission into ``workdir`` and match its notebooks to questions.

    The grader works on its own copy, so nothing the kernel does can touch the original files.
    """
    source = source.resolve()
    root = workdir / "submission"
    root.mkdir(parents=True, exist_ok=True)
    problems: list[LoadProblem] = []
    if source.is_dir():
        for nb_path in _notebook_files(source):
            target = root / nb_path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(nb_path, target)
    elif source.suffix.lower() == ".zip":
        problems += unpack_zip(source, root)
    elif source.suffix.lower() == ".ipynb" and source.is_file():
        shutil.copyfile(source, root / source.name)
    elif not source.exists():
        raise InvalidSubmissionError("no such file or folder", path=source)
    else:
        raise InvalidSubmissionError(
            "expected a folder of notebooks, one .ipynb file, or a .zip", path=source
        )
    candidates: list[_Candidate] = []
    found: list[str] = []
    for path in _notebook_files(root):
        display = str(path.relative_to(root))
        found.append(display)
        nb, problem = read_notebook(path, display)
        if problem is not None:
            by_name = [q.id for q in questions if q.name_matches(path.name)]
            problems.append(
                LoadProblem(
                    message=problem.message,
                    path=display,
                    question=by_name[0] if len(by_name) == 1 else None,
                )
            )
            continue
        assert nb is not None
        replaced = replace_surrogates(nb, path, display)
        if replaced is not None:
            problems.append(replaced)
        code = _code(nb)
        scores = {q.id: q.content_score(code) for q in questions}
        candidates.append(_Candidate(path=path, display=display, nb=nb, scores=scores))
    refs, match_problems = match(candidates, questions)
    name = source.stem if source.is_file() else source.name
    return Submission(
        name=name,
        source=source,
        root=root,
        notebooks=tuple(refs),
        problems=tuple(problems + match_problems),
        found=tuple(found),
    )


def missing_notebook(submission: Submission, question: QuestionSpec) -> MissingNotebook:
    """Why ``question`` has no notebook, in one line a student can act on.

    A notebook meant for it that could not be read is named with the reason (the student
    fixes that file); otherwise the line says which file name was expected and which
    notebooks were found (the student renames one, or submits the missing one).
    """
    expected = f"{question.notebook_stem}.ipynb"
    found = submission.found
    unreadable = next(
        (
            f"{p.path}: {p.message}"
            for p in submission.problems
            if p.question == question.id and p.path
        ),
        "",
    )
    if unreadable:
        message = f"no notebook for {question.id}: {unreadable}"
    else:
        named = ", ".join(found[:MAX_FOUND_NAMED]) or "no notebook at all"
        more = len(found) - MAX_FOUND_NAMED
        named += f" and {more} more" if more > 0 else ""
        message = f"no notebook for {question.id}: expected {expected}; found: {named}"
    return MissingNotebook(
        question=question.id,
        expected=expected,
        found=found,
        unreadable=unreadable,
        message=message,
    )
