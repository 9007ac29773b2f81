"""DuckDB helpers used by every stage.

DuckDB 2 refuses new work on a connection while an ``execute`` result is not
fully fetched, so queries go through these helpers, which always drain it.
"""

from __future__ import annotations

import itertools
from typing import Any

import duckdb


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory connection for a run: no terminal progress bar (the CLI shows its own), and
    spilling (beyond the memory limit) into a folder of its own under the system's temporary
    directory, which DuckDB creates when it first spills and removes when the connection closes
    (DuckDB's default is ``.tmp`` in the current directory)."""
    import os
    import tempfile

    con = duckdb.connect()
    run(con, "SET enable_progress_bar = false")
    spill = os.path.join(tempfile.gettempdir(), f"customerlens-spill-{os.getpid()}-{next(_CONNECTIONS)}")
    run(con, f"SET temp_directory = '{spill.replace(chr(39), chr(39) * 2)}'")
    return con


_CONNECTIONS = itertools.count(1)  # spill folders of one process apart


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
