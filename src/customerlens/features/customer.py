"""Stage 3: one row of behaviour features per customer, as of a snapshot date.

Written once against narwhals, so a DuckDB relation (the default), a pandas or
a Polars frame (and later a PySpark frame) is aggregated natively by its own
engine, with the same numbers. Input: clean transactions
(:mod:`customerlens.cleaning`). Output: the per-customer feature table that every
model stage reads.

Only lines strictly before ``as_of`` count. The default snapshot is midnight of
the day after the last transaction (:func:`default_as_of`), so a customer who
bought on the last day has a recency of 1 day, the usual RFM convention.

Features (days are calendar days between dates, times of day ignored):

``recency_days``        days from the last order's date to the snapshot date
``frequency``           distinct orders
``monetary``            net spend: sum of line amounts after returns
``tenure_days``         days from the first order's date to the snapshot date
``avg_order_value``     monetary / frequency
``distinct_products``   distinct product ids (null without products)
``items_per_order``     net units / frequency
``return_rate``         returned value / gross value (gross = net + returned)
``mean_days_between_orders``  (last order date - first order date) / (order days - 1),
                        null for customers with orders on one day only
``spend_90d``, ``spend_prev_90d``  net spend in the 90 days before the snapshot and
                        the 90 days before those
``spend_trend``         (spend_90d - spend_prev_90d) / (spend_90d + spend_prev_90d),
                        in [-1, 1]; 0 when both are 0
``first_purchase``, ``last_purchase``  dates of the first and last order
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import narwhals as nw

from customerlens.core.dates import parse_as_of
from customerlens.core.frames import collect

FEATURE_COLUMNS = (
    "customer_id", "recency_days", "frequency", "monetary", "tenure_days", "avg_order_value",
    "distinct_products", "items_per_order", "return_rate", "mean_days_between_orders",
    "spend_90d", "spend_prev_90d", "spend_trend", "first_purchase", "last_purchase",
)
TREND_WINDOW_DAYS = 90
_DAY = 86_400.0
_MONEY_DIGITS = 6


def last_transaction(transactions: Any) -> dt.datetime:
    """Timestamp of the latest transaction."""
    frame = nw.from_native(transactions)
    value = collect(frame.select(nw.col("order_date").max())).item(0, 0)
    if value is None:
        raise ValueError("no transactions")
    return _to_datetime(value)


def _to_datetime(value) -> dt.datetime:
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    return dt.datetime.combine(value, dt.time())


def default_as_of(transactions: Any) -> dt.datetime:
    """Midnight of the day after the last transaction."""
    last = last_transaction(transactions)
    return dt.datetime.combine(last.date() + dt.timedelta(days=1), dt.time())


def customer_features(
    transactions: Any, as_of: str | dt.date | dt.datetime | None = None
) -> Any:
    """Per-customer features from clean transactions, as of ``as_of``.

    Parameters
    ----------
    transactions
        Clean transactions (a DuckDB relation, pandas or Polars frame) with at
        least ``customer_id, order_id, order_date, product_id, quantity,
        amount``; ``returned_amount`` is used when present.
    as_of
        Snapshot: only lines before it count. Default: midnight after the last
        transaction.

    Returns
    -------
    A frame of the input's engine, one row per customer, sorted by customer_id.
    """
    as_of = parse_as_of(as_of) or default_as_of(transactions)
    col = nw.col
    frame = nw.from_native(transactions)
    if "returned_amount" not in frame.columns:
        frame = frame.with_columns(returned_amount=nw.lit(0.0))
    snapshot = nw.lit(as_of)
    recent_start = nw.lit(as_of - dt.timedelta(days=TREND_WINDOW_DAYS))
    prev_start = nw.lit(as_of - dt.timedelta(days=2 * TREND_WINDOW_DAYS))
    lines = frame.filter(col("order_date") < snapshot).with_columns(
        _day=col("order_date").dt.truncate("1d"),
        _no_product=nw.when(col("product_id").is_null()).then(1).otherwise(0),
        _spend_90d=nw.when(col("order_date") >= recent_start).then(col("amount")).otherwise(0.0),
        _spend_prev=nw.when((col("order_date") >= prev_start) & (col("order_date") < recent_start))
        .then(col("amount"))
        .otherwise(0.0),
    )
    # Simple aggregations only: every engine narwhals supports runs them natively.
    per_customer = lines.group_by("customer_id").agg(
        col("order_id").n_unique().alias("frequency"),
        col("amount").sum().alias("monetary"),
        col("returned_amount").sum().alias("_returned"),
        col("quantity").sum().alias("_units"),
        col("product_id").n_unique().alias("_products"),
        col("_no_product").sum().alias("_no_product"),
        col("_day").n_unique().alias("_days"),
        col("_day").min().alias("first_purchase"),
        col("_day").max().alias("last_purchase"),
        col("_spend_90d").sum().alias("spend_90d"),
        col("_spend_prev").sum().alias("spend_prev_90d"),
    ).with_columns(
        # money is summed in floating point, in an order that parallel engines
        # do not fix: round off the last bits (1e-12) so that re-runs and
        # engines agree to the last digit
        monetary=col("monetary").round(_MONEY_DIGITS),
        _returned=col("_returned").round(_MONEY_DIGITS),
        spend_90d=col("spend_90d").round(_MONEY_DIGITS),
        spend_prev_90d=col("spend_prev_90d").round(_MONEY_DIGITS),
    )

    # days as whole numbers counted from 1970-01-01 (see day_number): every
    # engine computes them the same way, Spark included (no duration types)
    snapshot_day = (as_of - dt.datetime(1970, 1, 1)).total_seconds() / _DAY

    def days_to_snapshot(column: str):
        return (snapshot_day - day_number(col(column))).round(0)

    gross = col("monetary") + col("_returned")
    both = col("spend_90d") + col("spend_prev_90d")
    out = per_customer.with_columns(
        recency_days=days_to_snapshot("last_purchase").cast(nw.Int64()),
        tenure_days=days_to_snapshot("first_purchase").cast(nw.Int64()),
        avg_order_value=(col("monetary") / col("frequency")).round(_MONEY_DIGITS),
        # n_unique counts null as one value (narwhals follows Polars): take it off
        distinct_products=nw.when(col("_no_product") == 0)
        .then(col("_products"))
        .otherwise(col("_products") - 1),
        items_per_order=col("_units") / col("frequency"),
        return_rate=nw.when(gross > 0).then(col("_returned") / gross).otherwise(0.0),
        mean_days_between_orders=nw.when(col("_days") > 1)
        .then((day_number(col("last_purchase")) - day_number(col("first_purchase"))) / (col("_days") - 1))
        .otherwise(None),
        spend_trend=nw.when(both.abs() > 1e-9)
        .then((col("spend_90d") - col("spend_prev_90d")) / both)
        .otherwise(0.0),
    )
    return _finish(out).to_native()


def day_number(date: nw.Expr) -> nw.Expr:
    """Days from 1970-01-01 to the (calendar) date of ``date``, from its year and day of the year.

    Integer arithmetic only (leap years by the Gregorian rule), so that DuckDB,
    pandas, Polars and Spark, which do not share duration types, agree exactly.
    """
    year = date.dt.year()
    return (
        365 * (year - 1970)
        + (year - 1969) // 4
        - (year - 1901) // 100
        + (year - 1601) // 400
        + date.dt.ordinal_day()
        - 1
    )


def _finish(frame):
    col = nw.col
    return frame.with_columns(
        frequency=col("frequency").cast(nw.Int64()),
        # data without products: not applicable rather than 0
        distinct_products=nw.when((col("distinct_products") == 0) & (col("_no_product") > 0))
        .then(None)
        .otherwise(col("distinct_products")),  # no Int64 cast: pandas has no null ints
        monetary=col("monetary").cast(nw.Float64()),
        spend_90d=col("spend_90d").cast(nw.Float64()),
        spend_prev_90d=col("spend_prev_90d").cast(nw.Float64()),
        mean_days_between_orders=col("mean_days_between_orders").cast(nw.Float64()),
        first_purchase=col("first_purchase").cast(nw.Date()),
        last_purchase=col("last_purchase").cast(nw.Date()),
    ).select(*FEATURE_COLUMNS).sort("customer_id")
