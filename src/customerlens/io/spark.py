"""The Spark engine: loading, cleaning and customer features inside Spark.

For data that lives in a Spark cluster or a data lake, ``customerlens run DATA
--engine spark`` (or :func:`customerlens.pipeline.analyze` with a PySpark
DataFrame) reads, cleans and aggregates the transactions in Spark. The steps
are the engine-agnostic ones of :mod:`customerlens.cleaning` and
:mod:`customerlens.features` (written against narwhals), not a second copy;
only the reading differs: the canonical columns come from the same SQL
statement (:func:`customerlens.io.load.canonical_sql`) in Spark's dialect.

What leaves Spark: the clean and the excluded lines and the per-customer
features, as Arrow batches taken by the driver one partition at a time
(:func:`to_duckdb`) into DuckDB for the stages that follow (value, insights,
the store): nothing is written to a disk that the driver and the executors
would have to share. The MLlib models for the
largest customer bases are in :mod:`customerlens.models.segment.mllib` and
:mod:`customerlens.models.recommend.mllib`.

PySpark is an optional extra (``pip install customerlens[spark]``) and needs
Java 17 or newer.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from customerlens.errors import CustomerLensError, InputError


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


#: Spark's log profile for the sessions customerlens starts: errors only, the warnings that matter kept
_LOG_PROFILE = Path(__file__).with_name("spark-log4j2.properties")


def session(master: str | None = None, *, app_name: str = "customerlens", config: dict | None = None):
    """The active SparkSession, or a new one on ``master``.

    ``master`` defaults to ``$CUSTOMERLENS_SPARK_MASTER``, else the master ``spark-submit`` was given
    when it started this program, else ``local[*]``.

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
    master = master or os.environ.get("CUSTOMERLENS_SPARK_MASTER")
    builder = SparkSession.builder.appName(app_name)
    if master is None and "PYSPARK_GATEWAY_PORT" in os.environ:
        # started by spark-submit (its JVM is running): its --master and settings stand (not known here,
        # so none of the local-mode settings below)
        master = ""
    else:
        master = master or "local[*]"
        builder = builder.master(master)
    java = f"-Duser.timezone=UTC -Dlog4j2.configurationFile={_LOG_PROFILE.as_uri()}"
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.extraJavaOptions": java,
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if master.startswith("local"):
        settings["spark.sql.shuffle.partitions"] = str(4 * (os.cpu_count() or 2))
        # Python on the executors (the hand-off's Arrow batches): this one, with its packages (PySpark reads
        # PYSPARK_PYTHON when the context starts; its default is whichever python3 is on PATH). On a cluster:
        # PYSPARK_PYTHON names the executors' Python, one with pyarrow as PySpark's Arrow needs (docs/scale.md)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in (config or {}).items():  # the user's settings win; Java options are added to ours
        settings[key] = f"{settings[key]} {value}" if key.endswith("extraJavaOptions") and key in settings else value
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing or too old: say so, not a Py4J traceback
        raise CustomerLensError(f"Spark could not start on {master!r}: {str(exc).strip().splitlines()[0]} "
                                "(the Spark engine needs Java 17 or newer on PATH or JAVA_HOME)") from None
    _quiet_logs(spark)
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


def spark_message(exc: BaseException) -> str:
    """Spark's error in one line: the Java exception's own message, without the Py4J call and stack."""
    import re

    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    for line in lines:
        found = re.match(r"^:?\s*(?:[\w$]+\.)+[\w$]*(?:Exception|Error):\s*(.+)$", line)
        if found:
            return found.group(1)
    first = lines[0] if lines else type(exc).__name__
    return re.sub(r"\s*SQLSTATE: \w+\.?$", "", first)


def spark_failure(exc: BaseException) -> str | None:
    """One line for a Spark failure that reached the caller (a job that failed on the executors), else None."""
    import re

    if not type(exc).__module__.startswith(("py4j", "pyspark")):
        return None
    text = str(exc)
    missing = re.search(r"No module named '([^']+)'", text)
    if missing and ("PythonException" in text or type(exc).__name__ == "PythonException"):
        return (f"Spark failed: the executors' Python cannot import {missing.group(1)}: set PYSPARK_PYTHON (or "
                "spark.pyspark.python) to a Python with pyarrow and pandas, on every worker (docs/scale.md)")
    # a Python function failing on the executors: the last line of its traceback; else the deepest Java cause
    python = [ln.strip() for ln in text.splitlines() if re.match(r"^\s*\w+(?:Error|Exception): \S", ln)]
    causes = re.findall(r"Caused by: (?:[\w$]+\.)+[\w$]*(?:Exception|Error): ?(.*)", text)
    reason = (python[-1] if "Traceback (most recent call last)" in text and python else None) or next(
        (c.strip() for c in reversed(causes) if c.strip()), None) or spark_message(exc)
    return f"Spark failed: {reason}"


def _spark_read(name: str, read):
    """``read()`` with Spark's failure (no such path, no file system for a scheme) as one line naming ``name``."""
    try:
        return read()
    except Exception as exc:  # Py4JJavaError, AnalysisException, ...: never a JVM stack trace
        message = spark_message(exc)
        if "FileSystem not found" in message or "No FileSystem for scheme" in message:
            message += (" (this Spark has no connector for that storage: add it, e.g. --spark-conf "
                        "spark.jars.packages=org.apache.hadoop:hadoop-aws:VERSION for s3a://; docs/scale.md)")
        raise InputError(f"{name}: Spark cannot read it: {message}") from None


def _remote_kind(spark, uri: str) -> str:
    """``parquet`` or ``csv`` for a URI: by its suffix, else by the data files Hadoop lists under it."""
    from customerlens.io.sources import kind_of

    kind = kind_of(uri.rstrip("/").rsplit("/", 1)[-1])
    if kind in ("parquet", "csv") or "*" in uri:
        return kind if kind in ("parquet", "csv") else "parquet"
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)

    def listed():
        files = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).listFiles(path, True)
        kinds, seen = set(), 0
        while files.hasNext() and seen < 1000:
            name = files.next().getPath().getName()
            seen += 1
            if not name.startswith(("_", ".")):
                kinds.add(kind_of(name))
        return kinds

    kinds = _spark_read(uri, listed)
    return "csv" if kinds == {"csv"} else "parquet"


def _read(data: Any, spark, encoding: str, table: str | None = None):
    """The raw Spark frame of ``data`` and where it came from.

    ``data``: a PySpark frame; a local file, folder or glob; any URI Spark can read (``s3a://``,
    ``hdfs://``, ``file://``, handed to Spark untouched); or None with ``table``, a table of Spark's catalog.
    """
    from customerlens.io.load import SourceInfo
    from customerlens.io.sources import file_set, is_uri, kind_of

    if is_spark_frame(data):
        return data, SourceInfo(name="pyspark frame", kind="frame", header_lines=0)
    if data is None:
        if not table:
            raise InputError("no input: give a file, folder or URI, or a table of Spark's catalog with --table")
        return (_spark_read(f"table {table}", lambda: spark.table(table)),
                SourceInfo(name=table, kind="table", header_lines=0, table=table))
    name = str(data)
    if is_uri(name):
        kind = _remote_kind(spark, name)
        source = SourceInfo(name=name, kind=kind, path=name, header_lines=0)
        if kind == "parquet":
            return _spark_read(name, lambda: spark.read.parquet(name)), source
        first = _spark_read(name, lambda: spark.read.text(name).first())
        return _read_csv(spark, name, first[0] if first else "", encoding, source), source
    files = file_set(name)
    path = Path(name)
    if files is None and not path.exists():
        raise InputError(f"{name}: no such file")
    kind = files.kind if files is not None else kind_of(path.name)
    source = SourceInfo(name=name, kind="parquet", path=str(path.resolve()) if files is None else str(
        files.base.resolve()), header_lines=0, files=None if files is None else len(files.files),
        label=None if files is None else files.label)
    # a glob keeps its partition columns when Spark is told where the partitions start
    reader = spark.read.option("basePath", str(files.base)) if files is not None and files.base != path \
        else spark.read
    if kind == "parquet":
        return _spark_read(name, lambda: reader.parquet(name)), source
    if kind not in ("csv", ""):
        raise InputError(f"{name}: the Spark engine reads delimited text (CSV) and Parquet; "
                         "convert the file, or run without --engine spark")
    first_file = files.files[0] if files is not None else path
    if first_file.stat().st_size == 0:
        raise InputError(f"{first_file}: the file is empty")
    from customerlens.io.load import _head_text

    compressed = first_file.name.lower().endswith((".gz", ".gzip"))
    first = _head_text(first_file, compressed, encoding)[0]
    return _read_csv(reader, name, first, encoding, source), source


def _read_csv(reader, name: str, first: str, encoding: str, source):
    """Delimited text with a header (its first line ``first``), every column read as text."""
    from customerlens.io.load import _split_header

    if not hasattr(reader, "option"):  # a session: its reader
        reader = reader.read
    delim = next((d for d in (",", ";", "\t", "|") if d in first), None)
    if delim is None:
        raise InputError(f"{name}: no delimiter (, ; tab |) in the header line; the Spark engine reads "
                         "delimited text with a header (whitespace-separated files: run without --engine spark)")
    source.kind, source.header_lines, source.encoding = "csv", 1, encoding
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(n, StringType()) for n in _split_header(first, delim)])
    return _spark_read(name, lambda: reader.option("header", "true").option("sep", delim).option("quote", '"')
                       .option("escape", '"').option("encoding", encoding).option("mode", "PERMISSIVE")
                       .schema(schema).csv(name))


def load(data: Any, spark=None, *, mapping=None, encoding: str = "utf-8", date_format: str | None = None,
         table: str | None = None):
    """Read ``data`` into canonical transactions in Spark.

    ``data``: a CSV or Parquet file, a folder or glob of them (Hive partitions included), any URI Spark
    can read, a PySpark DataFrame, or None with ``table`` (a table of Spark's catalog, e.g. ``db.sales``).

    Returns a :class:`customerlens.io.load.LoadResult` whose ``spark`` attribute holds the Spark
    frame. The date format is detected on the first rows, as on DuckDB.
    """
    from customerlens.core.db import connect
    from customerlens.io.load import _RAW, _SAMPLE_ROWS, SPARK, TABLE, LoadResult, _detect_date_format, canonical_sql
    from customerlens.io.schema import resolve_mapping

    spark = spark or session()
    raw, source = _read(data, spark, encoding, table)
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
        # the first rows by number, without sorting every row to find them
        from pyspark.sql import functions as F

        sample = numbered.filter(F.col("source_row") <= _SAMPLE_ROWS).toArrow()
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


#: the most rows the driver takes from Spark in one piece (a partition): about 30-40 MB of Arrow for a line
ROWS_PER_PIECE = 250_000


def to_duckdb(frame, con, name: str) -> int:
    """Copy a Spark frame into the DuckDB table ``name`` on the driver, through Arrow; returns its rows.

    Nothing is written to a disk the driver and the executors would have to share: the executors turn
    each partition into Arrow batches and the driver takes them one partition at a time
    (``toLocalIterator``), so it holds one partition in memory, not the frame; DuckDB spills beyond its
    own memory limit. Partitions of more than :data:`ROWS_PER_PIECE` rows are split first (a task's result
    is held whole by the driver's JVM: a 2-million-line partition did not come back on a 1 GB driver).
    The table keeps Spark's column types (timestamps without time zone).
    """
    import math

    import pyarrow as pa

    from customerlens.core.db import quote, run

    partitions = frame.rdd.getNumPartitions()
    pieces = math.ceil(frame.count() / ROWS_PER_PIECE)
    if pieces > partitions:
        frame = frame.repartition(pieces)

    def ipc_batches(batches):
        # on the executors, which need not have customerlens installed (a local function travels by value):
        # each Arrow batch of a partition as one Arrow IPC stream, a row of bytes
        import pyarrow as pa

        for batch in batches:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            yield pa.RecordBatch.from_arrays([pa.array([sink.getvalue().to_pybytes()], pa.binary())], names=["ipc"])

    empty = frame.limit(0).toArrow()
    con.register("_cl_spark_batch", empty)
    run(con, f"CREATE OR REPLACE TEMP TABLE {quote(name)} AS SELECT * FROM _cl_spark_batch")
    con.unregister("_cl_spark_batch")
    rows = 0
    for row in frame.mapInArrow(ipc_batches, "ipc binary").toLocalIterator(prefetchPartitions=True):
        batch = pa.ipc.open_stream(row["ipc"]).read_all()
        con.register("_cl_spark_batch", batch)
        run(con, f"INSERT INTO {quote(name)} SELECT * FROM _cl_spark_batch")
        con.unregister("_cl_spark_batch")
        rows += batch.num_rows
    return rows


# --------------------------------------------------------------------------- checkpoints and logs

#: checkpoint folders this process made (temporary ones are removed after use and must not be reused)
_MADE: set[str] = set()


class Checkpoints:
    """The checkpoint folder MLlib's ALS needs, for the length of a ``with`` block, and nothing left after it.

    ``folder``: where to checkpoint (``--spark-checkpoint-dir``); Spark makes a folder of its own in it, which is
    removed afterwards. Without it: the folder the session already has (``spark.checkpoint.dir``, or the user's
    ``setCheckpointDir``), untouched; else a temporary ``customerlens-spark-*`` folder, removed afterwards. On a
    cluster, a folder on the driver's own disk is one the executors cannot share: a warning says so.
    """

    def __init__(self, spark, folder: str | None = None):
        self.spark, self.folder, self.made, self.temporary = spark, folder, None, False

    def __enter__(self) -> str:
        import tempfile

        context = self.spark.sparkContext
        if self.folder:
            context.setCheckpointDir(self.folder)
            self.made = context.getCheckpointDir()  # Spark's own folder inside the one given
        elif context.getCheckpointDir() is None or context.getCheckpointDir() in _MADE:
            context.setCheckpointDir(tempfile.mkdtemp(prefix="customerlens-spark-"))
            self.made, self.temporary = context.getCheckpointDir(), True
        if self.made:
            _MADE.add(self.made)
        where = context.getCheckpointDir()
        if not context.master.startswith("local") and _on_driver_disk(where):
            import warnings

            warnings.warn(f"Spark checkpoints to {where}, on the driver's own disk: executors on other machines "
                          "cannot read it back; set --spark-checkpoint-dir (or spark.checkpoint.dir) to storage "
                          "every executor reaches, e.g. hdfs:// or s3a://", stacklevel=2)
        return where

    def __exit__(self, *exc: object) -> None:
        if self.made:
            _delete(self.spark, self.made.rsplit("/", 1)[0] if self.temporary else self.made)


def _on_driver_disk(where: str) -> bool:
    """True for a local folder (``file:`` or no scheme)."""
    return where.startswith("file:") or ":" not in where.split("/", 1)[0]


def _delete(spark, where: str) -> None:
    """Remove a folder on any file system Spark reaches (Hadoop's FileSystem), quietly."""
    try:
        jvm = spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(where)
        path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(path, True)
    except Exception:  # a folder that cannot be removed is left; the run's results stand
        pass


def _loggers_at(level: str) -> tuple[str, ...]:
    """The loggers the log profile (``spark-log4j2.properties``) sets to ``level``, in its order."""
    settings = {key.strip(): value.strip() for key, value in (
        line.split("=", 1) for line in _LOG_PROFILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("logger.") and "=" in line)}
    return tuple(value for key, value in settings.items()
                 if key.endswith(".name") and settings.get(key.removesuffix(".name") + ".level", "").lower() == level)


#: Spark's loggers whose warnings a user should see (executors lost, tasks failing on them, where checkpoints
#: go); the rest: errors only. Read from the log profile, so a session customerlens joins (setLogLevel) and one
#: it starts (the profile) keep the same ones
LOUD_LOGGERS = _loggers_at("warn")


def _quiet_logs(spark) -> None:
    """Spark's log at errors only, except the warnings of :data:`LOUD_LOGGERS`."""
    spark.sparkContext.setLogLevel("ERROR")
    try:
        log4j = spark.sparkContext._jvm.org.apache.logging.log4j
        for name in LOUD_LOGGERS:
            log4j.core.config.Configurator.setLevel(name, log4j.Level.WARN)
    except Exception:  # Spark Connect or another logger: errors only
        pass


# --------------------------------------------------------------------------- a cluster on this machine


def alive_workers(status_url: str) -> int | None:
    """The workers a standalone master's status page (``http://HOST:UI_PORT/json/``) counts alive.

    None if it does not answer yet, or answers HTML: the page serves its HTML view for a moment after
    it starts, before its JSON one is attached (seen once in a test run, as a JSONDecodeError).
    """
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(status_url, timeout=2) as answer:
            return int(json.load(answer).get("aliveworkers", 0))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def standalone_cluster(folder: Path, *, cores: int = 2, memory: str = "2g", timeout: float = 90.0,
                       java_options: str = ""):
    """A Spark standalone master and one worker on loopback, for trying the cluster path on one machine.

    Started with the ``spark-class`` launcher shipped in the pyspark package (what docs/scale.md's commands
    run by hand), logs and the worker's folder under ``folder``; yields the master's URL
    (``spark://127.0.0.1:PORT``) once the worker has registered, and stops both by PID afterwards.
    ``java_options``: for the master's and the worker's own JVMs (``SPARK_DAEMON_JAVA_OPTS``).
    """
    import signal
    import socket
    import subprocess
    import time

    _require_pyspark()
    import pyspark

    def free_ports(n: int) -> list[int]:
        """``n`` distinct free ports: held together while chosen (one at a time, the system may give one twice)."""
        sockets = [socket.socket() for _ in range(n)]
        try:
            for s in sockets:
                s.bind(("127.0.0.1", 0))
            return [s.getsockname()[1] for s in sockets]
        finally:
            for s in sockets:
                s.close()

    launcher = Path(pyspark.__file__).parent / "bin" / "spark-class"
    folder.mkdir(parents=True, exist_ok=True)
    port, ui, worker_ui = free_ports(3)
    env = {**os.environ, "SPARK_HOME": str(launcher.parents[1]), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_NO_DAEMONIZE": "1", "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
           "SPARK_DAEMON_JAVA_OPTS": java_options}
    master = f"spark://127.0.0.1:{port}"
    commands = {"master": ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                           "--webui-port", str(ui)],
                "worker": ["org.apache.spark.deploy.worker.Worker", master, "--host", "127.0.0.1", "--cores",
                           str(cores), "--memory", memory, "--webui-port", str(worker_ui), "--work-dir",
                           str(folder / "work")]}
    processes = []
    try:
        for name, arguments in commands.items():
            with open(folder / f"{name}.log", "w") as log:
                processes.append(subprocess.Popen([str(launcher), *arguments], env=env, stdout=log,
                                                  stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout
        while True:  # the master's status page: the worker has registered
            if (alive_workers(f"http://127.0.0.1:{ui}/json/") or 0) >= 1:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                logs = "\n".join((folder / f"{n}.log").read_text()[-2000:] for n in commands)
                raise CustomerLensError(f"the standalone cluster did not start within {timeout:.0f} s:\n{logs}")
            time.sleep(0.5)
        yield master
    finally:
        for process in reversed(processes):  # by PID: the process group spark-class started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
