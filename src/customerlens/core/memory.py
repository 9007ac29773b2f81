"""How much memory a dense block may take, and a clear error before one that would not fit.

Large catalogues (a grocery chain's 70,000 products) turn innocent ``toarray()`` calls into
gigabytes: a product x product matrix at 59,000 products is 13 GB in float32, and the kernel kills
the process without a word. Every dense block whose size grows with the catalogue goes through
:func:`check` (a :class:`~customerlens.errors.MemoryLimitError` naming the block, its size and what
to do, instead of a kill) or is cut into row batches by :func:`batch_rows`.

What is available: the kernel's ``MemAvailable``, the container's (cgroup v2 or v1) limit less its
use, and ``CUSTOMERLENS_MEMORY_LIMIT`` (``3GB``, ``500MB``, ``2GiB``) when set: the smallest of them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from customerlens.errors import MemoryLimitError

#: Cap on the memory customerlens plans for, e.g. ``3GB`` (default: what the machine has free).
LIMIT_ENV = "CUSTOMERLENS_MEMORY_LIMIT"
#: Share of the available memory one dense block may take: the rest of the work needs room too.
SHARE = 0.5
#: Bytes one batch of dense score rows may take (:func:`batch_rows`).
BATCH_BYTES = 64 * 2**20
_SCALE = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30,
          "TIB": 2**40}


def size_bytes(text: str) -> int:
    """Bytes in a size such as ``3GB``, ``500 MiB`` or ``1048576`` (KB = 1000 bytes, KiB = 1024)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Z]*)", str(text).strip().upper().replace(" ", ""))
    if not match or match.group(2) not in {"", *_SCALE}:
        raise ValueError(f"not a memory size: {text!r} (give one such as 3GB or 500MB)")
    return int(float(match.group(1)) * _SCALE[match.group(2) or "B"])


def available_bytes() -> int:
    """Memory this process can still take: free memory, the container's room and the user's cap, least first."""
    found = [value for value in (_meminfo_available(), _cgroup_room()) if value is not None]
    cap = os.environ.get(LIMIT_ENV)
    if cap:
        try:
            found.append(size_bytes(cap))
        except ValueError as exc:
            raise MemoryLimitError(f"{LIMIT_ENV}: {exc}") from None
    return min(found) if found else 8 * 2**30  # no /proc (not Linux): assume a laptop's 8 GB


def peak_rss_bytes() -> int:
    """The process's peak resident memory so far (the kernel's ``ru_maxrss``; kilobytes on Linux, bytes on macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def human(nbytes: float) -> str:
    """``1.5 GB``, ``320 MB``: a size for people."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:,.1f} {unit}"
    return f"{nbytes:,.0f} bytes"


def check(nbytes: float, what: str, hint: str) -> None:
    """Raise :class:`MemoryLimitError` when a block of ``nbytes`` would take over half of what is available.

    ``what`` names the block (``"EASE's 6,000 x 6,000 product weights"``), ``hint`` says what the
    user can do about it.
    """
    room = available_bytes()
    if nbytes > SHARE * room:
        raise MemoryLimitError(f"{what} needs about {human(nbytes)} of memory and {human(room)} is available "
                               f"({LIMIT_ENV} or the machine's free memory): {hint}")


def batch_rows(columns: int, arrays: int = 1, itemsize: int = 8, budget: int = BATCH_BYTES) -> int:
    """How many rows of ``arrays`` dense ``columns``-wide arrays fit in ``budget`` bytes (at least 1)."""
    return max(1, int(budget // max(1, columns * arrays * itemsize)))


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _cgroup_room() -> int | None:
    """The container's memory limit less what it uses (cgroup v2, else v1); None without a limit.

    Page cache the kernel can drop (``inactive_file``) does not count as used.
    """
    for folder, limit_name, usage_name in (("/sys/fs/cgroup", "memory.max", "memory.current"),
                                           ("/sys/fs/cgroup/memory", "memory.limit_in_bytes",
                                            "memory.usage_in_bytes")):
        try:
            limit = (Path(folder) / limit_name).read_text().strip()
            usage = int((Path(folder) / usage_name).read_text().strip())
        except (OSError, ValueError):
            continue
        if not limit.isdigit() or int(limit) >= 2**60:
            return None
        try:
            stat = (Path(folder) / "memory.stat").read_text()
        except OSError:
            stat = ""
        cache = re.search(r"^(?:total_)?inactive_file (\d+)", stat, re.MULTILINE)
        return max(0, int(limit) - usage + (int(cache.group(1)) if cache else 0))
    return None
