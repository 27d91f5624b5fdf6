"""How Q3's reference is trained: for its calibrated threshold (``dlgrade calibrate``) and for
its part of ``dlgrade reference`` (the seed notebook's accuracy, reproduced on the real data)."""

from __future__ import annotations

from pathlib import Path

from graders.questions.api import Budget, ReferenceReport, ThresholdTarget
from reference.datasets import load_scaled

REFERENCE_EPOCHS = 25
"""The seed notebook's epochs: what ``dlgrade reference`` trains by default."""


def torch_device(requested: str) -> str:
    if requested.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return "cpu"
    return requested


def device_words(budget: Budget) -> str:
    actual = torch_device(budget.device)
    if actual != budget.device:
        return f"{actual} (no GPU available when calibrated)"
    return actual


def train_for_threshold(budget: Budget, data_root: Path, seed: int) -> tuple[float, float]:
    from reference import q3_mlp  # deferred, as torch is: grading other questions skips it

    config = q3_mlp.TrainConfig(
        epochs=budget.epochs,
        train_limit=budget.train_limit,
        test_limit=budget.test_limit,
        seed=seed,
        threads=1,
        device=torch_device(budget.device),
    )
    x, y = load_scaled(data_root, "FashionMNIST", train=False, limit=budget.test_limit)
    _, untrained, _ = q3_mlp.evaluate(q3_mlp.build_model(seed), x, y)
    return untrained, q3_mlp.train(config, data_root).final_accuracy


THRESHOLDS = (
    ThresholdTarget(
        key="q3.min_test_accuracy",
        dataset="FashionMNIST",
        first_seed=0,
        train=train_for_threshold,
        device_words=device_words,
    ),
)


def reference_report(data_root: Path, epochs: int | None) -> ReferenceReport:
    """The reference trained with seed 0 for the seed notebook's epochs (or ``epochs``)."""
    from reference import q3_mlp  # deferred: see train_for_threshold

    epochs = epochs or REFERENCE_EPOCHS
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
    return ReferenceReport(lines=tuple(lines))
