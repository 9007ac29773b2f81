"""One exception family for everything a user can get wrong.

The CLI turns any :class:`CustomerLensError` into one red line and exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CustomerLensError(Exception):
    """Base class: a problem with the user's input or settings, not a bug."""


class InputError(CustomerLensError):
    """The input cannot be read at all (missing, empty, a directory, bad encoding)."""


class SchemaError(CustomerLensError):
    """The input's columns cannot be mapped to the canonical schema."""


class DataQualityError(CustomerLensError):
    """The values in a column are not what the column should hold."""


class NotFittedError(CustomerLensError, ValueError):
    """A model method was called before ``fit``."""


class ConfigError(CustomerLensError, ValueError):
    """A setting is out of range or of the wrong kind.

    ``parameter`` is the setting's name in the Python API (e.g. ``segmentation.k``
    or ``as_of``); the CLI shows its own flag for it instead (``--k``, ``--as-of``).
    """

    def __init__(self, message: str, parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


class MemoryLimitError(CustomerLensError):
    """A workload would not fit in the memory available (said before it starts, not a kernel kill)."""
