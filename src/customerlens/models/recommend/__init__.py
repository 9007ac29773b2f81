"""Recommenders: product recommendations per customer, and the backtest metrics.

One interface for every model (:class:`~customerlens.models.recommend.models.Recommender`):
``fit(interactions)`` on purchases before a date, then ``recommend(customers, n)``
returns the top ``n`` products per customer with scores. The baselines that are
hard to beat in retail (recent popularity, popularity in the customer's
segment, the customer's own most frequent products) sit beside collaborative
models (item-to-item co-purchase kNN, EASE, implicit ALS) and the default
two-stage model. :mod:`~customerlens.models.recommend.backtest` measures them all on
a time-based holdout.
"""

from customerlens.models.recommend.data import Interactions, build_interactions
from customerlens.models.recommend.models import Recommender
from customerlens.models.recommend.registry import MODELS, make_model

__all__ = ["MODELS", "Interactions", "Recommender", "build_interactions", "make_model"]
