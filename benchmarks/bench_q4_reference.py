"""Time the Q4 numpy reference: per training epoch, and vectorized vs per-sample evaluation.

Prints the seed's table as the run reproduces it (2.36 / 1028, 0.47 / 8671, 0.32 / 9078,
0.25 / 9277), so a drift in numpy or BLAS that breaks exact reproduction shows up here first.

    python benchmarks/bench_q4_reference.py --data-root data
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from graders.numerics.datasets import load_scaled
from reference import q4_numpy as q4

SEED_TABLE = ((2.36, 1028), (0.47, 8671), (0.32, 9078), (0.25, 9277))
"""The seed notebook's printed table: rounded mean test loss and correct count out of 10,000."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=q4.EPOCHS)
    parser.add_argument("--data-root", default=os.environ.get("DLGRADER_DATA_ROOT", "data"))
    parser.add_argument(
        "--repeats", type=int, default=3, help="evaluations to time (the best is reported)"
    )
    return parser.parse_args(argv)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_evaluation(data_root: str, repeats: int) -> None:
    x, y = load_scaled(data_root, "MNIST", train=False)
    params = q4.init_params()
    fast = q4.evaluate_dataset(params, x, y)
    slow = q4.evaluate_dataset_loop(params, x, y)
    t_fast = best_time(lambda: q4.evaluate_dataset(params, x, y), repeats)
    t_slow = best_time(lambda: q4.evaluate_dataset_loop(params, x, y), repeats)
    print(
        f"evaluation of {len(y)} test images: vectorized {t_fast:.3f} s, "
        f"per-sample {t_slow:.3f} s ({t_slow / t_fast:.0f}x); "
        f"same count: {fast[1] == slow[1]}, loss difference {abs(fast[0] - slow[0]):.1e}"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(
        f"device: cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"numpy {np.__version__})"
    )
    time_evaluation(args.data_root, args.repeats)
    rows = q4.run(
        args.data_root,
        args.epochs,
        progress=lambda r: print(
            f"{q4.format_row(r)}   train {r.train_seconds:5.2f} s  eval {r.eval_seconds:.3f} s",
            flush=True,
        ),
    )
    table = tuple((round(r.mean_loss, 2), r.correct) for r in rows)
    expected = SEED_TABLE[: len(table)]
    trained = [r.train_seconds for r in rows[1:]]
    if trained:
        print(f"mean {sum(trained) / len(trained):.2f} s per training epoch")
    print(
        f"seed table reproduced exactly: {table == expected}"
        + ("" if table == expected else f" (got {table}, seed {expected})")
    )


if __name__ == "__main__":
    main()
