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

from customerlens.core.frames import as_pandas as _as_pandas, customer_rows, is_increasing

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
    return rank_products(product_stats(transactions, segments), n=n, by=by, min_buyers=min_buyers)


_PRODUCT_COLUMNS = ["segment_id", "segment_name", "rank", "product_id", "product_name", "revenue",
                    "buyers", "share_of_segment", "lift"]


def product_stats(transactions: Any, segments: Any) -> pd.DataFrame:
    """Every (segment, product) pair: revenue, buyers, share_of_segment, lift and the product's name;
    the table :func:`rank_products` ranks (computed once for several rankings)."""
    lines = _lines_with_segments(transactions, segments)
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


# -- cohorts -------------------------------------------------------------------------------------

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


# -- migration -----------------------------------------------------------------------------------

def segment_migration(transactions: Any, segmenter, date_from: Any, date_to: Any) -> tuple[pd.DataFrame,
                                                                                           pd.DataFrame]:
    """Segment the base as of two dates with the same fitted model and compare.

    Returns ``(matrix, movers)``: ``matrix`` has one row per (from, to) pair:
    ``from_segment, to_segment`` (``from_segment`` = "(not yet a customer)" for
    customers who first bought between the dates), ``customers`` and
    ``revenue`` (their net spend between the dates); the customers of each
    from-segment add up to its size at ``date_from``. ``movers`` lists every
    customer with both segments.
    """
    from customerlens.features.customer import customer_features, parse_as_of

    start, end = parse_as_of(date_from), parse_as_of(date_to)
    if start is None or end is None or start >= end:
        from customerlens.errors import CustomerLensError

        raise CustomerLensError(f"migration needs two dates, the first earlier: got {date_from} and {date_to}")
    before = _as_pandas(customer_features(transactions, as_of=start))
    after = _as_pandas(customer_features(transactions, as_of=end))
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


# -- action plan ---------------------------------------------------------------------------------

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
    down, then by customer id: every segment's list is one slice of the table."""
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
        first = recommendations[recommendations["rank"] == 1][["customer_id", "product_id", "product_name"]]
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
        lines.append(f"- **Target list**: `targets/{_slug(row['segment_name'])}.csv`")
        lines.append("")
    return "\n".join(lines)


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-") or "segment"
