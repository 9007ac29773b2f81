"""Dates given by users: snapshot dates and days."""

from __future__ import annotations

import datetime as dt

from customerlens.errors import ConfigError


def parse_as_of(value: str | dt.date | dt.datetime | None, name: str = "as_of") -> dt.datetime | None:
    """Accept ``2011-09-09``, a date or a datetime; ``None`` stays ``None``.

    ``name`` is the parameter named in the error when ``value`` is not a date.
    """
    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        return dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} {value!r} is not a date; use YYYY-MM-DD, e.g. 2011-09-09",
                          parameter=name) from None
