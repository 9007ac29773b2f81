"""Insights: what the segments mean, as small pandas tables.

Profiles and box statistics (:mod:`.profiles`), top and distinctive products
(:mod:`.products`), monthly trends and cohorts (:mod:`.trends`), segment
migration (:mod:`.migration`), value per segment (:mod:`.value`), the action
plan and target lists (:mod:`.plan`), and :class:`.segmentation.Segmentation`,
which runs a segmentation model and gathers these tables for one snapshot.

May import: ``customerlens.core``, ``errors``, ``features``, ``models``. Never
``outputs``, ``pipeline``, ``api`` or ``cli``: nothing here writes a file or
draws a chart.
"""

from customerlens.insights.migration import NOT_YET, segment_migration
from customerlens.insights.plan import action_plan, action_plan_markdown, target_list
from customerlens.insights.products import product_stats, rank_products, top_products
from customerlens.insights.profiles import PROFILE_FEATURES, box_stats, segment_profiles
from customerlens.insights.segmentation import METHODS, Segmentation, segment_customers
from customerlens.insights.trends import cohort_retention, monthly_trend, retention_matrix
from customerlens.insights.value import probability_stats, value_by_segment, with_segment

__all__ = [
    "METHODS", "NOT_YET", "PROFILE_FEATURES", "Segmentation", "action_plan", "action_plan_markdown", "box_stats",
    "cohort_retention", "monthly_trend", "probability_stats", "product_stats", "rank_products", "retention_matrix",
    "segment_customers", "segment_migration", "segment_profiles", "target_list", "top_products", "value_by_segment",
    "with_segment",
]
