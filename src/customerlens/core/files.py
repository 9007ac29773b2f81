"""Small file helpers shared by every layer: hashing, atomic writes and the cache folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    A crash or an exception leaves the previous ``target`` (if any) untouched
    and removes the temporary file.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # let the writer create it (DuckDB refuses an existing empty file)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        for leftover in (tmp_path, Path(str(tmp_path) + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def write_text_atomic(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` as UTF-8, atomically (a temporary file, then a rename); returns the path."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


#: Environment variable naming the cache folder (default: ``$XDG_CACHE_HOME/customerlens`` or ``~/.cache/customerlens``).
CACHE_ENV = "CUSTOMERLENS_CACHE"


def cache_dir() -> Path:
    """The folder for derived, re-creatable files (for example the Vega bundle the report embeds)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "customerlens"


def cached_text(name: str, make: Callable[[], str]) -> str:
    """The text cached under ``name`` in :func:`cache_dir`, made (and stored atomically) when missing.

    ``name`` must change whenever ``make`` would give another text (put a version in it). A cache
    folder that cannot be written is not an error: the text is made and returned.
    """
    path = cache_dir() / name
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return path.read_text(encoding="utf-8")
    text = make()
    with contextlib.suppress(OSError):
        write_text_atomic(path, text)
    return text
