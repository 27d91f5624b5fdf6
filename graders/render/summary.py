"""A short terminal summary of one graded submission: what ran, what failed, where results are."""

from __future__ import annotations

from graders.models import ProbeStatus, RunStatus, SubmissionRun

_MARK = {
    RunStatus.OK: "ok",
    RunStatus.CELL_ERRORS: "errors",
    RunStatus.TIMEOUT: "TIMEOUT",
    RunStatus.KERNEL_DIED: "DIED",
    RunStatus.NOT_RUN: "not run",
}


def run_summary_lines(result: SubmissionRun) -> list[str]:
    sub = result.submission
    lines = [
        f"{sub.name}: profile {result.profile.name} ({result.profile.reason}); "
        f"{result.seconds:.1f} s; results in {result.output_dir}/result.json"
    ]
    for problem in sub.problems:
        where = f"{problem.path}: " if problem.path else ""
        lines.append(f"  ! {where}{problem.message}")
    for q in result.questions:
        ex, pr = q.execution, q.probe
        nb = f" [{q.notebook.original_name}]" if q.notebook else ""
        cells = (
            f"{ex.cells_run}/{ex.cells_total} cells" if ex.status is not RunStatus.NOT_RUN else ""
        )
        probe = f"probe {pr.status.value}, {len(pr.artifacts)} artifacts"
        lines.append(
            f"  {q.question} {q.title}{nb}: {_MARK[ex.status]} {cells}; {probe}; {ex.seconds:.1f} s"
        )
        if ex.message:
            lines.append(f"      {ex.message}")
        if (
            pr.status in (ProbeStatus.FAILED, ProbeStatus.NOT_RUN)
            and pr.message
            and pr.message != ex.message
        ):
            lines.append(f"      probe: {pr.message}")
        for err in pr.errors[:5]:
            lines.append(f"      probe {err.step}: {err.message}")
        if len(pr.errors) > 5:
            lines.append(f"      ... and {len(pr.errors) - 5} more probe messages in result.json")
    return lines


def print_run_summary(result: SubmissionRun) -> None:
    print("\n".join(run_summary_lines(result)), flush=True)
