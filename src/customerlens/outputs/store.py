"""The DuckDB store: one file per run holding every table a run produced.

Tables (later stages add theirs):

``transactions``       clean lines, ordered by ``source_row``
``excluded_lines``     ``source_row, rule``: every input line that was removed, and why
``customer_features``  one row per customer, ordered by ``customer_id``
``quality_report``     lines and revenue per cleaning rule
``run``                one row: input file and its SHA-256, parameters, versions,
                       schema mapping, quality summary, time
``previous_customers`` when the folder held an earlier run: its customers' segment, spend,
                       churn risk and value (what the dashboard compares: "what changed")
``previous_run``       that run's time and snapshot date

The file is built under a temporary name beside the target and renamed over
it only when complete, so a reader never sees half a store and a failed run
leaves the previous store intact. Re-running the same command on the same
input gives identical tables (the ``run`` table's ``created_at`` aside).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import shutil
from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from customerlens.core.db import fetch_all, literal, quote, run, to_pandas
from customerlens.core.files import atomic_path
from customerlens.errors import InputError

STORE_NAME = "customerlens.duckdb"

#: ORDER BY used when writing each known table, so files are reproducible.
ORDER = {
    "transactions": "source_row",
    "excluded_lines": "source_row",
    "customer_features": "customer_id",
    "quality_report": "position",
    "recommendations": "customer_id, list DESC, rank",  # the top list, then discover
    "previous_customers": "customer_id",
}


def write_store(
    path: str | Path,
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, Any],
    run_record: Mapping[str, Any],
    presorted: Collection[str] = (),
    started: str | Path | None = None,
) -> Path:
    """Write ``tables`` (DuckDB relations of ``con``, pandas/Polars/Arrow frames) atomically.

    Parameters
    ----------
    path
        Target file, e.g. ``out/customerlens.duckdb``.
    con
        The connection the relations belong to; the store is attached to it.
    tables
        Name to data.
    run_record
        JSON-serialisable facts about the run, stored in the ``run`` table.
    presorted
        Tables already in their :data:`ORDER` (DuckDB relations over an ordered
        table): written as they are read, without a sort (100M lines would need
        gigabytes for it).
    started
        A store file holding the first tables already (:class:`EarlyStore`): it becomes the new
        store, ``tables`` and the run record are added to it.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        if started is not None:
            os.replace(started, tmp)
        with _attached(con, tmp) as alias:
            _create_tables(con, alias, tables, presorted)
            record = {k: _jsonable(v) for k, v in run_record.items()}
            run(con, f"CREATE TABLE {alias}.run (created_at TIMESTAMP, record JSON)")
            run(
                con,
                f"INSERT INTO {alias}.run VALUES (?, ?)",
                [dt.datetime.now(dt.UTC).replace(tzinfo=None), json.dumps(record, sort_keys=True)],
            )
    return path


def write_tables(con: duckdb.DuckDBPyConnection, path: str | Path, tables: Mapping[str, Any],
                 presorted: Collection[str] = ()) -> None:
    """Create ``tables`` in the DuckDB file ``path`` (a new one, or one holding others), attached for the while."""
    with _attached(con, path) as alias:
        _create_tables(con, alias, tables, presorted)


@contextlib.contextmanager
def _attached(con: duckdb.DuckDBPyConnection, path: str | Path) -> Iterator[str]:
    """The DuckDB file ``path`` attached to ``con`` for the block; yields its alias."""
    alias = "_cl_store"
    run(con, f"ATTACH {literal(path)} AS {alias}")
    try:
        yield alias
    finally:
        run(con, f"DETACH {alias}")


def _create_tables(con: duckdb.DuckDBPyConnection, alias: str, tables: Mapping[str, Any],
                   presorted: Collection[str]) -> None:
    for name, data in tables.items():
        view = f"_cl_write_{name}"
        con.register(view, data)
        try:
            order = None if name in presorted else ORDER.get(name)
            order_sql = f" ORDER BY {order}" if order else ""
            run(con, f"CREATE TABLE {alias}.{quote(name)} AS SELECT * FROM {view}{order_sql}")
        finally:
            con.unregister(view)


class EarlyStore:
    """The store's first tables (the lines, the excluded lines, the features), written in a thread.

    A run starts it once its main thread has no more work for DuckDB until the save (the segment
    insights are pandas'), so the copy of the lines into the store file, DuckDB's work, runs beside
    them on the other core. :meth:`result` waits for it and hands over the file, which
    :func:`write_store` completes; :meth:`discard` waits and removes it. Only ``con``'s thread
    is this one meanwhile: the caller does not touch ``con`` until it has waited.
    """

    FILE = "store.duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection, folder: Path, tables: Mapping[str, Any],
                 presorted: Collection[str] = ()):
        import threading

        self.folder = Path(folder)
        self._error: BaseException | None = None
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self._thread = threading.Thread(target=self._write, args=(con, dict(tables), tuple(presorted)),
                                        name="customerlens-store", daemon=True)
        self._thread.start()

    def _write(self, con: duckdb.DuckDBPyConnection, tables: dict, presorted: tuple) -> None:
        try:
            write_tables(con, self.folder / self.FILE, tables, presorted)
        except BaseException as exc:  # raised where the run waits for it
            self._error = exc

    def result(self) -> Path:
        """Wait for the tables; the file that holds them (its exception, if it failed, is raised here)."""
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.folder / self.FILE

    def discard(self) -> None:
        """Wait for the thread, then remove its folder (a run that failed, or whose store took the file)."""
        self._thread.join()
        shutil.rmtree(self.folder, ignore_errors=True)


def _jsonable(value: Any) -> Any:
    """A run-record value as JSON: dates ISO strings, paths text, containers recursively."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def jsonable(value: Any) -> Any:
    """A DuckDB value as JSON: NaN and infinities become null, decimals floats, dates ISO strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def open_store(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open a store read-only; a clear error when there is none."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no customerlens store here (run `customerlens run` first)")
    return duckdb.connect(str(path), read_only=True)


class StoreReader:
    """The one reader of a store, used by the report and the dashboard/API.

    Opens the file read-only and knows its tables and their columns. DuckDB
    connections are not thread-safe: a web server gives each request its own
    :meth:`cursor`. Every value goes into queries as a parameter, never into the
    SQL text.

    Parameters
    ----------
    path
        The store, e.g. ``out/run/customerlens.duckdb``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.con = open_store(self.path)
        try:
            columns: dict[str, list[str]] = {}
            for table, column in fetch_all(self.con, "SELECT table_name, column_name FROM information_schema.columns "
                                           "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"):
                columns.setdefault(table, []).append(column)
            self.columns = columns
            self.record, self.created_at = self._read_record()
        except BaseException:
            self.con.close()
            raise
        self._frames: dict[str, pd.DataFrame] = {}

    def _read_record(self) -> tuple[dict, dt.datetime | None]:
        if "run" not in self.columns:
            return {}, None
        rows = fetch_all(self.con, "SELECT record, created_at FROM run LIMIT 1")
        if not rows:
            return {}, None
        record, created = rows[0]
        return (json.loads(record) if isinstance(record, str) else dict(record or {})), created

    @property
    def names(self) -> set[str]:
        """The store's table names."""
        return set(self.columns)

    def has(self, table: str) -> bool:
        """True when the store has ``table``."""
        return table in self.columns

    def recommendation_list(self, table: str = "") -> str:
        """SQL for each recommendation's list (``top`` or ``discover``), read from ``table`` (an alias).

        The ``list`` column, or ``'top'`` in a store written before there were two lists.
        """
        if "list" not in self.columns.get("recommendations", ()):
            return "'top'"
        return f"{table}.list" if table else "list"

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of its own (one per thread or request)."""
        return self.con.cursor()

    def table(self, name: str) -> pd.DataFrame | None:
        """A whole table as pandas (read once, then cached), None when absent."""
        if name not in self.columns:
            return None
        if name not in self._frames:
            self._frames[name] = to_pandas(self.con.sql(f"SELECT * FROM {quote(name)}"))
        return self._frames[name]

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
        """A parameterised query's result as pandas."""
        return self.cursor().execute(query, list(params or [])).df()

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def query(cur: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    """Rows of a parameterised query as JSON-safe dicts (the result is always drained)."""
    result = cur.execute(sql, params or [])
    names = [d[0] for d in result.description]
    return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in result.fetchall()]


def query_one(cur: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> dict | None:
    """The first row of :func:`query`, None when there is none."""
    rows = query(cur, sql, params)
    return rows[0] if rows else None


def read_run_record(path: str | Path) -> dict:
    """The run record of a store: input, parameters, versions, quality and stage decisions."""
    with StoreReader(path) as store:
        return store.record


def table_names(path: str | Path) -> list[str]:
    """The store's table names, sorted."""
    with StoreReader(path) as store:
        return sorted(store.names)
