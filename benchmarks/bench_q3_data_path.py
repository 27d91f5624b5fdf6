"""Q3's data path: one training epoch the course's way, with torchvision's items and with the
grader's tensor path (``graders/kernel/compat.py``), beside the preloaded floor.

The course trains from ``DataLoader(FashionMNIST(transform=ToTensor()), batch_size=64,
shuffle=True)``: torchvision makes every item a PIL image and ``ToTensor`` makes it a tensor
again. The grader's kernels skip that round trip (same values, tested in
``tests/test_compat.py``). Each repeat runs the three variants one after the other on the same
model and optimizer settings, one thread, so a noisy neighbour slows all three alike; the medians
and the ratios to the floor (the same SGD on one preloaded tensor) are printed. The target
(docs/benchmarks.md): the course's loop at most 2x the floor.

    python benchmarks/bench_q3_data_path.py --repeats 3 [--train-limit 20000]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch.utils.data import DataLoader, Subset

from graders.data import default_data_root
from reference import q3_mlp

COMPAT = Path(__file__).resolve().parents[1] / "graders" / "kernel" / "compat.py"


def _compat_fast_items() -> Callable[[type], None]:
    """The kernel's own function, loaded from its source as the kernel does (never imported)."""
    spec = importlib.util.spec_from_file_location("dlgrade_kernel_compat", COMPAT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fast: Callable[[type], None] = module._fast_items
    return fast


class TensorPathFashionMNIST(torchvision.datasets.FashionMNIST):
    """FashionMNIST with the kernel's tensor path (a subclass: torchvision's class untouched)."""

    @property
    def raw_folder(self) -> str:  # torchvision names the folder after the class
        return str(Path(self.root) / "FashionMNIST" / "raw")


def _epoch(loader: DataLoader[tuple[torch.Tensor, int]], seed: int) -> float:
    model = q3_mlp.build_model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    started = time.perf_counter()
    for images, labels in loader:
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
    return time.perf_counter() - started


def _floor(x: torch.Tensor, y: torch.Tensor, seed: int) -> float:
    model = q3_mlp.build_model(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for idx in torch.split(torch.randperm(len(y), generator=generator), 64):
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=None, help="first N images only")
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = args.data_root or default_data_root()
    _compat_fast_items()(TensorPathFashionMNIST)
    to_tensor = torchvision.transforms.ToTensor()
    plain = torchvision.datasets.FashionMNIST(root, train=True, transform=to_tensor)
    fast = TensorPathFashionMNIST(root, train=True, transform=to_tensor)
    n = min(args.train_limit or len(plain), len(plain))
    keep = list(range(n))
    x = plain.data[:n].unsqueeze(1).float().div(255)
    y = plain.targets[:n]
    times: dict[str, list[float]] = {"torchvision items": [], "tensor path": [], "floor": []}
    for repeat in range(args.repeats):
        generator = torch.Generator().manual_seed(repeat)
        for name, dataset in (("torchvision items", plain), ("tensor path", fast)):
            loader = DataLoader(Subset(dataset, keep), batch_size=64, shuffle=True,
                                generator=generator)  # fmt: skip
            times[name].append(_epoch(loader, repeat))
        times["floor"].append(_floor(x, y, repeat))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    medians = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{platform.processor() or platform.machine()}, 1 thread, {n:,} images, batch 64:")
    for name, value in medians.items():
        print(f"  {name:<18} {value:6.2f} s an epoch  {value / medians['floor']:.2f}x the floor")
    ratio = medians["torchvision items"] / medians["tensor path"]
    print(f"  the tensor path is {ratio:.2f}x faster than torchvision's items")


if __name__ == "__main__":
    main()
