"""The Spark engine: loading, cleaning and customer features inside Spark.

For data that lives in a Spark cluster or a data lake, ``customerlens run DATA
--engine spark`` (or :func:`customerlens.pipeline.analyze` with a PySpark
DataFrame) reads, cleans and aggregates the transactions in Spark. The steps
are the engine-agnostic ones of :mod:`customerlens.cleaning` and
:mod:`customerlens.features` (written against narwhals), not a second copy;
only the reading differs: the canonical columns come from the same SQL
statement (:func:`customerlens.io.load.canonical_sql`) in Spark's dialect.

What leaves Spark: the clean lines and the features, written by Spark as
Parquet (:func:`write_parquet`) and read from there, out of core, by DuckDB for
the stages that follow (value, insights, the store). The MLlib models for the
largest customer bases are in :mod:`customerlens.models.segment.mllib` and
:mod:`customerlens.models.recommend.mllib`.

PySpark is an optional extra (``pip install customerlens[spark]``) and needs
Java 17 or newer.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from customerlens.errors import CustomerLensError, InputError

_TEXT = {".csv", ".txt", ".tsv", ".psv", ".dat"}
_PARQUET = {".parquet", ".pq"}


def is_spark_frame(data: Any) -> bool:
    """True for a PySpark DataFrame (classic or Spark Connect)."""
    return type(data).__module__.startswith("pyspark.sql")


def _require_pyspark():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise CustomerLensError(
            "the Spark engine needs PySpark: pip install 'customerlens[spark]' (and Java 17 or newer)"
        ) from None


def session(master: str | None = None, *, app_name: str = "customerlens", config: dict | None = None):
    """The active SparkSession, or a new one on ``master`` (default ``local[*]``).

    Settings customerlens relies on: UTC session time zone and timestamps
    without time zone (dates mean the same on every machine), no console
    progress bar, and few shuffle partitions in local mode.
    """
    _require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        _configure(active)
        return active
    master = master or os.environ.get("CUSTOMERLENS_SPARK_MASTER", "local[*]")
    builder = SparkSession.builder.master(master).appName(app_name)
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if master.startswith("local"):
        settings["spark.sql.shuffle.partitions"] = str(4 * (os.cpu_count() or 2))
    settings.update(config or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing or too old: say so, not a Py4J traceback
        raise CustomerLensError(f"Spark could not start on {master!r}: {str(exc).strip().splitlines()[0]} "
                                "(the Spark engine needs Java 17 or newer on PATH or JAVA_HOME)") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _configure(spark) -> None:
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.timestampType", "TIMESTAMP_NTZ")


# --------------------------------------------------------------------------- loading


def number_rows(frame):
    """``frame`` with ``source_row`` first: 1, 2, ... in read order (file order for a file).

    Scales out: one small job counts the rows of each partition, and each row's
    number is its partition's offset plus its place in the partition (the low
    33 bits of ``monotonically_increasing_id``).
    """
    from pyspark.sql import functions as F

    tagged = frame.withColumn("_cl_pid", F.spark_partition_id()).withColumn(
        "_cl_mid", F.monotonically_increasing_id())
    counts = sorted((r["_cl_pid"], r["count"]) for r in tagged.groupBy("_cl_pid").count().collect())
    offsets, total = [], 0
    for pid, n in counts:
        offsets += [F.lit(pid), F.lit(total)]
        total += n
    if not counts:
        return frame.select(F.lit(0).cast("long").alias("source_row"), *frame.columns).limit(0), 0
    offset = F.create_map(*offsets)[F.col("_cl_pid")]
    within = F.col("_cl_mid") - F.shiftleft(F.col("_cl_pid").cast("long"), 33)
    numbered = tagged.select((offset + within + 1).cast("long").alias("source_row"), *frame.columns)
    return numbered, total


def _duckdb_type(spark_type) -> str:
    name = spark_type.typeName()
    return {
        "string": "VARCHAR", "double": "DOUBLE", "float": "DOUBLE", "decimal": "DECIMAL",
        "integer": "BIGINT", "long": "BIGINT", "short": "BIGINT", "byte": "BIGINT",
        "timestamp": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP", "date": "DATE", "boolean": "BOOLEAN",
    }.get(name, name.upper())


def _read(data: Any, spark, encoding: str):
    """The raw Spark frame of ``data`` and where it came from."""
    from customerlens.io.load import SourceInfo, _head_text, _split_header

    if is_spark_frame(data):
        return data, SourceInfo(name="pyspark frame", kind="frame", header_lines=0)
    path = Path(data)
    name = str(path)
    if not path.exists():
        raise InputError(f"{name}: no such file")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in (".gz", ".gzip")
    kind = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    source = SourceInfo(name=name, kind="parquet", path=str(path.resolve()), header_lines=0)
    if path.is_dir() or kind in _PARQUET:
        # a Parquet file or a folder of them (a data-lake table)
        return spark.read.parquet(str(path)), source
    if kind not in _TEXT and kind != "":
        raise InputError(f"{name}: the Spark engine reads delimited text (CSV) and Parquet; "
                         "convert the file, or run without --engine spark")
    if path.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty")
    first = _head_text(path, compressed, encoding)[0]
    delim = next((d for d in (",", ";", "\t", "|") if d in first), None)
    if delim is None:
        raise InputError(f"{name}: no delimiter (, ; tab |) in the header line; the Spark engine reads "
                         "delimited text with a header (whitespace-separated files: run without --engine spark)")
    source.kind, source.header_lines, source.encoding = "csv", 1, encoding
    names = _split_header(first, delim)
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(n, StringType()) for n in names])
    frame = (spark.read.option("header", "true").option("sep", delim).option("quote", '"')
             .option("escape", '"').option("encoding", encoding).option("mode", "PERMISSIVE")
             .schema(schema).csv(str(path)))
    return frame, source


def load(data: Any, spark=None, *, mapping=None, encoding: str = "utf-8", date_format: str | None = None):
    """Read ``data`` (CSV or Parquet path, Parquet folder, PySpark DataFrame) into canonical transactions in Spark.

    Returns a :class:`customerlens.io.load.LoadResult` whose ``spark`` attribute holds the Spark
    frame. The date format is detected on the first rows, as on DuckDB.
    """
    from customerlens.core.db import connect
    from customerlens.io.load import _RAW, _SAMPLE_ROWS, SPARK, TABLE, LoadResult, _detect_date_format, canonical_sql
    from customerlens.io.schema import resolve_mapping

    spark = spark or session()
    raw, source = _read(data, spark, encoding)
    columns = list(raw.columns)
    colmap = resolve_mapping(columns, mapping, source=source.name)
    numbered, rows = number_rows(raw)
    if rows == 0:
        raise InputError(f"{source.name}: has a header but no data rows")
    types = {f.name: _duckdb_type(f.dataType) for f in raw.schema.fields}
    # the date format: detected on the first rows with the same code as the DuckDB engine
    con = connect()
    fmt = date_format
    if fmt is None:
        sample = numbered.orderBy("source_row").limit(_SAMPLE_ROWS).toArrow()
        con.register(_RAW, sample)
        types_sample = dict(zip(sample.column_names, (str(t) for t in con.table(_RAW).dtypes), strict=True))
        fmt = _detect_date_format(con, colmap, {**types_sample, **{k: v for k, v in types.items()
                                                                           if v in ("TIMESTAMP", "DATE")}}, source)
        con.unregister(_RAW)
    view = f"_cl_raw_{uuid.uuid4().hex[:12]}"
    numbered.createOrReplaceTempView(view)
    canonical = spark.sql(canonical_sql(colmap, types, fmt, view, SPARK))
    result = LoadResult(con=con, table=TABLE, mapping=colmap, source=source, date_format=fmt,
                              rows=rows, schema_notes=["read by Spark"])
    result.spark = canonical
    return result


# --------------------------------------------------------------------------- hand-off


def write_parquet(frame, path: Path) -> Path:
    """Write a Spark frame as a Parquet folder (replacing an older one), for DuckDB to read."""
    frame.write.mode("overwrite").parquet(str(path))
    return path


def read_parquet(con, path: Path, view: str):
    """A DuckDB view named ``view`` over a Parquet folder written by :func:`write_parquet`, as a relation.

    The folder is read out of core.
    """
    from customerlens.core.db import literal, run

    run(con, f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({literal(Path(path) / '*.parquet')})")
    return con.table(view)
