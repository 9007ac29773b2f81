"""The options the commands share, and turning them into a checked :class:`~customerlens.pipeline.RunConfig`.

Each option is declared once here (an ``Annotated`` type) and used by every
command that takes it. :data:`FLAGS` maps the Python API's parameter names to
these flags, so a :class:`~customerlens.errors.ConfigError` raised by the
library is shown with the flag the user typed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from customerlens.errors import ConfigError

#: the cleaning rules --skip-rule can switch off: ``customerlens.cleaning.SWITCHES``, spelled out here so
#: that ``--help`` does not import pandas (tests/cli/test_cli.py checks that the two agree)
SWITCHES = ("unparseable", "implausible_date", "implausible_value", "missing_customer", "exact_duplicate",
            "non_product", "non_merchandise", "quantity_outlier", "non_positive_price", "returns")

DataArg = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional here; text, not a Path: Path("s3a://x") drops a slash
    typer.Argument(
        help="Transactions: a CSV (also .gz, any delimiter or whitespace), Parquet or .xlsx file, a DuckDB file "
        "with --table, or a folder or glob of Parquet or CSV files (Hive partitions such as month=2011-01/ "
        "become columns). With --engine spark also any URI Spark reads (s3a://, gs://, abfss://, hdfs://, "
        "file://), or none with --table db.sales (Spark's catalog).",
        show_default=False,
    ),
]
TransactionsArg = Annotated[
    str,  # text, not a Path: a file:// URI keeps its //
    typer.Argument(help="Transactions: a file, or a folder or glob of Parquet or CSV files (as for `run`).",
                   show_default=False),
]
MapOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--map",
        help="Name a column yourself: canonical=SourceColumn, e.g. --map order_date=Date "
        "(repeat for more). Canonical fields: customer_id, order_id, order_date, product_id, "
        "product_name, quantity, unit_price, amount, country, channel, category.",
    ),
]
EncodingOpt = Annotated[str, typer.Option(help="Text encoding of a CSV file, e.g. latin-1.")]
SheetOpt = Annotated[Optional[str], typer.Option(help="Excel sheet name (default: the first).")]  # noqa: UP045
TableOpt = Annotated[Optional[str], typer.Option(  # noqa: UP045
    help="Table to read from a DuckDB file; with --engine spark and no file, a table of Spark's catalog "
         "(db.sales).")]
DateFormatOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(help="strptime format of the date column, e.g. '%d/%m/%Y %H:%M' (default: detected)."),
]
AsOfOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--as-of",
        help="Snapshot date YYYY-MM-DD: only lines before it are used (default: the day "
        "after the last transaction).",
    ),
]
SkipOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--skip-rule",
        help=f"Switch a cleaning rule off (repeatable): {', '.join(SWITCHES)}.",
    ),
]
CodesOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--non-product-codes",
        help="Comma-separated product codes that are not products (replaces the default "
        "list: POST, DOT, C2, M, BANK CHARGES, AMAZONFEE, CRUK, D, S, PADS, B, ...).",
    ),
]


KOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--k", help="Number of segments (default: chosen by the elbow method, see docs/segmentation.md)."),
]
MethodOpt = Annotated[
    str,
    typer.Option("--method", help="Segmentation: kmeans (elbow method, named segments) or rfm (classic RFM scores)."),
]
FeaturesOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--features", help="Comma-separated features K-means clusters on "
                 "(default recency_days,frequency,monetary; e.g. add tenure_days)."),
]
KRangeOpt = Annotated[
    str, typer.Option("--k-range", help="Smallest and largest k of the elbow search, e.g. 2,12.")
]
TopNOpt = Annotated[int, typer.Option("--top-n", help="Recommendations per customer (0: none).")]
RecommenderOpt = Annotated[
    str, typer.Option("--recommender",
                      help="auto (default): two_stage, the learned ranker, or the blend above 20,000 products; "
                           "or any model of `customerlens backtest --models` (docs/recommendations.md).")
]
ExcludeBoughtOpt = Annotated[
    bool, typer.Option("--exclude-bought/--include-bought",
                       help="Recommend only products the customer has not bought yet (default: repeats allowed).")
]
DiscoveryOpt = Annotated[
    int, typer.Option("--discovery-slots",
                      help="Places of each list kept for products new to the customer (default 0: the model "
                           "decides; on Online Retail 3 places raise new-item recall but lower NDCG, "
                           "see docs/recommendations.md).")
]
EngineOpt = Annotated[
    str, typer.Option("--engine", help="Where loading, cleaning and features run: duckdb (one machine, out of "
                      "core) or spark (PySpark: pip install 'customerlens[spark]', Java 17+; docs/scale.md).")
]
SparkMasterOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--spark-master", help="Spark master for --engine spark, e.g. local[2] or spark://host:7077 "
                 "(default: the active session, else local[*]).")
]
SparkConfOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--spark-conf", metavar="KEY=VALUE", help="A Spark setting for the session customerlens starts "
                 "(repeatable), e.g. --spark-conf spark.executor.memory=8g --spark-conf spark.executor.cores=4.")
]
SparkCheckpointOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--spark-checkpoint-dir", help="Where MLlib's ALS checkpoints; on a cluster, storage every "
                 "executor reaches (hdfs://..., s3a://...). Default: Spark's spark.checkpoint.dir when set, else "
                 "a temporary folder removed after the run.")
]
SparkKMeansAboveOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--spark-kmeans-above", help="With --engine spark, MLlib's K-means above this many "
                 "customers (default 2,000,000; 0 always).", show_default=False)
]
SparkALSAboveOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--spark-als-above", help="With --engine spark, recommendations from MLlib's ALS above "
                 "this many customers (default 1,000,000; 0 always).", show_default=False)
]
MemoryLimitOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--memory-limit", help="DuckDB's memory limit, e.g. 3GB: larger work spills to disk, in "
                 "the system temp dir (TMPDIR). The customer tables (pandas) come on top: about 0.8 GB "
                 "per million customers. Default: DuckDB's, 80% of RAM.")
]
WorkersOpt = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option("--workers", min=1, max=2, help="Processes the run may use: 2 fits the recommender in a process "
                 "of its own while the other stages run (the same results, on a second core; its memory comes "
                 "on top), 1 keeps everything in one process. Default: 2 when the machine has two cores free.",
                 show_default=False)
]
InsightsOpt = Annotated[
    bool, typer.Option("--insights/--no-insights", help="Line-level insights: top products, trends, cohorts, "
                       "migration (off: segments and value only, for the largest files).")
]
TopProductsOpt = Annotated[int, typer.Option("--top-products", help="Top products listed per segment.")]
ChartsOpt = Annotated[bool, typer.Option("--charts/--no-charts", help="Write the charts (PNG and SVG).")]

OutOpt = Annotated[Path, typer.Option("--out", help="Output folder.")]
RecordPathsOpt = Annotated[bool, typer.Option(
    "--record-paths", help="Keep the input's full path in the run record and quality_report.json (default: its "
    "file name only, so that shared outputs do not show folders of this machine).")]
VerboseOpt = Annotated[bool, typer.Option(
    "--verbose", "-v", help="Print each stage as it starts, and every stage's seconds and peak memory at the end "
    "(stderr).")]

#: parameter of the Python API -> the CLI flag that sets it
FLAGS = {
    "as_of": "--as-of", "mapping": "--map", "input.mapping": "--map", "input.encoding": "--encoding",
    "input.sheet": "--sheet", "input.table": "--table", "input.date_format": "--date-format",
    "engine.name": "--engine", "engine.spark_master": "--spark-master", "engine.memory_limit": "--memory-limit",
    "engine.workers": "--workers", "engine.spark_conf": "--spark-conf",
    "engine.spark_checkpoint_dir": "--spark-checkpoint-dir", "engine.spark_kmeans_above": "--spark-kmeans-above",
    "engine.spark_als_above": "--spark-als-above",
    "segmentation.method": "--method", "method": "--method", "segmentation.k": "--k", "k": "--k",
    "segmentation.k_range": "--k-range", "k_range": "--k-range", "segmentation.features": "--features",
    "insights.top_products": "--top-products", "insights.migration_from": "--migration-from",
    "recommend.top_n": "--top-n", "recommend.model": "--model", "recommend.exclude_bought": "--exclude-bought",
    "recommend.discovery_slots": "--discovery-slots", "value.horizon_days": "--horizon-days",
    "value.clv_months": "--clv-months", "value.discount_rate": "--discount-rate", "value.time_unit": "--time-unit",
    "value.model": "--model", "calibration_end": "--calibration-end", "holdout_end": "--holdout-end",
    "send_date": "--send-date", "revenue_outcome": "--revenue-outcome", "customer_col": "--customer-col",
    "outcomes": "--outcomes", "transactions": "--transactions",
}


def flag_message(error: ConfigError) -> str:
    """The error's message with the parameter it names shown as the CLI flag (``segmentation.k`` -> ``--k``)."""
    message = str(error)
    flag = FLAGS.get(error.parameter or "")
    if flag and error.parameter:
        message = message.replace(error.parameter, flag)
    return message


def cleaning_config(skip: list[str] | None, codes: str | None) -> Any:
    """The cleaning settings (a ``CleaningConfig``) from ``--skip-rule`` and ``--non-product-codes``."""
    from customerlens.cleaning.rules import CleaningConfig

    config = CleaningConfig()
    if codes is not None:
        config = CleaningConfig(
            non_product_codes=tuple(c.strip() for c in codes.split(",") if c.strip()),
            non_product_prefixes=(),
        )
    if skip:
        try:
            config = config.without(*skip)
        except ValueError as exc:
            raise ConfigError(str(exc), parameter="cleaning") from None
    return config


def names_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def k_range_pair(text: str) -> tuple[int, int]:
    """``--k-range 2,12`` -> ``(2, 12)``."""
    try:
        low, high = (int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"segmentation.k_range expects two numbers like 1,10, got {text!r}",
                          parameter="segmentation.k_range") from None
    return low, high


def build_config(**flags: Any) -> Any:
    """A :class:`~customerlens.pipeline.RunConfig` from the commands' flags (flat options; strings parsed).

    ``skip_rule`` and ``non_product_codes`` become the cleaning settings, ``features``
    and ``k_range`` are split on commas; everything else is a flat option of
    :meth:`RunConfig.from_options <customerlens.pipeline.config.RunConfig.from_options>`.
    """
    from customerlens.pipeline.config import RunConfig

    options = {key: value for key, value in flags.items() if value is not None}
    skip, codes = options.pop("skip_rule", None), options.pop("non_product_codes", None)
    options["cleaning"] = cleaning_config(skip, codes)
    if "features" in options:
        options["segment_features"] = tuple(names_list(options.pop("features")))
    if isinstance(options.get("k_range"), str):
        options["k_range"] = k_range_pair(options["k_range"])
    if "mapping" in options:
        options["mapping"] = tuple(options["mapping"])
    return RunConfig.from_options(**options)
