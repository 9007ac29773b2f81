"""The Spark engine in local mode (local[2]): the same numbers as DuckDB's.

Needs PySpark (the ``spark`` extra, in ``dev``) and Java 17+ (``make test``
installs both). Missing, they skip a test on a developer's machine and fail it
in CI.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from customerlens.cleaning.rules import clean
from customerlens.features.customer import customer_features
from customerlens.io.load import load as load_duckdb
from tests.conftest import TINY_CSV

pytestmark = pytest.mark.slow


def _spark_pipeline(spark, path, **options):
    from customerlens.io import spark as engine

    loaded = engine.load(path, spark)
    cleaned = clean(loaded.spark, has_products=loaded.mapping.has_products,
                    has_order_ids="order_id" in loaded.mapping.fields, **options)
    return loaded, cleaned


def _duckdb_pipeline(path, **options):
    loaded = load_duckdb(path)
    cleaned = clean(loaded.relation, has_products=loaded.mapping.has_products,
                    has_order_ids="order_id" in loaded.mapping.fields, **options)
    return loaded, cleaned


def _features_frame(native) -> pd.DataFrame:
    import narwhals as nw

    frame = nw.from_native(native)
    frame = frame.collect() if isinstance(frame, nw.LazyFrame) else frame
    return frame.to_pandas().sort_values("customer_id").reset_index(drop=True)


def test_tiny_file_same_lines_report_and_features(spark, tmp_path):
    path = tmp_path / "tiny.csv"
    path.write_text(TINY_CSV)
    s_loaded, s_clean = _spark_pipeline(spark, path)
    d_loaded, d_clean = _duckdb_pipeline(path)
    assert s_loaded.rows == d_loaded.rows
    assert s_loaded.date_format == d_loaded.date_format
    # every rule removed the same lines, and the same money
    assert s_clean.report.as_dict() == d_clean.report.as_dict()
    s_lines = _features_frame(s_clean.transactions).sort_values("source_row").reset_index(drop=True)
    d_lines = _features_frame(d_clean.transactions).sort_values("source_row").reset_index(drop=True)
    pd.testing.assert_frame_equal(s_lines, d_lines, check_dtype=False)
    s_feat = _features_frame(customer_features(s_clean.transactions))
    d_feat = _features_frame(customer_features(d_clean.transactions))
    pd.testing.assert_frame_equal(s_feat, d_feat, check_dtype=False)


def test_source_rows_are_file_lines_across_partitions(spark, tmp_path):
    from customerlens.io.spark import number_rows

    frame = spark.range(0, 1000, numPartitions=7).toDF("value")
    numbered, total = number_rows(frame)
    rows = numbered.toPandas()
    assert total == 1000
    assert rows["source_row"].tolist() == (rows["value"] + 1).tolist()
    # a bad value is reported at its row, as DuckDB reports it
    path = tmp_path / "bad.csv"
    lines = TINY_CSV.splitlines()
    lines[5] = lines[5].replace("2024-01-05 08:00:00", "not a date")
    path.write_text("\n".join(lines) + "\n")
    s_loaded, s_clean = _spark_pipeline(spark, path)
    bad = _features_frame(s_loaded.spark).query("parse_error.notna()")
    assert bad["source_row"].tolist() == [5]
    assert bad["parse_error"].tolist() == ["order_date"]
    excluded = s_clean.excluded.toPandas()
    assert excluded.loc[excluded["rule"] == "unparseable", "source_row"].tolist() == [5]


def test_a_date_and_a_time_column_on_spark(spark, tmp_path):
    from tests.io.test_load import DAY_AND_TIME, DAY_AND_TIME_CSV

    path = tmp_path / "day_time.csv"
    path.write_text(DAY_AND_TIME_CSV)
    s_loaded, _ = _spark_pipeline(spark, path)
    lines = _features_frame(s_loaded.spark).sort_values("source_row")
    assert [str(t) for t in lines["order_date"]] == DAY_AND_TIME


def test_spark_engine_refuses_what_it_cannot_read(spark, tmp_path):
    from customerlens.errors import InputError
    from customerlens.io.spark import load

    xlsx = tmp_path / "sales.xlsx"
    xlsx.write_bytes(b"PK\x03\x04not really")
    with pytest.raises(InputError, match="reads delimited text"):
        load(xlsx, spark)
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "missing.csv", spark)


def test_cli_engine_spark(spark, tmp_path):
    """`customerlens segment --engine spark --spark-master local[2]` through the CLI's entry point.

    In this process, so on the session the other tests warmed up: a second JVM would add most of a
    minute. The session itself is started by the same ``customerlens.io.spark.session`` (the fixture's).
    """
    from tests.conftest import cli_in_process

    path = tmp_path / "tiny.csv"
    path.write_text(TINY_CSV)
    bad = cli_in_process("segment", path, "--engine", "hadoop", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "--engine must be one of duckdb, spark" in bad.stderr
    assert "Traceback" not in bad.stderr
    # the tiny shop (two customers) as a table of Spark's catalog (a view here): Spark's jobs are the cost
    spark.read.option("header", "true").csv(str(path)).createOrReplaceTempView("tiny_sales")
    result = cli_in_process("segment", "--table", "tiny_sales", "--engine", "spark", "--spark-master", "local[2]",
                            "--no-charts", "--no-insights", "--as-of", "2024-02-01", "--out", tmp_path / "seg")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "seg" / "segments.csv").exists()
    assert "Traceback" not in result.stderr
    # results came back through Arrow: no Parquet hand-off folder, under --out or in the temp dir
    assert not (tmp_path / "seg" / "parquet").exists()
    with duckdb.connect(str(tmp_path / "seg" / "customerlens.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM transactions").fetchone()[0] == len(TINY_CSV.splitlines()) - 1 - \
            con.execute("SELECT count(*) FROM excluded_lines").fetchone()[0]
    # a place Spark cannot reach is one line naming it, Spark's own reason shortened
    for uri, reason in ((tmp_path.as_uri() + "/missing/", "does not exist"),
                        ("s3a://no-such-lake/sales/", "S3AFileSystem not found (this Spark has no connector")):
        failed = cli_in_process("segment", uri, "--engine", "spark", "--no-charts", "--out", tmp_path / "no")
        assert failed.returncode != 0 and reason in failed.stderr, failed.stderr
        assert uri.rstrip("/") in failed.stderr and "Traceback" not in failed.stderr and "\tat " not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) <= 3
    assert not (tmp_path / "no").exists()
    missing = cli_in_process("segment", "--engine", "spark", "--out", tmp_path / "no")
    assert missing.returncode == 2 and "--table" in missing.stderr


def test_spark_log_keeps_only_the_warnings_that_matter(spark):
    """Errors only (customerlens's log profile, or setLogLevel on a session it joins), but an executor lost or a
    task failing on one is still shown.
    """
    from customerlens.io.spark import LOUD_LOGGERS

    log4j = spark.sparkContext._jvm.org.apache.logging.log4j
    assert str(log4j.LogManager.getRootLogger().getLevel()) == "ERROR"
    for name in LOUD_LOGGERS:
        assert str(log4j.LogManager.getLogger(name).getLevel()) == "WARN", name


def test_a_job_failing_on_the_executors_is_one_line(spark):
    """What the CLI prints (customerlens.cli.entry) when a Spark job fails on the executors, e.g. a cluster whose
    Python has no pyarrow: one line with the reason and what to do, not a JVM stack.
    """
    from customerlens.io.spark import spark_failure

    def no_pyarrow(batches):
        raise ModuleNotFoundError("No module named 'pyarrow'")
        yield from batches

    def bad_row(batches):
        raise ValueError("bad row 7")
        yield from batches

    with pytest.raises(Exception) as missing:
        spark.range(10).mapInArrow(no_pyarrow, "id long").collect()
    assert spark_failure(missing.value).startswith(
        "Spark failed: the executors' Python cannot import pyarrow: set PYSPARK_PYTHON")
    with pytest.raises(Exception) as failed:
        spark.range(3).mapInArrow(bad_row, "id long").collect()
    assert spark_failure(failed.value) == "Spark failed: ValueError: bad row 7"
    assert spark_failure(ValueError("not Spark's")) is None


def test_the_driver_takes_large_partitions_in_pieces(spark, monkeypatch):
    """A partition bigger than the piece size is split before the driver takes it: the same rows, in pieces."""
    import customerlens.io.spark as engine

    frame = spark.range(0, 1000, numPartitions=2).selectExpr("id", "cast(id * 1.5 AS double) AS value")
    con = duckdb.connect()
    monkeypatch.setattr(engine, "ROWS_PER_PIECE", 100)
    assert engine.to_duckdb(frame, con, "pieces") == 1000
    taken = con.execute("SELECT count(*), count(DISTINCT id), sum(value) FROM pieces").fetchall()[0]
    assert taken == (1000, 1000, 1.5 * sum(range(1000)))
    assert engine.to_duckdb(frame.limit(0), con, "empty") == 0  # an empty frame keeps its columns
    assert [c[0] for c in con.execute("DESCRIBE empty").fetchall()] == ["id", "value"]
