"""Trends over time: revenue and active customers by month per segment, and cohort retention."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from customerlens.core.frames import as_pandas as _as_pandas
from customerlens.insights.products import lines_with_segments

#: A first or last month the data covers for less than this share of its days is partial
COMPLETE_SHARE = 0.9


def partial_months(dates: pd.Series) -> dict[pd.Timestamp, float]:
    """The first and last calendar months that the data covers only in part, with the share of days covered.

    The data runs from its first to its last date: a first month that starts late, or a last month
    that ends early (one day of December), covers less than :data:`COMPLETE_SHARE` of its days.
    Months between are complete by definition.
    """
    when = pd.to_datetime(dates).dropna()
    if when.empty:
        return {}
    first, last = when.min().normalize(), when.max().normalize()
    out = {}
    for day, covered in ((first, lambda m: (m + pd.offsets.MonthEnd(0) - first).days + 1),
                         (last, lambda m: (last - m).days + 1)):
        month = day.to_period("M").to_timestamp()
        days = month.days_in_month
        if first.to_period("M") == last.to_period("M"):
            share = ((last - first).days + 1) / days
        else:
            share = covered(month) / days
        if share < COMPLETE_SHARE:
            out[month] = round(share, 3)
    return out


def monthly_trend(transactions: Any, segments: Any) -> pd.DataFrame:
    """Revenue and active customers per segment per calendar month.

    ``partial`` marks a first or last month the data covers only in part (:func:`partial_months`):
    its revenue is not comparable with a whole month's, and the trend chart leaves it out.
    """
    return monthly_trend_of(lines_with_segments(transactions, segments))


def monthly_trend_of(lines: pd.DataFrame) -> pd.DataFrame:
    """:func:`monthly_trend` from lines already joined to their segments (:func:`lines_with_segments`)."""
    if lines.empty:
        return pd.DataFrame(columns=["month", "segment_id", "segment_name", "revenue", "active_customers", "orders",
                                     "partial"])
    lines = lines.assign(month=pd.to_datetime(lines["order_date"]).dt.to_period("M").dt.to_timestamp())
    out = (lines.groupby(["month", "segment_id", "segment_name"])
           .agg(revenue=("amount", "sum"), active_customers=("customer_id", "nunique"),
                orders=("order_id", "nunique"))
           .reset_index().sort_values(["month", "segment_id"]))
    out["revenue"] = out["revenue"].round(2)
    out["partial"] = out["month"].isin(list(partial_months(lines["order_date"])))
    return out.reset_index(drop=True)


def cohort_retention(transactions: Any) -> pd.DataFrame:
    """Monthly cohorts by first-purchase month: who is still buying n months later.

    One row per cohort and month offset up to the data's last month: ``cohort`` (first-purchase month),
    ``months_since`` (0 = the first month), ``cohort_size``, ``active_customers``
    (customers of the cohort with an order in that month), ``retention``
    (active / size), ``revenue``, and ``partial``: the calendar month is one the data covers only in
    part (:func:`partial_months`), so its retention reads low; the heat map leaves it out.
    """
    lines = _as_pandas(transactions)[["customer_id", "order_date", "amount"]].copy()
    columns = ["cohort", "months_since", "cohort_size", "active_customers", "retention", "revenue", "partial"]
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
    calendar = out["cohort"] + out["months_since"]
    partial = {m.year * 12 + m.month - 1 for m in partial_months(lines["order_date"])}
    out["partial"] = calendar.isin(partial)
    out["cohort"] = pd.to_datetime({"year": out["cohort"] // 12, "month": out["cohort"] % 12 + 1, "day": 1})
    return out[columns].sort_values(["cohort", "months_since"]).reset_index(drop=True)


def retention_matrix(cohorts: pd.DataFrame) -> pd.DataFrame:
    """The cohort table as a matrix: cohorts down, months since the first purchase across."""
    return cohorts.pivot(index="cohort", columns="months_since", values="retention").sort_index()
