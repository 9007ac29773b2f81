"""customerlens's own processes (the CLI's and a run's worker's): settings a library leaves alone elsewhere.

A user's process (a notebook, a script) keeps its own: Python's collector, and the fonts vl-convert
draws their charts with (:mod:`customerlens.outputs.fonts`).
"""

from __future__ import annotations

from customerlens.core.collector import tune_collector

_OWN = False


def claim() -> None:
    """Mark this process as customerlens's own (the CLI's entry point and the worker's loop), and tune it so."""
    global _OWN
    _OWN = True
    tune_collector()


def own() -> bool:
    """Whether :func:`claim` was called in this process."""
    return _OWN
