"""The DuckDB store: one file per run holding every table a run produced.

Tables (later stages add theirs):

``transactions``       clean lines, ordered by ``source_row``
``excluded_lines``     ``source_row, rule``: every input line that was removed, and why
``customer_features``  one row per customer, ordered by ``customer_id``
``quality_report``     lines and revenue per cleaning rule
``run``                one row: input file and its SHA-256, parameters, versions,
                       schema mapping, quality summary, time

The file is built under a temporary name beside the target and renamed over
it only when complete, so a reader never sees half a store and a failed run
leaves the previous store intact. Re-running the same command on the same
input gives identical tables (the ``run`` table's ``created_at`` aside).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import duckdb

from customerlens.core.db import fetch_all, quote, run
from customerlens.core.files import atomic_path

STORE_NAME = "customerlens.duckdb"

#: ORDER BY used when writing each known table, so files are reproducible.
ORDER = {
    "transactions": "source_row",
    "excluded_lines": "source_row",
    "customer_features": "customer_id",
    "quality_report": "position",
    "recommendations": "customer_id, rank",
}


def write_store(
    path: str | Path,
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, Any],
    run_record: Mapping[str, Any],
    presorted: Collection[str] = (),
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
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        alias = "_cl_store"
        run(con, f"ATTACH '{str(tmp).replace(chr(39), chr(39) * 2)}' AS {alias}")
        try:
            for name, data in tables.items():
                view = f"_cl_write_{name}"
                con.register(view, data)
                try:
                    order = None if name in presorted else ORDER.get(name)
                    order_sql = f" ORDER BY {order}" if order else ""
                    run(con, f"CREATE TABLE {alias}.{quote(name)} AS SELECT * FROM {view}{order_sql}")
                finally:
                    con.unregister(view)
            record = {k: _jsonable(v) for k, v in run_record.items()}
            run(
                con,
                f"CREATE TABLE {alias}.run (created_at TIMESTAMP, record JSON)",
            )
            run(
                con,
                f"INSERT INTO {alias}.run VALUES (?, ?)",
                [dt.datetime.now(dt.UTC).replace(tzinfo=None), json.dumps(record, sort_keys=True)],
            )
        finally:
            run(con, f"DETACH {alias}")
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def open_store(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open a store read-only."""
    path = Path(path)
    if not path.is_file():
        from customerlens.errors import InputError

        raise InputError(f"{path}: no customerlens store here (run `customerlens run` first)")
    return duckdb.connect(str(path), read_only=True)


def read_run_record(path: str | Path) -> dict:
    con = open_store(path)
    try:
        rows = fetch_all(con, "SELECT record FROM run")
    finally:
        con.close()
    return json.loads(rows[0][0])


def table_names(path: str | Path) -> list[str]:
    con = open_store(path)
    try:
        return sorted(r[0] for r in fetch_all(con, "SELECT table_name FROM information_schema.tables"))
    finally:
        con.close()
