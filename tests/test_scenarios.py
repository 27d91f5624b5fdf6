"""Every scenario submission graded end to end with real kernels, against expected.toml.

A scenario is the correct solution with one known mistake (tools/scenarios/q*.py): it must lose
points exactly in its own question, with a message naming the mistake, and nowhere else. The
committed folders and expected.toml must be what ``tools/make_scenarios.py`` writes, or the
scores below would be checked against a stale copy (``--check``, run here like the other
generators' checks).
"""

from __future__ import annotations

import json
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from graders.models import GradeReport, RunStatus
from tools import make_scenarios

SUBMISSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"
EXPECTED = tomllib.loads((SUBMISSIONS / "expected.toml").read_text(encoding="utf-8"))


def test_committed_scenarios_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert make_scenarios.main(["--check"]) == 0, capsys.readouterr().out


def test_the_check_names_every_stale_path(tmp_path: Path) -> None:
    """A changed notebook, a leftover file or folder and an edited expected.toml are all named."""
    root = tmp_path / "submissions"
    shutil.copytree(SUBMISSIONS, root)
    scenario = sorted(p for p in root.iterdir() if p.is_dir() and p.name in EXPECTED)[-1]
    notebook = sorted(scenario.glob("*.ipynb"))[0]
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    nb["cells"][-1]["source"] = ["# edited by hand\n"]
    notebook.write_text(json.dumps(nb), encoding="utf-8")
    (scenario / "notes.txt").write_text("left behind", encoding="utf-8")
    (scenario / ".ipynb_checkpoints").mkdir()
    (root / "q9_renamed_away").mkdir()
    expected = root / "expected.toml"
    expected.write_text(expected.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert make_scenarios.stale_paths(root) == [
        *sorted(f"{scenario.name}/{name}" for name in (notebook.name, "notes.txt")),
        "q9_renamed_away/",
        "expected.toml",
    ]


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_scenario_scores_and_messages(
    scenario: str, graded_scenario: Callable[[str, tuple[str, ...]], GradeReport]
) -> None:
    expected = EXPECTED[scenario]
    # Only the questions whose notebooks differ from all_correct's are graded: the others are
    # byte-identical copies, and all_correct itself (graded in full) holds their scores.
    changed = changed_questions(scenario)
    report = graded_scenario(scenario, changed)
    scores = {q.question: q.score for q in report.questions}
    want = {k: float(v) for k, v in expected.items() if k.startswith("q") and k in changed}
    assert set(want) == set(changed), f"expected.toml lacks scores for {set(changed) - set(want)}"
    assert scores == pytest.approx(want, abs=1e-6), _explain(report)
    checks = {c.id: c for q in report.questions for c in q.checks}
    for check_id, phrase in expected.get("messages", {}).items():
        result = checks[check_id]
        assert result.score < result.max_score, f"{check_id} should fail in {scenario}"
        text = f"{result.message} {result.hint}".lower()
        assert phrase.lower() in text, f"{check_id}: {result.message!r} lacks {phrase!r}"
    named = set(expected.get("messages", {}))
    if named:  # a mutation loses points exactly in the checks it names, nowhere else
        lost = {c.id for c in checks.values() if c.max_score > 0 and c.score < c.max_score}
        assert lost <= named, f"{scenario} also loses points in {sorted(lost - named)}"
    runs = {q.question: q for q in report.run.questions}
    for qid, phrases in expected.get("notices", {}).items():
        # A notebook written for the course's starter code must run as written: a cell error
        # that costs no points (a plot after `import tensorflow`) is still a broken run.
        execution = runs[qid].execution
        errors = [f"cell {e.cell_index}: {e.ename}" for e in execution.cell_errors]
        assert execution.status is RunStatus.OK, f"{qid}: {execution.message} {errors}"
        said = " ".join((*execution.notices, *runs[qid].probe.notices)).lower()
        for phrase in phrases:
            assert phrase.lower() in said, f"{qid}'s notices {said!r} lack {phrase!r}"


def changed_questions(scenario: str) -> tuple[str, ...]:
    """Question ids whose notebook in ``scenario`` differs from all_correct's (all of them for
    all_correct itself)."""
    correct = SUBMISSIONS / "all_correct"
    changed = []
    for notebook in sorted(correct.glob("*.ipynb")):
        mine = SUBMISSIONS / scenario / notebook.name
        if (
            scenario == "all_correct"
            or not mine.exists()
            or mine.read_bytes() != notebook.read_bytes()
        ):
            changed.append(notebook.name.split("_", 1)[0])
    extra = {p.name for p in (SUBMISSIONS / scenario).iterdir()} - {
        p.name for p in correct.iterdir()
    }
    assert not extra, f"{scenario} holds files all_correct does not: {sorted(extra)}"
    return tuple(changed)


def _explain(report: object) -> str:
    from graders.render.summary import report_lines

    return "\n".join(report_lines(report, verbose=True))  # type: ignore[arg-type]
