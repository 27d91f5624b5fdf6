"""Turn a raw kernel run into the typed ``ExecutionRecord`` the later steps read.

Cell numbers are translated back to the student's own notebook (injected grader cells are not
counted), the executed notebook is kept with its capped outputs, and one sentence says what
went wrong in words a student can act on.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from graders.execute import KernelRun
from graders.inject import PreparedNotebook
from graders.models import CellError, ExecutionRecord, FreeResponse, KernelStatus, RunStatus

PLACEHOLDER = "YOUR ANSWER HERE"
_ANSWER_HEADING = re.compile(r"\s*\*\*\s*Your answer\s*\(\s*([A-Za-z0-9_]+)\s*\)\s*:?\s*\*\*", re.I)
"""The template's heading of an answer cell, "**Your answer (q1a):**"."""
MAX_FREE_RESPONSE_CHARS = 20_000
"""A free-response answer kept for the TA: an essay fits, a pasted megabyte does not."""
_EXCERPT_LINES = 6


def _excerpt(source: str) -> str:
    lines = source.splitlines()
    text = "\n".join(lines[:_EXCERPT_LINES])
    return text + ("\n..." if len(lines) > _EXCERPT_LINES else "")


def _status(run: KernelRun, errors: list[CellError]) -> RunStatus:
    if run.kernel_died_at is not None:
        return RunStatus.KERNEL_DIED
    if run.total_timed_out:
        return RunStatus.TIMEOUT
    return RunStatus.CELL_ERRORS if errors else RunStatus.OK


def _message(
    status: RunStatus, run: KernelRun, errors: list[CellError], origin: tuple[int | None, ...]
) -> str:
    if status is RunStatus.KERNEL_DIED:
        at = run.kernel_died_at
        where = (
            f"while running cell {origin[at]}"
            if at is not None and 0 <= at < len(origin) and origin[at] is not None
            else "outside the notebook's own cells"
        )
        if run.memory_killed:
            return (
                f"The kernel died {where}: the kernel and its child processes used more "
                "memory than the limit allows; cells after it did not run."
            )
        return (
            f"The kernel died {where} (out of memory, os._exit/exit(), or a crash); "
            "cells after it did not run."
        )
    if status is RunStatus.TIMEOUT:
        return "The notebook ran out of its total time; the remaining cells were not run."
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"Cell {first.cell_index} raised {first.ename}: {first.evalue[:200]}{more}"
    return ""


def execution_record(
    question: str, run: KernelRun, prepared: PreparedNotebook, result_dir: Path, *, threads: int
) -> ExecutionRecord:
    origin = prepared.origin
    errors: list[CellError] = []
    timed_out: list[int] = []
    run_count = 0
    for outcome in run.cells:
        student_index = origin[outcome.position]
        if outcome.status is not KernelStatus.NOT_RUN and student_index is not None:
            run_count += 1
        if outcome.status is KernelStatus.TIMEOUT and student_index is not None:
            timed_out.append(student_index)
        if outcome.status in (KernelStatus.ERROR, KernelStatus.TIMEOUT):
            cell = run.notebook.cells[outcome.position]
            errors.append(
                CellError(
                    cell_index=student_index if student_index is not None else -1,
                    ename=outcome.ename,
                    evalue=outcome.evalue,
                    source_excerpt=_excerpt(cell.source),
                    traceback=outcome.traceback,
                )
            )
    status = _status(run, errors)
    executed = _save_executed(question, run.notebook, result_dir)
    return ExecutionRecord(
        question=question,
        status=status,
        cells_total=sum(
            1
            for i, c in zip(origin, run.notebook.cells, strict=True)
            if i is not None and c.cell_type == "code"
        ),
        cells_run=run_count,
        cell_errors=tuple(errors),
        timed_out_cells=tuple(timed_out),
        seconds=round(run.seconds, 3),
        output_truncated=run.output_truncated,
        message=_message(status, run, errors, origin),
        executed_notebook=executed,
        parameters=dict(prepared.parameters),
        threads=threads,
        notices=_notices(prepared),
    )


def _notices(prepared: PreparedNotebook) -> tuple[str, ...]:
    if prepared.parameters_cell is not None or not prepared.parameters:
        return ()
    names = ", ".join(sorted(prepared.parameters))
    return (
        "The notebook has no cell tagged `parameters`, so the grader could not set its budget: "
        f"it set {names} before the notebook's first cell and the notebook ran as written "
        "(its own values of those names won), within the profile's time limits.",
    )


def _save_executed(question: str, nb: NotebookNode, result_dir: Path) -> str:
    path = result_dir / "executed" / f"{question}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return str(path.relative_to(result_dir))


def _answer_id(cell: NotebookNode, ids: tuple[str, ...]) -> str | None:
    """Which free-response question a Markdown cell answers: its tag and id, as the template
    made it, else the "**Your answer (q1a):**" heading the template asks students to keep (a
    cell re-created, pasted from another notebook, or saved by an editor that drops cell
    metadata lost its tag, not its answer)."""
    if cell.cell_type != "markdown":
        return None
    meta = cell.get("metadata", {})
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    info = meta.get("dlgrader") if isinstance(meta, dict) else None  # students edit metadata
    rid = info.get("id") if isinstance(info, dict) else None
    if isinstance(tags, list) and "free_response" in tags and isinstance(rid, str):
        return rid
    heading = _ANSWER_HEADING.search(str(cell.source))
    if heading is not None:
        wanted = {i.lower(): i for i in ids}
        return wanted.get(heading.group(1).lower())
    return None


def _is_answered(text: str) -> bool:
    body = _ANSWER_HEADING.sub("", text)  # an answer on the heading's own line still counts
    return bool(body.strip()) and PLACEHOLDER not in body


def free_responses(nb: NotebookNode, ids: tuple[str, ...]) -> tuple[FreeResponse, ...]:
    """Collect the free-response cells for manual grading; a missing one is unanswered.

    Every cell that answers a question counts: a copy of the answer cell left behind with the
    placeholder does not hide the answer, and two answered copies are both shown to the TA."""
    found: dict[str, list[str]] = {}
    for cell in nb.cells:
        rid = _answer_id(cell, ids)
        if rid is not None:
            found.setdefault(rid, []).append(str(cell.source))
    out = []
    for rid in ids:
        texts = found.get(rid, [])
        answered = [t for t in texts if _is_answered(t)]
        if len(answered) > 1:
            text = "\n\n".join(
                f"[dlgrader: answer cell {n} of {len(answered)}]\n\n{t}"
                for n, t in enumerate(answered, 1)
            )
        else:
            text = answered[0] if answered else (texts[0] if texts else "")
        if len(text) > MAX_FREE_RESPONSE_CHARS:
            text = text[:MAX_FREE_RESPONSE_CHARS] + "\n\n[dlgrader: the rest was cut]"
        out.append(FreeResponse(id=rid, text=text, answered=bool(answered)))
    return tuple(out)
