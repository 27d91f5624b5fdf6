"""A graded report built by hand, with the artifacts its charts read, for the fast render tests.

It holds what the renderers must get right and a real run rarely shows at once: a hidden test,
a grader error, a load problem, a question without a notebook, a cell error with a traceback,
student text with HTML and Markdown syntax (and a formula) in it, and Q3 artifacts where the
notebook's own probabilities disagree with the grader's. Scores are totalled by the grader's
own ``grade_report``.

It is also the committed input of the byte-exact goldens (``test_render_goldens``), so its
numbers are chosen like a real run's: unrounded floats as training leaves them (17 digits, a
tiny one, a large one, a NaN), and no value on a rounding tie (a time of ``1.25`` s would show
``1.2`` or ``1.3`` depending on its last bit), so the pages cannot depend on the machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from graders.models import (
    GRADER_PROBABILITIES,
    Artifact,
    CellError,
    CheckResult,
    CheckStatus,
    Confinement,
    ExecutionRecord,
    GradeReport,
    LoadProblem,
    ManualItem,
    MatchedBy,
    MissingNotebook,
    NotebookRef,
    ProbeRecord,
    ProbeStatus,
    ProbeStepError,
    ProfileChoice,
    QuestionResult,
    QuestionRun,
    RunStatus,
    SandboxMode,
    Submission,
    SubmissionRun,
    Visibility,
)
from graders.score import grade_report

HOSTILE = "<script>alert('x')</script> | `code` **bold**"
"""Student-controlled text: must stay text in every format."""
FORMULA = r"$\sigma^2 = \frac{2}{n_{in} + n_{out}}$"
"""LaTeX in an answer: MathML on the HTML pages, as typed in the Markdown one."""
TRAIN = [2.0, 1.2, float("nan"), 0.7]
TEST = [2.1, 1.4, 1.1, 0.9]
INDICES = [3, 7, 5000]
"""The last index is outside the 10-image test set the artifacts hold."""
MEASURED = {
    "train_loss": [2.3027102574706078, 1.6275348290801048],
    "measured_loss": 1.5777825927734375,
    "moments": {"relu": [1.0161337662017789, 0.9886327944033233], "tiny": 3.0517578125e-07},
    "weights_seen": 235146.00000000003,
    "shape": [784, 256],
    "converged": True,
    "note": None,
}
"""Details as a real check leaves them: what the renderers must round, not dump."""


def _check(qid: str, key: str, score: float, max_score: float, **kw: object) -> CheckResult:
    status = kw.pop("status", None) or (
        CheckStatus.PASSED
        if score >= max_score
        else CheckStatus.PARTIAL
        if score > 0
        else CheckStatus.FAILED
    )
    return CheckResult(
        question=qid,
        id=f"{qid}.{key}",
        title=str(kw.pop("title", f"{key} works")),
        score=score,
        max_score=max_score,
        status=status,  # type: ignore[arg-type]
        visibility=kw.pop("visibility", Visibility.VISIBLE),  # type: ignore[arg-type]
        message=str(kw.pop("message", f"{key}: as expected")),
        hint=str(kw.pop("hint", "")),
        details=dict(kw.pop("details", {})),  # type: ignore[call-overload]
    )


def write_q3_artifacts(result_dir: Path) -> tuple[Artifact, ...]:
    """The files Q3's probe leaves: histories, sampled indices and the notebook's probabilities
    (all 0.1, unlike the grader's in the check's details, so a chart drawn from the wrong one is
    caught)."""
    folder = result_dir / "artifacts" / "q3"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "histories.json").write_text(
        json.dumps({"train_loss_history": TRAIN, "test_loss_history": TEST}), encoding="utf-8"
    )
    (folder / "samples.json").write_text(json.dumps({"random_indices": INDICES}), encoding="utf-8")
    np.savez(folder / "sample_probabilities.npz", probabilities=np.full((3, 10), 0.1))
    names = ("histories.json", "samples.json", "sample_probabilities.npz")
    return tuple(
        Artifact(
            name=n.split(".")[0],
            path=f"artifacts/q3/{n}",
            kind=n.split(".")[1],
            bytes=(folder / n).stat().st_size,
        )
        for n in names
    )


def _q1_run(root: Path) -> QuestionRun:
    ref = NotebookRef(
        question="q1", path=root / "q1.ipynb", original_name="q1.ipynb", matched_by=MatchedBy.NAME
    )
    return QuestionRun(
        question="q1",
        title="Step-activation networks",
        notebook=ref,
        execution=ExecutionRecord(
            question="q1", status=RunStatus.OK, cells_total=5, cells_run=5, seconds=1.3
        ),
        probe=ProbeRecord(question="q1", status=ProbeStatus.OK, seconds=0.5),
    )


MISSING_Q2 = MissingNotebook(
    question="q2",
    expected="q2_initialization.ipynb",
    found=("q1.ipynb", "mlp.ipynb"),
    message="no notebook for q2: expected q2_initialization.ipynb; found: q1.ipynb, mlp.ipynb",
)
"""A question the student did not submit: one line in every format, its points lost."""


def _q2_run() -> QuestionRun:
    message = MISSING_Q2.message
    return QuestionRun(
        question="q2",
        title="Choosing the scale of initialization",
        notebook=None,
        execution=ExecutionRecord(question="q2", status=RunStatus.NOT_RUN, message=message),
        probe=ProbeRecord(question="q2", status=ProbeStatus.NOT_RUN, message=message),
        missing=MISSING_Q2,
    )


def _q2_result() -> QuestionResult:
    """As ``score.missing_check`` leaves it: every test failed with the one line, not run."""
    checks = (
        _check("q2", "forward_rule", 0.0, 1.0, message=MISSING_Q2.message),
        _check(
            "q2",
            "monte_carlo",
            0.0,
            1.0,
            visibility=Visibility.HIDDEN,
            message=MISSING_Q2.message,
        ),
    )
    return QuestionResult(
        question="q2",
        title="Choosing the scale of initialization",
        score=0.0,
        max_score=2.0,
        checks=checks,
    )


def _q3_run(root: Path, result_dir: Path) -> QuestionRun:
    ref = NotebookRef(
        question="q3",
        path=root / "mlp.ipynb",
        original_name="mlp.ipynb",
        matched_by=MatchedBy.CONTENT,
    )
    error = CellError(
        cell_index=4,
        ename="ValueError",
        evalue="shapes (64,784) and (10,) <mismatch>",
        source_excerpt="x = model(batch)\n```\ny = x @ w",
        traceback="Traceback (most recent call last):\n  ValueError: shapes <mismatch>",
    )
    return QuestionRun(
        question="q3",
        title="FashionMNIST multilayer perceptron",
        notebook=ref,
        execution=ExecutionRecord(
            question="q3",
            status=RunStatus.CELL_ERRORS,
            cells_total=9,
            cells_run=9,
            cell_errors=(error,),
            seconds=12.5,
            message="Cell 4 raised ValueError: shapes (64,784) and (10,) <mismatch>",
            parameters={
                "EPOCHS": 4,
                "LEARNING_RATE": 0.01,
                "DEVICE": "cpu",
                "DATA_ROOT": str(root / "data"),
            },
        ),
        probe=ProbeRecord(
            question="q3",
            status=ProbeStatus.PARTIAL,
            artifacts=write_q3_artifacts(result_dir),
            errors=(ProbeStepError(step="model", kind="missing_name", message="no `model`"),),
            seconds=2.0,
        ),
    )


def build_report(result_dir: Path, *, root: Path | None = None) -> GradeReport:
    """The report, with its Q3 artifacts written under ``result_dir``."""
    root = root or result_dir / "submission"
    logits = np.random.default_rng(3).normal(size=(10, 10)) * 3.0
    drawn = [i for i in INDICES if i < len(logits)]  # 5000 lies outside this test set
    grader = np.exp(logits[drawn]) / np.exp(logits[drawn]).sum(axis=1, keepdims=True)
    q1 = QuestionResult(
        question="q1",
        title="Step-activation networks",
        score=1.5,
        max_score=4.0,
        checks=(
            _check("q1", "box_interior", 1.5, 1.5, message="inside the box: h"),
            _check(
                "q1",
                "approx_converges",
                0.0,
                2.5,
                visibility=Visibility.HIDDEN,
                title="Secret convergence test",
                message="HIDDEN-MESSAGE: slope -0.2",
                hint="HIDDEN-HINT",
                details={"slope": -0.2, "expected": "<= -0.8", "found": -0.19999999999999998},
            ),
        ),
    )
    q3 = QuestionResult(
        question="q3",
        title="FashionMNIST multilayer perceptron",
        score=0.5,
        max_score=4.0,
        checks=(
            _check(
                "q3",
                "loss_histories",
                0.5,
                1.0,
                message=f"your history says {HOSTILE}",
                hint="record one loss per epoch",
                details={"epochs": 4, "z": [1, 2], **MEASURED},
            ),
            _check(
                "q3",
                "test_accuracy",
                0.0,
                2.0,
                status=CheckStatus.ERROR,
                message="The grader could not evaluate this test (KeyError: 'x').",
                details={"traceback": "Traceback ...\nKeyError: 'x'"},
            ),
            _check(
                "q3",
                "sample_probabilities",
                0.0,
                1.0,
                message="2 of 3 sampled images have probabilities that differ from the grader's",
                details={GRADER_PROBABILITIES: {"indices": drawn, "rows": grader.tolist()}},
            ),
        ),
        manual=(
            ManualItem(
                question="q3",
                id="q3_observations",
                title="What the sampled predictions show",
                max_score=1.0,
                answered=True,
                text=f"My answer: {FORMULA}\n\n{HOSTILE}\n```\nnot a fence\n```",
                points=0.5,
                comment=f"Half right: name the classes it confuses.\n{HOSTILE}",
            ),
            ManualItem(
                question="q3",
                id="q3_test_vs_train",
                title="Why test loss is above training loss",
                max_score=1.0,
                answered=False,
                text="",
            ),
        ),
    )
    submission = Submission(
        name="student_<b>",
        source=root,
        root=root,
        problems=(LoadProblem(message="notes.txt is not a notebook", path="notes.txt"),),
        found=("q1.ipynb", "mlp.ipynb"),
    )
    run = SubmissionRun(
        submission=submission,
        profile=ProfileChoice(name="cpu", reason="no CUDA device is visible"),
        questions=(_q1_run(root), _q2_run(), _q3_run(root, result_dir)),
        grader_version="0.1.0",
        started_at="2026-01-02T03:04:05+00:00",
        seconds=42.3,
        output_dir=result_dir,
        confinement=Confinement(
            mode=SandboxMode.BUBBLEWRAP,
            reason="bubblewrap (chosen automatically): each kernel in its own namespaces",
            limits=("memory: 6144 MB for the kernel and all its children (a cgroup)",),
        ),
    )
    return grade_report(run, (q1, _q2_result(), q3))
