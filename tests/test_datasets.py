"""The IDX reader shared by the reference, the graders and the tests, on the committed real slices.

Corrupt files are made from the real slice bytes, so each test changes exactly one thing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graders.numerics.datasets import (
    DATASETS,
    FILES,
    STEMS,
    DatasetError,
    IdxFile,
    find_file,
    load_scaled,
    load_split,
    md5_file,
    raw_dir,
    read_idx,
    verify,
)

REPO = Path(__file__).resolve().parents[1]
SLICES = REPO / "fixtures" / "data"
SLICES_TABLE = json.loads((SLICES / "SLICES.json").read_text())
TRAIN_IMAGES = SLICES / "MNIST" / "raw" / "train-images-idx3-ubyte"
TRAIN_LABELS = SLICES / "MNIST" / "raw" / "train-labels-idx1-ubyte"


def full_root() -> Path:
    root = Path(os.environ.get("DLGRADER_DATA_ROOT", REPO / "data"))
    if not all((raw_dir(root, name) / stem).is_file() for name in DATASETS for stem in STEMS):
        pytest.skip(f"full datasets not at {root}: run `dlgrade data` (or set DLGRADER_DATA_ROOT)")
    return root


def slice_table() -> tuple[IdxFile, ...]:
    """The expected-md5 table of the committed slices, in the same shape as the real one."""
    return tuple(
        IdxFile(dataset=key.split("/")[0], stem=key.split("/")[-1], md5=v["md5"], count=v["count"])
        for key, v in SLICES_TABLE.items()
    )


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- the slices themselves ---


def test_slices_json_covers_every_file_and_matches_the_committed_bytes() -> None:
    assert sorted(SLICES_TABLE) == sorted(f"{f.dataset}/raw/{f.stem}" for f in FILES)
    real_md5 = {f"{f.dataset}/raw/{f.stem}": f.md5 for f in FILES}
    for relative, entry in SLICES_TABLE.items():
        data = (SLICES / relative).read_bytes()
        assert hashlib.md5(data).hexdigest() == entry["md5"], relative
        assert entry["source_md5"] == real_md5[relative], relative
        assert entry["count"] == (2000 if "/train-" in relative else 1000)


@pytest.mark.parametrize("relative", sorted(SLICES_TABLE))
def test_each_slice_reads_with_its_recorded_count(relative: str) -> None:
    array = read_idx(SLICES / relative)
    assert array.dtype == np.uint8
    assert array.shape[0] == SLICES_TABLE[relative]["count"]
    assert array.shape[1:] == ((28, 28) if "images" in relative else ())
    assert array.flags.writeable


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("train", [True, False])
def test_torchvision_loads_the_slices_and_agrees_with_our_reader(name: str, train: bool) -> None:
    torchvision = pytest.importorskip("torchvision")
    dataset_class = getattr(torchvision.datasets, name)
    dataset = dataset_class(str(SLICES), train=train, download=False)
    images, labels = load_split(SLICES, name, train=train)
    assert len(dataset) == (2000 if train else 1000)
    np.testing.assert_array_equal(dataset.data.numpy(), images)
    np.testing.assert_array_equal(dataset.targets.numpy(), labels)


def test_mnist_and_fashion_slices_are_different_data() -> None:
    mnist, _ = load_split(SLICES, "MNIST", train=False, limit=50)
    fashion, _ = load_split(SLICES, "FashionMNIST", train=False, limit=50)
    assert not np.array_equal(mnist, fashion)


# --- read_idx: raw, gzipped, limits ---


def test_gzipped_file_reads_the_same_with_or_without_the_extension(tmp_path: Path) -> None:
    raw = TRAIN_IMAGES.read_bytes()
    expected = read_idx(TRAIN_IMAGES)
    for name in ("train-images-idx3-ubyte.gz", "renamed-without-extension"):
        path = write(tmp_path, name, gzip.compress(raw))
        np.testing.assert_array_equal(read_idx(path), expected)
        assert md5_file(path) == hashlib.md5(raw).hexdigest()


def test_limit_reads_a_prefix(tmp_path: Path) -> None:
    full = read_idx(TRAIN_IMAGES)
    np.testing.assert_array_equal(read_idx(TRAIN_IMAGES, limit=7), full[:7])
    assert read_idx(TRAIN_IMAGES, limit=10**6).shape == full.shape
    assert read_idx(TRAIN_IMAGES, limit=0).shape == (0, 28, 28)
    gz = write(tmp_path, "x.gz", gzip.compress(TRAIN_IMAGES.read_bytes()))
    np.testing.assert_array_equal(read_idx(gz, limit=7), full[:7])


def test_multibyte_types_come_back_native_endian(tmp_path: Path) -> None:
    values = np.array([[1, -2, 300], [70000, 5, -6]], dtype=">i4")
    data = b"\x00\x00\x0c\x02" + struct.pack(">2I", 2, 3) + values.tobytes()
    array = read_idx(write(tmp_path, "ints", data))
    assert array.dtype == np.dtype("=i4")
    np.testing.assert_array_equal(array, values.astype(np.int32))


# --- read_idx: everything that can be wrong with a file ---


def _corruptions(raw: bytes) -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, a word the error must contain)."""
    count = struct.unpack(">I", raw[4:8])[0]
    return {
        "bad_magic": (b"\x08\x03\x00\x00" + raw[4:], "not an IDX file"),
        "unknown_type": (b"\x00\x00\x07\x03" + raw[4:], "not an IDX file"),
        "header_cut": (raw[:10], "header"),
        "magic_cut": (raw[:3], "magic"),
        "data_truncated": (raw[:-1], "truncated"),
        "count_too_big": (raw[:4] + struct.pack(">I", count + 1) + raw[8:], "truncated"),
        "count_too_small": (raw[:4] + struct.pack(">I", count - 1) + raw[8:], "longer"),
        "trailing_bytes": (raw + b"\x00", "longer"),
        "empty": (b"", "magic"),
    }


CORRUPTIONS = [
    "bad_magic",
    "unknown_type",
    "header_cut",
    "magic_cut",
    "data_truncated",
    "count_too_big",
    "count_too_small",
    "trailing_bytes",
    "empty",
]


@pytest.mark.parametrize("case", CORRUPTIONS)
@pytest.mark.parametrize("compressed", [False, True])
def test_corrupt_files_raise_with_path_and_cause(
    tmp_path: Path, case: str, compressed: bool
) -> None:
    data, cause = _corruptions(TRAIN_IMAGES.read_bytes())[case]
    path = write(
        tmp_path, f"{case}.idx", gzip.compress(data, compresslevel=1) if compressed else data
    )
    with pytest.raises(DatasetError, match=cause) as info:
        read_idx(path)
    assert info.value.path == path
    assert str(path) in str(info.value)


def test_limit_still_checks_a_raw_files_size(tmp_path: Path) -> None:
    path = write(tmp_path, "padded", TRAIN_IMAGES.read_bytes() + b"\x00" * 3)
    with pytest.raises(DatasetError, match="does not match its header"):
        read_idx(path, limit=5)


def test_broken_gzip_stream_is_a_dataset_error(tmp_path: Path) -> None:
    packed = gzip.compress(TRAIN_LABELS.read_bytes())
    cut = write(tmp_path, "cut.gz", packed[: len(packed) // 2])
    flipped = bytearray(packed)
    flipped[-6] ^= 0xFF  # inside the CRC trailer
    bad_crc = write(tmp_path, "crc.gz", bytes(flipped))
    for path in (cut, bad_crc):
        with pytest.raises(DatasetError, match=r"gzip|truncated|cannot read"):
            read_idx(path)
        with pytest.raises(DatasetError):
            md5_file(path)


def test_missing_file_names_the_folder_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dlgrade data") as info:
        find_file(tmp_path, "t10k-images-idx3-ubyte")
    assert info.value.path == tmp_path
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "nope")


def test_find_file_prefers_the_uncompressed_file(tmp_path: Path) -> None:
    stem = "t10k-labels-idx1-ubyte"
    write(tmp_path, f"{stem}.gz", b"x")
    assert find_file(tmp_path, stem).name == f"{stem}.gz"
    write(tmp_path, stem, b"y")
    assert find_file(tmp_path, stem).name == stem


# --- load_split / load_scaled / verify ---


def test_load_split_types_and_ranges() -> None:
    images, labels = load_split(SLICES, "FashionMNIST", train=True, limit=300)
    assert images.shape == (300, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (300,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(10))


def test_load_scaled_is_the_course_normalization() -> None:
    x, y = load_scaled(SLICES, "MNIST", train=False, limit=100)
    images, labels = load_split(SLICES, "MNIST", train=False, limit=100)
    assert x.shape == (100, 784) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x, images.reshape(100, 784).astype(np.float32) / 255.0)
    np.testing.assert_array_equal(y, labels)


def _copy_split(tmp_path: Path, images: Path, labels: Path) -> Path:
    raw = raw_dir(tmp_path, "MNIST")
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(images.read_bytes())
    (raw / "t10k-labels-idx1-ubyte").write_bytes(labels.read_bytes())
    return tmp_path


def test_images_and_labels_of_different_lengths_are_rejected(tmp_path: Path) -> None:
    root = _copy_split(tmp_path, SLICES / "MNIST/raw/t10k-images-idx3-ubyte", TRAIN_LABELS)
    with pytest.raises(DatasetError, match="1000 images but 2000 labels"):
        load_split(root, "MNIST", train=False)


def test_images_where_labels_belong_are_rejected(tmp_path: Path) -> None:
    root = _copy_split(tmp_path, TRAIN_IMAGES, TRAIN_IMAGES)
    with pytest.raises(DatasetError, match="labels of shape"):
        load_split(root, "MNIST", train=False)


def test_unknown_dataset_is_an_error() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'KMNIST'"):
        load_split(SLICES, "KMNIST", train=True)


def test_verify_accepts_the_slices_with_their_table_and_flags_them_against_the_real_one() -> None:
    for name in DATASETS:
        assert verify(SLICES, name, table=slice_table()) == []
        problems = verify(SLICES, name)
        assert len(problems) == 4 and all("md5" in p for p in problems)


def test_verify_reports_a_missing_file(tmp_path: Path) -> None:
    problems = verify(tmp_path, "MNIST")
    assert len(problems) == 4 and all("missing" in p for p in problems)


# --- against the full data (CI places it first) ---


@pytest.mark.slow
@pytest.mark.parametrize("name", DATASETS)
def test_full_files_verify_and_load(name: str) -> None:
    root = full_root()
    assert verify(root, name) == []
    for train, count in ((True, 60000), (False, 10000)):
        images, labels = load_split(root, name, train=train)
        assert images.shape == (count, 28, 28) and labels.shape == (count,)
        assert np.bincount(labels, minlength=10).min() > count // 20


@pytest.mark.slow
@pytest.mark.parametrize("relative", sorted(SLICES_TABLE))
def test_slices_are_exact_prefixes_of_the_full_files(relative: str) -> None:
    full = (full_root() / relative).read_bytes()
    part = (SLICES / relative).read_bytes()
    header = 8 if "labels" in relative else 16
    assert part[:4] == full[:4] and part[8:header] == full[8:header]
    assert struct.unpack(">I", part[4:8])[0] == SLICES_TABLE[relative]["count"]
    assert full.startswith(part[header:], header)
    assert hashlib.md5(full).hexdigest() == SLICES_TABLE[relative]["source_md5"]


@pytest.mark.slow
def test_make_slices_reproduces_the_committed_slices() -> None:
    root = full_root()
    result = subprocess.run(
        [sys.executable, str(SLICES / "make_slices.py"), "--root", str(root), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok ") == 8
