"""Segment profiles: size, revenue share and median behaviour of each segment, and box-plot statistics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from customerlens.core.frames import as_pandas as _as_pandas

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
    # one column at a time: the medians of all features at once sort a copy of them all
    medians = pd.DataFrame({f"median_{f}": grouped[f].median().to_numpy() for f in features})
    out = pd.concat([out.drop(columns=["orders"]), means, medians], axis=1)
    if strategies is not None:
        out["strategy"] = out["segment_name"].map(strategies).fillna("")
    return out


def box_stats(segments: Any, features: tuple[str, ...] = ("recency_days", "frequency", "monetary",
                                                          "avg_order_value")) -> pd.DataFrame:
    """Tukey box-plot statistics per segment and feature (pre-aggregated for charts).

    Whiskers reach the furthest value within 1.5 IQR of the box.
    """
    frame = _as_pandas(segments)
    present = [f for f in features if f in frame.columns]
    columns = {f: frame[f].to_numpy(dtype=float, na_value=np.nan) for f in present}
    rows = []
    # the rows of each segment by position, then one feature of one segment at a time: never a copy
    # of the whole table (millions of customers)
    for (sid, name), positions in sorted(frame.groupby(["segment_id", "segment_name"]).indices.items()):
        for feature in present:
            values = columns[feature][positions]
            values = values[~np.isnan(values)]
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
