"""The student kit, run as a student runs it, gives the grader's public results.

Parity: on a scenario submission, the kit's visible tests have the same ids, statuses and
points as the full grader's on the quick profile (their messages may differ where they quote
the reference's values: the kit's inputs are fixed, the grader's drawn per submission). The
grader's side is conftest's ``graded_scenario``, the very run the scenario tests check, so a
session running both grades each scenario once. The kit runs in a Python that sees nothing of
the checkout (``kit_support``), in the terminal and from a notebook cell.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from kit_support import kit_python, kit_report, offline_prefix, public_results, run_kit
from test_scenarios import changed_questions

from graders.kit.build import plan_kit
from graders.models import GradeReport
from graders.render.json_result import to_plain

SUBMISSIONS = Path(__file__).resolve().parents[1] / "fixtures" / "submissions"
SCENARIOS = sorted(tomllib.loads((SUBMISSIONS / "expected.toml").read_text(encoding="utf-8")))
KIT_QUESTIONS = tuple(q.id for q in plan_kit().questions)
CHEAP = ("q1_box_ignores_delta", "q1_step_ge", "q2_relu_factor_one")
"""Q1 and Q2 scenarios (seconds each): partial credit per box case, a wrong starter helper, and
half of a test lost to a constant factor."""
assert set(CHEAP) <= set(SCENARIOS), "a cheap parity scenario is not in expected.toml"

Graded = Callable[[str, tuple[str, ...]], GradeReport]


def assert_parity(scenario: str, kit: Path, graded_scenario: Graded, out: Path) -> None:
    changed = changed_questions(scenario)
    checked = tuple(q for q in changed if q in KIT_QUESTIONS)
    if not checked:
        pytest.skip(f"{scenario} changes only questions the kit does not check ({changed})")
    grader = public_results(to_plain(graded_scenario(scenario, changed)), checked)
    student = public_results(kit_report(kit, SUBMISSIONS / scenario, checked, out), checked)
    assert grader, f"{scenario}: the grader has no public results for {checked}"
    assert student == grader


@pytest.mark.kernel
@pytest.mark.parametrize(
    "scenario", [s if s in CHEAP else pytest.param(s, marks=pytest.mark.slow) for s in SCENARIOS]
)
def test_the_kit_scores_every_scenario_as_the_grader_does(
    scenario: str, student_kit: Path, graded_scenario: Graded, tmp_path: Path
) -> None:
    """The CHEAP scenarios in the fast loop, every one in the full run (each once)."""
    assert_parity(scenario, student_kit, graded_scenario, tmp_path)


@pytest.mark.kernel
def test_offline_the_kit_prints_the_public_tests_and_counts_the_hidden_ones(
    student_kit: Path, tmp_path: Path
) -> None:
    """Without any network (a namespace of its own), as a student's machine after install."""
    if offline_prefix() is None:
        pytest.skip("this machine cannot run a process without network (no unshare -n)")
    notebook = SUBMISSIONS / "q1_seed_box_boundary" / "q1_step_network.ipynb"
    done = run_kit(student_kit, str(notebook), "--out", str(tmp_path), offline=True)
    assert done.returncode == 0, done.stderr  # failing tests are feedback, not an error
    out = done.stdout
    assert "Self-check of q1_step_network" in out and "[FAIL] The box is open" in out
    assert "+ 1 hidden test worth 2.5 points" in out
    assert "q2 " not in out  # one notebook: only its question
    assert "approx_converges" not in out and "converges" not in out
    assert "does not check" not in out  # one notebook: nothing to say about other questions
    summary = (tmp_path / "q1_step_network" / "selfcheck.md").read_text(encoding="utf-8")
    assert summary.startswith("# Self-check of q1") and "FAIL" in summary
    result = json.loads((tmp_path / "q1_step_network" / "result.json").read_text())
    assert result["run"]["confinement"]["mode"] == "unconfined"


@pytest.mark.kernel
def test_a_folder_of_notebooks_is_checked_question_by_question(
    student_kit: Path, tmp_path: Path
) -> None:
    """Every question is in the kit (Q3 included, which trains a network and reads the kit's
    Fashion-MNIST slice): a folder of blank notebooks gets each one's public points, and no
    word of a question left out."""
    assert set(KIT_QUESTIONS) == {"q1", "q2", "q3", "q4"}
    for notebook in ("q2_initialization.ipynb", "q3_fashion_mlp.ipynb"):
        (tmp_path / notebook).write_bytes((SUBMISSIONS / "blank" / notebook).read_bytes())
    done = run_kit(student_kit, str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "does not check" not in done.stdout
    assert "q2 Choosing the scale of initialization: 0 / 5 public points" in done.stdout
    assert "q3 FashionMNIST multilayer perceptron: 0 / 10 public points" in done.stdout


def test_a_question_left_out_of_the_kit_is_named_in_its_readme(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A question added to the grader without a reference side yet stays out of the kit, and
    the students' README says the grader still checks it."""
    from graders.kit import build

    monkeypatch.setattr(build, "has_reference_side", lambda package: "q3" not in package)
    plan = build.plan_kit()
    assert [q.id for q in plan.left_out] == ["q3"]
    assert not any("q3_fashion_mlp" in f for f in plan.files)
    readme = build.student_readme(plan)
    assert "This kit does not check q3 (FashionMNIST multilayer perceptron) yet" in readme
    assert "q3_fashion_mlp.ipynb" not in readme


def test_the_kit_exits_non_zero_only_when_it_cannot_check(student_kit: Path) -> None:
    done = run_kit(student_kit, str(SUBMISSIONS / "blank"), "--question", "q9")
    assert done.returncode != 0
    assert "unknown question q9; choose from q1, q2, q3, q4" in done.stderr


@pytest.mark.kernel
def test_check_me_in_a_notebook_cell_runs_the_kit(student_kit: Path, tmp_path: Path) -> None:
    """The one-liner in a real Jupyter kernel of the kit's Python: it checks the saved notebook
    in a process of its own and echoes the result into the cell's output."""
    notebook = tmp_path / "q2_initialization.ipynb"
    notebook.write_bytes((SUBMISSIONS / "all_correct" / notebook.name).read_bytes())
    one_liner = f"from graders.selfcheck import check_me; check_me('q2', {str(notebook)!r})"
    code = f"""
import nbclient, nbformat
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell({one_liner!r})])
nbclient.NotebookClient(nb, timeout=600, kernel_name="python3").execute()
print("".join(o.get("text", "") for o in nb.cells[0].outputs))
"""
    done = kit_python(student_kit, code, timeout=600)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "as last saved" in out and "Self-check of q2_initialization" in out
    assert "[PASS] (c) ReLU factor 2" in out and "+ 1 hidden test worth 1 point" in out
    assert "could not run" not in out
