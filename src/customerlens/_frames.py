"""Frame helpers shared by the stages."""

from __future__ import annotations

from typing import Any

import pandas as pd


def as_pandas(frame: Any) -> pd.DataFrame:
    """Any frame narwhals reads (pandas, Polars, DuckDB, ...) as a pandas DataFrame."""
    if isinstance(frame, pd.DataFrame):
        return frame
    import narwhals as nw

    native = nw.from_native(frame)
    if isinstance(native, nw.LazyFrame):
        native = native.collect()
    return native.to_pandas()


def collect(frame):
    """A narwhals frame, computed if it is lazy."""
    import narwhals as nw

    return frame.collect() if isinstance(frame, nw.LazyFrame) else frame


def count_rows(frame) -> int:
    """Rows of any frame narwhals reads."""
    import narwhals as nw

    return int(collect(nw.from_native(frame).select(nw.len())).item(0, 0))
