"""Segment migration: every customer's segment at two dates with one fitted model, and the flows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from customerlens.core.frames import as_pandas as _as_pandas


def segment_migration(transactions: Any, segmenter, date_from: Any, date_to: Any, *,
                      features_to: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Segment the base as of two dates with the same fitted model and compare.

    Returns ``(matrix, movers)``: ``matrix`` has one row per (from, to) pair:
    ``from_segment, to_segment`` (``from_segment`` = "(not yet a customer)" for
    customers who first bought between the dates), ``customers`` and
    ``revenue`` (their net spend between the dates); the customers of each
    from-segment add up to its size at ``date_from``. ``movers`` lists every
    customer with both segments. ``features_to``: the customers' features as of ``date_to`` when the
    caller has them already (a run's own features at its snapshot), instead of computing them again.
    """
    from customerlens.core.dates import parse_as_of
    from customerlens.features.customer import customer_features

    start, end = parse_as_of(date_from), parse_as_of(date_to)
    if start is None or end is None or start >= end:
        from customerlens.errors import CustomerLensError

        raise CustomerLensError(f"migration needs two dates, the first earlier: got {date_from} and {date_to}")
    before = _as_pandas(customer_features(transactions, as_of=start))
    after = _as_pandas(customer_features(transactions, as_of=end)) if features_to is None else features_to
    if after.empty:
        return pd.DataFrame(columns=["from_segment", "to_segment", "customers", "revenue"]), pd.DataFrame()
    to_ids = segmenter.predict(after)
    names = segmenter.segment_names_
    moved = pd.DataFrame({"customer_id": after["customer_id"].astype(str),
                          "to_segment_id": to_ids, "to_segment": [names[i] for i in to_ids]})
    if not before.empty:
        from_ids = segmenter.predict(before)
        earlier = pd.DataFrame({"customer_id": before["customer_id"].astype(str), "from_segment_id": from_ids,
                                "from_segment": [names[i] for i in from_ids]})
        moved = moved.merge(earlier, on="customer_id", how="left")
    else:
        moved["from_segment_id"], moved["from_segment"] = np.nan, None
    moved["from_segment_id"] = moved["from_segment_id"].fillna(0).astype(int)
    moved["from_segment"] = moved["from_segment"].fillna(NOT_YET)
    # net spend between the dates, by the lines' own engine (DuckDB, Spark, Polars or pandas)
    import narwhals as nw

    from customerlens.core.frames import collect

    col = nw.col
    between = nw.from_native(transactions).filter((col("order_date") >= nw.lit(start)) & (col("order_date") < nw.lit(end)))
    spend = _as_pandas(collect(between.group_by("customer_id").agg(col("amount").sum())).to_native())
    # first to 6 digits: the sum's last bits depend on the engine's order, and must not flip a cent
    spend = spend.set_index(spend["customer_id"].astype(str))["amount"].round(6)
    moved["revenue_between"] = moved["customer_id"].map(spend).fillna(0.0).round(2)
    matrix = (moved.groupby(["from_segment_id", "from_segment", "to_segment_id", "to_segment"])
              .agg(customers=("customer_id", "size"), revenue=("revenue_between", "sum")).reset_index())
    matrix["revenue"] = matrix["revenue"].round(2)
    columns = ["customer_id", "from_segment_id", "from_segment", "to_segment_id", "to_segment", "revenue_between"]
    return matrix, moved[columns].sort_values("customer_id").reset_index(drop=True)


NOT_YET = "(not yet a customer)"
