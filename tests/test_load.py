"""Loading a submission: folder, notebook or zip; bad files are problems, never crashes."""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path

import nbformat
import pytest

from graders import load as load_module
from graders.errors import InvalidSubmissionError, UnsafeSubmissionError
from graders.load import load_submission
from graders.models import MatchedBy, Submission
from graders.questions.api import QuestionSpec

STEMS = {
    "q1": "q1_step_network",
    "q2": "q2_initialization",
    "q3": "q3_fashion_mlp",
    "q4": "q4_numpy_backprop",
}


@pytest.fixture
def correct(fixture_submissions: Path) -> Path:
    return fixture_submissions / "all_correct"


def notebook_bytes(correct: Path, qid: str) -> bytes:
    return (correct / f"{STEMS[qid]}.ipynb").read_bytes()


def make_folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    folder = tmp_path / "student"
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return folder


def load(source: Path, tmp_path: Path, questions: tuple[QuestionSpec, ...]) -> Submission:
    return load_submission(source, tmp_path / "work", questions)


def assigned(sub: Submission) -> dict[str, tuple[str, MatchedBy]]:
    return {ref.question: (ref.original_name, ref.matched_by) for ref in sub.notebooks}


def problem_paths(sub: Submission) -> set[str | None]:
    return {p.path for p in sub.problems}


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- the three kinds of submission -------------------------------------------------------------


def test_a_folder_of_correctly_named_notebooks_matches_by_name(correct, tmp_path, questions):
    sub = load(correct, tmp_path, questions)
    assert assigned(sub) == {qid: (f"{stem}.ipynb", MatchedBy.NAME) for qid, stem in STEMS.items()}
    assert sub.problems == ()
    assert sub.name == "all_correct"
    for ref in sub.notebooks:
        assert ref.path.is_relative_to(tmp_path / "work")
        assert ref.path.read_bytes() == (correct / ref.original_name).read_bytes()


def test_a_single_notebook(correct, tmp_path, questions):
    source = tmp_path / "mine" / "q4_numpy_backprop.ipynb"
    source.parent.mkdir()
    shutil.copyfile(correct / "q4_numpy_backprop.ipynb", source)
    sub = load(source, tmp_path, questions)
    assert assigned(sub) == {"q4": ("q4_numpy_backprop.ipynb", MatchedBy.NAME)}
    assert sub.name == "q4_numpy_backprop"


def test_a_zip_with_a_top_folder(correct, tmp_path, questions):
    archive = tmp_path / "alice.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for stem in STEMS.values():
            zf.write(correct / f"{stem}.ipynb", f"alice/{stem}.ipynb")
    sub = load(archive, tmp_path, questions)
    assert set(assigned(sub)) == set(STEMS)
    assert assigned(sub)["q2"] == ("alice/q2_initialization.ipynb", MatchedBy.NAME)
    assert sub.name == "alice"
    assert sub.problems == ()


def test_the_original_folder_is_never_modified(correct, tmp_path, questions):
    source = tmp_path / "orig"
    shutil.copytree(correct, source)
    before = snapshot(source)
    sub = load(source, tmp_path, questions)
    for ref in sub.notebooks:  # what the grader does to its copy must not reach the original
        ref.path.write_text("overwritten")
    assert snapshot(source) == before


# -- matching by content --------------------------------------------------------------------


def test_a_renamed_notebook_is_matched_by_its_code(correct, tmp_path, questions):
    folder = make_folder(tmp_path, {"homework_final.ipynb": notebook_bytes(correct, "q4")})
    sub = load(folder, tmp_path, questions)
    assert assigned(sub) == {"q4": ("homework_final.ipynb", MatchedBy.CONTENT)}


def test_a_file_named_q3_holding_q4_code_is_graded_as_q4(correct, tmp_path, questions):
    folder = make_folder(tmp_path, {"q3.ipynb": notebook_bytes(correct, "q4")})
    sub = load(folder, tmp_path, questions)
    assert assigned(sub) == {"q4": ("q3.ipynb", MatchedBy.CONTENT)}


def test_notebooks_named_as_the_course_names_them_are_matched_by_their_code(
    correct, tmp_path, questions
):
    names = {
        "q1": "demo01-basics.ipynb",
        "q2": "Homework 1 part 2.ipynb",
        "q3": "dlf23_hw1_prob5.ipynb",
        "q4": "hw1_s25_p4.ipynb",
    }
    folder = make_folder(tmp_path, {names[q]: notebook_bytes(correct, q) for q in names})
    sub = load(folder, tmp_path, questions)
    assert {q: name for q, (name, _) in assigned(sub).items()} == names
    assert not sub.problems


def _combined(correct: Path, *qids: str) -> bytes:
    """One notebook holding several questions' cells, one part after another."""
    parts = [nbformat.reads(notebook_bytes(correct, q).decode(), 4) for q in qids]
    combined = parts[0]
    for part in parts[1:]:
        combined.cells += part.cells
    return nbformat.writes(combined).encode()


def test_one_notebook_holding_two_questions_answers_both(correct, tmp_path, questions):
    folder = make_folder(
        tmp_path,
        {
            "Homework 1.ipynb": _combined(correct, "q3", "q4"),
            "q1_step_network.ipynb": notebook_bytes(correct, "q1"),
        },
    )
    sub = load(folder, tmp_path, questions)
    assert assigned(sub) == {
        "q1": ("q1_step_network.ipynb", MatchedBy.NAME),
        "q3": ("Homework 1.ipynb", MatchedBy.CONTENT),
        "q4": ("Homework 1.ipynb", MatchedBy.CONTENT),
    }
    assert not sub.problems


def test_a_helper_shared_with_another_part_does_not_pull_its_notebook_in(
    correct, tmp_path, questions
):
    """One marker of q4 in q3's notebook (a stray `train_one_epoch`) is not a q4 answer."""
    nb = nbformat.reads(notebook_bytes(correct, "q3").decode(), 4)
    nb.cells.append(nbformat.v4.new_code_cell("def train_one_epoch():\n    pass"))
    folder = make_folder(tmp_path, {"q3_fashion_mlp.ipynb": nbformat.writes(nb).encode()})
    sub = load(folder, tmp_path, questions)
    assert set(assigned(sub)) == {"q3"}


def test_a_name_without_telling_code_is_trusted(tmp_path, questions):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    folder = make_folder(tmp_path, {"q2_initialization.ipynb": nbformat.writes(nb).encode()})
    sub = load(folder, tmp_path, questions)
    assert assigned(sub) == {"q2": ("q2_initialization.ipynb", MatchedBy.NAME)}


def test_a_notebook_nobody_can_place_is_a_problem(tmp_path, questions):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    folder = make_folder(tmp_path, {"scratch.ipynb": nbformat.writes(nb).encode()})
    sub = load(folder, tmp_path, questions)
    assert sub.notebooks == ()
    assert problem_paths(sub) == {"scratch.ipynb"}


def test_two_notebooks_for_one_question_grade_one_and_name_the_other(correct, tmp_path, questions):
    q4 = notebook_bytes(correct, "q4")
    folder = make_folder(
        tmp_path, {"q4_numpy_backprop.ipynb": q4, "q4_numpy_backprop_v2.ipynb": q4}
    )
    sub = load(folder, tmp_path, questions)
    graded = assigned(sub)["q4"][0]
    [problem] = sub.problems
    assert problem.question == "q4"
    assert {graded, problem.path} == {"q4_numpy_backprop.ipynb", "q4_numpy_backprop_v2.ipynb"}
    assert graded in problem.message


@pytest.mark.parametrize("other", ["homework_final.ipynb", "a_draft.ipynb", "q3.ipynb"])
def test_the_properly_named_notebook_beats_a_renamed_copy(correct, tmp_path, questions, other):
    """Alphabetical order must not let a draft (matched by its code) displace the real one."""
    q4 = notebook_bytes(correct, "q4")
    folder = make_folder(tmp_path, {"q4_numpy_backprop.ipynb": q4, other: q4})
    sub = load(folder, tmp_path, questions)
    assert assigned(sub)["q4"] == ("q4_numpy_backprop.ipynb", MatchedBy.NAME)
    assert [(p.path, p.question) for p in sub.problems] == [(other, "q4")]


# -- bad files: a problem for that file, the rest still graded --------------------------------


def v3_notebook(correct: Path, qid: str) -> bytes:
    nb = nbformat.reads(notebook_bytes(correct, qid).decode(), as_version=4)
    return nbformat.writes(nbformat.convert(nb, 3), version=3).encode()


def failing_validation(correct: Path, qid: str) -> bytes:
    raw = json.loads(notebook_bytes(correct, qid))
    raw["cells"][0]["cell_type"] = "not-a-cell-type"
    return json.dumps(raw).encode()


def without(correct: Path, qid: str, key: str) -> bytes:
    raw = json.loads(notebook_bytes(correct, qid))
    del raw[key]
    return json.dumps(raw).encode()


def with_minor(correct: Path, qid: str, minor: object) -> bytes:
    raw = json.loads(notebook_bytes(correct, qid))
    raw["nbformat_minor"] = minor
    return json.dumps(raw).encode()


BAD_FILES = {
    "invalid JSON": lambda c: b'{"cells": [',
    "empty file": lambda c: b"",
    "not UTF-8": lambda c: b"\xff\xfe\x00\x01garbage",
    "a JSON list": lambda c: b"[1, 2, 3]",
    "JSON null": lambda c: b"null",
    "unknown nbformat": lambda c: b'{"nbformat": 99, "nbformat_minor": 0, "cells": []}',
    "fails validation": lambda c: failing_validation(c, "q2"),
    "no metadata": lambda c: without(c, "q2", "metadata"),
    "no cells": lambda c: without(c, "q2", "cells"),
    "bad nbformat_minor": lambda c: with_minor(c, "q2", "five"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_a_problem_naming_it_and_the_rest_is_graded(
    correct, tmp_path, questions, case
):
    folder = make_folder(
        tmp_path,
        {
            "q1_step_network.ipynb": notebook_bytes(correct, "q1"),
            "q2_initialization.ipynb": BAD_FILES[case](correct),
        },
    )
    sub = load(folder, tmp_path, questions)
    assert assigned(sub) == {"q1": ("q1_step_network.ipynb", MatchedBy.NAME)}
    [problem] = sub.problems
    assert problem.path == "q2_initialization.ipynb"
    assert problem.question == "q2"  # so the report can say why q2 was not graded
    assert problem.message


def test_an_nbformat_3_notebook_is_upgraded_and_matched(correct, tmp_path, questions):
    folder = make_folder(tmp_path, {"old_homework.ipynb": v3_notebook(correct, "q4")})
    sub = load(folder, tmp_path, questions)
    assert assigned(sub) == {"q4": ("old_homework.ipynb", MatchedBy.CONTENT)}
    assert sub.problems == ()


def test_a_non_notebook_file_is_not_looked_at(correct, tmp_path, questions):
    folder = make_folder(
        tmp_path,
        {"q1_step_network.ipynb": notebook_bytes(correct, "q1"), "notes.txt": b"q4 answers"},
    )
    sub = load(folder, tmp_path, questions)
    assert set(assigned(sub)) == {"q1"}
    assert sub.problems == ()


def test_checkpoints_and_macos_metadata_are_ignored(correct, tmp_path, questions):
    q1 = notebook_bytes(correct, "q1")
    folder = make_folder(
        tmp_path,
        {
            "q1_step_network.ipynb": q1,
            ".ipynb_checkpoints/q1_step_network-checkpoint.ipynb": q1,
            ".ipynb_checkpoints/q4_numpy_backprop-checkpoint.ipynb": notebook_bytes(correct, "q4"),
            "__MACOSX/._q1_step_network.ipynb": b"\x00\x05\x16\x07 resource fork",
        },
    )
    sub = load(folder, tmp_path, questions)
    assert assigned(sub) == {"q1": ("q1_step_network.ipynb", MatchedBy.NAME)}
    assert sub.problems == ()


# -- zips: nothing outside the work folder, ever ---------------------------------------------


def add_symlink(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def test_unsafe_zip_entries_are_skipped_and_nothing_lands_outside(correct, tmp_path, questions):
    archive = tmp_path / "bob.zip"
    outside = tmp_path / "outside"
    outside.mkdir()
    q4 = notebook_bytes(correct, "q4")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("q1_step_network.ipynb", notebook_bytes(correct, "q1"))
        zf.writestr("../../outside/evil.ipynb", q4)
        zf.writestr("..\\..\\outside\\evil_backslash.ipynb", q4)
        zf.writestr(str(outside / "absolute.ipynb"), q4)
        add_symlink(zf, "q4_numpy_backprop.ipynb", str(correct / "q4_numpy_backprop.ipynb"))
    sub = load(archive, tmp_path, questions)
    assert assigned(sub) == {"q1": ("q1_step_network.ipynb", MatchedBy.NAME)}
    skipped = {p.path for p in sub.problems}
    assert skipped == {
        "../../outside/evil.ipynb",
        "..\\..\\outside\\evil_backslash.ipynb",
        str(outside / "absolute.ipynb"),
        "q4_numpy_backprop.ipynb",
    }
    assert list(outside.iterdir()) == []
    assert not list((tmp_path / "work").rglob("evil*"))
    assert not any(p.is_symlink() for p in (tmp_path / "work").rglob("*"))


def test_a_zip_with_too_many_entries_is_unsafe(tmp_path, questions):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(load_module.MAX_ZIP_FILES + 1):
            zf.writestr(f"f{i}.txt", b"")
    with pytest.raises(UnsafeSubmissionError, match="entries") as info:
        load_submission(archive, tmp_path / "work", questions)
    assert info.value.path == archive


def test_a_zip_that_unpacks_too_large_is_unsafe(tmp_path, questions, monkeypatch):
    monkeypatch.setattr(load_module, "MAX_ZIP_BYTES", 10_000)
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("q1_step_network.ipynb", b" " * 20_000)  # compresses to a few bytes
    assert archive.stat().st_size < 10_000
    with pytest.raises(UnsafeSubmissionError, match="MiB"):
        load_submission(archive, tmp_path / "work", questions)
    assert not list((tmp_path / "work").rglob("*.ipynb"))


def test_a_corrupt_zip_is_an_invalid_submission(tmp_path, questions):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(InvalidSubmissionError):
        load_submission(archive, tmp_path / "work", questions)


def test_a_missing_path_is_an_invalid_submission(tmp_path, questions):
    missing = tmp_path / "nope"
    with pytest.raises(InvalidSubmissionError, match="no such file") as info:
        load_submission(missing, tmp_path / "work", questions)
    assert info.value.path == missing


def test_a_text_file_is_an_invalid_submission(tmp_path, questions):
    text = tmp_path / "answers.txt"
    text.write_text("42")
    with pytest.raises(InvalidSubmissionError, match=r"\.ipynb"):
        load_submission(text, tmp_path / "work", questions)


def patched_zip(archive: Path, entries: dict[str, bytes], patch: str) -> None:
    """Write stored entries, then damage the archive the way real-world zips come damaged."""
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    data = bytearray(archive.read_bytes())
    victim = data.find(b"PK\x03\x04")  # the first entry's local header, then its central one
    central = data.find(b"PK\x01\x02")
    if patch == "encrypted":  # general-purpose flag bit 0, as 7-Zip or `zip -e` set it
        data[victim + 6] |= 1
        data[central + 8] |= 1
    elif patch == "unknown-method":  # method 99: WinZip AES
        data[victim + 8 : victim + 10] = (99).to_bytes(2, "little")
        data[central + 10 : central + 12] = (99).to_bytes(2, "little")
    elif patch == "bad-crc":
        start = data.find(b"DAMAGE-ME")
        data[start : start + 9] = b"DAMAGED!!"
    archive.write_bytes(bytes(data))


@pytest.mark.parametrize("patch", ["encrypted", "unknown-method", "bad-crc"])
def test_an_entry_that_cannot_be_unpacked_is_a_problem_not_a_crash(
    correct, tmp_path, questions, patch
):
    archive = tmp_path / "odd.zip"
    entries = {
        "q2_initialization.ipynb": b"DAMAGE-ME" + notebook_bytes(correct, "q2"),
        "q1_step_network.ipynb": notebook_bytes(correct, "q1"),
    }
    patched_zip(archive, entries, patch)
    sub = load(archive, tmp_path, questions)
    assert assigned(sub) == {"q1": ("q1_step_network.ipynb", MatchedBy.NAME)}
    assert [p.path for p in sub.problems] == ["q2_initialization.ipynb"]


def test_a_zip_whose_file_and_folder_share_a_name_is_a_problem_not_a_crash(
    correct, tmp_path, questions
):
    archive = tmp_path / "clash.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("work", b"a file")
        zf.writestr("work/q4_numpy_backprop.ipynb", notebook_bytes(correct, "q4"))
        zf.writestr("q1_step_network.ipynb", notebook_bytes(correct, "q1"))
    sub = load(archive, tmp_path, questions)
    assert set(assigned(sub)) == {"q1"}
    assert [p.path for p in sub.problems] == ["work/q4_numpy_backprop.ipynb"]


def test_a_symlinked_notebook_in_a_folder_is_not_followed(correct, tmp_path, questions):
    secret = tmp_path / "secret" / "q4_numpy_backprop.ipynb"
    secret.parent.mkdir()
    shutil.copyfile(correct / "q4_numpy_backprop.ipynb", secret)
    folder = make_folder(tmp_path, {"q1_step_network.ipynb": notebook_bytes(correct, "q1")})
    (folder / "q4_numpy_backprop.ipynb").symlink_to(secret)
    sub = load(folder, tmp_path, questions)
    assert set(assigned(sub)) == {"q1"}


# -- text that is not text ----------------------------------------------------------------------


def test_a_lone_surrogate_is_replaced_when_the_notebook_is_loaded(correct, tmp_path, questions):
    """``"\\ud800"`` in a notebook's JSON reads as a lone surrogate, which no UTF-8 writer takes:
    the executed notebook's save crashed the grader for that submission (red team,
    2026-12-04). The grader's copy, the one the kernel runs, holds U+FFFD instead, and the
    student is told."""
    nb = json.loads(notebook_bytes(correct, "q2"))
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = "".join(code["source"]) + "\n# note \ud800 here"
    nb["metadata"]["odd\udfff"] = "key"
    folder = make_folder(tmp_path, {"q2_initialization.ipynb": json.dumps(nb).encode("ascii")})
    sub = load(folder, tmp_path, questions)
    assert assigned(sub) == {"q2": ("q2_initialization.ipynb", MatchedBy.NAME)}
    graded = sub.notebooks[0].path
    text = graded.read_text(encoding="utf-8")  # strict: no surrogate can be in valid UTF-8
    loaded = nbformat.reads(text, as_version=4)
    assert any("# note \ufffd here" in c.source for c in loaded.cells)
    assert "odd\ufffd" in loaded.metadata
    nbformat.write(loaded, str(tmp_path / "again.ipynb"))  # what record.py does: no crash
    [problem] = [p for p in sub.problems if "surrogate" in p.message]
    assert problem.path == "q2_initialization.ipynb" and problem.message.startswith("2 ")


def test_a_report_writer_takes_a_lone_surrogate(tmp_path):
    from graders.render.atomic import write_text_atomic

    write_text_atomic("name \ud800 here", tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "name ? here"
