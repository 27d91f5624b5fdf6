"""The course's starter code, run as students wrote it, in a grader with no network and no GPU.

Most notebooks of this course were written against the starter code on Colab: MNIST through
``tf.keras.datasets.mnist.load_data()``, Fashion-MNIST through
``torchvision.datasets.FashionMNIST('./FashionMNIST/', download=True)``, ``.cuda()`` typed in,
``!pip install`` lines, ``from google.colab import drive``. None of it works where grading runs
(no TensorFlow, no network, no GPU), so without this layer every such notebook stops at its
data and loses the points its code deserves. ``install`` (called by the preamble, before the
student's first cell) makes each of them work from the grader's own copy of the real data,
read-only, and records every use in ``NOTICES`` (the probe hands them to the report):

* ``tensorflow`` / ``keras``: only ``datasets.mnist`` and ``datasets.fashion_mnist``, whose
  ``load_data(path=...)`` returns what Keras returns (uint8 images (n, 28, 28), uint8 labels, in
  the files' order); any other use of TensorFlow is an ImportError that says so;
* torchvision's ``MNIST`` / ``FashionMNIST``: any ``root``, ``download=True`` or not, served
  from the grader's data root with no download attempted, and with ``ToTensor()`` without the
  round trip through a PIL image (the same values, several times faster);
* on a CPU grader, CUDA: ``.cuda()``, ``.to("cuda")``, ``device="cuda"`` and
  ``torch.device("cuda")`` run on the CPU;
* ``!pip install`` / ``%pip`` / ``%conda``: skipped; ``google.colab``: harmless stand-ins;
* ``torchvision.models`` and ``torchvision.ops``, which ``import torchvision`` runs and the
  course never uses, run on their first use instead (a second of CPU saved per kernel).

Run as source in the kernel, never imported by the grader; standard library and numpy only
(torch and torchvision are patched when the notebook imports them, not before).
"""

import gzip
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # numpy is imported where it is used (annotations naming it are quoted)
    import numpy

    _UInt8Array = numpy.ndarray[Any, numpy.dtype[numpy.uint8]]
    _Splits = tuple[tuple[_UInt8Array, _UInt8Array], ...]
    """What Keras's ``load_data`` returns: ((train images, labels), (test images, labels))."""

_T = TypeVar("_T")

NOTICES: dict[str, int] = {}
"""What the layer did for this notebook: a short message -> how many times."""

_TF_MESSAGE = (
    "TensorFlow is not available in the grader: only tf.keras.datasets.mnist.load_data() and "
    "tf.keras.datasets.fashion_mnist.load_data() are provided (from the grader's copy of the "
    "real data). Use numpy or PyTorch for the rest."
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


NOTICE_FORMATS = {
    "keras_data": "{module}.load_data() was served from the grader's copy of {dataset}",
    "stand_in": "`import {module}` got the grader's stand-in (dataset loaders only)",
    "torchvision_data": (
        "torchvision's {dataset} was served from the grader's copy of the real data (no download)"
    ),
    "cuda_on_cpu": "CUDA code ran on the CPU: the grader has no GPU",
    "colab_mount": "google.colab's drive.mount() does nothing in the grader",
    "colab_upload": "google.colab's files.upload() returns nothing in the grader",
    "colab_download": "google.colab's files.download() does nothing in the grader",
    "shell_install": "`!{command}` was skipped: the grader installs nothing",
    "magic_install": "`%pip/%conda {command}` was skipped: the grader installs nothing",
}
"""Every notice the layer writes (a literal: the grader reads it from this file's source and
shows only notices of these forms; anything else in ``__dlgrader_compat__`` is the notebook's
own text). ``module`` and ``dataset`` are names; ``command`` is the notebook's line, without
backticks."""


def _note(kind: str, **fields: str) -> None:
    message = NOTICE_FORMATS[kind].format(**fields)
    NOTICES[message] = NOTICES.get(message, 0) + 1


def _read_idx(path: str) -> "_UInt8Array":
    import numpy

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    return numpy.frombuffer(data, dtype=numpy.uint8, offset=4 + 4 * dims).reshape(shape).copy()


def _raw_file(data_root: str, dataset: str, stem: str) -> str:
    folder = os.path.join(data_root, dataset, "raw")
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise FileNotFoundError(f"the grader's {dataset} has no {stem} under {folder}")


def _keras_loader(data_root: str, dataset: str, module_name: str) -> "Callable[..., _Splits]":
    def load_data(path: object = None, **_ignored: object) -> "_Splits":
        """Keras's ``load_data``, from the grader's copy of the real files (``path`` unused)."""
        _note("keras_data", module=module_name, dataset=dataset)
        splits = []
        for part in ("train", "test"):
            images, labels = (_read_idx(_raw_file(data_root, dataset, s)) for s in _FILES[part])
            splits.append((images, labels))
        return tuple(splits)

    return load_data


class TensorFlowUnavailable(AttributeError):
    """Anything but the dataset loaders, asked of the TensorFlow stand-in. An AttributeError so
    libraries that probe an imported ``tensorflow`` (matplotlib's ``is_tensor`` check on every
    plot) see an ordinary missing attribute; a student reads the message."""


class _Stub(types.ModuleType):
    """A TensorFlow or Keras module that has the dataset loaders and nothing else
    (``tf.keras.datasets`` works as an attribute chain, as it does with TensorFlow)."""

    provided: frozenset[str] = frozenset()

    def __getattr__(self, name: str) -> types.ModuleType:
        if name.startswith("__"):
            raise AttributeError(name)
        child = f"{self.__name__}.{name}"
        if child in self.provided:
            return importlib.import_module(child)
        raise TensorFlowUnavailable(f"`{child}`: {_TF_MESSAGE}")


class _DatasetModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``tensorflow`` and ``keras`` as stand-ins holding only ``datasets.mnist`` and
    ``datasets.fashion_mnist``; ``google.colab`` with a ``drive.mount`` that does nothing."""

    def __init__(self, data_root: str) -> None:
        self.data_root = data_root
        self.provided: dict[str, dict[str, Callable[..., object]]] = {}
        for top in ("tensorflow", "keras"):
            keras = "tensorflow.keras" if top == "tensorflow" else "keras"
            self.provided[top] = {}
            self.provided[keras] = {}
            self.provided[f"{keras}.datasets"] = {}
            for name, dataset in (("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")):
                module = f"{keras}.datasets.{name}"
                self.provided[module] = {"load_data": _keras_loader(data_root, dataset, module)}
        self.provided["google.colab"] = {}
        self.provided["google.colab.drive"] = {"mount": self._mount}
        self.provided["google.colab.files"] = {"upload": self._upload, "download": self._no_op}

    def _mount(self, *_args: object, **_kwargs: object) -> None:
        _note("colab_mount")

    def _upload(self, *_args: object, **_kwargs: object) -> dict[str, bytes]:
        _note("colab_upload")
        return {}

    def _no_op(self, *_args: object, **_kwargs: object) -> None:
        _note("colab_download")

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in self.provided:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        top = fullname.split(".")[0]
        if top in ("tensorflow", "keras"):
            raise ImportError(f"No module named {fullname!r}. {_TF_MESSAGE}")
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        if spec.name.split(".")[0] == "google":
            return None
        module = _Stub(spec.name)
        module.provided = frozenset(self.provided)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []
        for name, value in self.provided[module.__name__].items():
            setattr(module, name, value)
        if module.__name__ in ("tensorflow", "keras"):
            _note("stand_in", module=module.__name__)
        parent, _, child = module.__name__.rpartition(".")
        if parent in sys.modules:
            setattr(sys.modules[parent], child, module)


class _GoogleNamespace(importlib.abc.MetaPathFinder):
    """``google`` as an empty namespace when no real package provides one (for google.colab)."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "google":
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        return None


class _OwnLoader(importlib.abc.MetaPathFinder):
    """Imports ``names`` with the loader ``wrap`` makes of the one the import system would
    have used (found with this finder out of the way)."""

    names: frozenset[str] = frozenset()

    def wrap(self, loader: importlib.abc.Loader) -> importlib.abc.Loader:
        raise NotImplementedError

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = self.wrap(spec.loader)
        return spec


class _AfterImport(_OwnLoader):
    """Runs ``patch(module)`` right after ``name`` is imported, whoever imports it."""

    def __init__(self, name: str, patch: Callable[[types.ModuleType], object]) -> None:
        self.names = frozenset((name,))
        self.patch = patch

    def wrap(self, loader: importlib.abc.Loader) -> importlib.abc.Loader:
        patch = self.patch

        class Patched(importlib.abc.Loader):
            def create_module(
                self, spec: importlib.machinery.ModuleSpec
            ) -> types.ModuleType | None:
                return loader.create_module(spec)

            def exec_module(self, module: types.ModuleType) -> None:
                loader.exec_module(module)
                patch(module)

        return Patched()


DEFERRED_MODULES = ("torchvision.models", "torchvision.ops")
"""Modules that ``import torchvision`` executes eagerly and the course's notebooks never use:
they are made on import and run on their first use."""


_MODULE_METADATA = frozenset(
    ("__class__", "__name__", "__file__", "__spec__", "__loader__", "__package__", "__cached__")
)
_executing = threading.RLock()
_being_executed: set[int] = set()
"""ids of the deferred modules whose code is running now (in the thread holding the lock)."""


class _DeferredModule(types.ModuleType):
    """A module whose code has not run yet; the first access to an attribute other than its
    import metadata runs it, in place, and makes it an ordinary module.

    The metadata answers without running it: the traceback of any error in a notebook walks
    ``sys.modules`` asking each module its class and ``__file__`` (``inspect.getmodule``), which
    must not cost the second this saves. Written here rather than subclassing
    ``importlib.util.LazyLoader``'s private module class, whose workings differ between Python
    versions (the kit runs this layer on the student's own Python). One lock for all: a second
    thread waits for the module to be complete; the module's own code, and the imports of its
    submodules, see it as it is while it runs (as an eager import would)."""

    def __getattribute__(self, attr: str) -> Any:
        if attr in _MODULE_METADATA:
            return types.ModuleType.__getattribute__(self, attr)
        with _executing:
            if type(self) is _DeferredModule:
                if id(self) in _being_executed:  # its own code, running now
                    return types.ModuleType.__getattribute__(self, attr)
                _being_executed.add(id(self))
                try:
                    spec = types.ModuleType.__getattribute__(self, "__spec__")
                    spec.loader.exec_module(self)
                finally:
                    _being_executed.discard(id(self))
                self.__class__ = types.ModuleType  # type: ignore[assignment]  # ordinary now
        return getattr(self, attr)


class _DeferredLoader(importlib.abc.Loader):
    """Makes the module as ``loader`` would and leaves its code for ``_DeferredModule``."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__.loader = self.loader  # type: ignore[union-attr]  # it has a spec
        module.__loader__ = self.loader
        module.__class__ = _DeferredModule


class _Deferred(_OwnLoader):
    """Runs ``DEFERRED_MODULES`` on their first use instead of on import.

    ``import torchvision`` imports ``torchvision.ops``, whose ``roi_align`` imports
    ``torch._dynamo``: about half of the 2 CPU-seconds that importing torchvision costs each
    kernel of a notebook that only wants ``torchvision.datasets`` (Q3's and Q4's). As with
    ``importlib.util.LazyLoader``, the modules are in ``sys.modules`` and bound as attributes
    from the start and are executed by the first access to any other attribute
    (``torchvision.models.resnet18``, ``from torchvision.ops import nms``, a submodule's
    import), so a notebook that uses them gets the same modules, only later."""

    def __init__(self) -> None:
        self.names = frozenset(DEFERRED_MODULES)

    def wrap(self, loader: importlib.abc.Loader) -> importlib.abc.Loader:
        return _DeferredLoader(loader)


def _serve_torchvision(data_root: str) -> Callable[[types.ModuleType], None]:
    def patch(module: types.ModuleType) -> None:
        original = module.MNIST.__init__

        def init(
            self: object, root: object = None, *args: Any, download: bool = False, **kwargs: Any
        ) -> None:
            if download or os.path.realpath(str(root)) != os.path.realpath(data_root):
                _note("torchvision_data", dataset=type(self).__name__)
            original(self, data_root, *args, download=False, **kwargs)

        module.MNIST.__init__ = init
        _fast_items(module.MNIST)

    return patch


def _tensor_path(dataset: Any) -> "tuple[Any, Sequence[Any]] | None":
    """(torch, the transforms after ``ToTensor``) when ``dataset[i]`` may skip the PIL image,
    else None: the dataset's images are still torchvision's uint8 tensor and its transform is
    ``ToTensor()`` or a ``Compose`` that starts with it. Anything else (another first transform,
    images replaced by the student) takes torchvision's own path."""
    torch = sys.modules.get("torch")
    transforms = sys.modules.get("torchvision.transforms")
    if torch is None or transforms is None:
        return None
    data: Any = getattr(dataset, "data", None)
    transform: Any = getattr(dataset, "transform", None)
    if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8 or data.dim() != 3:
        return None
    if type(transform) is transforms.ToTensor:
        return torch, ()
    if type(transform) is transforms.Compose and transform.transforms:
        first, *rest = transform.transforms
        if type(first) is transforms.ToTensor:
            return torch, rest
    return None


def _fast_items(mnist: Any) -> None:
    """``dataset[i]`` without a PIL image: the same values and types as torchvision's path.

    torchvision makes each item a PIL image and ``ToTensor`` turns it back into a tensor (about
    150 us an item, 9 s an epoch of the course's DataLoader, more than the training itself).
    ``ToTensor`` of an 8-bit grey image is exactly ``image.unsqueeze(0).to(float dtype) / 255``,
    so that is computed from the uint8 tensor directly; the transforms after it and the
    ``target_transform`` run as they would. ``__getitems__`` (what a DataLoader asks for, one
    batch at a time) converts the whole batch in one operation. Nothing is kept beyond the
    batch: no copy of the dataset in memory."""
    original_item = mnist.__getitem__

    def finish(dataset: Any, image: Any, target: int, rest: Sequence[Any]) -> tuple[Any, Any]:
        for step in rest:
            image = step(image)
        if dataset.target_transform is not None:
            return image, dataset.target_transform(target)
        return image, target

    def getitem(self: Any, index: int) -> tuple[Any, Any]:
        path = _tensor_path(self)
        if path is None:
            return original_item(self, index)  # type: ignore[no-any-return]
        torch, rest = path
        image = self.data[index].unsqueeze(0).to(dtype=torch.get_default_dtype()).div(255)
        return finish(self, image, int(self.targets[index]), rest)

    def getitems(self: Any, indices: Sequence[int]) -> list[tuple[Any, Any]]:
        path = _tensor_path(self)
        if path is None:
            return [original_item(self, i) for i in indices]
        torch, rest = path
        index = torch.as_tensor(list(indices), dtype=torch.long)
        images = self.data[index].unsqueeze(1).to(dtype=torch.get_default_dtype()).div(255)
        targets = self.targets[index].tolist()
        return [finish(self, images[k], int(targets[k]), rest) for k in range(len(targets))]

    getitem.__wrapped__ = original_item  # type: ignore[attr-defined]  # torchvision's own path
    mnist.__getitem__ = getitem
    mnist.__getitems__ = getitems


def _is_cuda(device: object) -> bool:
    if device is None or isinstance(device, bool):
        return False
    if isinstance(device, int):  # a bare device index means a CUDA device
        return True
    text = str(getattr(device, "type", device))
    return text.startswith("cuda")


def _cuda_on_cpu(torch: types.ModuleType) -> None:
    """``.cuda()``, ``.to("cuda")`` and ``device="cuda"`` on the CPU, each noted once."""

    def to_cpu(value: object) -> str:
        _note("cuda_on_cpu")
        return "cpu"

    def tensor_cuda(self: _T, *args: object, **kwargs: object) -> _T:
        _note("cuda_on_cpu")
        return self

    def wrap_to(original: Callable[..., Any]) -> Callable[..., Any]:
        def to(self: object, *args: Any, **kwargs: Any) -> Any:
            # Only the first positional argument can be a device (``to(device, dtype,
            # non_blocking, copy)``); the others are flags, and a bool is an int.
            if args and not hasattr(args[0], "dtype") and _is_cuda(args[0]):
                args = (to_cpu(args[0]), *args[1:])
            if _is_cuda(kwargs.get("device")):
                kwargs["device"] = to_cpu(kwargs["device"])
            return original(self, *args, **kwargs)

        return to

    def wrap_factory(original: Callable[..., Any]) -> Callable[..., Any]:
        def factory(*args: Any, **kwargs: Any) -> Any:
            if _is_cuda(kwargs.get("device")):
                kwargs["device"] = to_cpu(kwargs["device"])
            return original(*args, **kwargs)

        return factory

    torch.Tensor.cuda = tensor_cuda
    torch.nn.Module.cuda = tensor_cuda
    torch.Tensor.to = wrap_to(torch.Tensor.to)
    torch.nn.Module.to = wrap_to(torch.nn.Module.to)
    for name in (
        "tensor", "as_tensor", "zeros", "ones", "empty", "full", "rand", "randn", "randint",
        "arange", "linspace", "eye", "zeros_like", "ones_like", "empty_like", "randn_like",
    ):  # fmt: skip
        if hasattr(torch, name):
            setattr(torch, name, wrap_factory(getattr(torch, name)))


def _skip_installs(shell: Any) -> None:
    """``!pip install`` and ``%pip``/``%conda`` do nothing (there is no network to use)."""
    installers = ("pip", "pip3", "conda", "mamba", "apt", "apt-get")
    system = shell.system

    def guarded(command: str, *args: Any, **kwargs: Any) -> Any:
        words = str(command).split()
        named = words[2] if words[:2] in (["python", "-m"], ["python3", "-m"]) else ""
        if words and (words[0] in installers or named == "pip"):
            _note("shell_install", command=str(command).replace("`", "'"))
            return None
        return system(command, *args, **kwargs)

    shell.system = guarded
    shell.system_piped = guarded

    def magic(line: str) -> None:
        _note("magic_install", command=str(line).replace("`", "'"))

    for name in ("pip", "conda", "mamba"):
        shell.register_magic_function(magic, "line", name)


STEPS: dict[int, dict[str, Any]] = {}
"""Every torch optimizer that stepped in this kernel: id -> its class, module, step count,
the ids of its parameters (at its first step) and a weak reference to it. The probe reads it
(``__dlgrader_steps__``): the optimizer left under ``optimizer`` after training need not be
the one that trained the model."""
MAX_STEPPED = 10_000
"""Optimizers counted: many, so that stepping dozens of dummies first hides none (each entry
is small; past this the notebook only hurts its own memory)."""


def _record_steps(optim_module: types.ModuleType) -> None:
    """Count each optimizer's steps with torch's global step hook (about a microsecond each)."""
    import weakref

    def after_step(optimizer: Any, _args: object, _kwargs: object) -> None:
        entry = STEPS.get(id(optimizer))
        if entry is None or entry["ref"]() is not optimizer:  # new, or an id reused
            if len(STEPS) >= MAX_STEPPED:
                return
            params = [id(p) for g in optimizer.param_groups for p in g.get("params", ())]
            entry = {
                "class": type(optimizer).__name__,
                "module": type(optimizer).__module__,
                "params": params[:1000],
                "steps": 0,
                "ref": weakref.ref(optimizer),
            }
            STEPS[id(optimizer)] = entry
        entry["steps"] += 1

    optim_module.register_optimizer_step_post_hook(after_step)


def install(shell: Any, data_root: str, device: str) -> None:
    """Put the layer in place in this kernel; ``shell`` is IPython's (Any: its methods are
    replaced in place, and it comes from ``get_ipython()``, which only the kernel defines)."""
    sys.meta_path.insert(0, _DatasetModules(data_root))
    sys.meta_path.append(_GoogleNamespace())
    datasets = _AfterImport("torchvision.datasets.mnist", _serve_torchvision(data_root))
    sys.meta_path.insert(0, datasets)
    sys.meta_path.insert(0, _Deferred())
    if device != "cuda":
        if "torch" in sys.modules:
            _cuda_on_cpu(sys.modules["torch"])
        else:
            sys.meta_path.insert(0, _AfterImport("torch", _cuda_on_cpu))
    if "torch.optim.optimizer" in sys.modules:
        _record_steps(sys.modules["torch.optim.optimizer"])
    else:
        sys.meta_path.insert(0, _AfterImport("torch.optim.optimizer", _record_steps))
    _skip_installs(shell)
    shell.user_ns["__dlgrader_compat__"] = NOTICES
    shell.user_ns["__dlgrader_steps__"] = STEPS
