"""A short terminal summary of one graded submission: scores, what failed and why, where to look."""

from __future__ import annotations

from graders.models import CheckStatus, GradeReport, ProbeStatus, QuestionRun, RunStatus

_RUN = {
    RunStatus.OK: "ran cleanly",
    RunStatus.CELL_ERRORS: "cell errors",
    RunStatus.TIMEOUT: "TIMED OUT",
    RunStatus.KERNEL_DIED: "KERNEL DIED",
    RunStatus.NOT_RUN: "not run",
}
_MARK = {
    CheckStatus.PASSED: "PASS",
    CheckStatus.PARTIAL: "PART",
    CheckStatus.FAILED: "FAIL",
    CheckStatus.ERROR: "ERR ",
}


def _run_lines(q: QuestionRun) -> list[str]:
    ex, pr = q.execution, q.probe
    nb = f"{q.notebook.original_name}, " if q.notebook else ""
    cells = f" ({ex.cells_run}/{ex.cells_total} cells)" if ex.status is not RunStatus.NOT_RUN else ""
    lines = [f"    {nb}{_RUN[ex.status]}{cells}, {ex.seconds:.1f} s"]
    if ex.message:
        lines.append(f"    {ex.message}")
    if pr.status is ProbeStatus.FAILED and pr.message and pr.message != ex.message:
        lines.append(f"    probe: {pr.message}")
    return lines


def report_lines(report: GradeReport) -> list[str]:
    run = report.run
    sub = run.submission
    lines = [
        f"{sub.name}: {report.score:g} / {report.max_score:g} points "
        f"(+ {report.manual_max_score:g} for free-response answers, graded by a TA)",
        f"  profile {run.profile.name}: {run.profile.reason}; {run.seconds:.1f} s",
    ]
    for problem in sub.problems:
        where = f"{problem.path}: " if problem.path else ""
        lines.append(f"  ! {where}{problem.message}")
    for qr, qrun in zip(report.questions, run.questions, strict=True):
        lines.append(f"  {qr.question} {qr.title}: {qr.score:g} / {qr.max_score:g}")
        lines += _run_lines(qrun)
        for c in qr.checks:
            lines.append(f"    [{_MARK[c.status]}] {c.title} ({c.score:g}/{c.max_score:g})")
            if c.status is not CheckStatus.PASSED:
                lines.append(f"           {c.message}")
                if c.hint:
                    lines.append(f"           hint: {c.hint}")
    lines.append(f"  results: {run.output_dir}/result.json")
    return lines


def print_report_summary(report: GradeReport) -> None:
    print("\n".join(report_lines(report)), flush=True)
