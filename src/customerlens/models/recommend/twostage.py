"""The default recommender: candidates, then a learned ranker (LightGBM LambdaRank).

Stage 1 gathers candidates per customer: every product they bought before,
the top products by item-to-item co-purchase score, and the recently popular
ones. Stage 2 ranks them with a LambdaRank model over features of the
customer, the product and the pair: how many orders contained it, days since
the customer last and first bought it, their rhythm for it (mean days between
its orders, and how overdue it is), the customer's orders and recency, the
product's recent and overall buyers, and the co-purchase and EASE scores.

The ranker learns on an inner split *inside the training data*: features as of
``validation_days`` before the snapshot, labels = the products each customer
bought in those last days. The test window is never seen, and the labels of
the inner split never overlap the lines its features come from.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from customerlens.core.memory import batch_rows
from customerlens.models.recommend.data import Interactions, build_interactions
from customerlens.models.recommend.models import EASE, ItemKNN, Recommender

FEATURES = ("orders", "last_days", "first_days", "interval", "overdue", "share", "user_orders",
            "user_last_days", "item_recent_buyers", "item_buyers", "knn", "ease", "is_repeat",
            "item_rank_recent")


class TwoStage(Recommender):
    """Repeat and co-purchase candidates ranked by LightGBM LambdaRank (the default model)."""

    name = "two_stage"

    def __init__(self, knn_candidates: int = 50, popular_candidates: int = 20, validation_days: int = 90,
                 n_estimators: int = 300, learning_rate: float = 0.05, num_leaves: int = 31,
                 min_child_samples: int = 50, features: tuple[str, ...] = FEATURES, random_state: int = 42):
        self.knn_candidates = knn_candidates
        self.popular_candidates = popular_candidates
        self.validation_days = validation_days
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.features = features
        self.random_state = random_state

    # -- learning
    def _fit(self, data: Interactions, segments):
        import lightgbm as lgb

        if data.lines is None:
            raise ValueError("two_stage needs the purchase lines (build_interactions keeps them)")
        inner_as_of = data.as_of - dt.timedelta(days=self.validation_days)
        inner = build_interactions(data.lines, inner_as_of)
        window = data.lines[data.lines["order_date"] >= pd.Timestamp(inner_as_of)]
        labels = set(zip(window["customer_id"], window["product_id"], strict=True))
        rows = np.array([inner.customer_index[c] for c in window["customer_id"].unique()
                         if c in inner.customer_index], dtype=np.int64)
        helpers = self._helpers(inner)
        pairs, X = self._candidates(inner, helpers, np.sort(rows))
        y = np.fromiter(((inner.customers[r], inner.products[i]) in labels for r, i in pairs), dtype=np.int8,
                        count=len(pairs))
        # rank only where something is to be learned: customers with a positive candidate
        pos_rows = np.unique(pairs[y == 1, 0])
        keep = np.isin(pairs[:, 0], pos_rows)
        pairs, X, y = pairs[keep], X[keep], y[keep]
        group = np.unique(pairs[:, 0], return_counts=True)[1]
        self.ranker_ = lgb.LGBMRanker(
            objective="lambdarank", n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            num_leaves=self.num_leaves, min_child_samples=self.min_child_samples, subsample=0.8, subsample_freq=1,
            colsample_bytree=0.8, random_state=self.random_state, n_jobs=2, verbose=-1,
            lambdarank_truncation_level=20,
        )
        self.ranker_.fit(self._frame(X), y, group=group)
        self.training_ = {"inner_as_of": inner_as_of.isoformat(), "customers": int(len(group)),
                          "candidates": int(len(y)), "positives": int(y.sum())}
        self.helpers_ = self._helpers(data)

    def _helpers(self, data: Interactions) -> dict:
        return {"knn": ItemKNN().fit(data), "ease": EASE().fit(data)}

    def _candidates(self, data: Interactions, helpers: dict, rows: np.ndarray):
        """Candidate (row, product) pairs of ``rows`` and their feature matrix, in batches of rows.

        Each batch holds a few dense rows x products blocks, so a batch is as many rows as
        fit in :data:`~customerlens.core.memory.BATCH_BYTES` per block.
        """
        step = batch_rows(data.n_products, arrays=2)
        parts = [self._candidate_batch(data, helpers, rows[start: start + step])
                 for start in range(0, len(rows), step)]
        if not parts:
            return np.empty((0, 2), dtype=np.int64), np.empty((0, len(FEATURES)), dtype=np.float32)
        return np.concatenate([p for p, _ in parts]), np.concatenate([x for _, x in parts])

    def _candidate_batch(self, data: Interactions, helpers: dict, rows: np.ndarray):
        knn = helpers["knn"].score(rows)
        ease = helpers["ease"].score(rows)  # -inf outside EASE's products on large catalogues: missing
        orders = data.orders[rows].toarray()
        popular = np.argsort(-data.product_buyers_recent, kind="stable")[: self.popular_candidates]
        n_items = data.n_products
        cand = orders > 0
        k = min(self.knn_candidates, n_items - 1)
        masked = np.where(cand, -np.inf, knn)
        top = np.argpartition(-masked, k, axis=1)[:, :k]
        np.put_along_axis(cand, top, True, axis=1)
        cand[:, popular] = True
        r_local, items = np.nonzero(cand)
        pairs = np.column_stack([rows[r_local], items])
        last = data.last_days[rows].toarray()[r_local, items]
        first = data.first_days[rows].toarray()[r_local, items]
        count = orders[r_local, items]
        bought = count > 0
        last = np.where(bought, last, np.nan)
        first = np.where(bought, first, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            interval = np.where(count > 1, (first - last) / (count - 1), np.nan)
            overdue = last / interval
        user_orders = data.customer_orders[rows][r_local].astype(float)
        item_buyers = np.asarray((data.orders > 0).sum(axis=0)).ravel()
        rank_recent = np.empty(n_items)
        rank_recent[np.argsort(-data.product_buyers_recent, kind="stable")] = np.arange(n_items)
        X = np.column_stack([
            count, last, first, interval, overdue, count / user_orders, user_orders,
            data.customer_last_days[rows][r_local], data.product_buyers_recent[items], item_buyers[items],
            knn[r_local, items], _missing_if_infinite(ease[r_local, items]), bought.astype(float),
            rank_recent[items],
        ]).astype(np.float32)
        return pairs, X

    def _frame(self, X: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(X, columns=FEATURES)[list(self.features)]

    # -- scoring
    def score(self, rows):
        """Ranker scores of each row's candidates; ``-inf`` for products that are not candidates."""
        rows = np.asarray(rows)
        pairs, X = self._candidates(self.data_, self.helpers_, rows)
        s = np.full((len(rows), self.data_.n_products), -np.inf)
        if len(pairs):
            pred = self.ranker_.predict(self._frame(X))
            local = np.searchsorted(rows, pairs[:, 0]) if np.all(np.diff(rows) > 0) else \
                pd.Index(rows).get_indexer(pairs[:, 0])
            s[local, pairs[:, 1]] = pred
        return s


def _missing_if_infinite(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, np.nan)
