"""Where an input lives: a file, a folder or glob of files (Hive-style partitions included), or a URI.

Both engines read the same kinds of input. A folder or a glob stands for the
data files under it (hidden files and Spark's ``_SUCCESS`` markers left out) in
path order; a ``key=value`` folder on the way to a file is a column of every
line in it, as Hive, Spark and DuckDB lay out partitioned tables
(``sales/month=2011-01/part-0.parquet``). A URI (``s3a://``, ``gs://``,
``abfss://``, ``hdfs://``) is a place only Spark can reach: it is handed to
Spark untouched; ``file://`` names a local path and is read by either engine.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from customerlens.errors import InputError

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB = re.compile(r"[*?\[]")
PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = (".csv", ".txt", ".tsv", ".psv", ".dat")


def is_uri(data: object) -> bool:
    """True for ``scheme://...`` text (``file://`` included)."""
    return isinstance(data, str) and bool(_URI.match(data))


def is_remote(data: object) -> bool:
    """True for a URI that is not ``file://``: storage only Spark can read."""
    return is_uri(data) and not str(data).lower().startswith("file://")


def local_path(data: str | Path) -> Path:
    """The local path of ``data``: a plain path, or the path of a ``file://`` URI."""
    if is_uri(data):
        parsed = urlparse(str(data))
        if parsed.scheme.lower() != "file":
            raise InputError(f"{data}: the DuckDB engine reads files on this machine; for {parsed.scheme}:// "
                             "storage run with --engine spark (docs/scale.md)")
        return Path(unquote(parsed.path))
    return Path(data)


def kind_of(name: str) -> str:
    """``parquet``, ``csv`` or the file's own suffix (``.gz`` looked through), from its name."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] in (".gz", ".gzip"):
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in PARQUET_SUFFIXES:
        return "parquet"
    if last in TEXT_SUFFIXES:
        return "csv"
    return last


@dataclass
class FileSet:
    """The data files a folder or glob stands for, in path order, and how they are laid out.

    ``base``: the folder the Hive partition folders start from; ``kind``: ``parquet`` or ``csv``.
    """

    name: str
    files: list[Path]
    kind: str
    base: Path
    label: str  # the folder or glob from the base folder's own name on (no folder of this machine)

    def partitions(self, file: Path) -> dict[str, str]:
        """The ``key=value`` folders between :attr:`base` and ``file``, as columns."""
        parts = file.relative_to(self.base).parts[:-1]
        return dict(part.split("=", 1) for part in parts if "=" in part and not part.startswith("="))


def _data_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(("_", ".")) and not path.name.endswith(".crc")


def _static_prefix(pattern: str) -> Path:
    """The folders of a glob before its first wildcard."""
    parts = Path(pattern).parts
    head = parts[:next(i for i, p in enumerate(parts) if _GLOB.search(p))]
    return Path(*head) if head else Path(".")


def file_set(data: str | Path) -> FileSet | None:
    """The files a folder or glob names (None for a single file or a path that is not there).

    Refuses a folder that holds no data file, or both Parquet and CSV files (name one kind with a glob).
    """
    path = local_path(data)
    text = str(path)
    if _GLOB.search(text) and not path.exists():
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if _data_file(Path(p)))
        base = _static_prefix(text)
        if not files:
            raise InputError(f"{data}: no file matches")
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if _data_file(p)
                       and not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts[:-1]))
        base = path
        if not files:
            raise InputError(f"{data}: the folder holds no data file")
    else:
        return None
    kinds = {kind_of(f.name) for f in files}
    if kinds == {"parquet"} or kinds == {"csv"}:
        label = str(Path(base.resolve().name) / path.relative_to(base)) if path != base else base.resolve().name
        return FileSet(name=str(data), files=files, kind=kinds.pop(), base=base, label=label)
    if kinds <= {"parquet", "csv"}:
        raise InputError(f"{data}: holds both Parquet and CSV files; name one kind with a glob, "
                         f"e.g. '{Path(text) / '**' / '*.parquet'}'")
    other = sorted(k or "(no suffix)" for k in kinds - {"parquet", "csv"})
    raise InputError(f"{data}: a folder or glob is read as Parquet or CSV files; it also holds "
                     f"{', '.join(other)} files (name the data files with a glob, e.g. '*.parquet')")
