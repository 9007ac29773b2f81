"""Text helpers shared by every layer."""

from __future__ import annotations

import re


def slug(name: str) -> str:
    """A file-name-safe form of a segment name: ``Frequent & Loyal`` -> ``frequent-loyal``."""
    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "segment"
