"""Q3's ``q3.loss_plot``: the executed notebook shows a figure of the loss curves.

A figure cannot be read back as numbers, so the check asks only that a student cell which uses
the loss histories (or talks about the loss) drew one; when none did, it says whether the
plotting cell raised or ran without showing its figure.
"""

from __future__ import annotations

import re

from nbformat import NotebookNode

from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q3_fashion_mlp.checks.shared import HISTORY_NAMES, why


def _student_code_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [
        c
        for c in nb.cells
        if c.cell_type == "code" and "dlgrader-injected" not in c.metadata.get("tags", [])
    ]


def _has_image(cell: NotebookNode) -> bool:
    return any(
        "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
        for out in cell.get("outputs", [])
    )


def _cell_error(cell: NotebookNode) -> str:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {str(out.get('evalue', ''))[:200]}"
    return ""


@check("q3.loss_plot", "Plot of the train and test loss curves")
def loss_plot(ctx: CheckContext) -> Outcome:
    nb = ctx.executed_notebook()
    if nb is None:
        return Outcome.failed(f"No executed notebook to look at: {why(ctx, 'histories')}")
    cells = _student_code_cells(nb)
    uses_history = [c for c in cells if any(n in c.source for n in HISTORY_NAMES)]
    if any(_has_image(c) for c in uses_history):
        return Outcome.passed("A cell that uses the loss histories drew a figure.")
    about_loss = [c for c in cells if _has_image(c) and re.search(r"loss", c.source, re.I)]
    if about_loss:
        return Outcome.passed("A cell about the loss drew a figure.")
    plotting = [c for c in uses_history if re.search(r"\bplt\b|\.plot\(|matplotlib", c.source)]
    if plotting:
        error = _cell_error(plotting[0])
        found = (
            f"the cell that plots the histories raised {error}"
            if error
            else "the cell that plots the histories ran but showed no figure"
        )
        return Outcome.failed(
            f"No loss-curve figure in the executed notebook: {found}.",
            hint="Plot train_loss_history and test_loss_history against the epoch and call "
            "plt.show() (do not close or only save the figure).",
        )
    return Outcome.failed(
        "No loss-curve figure in the executed notebook: no cell plots train_loss_history or "
        "test_loss_history.",
        hint="Add a cell that plots both histories against the epoch with axis labels and a "
        "legend, and shows it with plt.show().",
    )
