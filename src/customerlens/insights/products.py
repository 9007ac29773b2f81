"""Top and distinctive products per segment (revenue, buyers, share of the segment and lift)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from customerlens.core.frames import as_pandas as _as_pandas


def lines_with_segments(transactions: Any, segments: Any) -> pd.DataFrame:
    """Transaction lines of segmented customers, each with its ``segment_id`` and ``segment_name``."""
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
        so that a segment's *distinctive* products show, not just the popular
        ones. By lift only products with statistical support are listed: at
        least ``min_buyers`` buyers and 1 % of the segment, and a lift whose
        lower 95 % bound (``lift_low``: the segment's buying rate at its lower
        Wilson bound, over the base rate) exceeds 1; they are ranked by that bound.

    Returns
    -------
    segment_id, segment_name, rank, product_id, product_name, revenue, buyers,
    share_of_segment (buyers / segment size), lift, lift_low.
    """
    return rank_products(product_stats(transactions, segments), n=n, by=by, min_buyers=min_buyers)


_PRODUCT_COLUMNS = ["segment_id", "segment_name", "rank", "product_id", "product_name", "revenue",
                    "buyers", "share_of_segment", "lift", "lift_low"]
#: A distinctive product needs this share of the segment's customers as buyers (and at least ``min_buyers``)
MIN_SHARE = 0.01
#: z of the one-sided lower bound of the lift (95 %)
Z_LOW = 1.645


def wilson_low(successes: np.ndarray, trials: np.ndarray, z: float = Z_LOW) -> np.ndarray:
    """Lower Wilson bound of the proportions ``successes / trials`` (0 where there are no trials)."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = p + z * z / (2 * n)
        spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low = (centre - spread) / (1 + z * z / n)
    return np.where(n > 0, np.clip(low, 0.0, 1.0), 0.0)


def product_stats(transactions: Any, segments: Any) -> pd.DataFrame:
    """Every (segment, product) pair: revenue, buyers, share_of_segment, lift and the product's name.

    This is the table :func:`rank_products` ranks (computed once for several rankings).
    """
    return product_stats_of(lines_with_segments(transactions, segments), segments)


def product_stats_of(lines: pd.DataFrame, segments: Any) -> pd.DataFrame:
    """:func:`product_stats` from lines already joined to their segments (:func:`lines_with_segments`)."""
    lines = lines[lines["product_id"].notna()]
    if lines.empty:
        return pd.DataFrame(columns=[c for c in _PRODUCT_COLUMNS if c != "rank"])
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
    size = per["segment_id"].map(sizes)
    base_rate = per["product_id"].map(overall) / n_customers
    per["share_of_segment"] = per["buyers"] / size
    per["lift"] = per["share_of_segment"] / base_rate
    # the lift's lower 95% bound: the segment's buying rate at its lower Wilson bound, over the base's rate
    # (from every customer, a much larger sample); a lift of 2.5 from 5 buyers has a low bound near 1
    per["lift_low"] = wilson_low(per["buyers"].to_numpy(), size.to_numpy()) / base_rate.to_numpy()
    per["segment_size"] = size
    per["product_name"] = per["product_id"].map(names)
    return per


def rank_products(stats: pd.DataFrame, n: int = 10, by: str = "revenue", min_buyers: int = 5) -> pd.DataFrame:
    """The top ``n`` products of each segment from :func:`product_stats` (see :func:`top_products`)."""
    if by not in ("revenue", "buyers", "lift"):
        raise ValueError(f"by must be revenue, buyers or lift, not {by!r}")
    if stats.empty:
        return pd.DataFrame(columns=_PRODUCT_COLUMNS)
    per = stats
    key = [by]
    if by == "lift":
        # distinctive with support: buyers scaled to the segment's size, and a lift whose lower bound
        # exceeds 1; ranked by that bound, so a handful of buyers never heads the list on a lucky ratio
        needed = np.maximum(min_buyers, np.ceil(MIN_SHARE * stats["segment_size"].to_numpy()))
        per = stats[(stats["buyers"].to_numpy() >= needed) & (stats["lift_low"] > 1.0)]
        key = ["lift_low", "lift"]
    per = per.sort_values(["segment_id", *key, "product_id"], ascending=[True, *([False] * len(key)), True])
    per = per.assign(rank=per.groupby("segment_id").cumcount() + 1)
    out = per[per["rank"] <= n][_PRODUCT_COLUMNS].reset_index(drop=True)
    out["revenue"] = out["revenue"].round(2)
    return out
