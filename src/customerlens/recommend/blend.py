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

from .data import Interactions
from .models import EASE, PersonalFrequency, Recommender

WEIGHTS = (0.0, 0.03, 0.1, 0.3, 1.0)
DEFAULT_WEIGHT = 0.1  # when the inner window cannot tell the weights apart


class Blend(Recommender):
    """Personal frequency + w x EASE, w chosen on an inner validation window."""

    name = "blend"

    def __init__(self, weight: float | None = None, weights: tuple[float, ...] = WEIGHTS,
                 validation_days: int = 90, l2: float = 250.0):
        self.weight = weight
        self.weights = weights
        self.validation_days = validation_days
        self.l2 = l2

    def _fit(self, data: Interactions, segments):
        self.validation_ = {}
        if self.weight is None:
            self.weight_ = self._choose_weight(data)
        else:
            self.weight_ = float(self.weight)
        self.personal_ = PersonalFrequency().fit(data)
        self.ease_ = EASE(self.l2).fit(data)

    def _choose_weight(self, data: Interactions) -> float:
        from .backtest import evaluate, make_holdout

        if data.lines is None:
            return DEFAULT_WEIGHT
        inner_as_of = data.as_of - dt.timedelta(days=self.validation_days)
        earlier = data.lines[data.lines["order_date"] < pd.Timestamp(inner_as_of)]
        if earlier.empty:
            return DEFAULT_WEIGHT
        holdout = make_holdout(data.lines, data.lines, inner_as_of)
        if len(holdout.test_rows) == 0:
            return DEFAULT_WEIGHT
        personal = PersonalFrequency().fit(holdout.train)
        ease = EASE(self.l2).fit(holdout.train)
        scores = {}
        for w in self.weights:
            model = _Fixed(personal, ease, w).fit(holdout.train)
            items, _ = model.recommend(holdout.test_rows, n=10)
            scores[w] = evaluate(items, holdout, 10)["ndcg@10"]
        self.validation_ = {"inner_as_of": inner_as_of.isoformat(), "ndcg@10_by_weight": scores}
        best = max(scores.values())
        tied = [w for w in scores if scores[w] >= best - 1e-9]
        return min(tied, key=lambda w: abs(w - DEFAULT_WEIGHT))

    def score(self, rows):
        return _blend(self.personal_, self.ease_, self.weight_, rows)


class _Fixed(Recommender):
    name = "_fixed"

    def __init__(self, personal, ease, weight):
        self.personal, self.ease, self.weight = personal, ease, weight

    def _fit(self, data, segments):
        pass

    def score(self, rows):
        return _blend(self.personal, self.ease, self.weight, rows)


def _blend(personal: PersonalFrequency, ease: EASE, weight: float, rows: np.ndarray) -> np.ndarray:
    own = personal.scores_[rows].toarray()
    if weight == 0:
        return np.where(own > 0, own, -np.inf)
    co = ease.score(rows)
    top = np.abs(co).max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return own + weight * co / top
