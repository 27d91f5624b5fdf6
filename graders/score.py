"""The score step: check outcomes and the rubric -> QuestionResult -> GradeReport."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from graders.check import run_check
from graders.kernel import CUDA_NOTICE
from graders.models import (
    CheckResult,
    CheckStatus,
    GradeReport,
    ManualItem,
    ManualScore,
    MissingNotebook,
    QuestionResult,
    QuestionRun,
    SubmissionRun,
    Visibility,
)
from graders.questions.api import CheckContext, CheckDef
from graders.render.numbers import number
from graders.rubric import Rubric


def _status(fraction: float, crashed: bool) -> CheckStatus:
    if crashed:
        return CheckStatus.ERROR
    if fraction >= 1.0:
        return CheckStatus.PASSED
    return CheckStatus.PARTIAL if fraction > 0 else CheckStatus.FAILED


def score_check(definition: CheckDef, ctx: CheckContext, rubric: Rubric) -> CheckResult:
    entry = rubric.entry(definition.id)
    outcome, crashed = run_check(definition, ctx)
    return CheckResult(
        question=ctx.run.question,
        id=definition.id,
        title=definition.title,
        score=round(entry.points * outcome.fraction, 3),
        max_score=entry.points,
        status=_status(outcome.fraction, crashed),
        visibility=entry.visibility,
        message=outcome.message,
        hint=outcome.hint,
        details=dict(outcome.details),
    )


def cuda_deduction(run: QuestionRun, rubric: Rubric, earned: float) -> CheckResult | None:
    """The rubric's deduction for hard-coded CUDA run on the CPU, as a test of its own (so
    every report, the gradebook and Gradescope show it); never more than ``earned``."""
    notices = (*run.execution.notices, *run.probe.notices)
    if rubric.cuda_deduction <= 0 or not any(n.startswith(CUDA_NOTICE) for n in notices):
        return None
    points = round(min(rubric.cuda_deduction, max(earned, 0.0)), 3)
    capped = (
        f" ({number(points)} here, what the question earned)"
        if points < rubric.cuda_deduction
        else ""
    )
    return CheckResult(
        question=run.question,
        id=f"{run.question}.cuda_on_cpu",
        title="Runs where no GPU is present",
        score=-points,
        max_score=0.0,
        status=CheckStatus.FAILED,
        visibility=Visibility.VISIBLE,
        message=(
            "This notebook hard-codes CUDA (.cuda(), .to('cuda') or device='cuda'), so it "
            "fails where no GPU is present; the grader ran it on the CPU. The course's rubric "
            f"deducts {number(rubric.cuda_deduction)} point(s) for it{capped}."
        ),
        hint="Pick the device once: DEVICE = torch.device('cuda' if torch.cuda.is_available() "
        "else 'cpu'), then .to(DEVICE).",
    )


def missing_check(definition: CheckDef, missing: MissingNotebook, rubric: Rubric) -> CheckResult:
    """A test of a question without a notebook: not run, its points lost, the one reason."""
    entry = rubric.entry(definition.id)
    return CheckResult(
        question=missing.question,
        id=definition.id,
        title=definition.title,
        score=0.0,
        max_score=entry.points,
        status=CheckStatus.FAILED,
        visibility=entry.visibility,
        message=missing.message,
    )


def score_question(
    checks: tuple[CheckDef, ...], ctx: CheckContext, rubric: Rubric
) -> QuestionResult:
    missing = ctx.run.missing
    if missing is not None:
        results = tuple(missing_check(d, missing, rubric) for d in checks)
    else:
        results = tuple(score_check(d, ctx, rubric) for d in checks)
        deduction = cuda_deduction(ctx.run, rubric, sum(r.score for r in results))
        if deduction is not None:
            results = (*results, deduction)
    answers = {fr.id: fr for fr in ctx.run.free_responses}
    manual = tuple(
        ManualItem(
            question=m.question,
            id=m.id,
            title=m.title,
            max_score=m.points,
            answered=answers[m.id].answered if m.id in answers else False,
            text=answers[m.id].text if m.id in answers else "",
        )
        for m in rubric.manual.get(ctx.run.question, ())
    )
    return QuestionResult(
        question=ctx.run.question,
        title=ctx.run.title,
        score=round(sum(r.score for r in results), 3),
        max_score=sum(r.max_score for r in results),
        checks=results,
        manual=manual,
    )


def grade_report(run: SubmissionRun, questions: tuple[QuestionResult, ...]) -> GradeReport:
    return GradeReport(
        run=run,
        questions=questions,
        score=round(sum(q.score for q in questions), 3),
        max_score=sum(q.max_score for q in questions),
        manual_max_score=sum(m.max_score for q in questions for m in q.manual),
        manual_score=round(
            sum(m.points for q in questions for m in q.manual if m.points is not None), 3
        ),
    )


def with_manual_scores(report: GradeReport, scores: Iterable[ManualScore]) -> GradeReport:
    """``report`` with the TAs' points and comments on its free-response parts, totals again.

    Scores for parts the report does not have are left out (the batch has already told the
    TA about them, by file and line); a part without a score keeps ``points`` None.
    """
    by_part = {(s.question, s.item): s for s in scores}

    def scored(item: ManualItem) -> ManualItem:
        found = by_part.get((item.question, item.id))
        if found is None:
            return item
        return replace(item, points=found.points, comment=found.comment)

    questions = tuple(
        replace(q, manual=tuple(scored(m) for m in q.manual)) for q in report.questions
    )
    return grade_report(report.run, questions)


def merge_reports(base: GradeReport, new: GradeReport) -> GradeReport:
    """``base`` with the questions ``new`` graded replaced by ``new``'s, totals recomputed.

    For regrading one question of a class (a threshold or a check was fixed): the other
    questions keep their stored results instead of being run again. The run's identity
    (submission, profile, version, time) is ``new``'s, since that is what graded last.
    """
    # A dict keeps the base's order, takes new values in place and appends new questions.
    runs = {r.question: r for r in base.run.questions} | {r.question: r for r in new.run.questions}
    results = {q.question: q for q in base.questions} | {q.question: q for q in new.questions}
    ordered = tuple(results[qid] for qid in runs if qid in results)
    return grade_report(replace(new.run, questions=tuple(runs.values())), ordered)
