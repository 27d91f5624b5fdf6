"""MNIST and Fashion-MNIST as IDX files: the one reader shared by the reference, graders and tests.

Everything that touches the real data goes through here, so a truncated download or a file of
the wrong dataset fails in one place with the path and the cause, instead of as a reshape error
deep inside a check. Only numpy and the standard library: the reference solutions and the
student kit read the data through it too.

The layout is torchvision's (``ROOT/<Name>/raw/<stem>``), so that a student notebook calling
``torchvision.datasets.FashionMNIST(ROOT, download=False)`` and the grader read the same bytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATASETS = ("MNIST", "FashionMNIST")
"""Folder names exactly as torchvision's dataset classes spell them."""

IMAGE_SHAPE = (28, 28)
N_CLASSES = 10
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

# IDX type codes (the third magic byte) -> big-endian numpy dtypes.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DatasetError(ValueError):
    """A dataset file is missing, malformed or not the file we expect.

    Defined here rather than reusing the grader's ``DataError`` so that this package imports
    nothing of the rest of the grader; ``graders.data`` maps it into ``DataError``.
    """

    def __init__(self, message: str, *, path: Path | str | None = None):
        self.path = Path(path) if path is not None else None
        self.message = message
        super().__init__(f"{path}: {message}" if path is not None else message)


@dataclass(frozen=True, kw_only=True)
class IdxFile:
    """One expected file: which dataset, its name, and what its uncompressed bytes must be."""

    dataset: str
    """"MNIST" or "FashionMNIST" (torchvision's folder name)."""
    stem: str
    """File name without ``.gz``, as torchvision expects it under ``raw/``."""
    md5: str
    """md5 of the *uncompressed* file: Debian re-compressed its copies, so .gz md5s differ."""
    count: int
    """Number of items (images or labels) the header must announce."""

    @property
    def train(self) -> bool:
        return self.stem.startswith("train-")

    @property
    def kind(self) -> str:
        return "images" if "-images-" in self.stem else "labels"

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.count, *IMAGE_SHAPE) if self.kind == "images" else (self.count,)

    @property
    def nbytes(self) -> int:
        """Size of the uncompressed file: the header plus one byte per pixel or label."""
        return 4 + 4 * len(self.shape) + int(np.prod(self.shape))


STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

_MD5 = {
    "MNIST": (
        "6bbc9ace898e44ae57da46a324031adb",
        "a25bea736e30d166cdddb491f175f624",
        "2646ac647ad5339dbf082846283269ea",
        "27ae3e4e09519cfbb04c329615203637",
    ),
    "FashionMNIST": (
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "9018921c3c673c538a1fc5bad174d6f9",
        "8181f5470baa50b63fa0f6fddb340f0a",
        "15d484375f8d13e6eb1aabb0c3f46965",
    ),
}

FILES: tuple[IdxFile, ...] = tuple(
    IdxFile(dataset=name, stem=stem, md5=md5, count=60000 if stem.startswith("train-") else 10000)
    for name in DATASETS
    for stem, md5 in zip(STEMS, _MD5[name], strict=True)
)
"""The eight real files and the md5s of their uncompressed contents (sources: docs/data.md)."""


def expected_files(name: str, table: Iterable[IdxFile] = FILES) -> tuple[IdxFile, ...]:
    """The entries of ``table`` for one dataset; an unknown name is an error, not an empty list."""
    entries = tuple(f for f in table if f.dataset == name)
    if not entries:
        known = sorted({f.dataset for f in table})
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(known)}")
    return entries


def raw_dir(root: Path | str, name: str) -> Path:
    """Where torchvision looks with ``download=False``."""
    return Path(root) / name / "raw"


def find_file(directory: Path | str, stem: str) -> Path:
    """``stem`` or ``stem.gz`` in ``directory``; the uncompressed one first (torchvision's)."""
    directory = Path(directory)
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"missing {stem} (nor {stem}.gz); run `dlgrade data` to place the datasets",
        path=directory,
    )


def open_uncompressed(path: Path | str) -> io.BufferedIOBase:
    """Open raw or gzipped by the magic bytes: a renamed .gz or an unpacked file without the
    extension must both read correctly."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _read_exact(stream: io.BufferedIOBase, n: int, path: Path, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise DatasetError(f"file ends inside the {what} ({len(data)} of {n} bytes)", path=path)
    return data


def _parse_header(stream: io.BufferedIOBase, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    magic = _read_exact(stream, 4, path, "IDX magic number")
    if magic[:2] != b"\x00\x00" or magic[2] not in _IDX_DTYPES or not 1 <= magic[3] <= 4:
        raise DatasetError(f"not an IDX file (magic bytes {magic.hex()})", path=path)
    ndim = magic[3]
    dims = np.frombuffer(_read_exact(stream, 4 * ndim, path, "IDX header"), dtype=">u4")
    return _IDX_DTYPES[magic[2]], tuple(int(d) for d in dims)


def read_idx(path: Path | str, *, limit: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzipped) into a native-endian, writable array.

    The header is checked against the payload: a truncated or padded file is an error, never a
    silently short or misaligned array. With ``limit``, only the first ``limit`` items along the
    first axis are read (the size check still covers a raw file; a gzipped one is not read to
    its end).
    """
    path = Path(path)
    try:
        with open_uncompressed(path) as stream:
            dtype, dims = _parse_header(stream, path)
            items = dims[0] if limit is None else min(dims[0], max(limit, 0))
            shape = (items, *dims[1:])
            out = np.empty(shape, dtype=dtype)
            _fill(stream, out, path)
            if limit is None or items == dims[0]:
                _check_end(stream, path, dims, dtype)
            elif not _is_gzip(path):
                _check_raw_size(path, dims, dtype)
    except OSError as exc:  # unreadable, or a corrupt gzip stream (BadGzipFile is an OSError)
        raise DatasetError(f"cannot read: {exc}", path=path) from exc
    except (EOFError, zlib.error) as exc:
        raise DatasetError(f"corrupt gzip stream: {exc}", path=path) from exc
    return out.astype(dtype.newbyteorder("="), copy=False)


def _fill(stream: io.BufferedIOBase, out: np.ndarray, path: Path) -> None:
    view = out.reshape(-1).view(np.uint8).data
    done = 0
    while done < len(view):
        n = stream.readinto(view[done:])
        if not n:
            raise DatasetError(
                f"truncated: the header promises {out.nbytes} data bytes, the file has {done}",
                path=path,
            )
        done += n


def _check_end(
    stream: io.BufferedIOBase, path: Path, dims: tuple[int, ...], dtype: np.dtype
) -> None:
    extra = len(stream.read(_CHUNK))
    if extra:
        expected = 4 + 4 * len(dims) + int(np.prod(dims)) * dtype.itemsize
        raise DatasetError(
            f"longer than its header says ({expected} bytes for dims {dims}): "
            "wrong header or trailing data",
            path=path,
        )


def _check_raw_size(path: Path, dims: tuple[int, ...], dtype: np.dtype) -> None:
    expected = 4 + 4 * len(dims) + int(np.prod(dims)) * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise DatasetError(
            f"size {actual} bytes does not match its header (dims {dims}: {expected} bytes)",
            path=path,
        )


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def load_split(
    root: Path | str, name: str, *, train: bool, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 (N, 28, 28) and labels as int64 (N,), the first ``limit`` if given.

    Checks what a learner would otherwise trip over later: shapes, matching counts, labels 0-9.
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    directory = raw_dir(root, name)
    prefix = "train" if train else "t10k"
    images_path = find_file(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = find_file(directory, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(images_path, limit=limit)
    labels = read_idx(labels_path, limit=limit)
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(
            f"expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}",
            path=images_path,
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetError(
            f"expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}",
            path=labels_path,
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{len(images)} images but {len(labels)} labels in {labels_path.name}",
            path=images_path,
        )
    if labels.size and int(labels.max()) >= N_CLASSES:
        raise DatasetError(f"label {int(labels.max())} outside 0-9", path=labels_path)
    return images, labels.astype(np.int64)


def load_scaled(
    root: Path | str, name: str, *, train: bool, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float32 (N, 784) in [0, 1] and int64 labels, as the course's Q4 loads MNIST.

    ``astype(float32) / 255.0`` in that order, exactly like the seed notebook, so the numpy
    reference reproduces the seed's table bit for bit.
    """
    images, labels = load_split(root, name, train=train, limit=limit)
    scaled = images.astype(np.float32) / 255.0
    return scaled.reshape(len(images), -1), labels


PIXEL_SCALES: tuple[str, ...] = ("unit", "raw")
"""How a notebook feeds pixels to its network: ``unit`` = ``/ 255`` (the templates), ``raw`` =
the 0-255 values as stored (the course's starter code, which never normalizes)."""


def load_pixels(
    root: Path | str, name: str, *, train: bool, limit: int | None = None, scale: str = "unit"
) -> tuple[np.ndarray, np.ndarray]:
    """Flattened float32 (N, 784) on one of the ``PIXEL_SCALES``; ``unit`` is ``load_scaled``."""
    if scale == "unit":
        return load_scaled(root, name, train=train, limit=limit)
    if scale != "raw":
        raise ValueError(f"unknown pixel scale {scale!r}; known: {', '.join(PIXEL_SCALES)}")
    images, labels = load_split(root, name, train=train, limit=limit)
    return images.astype(np.float32).reshape(len(images), -1), labels


def md5_file(path: Path | str) -> str:
    """md5 of the file's *uncompressed* content, streamed.

    The uncompressed bytes are what torchvision reads and what the table pins; comparing .gz
    bytes would reject Debian's re-compressed but identical Fashion-MNIST.
    """
    path = Path(path)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open_uncompressed(path) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise DatasetError(f"cannot read: {exc}", path=path) from exc
    except (EOFError, zlib.error) as exc:
        raise DatasetError(f"corrupt gzip stream: {exc}", path=path) from exc
    return digest.hexdigest()


def verify(root: Path | str, name: str, *, table: Iterable[IdxFile] = FILES) -> list[str]:
    """Problems with one dataset under ``root`` (missing files, wrong md5); empty when all good.

    Returns problems instead of raising so a caller can report every bad file at once.
    """
    problems = []
    directory = raw_dir(root, name)
    for entry in expected_files(name, table):
        try:
            path = find_file(directory, entry.stem)
            actual = md5_file(path)
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        if actual != entry.md5:
            problems.append(f"{path}: md5 {actual}, expected {entry.md5}")
    return problems
