"""Frame helpers shared by the model stages."""

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
