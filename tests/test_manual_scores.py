"""TA scores for free-response answers: read row by row, kept in the state, merged everywhere.

The reader's tests feed it CSV files with every kind of bad row and check that each is named
by file and line while the good rows around it are taken. The end-to-end test grades a real
small batch (copies of ``blank``, questions 1 and 2, quick profile), has a TA score answers on
the generated manual-grading page in headless Chromium, merges the downloaded CSV (with bad
rows added) through ``dlgrade batch --manual-scores``, and reads every output back.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from chromium_cdp import CHROMIUM, browser
from feedback_report import build_report

from graders.batch.manual_scores import parts_of, read_manual_scores
from graders.batch.store import Store
from graders.cli import main
from graders.errors import ConfigError
from graders.models import ManualScore
from graders.render.gradebook import gradebook_csv
from graders.render.manual import CSV_NAME
from graders.score import with_manual_scores

REPO = Path(__file__).resolve().parents[1]
PARTS = {
    "alice": {("q1", "q1a"): 1.0, ("q2", "q2b"): 2.0},
    "bob": {("q1", "q1a"): 1.0},
}
HEADER = "submission,question,item,points,max_points,comment\n"


def _scores(tmp_path: Path, body: str, ungraded: frozenset[str] = frozenset()):  # type: ignore[no-untyped-def]
    path = tmp_path / "scores.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return path, *read_manual_scores(path, PARTS, ungraded)


def test_good_rows_are_taken_with_their_comments(tmp_path: Path) -> None:
    _, taken, problems = _scores(
        tmp_path,
        'alice,q1,q1a,1,1,"Clear, and\nright."\nalice,q2,q2b,0.5,2,\nbob,q1,q1a,0,1,Missing.\n',
    )
    assert problems == []
    got = {(t.submission, t.score.item): (t.score.points, t.score.comment) for t in taken}
    assert got == {
        ("alice", "q1a"): (1.0, "Clear, and\nright."),
        ("alice", "q2b"): (0.5, ""),
        ("bob", "q1a"): (0.0, "Missing."),
    }
    assert {t.source for t in taken} == {f"{tmp_path / 'scores.csv'}:{n}" for n in (2, 4, 5)}


def test_every_bad_row_is_named_by_file_and_line_and_the_rest_is_taken(tmp_path: Path) -> None:
    body = (
        "alice,q1,q1a,1,1,ok\n"  # 2: taken
        "zed,q1,q1a,1,1,\n"  # 3: unknown student
        "alice,q1,q9z,1,1,\n"  # 4: unknown part
        "alice,q2,q2b,2.5,2,\n"  # 5: over the maximum
        "alice,q2,q2b,-1,2,\n"  # 6: negative
        "bob,q1,q1a,abc,1,\n"  # 7: not a number
        'bob,q1,q1a,"0,5",1,\n'  # 8: comma decimal
        "bob,q1,q1a,nan,1,\n"  # 9: not finite
        "bob,q1,q1a,,1,a comment alone\n"  # 10: no points
        ",,,,,\n"  # blank: skipped
        "bob,q1,q1a,1,1,\n"  # 12: taken
        "crashed,q1,q1a,1,1,\n"  # 13: known but not graded
    )
    path, taken, problems = _scores(tmp_path, body, frozenset({"crashed"}))
    assert [(t.submission, t.score.item, t.score.points) for t in taken] == [
        ("alice", "q1a", 1.0),
        ("bob", "q1a", 1.0),
    ]
    by_line = {p.line: p.message for p in problems}
    assert sorted(by_line) == [3, 4, 5, 6, 7, 8, 9, 10, 13]
    assert by_line[3] == "no submission named 'zed' in this batch"
    assert "no free-response part q1/q9z" in by_line[4] and "q1/q1a, q2/q2b" in by_line[4]
    assert by_line[5] == "2.5 points for q2/q2b, which is worth 0 to 2"
    assert by_line[6] == "-1 points for q2/q2b, which is worth 0 to 2"
    assert by_line[7] == "points 'abc' for q1/q1a is not a number"
    assert by_line[8] == "points '0,5' for q1/q1a is not a number (use a dot for decimals)"
    assert "not a number" in by_line[9]
    assert "a comment alone is not merged" in by_line[10]
    assert "has no graded result" in by_line[13]
    assert str(problems[0]) == f"{path}:3: no submission named 'zed' in this batch"


def test_a_part_scored_twice_keeps_the_later_row_and_says_so(tmp_path: Path) -> None:
    _, taken, problems = _scores(tmp_path, "bob,q1,q1a,0,1,\nbob,q1,q1a,1,1,regraded\n")
    assert [(t.score.points, t.score.comment) for t in taken] == [(1.0, "regraded")]
    assert [(p.line, p.message) for p in problems] == [
        (2, "q1/q1a of 'bob' is scored again on line 3; that later line is the one taken")
    ]


def test_a_spreadsheets_export_is_read_too(tmp_path: Path) -> None:
    """Excel: a BOM, headers in its own spelling, a defused formula, CRLF line ends."""
    path = tmp_path / "excel.csv"
    text = "Submission,Question,Item,Points,Comment\r\n'=bob,q1,q1a,1,fine\r\n"
    path.write_bytes(("\ufeff" + text).encode("utf-8"))
    taken, problems = read_manual_scores(path, {"=bob": {("q1", "q1a"): 1.0}})
    assert problems == [] and [t.submission for t in taken] == ["=bob"]


def test_a_name_with_spaces_is_its_own_submission_and_never_alices(tmp_path: Path) -> None:
    """``alice `` (a folder named with a trailing space) and ``alice``: the reader stripped the
    cell, so mallory's row scored alice (red team, 2026-12-04). Names are read exactly."""
    path = tmp_path / "scores.csv"
    path.write_text(
        HEADER + 'alice,q1,q1a,1,1,good\n"alice ",q1,q1a,0,1,empty answer\n"\talice",q1,q1a,0,1,\n',
        encoding="utf-8",
    )
    parts = {name: {("q1", "q1a"): 1.0} for name in ("alice", "alice ", "\talice")}
    taken, problems = read_manual_scores(path, parts)
    assert problems == []
    scored = {t.submission: (t.score.points, t.score.comment) for t in taken}
    assert scored == {"alice": (1.0, "good"), "alice ": (0.0, "empty answer"), "\talice": (0.0, "")}


def test_an_unknown_name_that_differs_by_spaces_says_names_are_exact(tmp_path: Path) -> None:
    _, taken, problems = _scores(tmp_path, '"alice ",q1,q1a,1,1,\n')
    assert taken == [] and len(problems) == 1
    assert "no submission named 'alice ' in this batch (names are matched exactly" in str(
        problems[0]
    )


def test_rows_written_differently_that_read_as_one_part_are_both_refused(tmp_path: Path) -> None:
    """Two rows whose cells differ but read as the same part may be two students' rows: neither
    is taken, each line is named (the same row twice still keeps the later one)."""
    path, taken, problems = _scores(
        tmp_path, "bob,q1,q1a,1,1,\nbob, q1 ,q1a,0,1,\nbob,q1,q1a ,1,1,\nalice,q1,q1a,1,1,\n"
    )
    assert [t.submission for t in taken] == ["alice"]
    assert [p.line for p in problems] == [2, 3, 4]
    assert str(problems[0]).startswith(f"{path}:2: q1/q1a of 'bob' is also scored on line 3")
    assert "neither is taken" in problems[1].message


@pytest.mark.parametrize(
    "name",
    [
        "=bob",
        "'=bob",
        "''x",
        "'plain",
        " alice\t",
        "+1",
        "\n=1+1",
        ' =HYPERLINK("h")',
        "\uff1d1+1",
        "|calc",
        "alice",
    ],
)
def test_every_name_round_trips_through_the_gradebooks_defusing(name: str) -> None:
    """``'=bob`` was read back as ``=bob`` (a quote before a name starting with a quote keeps
    the two apart now), and a formula behind a space, a line feed or a full-width ``＝`` was
    not defused (red team, 2026-12-04)."""
    from graders.batch.csv_input import cell
    from graders.render.gradebook import spreadsheet_text

    written = spreadsheet_text(name)
    assert cell(written, exact=True) == name
    assert written.startswith("'") == (name != "alice")


def test_the_manual_page_defuses_as_the_gradebook_does() -> None:
    js = (REPO / "reports" / "templates" / "manual_grading.js").read_text(encoding="utf-8")
    assert "/^([=+\\-@|\\uff1d\\uff0b\\uff0d\\uff20']|\\s)/" in js


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("name,points\nalice,1\n", "no column submission, question, item"),
        ("", "no column submission"),
        (b"\xff\xfe\x00bad", "cannot read"),
    ],
)
def test_a_file_that_is_not_a_scores_file_stops_with_its_name(
    tmp_path: Path, content: str | bytes, words: str
) -> None:
    path = tmp_path / "wrong.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=words) as caught:
        read_manual_scores(path, PARTS)
    assert str(path) in str(caught.value)


def test_the_state_keeps_scores_by_part_and_replaces_them(tmp_path: Path) -> None:
    _, taken, _ = _scores(tmp_path, "alice,q1,q1a,1,1,first\n")
    with Store(tmp_path / "state.sqlite") as store:
        assert store.save_manual_scores(taken) == 1
        _, again, _ = _scores(tmp_path, "alice,q1,q1a,0.5,1,second\nbob,q1,q1a,1,1,\n")
        store.save_manual_scores(again)
        assert store.manual_scores() == {
            "alice": (ManualScore(question="q1", item="q1a", points=0.5, comment="second"),),
            "bob": (ManualScore(question="q1", item="q1a", points=1.0, comment=""),),
        }


def test_merged_scores_reach_the_totals(tmp_path: Path) -> None:
    report = build_report(tmp_path)
    scored = with_manual_scores(
        report, [ManualScore(question="q3", item="q3_test_vs_train", points=1.0, comment="ok")]
    )
    assert scored.manual_score == pytest.approx(report.manual_score + 1.0)
    assert scored.score == report.score
    row = next(csv.DictReader(io.StringIO(gradebook_csv([scored]))))
    assert float(row["total"]) == pytest.approx(scored.score + scored.manual_score)
    assert row["q3.q3_test_vs_train"] == "1" and row["q3.q3_observations"] == "0.5"
    assert float(row["manual"]) == pytest.approx(1.5)
    assert parts_of([report])[report.run.submission.name] == {
        ("q3", "q3_observations"): 1.0,
        ("q3", "q3_test_vs_train"): 1.0,
    }


# --- end to end: a real batch, the page in Chromium, the command, every output ----------------

ANSWER = "**Your answer (q2e):**\n\nThe rule is $\\sigma^2 = \\frac{2}{n_{in} + n_{out}}$."


def _answer(notebook: Path, part: str, text: str) -> None:
    nb = nbformat.read(str(notebook), as_version=4)
    cell = next(c for c in nb.cells if c.get("metadata", {}).get("dlgrader", {}).get("id") == part)
    cell.source = text
    nbformat.write(nb, str(notebook))


def _batch(folder: Path, out: Path, *extra: str) -> int:
    args = ["batch", str(folder), "--out", str(out), "--profile", "quick", "--workers", "1"]
    return main([*args, "--only", "q1", "--only", "q2", *extra])


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open(encoding="utf-8") as fh:
        return {row["submission"]: row for row in csv.DictReader(fh)}


@pytest.mark.kernel
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_a_ta_grades_in_the_browser_and_the_batch_merges_it_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "submissions"
    for name in ("ann", "ben"):
        shutil.copytree(REPO / "fixtures" / "submissions" / "blank", folder / name)
    _answer(folder / "ann" / "q2_initialization.ipynb", "q2e", ANSWER)
    out = tmp_path / "graded"
    assert _batch(folder, out) == 0
    before = _rows(out)
    assert before["ann"]["manual"] == "" and before["ann"]["q2.q2e"] == ""

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with browser(tmp_path) as page:
        page.allow_downloads(downloads)
        page.open((out / "manual_grading.html").as_uri())
        assert page.box('.grade[data-submission="ann"][data-item="q2e"]')["height"] > 0
        assert page.evaluate("document.querySelectorAll('div.answer.md mfrac').length") == 1
        page.type_into('.grade[data-submission="ann"][data-item="q2e"] input.points', "1")
        page.type_into(
            '.grade[data-submission="ann"][data-item="q2e"] textarea.comment', "Right rule."
        )
        page.type_into('.grade[data-submission="ben"][data-item="q1a"] input.points', "0")
        page.click("#download-csv")
        page.wait_for_download()
        assert page.console == [] and page.errors == []
    scores = tmp_path / "scores.csv"
    downloaded = (downloads / CSV_NAME).read_text(encoding="utf-8-sig")
    bad = "nobody,q1,q1a,1,1,\r\nann,q1,q1z,1,1,\r\nben,q2,q2a,7,1,\r\nben,q2,q2b,lots,1,\r\n"
    scores.write_text(downloaded + bad, encoding="utf-8")
    good_lines = len(downloaded.splitlines())

    roster = tmp_path / "roster.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,submission\n"
        '"Ann, A.",11,S11,ann,DL,ann\n"Ben, B.",12,S12,ben,DL,ben\n"Cara, C.",13,S13,cara,DL,\n',
        encoding="utf-8",
    )
    capsys.readouterr()
    merge = ["--manual-scores", str(scores), "--roster", str(roster)]
    assert _batch(folder, out, *merge, "--canvas-assignment", "A1 (77)") == ConfigError.exit_code
    printed = capsys.readouterr()
    assert "manual scores: 2 taken from 1 file(s)" in printed.out
    assert "no graded submission (Canvas grade left empty): Cara, C." in printed.out
    reported = [
        line for line in printed.err.splitlines() if line.startswith("dlgrade: row not taken")
    ]
    assert reported == [
        f"dlgrade: row not taken: {scores}:{good_lines + 1}: no submission named 'nobody' in "
        "this batch",
        f"dlgrade: row not taken: {scores}:{good_lines + 2}: 'ann' has no free-response part "
        "q1/q1z (its parts: q1/q1a, q1/q1b, q1/q1c, q2/q2a, q2/q2b, q2/q2c, q2/q2d, q2/q2e)",
        f"dlgrade: row not taken: {scores}:{good_lines + 3}: 7 points for q2/q2a, which is worth "
        "0 to 1",
        f"dlgrade: row not taken: {scores}:{good_lines + 4}: points 'lots' for q2/q2b is not "
        "a number",
    ]

    rows = _rows(out)
    with (out / "canvas_gradebook.csv").open(encoding="utf-8") as fh:
        canvas = list(csv.reader(fh))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "A1 (77)"]
    assert canvas[1][0].strip() == "Points Possible"
    assert float(canvas[1][5]) == float(rows["ann"]["max_total"])
    assert [r[0] for r in canvas[2:]] == ["Ann, A.", "Ben, B.", "Cara, C."]
    assert canvas[2][5] == rows["ann"]["total"] and canvas[3][5] == rows["ben"]["total"]
    assert canvas[4][5] == ""
    assert (rows["ann"]["student"], rows["ann"]["student_id"]) == ("Ann, A.", "S11")
    for name, manual in (("ann", 1.0), ("ben", 0.0)):
        assert float(rows[name]["manual"]) == manual
        assert float(rows[name]["total"]) == pytest.approx(float(rows[name]["automatic"]) + manual)
    assert rows["ann"]["q2.q2e"] == "1" and rows["ben"]["q1.q1a"] == "0"
    assert rows["ann"]["automatic"] == before["ann"]["total"], "the automatic part is unchanged"

    ann = out / "ann"
    html = (ann / "feedback.html").read_text(encoding="utf-8")
    assert '<span class="manual-points">1 / 1</span>' in html
    assert '<p class="ta-comment">Right rule.</p>' in html and "<mfrac>" in html
    assert "TA: Right rule." in (ann / "feedback.md").read_text(encoding="utf-8")
    gradescope = json.loads((ann / "gradescope_results.json").read_text(encoding="utf-8"))
    automatic = json.loads((ann / "result.json").read_text(encoding="utf-8"))["score"]
    assert gradescope["score"] == pytest.approx(automatic + 1.0)
    q2e = next(t for t in gradescope["tests"] if "q2.q2e" in t["tags"])
    assert q2e["score"] == 1.0 and "Right rule." in q2e["output"]
    result = json.loads((ann / "result.json").read_text(encoding="utf-8"))
    assert result["manual_score"] == 1.0
    manual_page = (out / "manual_grading.html").read_text(encoding="utf-8")
    assert "Right rule.</textarea>" in manual_page, "the page starts from the merged scores"

    # A rerun without the file keeps the scores and leaves the folders alone; a regrade of ann
    # rewrites her folder without them, and the batch puts them back.
    stamp = (ann / "feedback.html").stat().st_mtime_ns
    assert _batch(folder, out) == 0
    assert (ann / "feedback.html").stat().st_mtime_ns == stamp
    assert _batch(folder, out, "--regrade", "ann") == 0
    assert '<span class="manual-points">1 / 1</span>' in (ann / "feedback.html").read_text(
        encoding="utf-8"
    )
    assert float(_rows(out)["ann"]["manual"]) == 1.0
