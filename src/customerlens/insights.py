"""Stage 5: what the segments mean: profiles, top products, distributions, trends.

Input: the per-customer table with ``segment_id`` and ``segment_name``
(:meth:`customerlens.segment.CustomerSegmenter.assign`) and the clean
transactions. Output: small pandas tables for the CLI, the charts and the
report. Product tables need product ids; for data without products they are
empty.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._frames import as_pandas as _as_pandas

PROFILE_FEATURES = (
    "recency_days", "frequency", "monetary", "tenure_days", "avg_order_value",
    "distinct_products", "items_per_order", "return_rate", "mean_days_between_orders", "spend_trend",
)


def segment_profiles(segments: Any, strategies: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per segment: size, shares, mean and median of each feature.

    Columns: segment_id, segment_name, customers, share_customers, revenue,
    share_revenue, revenue_per_customer, avg_order_value, then
    ``mean_<feature>`` and ``median_<feature>`` for each feature present, and
    ``strategy`` when ``strategies`` (name -> text) is given.
    """
    frame = _as_pandas(segments)
    features = [c for c in PROFILE_FEATURES if c in frame.columns]
    grouped = frame.groupby(["segment_id", "segment_name"], sort=True)
    out = grouped.agg(customers=("customer_id", "size"), revenue=("monetary", "sum"),
                      orders=("frequency", "sum")).reset_index()
    out["share_customers"] = out["customers"] / out["customers"].sum()
    total = out["revenue"].sum()
    out["share_revenue"] = out["revenue"] / total if total else 0.0
    out["revenue_per_customer"] = out["revenue"] / out["customers"]
    out["avg_order_value"] = out["revenue"] / out["orders"].where(out["orders"] > 0)
    means = grouped[features].mean().add_prefix("mean_").reset_index(drop=True)
    medians = grouped[features].median().add_prefix("median_").reset_index(drop=True)
    out = pd.concat([out.drop(columns=["orders"]), means, medians], axis=1)
    if strategies is not None:
        out["strategy"] = out["segment_name"].map(strategies).fillna("")
    return out


def _lines_with_segments(transactions: Any, segments: Any) -> pd.DataFrame:
    lines = _as_pandas(transactions)
    seg = _as_pandas(segments)[["customer_id", "segment_id", "segment_name"]]
    return lines.merge(seg, on="customer_id", how="inner")


def top_products(
    transactions: Any, segments: Any, n: int = 10, by: str = "revenue", min_buyers: int = 5
) -> pd.DataFrame:
    """The top ``n`` products of each segment.

    Parameters
    ----------
    by
        ``revenue`` (net revenue in the segment), ``buyers`` (distinct
        customers of the segment who bought it) or ``lift``: how much more
        often the segment's customers buy it than the whole base does,
        (buyers in segment / segment size) / (buyers overall / all customers),
        among products with at least ``min_buyers`` buyers in the segment, so
        that a segment's *distinctive* products show, not just the popular ones.

    Returns
    -------
    segment_id, segment_name, rank, product_id, product_name, revenue, buyers,
    share_of_segment (buyers / segment size), lift.
    """
    if by not in ("revenue", "buyers", "lift"):
        raise ValueError(f"by must be revenue, buyers or lift, not {by!r}")
    columns = ["segment_id", "segment_name", "rank", "product_id", "product_name", "revenue",
               "buyers", "share_of_segment", "lift"]
    lines = _lines_with_segments(transactions, segments)
    lines = lines[lines["product_id"].notna()]
    if lines.empty:
        return pd.DataFrame(columns=columns)
    seg = _as_pandas(segments)
    sizes = seg.groupby("segment_id")["customer_id"].size()
    n_customers = len(seg)
    # one name per product: the most frequent description
    names = (lines.dropna(subset=["product_name"]).groupby(["product_id", "product_name"]).size()
             .reset_index(name="n").sort_values(["product_id", "n", "product_name"], ascending=[True, False, True])
             .drop_duplicates("product_id").set_index("product_id")["product_name"])
    per = (lines.groupby(["segment_id", "segment_name", "product_id"])
           .agg(revenue=("amount", "sum"), buyers=("customer_id", "nunique")).reset_index())
    overall = lines.groupby("product_id")["customer_id"].nunique()
    per["share_of_segment"] = per["buyers"] / per["segment_id"].map(sizes)
    per["lift"] = per["share_of_segment"] / (per["product_id"].map(overall) / n_customers)
    per["product_name"] = per["product_id"].map(names)
    if by == "lift":
        per = per[per["buyers"] >= min_buyers]
    per = per.sort_values(["segment_id", by, "product_id"], ascending=[True, False, True])
    per["rank"] = per.groupby("segment_id").cumcount() + 1
    out = per[per["rank"] <= n][columns].reset_index(drop=True)
    out["revenue"] = out["revenue"].round(2)
    return out


def monthly_trend(transactions: Any, segments: Any) -> pd.DataFrame:
    """Revenue and active customers per segment per calendar month."""
    lines = _lines_with_segments(transactions, segments)
    if lines.empty:
        return pd.DataFrame(columns=["month", "segment_id", "segment_name", "revenue", "active_customers", "orders"])
    lines["month"] = pd.to_datetime(lines["order_date"]).dt.to_period("M").dt.to_timestamp()
    out = (lines.groupby(["month", "segment_id", "segment_name"])
           .agg(revenue=("amount", "sum"), active_customers=("customer_id", "nunique"),
                orders=("order_id", "nunique"))
           .reset_index().sort_values(["month", "segment_id"]))
    out["revenue"] = out["revenue"].round(2)
    return out.reset_index(drop=True)


def box_stats(segments: Any, features: tuple[str, ...] = ("recency_days", "frequency", "monetary",
                                                          "avg_order_value")) -> pd.DataFrame:
    """Tukey box-plot statistics per segment and feature (pre-aggregated for charts).

    Whiskers reach the furthest value within 1.5 IQR of the box.
    """
    frame = _as_pandas(segments)
    rows = []
    for (sid, name), group in frame.groupby(["segment_id", "segment_name"], sort=True):
        for feature in features:
            if feature not in group:
                continue
            values = group[feature].dropna().astype(float).to_numpy()
            if values.size == 0:
                continue
            q1, median, q3 = np.percentile(values, [25, 50, 75])
            iqr = q3 - q1
            low = values[values >= q1 - 1.5 * iqr].min()
            high = values[values <= q3 + 1.5 * iqr].max()
            rows.append({"segment_id": sid, "segment_name": name, "feature": feature, "q1": q1,
                         "median": median, "q3": q3, "whisker_low": low, "whisker_high": high,
                         "mean": values.mean(), "n": values.size})
    return pd.DataFrame(rows)
