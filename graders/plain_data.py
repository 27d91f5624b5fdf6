"""Reading what a kernel produced, as hostile input: plain data only, checked before parsing.

Everything here comes out of the student's kernel, so nothing is trusted: an ``.npy`` header
may claim 8 TiB, a JSON document may nest a million deep or hold ``10**400``, an archive may
be a zip bomb. Each reader checks sizes, shapes and depth *before* it allocates or recurses,
and raises ``PlainDataError`` (a ``ValueError``) naming the file and the problem; the caller
turns that into a failed probe step for the student, never into a grader crash.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

MAX_ARTIFACT_BYTES = 64 << 20
"""One artifact (an ``.npz`` or a ``.json``)."""
MAX_JSON_BYTES = 16 << 20
MAX_JSON_DEPTH = 64
MAX_ARRAYS = 256
"""Arrays in one ``.npz``."""
_NUMERIC_KINDS = frozenset("biuf")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_MAX_INT_DIGITS = 18
"""Longer integers are read as floats (``10**400`` becomes ``inf``): checks see an impossible
value they can fail, not a number every float conversion would overflow on."""


class PlainDataError(ValueError):
    """A probe file that is not acceptable plain data; the message says which and why."""


class ZipDirectoryTooLarge(PlainDataError):
    """An archive whose central directory lists more than its reader allows."""


_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_EOCD = b"PK\x06\x06"
_ZIP64_EOCD_SIZE = 56
_MAX_COMMENT = 1 << 16
ZIP_TAIL_BYTES = _MAX_COMMENT + _EOCD_SIZE + _ZIP64_LOCATOR_SIZE + _ZIP64_EOCD_SIZE
"""The end of an archive that holds every record ``zip_directory`` reads."""
_CENTRAL_ENTRY_SIZE = 46
_MAX_NAME = 255


@dataclass(frozen=True, kw_only=True)
class ZipDirectory:
    """What an archive's end records say of its central directory, read as ``zipfile`` reads
    them: the last end record, replaced by the ZIP64 one when its locator precedes it."""

    entries: int
    size: int
    zip64: bool


def zip_directory(tail: bytes, total: int, *, name: str) -> ZipDirectory:
    """The central directory ``zipfile`` will read, from the archive's last ``ZIP_TAIL_BYTES``
    (``tail``) and its length (``total``).

    ``zipfile`` parses every entry its directory's *size* covers before anyone can count them,
    and a ZIP64 end record overrides the 16-bit counts of the ordinary one: an archive whose
    end record said 0 entries and whose ZIP64 record said a million took 285 MiB and 11 s
    before the old check (which read the 16-bit fields) ran. So the record found here is the
    one ``zipfile`` will use, found the way it finds it.
    """
    offset = total - len(tail)  # where ``tail`` starts in the archive
    if total >= _EOCD_SIZE and tail[-_EOCD_SIZE:][:4] == _EOCD and tail[-2:] == b"\0\0":
        end = total - _EOCD_SIZE  # zipfile's first guess: no comment
    else:
        window = max(total - _MAX_COMMENT - _EOCD_SIZE, 0)
        found = tail[window - offset :].rfind(_EOCD) if window >= offset else -1
        if found < 0 or total - (window + found) < _EOCD_SIZE:
            raise PlainDataError(f"{name} is not a zip archive")
        end = window + found
    record = tail[end - offset : end - offset + _EOCD_SIZE]
    entries = int.from_bytes(record[10:12], "little")
    size = int.from_bytes(record[12:16], "little")
    locator = end - _ZIP64_LOCATOR_SIZE - offset
    if locator >= 0 and tail[locator : locator + 4] == _ZIP64_LOCATOR:
        start = locator - _ZIP64_EOCD_SIZE
        if start < 0:
            raise PlainDataError(f"{name}: its ZIP64 end record is cut off")
        if tail[start : start + 4] == _ZIP64_EOCD:  # zipfile ignores a locator without one
            return ZipDirectory(
                entries=int.from_bytes(tail[start + 32 : start + 40], "little"),
                size=int.from_bytes(tail[start + 40 : start + 48], "little"),
                zip64=True,
            )
    return ZipDirectory(entries=entries, size=size, zip64=False)


def check_zip_directory(tail: bytes, total: int, *, name: str, max_entries: int) -> None:
    """Refuse an archive whose central directory is larger than ``max_entries`` entries can be
    (checked before ``zipfile`` builds an object per entry)."""
    directory = zip_directory(tail, total, name=name)
    if directory.entries > max_entries:
        raise ZipDirectoryTooLarge(
            f"{name} lists {directory.entries} entries (limit {max_entries})"
        )
    if directory.size > max_entries * (_CENTRAL_ENTRY_SIZE + 3 * _MAX_NAME) or (
        directory.size > total
    ):
        raise ZipDirectoryTooLarge(f"{name} has a central directory of {directory.size} bytes")


def open_zip(data: bytes, *, name: str, max_entries: int) -> zipfile.ZipFile:
    """A zip archive from kernel output, its directory checked before Python reads it.

    ``zipfile`` builds an object for every entry the central directory lists (5.7 million of
    them took 2.4 GB) and, before Python 3.12, reads entries whose data overlap (64 entries of
    64 MiB from one 64 MiB file). So the end record's entry count and directory size come
    first (``check_zip_directory``); then the entries must have unique names and lie one after
    another in the file.
    """
    check_zip_directory(data[-ZIP_TAIL_BYTES:], len(data), name=name, max_entries=max_entries)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise PlainDataError(f"{name} is not a valid zip archive: {exc}") from None
    infos = sorted(archive.infolist(), key=lambda i: i.header_offset)
    if len({i.filename for i in infos}) != len(infos):
        archive.close()
        raise PlainDataError(f"{name} holds two entries of the same name")
    stops = [i.header_offset for i in infos[1:]] + [len(data)]
    for info, stop in zip(infos, stops, strict=False):
        if info.header_offset + 30 + len(info.filename) + info.compress_size > stop:
            archive.close()
            raise PlainDataError(f"{name}: the entries' data overlap")
    return archive


def _number(text: str) -> int | float:
    digits = text.lstrip("-")
    return int(text) if len(digits) <= _MAX_INT_DIGITS else float(text)


def json_depth(data: bytes) -> int:
    """The deepest nesting of ``data``'s arrays and objects (strings are skipped), vectorized so
    that a document of brackets only costs no more than reading it."""
    stripped = np.frombuffer(_STRINGS.sub(b'""', data), dtype=np.uint8)
    opens = np.isin(stripped, (ord("["), ord("{"))).astype(np.int32)
    closes = np.isin(stripped, (ord("]"), ord("}"))).astype(np.int32)
    if not stripped.size:
        return 0
    return int(np.cumsum(opens - closes).max(initial=0))


def load_json(data: bytes, *, name: str) -> Any:
    """A JSON document from kernel output, size and depth checked first."""
    if len(data) > MAX_JSON_BYTES:
        raise PlainDataError(f"{name} is {len(data)} bytes (limit {MAX_JSON_BYTES})")
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise PlainDataError(f"{name} nests {depth} levels deep (limit {MAX_JSON_DEPTH})")
    try:
        return json.loads(data.decode("utf-8"), parse_int=_number)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PlainDataError(f"{name} is not valid JSON: {exc}") from None


def _check_npy(member: IO[bytes], size: int, what: str) -> None:
    """An ``.npy`` member's header: numeric dtype, no pickles, and a shape that fits ``size``."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise PlainDataError(f"{what}: unsupported .npy version {version}")
    if dtype.hasobject or dtype.kind not in _NUMERIC_KINDS:
        raise PlainDataError(f"{what}: dtype {dtype} is not a plain number type")
    if not all(type(n) is int and n >= 0 for n in shape):
        # (-2, -4) holds 8 items by their product, and (True, 8) as many: numpy passes the
        # header and fails only when a check loads it, as if the grader were broken.
        raise PlainDataError(f"{what}: shape {tuple(shape)} is not a list of sizes")
    items = math.prod(shape)
    data_bytes = items * dtype.itemsize
    if data_bytes != size - member.tell():
        raise PlainDataError(
            f"{what}: its header claims shape {tuple(shape)} ({data_bytes} bytes), "
            f"but it holds {size - member.tell()}"
        )


def check_npz(data: bytes, *, name: str) -> None:
    """Every header of an ``.npz`` checked without loading an array (a bomb never unpacks)."""
    if len(data) > MAX_ARTIFACT_BYTES:
        raise PlainDataError(f"{name} is {len(data)} bytes (limit {MAX_ARTIFACT_BYTES})")
    try:
        with open_zip(data, name=name, max_entries=MAX_ARRAYS) as archive:
            members = archive.infolist()
            if sum(m.file_size for m in members) > MAX_ARTIFACT_BYTES:
                raise PlainDataError(f"{name} unpacks to more than {MAX_ARTIFACT_BYTES} bytes")
            for member in members:
                if not member.filename.endswith(".npy") or member.is_dir():
                    raise PlainDataError(f"{name}: {member.filename!r} is not an array")
                with archive.open(member) as fh:
                    _check_npy(fh, member.file_size, f"{name}/{member.filename}")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise PlainDataError(f"{name} is not a valid .npz: {exc}") from None
    except ValueError as exc:
        if isinstance(exc, PlainDataError):
            raise
        raise PlainDataError(f"{name} has a broken array header: {exc}") from None


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` artifact, headers checked first, never with pickles."""
    data = path.read_bytes()
    check_npz(data, name=path.name)
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


def load_json_file(path: Path) -> Any:
    if path.stat().st_size > MAX_JSON_BYTES:
        raise PlainDataError(f"{path.name} is larger than {MAX_JSON_BYTES} bytes")
    return load_json(path.read_bytes(), name=path.name)
