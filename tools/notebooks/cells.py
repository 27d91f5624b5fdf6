"""What a question's notebook module writes its notebook with: cells, the spec, the markers.

Notebooks are JSON that nobody can review in a diff, so every cell lives in a question module
(``q1_step.py`` ...) as a string and the ``.ipynb`` files are build outputs (``builder.py``).
Code cells mark their answers the nbgrader way::

    ### BEGIN SOLUTION
    <the answer>
    ### END SOLUTION

Free-response cells hold a model answer that the template swaps for a placeholder. Cell ids are
fixed strings, so that regenerating gives byte-identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

BEGIN_SOLUTION: Final = "### BEGIN SOLUTION"
END_SOLUTION: Final = "### END SOLUTION"
PARAMETERS_TAG: Final = "parameters"
FREE_RESPONSE_TAG: Final = "free_response"


@dataclass(frozen=True, kw_only=True)
class Cell:
    """One cell before it is split into its template and solution forms."""

    id: str
    """The nbformat 4.5 cell id, fixed so that regeneration is byte-identical."""
    kind: Literal["markdown", "code"]
    source: str
    """Code may contain solution blocks; a free-response cell holds the model answer."""
    tags: tuple[str, ...] = ()
    answer_id: str | None = None
    """Set on free-response cells: the id the grader files the student's answer under."""


@dataclass(frozen=True, kw_only=True)
class NotebookSpec:
    """One question's notebook."""

    filename: str
    question: str
    """"q1" ... "q4": the key the grader's profiles and rubric use."""
    cells: tuple[Cell, ...]


def md(cell_id: str, *parts: str) -> Cell:
    """A markdown cell; several parts become paragraphs (shared instruction blocks)."""
    return Cell(id=cell_id, kind="markdown", source="\n\n".join(p.strip("\n") for p in parts))


def code(cell_id: str, text: str) -> Cell:
    return Cell(id=cell_id, kind="code", source=text.strip("\n"))


def parameters(cell_id: str, text: str) -> Cell:
    return Cell(id=cell_id, kind="code", source=text.strip("\n"), tags=(PARAMETERS_TAG,))


def free_response(answer_id: str, model_answer: str) -> Cell:
    return Cell(
        id=f"{answer_id.replace('_', '-')}-answer",
        kind="markdown",
        source=model_answer.strip("\n"),
        tags=(FREE_RESPONSE_TAG,),
        answer_id=answer_id,
    )
