"""What the commands print: progress bars, tables of segments, quality, value and outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from customerlens.cli.entry import err, out

if TYPE_CHECKING:
    from rich.progress import Progress


def Table(*args, **kwargs):  # noqa: N802 - stands in for rich's class
    """A rich table, rich loaded on first use (not at start-up: ``customerlens --help`` stays quick)."""
    from rich.table import Table as RichTable

    return RichTable(*args, **kwargs)


def progress() -> Progress:
    """A transient progress bar on stderr that counts the pipeline's stages."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} stages"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def staged(bar: Progress, stages: tuple[str, ...], verbose: bool = False):
    """A pipeline ``progress`` callback: shows each stage's name on ``bar``, advancing it as the next one starts.

    With ``verbose``, also prints a line as each stage starts (seconds since the start, then the
    stage). The stages' seconds and memory are the run's own (:class:`~customerlens.pipeline.clock.StageClock`).
    """
    import time

    task = bar.add_task("starting", total=len(stages))
    started = time.perf_counter()
    seen: list[str] = []

    def on_stage(stage: str) -> None:
        new = stage not in seen  # else resumed (the store, before and after the recommender): counted once
        if new and seen:
            bar.advance(task)
        if new:
            seen.append(stage)
        bar.update(task, description=stage)
        if verbose:
            resumed = "" if new else " (continued)"
            bar.console.print(f"{time.perf_counter() - started:7.1f}s  {stage}{resumed}", highlight=False)

    return on_stage


def print_stage_seconds(stages: list[dict]) -> None:
    """Each stage's seconds and the peak memory by its end (a run's ``clock.stages``), slowest first (stderr)."""
    if not stages:
        return
    table = Table(title="Seconds and peak memory by stage", title_justify="left")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    table.add_column("peak MB", justify="right")
    total = sum(s["seconds"] for s in stages)
    for s in sorted(stages, key=lambda item: -item["seconds"]):
        table.add_row(s["stage"], f"{s['seconds']:.2f}", f"{s['seconds'] / total:.0%}" if total else "",
                      f"{s['peak_memory_mb']:,.0f}")
    table.add_row("all", f"{total:.2f}", "", f"{max(s['peak_memory_mb'] for s in stages):,.0f}")
    for s in stages:  # work done in the worker process, beside the stages above: not in their sum
        for task in s.get("worker") or ():
            table.add_row(f"{task['task']}, in the worker process", f"{task['seconds']:.2f}", "beside",
                          f"{task['peak_memory_mb']:,.0f}")
    err.print(table)


def print_value_summary(value) -> None:
    """Customer value after a run: CLV, value at risk and the segment holding most of it (nothing without value)."""
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


def print_outputs(result) -> None:
    """The files a run wrote (the charts as one folder line) and where the results are."""
    out.print("Outputs:")
    charts = [p for name, p in result.outputs.items() if name.startswith("chart_")]
    for name, path in result.outputs.items():
        if not name.startswith("chart_"):
            out.print(f"  {name:<22} {path}")
    if charts:
        out.print(f"  {'charts (PNG + SVG)':<22} {charts[0].parent}/ ({len(charts)} charts)")
    out.print(f"\n[green]Done.[/] Results in [bold]{result.out_dir}[/]")


def print_segments(segmentation) -> None:
    """The segments as a table (customers, revenue share, median R / F / M), then each one's strategy."""
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


def print_schema(schema: dict) -> None:
    """The detected layout, date format and column mapping (source and derived columns) of an ingest."""
    out.print(f"[bold]{schema['source']['name']}[/]: {schema['rows']:,} rows, layout "
              f"[cyan]{schema['layout']}[/], dates {schema['date_format']}")
    from customerlens.io.schema import CONFIDENCE

    table = Table(title="Column mapping", title_justify="left")
    table.add_column("canonical")
    table.add_column("source column")
    table.add_column("how sure")
    confidence = schema.get("confidence", {})
    for key, value in schema["mapping"].items():
        how = confidence.get(key, "alias")
        shown = f"[yellow]{CONFIDENCE[how]}[/]" if how == "generic" else CONFIDENCE[how]
        table.add_row(key, value, shown)
    for key, how in schema["derived"].items():
        table.add_row(key, f"[dim]derived: {how}[/]", "")
    out.print(table)
    guesses = [key for key, how in confidence.items() if how == "generic"]
    if guesses:
        out.print(f"[yellow]Check {', '.join(guesses)}: chosen by a generic column name; "
                  "--map canonical=Column says otherwise.[/]")
    if not schema["has_products"]:
        out.print("[yellow]No product column: product-level outputs are skipped.[/]")


def print_quality(report: dict) -> None:
    """What each cleaning rule removed, the kept and input totals, customers and netted returns."""
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


def print_excluded_products(report: dict) -> None:
    """The products the non-goods rules (non_product, non_merchandise, quantity_outlier) removed, most lines first."""
    listed = report["quality"].get("excluded_products") or []
    if not listed:
        return
    table = Table(title="Not goods: the products these rules removed (never recommended, never counted "
                  "as items)", title_justify="left")
    for name in ("rule", "product", "name", "lines", "revenue"):
        table.add_column(name, justify="right" if name in ("lines", "revenue") else "left")
    for row in listed:
        table.add_row(row["rule"], str(row["product_id"]), str(row["product_name"] or ""), f"{row['lines']:,}",
                      f"{row['revenue']:,.2f}")
    out.print(table)


def print_value(payload: dict, result, calibration_end, output) -> None:
    """The ``value`` command's output: fitted models, totals, holdout accuracy, churn AUC, files written.

    Parameters
    ----------
    payload
        What ``value --json`` prints: the models' records, totals and, with a holdout, its report.
    result
        The :class:`~customerlens.models.value.ValueResult` (not read here).
    calibration_end
        Last day of the calibration period.
    output
        Folder ``value.csv`` and ``value.json`` were written to, or None.
    """
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

