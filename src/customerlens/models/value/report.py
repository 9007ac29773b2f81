"""Value results as tables and charts per segment (the run's and the `value` command's outputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from customerlens.core.frames import customer_rows
from customerlens.models.value.service import ValueResult, tracking


def _with_segment(scores: pd.DataFrame, assigned: pd.DataFrame) -> pd.DataFrame:
    """``scores`` (with ``customer_id``) of the customers in ``assigned``, each with its ``segment_id``:
    by position when both list the same customers in the same order (a run's tables), no merge."""
    rows = customer_rows(scores["customer_id"], assigned)
    segment_id = assigned["segment_id"].to_numpy()
    if rows is None:
        return scores.assign(segment_id=segment_id)
    found = rows >= 0
    return scores[found].assign(segment_id=segment_id[rows[found]])


def value_by_segment(value: ValueResult, assigned: pd.DataFrame) -> pd.DataFrame:
    """Per segment: customers, mean P(alive) and churn risk, CLV and value at risk (totals and shares)."""
    clv = f"clv_{value.config.clv_months}m"
    frame = _with_segment(value.table[["customer_id", "p_alive", "churn_risk", clv, "value_at_risk"]], assigned)
    names = assigned.drop_duplicates("segment_id")[["segment_id", "segment_name"]]
    frame = frame.groupby("segment_id", as_index=False).agg(
        customers=("p_alive", "size"), mean_p_alive=("p_alive", "mean"), mean_churn_risk=("churn_risk", "mean"),
        clv=(clv, "sum"), value_at_risk=("value_at_risk", "sum"))
    out = frame.merge(names, on="segment_id", how="left")
    out = out[["segment_id", "segment_name", *[c for c in out.columns if c not in ("segment_id", "segment_name")]]]
    total = out["clv"].sum()
    out["share_clv"] = out["clv"] / total if total > 0 else 0.0
    at_risk = out["value_at_risk"].sum()
    out["share_value_at_risk"] = out["value_at_risk"] / at_risk if at_risk > 0 else 0.0
    out = out.rename(columns={"clv": clv})
    return out.sort_values("segment_id").round(6).reset_index(drop=True)


def probability_stats(scores: pd.DataFrame) -> pd.DataFrame:
    """Quantiles of P(alive) and churn risk per segment (what the box plots draw)."""
    rows = []
    labels = {"p_alive": "P(alive)", "churn_risk": "churn risk"}
    for (seg_id, name), group in scores.groupby(["segment_id", "segment_name"]):
        for column, label in labels.items():
            q = group[column].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).to_numpy()
            rows.append({"segment_id": seg_id, "segment_name": name, "measure": label, "q05": q[0], "q1": q[1],
                         "median": q[2], "q3": q[3], "q95": q[4], "n": len(group)})
    return pd.DataFrame(rows)


def write_value_charts(value: ValueResult, segmentation, transactions: Any, folder: Path) -> dict[str, Path]:
    """P(alive) and churn risk by segment, value by segment, and the calibration tracking plot."""
    from customerlens.outputs import charts

    outputs = {}
    assigned = segmentation.assigned
    scores = _with_segment(value.table[["customer_id", "p_alive", "churn_risk"]], assigned).merge(
        assigned.drop_duplicates("segment_id")[["segment_id", "segment_name"]], on="segment_id")
    by_segment = getattr(value, "by_segment", None)
    if by_segment is None:
        by_segment = value_by_segment(value, segmentation.assigned)
    clv = f"clv_{value.config.clv_months}m"
    made = {
        "p_alive_by_segment": charts.p_alive_chart(probability_stats(scores)),
        "value_by_segment": charts.value_by_segment_chart(by_segment, clv),
        "value_tracking": charts.tracking_chart(value.weekly_tracking if value.weekly_tracking is not None
                                                else tracking(transactions, value)),
    }
    for name, chart in made.items():
        for fmt, path in charts.save_chart(chart, folder / name).items():
            outputs[f"chart_{name}_{fmt}"] = path
    return outputs


def write_holdout_charts(report: dict, folder: Path) -> dict[str, Path]:
    """The holdout's tracking plot, predicted vs actual by calibration frequency, and churn reliability."""
    from customerlens.outputs import charts

    rel = [{"candidate": label, **row} for label, cand in report["churn"]["candidates"].items()
           if "reliability" in cand and not label.startswith("1 - P(alive)")
           for row in cand["reliability"]]
    made = {
        "holdout_tracking": charts.tracking_chart(pd.DataFrame(report["tracking"]), report["calibration_end"]),
        "holdout_by_frequency": charts.holdout_by_frequency_chart(pd.DataFrame(report["by_calibration_frequency"])),
        "churn_reliability": charts.reliability_chart(pd.DataFrame(rel)),
    }
    outputs = {}
    for name, chart in made.items():
        for fmt, path in charts.save_chart(chart, Path(folder) / name).items():
            outputs[f"chart_{name}_{fmt}"] = path
    return outputs
