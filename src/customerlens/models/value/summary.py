"""Per-customer purchase summary for the probability models: x, t_x, T and repeat spend.

The models count *transactions* the way Fader, Hardie and Lee do: all of a
customer's purchases on one calendar day are one transaction, worth the day's
total. For a calibration period ending on ``calibration_end`` (the last day
included), in a time unit of ``unit_days`` days:

``frequency`` (x)   repeat transactions: transaction days after the first one
``recency`` (t_x)   time from the first to the last transaction
``T``               time from the first transaction to ``calibration_end``
``monetary_value``  mean value of the repeat transactions (0 without repeats)
``first_purchase``, ``last_purchase``  the first and last transaction days (datetime64, midnight)

Written against narwhals, so DuckDB, pandas and Polars frames aggregate
natively.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import narwhals as nw
import numpy as np
import pandas as pd

from customerlens.core.frames import collect

SUMMARY_COLUMNS = ("customer_id", "frequency", "recency", "T", "monetary_value", "first_purchase",
                   "last_purchase")
_DAY = 86_400.0


def _days(value: dt.date | dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.date.fromisoformat(value.strip()[:10])
    if isinstance(value, dt.datetime):
        value = value.date()
    return dt.datetime.combine(value, dt.time())


def daily_transactions(transactions: Any, start: Any = None, end: Any = None) -> Any:
    """One row per customer and purchase day in ``[start, end]`` (days, inclusive): ``customer_id, day, value``."""
    col = nw.col
    frame = nw.from_native(transactions)
    if "amount" not in frame.columns:
        frame = frame.with_columns(amount=nw.lit(0.0))
    lines = frame.with_columns(day=col("order_date").dt.truncate("1d"))
    if start is not None:
        lines = lines.filter(col("day") >= nw.lit(_days(start)))
    if end is not None:
        lines = lines.filter(col("day") <= nw.lit(_days(end)))
    return lines.group_by("customer_id", "day").agg(col("amount").sum().alias("value"))


def rfm_summary(transactions: Any, calibration_end: Any, unit_days: float = 7.0) -> pd.DataFrame:
    """The summary above for every customer with a purchase on or before ``calibration_end``."""
    end = _days(calibration_end)
    col = nw.col
    daily = daily_transactions(transactions, end=end)
    per = daily.group_by("customer_id").agg(
        col("day").min().alias("first_purchase"),
        col("day").max().alias("last_purchase"),
        col("day").len().alias("_days"),
        col("value").sum().alias("_total"),
    )
    first = daily.join(per.select("customer_id", "first_purchase"), left_on=["customer_id", "day"],
                       right_on=["customer_id", "first_purchase"], how="inner").select(
        "customer_id", col("value").alias("_first_value"))
    out = collect(per.join(first, on="customer_id", how="left").sort("customer_id")).to_pandas()
    # dates as datetime64, not Python objects: 16 bytes a customer instead of 80 (0.6 GB at 10M customers)
    first_day = pd.to_datetime(out.pop("first_purchase")).to_numpy()
    last_day = pd.to_datetime(out.pop("last_purchase")).to_numpy()
    x = out.pop("_days").to_numpy(dtype=np.int64) - 1
    second, unit = np.timedelta64(1, "s"), _DAY * unit_days
    repeat_value = (out.pop("_total") - out.pop("_first_value")).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(x > 0, repeat_value / np.maximum(x, 1), 0.0)
    del repeat_value
    return pd.DataFrame({
        "customer_id": out["customer_id"].astype(str),  # Arrow-backed text, not 10M Python strings
        "frequency": x,
        "recency": (last_day - first_day) / second / unit,
        "T": (np.datetime64(end) - first_day) / second / unit,
        "monetary_value": np.round(monetary, 6),
        "first_purchase": first_day,
        "last_purchase": last_day,
    })


def holdout_counts(transactions: Any, calibration_end: Any, holdout_end: Any) -> pd.DataFrame:
    """Transactions (purchase days) and their value per customer in ``(calibration_end, holdout_end]``."""
    start = _days(calibration_end) + dt.timedelta(days=1)
    daily = daily_transactions(transactions, start=start, end=holdout_end)
    out = collect(daily.group_by("customer_id").agg(
        nw.col("day").len().alias("holdout_transactions"),
        nw.col("value").sum().alias("holdout_value"),
    )).to_pandas()
    out["customer_id"] = out["customer_id"].astype(str)
    return out
