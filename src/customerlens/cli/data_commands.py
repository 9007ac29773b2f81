"""Commands that read transactions: ``run``, ``segment``, ``ingest``, ``features`` and ``demo``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from customerlens.cli import display
from customerlens.cli.entry import app, err, out
from customerlens.cli.options import (
    AsOfOpt,
    ChartsOpt,
    CodesOpt,
    DataArg,
    DateFormatOpt,
    DiscoveryOpt,
    EncodingOpt,
    EngineOpt,
    ExcludeBoughtOpt,
    FeaturesOpt,
    InsightsOpt,
    KOpt,
    KRangeOpt,
    MapOpt,
    MemoryLimitOpt,
    MethodOpt,
    RecommenderOpt,
    RecordPathsOpt,
    SheetOpt,
    SkipOpt,
    SparkALSAboveOpt,
    SparkCheckpointOpt,
    SparkConfOpt,
    SparkKMeansAboveOpt,
    SparkMasterOpt,
    TableOpt,
    TopNOpt,
    TopProductsOpt,
    TransactionsArg,
    VerboseOpt,
    WorkersOpt,
    build_config,
)
from customerlens.errors import ConfigError


def spark_flags(conf: list[str] | None, checkpoint_dir: str | None, kmeans_above: int | None,
                als_above: int | None) -> dict:
    """The Spark flags a command was given, as options of :func:`build_config` (the ones not given left out)."""
    flags = {"spark_conf": tuple(conf) if conf else None, "spark_checkpoint_dir": checkpoint_dir,
             "spark_kmeans_above": kmeans_above, "spark_als_above": als_above}
    return {key: value for key, value in flags.items() if value is not None}


@app.command()
def run(
    data: DataArg = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out/run"),
    as_of: AsOfOpt = None,
    mapping: MapOpt = None,
    encoding: EncodingOpt = "utf-8",
    sheet: SheetOpt = None,
    table: TableOpt = None,
    date_format: DateFormatOpt = None,
    skip_rule: SkipOpt = None,
    non_product_codes: CodesOpt = None,
    k: KOpt = None,
    method: MethodOpt = "kmeans",
    features: FeaturesOpt = None,
    k_range: KRangeOpt = "1,10",
    top_n: TopNOpt = 10,
    recommender: RecommenderOpt = "auto",
    top_products: TopProductsOpt = 10,
    exclude_bought: ExcludeBoughtOpt = False,
    discovery_slots: DiscoveryOpt = 0,
    value: Annotated[bool, typer.Option("--value/--no-value", help="Score customer value: P(alive), churn "
                                        "risk, CLV (docs/value.md).")] = True,
    horizon_days: Annotated[int, typer.Option("--horizon-days", help="Horizon of expected purchases and churn "
                                              "risk, in days.")] = 90,
    clv_months: Annotated[int, typer.Option("--clv-months", help="CLV horizon in months.")] = 12,
    discount_rate: Annotated[float, typer.Option("--discount-rate", help="Yearly discount rate for CLV.")] = 0.10,
    report: Annotated[bool, typer.Option("--report/--no-report", help="Write report.html, the self-contained "
                                         "HTML report (docs/report.md).")] = True,
    migration_from: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--migration-from", help="Segment migration from this date to the snapshot (default: six "
                     "months before it)."),
    ] = None,
    charts: ChartsOpt = True,
    insights: InsightsOpt = True,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    spark_checkpoint_dir: SparkCheckpointOpt = None,
    spark_kmeans_above: SparkKMeansAboveOpt = None,
    spark_als_above: SparkALSAboveOpt = None,
    memory_limit: MemoryLimitOpt = None,
    workers: WorkersOpt = None,
    record_paths: RecordPathsOpt = False,
    demo_customers: Annotated[
        int, typer.Option(help="Customers in the demo data used when no file is given.")
    ] = 4000,
    verbose: VerboseOpt = False,
) -> None:
    """Run the whole pipeline on a file and write the output folder.

    Without a file, generates the synthetic demo data set first (see `customerlens demo`).

    Examples: `customerlens run online_retail.csv.gz --out out/retail --as-of 2011-09-09`;
    on Spark: `customerlens run sales.parquet --engine spark --spark-master local[4]`, a lake's partitioned
    table: `customerlens run s3a://lake/sales/ --engine spark --spark-master spark://host:7077
    --spark-conf spark.executor.memory=8g --spark-checkpoint-dir s3a://lake/tmp/checkpoints` (docs/scale.md);
    a file larger than memory: `customerlens run big.parquet --memory-limit 3GB --no-insights --top-n 0`
    """
    from customerlens.pipeline import STAGES
    from customerlens.pipeline import run as run_pipeline

    config = build_config(
        as_of=as_of, mapping=mapping, encoding=encoding, sheet=sheet, table=table, date_format=date_format,
        skip_rule=skip_rule, non_product_codes=non_product_codes, k=k, method=method, features=features,
        k_range=k_range, top_n=top_n, recommender=recommender, top_products=top_products,
        exclude_bought=exclude_bought, discovery_slots=discovery_slots, value=value, horizon_days=horizon_days,
        clv_months=clv_months, discount_rate=discount_rate, migration_from=migration_from, report=report, charts=charts,
        insights=insights, engine=engine, spark_master=spark_master, memory_limit=memory_limit,
        workers=workers, record_paths=record_paths, **spark_flags(spark_conf, spark_checkpoint_dir,
                                                                  spark_kmeans_above, spark_als_above))
    if data is None and not (table and engine == "spark"):  # no file, no Spark table: the demo data
        data = out_dir / "demo" / "demo_transactions.csv"
        err.print(f"No file given: generating demo data for {demo_customers:,} customers -> {data}")
        from customerlens.io import demo

        demo.write(demo.generate(demo_customers), data)
    with display.progress() as bar:
        on_stage = display.staged(bar, STAGES, verbose=verbose)
        result = run_pipeline(data, out_dir, config, progress=on_stage)
    if verbose:
        display.print_stage_seconds(result.clock.stages)
    display.print_quality(result.ingested.quality_report())
    out.print(f"\nCustomers with features: [bold]{result.customers:,}[/] as of {result.as_of:%Y-%m-%d}")
    display.print_segments(result.segmentation)
    display.print_value_summary(result.value)
    display.print_outputs(result)
    result.close()  # its DuckDB connection now, not in the interpreter's exit


@app.command()
def segment(
    data: DataArg = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out/segments"),
    k: KOpt = None,
    method: MethodOpt = "kmeans",
    features: FeaturesOpt = None,
    k_range: KRangeOpt = "1,10",
    top_products: TopProductsOpt = 10,
    charts: ChartsOpt = True,
    as_of: AsOfOpt = None,
    mapping: MapOpt = None,
    encoding: EncodingOpt = "utf-8",
    sheet: SheetOpt = None,
    table: TableOpt = None,
    date_format: DateFormatOpt = None,
    skip_rule: SkipOpt = None,
    non_product_codes: CodesOpt = None,
    insights: InsightsOpt = True,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    spark_checkpoint_dir: SparkCheckpointOpt = None,
    spark_kmeans_above: SparkKMeansAboveOpt = None,
    memory_limit: MemoryLimitOpt = None,
    record_paths: RecordPathsOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Segment customers: K-means with k chosen by the elbow method (or classic RFM).

    Named segments with engagement strategies, top products per segment and charts.

    Writes segments.csv, segment_profiles.csv, top_products.csv, charts/*.png|svg and the
    DuckDB store to --out.

    Examples: `customerlens segment sales.csv --out out/seg`,
    `customerlens segment sales.csv --k 5`, `customerlens segment sales.csv --method rfm`
    """
    from customerlens.pipeline import STAGES
    from customerlens.pipeline import run as run_pipeline

    # segments only: customer value, recommendations and the report are `run`'s
    config = build_config(
        as_of=as_of, mapping=mapping, encoding=encoding, sheet=sheet, table=table, date_format=date_format,
        skip_rule=skip_rule, non_product_codes=non_product_codes, k=k, method=method, features=features,
        k_range=k_range, top_n=0, top_products=top_products, value=False, report=False, charts=charts,
        insights=insights, engine=engine, spark_master=spark_master, memory_limit=memory_limit,
        record_paths=record_paths, **spark_flags(spark_conf, spark_checkpoint_dir, spark_kmeans_above, None))
    if data is None and not (table and engine == "spark"):
        raise typer.BadParameter("give the transactions (a file, folder, glob or URI), or --table with "
                                 "--engine spark", param_hint="DATA")
    with display.progress() as bar:
        result = run_pipeline(data, out_dir, config, progress=display.staged(bar, STAGES, verbose=verbose))
    if verbose:
        display.print_stage_seconds(result.clock.stages)
    display.print_segments(result.segmentation)
    display.print_outputs(result)
    result.close()


@app.command()
def ingest(
    data: TransactionsArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    as_of: AsOfOpt = None,
    mapping: MapOpt = None,
    encoding: EncodingOpt = "utf-8",
    sheet: SheetOpt = None,
    table: TableOpt = None,
    date_format: DateFormatOpt = None,
    skip_rule: SkipOpt = None,
    non_product_codes: CodesOpt = None,
) -> None:
    """Show how a file is read: detected layout, column mapping, and the data-quality report.

    Nothing is written. Every input line is accounted for: kept, or removed by one named rule.

    Example: `customerlens ingest sales.csv --map order_date=Date --json`
    """
    from customerlens.pipeline import ingest as ingest_data

    config = build_config(as_of=as_of, mapping=mapping, encoding=encoding, sheet=sheet, table=table,
                          date_format=date_format, skip_rule=skip_rule, non_product_codes=non_product_codes)
    result = ingest_data(data, config)
    report = result.quality_report()
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        return
    display.print_schema(report["schema"])
    display.print_quality(report)
    display.print_excluded_products(report)


@app.command()
def features(
    data: TransactionsArg,
    output: Annotated[Path, typer.Option("--out", help="CSV file to write.")] = Path("customer_features.csv"),
    as_of: AsOfOpt = None,
    mapping: MapOpt = None,
    encoding: EncodingOpt = "utf-8",
    sheet: SheetOpt = None,
    table: TableOpt = None,
    date_format: DateFormatOpt = None,
) -> None:
    """Write one row of behaviour features per customer (recency, frequency, monetary, ...) to CSV.

    Example: `customerlens features sales.csv --as-of 2011-09-09 --out features.csv`
    """
    from customerlens.features.customer import customer_features, default_as_of
    from customerlens.outputs.layout import write_relation_csv
    from customerlens.pipeline import ingest as ingest_data

    config = build_config(as_of=as_of, mapping=mapping, encoding=encoding, sheet=sheet, table=table,
                          date_format=date_format)
    result = ingest_data(data, config)
    snapshot = result.as_of or default_as_of(result.cleaned.transactions)
    frame = customer_features(result.cleaned.transactions, as_of=snapshot)
    write_relation_csv(result.con, frame, output, "customer_id")
    out.print(f"Features as of {snapshot:%Y-%m-%d} -> {output}")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Number of customers (households for grocery, accounts for b2b "
                                           "and bank, subscribers for subscription).")] = 4000,
    output: Annotated[
        Path, typer.Option("--out", help="File to write: .csv, .csv.gz or .parquet.")
    ] = Path("demo_transactions.csv"),
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same file.")] = 42,
    shape: Annotated[str, typer.Option("--shape", help="retail: a gift wholesaler in Online Retail's layout "
                                       "(about 70 lines a customer); grocery: a supermarket's year of weekly "
                                       "baskets (20-40 lines each, 68,000 products, fuel, deposits, coupons, "
                                       "a one-day last month; about 800 lines a household); subscription: two "
                                       "years of monthly plan charges, churners stop; b2b: business accounts "
                                       "with large, irregular orders (use about 150); bank: a year of card "
                                       "payments and transfers, amounts without products.")] = "retail",
) -> None:
    """Generate synthetic transactions with planted customer types.

    Writes the lines to --out and each customer's true type to `<name>.types.csv`
    beside it. The behavioural models are described in docs/demo-data.md.

    Examples: `customerlens demo --customers 10000 --out demo.csv.gz`;
    `customerlens demo --shape grocery --customers 2500 --out grocery.parquet`;
    `customerlens demo --shape bank --customers 2000 --out bank.csv`
    """
    from customerlens.io import demo as demo_mod
    from customerlens.io.shapes import SHAPES

    if customers < 1:
        raise ConfigError("--customers must be at least 1")
    if shape not in SHAPES:
        raise ConfigError(f"--shape must be one of {', '.join(SHAPES)}, not {shape!r}")
    who = {"grocery": "households", "b2b": "accounts", "bank": "accounts", "subscription": "subscribers"}
    with err.status(f"Generating {customers:,} {who.get(shape, 'customers')}"):
        if shape == "retail":
            data = demo_mod.generate(customers, seed=seed)
        else:
            from customerlens.io.shapes import GENERATORS

            data = GENERATORS[shape](customers, seed=seed)
        lines_path, types_path = demo_mod.write(data, output)
    out.print(f"{data.lines.num_rows:,} lines -> {lines_path}\ntrue customer types -> {types_path}")

