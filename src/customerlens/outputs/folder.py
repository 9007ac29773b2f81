"""The output folder as a whole: built beside it, swapped in at the end, written by one run at a time.

A run writes into a staging folder next to ``--out`` (``.NAME.staging-PID``) and
only when every file is there swaps it with the old folder in one step (Linux's
``renameat2(RENAME_EXCHANGE)``; elsewhere two renames, repaired by the next
run). So whatever stops a run (an error, Ctrl+C, SIGTERM, SIGKILL, a full disk),
the folder is wholly the previous run or wholly the new one; files an earlier
run wrote and this one does not (target lists of segments that no longer exist,
charts of another method) are gone with the old folder. Files that are not a
run's outputs (the demo data the CLI generates into ``OUT/demo``, anything a user
keeps there) are carried over into the new folder.

One run at a time: a lock file beside the folder (``.NAME.lock``, holding the
writer's PID) makes a second run into the same folder fail at once with a clear
error, and a lock left by a killed run (its process is gone) is taken over, its
staging folder (and the folder of its store's first tables, ``.NAME.store-PID``,
:class:`customerlens.outputs.store.EarlyStore`) removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from customerlens.errors import CustomerLensError, InputError

#: the top-level names a run writes into its folder; anything else there is the user's and is kept
RUN_ENTRIES = frozenset({
    "customerlens.duckdb", "customer_features.csv", "quality_report.json", "segments.csv", "segment_profiles.csv",
    "top_products.csv", "distinctive_products.csv", "cohorts.csv", "segment_migration.csv", "segmenter.joblib",
    "action_plan.csv", "action_plan.md", "targets", "value.csv", "segment_value.csv", "recommendations.csv",
    "campaign_lift.csv", "campaign_summary.txt", "campaign_summary.json", "charts", "parquet", "report.html",
})
_HELD: set[Path] = set()  # folders this process holds the lock of (a save inside a run takes it once)


class FolderBusyError(CustomerLensError):
    """Another live run is writing the same output folder."""


def lock_path(out_dir: Path) -> Path:
    """The lock file of ``out_dir``: beside it, so that swapping the folder leaves it in place."""
    return out_dir.parent / f".{out_dir.name}.lock"


def staging_path(out_dir: Path, pid: int | None = None) -> Path:
    """Where a run (this process by default) builds the new folder."""
    return out_dir.parent / f".{out_dir.name}.staging-{pid or os.getpid()}"


def early_store_path(out_dir: Path, pid: int | None = None) -> Path:
    """The folder beside ``out_dir`` where a run writes its store's first tables early (``.NAME.store-PID``)."""
    return out_dir.parent / f".{out_dir.name}.store-{pid or os.getpid()}"


def _backup_path(out_dir: Path, pid: int | None = None) -> Path:
    return out_dir.parent / f".{out_dir.name}.previous-{pid or os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


#: Errors of the disk or the folder, not of customerlens: a clear line, the old output folder kept
DISK_ERRORS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


#: The same, as DuckDB words them in its IO errors
DISK_MESSAGES = ("no space left on device", "file too large", "permission denied", "read-only file system",
                 "disk quota exceeded")


def _reason(exc: OSError) -> str:
    """The system's reason for an OS error, in lower case (EACCES as "permission denied")."""
    return "permission denied" if exc.errno == errno.EACCES else (exc.strerror or str(exc)).lower()


def unwritable(folder: Path, exc: OSError) -> InputError:
    """One line for a folder that cannot take files: which folder, and the system's reason."""
    return InputError(f"{folder}: cannot be written ({_reason(exc)})")


def disk_problem(exc: BaseException) -> str | None:
    """The disk's reason when ``exc`` is a full disk, a quota, a file size limit or a permission; else None."""
    if isinstance(exc, OSError) and exc.errno in DISK_ERRORS:
        return _reason(exc)
    if "duckdb" in type(exc).__module__:  # _duckdb.IOException, _duckdb.TransactionException, ...
        text = str(exc).lower()
        return next((message for message in DISK_MESSAGES if message in text), None)
    return None


@contextlib.contextmanager
def folder_lock(out_dir: str | Path) -> Iterator[Path]:
    """Hold the lock of ``out_dir`` for the block; a live holder makes it raise :class:`FolderBusyError`."""
    out_dir = Path(out_dir).absolute()
    if out_dir in _HELD:
        yield out_dir
        return
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder (the output folder)")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InputError(f"{out_dir}: cannot be a folder (a file stands in its path)") from None
    except OSError as exc:
        raise unwritable(out_dir.parent, exc) from None
    lock = lock_path(out_dir)
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    # the lock appears with its content in one step (a hard link to a finished file), so a second run
    # never reads a half-written lock as a stale one
    draft = out_dir.parent / f".{out_dir.name}.lockfile-{os.getpid()}"
    try:
        draft.write_text(record)
        for _ in range(2):
            try:
                os.link(draft, lock)
                break
            except FileExistsError:
                holder = _holder(lock)
                if holder is not None and _alive(holder):
                    raise FolderBusyError(f"{out_dir}: another customerlens run (process {holder}) is writing "
                                          "this folder; wait for it to finish, or write to another folder") from None
                _recover(out_dir, stale_lock=True)  # its process is gone: take the folder over
        else:  # pragma: no cover - the lock came back between two tries
            raise FolderBusyError(f"{out_dir}: another customerlens run is writing this folder")
    except FolderBusyError:
        raise
    except OSError as exc:  # read-only file system, no permission, a folder that takes no files (/proc)
        raise unwritable(out_dir.parent, exc) from None
    finally:
        with contextlib.suppress(OSError):
            draft.unlink()
    try:
        _HELD.add(out_dir)
        _recover(out_dir, stale_lock=False)
        yield out_dir
    finally:
        _HELD.discard(out_dir)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _holder(lock: Path) -> int | None:
    try:
        return int(json.loads(lock.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # unreadable or half written: treated as stale


def _recover(out_dir: Path, stale_lock: bool) -> None:
    """Undo what a killed run left: its lock, staging folders of dead processes, a half-done two-rename swap."""
    if stale_lock:
        with contextlib.suppress(FileNotFoundError):
            lock_path(out_dir).unlink()
    prefix = f".{out_dir.name}."
    for entry in out_dir.parent.glob(f".{out_dir.name}.*-*"):
        kind, _, owner = entry.name[len(prefix):].rpartition("-")
        if kind not in ("staging", "store", "previous", "lockfile") or not owner.isdigit():
            continue
        if int(owner) != os.getpid() and _alive(int(owner)):
            continue  # a live run's
        if kind == "previous" and not out_dir.exists():
            entry.rename(out_dir)  # killed between the two renames: the old folder goes back
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif int(owner) != os.getpid():  # a dead run's lock draft
            entry.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_folder(out_dir: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; when the block ends without error, it becomes ``out_dir``.

    The caller holds :func:`folder_lock`. Entries of the old folder that are not a
    run's outputs (:data:`RUN_ENTRIES`) are moved into the new one first.
    """
    out_dir = Path(out_dir).absolute()
    staging = staging_path(out_dir)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise unwritable(out_dir.parent, exc) from None
    try:
        yield staging
        if out_dir.is_dir():
            for entry in out_dir.iterdir():
                if entry.name not in RUN_ENTRIES and not (staging / entry.name).exists():
                    entry.rename(staging / entry.name)
        _swap(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after the swap it holds the old folder


def _swap(staging: Path, out_dir: Path) -> None:
    """Put ``staging`` in place of ``out_dir`` in one step; the old folder ends up at ``staging``."""
    if not out_dir.exists():
        staging.rename(out_dir)
        staging.mkdir()  # the caller removes it
        return
    if _exchange(staging, out_dir):
        return
    backup = _backup_path(out_dir)
    out_dir.rename(backup)  # a kill here is repaired by the next run (_recover puts it back)
    staging.rename(out_dir)
    backup.rename(staging)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with Linux's ``renameat2(RENAME_EXCHANGE)``; False where it is not there."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange)
    if result != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system or kernel cannot
            return False
        raise OSError(errno, os.strerror(errno), str(b))
    return True
