"""``dlgrade reference``: run every reference solution end to end and print one results table.

It is the proof that the reference (what students are compared with) does what the assignment
says, on the real data: the exact box, the 1/n approximation, the variance rules measured by
Monte Carlo, the MLP's accuracy, and the seed's Q4 table reproduced to the digit.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from graders.data import as_data_error, default_data_root
from reference import q1_step, q2_init, q3_mlp, q4_numpy

SEED_Q4_TABLE = ((2.36, 1028), (0.47, 8671), (0.32, 9078), (0.25, 9277))
"""Test loss / correct of the seed's run: before training, then after epochs 1-3."""


def _q1() -> list[str]:
    lines = ["Q1 step networks"]
    for h, delta in ((1.0, 1.0), (-2.5, 0.3), (3.0, 2.0)):
        report = q1_step.boundary_report(q1_step.box_network(h, delta), h, delta)
        lines.append(
            f"  box h={h:<5} delta={delta:<4} f(0)={report.at_zero:g} f(delta)={report.at_delta:g} "
            f"interior max error {report.interior_max_error:.1e}  exact={report.exact}"
        )
    ns = (8, 16, 32, 64, 128)
    errors = [q1_step.sup_error(np.sin, q1_step.box_approximation(np.sin, 2.0, n), 2.0) for n in ns]
    slope = float(np.polyfit(np.log(ns), np.log(errors), 1)[0])
    cells = "  ".join(f"n={n}: {e:.4f}" for n, e in zip(ns, errors, strict=True))
    lines.append(f"  sin on [-2, 2], sup error {cells}  (log-log slope {slope:.2f}, O(1/n) is -1)")
    return lines


def _q2() -> list[str]:
    rng = np.random.default_rng(0)
    lines = ["Q2 initialization (Monte Carlo vs closed form, z = |estimate - formula| / stderr)"]
    n_in, n_out, s2, v2 = 256, 128, 1 / 256, 1.0
    checks = [
        (
            "var(a_j) = n_in s^2 v^2",
            q2_init.mc_activation_variance(n_in, s2, v2, rng=rng),
            q2_init.activation_variance(n_in, s2, v2),
        ),
        (
            "ReLU E[y^2] = n_in s^2 v^2 / 2",
            q2_init.mc_relu_second_moment(n_in, s2, v2, rng=rng),
            q2_init.relu_second_moment(n_in, s2, v2),
        ),
        (
            "backward n_out s^2 g^2",
            q2_init.mc_backward_variance(n_in, n_out, 1 / n_out, 1.0, rng=rng),
            q2_init.gradient_variance(n_out, 1 / n_out, 1.0),
        ),
    ]
    for label, est, expected in checks:
        lines.append(
            f"  {label:<32} measured {est.value:.4f} +- {est.stderr:.4f}  formula {expected:.4f}  "
            f"z={est.z_score(expected):.2f}  agrees={q2_init.agrees(est, expected)}"
        )
    widths = [512] * 21
    deep = q2_init.mc_deep_forward(
        widths, lambda i, _o: q2_init.relu_forward_variance(i), rng=rng, activation="relu"
    )
    lines.append(
        f"  20-layer ReLU stack with s^2 = 2/n_in: second moment layer 1 {deep[0].value:.3f}, "
        f"layer 20 {deep[-1].value:.3f}"
    )
    return lines


def _q3(data_root: Path, epochs: int) -> list[str]:
    config = q3_mlp.TrainConfig(epochs=epochs, seed=0, threads=1)
    lines = [f"Q3 FashionMNIST MLP ({q3_mlp.N_PARAMETERS:,} parameters), {epochs} epochs, seed 0"]

    def progress(epoch: int, record: q3_mlp.EpochRecord) -> None:
        print(
            f"  epoch {epoch + 1:>2}: train loss {record.train_loss:.4f}  test loss "
            f"{record.test_loss:.4f}  test accuracy {record.test_accuracy:.4f}  "
            f"({record.seconds:.1f} s)",
            flush=True,
        )

    result = q3_mlp.train(config, data_root, progress=progress)
    lines.append(
        f"  final test accuracy {result.final_accuracy:.4f} on {result.device} "
        f"(the seed's notebook reached 0.8613 after 25 epochs)"
    )
    return lines


def _q4(data_root: Path, epochs: int) -> tuple[list[str], bool]:
    lines = [f"Q4 numpy backprop on MNIST, {epochs} epochs (seed's table in brackets)"]
    rows = q4_numpy.run(
        data_root,
        epochs=epochs,
        progress=lambda r: print("  " + q4_numpy.format_row(r), flush=True),
    )
    matches = True
    for row, (loss, correct) in zip(rows, SEED_Q4_TABLE, strict=False):
        same = math.isclose(round(row.mean_loss, 2), loss) and row.correct == correct
        matches = matches and same
        label = "before training" if row.epoch == 0 else f"after epoch {row.epoch}"
        lines.append(
            f"  {label:<16} loss {row.mean_loss:.2f} [{loss}]  correct {row.correct} [{correct}]  "
            f"{'ok' if same else 'DIFFERS'}"
        )
    return lines, matches


def run_reference(*, data_root: Path | None, q3_epochs: int, q4_epochs: int) -> int:
    """Print the table; exit status 1 if the Q4 table does not reproduce the seed's."""
    root = data_root or default_data_root()
    started = time.monotonic()
    table = _q1() + _q2()
    with as_data_error():
        table += _q3(root, q3_epochs)
        q4_lines, q4_ok = _q4(root, q4_epochs)
    table += q4_lines
    print("\n" + "=" * 30 + " reference results " + "=" * 30)
    print("\n".join(table))
    print(f"({time.monotonic() - started:.0f} s; data root {root})")
    if q4_epochs == 3 and not q4_ok:
        print("Q4 did not reproduce the seed's table: the reference or the data is wrong")
        return 1
    return 0
