"""The course-compatibility layer (graders/kernel/compat.py) in a real IPython shell.

The layer patches torch and the import system for the whole process, which is what it does in
a kernel and must not leak into the test process: every case runs in one fresh interpreter
(started once per module), each case with the notices cleared before it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graders.config import FIXTURE_DATA_ROOT
from graders.kernel import CUDA_NOTICE, is_known_notice
from graders.kernel import source as kernel_source

CASES: dict[str, str] = {
    "cuda": (
        "import torch\n"
        "model = torch.nn.Linear(3, 2).cuda()\n"
        "x = torch.zeros(4, 3, device='cuda')\n"
        "y = torch.ones(4, 3).to('cuda:0', non_blocking=True)\n"
        "z = torch.ones(2).to(0)\n"
        "m2 = torch.nn.Linear(3, 2).to(torch.device('cpu'))\n"
        "h = torch.ones(2, dtype=torch.float64).to(torch.float32)\n"
        "RESULT['devices'] = [str(t.device) for t in (model.weight, x, y, z, m2.weight)]\n"
        "RESULT['dtype'] = str(h.dtype)\n"
        "RESULT['out'] = model(x).shape[0]\n"
    ),
    "cpu": (
        "import torch\n"
        "DEVICE = torch.device('cuda' if torch.cuda.is_available() else 'cpu')\n"
        "model = torch.nn.Sequential(torch.nn.Linear(3, 2)).to(DEVICE)\n"
        "x = torch.zeros(4, 3).to(DEVICE, non_blocking=False)\n"
        "RESULT['device'] = str(model(x).device)\n"
    ),
    "keras": (
        "import numpy as np, tensorflow as tf\n"
        "from keras.datasets import fashion_mnist\n"
        "(xm, ym), (xmt, ymt) = tf.keras.datasets.mnist.load_data(path='mnist.npz')\n"
        "(xf, yf), (xft, yft) = fashion_mnist.load_data()\n"
        "import torchvision\n"
        f"root = {str(FIXTURE_DATA_ROOT)!r}\n"
        "tm = torchvision.datasets.MNIST(root, train=True, download=False)\n"
        "tf_ = torchvision.datasets.FashionMNIST(root, train=False, download=False)\n"
        "RESULT['dtype'] = str(xm.dtype)\n"
        "RESULT['shapes'] = [list(a.shape) for a in (xm, ym, xft, yft)]\n"
        "RESULT['mnist_same'] = bool((xm == tm.data.numpy()).all()"
        " and (ym == tm.targets.numpy()).all())\n"
        "RESULT['fashion_same'] = bool((xft == tf_.data.numpy()).all()"
        " and (yft == tf_.targets.numpy()).all())\n"
        "RESULT['differ'] = bool(xm.shape != xf.shape or (xm != xf).any())\n"
    ),
    "tensorflow": "import tensorflow as tf\nmodel = tf.keras.Sequential()\n",
    "tensorflow_layers": "from tensorflow.keras import layers\n",
    "plot_after_tensorflow": (
        "import tensorflow as tf\n"
        "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "(x, y), _ = tf.keras.datasets.mnist.load_data()\n"
        "fig, ax = plt.subplots()\nax.imshow(x[0], cmap='gray')\nax.plot([0, 1], [2, 3])\n"
        "fig.canvas.draw()\nRESULT['drawn'] = True\n"
    ),
    "download": (
        "import torchvision, os\n"
        "ds = torchvision.datasets.FashionMNIST('./data', train=True, download=True)\n"
        "RESULT['n'] = len(ds)\n"
        "RESULT['made'] = os.path.exists('./data/FashionMNIST')\n"
    ),
    "tensor_path": (
        "import numpy as np, torch, torchvision\n"
        "from torch.utils.data import DataLoader, Subset\n"
        "from torchvision import transforms as T\n"
        f"root = {str(FIXTURE_DATA_ROOT)!r}\n"
        "original = torchvision.datasets.mnist.MNIST.__getitem__.__wrapped__\n"
        "def same(a, b):\n"
        "    (xa, ya), (xb, yb) = a, b\n"
        "    if type(xa) is not type(xb) or type(ya) is not type(yb) or ya != yb:\n"
        "        return False\n"
        "    if isinstance(xa, torch.Tensor):\n"
        "        return xa.dtype == xb.dtype and xa.shape == xb.shape and torch.equal(xa, xb)\n"
        "    return bool((np.asarray(xa) == np.asarray(xb)).all())\n"
        "transforms = {\n"
        "    'to_tensor': T.ToTensor(),\n"
        "    'normalize': T.Compose([T.ToTensor(), T.Normalize((0.2860,), (0.3530,))]),\n"
        "    'pil_first': T.Compose([T.CenterCrop(28), T.ToTensor()]),\n"
        "    'none': None,\n"
        "}\n"
        "mismatches, checked = [], 0\n"
        "for cls in (torchvision.datasets.MNIST, torchvision.datasets.FashionMNIST):\n"
        "    for train in (True, False):\n"
        "        for name, tf in transforms.items():\n"
        "            tt = (lambda t: t + 100) if name == 'normalize' else None\n"
        "            ds = cls(root, train=train, download=False, transform=tf,"
        " target_transform=tt)\n"
        "            for i in range(len(ds)):\n"
        "                checked += 1\n"
        "                if not same(ds[i], original(ds, i)):\n"
        "                    mismatches.append((cls.__name__, train, name, i))\n"
        "            if tf is None:\n"
        "                continue\n"
        "            part = Subset(ds, list(range(len(ds) - 1, -1, -3)))\n"
        "            start = 0\n"
        "            for xb, yb in DataLoader(part, batch_size=64):\n"
        "                idx = part.indices[start:start + len(yb)]\n"
        "                start += len(yb)\n"
        "                want = [original(ds, i) for i in idx]\n"
        "                if not (torch.equal(xb, torch.stack([w[0] for w in want]))"
        " and yb.tolist() == [w[1] for w in want]):\n"
        "                    mismatches.append((cls.__name__, train, name, 'batch', start))\n"
        "torch.set_default_dtype(torch.float64)\n"
        "ds = torchvision.datasets.MNIST(root, train=False, download=False,"
        " transform=T.ToTensor())\n"
        "RESULT['float64'] = same(ds[5], original(ds, 5)) and ds[5][0].dtype == torch.float64\n"
        "torch.set_default_dtype(torch.float32)\n"
        "RESULT['mismatches'] = mismatches[:10]\n"
        "RESULT['checked'] = checked\n"
    ),
    "deferred": (  # after every case above: none uses torchvision's models or ops, and the
        # errors' tracebacks of the TensorFlow cases walked sys.modules asking each its __file__
        "import sys, types, torch, torchvision\n"
        "RESULT['before'] = [m in sys.modules for m in ('torch._dynamo', 'torchvision.models',"
        " 'torchvision.ops')]\n"
        "RESULT['lazy'] = [type(m).__name__ for m in (torchvision.models, torchvision.ops)]\n"
        "import torchvision.models as models\n"
        "from torchvision.ops import nms\n"
        "boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])\n"
        "RESULT['nms'] = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist()\n"
        "torch.manual_seed(0)\n"
        "net = models.resnet18(num_classes=10).eval()\n"
        "RESULT['resnet'] = list(net(torch.zeros(1, 3, 32, 32)).shape)\n"
        "RESULT['same'] = models is torchvision.models and 'resnet18' in models.list_models()\n"
        "RESULT['after'] = [type(m) is types.ModuleType for m in (torchvision.models,"
        " torchvision.ops)] + ['torch._dynamo' in sys.modules]\n"
    ),
    "pip": "!pip install torch\nRESULT['after'] = 1\n",
    "python_m_pip": "!python -m pip install -q numpy\nRESULT['after'] = 1\n",
    "pip_magic": "%pip install tensorflow\nRESULT['after'] = 1\n",
}

_PROGRAM = """
import json, os, sys, tempfile
from IPython.core.interactiveshell import InteractiveShell
os.chdir(tempfile.mkdtemp())
shell = InteractiveShell.instance()
layer = {"__name__": "dlgrader_compat"}
exec(compile(SOURCE, "<compat>", "exec"), layer)
layer["install"](shell, DATA_ROOT, "cpu")
notices = shell.user_ns["__dlgrader_compat__"]
results = {}
for name, cell in CASES.items():
    notices.clear()
    shell.user_ns["RESULT"] = out = {}
    outcome = shell.run_cell(cell, silent=True)
    if not outcome.success:
        error = outcome.error_in_exec or outcome.error_before_exec
        out["error"] = f"{type(error).__name__}: {error}"
    out["notices"] = dict(notices)
    results[name] = out
sys.stdout.write("\\nRESULTS " + json.dumps(results, default=str))
"""


@pytest.fixture(scope="module")
def ran() -> dict[str, dict]:
    """Every case of ``CASES`` run in one IPython shell with the layer installed."""
    program = (
        f"SOURCE = {kernel_source('compat')!r}\nDATA_ROOT = {str(FIXTURE_DATA_ROOT)!r}\n"
        f"CASES = {CASES!r}\n{_PROGRAM}"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, dict] = json.loads(done.stdout.rsplit("RESULTS ", 1)[1])
    return results


def test_cuda_code_runs_on_the_cpu_and_flags_stay_flags(ran: dict[str, dict]) -> None:
    result = ran["cuda"]
    assert "error" not in result, result
    assert result["devices"] == ["cpu"] * 5
    assert result["dtype"] == "torch.float32"
    assert result["out"] == 4
    assert any(n.startswith(CUDA_NOTICE) for n in result["notices"]), "the rubric looks for it"


def test_cpu_code_leaves_no_notice(ran: dict[str, dict]) -> None:
    """A notebook that already picks its device leaves the report free of CUDA notices."""
    result = ran["cpu"]
    assert "error" not in result, result
    assert result["device"] == "cpu"
    assert result["notices"] == {}


def test_keras_loaders_return_the_real_files_as_torchvision_reads_them(
    ran: dict[str, dict],
) -> None:
    """``tf.keras.datasets.*.load_data()`` matches torchvision's own reading of the same files
    (any ``path=``: the grader's copy is used)."""
    result = ran["keras"]
    assert "error" not in result, result
    assert result["dtype"] == "uint8"
    images, labels, test_images, test_labels = result["shapes"]
    assert images[1:] == [28, 28] and labels == images[:1]
    assert test_images[1:] == [28, 28] and test_labels == test_images[:1]
    assert result["mnist_same"] and result["fashion_same"]
    assert result["differ"], "MNIST and Fashion-MNIST must not be the same files"
    assert any("load_data() was served" in n for n in result["notices"])


@pytest.mark.parametrize("case", ["tensorflow", "tensorflow_layers"])
def test_other_tensorflow_use_says_what_to_do(ran: dict[str, dict], case: str) -> None:
    error = ran[case].get("error", "")
    assert error.startswith(("ImportError", "AttributeError", "TensorFlowUnavailable")), error
    assert "only tf.keras.datasets.mnist.load_data()" in error and "numpy or PyTorch" in error


def test_matplotlib_still_plots_after_tensorflow_was_imported(ran: dict[str, dict]) -> None:
    """matplotlib asks an imported ``tensorflow`` for ``is_tensor`` on every plot: the stand-in
    must answer as a module without it, not raise (every course notebook plots)."""
    result = ran["plot_after_tensorflow"]
    assert "error" not in result, result
    assert result["drawn"] is True


def test_download_true_is_served_from_the_grader_data(ran: dict[str, dict]) -> None:
    result = ran["download"]
    assert "error" not in result, result
    assert result["n"] > 0
    assert not result["made"], "nothing is downloaded or written to the notebook's folder"
    assert any("served from the grader's copy" in n for n in result["notices"])


def test_torchvision_models_and_ops_run_on_first_use(ran: dict[str, dict]) -> None:
    """``import torchvision`` leaves ``torchvision.models`` and ``torchvision.ops`` (and the
    ``torch._dynamo`` they import, a second of CPU) unexecuted until a notebook uses them; a
    notebook that does gets the real modules, working, and no notice (nothing changed for it).
    The tracebacks of the cases before it (IPython's ``inspect.getmodule`` asks every module its
    ``__file__`` and class) did not execute them either."""
    result = ran["deferred"]
    assert "error" not in result, result
    assert result["before"] == [False, True, True]
    assert result["lazy"] == ["_DeferredModule", "_DeferredModule"]
    assert result["nms"] == [0, 2]
    assert result["resnet"] == [1, 10]
    assert result["same"] is True
    assert result["after"] == [True, True, True]
    assert result["notices"] == {}


@pytest.mark.parametrize("case", ["pip", "python_m_pip", "pip_magic"])
def test_installs_are_skipped_with_a_notice(ran: dict[str, dict], case: str) -> None:
    result = ran[case]
    assert "error" not in result, result
    assert result["after"] == 1
    assert any("the grader installs nothing" in n for n in result["notices"])


def test_every_notice_the_layer_writes_is_one_the_grader_shows(ran: dict[str, dict]) -> None:
    """The grader shows only notices of the layer's own forms (``NOTICE_FORMATS``, read from
    its source): each one the real cases wrote must match, or the report would hide it."""
    written = [n for result in ran.values() for n in result.get("notices", {})]
    assert len({n.split(" ")[0] for n in written}) >= 4, written  # several kinds ran
    unknown = [n for n in written if not is_known_notice(n)]
    assert unknown == []


def test_torchvision_items_skip_pil_with_the_same_values_and_types(ran: dict[str, dict]) -> None:
    """Every item of both datasets' slices, each split, through ToTensor, a Compose that starts
    with it (and a target_transform), one that does not, and no transform: the fast path gives
    exactly torchvision's own items, and a DataLoader over a Subset the same batches."""
    result = ran["tensor_path"]
    assert "error" not in result, result
    assert result["mismatches"] == []
    assert result["checked"] == 4 * 2 * (2000 + 1000)  # the slices: 2000 train, 1000 test
    assert result["float64"] is True


DEFERRED_PROGRAM = """
import builtins, inspect, json, sys, threading, types
sys.path.insert(0, sys.argv[1])
layer = {"__name__": "dlgrader_compat"}
exec(compile(open(sys.argv[2]).read(), "<compat>", "exec"), layer)
layer["DEFERRED_MODULES"] = ("pkg.heavy", "pkg.broken")
sys.meta_path.insert(0, layer["_Deferred"]())
import pkg
out = {"ran_on_import": builtins.RUNS, "kind": type(pkg.heavy).__name__}
for module in list(sys.modules.values()):  # what every traceback does (inspect.getmodule)
    isinstance(module, type), getattr(module, "__file__", None), repr(module)
inspect.getmodule(inspect.currentframe())
out["ran_on_metadata"] = builtins.RUNS
seen = []
threads = [threading.Thread(target=lambda: seen.append(pkg.heavy.VALUE)) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
out["seen"], out["ran_on_use"] = seen, builtins.RUNS
from pkg.heavy.sub import X
out["sub"], out["plain"] = X, type(pkg.heavy) is types.ModuleType
errors = []
for _ in range(2):
    try:
        pkg.broken.anything
    except ZeroDivisionError as exc:
        errors.append(type(exc).__name__)
out["errors"] = errors
print(json.dumps(out))
"""


def _pythons() -> list[str]:
    """This interpreter and every other CPython 3.11+ that runs on this machine (on PATH or
    under pyenv): the kit runs this layer on the student's own Python."""
    candidates = [sys.executable]
    candidates += [
        p
        for n in ("python3.11", "python3.12", "python3.13", "python3.14")
        if (p := shutil.which(n))
    ]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.*/bin/python3"))
    found: dict[str, str] = {}
    for python in candidates:
        asks = "import sys; print(sys.version_info >= (3, 11), sys.version.split()[0])"
        version = subprocess.run(
            [python, "-c", asks], capture_output=True, text=True, timeout=30, check=False
        )
        usable, _, number = version.stdout.strip().partition(" ")
        if version.returncode == 0 and usable == "True":
            found.setdefault(number, python)  # one interpreter per version
    return list(found.values())


@pytest.mark.parametrize("python", _pythons())
def test_deferred_modules_behave_the_same_on_every_python(python: str, tmp_path: Path) -> None:
    """The deferral on a stand-in package, on each Python found (the kit runs this layer on the
    student's own): nothing runs on import or on the metadata a traceback reads; eight threads
    asking at once run the module once and all see it whole; a submodule's import works; a
    module whose code fails raises its error on each use, not a RecursionError."""
    package = tmp_path / "pkg"
    (package / "heavy").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import heavy, broken\n")
    (package / "heavy" / "__init__.py").write_text(
        "import builtins, time\nbuiltins.RUNS += 1\ntime.sleep(0.05)\nVALUE = 42\n"
    )
    (package / "heavy" / "sub.py").write_text("X = 7\n")
    (package / "broken.py").write_text("1 / 0\n")
    layer = tmp_path / "compat.py"
    layer.write_text(kernel_source("compat"), encoding="utf-8")
    program = "import builtins\nbuiltins.RUNS = 0\n" + DEFERRED_PROGRAM
    done = subprocess.run(
        [python, "-c", program, str(tmp_path), str(layer)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "ran_on_import": 0,
        "kind": "_DeferredModule",
        "ran_on_metadata": 0,
        "seen": [42] * 8,
        "ran_on_use": 1,
        "sub": 7,
        "plain": True,
        "errors": ["ZeroDivisionError", "ZeroDivisionError"],
    }
