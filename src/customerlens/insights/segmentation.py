"""Segments of every customer and what they mean, for one snapshot.

:func:`segment_customers` runs a segmentation model (:mod:`customerlens.models.segment`)
and :class:`Segmentation` gathers the insight tables about its segments (profiles,
products, trends, cohorts, migration). Charts and files are the outputs layer's
(:mod:`customerlens.outputs.figures`, :mod:`customerlens.outputs.layout`). Used by
:func:`customerlens.pipeline.analyze` and ``customerlens segment``; usable on its own:

>>> seg = segment_customers(features_df)              # doctest: +SKIP
>>> seg.add_insights(transactions_df)                 # doctest: +SKIP
>>> seg.summary()                                     # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from customerlens.core.frames import is_increasing
from customerlens.errors import ConfigError
from customerlens.insights.migration import segment_migration
from customerlens.insights.products import lines_with_segments, product_stats_of, rank_products
from customerlens.insights.profiles import box_stats, segment_profiles
from customerlens.insights.trends import cohort_retention, monthly_trend_of
from customerlens.models.segment.naming import check_names, segment_stats
from customerlens.models.segment.segmenter import (
    DEFAULT_FEATURES,
    RFM_SEGMENTS,
    RFM_STRATEGIES,
    CustomerSegmenter,
    rfm_scores,
)

METHODS = ("kmeans", "rfm")


@dataclass
class Segmentation:
    """Segments of every customer and what was learned about them."""

    method: str
    assigned: pd.DataFrame
    strategies: dict[str, str]
    reason: str
    segmenter: CustomerSegmenter | None = None
    profiles: pd.DataFrame | None = None
    top_products: pd.DataFrame | None = None
    distinctive_products: pd.DataFrame | None = None
    monthly: pd.DataFrame | None = None
    box: pd.DataFrame | None = None
    cohorts: pd.DataFrame | None = None
    migration: pd.DataFrame | None = None  # from/to segment counts and revenue between two dates
    movers: pd.DataFrame | None = None  # every customer's segment at both dates
    migration_dates: tuple[str, str] | None = None
    #: names moved by the naming checks, in words (customerlens.models.segment.naming); empty: all held
    naming_notes: list[str] = field(default_factory=list)

    @property
    def k(self) -> int:
        """Number of segments the customers were assigned to."""
        return int(self.assigned["segment_id"].nunique())

    def add_profiles(self) -> Segmentation:
        """Profiles and box statistics: from the customer table alone."""
        self.profiles = segment_profiles(self.assigned, self.strategies)
        self.box = box_stats(self.assigned)
        return self

    def add_insights(self, transactions: pd.DataFrame, top_n: int = 10) -> Segmentation:
        """Profiles, box statistics, and from the lines: top and distinctive products, monthly trend, cohorts."""
        self.add_profiles()
        lines = lines_with_segments(transactions, self.assigned)  # once for the products and the trend
        stats = product_stats_of(lines, self.assigned)  # once for both rankings
        self.top_products = rank_products(stats, n=top_n, by="revenue")
        self.distinctive_products = rank_products(stats, n=top_n, by="lift")
        self.monthly = monthly_trend_of(lines)
        del lines
        self.cohorts = cohort_retention(transactions)
        return self

    def add_migration(self, transactions: pd.DataFrame, date_from, date_to, *, at_snapshot: bool = False
                      ) -> Segmentation:
        """Segments as of ``date_from`` and ``date_to`` with this fitted model (K-means only).

        ``at_snapshot``: ``date_to`` is the date these segments' features were computed at, so they
        are used as they are for it (not computed again from the lines).
        """
        if self.segmenter is None:
            return self
        self.migration, self.movers = segment_migration(transactions, self.segmenter, date_from, date_to,
                                                        features_to=self.assigned if at_snapshot else None)
        self.migration_dates = (str(pd.Timestamp(date_from).date()), str(pd.Timestamp(date_to).date()))
        return self

    def summary(self) -> pd.DataFrame:
        """One line per segment: name, size, revenue share, strategy."""
        profiles = self.profiles if self.profiles is not None else segment_profiles(
            self.assigned, self.strategies)
        return profiles[["segment_id", "segment_name", "customers", "share_customers", "share_revenue",
                         "median_recency_days", "median_frequency", "median_monetary", "strategy"]]

    def record(self) -> dict:
        """What goes into the run record."""
        rec = {"method": self.method, "k": self.k, "reason": self.reason,
               "segments": {str(i): n for i, n in
                            self.assigned.groupby("segment_id")["segment_name"].first().items()}}
        if self.migration_dates is not None:
            rec["migration"] = {"from": self.migration_dates[0], "to": self.migration_dates[1]}
        if self.segmenter is not None:
            rec["naming"] = self.naming_notes or ["every name keeps its promise (docs/segmentation.md)"]
            rec["features"] = list(self.segmenter.features)
            rec["knee"] = self.segmenter.k_choice_.knee
            rec["elbow"] = json.loads(self.segmenter.elbow_.to_json(orient="records"))
        return rec


def segment_customers(
    customers: pd.DataFrame,
    method: str = "kmeans",
    k: int | None = None,
    features: tuple[str, ...] = DEFAULT_FEATURES,
    random_state: int = 42,
    k_range: tuple[int, int] = (1, 10),
    segmenter: Any = None,
    churn_risk: pd.Series | None = None,
) -> Segmentation:
    """Segment customers with K-means (elbow method) or classic RFM.

    Parameters
    ----------
    customers
        The per-customer feature table (pandas).
    method
        ``kmeans`` (default) or ``rfm``.
    k
        Number of K-means segments (default: chosen by the elbow method).
    features
        Feature columns K-means clusters on.
    random_state
        Seed; the same input gives the same segments.
    k_range
        Smallest and largest k of the elbow search.
    segmenter
        An already fitted :class:`CustomerSegmenter` (e.g. by Spark MLlib, see
        :func:`customerlens.models.segment.mllib.kmeans_segmentation`): customers are assigned
        to its segments instead of fitting a new one.
    churn_risk
        The value model's churn risk by ``customer_id``: the naming checks use it to decide which
        segment is At-Risk (:mod:`customerlens.models.segment.naming`).
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {method!r}", parameter="method")
    # one copy at most of a table that can hold millions of customers
    frame = customers if is_increasing(customers["customer_id"]) else customers.sort_values("customer_id")
    frame = frame.reset_index(drop=True)
    rfm = rfm_scores(frame)
    if method == "rfm":
        order = {name: i + 1 for i, name in enumerate(RFM_SEGMENTS)}
        assigned = frame.copy(deep=False)  # copy-on-write: new columns do not touch the caller's frame
        assigned.insert(1, "segment_name", rfm["rfm_segment"].to_numpy())
        assigned.insert(1, "segment_id", assigned["segment_name"].map(order).astype(int))
        for column in ("r_score", "f_score", "m_score", "rfm_score"):
            assigned[column] = rfm[column].to_numpy()
        return Segmentation(method="rfm", assigned=assigned, strategies=dict(RFM_STRATEGIES),
                            reason="classic RFM: quintile scores 1-5 and the R x FM grid (docs/segmentation.md)")
    if segmenter is None:
        segmenter = CustomerSegmenter(features=tuple(features), k=k, random_state=random_state,
                                      k_range=tuple(k_range)).fit(frame)
    assigned = segmenter.assign(frame)
    notes: list[str] = []
    if {"monetary", "frequency", "recency_days"} <= set(assigned.columns):
        checked, notes = check_names(segmenter.segment_names_, segment_stats(assigned, churn_risk))
        if notes:  # a name contradicted its numbers: it moves, with its strategy
            segmenter.rename(checked)
            assigned["segment_name"] = assigned["segment_id"].map(checked).to_numpy()
    for column in ("r_score", "f_score", "m_score", "rfm_score", "rfm_segment"):
        assigned[column] = rfm[column].to_numpy()  # same customer order (both sorted by customer_id)
    strategies = {name: segmenter.strategies_[i] for i, name in segmenter.segment_names_.items()}
    return Segmentation(method="kmeans", assigned=assigned, strategies=strategies,
                        reason=segmenter.k_choice_.reason, segmenter=segmenter, naming_notes=notes)
