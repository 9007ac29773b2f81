"""Top and distinctive products per segment (revenue, buyers, share of the segment and lift)."""

from __future__ import annotations

from typing import Any

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
        among products with at least ``min_buyers`` buyers in the segment, so
        that a segment's *distinctive* products show, not just the popular ones.

    Returns
    -------
    segment_id, segment_name, rank, product_id, product_name, revenue, buyers,
    share_of_segment (buyers / segment size), lift.
    """
    return rank_products(product_stats(transactions, segments), n=n, by=by, min_buyers=min_buyers)


_PRODUCT_COLUMNS = ["segment_id", "segment_name", "rank", "product_id", "product_name", "revenue",
                    "buyers", "share_of_segment", "lift"]


def product_stats(transactions: Any, segments: Any) -> pd.DataFrame:
    """Every (segment, product) pair: revenue, buyers, share_of_segment, lift and the product's name.

    This is the table :func:`rank_products` ranks (computed once for several rankings).
    """
    lines = lines_with_segments(transactions, segments)
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
    per["share_of_segment"] = per["buyers"] / per["segment_id"].map(sizes)
    per["lift"] = per["share_of_segment"] / (per["product_id"].map(overall) / n_customers)
    per["product_name"] = per["product_id"].map(names)
    return per


def rank_products(stats: pd.DataFrame, n: int = 10, by: str = "revenue", min_buyers: int = 5) -> pd.DataFrame:
    """The top ``n`` products of each segment from :func:`product_stats` (see :func:`top_products`)."""
    if by not in ("revenue", "buyers", "lift"):
        raise ValueError(f"by must be revenue, buyers or lift, not {by!r}")
    if stats.empty:
        return pd.DataFrame(columns=_PRODUCT_COLUMNS)
    per = stats[stats["buyers"] >= min_buyers] if by == "lift" else stats
    per = per.sort_values(["segment_id", by, "product_id"], ascending=[True, False, True])
    per = per.assign(rank=per.groupby("segment_id").cumcount() + 1)
    out = per[per["rank"] <= n][_PRODUCT_COLUMNS].reset_index(drop=True)
    out["revenue"] = out["revenue"].round(2)
    return out
