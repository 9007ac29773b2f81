"""The command line: parse, call the library, print. Nothing else lives here.

Every :class:`~customerlens.errors.CustomerLensError` becomes one red line on
stderr and exit code 2; only bugs show a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from customerlens import __version__
from customerlens.cleaning.rules import SWITCHES, CleaningConfig
from customerlens.errors import CustomerLensError

app = typer.Typer(
    name="customerlens",
    help=(
        "Purchase transactions in, customer decisions out.\n\n"
        "Start with `customerlens run` (no file: a synthetic demo data set) or "
        "`customerlens run sales.csv --out out/`. `customerlens ingest FILE` shows how a "
        "file is read and cleaned before you commit to a run."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
out = Console()
err = Console(stderr=True)

DataArg = Annotated[
    Optional[Path],  # noqa: UP045 - typer needs Optional here
    typer.Argument(
        help="Transactions file: CSV (also .gz, any delimiter or whitespace), Parquet, "
        ".xlsx, or a DuckDB file with --table.",
        show_default=False,
    ),
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
TableOpt = Annotated[Optional[str], typer.Option(help="Table to read from a DuckDB file.")]  # noqa: UP045
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
MemoryLimitOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--memory-limit", help="DuckDB's memory limit, e.g. 3GB: larger work spills to disk, in "
                 "the system temp dir (TMPDIR). The customer tables (pandas) come on top: about 0.8 GB "
                 "per million customers. Default: DuckDB's, 80% of RAM.")
]
InsightsOpt = Annotated[
    bool, typer.Option("--insights/--no-insights", help="Line-level insights: top products, trends, cohorts, "
                       "migration (off: segments and value only, for the largest files).")
]
TopProductsOpt = Annotated[int, typer.Option("--top-products", help="Top products listed per segment.")]
ChartsOpt = Annotated[bool, typer.Option("--charts/--no-charts", help="Write the charts (PNG and SVG).")]


def _cleaning(skip: list[str] | None, codes: str | None) -> CleaningConfig:
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
            raise CustomerLensError(str(exc)) from None
    return config


def _run_config(as_of, mapping, encoding, sheet, table, date_format, skip, codes, options=None, **segmentation):
    """RunConfig from the shared options; ``options`` sets further RunConfig fields as they are."""
    from customerlens.core.dates import parse_as_of
    from customerlens.pipeline.run import ENGINES, RunConfig, _memory_setting

    parse_as_of(as_of)  # a bad date fails here, before any file is read
    options = options or {}
    if options.get("engine", "duckdb") not in ENGINES:
        raise CustomerLensError(f"--engine must be one of {', '.join(ENGINES)}, not {options['engine']!r}")
    if options.get("memory_limit"):
        _memory_setting(options["memory_limit"])
    sheet_value: str | int | None = sheet
    if sheet is not None and sheet.isdigit():
        sheet_value = int(sheet)
    return RunConfig(
        as_of=as_of,
        mapping=tuple(mapping or ()),
        encoding=encoding,
        sheet=sheet_value,
        table=table,
        date_format=date_format,
        cleaning=_cleaning(skip, codes),
        **_segmentation_options(**segmentation),
        **(options or {}),
    )


def _segmentation_options(k=None, method="kmeans", features=None, top_n=10, charts=True, k_range="1,10",
                          top_products=10, exclude_bought=False, discovery_slots=0) -> dict:
    from customerlens.insights.segmentation import METHODS

    if method not in METHODS:
        raise CustomerLensError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if k is not None and k < 1:
        raise CustomerLensError(f"--k must be at least 1, got {k}")
    try:
        low, high = (int(x) for x in k_range.split(","))
    except ValueError:
        raise CustomerLensError(f"--k-range expects two numbers like 1,10, got {k_range!r}") from None
    if not 1 <= low <= high:
        raise CustomerLensError(f"--k-range needs 1 <= low <= high, got {k_range!r}")
    if top_n < 0:
        raise CustomerLensError(f"--top-n must be 0 or more, got {top_n}")
    if not 0 <= discovery_slots <= max(top_n, 0):
        raise CustomerLensError(f"--discovery-slots must be between 0 and --top-n ({top_n}), got {discovery_slots}")
    out = {"method": method, "k": k, "top_n": top_n, "charts": charts, "k_range": (low, high),
           "top_products": top_products, "exclude_bought": exclude_bought, "discovery_slots": discovery_slots}
    if features:
        out["segment_features"] = tuple(f.strip() for f in features.split(",") if f.strip())
    return out


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} stages"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _staged(bar: Progress, stages: tuple[str, ...]):
    task = bar.add_task("starting", total=len(stages))
    seen: list[str] = []

    def on_stage(stage: str) -> None:
        if seen:
            bar.advance(task)
        seen.append(stage)
        bar.update(task, description=stage)

    return on_stage


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
    memory_limit: MemoryLimitOpt = None,
    demo_customers: Annotated[
        int, typer.Option(help="Customers in the demo data used when no file is given.")
    ] = 4000,
) -> None:
    """Run the whole pipeline on a file and write the output folder.

    Without a file, generates the synthetic demo data set first (see `customerlens demo`).

    Examples: `customerlens run online_retail.csv.gz --out out/retail --as-of 2011-09-09`;
    on Spark: `customerlens run sales.parquet --engine spark --spark-master local[4]`;
    a file larger than memory: `customerlens run big.parquet --memory-limit 3GB --no-insights --top-n 0`
    """
    from customerlens.pipeline.run import STAGES, run as run_pipeline

    from customerlens.models.value import ValueConfig

    ValueConfig(horizon_days=horizon_days, clv_months=clv_months, discount_rate=discount_rate).check()
    if migration_from is not None:
        _parse_day(migration_from, "--migration-from")
    config = _run_config(as_of, mapping, encoding, sheet, table, date_format, skip_rule, non_product_codes,
                         options={"value": value, "horizon_days": horizon_days, "clv_months": clv_months,
                                  "discount_rate": discount_rate, "migration_from": migration_from,
                                  "report": report, "insights": insights, "engine": engine,
                                  "spark_master": spark_master, "memory_limit": memory_limit},
                         k=k, method=method, features=features, top_n=top_n, charts=charts, k_range=k_range,
                         top_products=top_products, exclude_bought=exclude_bought,
                         discovery_slots=discovery_slots)
    if data is None:
        data = out_dir / "demo" / "demo_transactions.csv"
        err.print(f"No file given: generating demo data for {demo_customers:,} customers -> {data}")
        from customerlens.io import demo

        demo.write(demo.generate(demo_customers), data)
    with _progress() as bar:
        result = run_pipeline(data, out_dir, config, progress=_staged(bar, STAGES))
    _print_quality(result.report)
    out.print(f"\nCustomers with features: [bold]{result.customers:,}[/] as of {result.as_of:%Y-%m-%d}")
    _print_segments(result.segmentation)
    _print_value_summary(result.value)
    _print_outputs(result)


def _print_value_summary(value) -> None:
    if value is None:
        return
    rec = value.record
    totals = rec["totals"]
    clv = f"clv_{value.config.clv_months}m"
    out.print(f"\n[bold]Customer value[/] ({rec['model']}, calibrated to {rec['calibration_end']}): "
              f"{value.config.clv_months}-month CLV {totals[clv]:,.0f}, value at risk {totals['value_at_risk']:,.0f}")
    by_segment = getattr(value, "by_segment", None)
    if by_segment is not None and len(by_segment):
        top = by_segment.sort_values("value_at_risk", ascending=False).iloc[0]
        out.print(f"  most value at risk: {top['segment_name']} ({top['share_value_at_risk']:.0%} of it; "
                  f"mean churn risk {top['mean_churn_risk']:.0%})")
    if "note" in rec:
        out.print(f"  [yellow]note:[/] {rec['note']}")


def _print_outputs(result) -> None:
    out.print("Outputs:")
    charts = [p for name, p in result.outputs.items() if name.startswith("chart_")]
    for name, path in result.outputs.items():
        if not name.startswith("chart_"):
            out.print(f"  {name:<22} {path}")
    if charts:
        out.print(f"  {'charts (PNG + SVG)':<22} {charts[0].parent}/ ({len(charts)} charts)")
    out.print(f"\n[green]Done.[/] Results in [bold]{result.out_dir}[/]")


def _print_segments(segmentation) -> None:
    if segmentation is None:
        return
    out.print(f"\n[bold]{segmentation.k} segments[/] ({segmentation.method}): {segmentation.reason}")
    table = Table(show_lines=False)
    for col, justify in (("#", "right"), ("segment", "left"), ("customers", "right"), ("revenue", "right"),
                         ("median R / F / M", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    summary = segmentation.summary()
    for row in summary.itertuples(index=False):
        table.add_row(
            str(row.segment_id), row.segment_name, f"{row.customers:,} ({row.share_customers:.0%})",
            f"{row.share_revenue:.0%}",
            f"{row.median_recency_days:.0f}d / {row.median_frequency:.0f} / {row.median_monetary:,.0f}",
        )
    out.print(table)
    out.print("R = days since the last order, F = orders, M = net spend. [bold]What to do:[/]")
    for row in summary.itertuples(index=False):
        out.print(f"  [bold]{row.segment_name}[/]: {row.strategy}")


@app.command()
def segment(
    data: Annotated[Path, typer.Argument(help="Transactions file (as for `run`).", show_default=False)],
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
    memory_limit: MemoryLimitOpt = None,
) -> None:
    """Segment customers: K-means with k chosen by the elbow method (or classic RFM), named
    segments with engagement strategies, top products per segment and charts.

    Writes segments.csv, segment_profiles.csv, top_products.csv, charts/*.png|svg and the
    DuckDB store to --out.

    Examples: `customerlens segment sales.csv --out out/seg`,
    `customerlens segment sales.csv --k 5`, `customerlens segment sales.csv --method rfm`
    """
    from customerlens.pipeline.run import STAGES, run as run_pipeline

    # segments only: customer value, recommendations and the report are `run`'s
    config = _run_config(as_of, mapping, encoding, sheet, table, date_format, skip_rule, non_product_codes,
                         options={"value": False, "report": False, "insights": insights, "engine": engine,
                                  "spark_master": spark_master, "memory_limit": memory_limit}, k=k, method=method, features=features,
                         top_n=0, charts=charts, k_range=k_range, top_products=top_products)
    with _progress() as bar:
        result = run_pipeline(data, out_dir, config, progress=_staged(bar, STAGES))
    _print_segments(result.segmentation)
    _print_outputs(result)


@app.command()
def ingest(
    data: Annotated[Path, typer.Argument(help="Transactions file (as for `run`).", show_default=False)],
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
    from customerlens.pipeline.run import ingest as ingest_data

    config = _run_config(as_of, mapping, encoding, sheet, table, date_format, skip_rule, non_product_codes)
    result = ingest_data(data, config)
    report = result.report()
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2, default=str) + "\n")
        return
    _print_schema(report["schema"])
    _print_quality(report)


def _print_schema(schema: dict) -> None:
    out.print(f"[bold]{schema['source']['name']}[/]: {schema['rows']:,} rows, layout "
              f"[cyan]{schema['layout']}[/], dates {schema['date_format']}")
    table = Table(title="Column mapping", title_justify="left")
    table.add_column("canonical")
    table.add_column("source column")
    for key, value in schema["mapping"].items():
        table.add_row(key, value)
    for key, how in schema["derived"].items():
        table.add_row(key, f"[dim]derived: {how}[/]")
    out.print(table)
    if not schema["has_products"]:
        out.print("[yellow]No product column: product-level outputs are skipped.[/]")


def _print_quality(report: dict) -> None:
    quality = report["quality"]
    table = Table(title="Data quality: what each rule removed", title_justify="left")
    table.add_column("rule")
    table.add_column("lines", justify="right")
    table.add_column("revenue", justify="right")
    table.add_column("what")
    for rule in quality["rules"]:
        if not rule["enabled"]:
            what = f"[dim]off{': ' + rule['note'] if rule.get('note') else ''}[/]"
        else:
            what = rule["description"]
        table.add_row(rule["rule"], f"{rule['lines']:,}", f"{rule['revenue']:,.2f}", what)
    table.add_section()
    table.add_row("[bold]kept[/]", f"[bold]{quality['kept_lines']:,}[/]",
                  f"[bold]{quality['kept_revenue']:,.2f}[/]", "net of returns")
    table.add_row("input", f"{quality['input_lines']:,}", f"{quality['input_revenue']:,.2f}",
                  "all lines accounted for" if quality["lines_accounted_for"] else "[red]MISMATCH[/]")
    out.print(table)
    out.print(
        f"Customers: {quality['input_customers']:,} in the input, {quality['kept_customers']:,} "
        f"after cleaning. Returns netted into {quality['partially_returned_lines']:,} partly "
        f"returned lines ({quality['returned_value_netted']:,.2f})."
    )


@app.command()
def features(
    data: Annotated[Path, typer.Argument(help="Transactions file (as for `run`).", show_default=False)],
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
    from customerlens.pipeline.run import _write_csv, ingest as ingest_data

    config = _run_config(as_of, mapping, encoding, sheet, table, date_format, None, None)
    result = ingest_data(data, config)
    snapshot = result.as_of or default_as_of(result.cleaned.transactions)
    frame = customer_features(result.cleaned.transactions, as_of=snapshot)
    _write_csv(result.con, frame, output, "customer_id")
    out.print(f"Features as of {snapshot:%Y-%m-%d} -> {output}")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(help="Number of customers (about 70 lines each).")] = 4000,
    output: Annotated[
        Path, typer.Option("--out", help="File to write: .csv, .csv.gz or .parquet.")
    ] = Path("demo_transactions.csv"),
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same file.")] = 42,
) -> None:
    """Generate synthetic Online Retail-shaped transactions with planted customer types.

    Writes the lines to --out and each customer's true type to `<name>.types.csv`
    beside it. The behavioural model is described in docs/demo-data.md.

    Example: `customerlens demo --customers 10000 --out demo.csv.gz`
    """
    from customerlens.io import demo as demo_mod

    if customers < 1:
        raise CustomerLensError("--customers must be at least 1")
    with err.status(f"Generating {customers:,} customers"):
        data = demo_mod.generate(customers, seed=seed)
        lines_path, types_path = demo_mod.write(data, output)
    out.print(f"{data.lines.num_rows:,} lines -> {lines_path}\ntrue customer types -> {types_path}")


@app.command()
def backtest(
    data: Annotated[Path, typer.Argument(help="Transactions file (as for `run`).", show_default=False)],
    as_of: Annotated[str, typer.Option("--as-of", help="Split date YYYY-MM-DD: train before, test after.")],
    k: Annotated[int, typer.Option("--k", help="Length of the recommendation lists scored.")] = 10,
    models: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--models", help="Comma-separated models (default: all): blend, two_stage, popularity, "
                     "segment_popularity, personal_frequency, item_knn, ease, als."),
    ] = None,
    discovery_slots: Annotated[
        int, typer.Option("--discovery-slots",
                          help="Also score the default model with this many places kept for new products "
                               "(row blend+N_new; 0: no such row).")
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Also write the results as JSON to this file."),
    ] = None,
    mapping: MapOpt = None,
    encoding: EncodingOpt = "utf-8",
    sheet: SheetOpt = None,
    table: TableOpt = None,
    date_format: DateFormatOpt = None,
) -> None:
    """Measure every recommender offline on a time-based holdout.

    Trains on the lines before --as-of, tests on the customers who bought both before and
    after it; relevant items are the distinct products each bought after. Reports Recall,
    NDCG, Precision, HitRate and MAP at k, catalogue coverage, and recall/NDCG on repeat
    and on new items (docs/recommendations.md).

    Example: `customerlens backtest online_retail.csv.gz --as-of 2011-09-09 --k 10`
    """
    from customerlens.core.files import write_text_atomic
    from customerlens.models.recommend.registry import MODELS
    from customerlens.models.recommend.service import backtest as run_backtest

    if k < 1:
        raise CustomerLensError(f"--k must be at least 1, got {k}")
    if not 0 <= discovery_slots <= k:
        raise CustomerLensError(f"--discovery-slots must be between 0 and --k ({k}), got {discovery_slots}")
    names = tuple(m.strip() for m in models.split(",") if m.strip()) if models else None
    known = MODELS
    for name in names or ():
        if name not in known:
            raise CustomerLensError(f"unknown model {name!r}; models: {', '.join(known)}")
    config = _run_config(as_of, mapping, encoding, sheet, table, date_format, None, None)
    with err.status("Backtesting") as status:
        results, facts = run_backtest(data, as_of, k=k, models=names, config=config,
                                      progress=lambda m: status.update(f"Backtesting {m}"),
                                      discovery=discovery_slots)
    payload = {**facts, "results": json.loads(results.to_json(orient="records"))}
    if output is not None:
        write_text_atomic(output, json.dumps(payload, indent=2) + "\n")
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    out.print(f"Train before {facts['as_of'][:10]}: {facts['training_customers']:,} customers, "
              f"{facts['products']:,} products; test: {facts['test_customers']:,} customers")
    tbl = Table(title=f"Offline metrics at k = {k}", title_justify="left")
    cols = ["model", f"ndcg@{k}", f"recall@{k}", f"precision@{k}", f"hitrate@{k}", f"map@{k}", "coverage",
            f"recall@{k}_repeat", f"recall@{k}_new", "seconds"]
    for c in cols:
        tbl.add_column(c.replace(f"@{k}", ""), justify="left" if c == "model" else "right")
    for row in results.to_dict(orient="records"):
        tbl.add_row(*[row[c] if c == "model" else f"{row[c]:.4f}" if c != "seconds" else f"{row[c]:.1f}"
                      for c in cols])
    out.print(tbl)


def _names_list(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@app.command()
def campaigns(
    data: Annotated[Path, typer.Argument(
        help="Campaign table, one row per customer and campaign: CSV (also .gz), Parquet or .xlsx.",
        show_default=False)],
    outcomes: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--outcomes", help="Comma-separated numeric outcome columns, e.g. visit,conversion,spend. 0/1 columns "
        "get two-proportion statistics, others Welch plus a bootstrap interval. With --transactions the "
        "default is purchased,orders,spend.")] = None,
    transactions: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--transactions", help="Derive the outcomes purchased, orders and spend from this transactions file: "
        "each customer's purchases in the --window-days after the send (needs --customer-col).")] = None,
    send_date: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--send-date", help="Send date of every row, YYYY-MM-DD (with --transactions).")] = None,
    send_date_col: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--send-date-col", help="Column holding each row's send date (with --transactions).")] = None,
    window_days: Annotated[int, typer.Option(
        "--window-days", help="Days after the send that count (with --transactions).")] = 14,
    group_col: Annotated[str, typer.Option("--group-col", help="Column naming each row's arm.")] = "group",
    control: Annotated[str, typer.Option("--control", help="The control arm's name in --group-col.")] = "control",
    by: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--by", help="Comma-separated columns to break the lift down by, e.g. history_segment,channel "
        "(numeric columns with more than 20 values are cut into quintiles).")] = None,
    campaign_col: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--campaign-col", help="Column naming the campaign (default: one campaign).")] = None,
    customer_col: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--customer-col", help="Customer id column (checked for duplicates; the key for --segments).")] = None,
    segments_file: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--segments", help="segments.csv from `customerlens segment` (customer_id, segment_name), joined by "
        "--customer-col as one more --by column, segment_name.")] = None,
    cost_per_contact: Annotated[Optional[float], typer.Option(  # noqa: UP045
        "--cost-per-contact", help="Cost of contacting one customer: adds cost and ROI on the revenue outcome.")
    ] = None,
    revenue_outcome: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--revenue-outcome", help="The outcome that is revenue (for ROI and money formatting).")] = None,
    currency: Annotated[str, typer.Option("--currency", help="Currency sign in the summary, e.g. '$'.")] = "",
    bootstrap: Annotated[int, typer.Option(
        "--bootstrap", help="Bootstrap resamples for non-binary outcomes (0: none).")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the bootstrap.")] = 0,
    min_n: Annotated[int, typer.Option("--min-n", help="Too small: fewer customers than this in an arm.")] = 100,
    min_responders: Annotated[int, typer.Option(
        "--min-responders", help="Too small: fewer responders (non-zero outcomes) than this in an arm.")] = 10,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("out/campaigns"),
    charts: ChartsOpt = True,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Write campaign_summary.json (not .txt) and print it instead of the tables.")] = False,
    encoding: EncodingOpt = "utf-8",
    sheet: SheetOpt = None,
) -> None:
    """Campaign performance by segment: lift of each arm over control with honest intervals.

    For each campaign and treatment arm against --control, overall and per value of each
    --by column: group sizes, mean outcome per arm, lift with its 95% interval, relative
    lift, p-value and Benjamini-Hochberg adjusted p-value, incremental value, ROI with
    --cost-per-contact, and a too_small flag (docs/campaigns.md).

    Writes campaign_lift.csv, campaign_summary.txt (or .json) and
    charts/campaign_lift_OUTCOME.png|svg to --out.

    Example: `customerlens campaigns hillstrom.csv.gz --group-col segment --control "No E-Mail"
    --outcomes visit,conversion,spend --by history_segment,channel,zip_code,newbie
    --cost-per-contact 0.1 --revenue-outcome spend --currency '$'`
    """
    from customerlens.core.files import atomic_path, write_text_atomic
    from customerlens.models.campaigns import ALL, campaign_lift, campaign_summary, lift_heterogeneity, read_campaign_table

    segments = read_campaign_table(segments_file, encoding=encoding)[0] if segments_file is not None else None
    table = data
    if transactions is not None:
        from customerlens.models.campaigns import DERIVED_OUTCOMES, outcomes_from_transactions
        from customerlens.pipeline.run import ingest as ingest_data

        if customer_col is None:
            raise CustomerLensError("--transactions needs --customer-col: the column that matches the "
                                    "transactions' customers")
        with err.status("Deriving outcomes from the transactions"):
            lines = ingest_data(transactions, _run_config(None, None, "utf-8", None, None, None, None, None))
            table = outcomes_from_transactions(
                data, lines.cleaned.transactions,
                customer_col=customer_col, send_date=send_date, send_date_col=send_date_col,
                window_days=window_days)
        outcomes = outcomes or ",".join(DERIVED_OUTCOMES)
    elif send_date or send_date_col:
        raise CustomerLensError("--send-date and --send-date-col need --transactions")
    if not outcomes:
        raise CustomerLensError("--outcomes is required (or --transactions to derive them)")
    with err.status("Measuring lift"):
        lift = campaign_lift(
            table, outcomes=_names_list(outcomes), group_col=group_col, control=control,
            segment_by=_names_list(by), campaign_col=campaign_col, customer_col=customer_col, segments=segments,
            cost_per_contact=cost_per_contact, revenue_outcome=revenue_outcome, bootstrap=bootstrap,
            random_state=seed, min_n=min_n, min_responders=min_responders,
            sheet=int(sheet) if sheet is not None and sheet.isdigit() else sheet, encoding=encoding)
    money = [lift.attrs["revenue_outcome"]] if lift.attrs.get("revenue_outcome") else []
    sentences = campaign_summary(lift, currency=currency, money_outcomes=money)
    outputs = {"campaign_lift": out_dir / "campaign_lift.csv"}
    with atomic_path(outputs["campaign_lift"]) as tmp:
        lift.to_csv(tmp, index=False)
    overall = lift[lift["segment_by"] == ALL]
    if as_json:
        payload = {
            "settings": {k: v for k, v in lift.attrs.items()},
            "summary": sentences,
            "overall": json.loads(overall.to_json(orient="records")),
            "heterogeneity": json.loads(lift_heterogeneity(lift).to_json(orient="records")),
        }
        outputs["campaign_summary"] = write_text_atomic(out_dir / "campaign_summary.json",
                                                        json.dumps(payload, indent=2) + "\n")
    else:
        outputs["campaign_summary"] = write_text_atomic(out_dir / "campaign_summary.txt",
                                                        "\n".join(sentences) + "\n")
    if charts:
        from customerlens.outputs.charts import campaign_lift_chart, save_chart

        with err.status("Drawing charts"):
            for outcome in dict.fromkeys(lift["outcome"]):
                saved = save_chart(campaign_lift_chart(lift, outcome), out_dir / "charts" / f"campaign_lift_{outcome}")
                outputs[f"chart_{outcome}"] = saved["png"]
    if as_json:
        sys.stdout.write(json.dumps({**payload, "outputs": {k: str(v) for k, v in outputs.items()}}, indent=2) + "\n")
        return
    several = overall["campaign"].nunique() > 1
    tbl = Table(title=f"Lift over {control} (all customers; rates in percentage points)", title_justify="left")
    for col, justify in ((("campaign", "left"),) if several else ()) + (
            ("arm", "left"), ("outcome", "left"), ("n arm/ctl", "right"), ("mean arm/ctl", "right"),
            ("lift", "right"), ("95% CI", "right"), ("relative", "right"), ("p", "right"), ("ROI", "right")):
        tbl.add_column(col, justify=justify, no_wrap=col not in ("campaign", "arm", "outcome"))
    for row in overall.itertuples(index=False):
        rate = row.outcome_type == "binary"
        scale, unit = (100, " pp") if rate else (1, "")
        level = (lambda v: f"{v:.2%}") if rate else (lambda v: f"{v:,.2f}")
        cells = [row.arm, row.outcome, f"{row.n_treatment:,}/{row.n_control:,}",
                 f"{level(row.mean_treatment)}/{level(row.mean_control)}", f"{row.lift * scale:+,.2f}{unit}",
                 f"{row.lift_ci_low * scale:,.2f} to {row.lift_ci_high * scale:,.2f}", f"{row.relative_lift:+.0%}",
                 "<0.001" if row.p_value < 0.001 else f"{row.p_value:.3f}", "" if row.roi != row.roi else f"{row.roi:.1f}"]
        tbl.add_row(*([row.campaign] if several else []), *cells)
    out.print(tbl)
    flagged = int(lift["too_small"].sum())
    out.print(f"{len(lift) - len(overall):,} segment rows; {flagged:,} flagged too small to judge.\n")
    for sentence in sentences:
        out.print(f"- {sentence}", highlight=False)
    out.print("\nOutputs:")
    for name, path in outputs.items():
        out.print(f"  {name:<22} {path}")


@app.command()
def value(
    data: Annotated[Path, typer.Argument(help="Transactions file (as for `run`).", show_default=False)],
    calibration_end: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--calibration-end", help="Last day the models learn from, YYYY-MM-DD (default: the last "
                     "purchase day)."),
    ] = None,
    holdout_end: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--holdout-end", help="Also compare the predictions with what happened after "
                     "--calibration-end, up to this day."),
    ] = None,
    time_unit: Annotated[str, typer.Option("--time-unit", help="Unit of the models' times: day, week, month.")
                         ] = "week",
    model: Annotated[str, typer.Option("--model", help="auto (higher log-likelihood), bgnbd or pareto_nbd.")
                     ] = "auto",
    horizon_days: Annotated[int, typer.Option("--horizon-days", help="Horizon of expected purchases and "
                                              "churn risk.")] = 90,
    clv_months: Annotated[int, typer.Option("--clv-months", help="CLV horizon in months.")] = 12,
    discount_rate: Annotated[float, typer.Option("--discount-rate", help="Yearly discount rate for CLV.")] = 0.10,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Folder for value.csv, value.json and, with --holdout-end, charts/ (tracking, "
                     "by calibration frequency, churn reliability)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the parameters and holdout fit as JSON.")] = False,
    mapping: MapOpt = None,
    encoding: EncodingOpt = "utf-8",
    sheet: SheetOpt = None,
    table: TableOpt = None,
    date_format: DateFormatOpt = None,
) -> None:
    """Who stays, who leaves, what each customer is worth: BG/NBD, Pareto/NBD and Gamma-Gamma.

    Fits the models on the purchases up to --calibration-end (same-day purchases are one
    transaction), prints their parameters with standard errors and log-likelihoods, and
    scores every customer: P(alive), expected purchases, expected spend, CLV, churn risk and
    value at risk. With --holdout-end it also reports how the predictions compare with what
    happened next: total and per-customer error, the tracking table, and AUC and Brier score of
    every churn-risk candidate (docs/value.md).

    Example: `customerlens value CDNOW_sample.txt.gz --calibration-end 1997-09-30 --holdout-end 1998-06-30`
    """
    import datetime as dt_

    from customerlens.pipeline.run import ingest as ingest_data
    from customerlens.models.value import ValueConfig, evaluate_holdout, fit_value
    from customerlens.models.value.summary import _days

    vconfig = ValueConfig(time_unit=time_unit, horizon_days=horizon_days, clv_months=clv_months,
                          discount_rate=discount_rate, model=model).check()
    cal = _parse_day(calibration_end, "--calibration-end")
    hold = _parse_day(holdout_end, "--holdout-end")
    if hold is not None and cal is None:
        raise CustomerLensError("--holdout-end needs --calibration-end")
    if hold is not None and hold <= cal:
        raise CustomerLensError(f"--holdout-end ({hold}) must come after --calibration-end ({cal})")
    after = (lambda d: (d + dt_.timedelta(days=1)).isoformat()) if cal else (lambda d: None)
    with err.status("Fitting the value models"):
        lines = ingest_data(data, _run_config(after(cal), mapping, encoding, sheet, table, date_format, None, None))
        if hold is not None:
            later = ingest_data(data, _run_config(after(hold), mapping, encoding, sheet, table, date_format,
                                                  None, None))
            report = evaluate_holdout(lines.cleaned.transactions, cal, hold, vconfig,
                                      holdout_transactions=later.cleaned.transactions)
            result = report.pop("_result")
        else:
            report = None
            result = fit_value(lines.cleaned.transactions, cal, vconfig)
    record = result.record
    payload = {**record["models"], "gamma_gamma": record["gamma_gamma"], "model": record["model"],
               "model_choice": record["model_choice"], "calibration_end": record["calibration_end"],
               "time_unit": record["time_unit"], "churn": record["churn"], "totals": record["totals"]}
    if "note" in record:
        payload["note"] = record["note"]
    if report is not None:
        payload["holdout"] = report
    if output is not None:
        from customerlens.core.files import write_text_atomic
        from customerlens.outputs.files import write_csv_atomic

        write_csv_atomic(result.table, output / "value.csv")
        write_text_atomic(output / "value.json", json.dumps(payload, indent=2, default=str) + "\n")
        if report is not None:
            from customerlens.models.value.report import write_holdout_charts

            write_holdout_charts(report, output / "charts")
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    _print_value(payload, result, _days(record["calibration_end"]).date(), output)


def _parse_day(value: str | None, option: str):
    import datetime as dt_

    if value is None:
        return None
    try:
        return dt_.date.fromisoformat(value.strip())
    except ValueError:
        raise CustomerLensError(f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 1997-09-30") from None


def _print_value(payload: dict, result, calibration_end, output) -> None:
    out.print(f"Calibration to {calibration_end}: {payload['totals']['customers']:,} customers, "
              f"times in {payload['time_unit']}s")
    tbl = Table(title="Fitted models (standard errors in brackets)", title_justify="left")
    for c in ("model", "parameters", "log-likelihood"):
        tbl.add_column(c)
    for name in ("bgnbd", "pareto_nbd", "gamma_gamma"):
        rec = payload.get(name)
        if not rec or "skipped" in rec:
            continue
        se = rec["standard_errors"]
        params = ", ".join(f"{k} = {rec[k]:.4g} ({se[k]:.2g})" if se[k] is not None else f"{k} = {rec[k]:.4g} (n/a)"
                           for k in se)
        mark = " (used)" if name == payload["model"] else ""
        tbl.add_row(name + mark, params, f"{rec['log_likelihood']:.2f}")
    out.print(tbl)
    gg = payload["gamma_gamma"]
    if "frequency_spend_correlation" in gg:
        out.print(f"Spend vs frequency correlation (Gamma-Gamma assumes it is small): "
                  f"{gg['frequency_spend_correlation']:.3f}")
    if "note" in payload:
        out.print(f"[yellow]Note:[/] {payload['note']}")
    totals = payload["totals"]
    out.print("Totals: " + ", ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}"
                                     for k, v in totals.items()))
    hold = payload.get("holdout")
    if hold:
        out.print(f"Holdout to {hold['holdout_end']}: actual repeat transactions {hold['actual_repeat_transactions']:,}")
        for name, m in hold["models"].items():
            out.print(f"  {name}: predicted {m['predicted_repeat_transactions']:,.1f} "
                      f"({m['error_percent']:+.1f} %), per customer MAE {m['mae_per_customer']:.3f}")
        ctbl = Table(title=f"No purchase in the holdout ({hold['churn']['no_purchase_rate']:.1%} of customers)",
                     title_justify="left")
        for c in ("churn-risk candidate", "AUC", "Brier"):
            ctbl.add_column(c, justify="left" if c.startswith("churn") else "right")
        for label, row in hold["churn"]["candidates"].items():
            ctbl.add_row(label, f"{row['auc']:.4f}" if row["auc"] is not None else "-",
                         f"{row['brier']:.4f}" if "brier" in row else "-")
        out.print(ctbl)
    if output is not None:
        out.print(f"Wrote {output / 'value.csv'} and {output / 'value.json'}")


@app.command()
def serve(
    store: Annotated[Path, typer.Option("--store", help="The store written by `customerlens run`: "
                                        "DIR/customerlens.duckdb (opened read-only).", show_default=False)],
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Anything but loopback needs a "
                                      "token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    token: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--token", envvar="CUSTOMERLENS_API_TOKEN", show_envvar=True,
                     help="API token (8+ characters): every request but /api/health then needs "
                     "`Authorization: Bearer TOKEN` or ?token=TOKEN once in a browser."),
    ] = None,
) -> None:
    """The dashboard and REST API over a store: pages for people, JSON for programs.

    Overview, one page per segment (profile, top products, customers, target list download),
    customer lookup with recommendations and reasons, campaigns; the API and its OpenAPI docs
    under /api and /docs (docs/dashboard.md). Listens on 127.0.0.1 unless told otherwise, and
    refuses any other address without a token.

    Example: `customerlens serve --store out/customerlens.duckdb --port 8000`
    """
    from customerlens.api import Settings, serve as serve_app
    from customerlens.api.server import check_bind

    settings = Settings(store=store, token=token or None).check()
    check_bind(settings, host, port)
    err.print(f"customerlens dashboard on http://{host}:{port}/ (API docs at /docs); Ctrl+C stops it",
              highlight=False, soft_wrap=True)
    serve_app(settings, host, port)


@app.command()
def report(
    store: Annotated[Path, typer.Option("--store", help="The store written by `customerlens run`: "
                                        "DIR/customerlens.duckdb (opened read-only).", show_default=False)],
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Where to write the HTML file (default: report.html beside the store).",
                     show_default=False),
    ] = None,
) -> None:
    """Rebuild the HTML report of a store: one self-contained file that opens offline in any browser.

    Data quality, the choice of k, the segments (overview, comparisons, spending, trends, cohorts,
    migration, top products), value and churn, recommendation examples, campaign results when the
    store has them, and the action plan, with interactive charts and sortable tables (docs/report.md).

    Example: `customerlens report --store out/customerlens.duckdb --out out/report.html`
    """
    from customerlens.outputs.report import write_report

    target = output if output is not None else store.parent / "report.html"
    written = write_report(store, target)
    out.print(f"Wrote {written} ({written.stat().st_size / 1e6:.1f} MB)", highlight=False, soft_wrap=True)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    """Entry point: user errors become one line and exit code 2."""
    import duckdb

    try:
        app()
    except CustomerLensError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except duckdb.OutOfMemoryException as exc:  # under --memory-limit: a limit the user set, not a bug
        first = str(exc).splitlines()[0]
        err.print(f"[bold red]error:[/] out of memory ({first}): raise --memory-limit, or leave it out "
                  "(DuckDB then takes up to 80% of RAM); DuckDB spills the rest to the system temp dir "
                  "(TMPDIR)", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
