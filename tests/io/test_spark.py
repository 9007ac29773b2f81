"""The Spark engine in local mode (local[2]): the same numbers as DuckDB's.

Needs PySpark (the ``spark`` extra, in ``dev``) and Java 17+ (``make test``
installs both). Missing, they skip a test on a developer's machine and fail it
in CI.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from customerlens.cleaning.rules import clean
from customerlens.features.customer import customer_features
from customerlens.io.load import load as load_duckdb
from customerlens.pipeline import RunConfig, run
from tests.conftest import TINY_CSV

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark():
    problem = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        problem = "PySpark is not installed (pip install -e '.[dev]')"
    if problem is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        problem = "no Java (make java installs OpenJDK 17)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    from customerlens.io.spark import session

    return session("local[2]")


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


def test_spark_engine_refuses_what_it_cannot_read(spark, tmp_path):
    from customerlens.errors import InputError
    from customerlens.io.spark import load

    xlsx = tmp_path / "sales.xlsx"
    xlsx.write_bytes(b"PK\x03\x04not really")
    with pytest.raises(InputError, match="reads delimited text"):
        load(xlsx, spark)
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "missing.csv", spark)


@pytest.mark.realdata
def test_online_retail_spark_features_equal_duckdb(spark, online_retail, tmp_path):
    """The issue's check: same customers, frequency and monetary equal to the cent, segments agree."""
    options = dict(value=False, report=False, charts=False, top_n=0, insights=False)
    on_spark = run(online_retail, tmp_path / "spark", RunConfig.from_options(engine="spark", **options))
    on_duckdb = run(online_retail, tmp_path / "duckdb", RunConfig.from_options(**options))
    s = on_spark.features.sort_values("customer_id").reset_index(drop=True)
    d = on_duckdb.features.sort_values("customer_id").reset_index(drop=True)
    assert len(d) == 4324
    assert s["customer_id"].tolist() == d["customer_id"].tolist()
    assert (s["frequency"] == d["frequency"]).all()
    assert (s["monetary"].round(2) == d["monetary"].round(2)).all()
    assert np.abs(s["monetary"] - d["monetary"]).max() < 1e-6
    for column in ("recency_days", "tenure_days", "distinct_products", "return_rate", "spend_90d"):
        np.testing.assert_allclose(s[column].astype(float), d[column].astype(float), atol=1e-9, err_msg=column)
    assert on_spark.quality.kept_lines == on_duckdb.quality.kept_lines
    seg_s = on_spark.segmentation.assigned.sort_values("customer_id")
    seg_d = on_duckdb.segmentation.assigned.sort_values("customer_id")
    assert adjusted_rand_score(seg_d["segment_id"], seg_s["segment_id"]) >= 0.99
    # Spark's lines and features stay in the output folder as Parquet
    assert (tmp_path / "spark" / "parquet" / "transactions").is_dir()


def test_mllib_kmeans_agrees_with_scikit_learn(spark, tmp_path):
    """Beyond `spark_kmeans_above` customers the final K-means is MLlib's; on the demo data it finds
    the same k and the same segments as scikit-learn, and the saved model assigns like MLlib.
    """
    from customerlens.io import demo
    from customerlens.models.segment.mllib import kmeans_segmentation
    from customerlens.models.segment.segmenter import CustomerSegmenter

    data = tmp_path / "demo.csv"
    demo.write(demo.generate(3000, seed=7), data)
    loaded, cleaned = _duckdb_pipeline(data)
    features = customer_features(cleaned.transactions).df()
    local = CustomerSegmenter(random_state=42).fit(features)
    distributed, assigned = kmeans_segmentation(
        spark.createDataFrame(features[["customer_id", "recency_days", "frequency", "monetary"]]),
        features_used=("recency_days", "frequency", "monetary"), k=None, k_range=(1, 10))
    assert distributed.k_ == local.k_
    assert sorted(distributed.segment_names_.values()) == sorted(local.segment_names_.values())
    by_spark = assigned.toPandas().set_index("customer_id").loc[features["customer_id"], "segment_id"]
    assert adjusted_rand_score(local.predict(features), by_spark) >= 0.95
    # the nearest-centre rule of the saved model gives MLlib's own assignment
    path = distributed.save(tmp_path / "segmenter.joblib")
    again = CustomerSegmenter.load(path)
    assert (again.predict(features) == by_spark.to_numpy()).mean() >= 0.999


def test_als_recommends_what_similar_customers_bought(spark):
    import datetime as dt

    from customerlens.models.recommend.mllib import als_recommendations

    rows = []
    day = dt.datetime(2024, 1, 1)
    baskets = {f"c{i}": ["bread", "butter", "jam"] for i in range(8)}
    baskets.update({f"t{i}": ["tea", "milk", "sugar"] for i in range(8)})
    baskets["new_bread"] = ["bread", "butter"]
    baskets["new_tea"] = ["tea", "milk"]
    for customer, products in baskets.items():
        for n, product in enumerate(products):
            rows.append((customer, f"{customer}-{n}", day, product))
    lines = spark.createDataFrame(pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "product_id"]))
    recs = als_recommendations(lines, day + dt.timedelta(days=1), n=1, exclude_seen=True, rank=4, reg=0.01,
                               max_iter=20).toPandas().set_index("customer_id")
    assert recs.loc["new_bread", "product_id"] == "jam"
    assert recs.loc["new_tea", "product_id"] == "sugar"
    with_own = als_recommendations(lines, day + dt.timedelta(days=1), n=3, rank=4).toPandas()
    own = with_own[with_own["customer_id"] == "new_bread"].sort_values("rank")
    assert set(own["product_id"].head(2)) == {"bread", "butter"}  # their own products first
    assert own["product_id"].iloc[2] == "jam"


def test_pyspark_frame_runs_the_whole_pipeline(spark, tmp_path):
    """A PySpark DataFrame in the Python API: read, cleaned and aggregated in Spark, MLlib K-means and
    ALS forced on (thresholds 0), every output written.
    """
    from customerlens.io import demo

    data = tmp_path / "demo.csv"
    demo.write(demo.generate(600, seed=3), data)
    raw = spark.read.option("header", "true").csv(str(data))
    result = run(raw, tmp_path / "out", RunConfig.from_options(spark_kmeans_above=0, spark_als_above=0, report=False,
                                                  charts=False, top_n=5))
    duck = run(data, tmp_path / "duck", RunConfig.from_options(report=False, charts=False, top_n=0, value=False))
    assert result.customers == duck.customers
    assert result.ingested.loaded.source.kind == "frame"
    recs = pd.read_csv(tmp_path / "out" / "recommendations.csv")
    assert recs.groupby("customer_id")["rank"].max().max() == 5
    assert recs["product_name"].notna().all()
    segments = pd.read_csv(tmp_path / "out" / "segments.csv")
    assert segments["customer_id"].nunique() == result.customers


def test_cli_engine_spark(spark, tmp_path):
    """`customerlens segment --engine spark --spark-master local[2]` as a user runs it (its own JVM)."""
    from customerlens.io import demo
    from tests.conftest import cli

    path = tmp_path / "tiny.csv"
    path.write_text(TINY_CSV)
    bad = cli("segment", path, "--engine", "hadoop", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "--engine must be one of duckdb, spark" in bad.stderr
    assert "Traceback" not in bad.stderr
    data = tmp_path / "demo.csv"
    demo.write(demo.generate(400, seed=5), data)
    result = cli("segment", data, "--engine", "spark", "--spark-master", "local[2]", "--no-charts",
                 "--out", tmp_path / "seg")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "seg" / "segments.csv").exists()
    assert (tmp_path / "seg" / "parquet" / "features").is_dir()
    assert "Traceback" not in result.stderr
