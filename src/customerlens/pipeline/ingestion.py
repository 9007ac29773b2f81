"""The first two stages: load any file or frame, then clean it (``customerlens ingest``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from customerlens.cleaning.rules import CleanResult, clean
from customerlens.core.db import run as run_sql
from customerlens.core.memory import size_bytes
from customerlens.io.load import LoadResult, load
from customerlens.pipeline.config import RunConfig, memory_setting

#: called with each stage's name as it starts
Progress = Callable[[str], None]


def no_progress(stage: str) -> None:
    """The default progress callback: says nothing."""
    return None


@dataclass
class Ingested:
    """Loaded and cleaned transactions, with what was detected and removed."""

    loaded: LoadResult
    cleaned: CleanResult
    as_of: dt.datetime | None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection that holds the lines (in memory, spilling to the temp dir)."""
        return self.loaded.con

    def quality_report(self, paths: bool = True) -> dict:
        """The detected schema and the data-quality report, as ``quality_report.json`` holds them.

        ``paths=False``: the input named by its file name, not its place on this machine.
        """
        return {"schema": self.loaded.schema_report(paths), "quality": self.cleaned.report.as_dict()}


def ingest(
    data: Any,
    config: RunConfig | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    progress: Progress = no_progress,
) -> Ingested:
    """Load and clean ``data`` (a path or a pandas, Polars, DuckDB or PySpark frame).

    Parameters
    ----------
    data
        A file (CSV, Parquet, Excel, DuckDB), a folder or glob of Parquet or CSV files (Hive partitions
        included), a frame; on Spark also any URI Spark reads, or None with ``input.table`` (Spark's catalog).
    config
        The settings (``input``, ``cleaning``, ``engine`` and ``as_of`` are used).
    con
        A DuckDB connection to load into (default: a new in-memory one, closed when this fails).
    progress
        Called with ``"load"`` and ``"clean"`` as they start.
    """
    from customerlens.io import spark

    config = config or RunConfig()
    source = config.input
    progress("load")
    if config.engine.name == "spark" or spark.is_spark_frame(data):
        loaded = spark.load(data, spark.session(config.engine.spark_master, config=dict(config.engine.spark_conf)),
                            mapping=source.mapping, encoding=source.encoding, date_format=source.date_format,
                            table=source.table)
        lines = loaded.spark
    else:
        loaded = load(data, mapping=source.mapping, con=con, encoding=source.encoding, sheet=source.sheet,
                      table=source.table, date_format=source.date_format)
        lines = loaded.relation
    try:
        if config.engine.memory_limit:
            run_sql(loaded.con, f"SET memory_limit = '{config.engine.memory_limit}'")
        progress("clean")
        as_of = config.as_of_date
        cleaned = clean(lines, config.cleaning, has_products=loaded.mapping.has_products,
                        has_order_ids="order_id" in loaded.mapping.fields, as_of=as_of,
                        con=loaded.con if isinstance(lines, duckdb.DuckDBPyRelation) else None)
    except BaseException:
        if con is None:  # the connection is ours: close it, and DuckDB removes its spill folder
            loaded.con.close()
        raise
    return Ingested(loaded=loaded, cleaned=cleaned, as_of=as_of)


def half_memory(value: str) -> str:
    """Half of a memory setting such as ``3GB``, in MB (DuckDB's units: KB = 1000 bytes, KiB = 1024)."""
    return f"{max(1, round(size_bytes(memory_setting(value)) / 2 / 1e6))}MB"
