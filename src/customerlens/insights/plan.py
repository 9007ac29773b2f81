"""The action plan (one row per segment: who, what to do, what is at stake) and the target lists."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from customerlens.core.frames import as_pandas as _as_pandas
from customerlens.core.frames import customer_rows, is_increasing
from customerlens.core.text import slug


def _traits(row: pd.Series, overall: pd.Series) -> str:
    """Key traits of a segment in words, against the median customer."""
    parts = []
    if "median_recency_days" in row:
        parts.append(f"last order {row['median_recency_days']:.0f} days ago (median customer: "
                     f"{overall['recency_days']:.0f})")
    if "median_frequency" in row:
        orders = row["median_frequency"]
        parts.append(f"{orders:.0f} order{'' if round(orders) == 1 else 's'}")
    if "median_mean_days_between_orders" in row and pd.notna(row["median_mean_days_between_orders"]):
        parts.append(f"one every {row['median_mean_days_between_orders']:.0f} days")
    if "median_monetary" in row and overall["monetary"] > 0:
        parts.append(f"spends {row['median_monetary']:,.0f} ({row['median_monetary'] / overall['monetary']:.1f}x "
                     f"the median customer)")
    return "; ".join(parts)


def action_plan(segments: Any, profiles: pd.DataFrame, distinctive: pd.DataFrame | None = None,
                value_by_segment: pd.DataFrame | None = None, n_products: int = 3) -> pd.DataFrame:
    """One row per segment: size, revenue share, traits in words, strategy, products to promote, value at stake.

    ``value_by_segment`` (from the value stage) adds the expected value and the
    value at risk; ``distinctive`` (products by lift) gives the products to promote.
    """
    frame = _as_pandas(segments)
    overall = frame[["recency_days", "frequency", "monetary"]].median()
    rows = []
    for _, row in profiles.sort_values("segment_id").iterrows():
        entry = {"segment_id": int(row["segment_id"]), "segment_name": row["segment_name"],
                 "customers": int(row["customers"]), "share_customers": round(float(row["share_customers"]), 4),
                 "share_revenue": round(float(row["share_revenue"]), 4), "traits": _traits(row, overall),
                 "strategy": row.get("strategy", "")}
        if distinctive is not None and not distinctive.empty:
            top = distinctive[distinctive["segment_id"] == row["segment_id"]].sort_values("rank").head(n_products)
            entry["promote"] = "; ".join(str(n) if pd.notna(n) else str(p)
                                         for n, p in zip(top["product_name"], top["product_id"], strict=True))
        if value_by_segment is not None and not value_by_segment.empty:
            match = value_by_segment[value_by_segment["segment_id"] == row["segment_id"]]
            if len(match):
                clv_col = next(c for c in match.columns if c.startswith("clv_"))
                entry["expected_value"] = round(float(match[clv_col].iloc[0]), 2)
                entry["value_at_risk"] = round(float(match["value_at_risk"].iloc[0]), 2)
                entry["mean_churn_risk"] = round(float(match["mean_churn_risk"].iloc[0]), 4)
        rows.append(entry)
    return pd.DataFrame(rows)


def target_list(segments: Any, value: pd.DataFrame | None = None,
                recommendations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Customers with what a CRM upload needs: segment, R/F/M, value and churn risk, the next best product.

    Segment by segment (``segment_id``), each from the most value at risk (else the highest spend)
    down, then by customer id: every segment's list is one slice of the table.
    """
    frame = _as_pandas(segments)
    cols = [c for c in ("customer_id", "segment_id", "segment_name", "recency_days", "frequency", "monetary",
                        "last_purchase") if c in frame.columns]
    out = frame[cols]  # copy-on-write: the columns added below do not touch the caller's frame
    if out["customer_id"].dtype != "str":
        out = out.assign(customer_id=out["customer_id"].astype(str))
    if not is_increasing(out["customer_id"]):
        out = out.sort_values("customer_id")
    out = out.reset_index(drop=True)
    if value is not None and not value.empty:
        keep = [c for c in value.columns if c in ("p_alive", "churn_risk", "value_at_risk") or c.startswith("clv_")]
        value = value.assign(customer_id=value["customer_id"].astype(str))
        rows = customer_rows(out["customer_id"], value)
        for column in keep:  # a run's tables list the same customers in the same order: no merge
            data = value[column].to_numpy(dtype=float)
            out[column] = data if rows is None else np.where(rows >= 0, data[rows], np.nan)
    if recommendations is not None and not recommendations.empty:
        top = recommendations["list"] == "top" if "list" in recommendations else True
        first = recommendations[top & (recommendations["rank"] == 1)][["customer_id", "product_id", "product_name"]]
        first = first.rename(columns={"product_id": "next_product_id", "product_name": "next_product_name"})
        out = out.merge(first, on="customer_id", how="left")
    # one stable sort of the row numbers (the rows are in customer id order) instead of sorting the table
    keys = [-out[c].to_numpy(dtype=float) for c in ("value_at_risk", "monetary") if c in out.columns][:1]
    keys += [out["segment_id"].to_numpy()] if "segment_id" in out.columns else []
    if not keys:
        return out
    return out.take(np.lexsort(keys)).reset_index(drop=True)


def action_plan_markdown(plan: pd.DataFrame) -> str:
    """The action plan as a short document a marketing manager can read."""
    lines = ["# Action plan", ""]
    for row in plan.to_dict(orient="records"):
        lines.append(f"## {row['segment_id']}. {row['segment_name']}")
        lines.append("")
        lines.append(f"- **Size**: {row['customers']:,} customers ({row['share_customers']:.0%}), "
                     f"{row['share_revenue']:.0%} of revenue")
        lines.append(f"- **Who they are**: {row['traits']}")
        if row.get("strategy"):
            lines.append(f"- **What to do**: {row['strategy']}")
        if row.get("promote"):
            lines.append(f"- **Promote**: {row['promote']}")
        if pd.notna(row.get("expected_value", np.nan)):
            lines.append(f"- **Value at stake**: expected value {row['expected_value']:,.0f}; "
                         f"at risk of leaving {row['value_at_risk']:,.0f} "
                         f"(mean churn risk {row['mean_churn_risk']:.0%})")
        lines.append(f"- **Target list**: `targets/{slug(row['segment_name'])}.csv`")
        lines.append("")
    return "\n".join(lines)
