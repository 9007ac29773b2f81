"""The pipeline in one call: load -> clean -> features -> store and files.

:func:`ingest` stops after cleaning (what ``customerlens ingest`` prints);
:func:`run` goes all the way and writes the output folder. Later stages
(segments, value, recommendations, report) extend :func:`run`.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from customerlens import __version__
from customerlens.core.db import fetch_pandas, release_memory, run as run_sql
from customerlens.core.frames import count_rows
from customerlens.core.files import atomic_path, write_csv_atomic, write_text_atomic
from customerlens.cleaning.rules import CleaningConfig, CleanResult, clean
from customerlens.core.dates import parse_as_of
from customerlens.features.customer import customer_features, default_as_of
from customerlens.io.load import LoadResult, load
from customerlens.insights import tables as insights
from customerlens.models.segment.segmenter import DEFAULT_FEATURES
from customerlens.io.spark import ALS_ABOVE, KMEANS_ABOVE
from customerlens.outputs.store import STORE_NAME, write_store

#: Stage names reported to the progress callback, in order.
STAGES = ("load", "clean", "features", "value", "segment", "insights", "charts", "recommend", "store", "report")

Progress = Callable[[str], None]
#: the columns of the clean lines that the segment insights read (top products, trends, cohorts)
INSIGHT_COLUMNS = ("customer_id", "order_id", "order_date", "product_id", "product_name", "amount")
#: engines for loading, cleaning and features
ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class RunConfig:
    """Everything that shapes a run; stored in the run record."""

    as_of: str | dt.date | dt.datetime | None = None
    mapping: Sequence[str] | dict[str, str] | None = None
    encoding: str = "utf-8"
    sheet: str | int | None = None
    table: str | None = None
    date_format: str | None = None
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    #: segmentation: "kmeans" (elbow method) or "rfm" (quintile scores)
    method: str = "kmeans"
    k: int | None = None
    k_range: tuple[int, int] = (1, 10)
    segment_features: tuple[str, ...] = DEFAULT_FEATURES
    random_state: int = 42
    top_products: int = 10
    charts: bool = True
    #: recommendations: products per customer (0: none) and the model
    top_n: int = 10
    recommender: str = "blend"
    exclude_bought: bool = False
    discovery_slots: int = 0  # places per list kept for products new to the customer
    #: customer value (BG/NBD or Pareto/NBD, Gamma-Gamma, churn risk, CLV); see customerlens.value
    value: bool = True
    horizon_days: int = 90
    clv_months: int = 12
    discount_rate: float = 0.10
    value_model: str = "auto"
    #: segment migration: from this date to the snapshot (default: six months before it)
    migration_from: str | None = None
    #: the self-contained HTML report (report.html) at the end of the run
    report: bool = True
    #: the line-level insights (top products, trends, cohorts, migration); off for the largest runs
    insights: bool = True
    #: where loading, cleaning and features run: "duckdb" (one machine, out of core) or "spark"
    engine: str = "duckdb"
    spark_master: str | None = None  # e.g. "local[2]" or "spark://host:7077"; default: active session or local[*]
    #: Spark engine: MLlib K-means above this many customers, MLlib ALS recommendations above this many
    spark_kmeans_above: int = KMEANS_ABOVE
    spark_als_above: int = ALS_ABOVE
    #: DuckDB's memory limit (e.g. "3GB"); beyond it DuckDB spills to disk (half of it from the
    #: segmentation on, while pandas holds the customers). Default: DuckDB's (80 % of RAM)
    memory_limit: str | None = None

    def as_dict(self) -> dict:
        out = asdict(self)
        out["as_of"] = str(self.as_of) if self.as_of is not None else None
        out["mapping"] = dict(self.mapping) if isinstance(self.mapping, dict) else list(self.mapping or [])
        return out


@dataclass
class Ingested:
    """Loaded and cleaned transactions, with what was detected and removed."""

    loaded: LoadResult
    cleaned: CleanResult
    as_of: dt.datetime | None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        return self.loaded.con

    def report(self) -> dict:
        return {"schema": self.loaded.schema_report(), "quality": self.cleaned.report.as_dict()}


@dataclass
class RunResult:
    """What :func:`run` produced."""

    ingested: Ingested
    features: Any  # DuckDB relation, one row per customer
    as_of: dt.datetime
    out_dir: Path
    outputs: dict[str, Path]
    customers: int = 0  # customers with features
    segmentation: Any = None  # customerlens.segmentation.Segmentation
    value: Any = None  # customerlens.value.ValueResult (None when the stage was off or skipped)
    recommender: Any = None  # customerlens.recommend.service.Recommendations: .recommend(customer_id, n)

    @property
    def report(self) -> dict:
        return self.ingested.report()


def versions() -> dict[str, str]:
    import narwhals
    import numpy
    import pandas
    import polars
    import pyarrow

    return {
        "customerlens": __version__,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "narwhals": narwhals.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "polars": polars.__version__,
        "pyarrow": pyarrow.__version__,
    }


def _noop(stage: str) -> None:
    return None


def ingest(
    data: Any,
    config: RunConfig | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    progress: Progress = _noop,
) -> Ingested:
    """Load and clean ``data`` (a path or a frame)."""
    config = config or RunConfig()
    from customerlens.io.spark import is_spark_frame

    if config.engine not in ENGINES:
        from customerlens.errors import CustomerLensError

        raise CustomerLensError(f"--engine must be one of {', '.join(ENGINES)}, not {config.engine!r}")
    progress("load")
    if config.engine == "spark" or is_spark_frame(data):
        from customerlens.io import spark

        loaded = spark.load(data, spark.session(config.spark_master), mapping=config.mapping,
                            encoding=config.encoding, date_format=config.date_format)
        lines = loaded.spark
    else:
        loaded = load(
            data,
            mapping=config.mapping,
            con=con,
            encoding=config.encoding,
            sheet=config.sheet,
            table=config.table,
            date_format=config.date_format,
        )
        lines = loaded.relation
    try:
        if config.memory_limit:
            run_sql(loaded.con, f"SET memory_limit = '{_memory_setting(config.memory_limit)}'")
        progress("clean")
        as_of = parse_as_of(config.as_of)
        cleaned = clean(
            lines,
            config.cleaning,
            has_products=loaded.mapping.has_products,
            has_order_ids="order_id" in loaded.mapping.fields,
            as_of=as_of,
        )
    except BaseException:
        if con is None:  # the connection is ours: close it, and DuckDB removes its spill folder
            loaded.con.close()
        raise
    return Ingested(loaded=loaded, cleaned=cleaned, as_of=as_of)


def _memory_setting(value: str) -> str:
    import re

    text = str(value).strip().upper().replace(" ", "")
    if not re.fullmatch(r"\d+(\.\d+)?(KB|MB|GB|TB|KIB|MIB|GIB|TIB)", text):
        from customerlens.errors import CustomerLensError

        raise CustomerLensError(f"--memory-limit {value!r}: give a size such as 3GB or 500MB")
    return text


def _half_memory(value: str) -> str:
    """Half of a memory setting such as ``3GB``, in MB (DuckDB's units: KB = 1000 bytes, KiB = 1024)."""
    import re

    text = _memory_setting(value)
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Z]+)", text).groups()
    scale = {"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
    return f"{max(1, round(float(number) * scale[unit] / 2 / 1e6))}MB"


def run(
    data: Any,
    out_dir: str | Path,
    config: RunConfig | None = None,
    *,
    progress: Progress = _noop,
) -> RunResult:
    """Run the whole pipeline on ``data`` and write ``out_dir``.

    Writes ``customerlens.duckdb`` (every table), ``customer_features.csv``,
    ``quality_report.json``, the segmentation files (``segments.csv``,
    ``segment_profiles.csv``, ``top_products.csv``, ``segmenter.joblib``) and
    ``charts/``, each atomically.
    """
    config = config or RunConfig()
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        from customerlens.errors import InputError

        raise InputError(f"--out {out_dir}: exists and is not a folder")
    ingested = ingest(data, config, progress=progress)
    try:
        return _run_stages(ingested, out_dir, config, progress)
    except BaseException:
        # a failed run leaves nothing behind: its connection, and with it DuckDB's spill folder, goes
        ingested.con.close()
        raise


def _run_stages(ingested: Ingested, out_dir: Path, config: RunConfig, progress: Progress) -> RunResult:
    """Everything after the cleaning; :func:`run` closes the connection when it fails."""
    con = ingested.con
    transactions = ingested.cleaned.transactions
    if count_rows(transactions) == 0:
        from customerlens.errors import DataQualityError

        raise DataQualityError(
            f"{ingested.loaded.source.name}: no line is left after cleaning; "
            "see `customerlens ingest` for what each rule removed"
        )
    progress("features")
    as_of = ingested.as_of or default_as_of(transactions)
    features = customer_features(transactions, as_of=as_of)
    spark_work = spark_segmenter = spark_lines = None
    if hasattr(ingested.loaded, "spark"):
        # Spark computed the lines and the features; it writes them as Parquet
        # (kept in the output folder, for the data lake) and the later stages
        # read them from there through DuckDB, out of core
        from customerlens.io import spark as spark_engine

        spark_lines, spark_features = transactions, features
        spark_work = out_dir / "parquet"
        transactions, features = _from_spark(con, spark_work, ingested, spark_features)
        customers = count_rows(features)
        if config.method == "kmeans" and customers > config.spark_kmeans_above:
            spark_segmenter, _ = spark_engine.kmeans_segmentation(
                spark_features, features_used=tuple(config.segment_features), k=config.k,
                k_range=config.k_range, random_state=config.random_state)
    else:
        con.register("_cl_features", features)
        # ordered by customer: the segmentation needs that order and DuckDB sorts cheaper than pandas
        run_sql(con, "CREATE OR REPLACE TEMP TABLE _cl_features_t AS SELECT * FROM _cl_features ORDER BY customer_id")
        con.unregister("_cl_features")
        features = con.table("_cl_features_t")
        customers = count_rows(features)

    # The value models first: their summaries are DuckDB's last heavy work on the lines, done while
    # pandas holds little. Then the segmentation brings the customer table into pandas.
    value, value_record = None, None
    if config.value:
        progress("value")
        value, value_record = _value_stage(transactions, as_of, config)
    if config.memory_limit:
        # DuckDB gives back half its memory (cached pages of the lines) while pandas holds the customers,
        # to the end of the run
        run_sql(con, f"SET memory_limit = '{_half_memory(config.memory_limit)}'")
        release_memory()

    from customerlens.insights import segmentation as seg_stage

    progress("segment")
    segmentation = seg_stage.segment_customers(
        fetch_pandas(con, "SELECT * FROM _cl_features_t", customers), method=config.method, k=config.k, features=config.segment_features,
        random_state=config.random_state, k_range=config.k_range, segmenter=spark_segmenter,
    )
    if value is not None:
        from customerlens.models.value.report import value_by_segment

        value.by_segment = value_by_segment(value, segmentation.assigned)
    big_recs = spark_lines is not None and config.top_n > 0 and customers > config.spark_als_above
    lines = None
    if config.top_n > 0 and not big_recs:
        lines = transactions.df()
    elif config.insights:
        # the insights read six columns: convert only those to pandas
        lines = transactions.select(*INSIGHT_COLUMNS).df()
    segmentation.add_profiles()
    if config.insights:
        progress("insights")
        segmentation.add_insights(lines, top_n=config.top_products)
        migration_from = _migration_start(config, as_of, transactions)
        if migration_from is not None:
            # features as of both dates: by DuckDB, on the lines where they are
            segmentation.add_migration(transactions, migration_from, as_of)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Path] = {}
    if config.charts:
        progress("charts")
        outputs.update(segmentation.write_charts(out_dir / "charts"))
        if value is not None:
            from customerlens.models.value.report import write_value_charts

            outputs.update(write_value_charts(value, segmentation, transactions, out_dir / "charts"))

    recommendations = fitted = None
    if big_recs and ingested.loaded.mapping.has_products:
        progress("recommend")
        from customerlens.io import spark as spark_engine

        recommendations = _spark_recommendations(spark_engine.als_recommendations(
            spark_lines, as_of, config.top_n, exclude_seen=config.exclude_bought), transactions, con)
    elif config.top_n > 0 and ingested.loaded.mapping.has_products:
        progress("recommend")
        from customerlens.models.recommend.service import fit_recommendations

        segments = dict(zip(segmentation.assigned["customer_id"], segmentation.assigned["segment_name"],
                            strict=True))
        fitted = fit_recommendations(lines, as_of, model=config.recommender, segments=segments)
        recommendations = fitted.for_customers(n=config.top_n, exclude_seen=config.exclude_bought,
                                               discovery=config.discovery_slots)

    plan = insights.action_plan(segmentation.assigned, segmentation.profiles, segmentation.distinctive_products,
                                value.by_segment if value is not None else None)

    # the store: DuckDB stays at half its limit (pandas still holds the customer tables)
    progress("store")
    report = ingested.report()
    quality = ingested.cleaned.report
    quality_rows = _quality_rows(quality)
    record = {
        "input": ingested.loaded.source.as_dict(),
        "parameters": {**config.as_dict(), "as_of_used": as_of.isoformat()},
        "versions": versions(),
        "schema": report["schema"],
        "quality": report["quality"],
        "customers_with_features": customers,
        "segmentation": segmentation.record(),
        **({"value": value_record} if value_record is not None else {}),
    }
    outputs["store"] = write_store(
        out_dir / STORE_NAME,
        con,
        {
            "transactions": transactions,
            "excluded_lines": ingested.cleaned.excluded,
            "customer_features": features,
            "quality_report": quality_rows,
            **segmentation.tables(),
            **({"recommendations": recommendations} if recommendations is not None else {}),
            **({"customer_value": value.table, "segment_value": value.by_segment} if value is not None else {}),
            "action_plan": plan,
        },
        record,
        # DuckDB's lines are in input order since the cleaning (Spark's Parquet files are not),
        # the features by customer
        presorted=("customer_features",) + (("transactions", "excluded_lines") if spark_work is None else ()),
    )
    outputs["customer_features"] = _write_csv(con, features, out_dir / "customer_features.csv")
    outputs["quality_report"] = write_text_atomic(
        out_dir / "quality_report.json", json.dumps(report, indent=2, default=str) + "\n"
    )
    outputs.update(segmentation.write_files(out_dir))
    # the target lists last, when the store is written: one more customer table at a time, not two
    targets = insights.target_list(segmentation.assigned, value.table if value is not None else None,
                                   recommendations)
    outputs.update(_write_decisions(out_dir, plan, targets, segmentation))
    del targets
    if value is not None:
        outputs["value"] = write_csv_atomic(value.table, out_dir / "value.csv")
        outputs["segment_value"] = write_csv_atomic(value.by_segment, out_dir / "segment_value.csv")
    if recommendations is not None:
        outputs["recommendations"] = write_csv_atomic(recommendations, out_dir / "recommendations.csv",
                                                      float_format="%.6g")
    if config.report:
        progress("report")
        from customerlens.outputs.report import write_report

        outputs["report"] = write_report(outputs["store"], out_dir / "report.html")
    if spark_work is not None:
        outputs["parquet"] = spark_work
    return RunResult(ingested=ingested, features=features, as_of=as_of, out_dir=out_dir, outputs=outputs,
                     customers=customers, segmentation=segmentation, recommender=fitted, value=value)


def _from_spark(con: duckdb.DuckDBPyConnection, work: Path, ingested: Ingested, features):
    """Write Spark's clean lines, excluded lines and features as Parquet under ``work`` and read them
    back as DuckDB relations (the rest of the run is DuckDB's, as on the default engine)."""
    from customerlens.io import spark as spark_engine

    cleaned = ingested.cleaned
    paths = {name: spark_engine.write_parquet(frame, work / name) for name, frame in
             (("transactions", cleaned.transactions), ("excluded_lines", cleaned.excluded), ("features", features))}
    relations = {name: spark_engine.read_parquet(con, path, f"_cl_spark_{name}") for name, path in paths.items()}
    run_sql(con, "CREATE OR REPLACE TEMP TABLE _cl_features_t AS SELECT * FROM _cl_spark_features "
                 "ORDER BY customer_id")
    cleaned.transactions, cleaned.excluded = relations["transactions"], relations["excluded_lines"]
    return relations["transactions"], con.table("_cl_features_t")


def _spark_recommendations(frame, transactions, con: duckdb.DuckDBPyConnection):
    """MLlib's lists as the pandas table of ``recommendations.csv`` (with product names)."""
    ranked = frame.toPandas()
    con.register("_cl_lines", transactions)
    try:
        names = con.sql("SELECT product_id, any_value(product_name) AS product_name FROM _cl_lines "
                        "WHERE product_id IS NOT NULL GROUP BY product_id").df()
    finally:
        con.unregister("_cl_lines")
    out = ranked.merge(names, on="product_id", how="left")
    return out[["customer_id", "rank", "product_id", "product_name", "score", "reason"]].sort_values(
        ["customer_id", "rank"], kind="stable").reset_index(drop=True)


def _migration_start(config: RunConfig, as_of: dt.datetime, lines) -> dt.datetime | None:
    """Start of the migration window: ``config.migration_from``, else six months before ``as_of``;
    None when there were no customers yet by then."""
    import narwhals as nw
    import pandas as pd

    from customerlens.core.frames import collect

    start = (parse_as_of(config.migration_from) if config.migration_from
             else (pd.Timestamp(as_of) - pd.DateOffset(months=6)).to_pydatetime())
    if start >= as_of:
        from customerlens.errors import CustomerLensError

        raise CustomerLensError(f"--migration-from ({start:%Y-%m-%d}) must come before the snapshot "
                                f"({as_of:%Y-%m-%d})")
    first = pd.Timestamp(collect(nw.from_native(lines).select(nw.col("order_date").min())).item(0, 0))
    return start if pd.notna(first) and first < pd.Timestamp(start) else None


def _write_decisions(out_dir: Path, plan, targets, segmentation) -> dict[str, Path]:
    """``action_plan.csv`` / ``.md`` and ``targets/<segment>.csv`` (+ who moved into At-Risk)."""
    import numpy as np

    _slug = insights._slug
    outputs = {"action_plan": write_csv_atomic(plan, out_dir / "action_plan.csv"),
               "action_plan_md": write_text_atomic(out_dir / "action_plan.md", insights.action_plan_markdown(plan))}
    folder = out_dir / "targets"
    # the lists come segment by segment (insights.target_list): each file is a slice, not a copy
    ids = targets["segment_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.array([], dtype=int)
    for start, stop in zip(starts, np.r_[starts[1:], len(ids)], strict=True):
        group = targets.iloc[start:stop]
        name = group["segment_name"].iat[0]
        outputs[f"targets_{_slug(name)}"] = write_csv_atomic(group, folder / f"{_slug(name)}.csv")
    movers = segmentation.movers
    if movers is not None and not movers.empty:
        into_risk = movers[(movers["to_segment"] == "At-Risk") & (movers["from_segment_id"] > 0)
                           & (movers["from_segment_id"] < movers["to_segment_id"])]
        for source, group in into_risk.groupby("from_segment", sort=False):
            name = f"moved_{_slug(source)}_to_at-risk"
            listed = targets[targets["customer_id"].isin(set(group["customer_id"]))]
            outputs[f"targets_{name}"] = write_csv_atomic(listed, folder / f"{name}.csv")
    return outputs


def _value_stage(transactions, as_of: dt.datetime, config: RunConfig):
    """Fit the value models on everything before ``as_of``; skipped, with the reason recorded, when the
    data cannot support them (e.g. a handful of customers)."""
    import warnings

    from customerlens.errors import CustomerLensError
    from customerlens.models.value import ValueConfig, fit_value

    vconfig = ValueConfig(horizon_days=config.horizon_days, clv_months=config.clv_months,
                          discount_rate=config.discount_rate, model=config.value_model,
                          random_state=config.random_state).check()
    calibration_end = (as_of - dt.timedelta(days=1)).date() if as_of.time() == dt.time() else as_of.date()
    try:
        # the summary is dropped once every customer is scored: only the tracking chart reads it
        value = fit_value(transactions, calibration_end, vconfig, keep_summary=config.charts)
    except (CustomerLensError, ValueError, ArithmeticError) as exc:
        warnings.warn(f"customer value skipped: {exc}", stacklevel=2)
        return None, {"skipped": str(exc)}
    if config.charts:  # the tracking chart's table, while the summary is there; then the summary goes
        from customerlens.models.value.service import tracking

        value.weekly_tracking = tracking(transactions, value)
        value.summary = None
    return value, value.record


def _quality_rows(report) -> Any:
    frame = report.to_frame()
    frame.insert(0, "position", range(1, len(frame) + 1))
    return frame


def _write_csv(con, relation, path: Path, order_by: str | None = None) -> Path:
    """``relation`` as CSV, atomically: in ``order_by`` order, or as it is (a stored table
    already in the order wanted: DuckDB keeps it) when ``order_by`` is None."""
    with atomic_path(path) as tmp:
        con.register("_cl_csv", relation)
        try:
            target = str(tmp).replace("'", "''")
            order = f" ORDER BY {order_by}" if order_by else ""
            run_sql(con, f"COPY (SELECT * FROM _cl_csv{order}) TO '{target}' (HEADER, DELIMITER ',')")
        finally:
            con.unregister("_cl_csv")
    return path
