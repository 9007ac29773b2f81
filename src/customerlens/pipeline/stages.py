"""One function per stage after the cleaning, each with typed inputs and outputs.

:func:`customerlens.pipeline.analysis.analyze` calls them in this order:
:func:`features_stage` -> :func:`value_stage` -> :func:`segment_stage` ->
:func:`insights_stage` -> :func:`recommend_stage` -> :func:`plan_stage`.
The value models run before the segmentation: their summaries are DuckDB's last
heavy work on the lines, done while pandas holds little. Nothing here writes a
file (the Spark engine hands its results over through Arrow, see
:class:`CustomerTable`).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from customerlens.core.dates import parse_as_of
from customerlens.core.db import fetch_pandas, release_memory, to_pandas
from customerlens.core.db import run as run_sql
from customerlens.core.frames import collect, count_rows
from customerlens.errors import ConfigError, CustomerLensError, DataQualityError
from customerlens.features.customer import customer_features, default_as_of
from customerlens.insights import action_plan, segment_customers, value_by_segment
from customerlens.insights.segmentation import Segmentation
from customerlens.models.value.config import ValueResult
from customerlens.pipeline.config import RunConfig
from customerlens.pipeline.ingestion import Ingested, half_memory

if TYPE_CHECKING:
    from customerlens.core.worker import Worker
    from customerlens.models.recommend.service import Recommendations

#: the columns of the clean lines that the segment insights read (top products, trends, cohorts)
INSIGHT_COLUMNS = ("customer_id", "order_id", "order_date", "product_id", "product_name", "amount")
#: the lines' columns a run's worker process learns the recommender from
LEARN_COLUMNS = ("customer_id", "order_id", "order_date", "product_id", "quantity")


@dataclass
class CustomerTable:
    """The per-customer features (one row per customer, by customer id) and the lines they came from.

    ``transactions`` and ``features`` are DuckDB relations on the run's connection.
    On the Spark engine the driver took both from Spark as Arrow batches
    (:func:`customerlens.io.spark.to_duckdb`; the lines are then not in input
    order); ``spark_lines`` and ``spark_features`` are Spark's own frames.
    """

    transactions: Any
    features: duckdb.DuckDBPyRelation
    customers: int
    as_of: dt.datetime
    spark_lines: Any = None
    spark_features: Any = None


def features_stage(ingested: Ingested, as_of: dt.datetime | None = None) -> CustomerTable:
    """Customer features as of the snapshot (``as_of``: :func:`snapshot`'s), ordered by customer id in a DuckDB table."""
    con = ingested.con
    transactions = ingested.cleaned.transactions
    as_of = as_of or snapshot(ingested)
    features = customer_features(transactions, as_of=as_of)
    if hasattr(ingested.loaded, "spark"):
        return _from_spark(ingested, features, as_of)
    con.register("_cl_features", features)
    # ordered by customer: the segmentation needs that order and DuckDB sorts cheaper than pandas
    run_sql(con, "CREATE OR REPLACE TEMP TABLE _cl_features_t AS SELECT * FROM _cl_features ORDER BY customer_id")
    con.unregister("_cl_features")
    table = con.table("_cl_features_t")
    return CustomerTable(transactions=transactions, features=table, customers=count_rows(table), as_of=as_of)


def _from_spark(ingested: Ingested, spark_features: Any, as_of: dt.datetime) -> CustomerTable:
    """Bring Spark's clean lines, excluded lines and features to DuckDB on the driver, through Arrow.

    The later stages read them there, out of core, as on the default engine; no file is written.
    """
    from customerlens.io import spark as spark_engine

    con = ingested.con
    cleaned = ingested.cleaned
    spark_lines = cleaned.transactions
    # computed once: the hand-off counts and streams them, MLlib's K-means reads them again
    spark_features = spark_features.localCheckpoint()
    for name, frame in (("transactions", spark_lines), ("excluded_lines", cleaned.excluded),
                        ("features", spark_features)):
        spark_engine.to_duckdb(frame, con, f"_cl_spark_{name}")
    run_sql(con, "CREATE OR REPLACE TEMP TABLE _cl_features_t AS SELECT * FROM _cl_spark_features "
                 "ORDER BY customer_id")
    run_sql(con, "DROP TABLE _cl_spark_features")
    cleaned.transactions, cleaned.excluded = con.table("_cl_spark_transactions"), con.table("_cl_spark_excluded_lines")
    table = con.table("_cl_features_t")
    return CustomerTable(transactions=cleaned.transactions, features=table, customers=count_rows(table),
                         as_of=as_of, spark_lines=spark_lines, spark_features=spark_features)


@dataclass
class ValueStage:
    """The value models' scores (None when the stage was off or skipped) and what the run record keeps."""

    result: ValueResult | None = None
    record: dict | None = None


def value_stage(transactions: Any, as_of: dt.datetime, config: RunConfig) -> ValueStage:
    """Fit the value models on everything before ``as_of``.

    Skipped, with the reason recorded, when the data cannot support them (e.g. a
    handful of customers). With charts on, the tracking chart's table is computed
    here, while the models' summary is there; then the summary is dropped.
    """
    if config.value is None:
        return ValueStage()
    from customerlens.models.value import fit_value
    from customerlens.models.value.service import tracking

    vconfig = replace(config.value, random_state=config.random_state)
    calibration_end = (as_of - dt.timedelta(days=1)).date() if as_of.time() == dt.time() else as_of.date()
    try:
        value = fit_value(transactions, calibration_end, vconfig, keep_summary=config.output.charts)
    except (CustomerLensError, ValueError, ArithmeticError) as exc:
        warnings.warn(f"customer value skipped: {exc}", stacklevel=2)
        return ValueStage(record={"skipped": str(exc)})
    if config.output.charts:
        value.weekly_tracking = tracking(transactions, value)
        value.summary = None
    return ValueStage(result=value, record=value.record)


def segment_stage(table: CustomerTable, config: RunConfig, con: duckdb.DuckDBPyConnection,
                  value: Any = None) -> Segmentation:
    """Segments of every customer (K-means by the elbow method, or RFM), with profiles.

    ``value``: the value stage's result; its churn risk tells the naming checks which segment is At-Risk.

    The customer table comes into pandas here; with a memory limit DuckDB gives back
    half of it first. On Spark beyond ``engine.spark_kmeans_above`` customers the
    K-means runs in MLlib and customers are assigned to its centres.
    """
    seg = config.segmentation
    if config.engine.memory_limit:
        run_sql(con, f"SET memory_limit = '{half_memory(config.engine.memory_limit)}'")
        release_memory()
    segmenter = None
    if table.spark_features is not None and seg.method == "kmeans" \
            and table.customers > config.engine.spark_kmeans_above:
        from customerlens.models.segment.mllib import kmeans_segmentation

        segmenter, _ = kmeans_segmentation(table.spark_features, features_used=seg.features, k=seg.k,
                                           k_range=seg.k_range, random_state=config.random_state)
    customers = fetch_pandas(con, "SELECT * FROM _cl_features_t", table.customers)
    churn = None
    if value is not None and "churn_risk" in value.table:
        churn = value.table.set_index("customer_id")["churn_risk"]
    segmentation = segment_customers(customers, method=seg.method, k=seg.k, features=seg.features,
                                     random_state=config.random_state, k_range=seg.k_range, segmenter=segmenter,
                                     churn_risk=churn)
    return segmentation.add_profiles()


def uses_spark_als(table: CustomerTable, config: RunConfig) -> bool:
    """True when the recommendations come from MLlib's ALS (Spark, beyond ``engine.spark_als_above``)."""
    return (table.spark_lines is not None and config.recommend is not None
            and table.customers > config.engine.spark_als_above)


def insight_lines(table: CustomerTable, config: RunConfig) -> pd.DataFrame | None:
    """The clean lines in pandas, as far as the insights and the recommender need them (None: neither)."""
    if config.recommend is not None and not uses_spark_als(table, config):
        return _recommender_lines(table.transactions)
    if config.insights is not None:
        return to_pandas(table.transactions.select(*INSIGHT_COLUMNS))  # six columns, not all
    return None


def _recommender_lines(transactions: Any) -> pd.DataFrame:
    """The clean lines as the insights and the recommender read them, in pandas.

    The insights' columns and the quantity (returns are not purchases): seven columns of fourteen.
    """
    return to_pandas(transactions.select(*INSIGHT_COLUMNS, "quantity"))


def insights_stage(segmentation: Segmentation, lines: pd.DataFrame, table: CustomerTable,
                   config: RunConfig, then: Callable[[], None] | None = None) -> Segmentation:
    """Top and distinctive products, monthly trend, cohorts and segment migration.

    The migration first (DuckDB's part), then ``then`` is called (DuckDB is free from there on), then
    the rest (pandas, on ``lines``).
    """
    if config.insights is None:
        return segmentation
    start = migration_start(config, table.as_of, table.transactions)
    if start is not None:
        # features as of the start: by DuckDB, on the lines where they are; at the snapshot: the run's own
        segmentation.add_migration(table.transactions, start, table.as_of, at_snapshot=True)
    if then is not None:
        then()
    segmentation.add_insights(lines, top_n=config.insights.top_products)
    return segmentation


def migration_start(config: RunConfig, as_of: dt.datetime, lines: Any) -> dt.datetime | None:
    """Start of the migration window: ``insights.migration_from``, else six months before ``as_of``.

    None when there were no customers yet by then.
    """
    import narwhals as nw

    chosen = config.insights.migration_from if config.insights is not None else None
    start = (parse_as_of(chosen, "insights.migration_from") if chosen
             else (pd.Timestamp(as_of) - pd.DateOffset(months=6)).to_pydatetime())
    if start >= as_of:
        raise ConfigError(f"insights.migration_from ({start:%Y-%m-%d}) must come before the snapshot "
                          f"({as_of:%Y-%m-%d})", parameter="insights.migration_from")
    first = pd.Timestamp(collect(nw.from_native(lines).select(nw.col("order_date").min())).item(0, 0))
    return start if pd.notna(first) and first < pd.Timestamp(start) else None


@dataclass
class RecommendStage:
    """Each customer's recommendations and the fitted model behind them.

    ``table`` has ``customer_id, list, rank, product_id, product_name, score, reason`` (lists ``top``
    and ``discover``; MLlib's ALS gives the ``top`` list only);
    ``fitted`` is None on Spark's ALS path.
    """

    table: pd.DataFrame | None = None
    fitted: Recommendations | None = None
    skipped: str | None = None
    worker: dict | None = None  # seconds and peak memory of the worker process that fitted it, if one did


def recommend_stage(table: CustomerTable, lines: pd.DataFrame | None, segmentation: Segmentation,
                    config: RunConfig, has_products: bool, con: duckdb.DuckDBPyConnection) -> RecommendStage:
    """Top-n products per customer with reasons (MLlib ALS on Spark for the largest bases)."""
    rec = config.recommend
    if rec is None:
        return RecommendStage(skipped="switched off")
    if not has_products:
        return RecommendStage(skipped="the data has no product column")
    if uses_spark_als(table, config):
        from customerlens.io.spark import Checkpoints, to_duckdb
        from customerlens.models.recommend.mllib import als_recommendations

        with Checkpoints(table.spark_lines.sparkSession, config.engine.spark_checkpoint_dir):
            frame = als_recommendations(table.spark_lines, table.as_of, rec.top_n, exclude_seen=rec.exclude_bought)
            to_duckdb(frame, con, "_cl_spark_recommendations")
        return RecommendStage(table=_named(con, table.transactions))
    from customerlens.models.recommend.service import fit_recommendations

    fitted = fit_recommendations(lines, table.as_of, model=rec.model, segments=_segment_labels(segmentation))
    lists = fitted.lists(n=rec.top_n, exclude_seen=rec.exclude_bought, discovery=rec.discovery_slots)
    return RecommendStage(table=lists, fitted=fitted)


def _segment_labels(segmentation: Segmentation) -> dict:
    assigned = segmentation.assigned
    return dict(zip(assigned["customer_id"], assigned["segment_name"], strict=True))


def snapshot(ingested: Ingested) -> dt.datetime:
    """The run's snapshot: ``--as-of``, else the day after the last clean line (none left: a clear error)."""
    transactions = ingested.cleaned.transactions
    if count_rows(transactions) == 0:
        raise DataQualityError(
            f"{ingested.loaded.source.name}: no line is left after cleaning; "
            "see `customerlens ingest` for what each rule removed"
        )
    return ingested.as_of or default_as_of(transactions)


def worker_can_start(ingested: Ingested, config: RunConfig) -> bool:
    """Whether a run's worker process can learn its recommender from the clean lines, before the features.

    Not without products, not on Spark (a worker runs beside DuckDB only), and not for
    ``segment_popularity``, which learns from the segments.
    """
    rec = config.recommend
    return (rec is not None and ingested.loaded.mapping.has_products and not hasattr(ingested.loaded, "spark")
            and rec.model != "segment_popularity")


def start_recommendations(worker: Worker, ingested: Ingested, config: RunConfig) -> tuple[pd.DataFrame, dt.datetime]:
    """Send the recommender's learning to ``worker`` from the clean lines; returns them (pandas) and the snapshot."""
    from customerlens.models.recommend.service import learn_recommender

    as_of = snapshot(ingested)
    lines = _recommender_lines(ingested.cleaned.transactions)
    # the learning reads who bought what, when and how many: not the names or amounts (less to send)
    worker.submit(learn_recommender, lines[list(LEARN_COLUMNS)], as_of, config.recommend.model)
    return lines, as_of


def finish_recommendations(worker: Worker, lines: pd.DataFrame, table: CustomerTable, segmentation: Segmentation,
                           config: RunConfig, meanwhile: Callable[[], bool] | None = None,
                           freed: Callable[[], None] | None = None) -> RecommendStage:
    """The final weights here while the worker learns, then its model with them, and both lists.

    ``meanwhile``: other work done here, one piece per call, while the worker is still learning
    (it returns False when it has none left), e.g. the charts' PNGs; ``freed``: called once the
    worker has answered, before the lists (it may give the worker more work).
    """
    from customerlens.models.recommend.service import final_weights, joined, prepared_lists

    rec = config.recommend
    segments = _segment_labels(segmentation)
    data, weights = final_weights(lines, table.as_of, rec.model)
    # the discover list and the top list's candidates need the final weights, not the ranker: made meanwhile
    prepared = prepared_lists(data, weights, segments, rec.top_n)
    while meanwhile is not None and not worker.ready() and meanwhile():
        pass
    learned, note = worker.result()  # its exception, if any, is raised here
    learning = dict(worker.stats)
    if freed is not None:
        freed()
    fitted = joined(learned, note, data, weights, segments, prepared)
    lists = fitted.lists(n=rec.top_n, exclude_seen=rec.exclude_bought, discovery=rec.discovery_slots)
    return RecommendStage(table=lists, fitted=fitted, worker=learning)


def _named(con: duckdb.DuckDBPyConnection, transactions: Any) -> pd.DataFrame:
    """MLlib's lists (DuckDB table ``_cl_spark_recommendations``) named, in ``recommendations.csv``'s columns."""
    con.register("_cl_lines", transactions)
    try:
        return to_pandas(con.sql(
            "WITH names AS (SELECT product_id, any_value(product_name) AS product_name FROM _cl_lines "
            "WHERE product_id IS NOT NULL GROUP BY product_id) "
            "SELECT r.customer_id, 'top' AS list, r.rank, r.product_id, n.product_name, r.score, r.reason "
            "FROM _cl_spark_recommendations r LEFT JOIN names n USING (product_id) "
            "ORDER BY r.customer_id, r.rank"))
    finally:
        con.unregister("_cl_lines")


def segment_value(value: ValueResult | None, segmentation: Segmentation) -> None:
    """Per-segment value totals onto ``value.by_segment`` (customers lined up by position)."""
    if value is not None:
        value.by_segment = value_by_segment(value, segmentation.assigned)


def plan_stage(segmentation: Segmentation, value: ValueResult | None) -> pd.DataFrame:
    """The action plan: one row per segment with its traits, strategy, value at stake and products to promote."""
    return action_plan(segmentation.assigned, segmentation.profiles, segmentation.distinctive_products,
                       value.by_segment if value is not None else None)

