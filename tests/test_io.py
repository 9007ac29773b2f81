"""File helpers: large CSV files written by DuckDB byte for byte as pandas writes them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from customerlens import _io


def _awkward_frame(n: int = 1000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)],
        "name": ["a,b", 'say "hi"', "line\nbreak", "plain", None, "ünï", " sp ", ""] * (n // 8),
        "segment_id": rng.integers(1, 5, n),
        "monetary": rng.normal(size=n) * 10.0 ** rng.integers(-8, 9, n),
        "p_alive": np.where(rng.random(n) < 0.1, np.nan, rng.random(n)),
        "edge": [np.inf, -np.inf, 0.0, -0.0, 1e-300, 123456789012345.0, 0.1, 2.5] * (n // 8),
        "flag": [True, False] * (n // 2),
        "last_purchase": pd.to_datetime("2011-01-01 13:45") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
        "orders": pd.array([1, None] * (n // 2), dtype="Int64"),
        "score32": rng.random(n).astype("float32"),
        "mixed": [1, "x"] * (n // 2),
    })
    frame["segment_name"] = pd.Categorical(["High-Value", "At-Risk"] * (n // 2))
    return frame


def test_large_csv_by_duckdb_equals_pandas(tmp_path, monkeypatch):
    frame = _awkward_frame()
    expected = tmp_path / "pandas.csv"
    frame.to_csv(expected, index=False, float_format="%.12g", date_format="%Y-%m-%d")
    monkeypatch.setattr(_io, "FAST_CSV_ROWS", 10)  # take the DuckDB path for this small frame
    written = _io.write_csv_atomic(frame, tmp_path / "duckdb.csv")
    assert written.read_bytes() == expected.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary file left
