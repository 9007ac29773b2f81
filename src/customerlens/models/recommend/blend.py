"""The default recommender: the customer's own products, with co-purchase discovery blended in.

``score = personal frequency + w * EASE score (scaled to the customer's best)``:
the customer's repeat purchases lead (counts of orders, ties to the recently
popular), and EASE's item-to-item weights re-order near-ties and fill the list
with products bought together with theirs when their own history is short.
The weight ``w`` is chosen on an inner split *inside the training data*
(features as of ``validation_days`` before the snapshot, labels = what each
customer bought in those last days), never on the test window.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import scipy.sparse as sp

from customerlens.models.recommend.data import Interactions
from customerlens.models.recommend.models import (
    EASE,
    MAX_DENSE_PRODUCTS,
    ItemKNN,
    PersonalFrequency,
    Recommender,
)

WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0)
#: Above this many products EASE's dense item x item inverse is replaced by
#: sparse top-K co-purchase neighbours (ItemKNN), and scoring stays sparse.
DENSE_LIMIT = MAX_DENSE_PRODUCTS
DEFAULT_WEIGHT = 0.1  # when the inner window cannot tell the weights apart


class Blend(Recommender):
    """Personal frequency + w x EASE, w chosen on an inner validation window."""

    name = "blend"

    def __init__(self, weight: float | None = None, weights: tuple[float, ...] = WEIGHTS,
                 validation_days: int = 90, l2: float = 250.0, dense_limit: int = DENSE_LIMIT,
                 validation_customers: int = 20_000, random_state: int = 42):
        self.weight = weight
        self.weights = weights
        self.validation_days = validation_days
        self.l2 = l2
        self.dense_limit = dense_limit
        self.validation_customers = validation_customers
        self.random_state = random_state

    def _fit(self, data: Interactions, segments):
        self.validation_ = {}
        if self.weight is None:
            self.weight_ = self._choose_weight(data)
        else:
            self.weight_ = float(self.weight)
        self.personal_ = PersonalFrequency().fit(data)
        self.co_ = self._co_model(data).fit(data)

    def _co_model(self, data: Interactions) -> Recommender:
        return EASE(self.l2) if data.n_products <= self.dense_limit else ItemKNN(implicit_above=self.dense_limit)

    def _sparse(self) -> bool:
        return isinstance(getattr(self, "co_", None), ItemKNN)

    def contribution(self, history, item):
        """How much each of the customer's products adds to ``item``'s co-purchase score (for reasons)."""
        return self.co_.contribution(history, item)

    def contributions(self, history, items):
        """:meth:`contribution` of several ``items`` at once."""
        return self.co_.contributions(history, items)

    def _discovery_source(self) -> Recommender:
        # among products new to a customer the blend's order is the co-purchase order,
        # also when the inner window chose w = 0
        return self.co_

    def score_sparse(self, rows):
        """Sparse scores of ``rows`` for large catalogues: personal frequency + w x co-purchase (ItemKNN)."""
        return _blend_sparse(self.personal_, self.co_, self.weight_, rows)

    def _choose_weight(self, data: Interactions) -> float:
        from customerlens.models.recommend.backtest import evaluate, make_holdout

        if data.lines is None:
            return DEFAULT_WEIGHT
        inner_as_of = data.as_of - dt.timedelta(days=self.validation_days)
        earlier = data.lines[data.lines["order_date"] < pd.Timestamp(inner_as_of)]
        if earlier.empty:
            return DEFAULT_WEIGHT
        holdout = make_holdout(data.lines, data.lines, inner_as_of)
        if len(holdout.test_rows) == 0:
            return DEFAULT_WEIGHT
        if len(holdout.test_rows) > self.validation_customers:
            # the weights are compared on a seeded sample of the inner test customers
            rng = np.random.default_rng(self.random_state)
            keep = np.sort(rng.choice(len(holdout.test_rows), self.validation_customers, replace=False))
            holdout.test_rows = holdout.test_rows[keep]
            holdout.relevant = holdout.relevant[keep]
            holdout.n_relevant = holdout.n_relevant[keep]
        personal = PersonalFrequency().fit(holdout.train)
        co = self._co_model(holdout.train).fit(holdout.train)
        scores = {}
        for w in self.weights:
            model = _Fixed(personal, co, w).fit(holdout.train)
            items, _ = model.recommend(holdout.test_rows, n=10)
            scores[w] = evaluate(items, holdout, 10)["ndcg@10"]
        self.validation_ = {"inner_as_of": inner_as_of.isoformat(), "ndcg@10_by_weight": scores}
        best = max(scores.values())
        tied = [w for w in scores if scores[w] >= best - 1e-9]
        return min(tied, key=lambda w: abs(w - DEFAULT_WEIGHT))

    def score(self, rows):
        """Scores of ``rows``: personal frequency + w x co-purchase score, scaled to each customer's best."""
        return _blend(self.personal_, self.co_, self.weight_, rows)


class _Fixed(Recommender):
    name = "_fixed"

    def __init__(self, personal, co, weight):
        self.personal, self.co, self.weight = personal, co, weight

    def _fit(self, data, segments):
        pass

    def _sparse(self) -> bool:
        return isinstance(self.co, ItemKNN)

    def score(self, rows):
        return _blend(self.personal, self.co, self.weight, rows)

    def score_sparse(self, rows):
        return _blend_sparse(self.personal, self.co, self.weight, rows)


def _blend(personal: PersonalFrequency, co: Recommender, weight: float, rows: np.ndarray) -> np.ndarray:
    own = personal.scores_[rows].toarray()
    if weight == 0:
        return np.where(own > 0, own, -np.inf)
    scores = co.score(rows)
    top = np.abs(scores).max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return own + weight * scores / top


def _blend_sparse(personal: PersonalFrequency, co: ItemKNN, weight: float, rows: np.ndarray) -> sp.csr_matrix:
    own = personal.scores_[rows]
    if weight == 0:
        return own.tocsr()
    scores = co.score_sparse(rows).tocsr()
    top = scores.max(axis=1).toarray().ravel()
    top[top == 0] = 1.0
    return (own + sp.diags(weight / top) @ scores).tocsr()
