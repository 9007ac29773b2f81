"""DuckDB helpers used by every stage.

DuckDB 2 refuses new work on a connection while an ``execute`` result is not
fully fetched, so queries go through these helpers, which always drain it.
"""

from __future__ import annotations

from typing import Any

import duckdb


def fetch_all(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> list[tuple]:
    cur = con.execute(sql, params) if params is not None else con.execute(sql)
    return cur.fetchall()


def fetch_one(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> tuple | None:
    rows = fetch_all(con, sql, params)
    return rows[0] if rows else None


def run(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> None:
    fetch_all(con, sql, params)


def quote(name: str) -> str:
    """Quote an identifier for SQL."""
    return '"' + str(name).replace('"', '""') + '"'
