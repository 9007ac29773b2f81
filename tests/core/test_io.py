"""File helpers: large CSV files written by DuckDB byte for byte as pandas writes them; large
DuckDB results read into pandas chunk by chunk, equal to ``df()``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from customerlens.outputs import files as _io


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


def test_fetch_pandas_streams_chunks_equal_to_df():
    """The segmentation reads millions of customers chunk by chunk into columns allocated once; the
    frame must be the one ``df()`` gives, dtypes included, also when a NULL first shows up late.
    """
    import pytest

    from customerlens.core.db import connect, fetch_all, fetch_pandas

    con = connect()
    fetch_all(con, """CREATE TEMP TABLE t AS SELECT i, i * 1.5 AS f, 'c' || i AS s,
        CASE WHEN i % 5 = 0 THEN NULL ELSE 'x' END AS text_nulls,
        TIMESTAMP '2020-01-01' + to_seconds(i) AS ts, i % 2 = 0 AS flag,
        CASE WHEN i % 3 = 0 THEN NULL ELSE i % 2 = 0 END AS flag_nulls,
        CASE WHEN i > 9000 THEN NULL ELSE i END AS late_null
        FROM range(10000) r(i) ORDER BY i""")
    sql = "SELECT * FROM t"
    expected = con.sql(sql).df()
    assert str(expected["late_null"].dtype) == "Int64"  # integers with a NULL: nullable, not float
    for chunk_vectors in (1, 2, 128):  # 2,048-row chunks, 4,096, everything in the first
        got = fetch_pandas(con, sql, chunk_vectors=chunk_vectors)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    pd.testing.assert_frame_equal(fetch_pandas(con, sql, rows=10000, chunk_vectors=1), expected)
    empty = sql + " WHERE i < 0"
    pd.testing.assert_frame_equal(fetch_pandas(con, empty), con.sql(empty).df())
    for wrong in (9999, 10001, 100):  # a wrong row count is an error, not a truncated or padded table
        with pytest.raises(ValueError, match="rows"):
            fetch_pandas(con, sql, rows=wrong, chunk_vectors=1)
    assert fetch_all(con, "SELECT count(*) FROM t") == [(10000,)]  # the connection takes work again


def test_cached_text_is_made_once_and_an_unwritable_cache_is_no_error(tmp_path, monkeypatch):
    from customerlens.core.files import CACHE_ENV, cached_text

    calls = []

    def make() -> str:
        calls.append(1)
        return "bundle ü"

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    assert cached_text("x-1.js", make) == "bundle ü" and (tmp_path / "cache" / "x-1.js").is_file()
    assert cached_text("x-1.js", make) == "bundle ü" and len(calls) == 1  # read back, not made again
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["x-1.js"]  # no temporary file left
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))  # a folder inside a file: cannot be created
    assert cached_text("x-1.js", make) == "bundle ü" and len(calls) == 2


def test_to_pandas_gives_the_frame_df_gives():
    """Relations come to pandas through Arrow (ten times faster for text); the frame must be ``df()``'s,
    dtypes included: decimals and huge integers as floats, dates as timestamps, integers and booleans
    with a NULL as nullable types, text with and without NULLs, no rows, and types Arrow gives otherwise.
    """
    import duckdb

    from customerlens.core.db import to_pandas

    con = duckdb.connect()
    queries = [
        """SELECT * FROM (VALUES (1, true, DATE '2020-01-02', 1.5::DECIMAL(10, 2), 'a', TIMESTAMP '2020-01-01 10:00',
            2::BIGINT, 1.0::FLOAT, 5::HUGEINT, 7::UTINYINT, 8::USMALLINT, 3::TINYINT, TIMESTAMPTZ '2020-01-01 10:00+02'),
            (NULL, NULL, NULL, NULL, NULL, NULL, 3, NULL, NULL, NULL, NULL, NULL, NULL))
            t(i, b, d, dec, s, ts, bi, f, h, u, us, ti, tz)""",
        "SELECT 1::INTEGER i, true b, 2::UTINYINT u, 'x' s, DATE '2021-01-01' d, 2.5::DECIMAL(4, 1) dec",
        "SELECT 1::INTEGER i, 'x' s WHERE false",
        "SELECT [1, 2] l, {'a': 1} st, INTERVAL 1 DAY iv, 1 i",
        "SELECT 1 a, 2 a",
        "SELECT NULL n, NULL::VARCHAR v",
        "SELECT 'c' || i AS s, i FROM range(5000) r(i)",
    ]
    for sql in queries:
        relation = con.sql(sql)
        pd.testing.assert_frame_equal(to_pandas(relation), relation.df(), check_exact=True)
