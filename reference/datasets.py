"""Moved to ``graders.numerics.datasets`` (the data reader is machinery the student kit ships).

Kept as an alias only while ``graders/questions/q3_fashion_mlp`` still imports it from here.
"""

from graders.numerics.datasets import (
    DATASETS,
    FILES,
    DatasetError,
    IdxFile,
    expected_files,
    find_file,
    load_pixels,
    load_scaled,
    load_split,
    md5_file,
    open_uncompressed,
    raw_dir,
    read_idx,
    verify,
)

__all__ = [
    "DATASETS",
    "FILES",
    "DatasetError",
    "IdxFile",
    "expected_files",
    "find_file",
    "load_pixels",
    "load_scaled",
    "load_split",
    "md5_file",
    "open_uncompressed",
    "raw_dir",
    "read_idx",
    "verify",
]
