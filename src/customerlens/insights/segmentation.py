"""The segmentation step of a run: segments, their insights, charts and files.

Glue between :mod:`customerlens.segment` (the models), :mod:`customerlens.insights`
(the tables) and :mod:`customerlens.charts`, used by :func:`customerlens.pipeline.run`
and ``customerlens segment``. Everything here is also usable on its own:

>>> seg = segment_customers(features_df)              # doctest: +SKIP
>>> seg.add_insights(transactions_df)                 # doctest: +SKIP
>>> seg.summary()                                     # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from customerlens.insights import tables as insights
from customerlens.core.frames import is_increasing
from customerlens.core.files import write_csv_atomic
from customerlens.errors import CustomerLensError
from customerlens.models.segment.segmenter import DEFAULT_FEATURES, RFM_SEGMENTS, RFM_STRATEGIES, CustomerSegmenter, rfm_scores

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
    chart_objects: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.assigned["segment_id"].nunique())

    def add_profiles(self) -> Segmentation:
        """Profiles and box statistics: from the customer table alone."""
        self.profiles = insights.segment_profiles(self.assigned, self.strategies)
        self.box = insights.box_stats(self.assigned)
        return self

    def add_insights(self, transactions: pd.DataFrame, top_n: int = 10) -> Segmentation:
        """Profiles, box statistics, and from the lines: top and distinctive products, monthly trend, cohorts."""
        self.add_profiles()
        stats = insights.product_stats(transactions, self.assigned)  # once for both rankings
        self.top_products = insights.rank_products(stats, n=top_n, by="revenue")
        self.distinctive_products = insights.rank_products(stats, n=top_n, by="lift")
        self.monthly = insights.monthly_trend(transactions, self.assigned)
        self.cohorts = insights.cohort_retention(transactions)
        return self

    def add_migration(self, transactions: pd.DataFrame, date_from, date_to) -> Segmentation:
        """Segments as of ``date_from`` and ``date_to`` with this fitted model (K-means only)."""
        if self.segmenter is None:
            return self
        self.migration, self.movers = insights.segment_migration(transactions, self.segmenter, date_from, date_to)
        self.migration_dates = (str(pd.Timestamp(date_from).date()), str(pd.Timestamp(date_to).date()))
        return self

    def summary(self) -> pd.DataFrame:
        """One line per segment: name, size, revenue share, strategy."""
        profiles = self.profiles if self.profiles is not None else insights.segment_profiles(
            self.assigned, self.strategies)
        return profiles[["segment_id", "segment_name", "customers", "share_customers", "share_revenue",
                         "median_recency_days", "median_frequency", "median_monetary", "strategy"]]

    def build_charts(self) -> dict:
        """The charts of this segmentation, by file stem."""
        from customerlens.outputs import charts  # Altair: imported only when charts are drawn

        out = {}
        if self.segmenter is not None:
            out["elbow"] = charts.elbow_chart(self.segmenter.elbow_, self.segmenter.k_, self.reason)
            order = [self.segmenter.segment_names_[i] for i in range(1, self.segmenter.k_ + 1)]
            Z = self.segmenter.transform(self.assigned)
            out["segments_pca"] = charts.pca_chart(Z, self.assigned["segment_name"].to_numpy(), order)
        if self.profiles is not None:
            out["distribution"] = charts.distribution_chart(self.profiles)
            out["spending"] = charts.spending_chart(self.profiles)
        if self.box is not None and not self.box.empty:
            out["box_plots"] = charts.box_plots(self.box)
        if self.monthly is not None and not self.monthly.empty:
            out["trends"] = charts.trend_chart(self.monthly)
        if self.cohorts is not None and not self.cohorts.empty:
            out["cohorts"] = charts.cohort_heatmap(self.cohorts)
        if self.migration is not None and not self.migration.empty:
            out["segment_migration"] = charts.migration_chart(self.migration, self.migration_dates)
        if self.top_products is not None and not self.top_products.empty:
            out["top_products"] = charts.top_products_chart(self.top_products)
            out["distinctive_products"] = charts.top_products_chart(self.distinctive_products, value="lift")
        self.chart_objects = out
        return out

    def write_charts(self, folder: str | Path) -> dict[str, Path]:
        """Every chart as PNG and SVG in ``folder``."""
        from customerlens.outputs import charts

        folder = Path(folder)
        written = {}
        for stem, chart in (self.chart_objects or self.build_charts()).items():
            paths = charts.save_chart(chart, folder / stem)
            written[f"chart_{stem}"] = paths["png"]
        return written

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables that go to the store."""
        out = {"segments": self.assigned}
        for name in ("profiles", "top_products", "distinctive_products", "monthly", "box", "cohorts", "migration"):
            value = getattr(self, name)
            if value is not None:
                out[{"profiles": "segment_profiles", "monthly": "segment_monthly", "box": "segment_box_stats",
                     "cohorts": "cohort_retention", "migration": "segment_migration"}.get(name, name)] = value
        if self.segmenter is not None:
            out["segment_elbow"] = self.segmenter.elbow_
        return out

    def write_files(self, out_dir: str | Path) -> dict[str, Path]:
        """``segments.csv``, ``segment_profiles.csv``, ``top_products.csv`` (+ model)."""
        out_dir = Path(out_dir)
        written = {}
        files = {"segments": ("segments.csv", self.assigned)}
        if self.profiles is not None:
            files["segment_profiles"] = ("segment_profiles.csv", self.profiles)
        if self.top_products is not None:
            top = self.top_products[["segment_name", "rank", "product_id", "product_name", "revenue", "buyers",
                                     "lift", "segment_id", "share_of_segment"]]
            files["top_products"] = ("top_products.csv", top)
            files["distinctive_products"] = ("distinctive_products.csv", self.distinctive_products)
        if self.cohorts is not None:
            files["cohorts"] = ("cohorts.csv", self.cohorts)
        if self.migration is not None:
            files["segment_migration"] = ("segment_migration.csv", self.migration)
        for key, (name, frame) in files.items():
            written[key] = write_csv_atomic(frame, out_dir / name)
        if self.segmenter is not None:
            written["segmenter"] = self.segmenter.save(out_dir / "segmenter.joblib")
        return written

    def record(self) -> dict:
        """What goes into the run record."""
        rec = {"method": self.method, "k": self.k, "reason": self.reason,
               "segments": {str(i): n for i, n in
                            self.assigned.groupby("segment_id")["segment_name"].first().items()}}
        if self.migration_dates is not None:
            rec["migration"] = {"from": self.migration_dates[0], "to": self.migration_dates[1]}
        if self.segmenter is not None:
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
        :func:`customerlens.spark.kmeans_segmentation`): customers are assigned
        to its segments instead of fitting a new one.
    """
    if method not in METHODS:
        raise CustomerLensError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
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
    for column in ("r_score", "f_score", "m_score", "rfm_score", "rfm_segment"):
        assigned[column] = rfm[column].to_numpy()  # same customer order (both sorted by customer_id)
    strategies = {name: segmenter.strategies_[i] for i, name in segmenter.segment_names_.items()}
    return Segmentation(method="kmeans", assigned=assigned, strategies=strategies,
                        reason=segmenter.k_choice_.reason, segmenter=segmenter)
