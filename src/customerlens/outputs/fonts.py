"""The fonts vl-convert lays out and draws the charts' text with: its own Liberation Sans where that draws all of it.

vl-convert (through ``fontdb``) knows the machine's fonts as files and opens, maps and unmaps a
face's file again for every glyph it measures or draws: about 0.1 ms a glyph, 26,000 file openings
and 0.7 of the 1.5 s Vega's layout of a run's 13 SVGs took on Online Retail, 0.5 of the 1.3 s of
their PNGs. It also carries Liberation Sans in memory: the font ``sans-serif`` (Vega's) resolves to
on Linux, metric-compatible with Arial and Helvetica, what it resolves to elsewhere.

So in customerlens's own processes (:mod:`customerlens.core.process`) on Linux, where every
character of the charts is one Liberation Sans draws (Latin, and the punctuation of product names
and Vega's labels), vl-convert is given none of the machine's fonts: text measured and drawn from
memory, in Liberation Sans 2 (Arial's metrics) whatever the machine has. The SVG files of an Online
Retail run are the same bytes as with the machine's Liberation Sans 1.07; elsewhere a label's width
can differ by a few pixels (1.07's digit one is wider), and the PNGs' glyphs differ at their edges.
Charts with any other character (Greek, Cyrillic, CJK, Arabic, emoji) keep the machine's fonts, which
draw them. A user's process keeps them too: the choice holds for the whole process.

vl-convert settles its fonts once per process, at its first text: :func:`settle` comes first, and a
run's worker process is told the fonts its caller drew with (the same PNG bytes whoever draws them).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: a fontconfig file naming one font folder, its own, which holds no fonts
BUILTIN_ONLY = Path(__file__).with_name("fontconfig") / "builtin-only.conf"

#: the characters Liberation Sans draws that charts use: Basic Latin, Latin-1 and Latin Extended-A,
#: and the punctuation of product names and of Vega's labels (its ellipsis for a label cut short)
_LATIN = (0xA0, 0x17F)  # beyond ASCII
_MARKS = frozenset("\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2020\u2021\u2022\u2026\u2030\u2039\u203a"
                   "\u20ac\u2122")

_settled: bool | None = None  # None: vl-convert has drawn no text here yet; else whether it has its own font alone


def drawable(text: str) -> bool:
    """Whether Liberation Sans draws every character of ``text`` (control characters, which no font draws, aside)."""
    return text.isascii() or all(c.isascii() or _LATIN[0] <= ord(c) <= _LATIN[1] or c in _MARKS for c in set(text))


def covers(specs: Iterable[Any]) -> bool:
    """Whether Liberation Sans draws every string of these Vega-Lite specs (titles, labels, data values).

    Read off their JSON text at once (a scatter of 4,000 customers is 360 KB of it).
    """
    return drawable(json.dumps(list(specs), ensure_ascii=False, default=str))


def settle(builtin: bool) -> bool:
    """Before this process's first chart: vl-convert with its own Liberation Sans alone when ``builtin``.

    Only in customerlens's own processes on Linux (fontconfig); elsewhere, or once this process has
    drawn text, nothing changes. Returns the fonts in effect: True for vl-convert's own alone.
    """
    global _settled
    if _settled is None:
        from customerlens.core.process import own

        _settled = bool(builtin and own() and sys.platform.startswith("linux") and _builtin_only())
    return _settled


def settle_for(specs: Iterable[Any]) -> bool:
    """:func:`settle` for charts of these Vega-Lite specs (their text read only if this process has not settled)."""
    return settle(covers(specs)) if _settled is None else _settled


def ready() -> None:
    """Called before vl-convert measures or draws text: the machine's fonts, unless :func:`settle` chose first."""
    settle(False)


def _builtin_only() -> bool:
    """vl-convert's fonts settled now, from a fontconfig file that names none; this process's environment restored."""
    import vl_convert as vlc

    before = os.environ.get("FONTCONFIG_FILE")
    os.environ["FONTCONFIG_FILE"] = str(BUILTIN_ONLY)
    try:
        # its font database is made at its first text, once for the process
        vlc.svg_to_png('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">'
                       '<text x="0" y="7" font-size="7">a</text></svg>')
    finally:
        if before is None:
            del os.environ["FONTCONFIG_FILE"]
        else:
            os.environ["FONTCONFIG_FILE"] = before
    return True
