"""Spark MLlib paths for customer bases beyond one machine: K-means, ALS, and a PySpark frame end to end.

Local mode (``local[2]``); the ``spark`` fixture is in tests/conftest.py. Slow: run alone with ``-m slow``.
"""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from customerlens.cleaning.rules import clean
from customerlens.features.customer import customer_features
from customerlens.io.load import load as load_duckdb
from customerlens.pipeline import RunConfig, analyze, run

pytestmark = pytest.mark.slow


def _duckdb_pipeline(path, **options):
    loaded = load_duckdb(path)
    cleaned = clean(loaded.relation, has_products=loaded.mapping.has_products,
                    has_order_ids="order_id" in loaded.mapping.fields, **options)
    return loaded, cleaned


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
                               max_iter=8).toPandas().set_index("customer_id")
    assert recs.loc["new_bread", "product_id"] == "jam"
    assert recs.loc["new_tea", "product_id"] == "sugar"
    with_own = als_recommendations(lines, day + dt.timedelta(days=1), n=3, rank=4, max_iter=8).toPandas()
    own = with_own[with_own["customer_id"] == "new_bread"].sort_values("rank")
    assert set(own["product_id"].head(2)) == {"bread", "butter"}  # their own products first
    assert own["product_id"].iloc[2] == "jam"


def test_pyspark_frame_runs_the_whole_pipeline(spark, tmp_path):
    """A PySpark DataFrame in the Python API: read, cleaned and aggregated in Spark, every output written.

    (MLlib's K-means and ALS forced on, end to end, are tests/io/test_cluster.py's, on a real cluster.)
    """
    from customerlens.io import demo

    data = tmp_path / "demo.csv"
    demo.write(demo.generate(250, seed=3), data)
    raw = spark.read.option("header", "true").csv(str(data))
    result = run(raw, tmp_path / "out", RunConfig.from_options(report=False, charts=False, top_n=5, value=False, k=4))
    with analyze(data, report=False, charts=False, top_n=0, value=False, insights=False) as duck:
        assert result.customers == duck.customers
    assert result.ingested.loaded.source.kind == "frame"
    recs = pd.read_csv(tmp_path / "out" / "recommendations.csv")
    assert recs.groupby("customer_id")["rank"].max().max() == 5 and set(recs["list"]) == {"top", "discover"}
    assert recs["product_name"].notna().all()
    segments = pd.read_csv(tmp_path / "out" / "segments.csv")
    assert segments["customer_id"].nunique() == result.customers
