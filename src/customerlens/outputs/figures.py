"""Which charts an analysis draws, and writing them as PNG and SVG.

The chart functions themselves (data in, Altair chart out) are in
:mod:`customerlens.outputs.charts`; this module picks the charts of a
segmentation, of the value stage and of a holdout check, keyed by file stem.
Altair is imported only when a chart is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from customerlens.insights.value import probability_stats, value_by_segment, with_segment


def segmentation_charts(segmentation: Any) -> dict[str, Any]:
    """The charts of a :class:`~customerlens.insights.segmentation.Segmentation`, by file stem."""
    from customerlens.outputs import charts

    seg = segmentation
    out = {}
    if seg.segmenter is not None:
        out["elbow"] = charts.elbow_chart(seg.segmenter.elbow_, seg.segmenter.k_, seg.reason)
        order = [seg.segmenter.segment_names_[i] for i in range(1, seg.segmenter.k_ + 1)]
        Z = seg.segmenter.transform(seg.assigned)
        out["segments_pca"] = charts.pca_chart(Z, seg.assigned["segment_name"].to_numpy(), order)
    if seg.profiles is not None:
        out["distribution"] = charts.distribution_chart(seg.profiles)
        out["spending"] = charts.spending_chart(seg.profiles)
    if seg.box is not None and not seg.box.empty:
        out["box_plots"] = charts.box_plots(seg.box)
    if seg.monthly is not None and not seg.monthly.empty:
        out["trends"] = charts.trend_chart(seg.monthly)
    if seg.cohorts is not None and not seg.cohorts.empty:
        out["cohorts"] = charts.cohort_heatmap(seg.cohorts)
    if seg.migration is not None and not seg.migration.empty:
        out["segment_migration"] = charts.migration_chart(seg.migration, seg.migration_dates)
    if seg.top_products is not None and not seg.top_products.empty:
        out["top_products"] = charts.top_products_chart(seg.top_products)
        out["distinctive_products"] = charts.top_products_chart(seg.distinctive_products, value="lift")
    return out


def value_charts(value: Any, assigned: pd.DataFrame, tracking_table: pd.DataFrame) -> dict[str, Any]:
    """P(alive) and churn risk by segment, value by segment, and the calibration tracking plot.

    Parameters
    ----------
    value
        A :class:`~customerlens.models.value.ValueResult`.
    assigned
        Every customer's segment (``customer_id, segment_id, segment_name``).
    tracking_table
        Weekly actual against predicted purchases (:func:`customerlens.models.value.service.tracking`).
    """
    from customerlens.outputs import charts

    scores = with_segment(value.table[["customer_id", "p_alive", "churn_risk"]], assigned).merge(
        assigned.drop_duplicates("segment_id")[["segment_id", "segment_name"]], on="segment_id")
    by_segment = value.by_segment if value.by_segment is not None else value_by_segment(value, assigned)
    clv = f"clv_{value.config.clv_months}m"
    return {
        "p_alive_by_segment": charts.p_alive_chart(probability_stats(scores)),
        "value_by_segment": charts.value_by_segment_chart(by_segment, clv),
        "value_tracking": charts.tracking_chart(tracking_table),
    }


def holdout_charts(report: dict) -> dict[str, Any]:
    """The holdout's tracking plot, predicted vs actual by calibration frequency, and churn reliability."""
    from customerlens.outputs import charts

    rel = [{"candidate": label, **row} for label, cand in report["churn"]["candidates"].items()
           if "reliability" in cand and not label.startswith("1 - P(alive)")
           for row in cand["reliability"]]
    return {
        "holdout_tracking": charts.tracking_chart(pd.DataFrame(report["tracking"]), report["calibration_end"]),
        "holdout_by_frequency": charts.holdout_by_frequency_chart(pd.DataFrame(report["by_calibration_frequency"])),
        "churn_reliability": charts.reliability_chart(pd.DataFrame(rel)),
    }


def save_charts(made: dict[str, Any], folder: str | Path, *, key_formats: bool = False,
                rasters: Any = None, specs: dict[str, dict] | None = None) -> dict[str, Path]:
    """Write every chart of ``made`` (Altair charts or their Vega-Lite specs) as ``folder/<stem>.png`` and ``.svg``.

    Returns the written paths keyed ``chart_<stem>`` (the PNG), or
    ``chart_<stem>_<format>`` for each format with ``key_formats``. With ``rasters``, the PNGs
    are left to it (:class:`~customerlens.outputs.rasters.Rasters`): their paths are returned, written once it finishes.
    ``specs``: each chart's Vega-Lite spec is put there too, by stem (the report draws the same charts).
    The first charts a process draws settle the fonts it draws with (:func:`customerlens.outputs.fonts.settle_for`).
    """
    from customerlens.outputs import charts, fonts

    drawn = {stem: chart if isinstance(chart, dict) else charts.spec(chart) for stem, chart in made.items()}
    fonts.settle_for(drawn.values())
    written = {}
    for stem, vega_lite in drawn.items():
        if specs is not None:
            specs[stem] = vega_lite
        paths = charts.write_chart(vega_lite, Path(folder) / stem, png=rasters is None)
        if rasters is not None:
            rasters.add(paths["svg"], paths["png"])
        if key_formats:
            written.update({f"chart_{stem}_{fmt}": path for fmt, path in paths.items()})
        else:
            written[f"chart_{stem}"] = paths["png"]
    return written
