"""Trends over time: revenue and active customers by month per segment, and cohort retention."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from customerlens.core.frames import as_pandas as _as_pandas
from customerlens.insights.products import lines_with_segments


def monthly_trend(transactions: Any, segments: Any) -> pd.DataFrame:
    """Revenue and active customers per segment per calendar month."""
    lines = lines_with_segments(transactions, segments)
    if lines.empty:
        return pd.DataFrame(columns=["month", "segment_id", "segment_name", "revenue", "active_customers", "orders"])
    lines["month"] = pd.to_datetime(lines["order_date"]).dt.to_period("M").dt.to_timestamp()
    out = (lines.groupby(["month", "segment_id", "segment_name"])
           .agg(revenue=("amount", "sum"), active_customers=("customer_id", "nunique"),
                orders=("order_id", "nunique"))
           .reset_index().sort_values(["month", "segment_id"]))
    out["revenue"] = out["revenue"].round(2)
    return out.reset_index(drop=True)


def cohort_retention(transactions: Any) -> pd.DataFrame:
    """Monthly cohorts by first-purchase month: who is still buying n months later.

    One row per cohort and month offset up to the data's last month: ``cohort`` (first-purchase month),
    ``months_since`` (0 = the first month), ``cohort_size``, ``active_customers``
    (customers of the cohort with an order in that month), ``retention``
    (active / size) and ``revenue``.
    """
    lines = _as_pandas(transactions)[["customer_id", "order_date", "amount"]].copy()
    columns = ["cohort", "months_since", "cohort_size", "active_customers", "retention", "revenue"]
    if lines.empty:
        return pd.DataFrame(columns=columns)
    when = pd.to_datetime(lines["order_date"])
    # months as integers (year * 12 + month - 1): differences are whole months
    month = when.dt.year.to_numpy(dtype=np.int64) * 12 + when.dt.month.to_numpy(dtype=np.int64) - 1
    lines["month"] = month
    lines["cohort"] = lines.groupby("customer_id")["month"].transform("min")
    lines["months_since"] = lines["month"] - lines["cohort"]
    active = (lines.groupby(["cohort", "months_since"])
              .agg(active_customers=("customer_id", "nunique"), revenue=("amount", "sum")).reset_index())
    sizes = lines.groupby("cohort")["customer_id"].nunique().rename("cohort_size")
    # every month a cohort could have been seen in, 0 when none of it bought then
    last = int(lines["month"].max())
    grid = pd.DataFrame([(c, k) for c in sizes.index for k in range(last - int(c) + 1)],
                        columns=["cohort", "months_since"])
    out = grid.merge(active, on=["cohort", "months_since"], how="left").fillna(
        {"active_customers": 0, "revenue": 0.0}).merge(sizes, on="cohort")
    out["active_customers"] = out["active_customers"].astype(int)
    out["retention"] = out["active_customers"] / out["cohort_size"]
    out["revenue"] = out["revenue"].round(2)
    out["cohort"] = pd.to_datetime({"year": out["cohort"] // 12, "month": out["cohort"] % 12 + 1, "day": 1})
    return out[columns].sort_values(["cohort", "months_since"]).reset_index(drop=True)


def retention_matrix(cohorts: pd.DataFrame) -> pd.DataFrame:
    """The cohort table as a matrix: cohorts down, months since the first purchase across."""
    return cohorts.pivot(index="cohort", columns="months_since", values="retention").sort_index()
