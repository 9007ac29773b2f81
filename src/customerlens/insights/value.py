"""Customer value per segment: totals, shares and the spread of P(alive) and churn risk."""

from __future__ import annotations

import pandas as pd

from customerlens.core.frames import customer_rows
from customerlens.models.value.config import ValueResult


def with_segment(scores: pd.DataFrame, assigned: pd.DataFrame) -> pd.DataFrame:
    """``scores`` (with ``customer_id``) of the customers in ``assigned``, each with its ``segment_id``.

    By position when both list the same customers in the same order (a run's tables), no merge.
    """
    rows = customer_rows(scores["customer_id"], assigned)
    segment_id = assigned["segment_id"].to_numpy()
    if rows is None:
        return scores.assign(segment_id=segment_id)
    found = rows >= 0
    return scores[found].assign(segment_id=segment_id[rows[found]])


def value_by_segment(value: ValueResult, assigned: pd.DataFrame) -> pd.DataFrame:
    """Per segment: customers, mean P(alive) and churn risk, CLV and value at risk (totals and shares)."""
    clv = f"clv_{value.config.clv_months}m"
    frame = with_segment(value.table[["customer_id", "p_alive", "churn_risk", clv, "value_at_risk"]], assigned)
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


