"""Commands for the models on their own: ``backtest`` (recommenders), ``value`` (CLV) and ``campaigns`` (lift)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich import box
from rich.table import Table

from customerlens.cli import display
from customerlens.cli.entry import app, err, out
from customerlens.cli.options import (
    ChartsOpt,
    DateFormatOpt,
    EncodingOpt,
    MapOpt,
    SheetOpt,
    TableOpt,
    TransactionsArg,
    build_config,
    names_list,
)
from customerlens.errors import ConfigError


@app.command()
def backtest(
    data: TransactionsArg,
    as_of: Annotated[str, typer.Option("--as-of", help="Split date YYYY-MM-DD: train before, test after.")],
    k: Annotated[int, typer.Option("--k", help="Length of the recommendation lists scored.")] = 10,
    models: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--models", help="Comma-separated models (default: all): two_stage (the default), blend, "
                     "popularity, segment_popularity, personal_frequency, item_knn, ease, als."),
    ] = None,
    discovery_slots: Annotated[
        int, typer.Option("--discovery-slots",
                          help="Also score the default model with this many places of its top list kept for "
                               "new products (row two_stage+N_new; 0: no such row).")
    ] = 0,
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
    from customerlens.models.recommend.registry import MODELS
    from customerlens.outputs.files import write_json_atomic
    from customerlens.pipeline.backtest import backtest as run_backtest

    if k < 1:
        raise ConfigError(f"--k must be at least 1, got {k}")
    if not 0 <= discovery_slots <= k:
        raise ConfigError(f"--discovery-slots must be between 0 and --k ({k}), got {discovery_slots}")
    names = tuple(m.strip() for m in models.split(",") if m.strip()) if models else None
    known = MODELS
    for name in names or ():
        if name not in known:
            raise ConfigError(f"unknown model {name!r}; models: {', '.join(known)}")
    config = build_config(as_of=as_of, mapping=mapping, encoding=encoding, sheet=sheet, table=table,
                          date_format=date_format)
    with err.status("Backtesting") as status:
        results, facts = run_backtest(data, as_of, k=k, models=names, config=config,
                                      progress=lambda m: status.update(f"Backtesting {m}"),
                                      discovery=discovery_slots)
    payload = {**facts, "results": json.loads(results.to_json(orient="records"))}
    if output is not None:
        write_json_atomic(payload, output)
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    out.print(f"Train before {facts['as_of'][:10]}: {facts['training_customers']:,} customers, "
              f"{facts['products']:,} products; test: {facts['test_customers']:,} customers")
    for which, title, cols in (
            ("top", f"Top lists (repeats included), judged on NDCG@{k} and Recall@{k}",
             ["model", f"ndcg@{k}", f"recall@{k}", f"precision@{k}", f"hitrate@{k}", f"map@{k}", "coverage",
              f"recall@{k}_repeat", "seconds"]),
            ("discover", f"Discover lists (products new to the customer), judged on new-item Recall@{k}",
             ["model", f"recall@{k}_new", f"ndcg@{k}_new", f"hitrate@{k}", "coverage", "seconds"])):
        rows = results[results["list"] == which]
        if rows.empty:
            continue
        tbl = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)  # no column rules: room for figures
        short = {f"precision@{k}": "prec", f"hitrate@{k}": "hits", "coverage": "cover",
                 f"recall@{k}_repeat": "repeat", "seconds": "s"}
        for c in cols:
            # figures whole; a long model name folds onto a second line in a narrow terminal
            tbl.add_column(short.get(c, c.replace(f"@{k}", "")), justify="left" if c == "model" else "right",
                           overflow="fold", no_wrap=c != "model")
        for row in rows.to_dict(orient="records"):
            tbl.add_row(*[row[c] if c == "model" else f"{row[c]:.4f}" if c != "seconds" else f"{row[c]:.1f}"
                          for c in cols])
        out.print(tbl)
    compared = facts.get("ndcg_vs_personal_frequency")
    if compared:
        out.print(f"{compared['model']} against personal_frequency, NDCG@{k}: {compared['difference']:+.4f} "
                  f"(95 % interval {compared['ci95_low']:+.4f} to {compared['ci95_high']:+.4f}; paired bootstrap "
                  f"over {compared['customers']:,} customers)")


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
    mapping: MapOpt = None,
    date_format: DateFormatOpt = None,
    segment: Annotated[bool, typer.Option(
        "--segment/--no-segment", help="Send lists: break the effects down by customerlens segments as of "
        "each send date.")] = True,
) -> None:
    """Campaign performance by segment: lift of each arm over control with honest intervals.

    For each campaign and treatment arm against --control, overall and per value of each
    --by column: group sizes, mean outcome per arm, lift with its 95% interval, relative
    lift, p-value and Benjamini-Hochberg adjusted p-value, incremental value, ROI with
    --cost-per-contact, and a too_small flag (docs/campaigns.md).

    A send list instead (who was sent which campaign and when, no control arm: no --group-col
    column) with --transactions: each campaign's sent customers against the customers with
    orders before its send date who were not sent it, adjusted for recency, frequency, spend,
    tenure and segment as of the send date (an observational estimate: "associated with"), with
    the plain difference beside it, covariate balance and a placebo check on the window before
    the send (docs/campaigns.md).

    Writes campaign_lift.csv, campaign_summary.txt (or .json), campaign_balance.csv (send
    lists) and charts/campaign_lift_OUTCOME.png|svg to --out.

    Examples: `customerlens campaigns hillstrom.csv.gz --group-col segment --control "No E-Mail"
    --outcomes visit,conversion,spend --by history_segment,channel,zip_code,newbie
    --cost-per-contact 0.1 --revenue-outcome spend --currency '$'`;
    a send list: `customerlens campaigns campaign_table.csv --transactions transactions.csv
    --map customer_id=household_key --window-days 14 --currency '$'`
    """
    from customerlens.io.campaign_table import read_campaign_table
    from customerlens.outputs.layout import write_campaigns
    from customerlens.pipeline.campaigns import analyze_campaigns, analyze_sends

    if transactions is not None and group_col not in read_campaign_table(data, sheet=sheet, encoding=encoding)[0]:
        config = build_config(mapping=mapping, encoding=encoding, date_format=date_format)
        with err.status("Comparing the sent customers with comparable unsent ones"):
            result = analyze_sends(data, transactions, config=config, window_days=window_days,
                                   customer_col=customer_col, campaign_col=campaign_col,
                                   send_date_col=send_date_col, segment=segment, currency=currency, min_n=min_n,
                                   min_responders=min_responders, encoding=encoding,
                                   sheet=int(sheet) if sheet is not None and sheet.isdigit() else sheet)
        _print_sends(result, out_dir, charts, as_json, currency)
        return
    if mapping is not None and transactions is None:
        raise ConfigError("--map names the columns of the --transactions file; without one, name the campaign "
                          "table's columns with --group-col, --customer-col, --outcomes and --by")
    segments = read_campaign_table(segments_file, encoding=encoding)[0] if segments_file is not None else None
    status = "Deriving outcomes and measuring lift" if transactions is not None else "Measuring lift"
    with err.status(status):
        result = analyze_campaigns(
            data, outcomes=names_list(outcomes) or None, transactions=transactions, send_date=send_date,
            send_date_col=send_date_col, window_days=window_days, customer_col=customer_col, segments=segments,
            currency=currency, group_col=group_col, control=control, segment_by=names_list(by),
            campaign_col=campaign_col, cost_per_contact=cost_per_contact, revenue_outcome=revenue_outcome,
            bootstrap=bootstrap, random_state=seed, min_n=min_n, min_responders=min_responders,
            sheet=int(sheet) if sheet is not None and sheet.isdigit() else sheet, encoding=encoding,
            config=build_config(mapping=mapping, encoding=encoding, date_format=date_format)
            if transactions is not None else None)
    lift, sentences, overall = result.lift, result.sentences, result.overall
    payload = result.payload() if as_json else None
    with err.status("Writing the outputs"):
        outputs = write_campaigns(out_dir, lift, sentences, payload=payload, charts=charts)
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


def _print_sends(result, out_dir: Path, charts: bool, as_json: bool, currency: str) -> None:
    """Write a send list's outputs and print its table (or the JSON)."""
    from customerlens.outputs.layout import write_campaigns

    payload = result.payload() if as_json else None
    with err.status("Writing the outputs"):
        outputs = write_campaigns(out_dir, result.lift, result.sentences, payload=payload, charts=charts,
                                  balance=result.balance)
    if as_json:
        sys.stdout.write(json.dumps({**payload, "outputs": {k: str(v) for k, v in outputs.items()}}, indent=2) + "\n")
        return
    tbl = Table(title="Sent against comparable unsent customers (observational; rates in points)",
                title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("campaign", "outcome", "sent/unsent", "plain diff", "adjusted", "95% CI", "placebo", "SMD"):
        tbl.add_column(col, justify="left" if col in ("campaign", "outcome") else "right", overflow="fold",
                       no_wrap=col not in ("campaign", "outcome"))
    for row in result.overall.itertuples(index=False):
        scale = 100 if row.outcome_type == "binary" else 1

        def fig(value, scale=scale):
            return "" if value != value else f"{value * scale:+,.2f}"

        tbl.add_row(row.campaign, row.outcome + (" (too small)" if row.too_small else ""),
                    f"{row.n_treatment:,}/{row.n_control:,}", fig(row.naive_lift), fig(row.lift),
                    f"{fig(row.lift_ci_low)} to {fig(row.lift_ci_high)}", fig(row.placebo_lift),
                    f"{row.max_smd_after:.2f}")
    out.print(tbl)
    for sentence in result.sentences:
        out.print(f"- {sentence}", highlight=False)
    out.print("\nOutputs:")
    for name, path in outputs.items():
        out.print(f"  {name:<22} {path}")


@app.command()
def value(
    data: TransactionsArg,
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

    from customerlens.models.value import ValueConfig, evaluate_holdout, fit_value
    from customerlens.models.value.summary import _days
    from customerlens.pipeline import ingest as ingest_data

    vconfig = ValueConfig(time_unit=time_unit, horizon_days=horizon_days, clv_months=clv_months,
                          discount_rate=discount_rate, model=model)
    cal = _parse_day(calibration_end, "--calibration-end")
    hold = _parse_day(holdout_end, "--holdout-end")
    if hold is not None and cal is None:
        raise ConfigError("--holdout-end needs --calibration-end")
    if hold is not None and hold <= cal:
        raise ConfigError(f"--holdout-end ({hold}) must come after --calibration-end ({cal})")
    after = (lambda d: (d + dt_.timedelta(days=1)).isoformat()) if cal else (lambda d: None)
    with err.status("Fitting the value models"):
        source = {"mapping": mapping, "encoding": encoding, "sheet": sheet, "table": table, "date_format": date_format}
        lines = ingest_data(data, build_config(as_of=after(cal), **source))
        if hold is not None:
            later = ingest_data(data, build_config(as_of=after(hold), **source))
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
        from customerlens.outputs.layout import write_value

        write_value(output, result.table, payload, holdout=report)
    if as_json:
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    display.print_value(payload, result, _days(record["calibration_end"]).date(), output)


def _parse_day(value: str | None, option: str):
    import datetime as dt_

    if value is None:
        return None
    try:
        return dt_.date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date; use YYYY-MM-DD, e.g. 1997-09-30") from None

