"""A learned ranker over candidates (LightGBM LambdaRank): ``two_stage``.

Stage 1 gathers candidates per customer: every product they bought before, the 50 best new
products by item-to-item co-purchase and the 50 best by EASE, and the 30 recently most popular.
Stage 2 ranks them with a LambdaRank model over features of the customer, the product and the pair:
the product's rank in the customer's own personal-frequency list (by far the strongest: about half
the gain), how many orders contained it, days since the customer last and first bought it, their
rhythm for it (mean days between its orders, and how overdue it is), the customer's orders and
recency, the product's recent and overall buyers and popularity rank, the co-purchase and EASE
scores and ranks.

The ranker learns on five inner cuts *inside the training data* (45, 60, 75, 90 and 105 days before
the snapshot): features as of each cut, labels = the products each customer bought in the 45 days
after it. Every label window ends before the snapshot, so the test window is never seen, and labels
never overlap the lines their features come from. A small model (100 trees of 7 leaves, at least 500
candidates a leaf) generalises best: on Online Retail (cut 2011-09-09) NDCG@10 0.3850 against
0.3707 with 300 trees of 31 leaves and 0.3655 with one 90-day inner window (docs/recommendations.md).
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
            "item_rank_recent", "own_rank", "knn_rank", "ease_rank")
#: inner cuts (days before the snapshot) the ranker learns from, each labelled by the next label_days
CUTS = (45, 60, 75, 90, 105)


class TwoStage(Recommender):
    """Repeat and co-purchase candidates ranked by LightGBM LambdaRank."""

    name = "two_stage"

    def __init__(self, knn_candidates: int = 50, ease_candidates: int = 50, popular_candidates: int = 30,
                 cuts: tuple[int, ...] = CUTS, label_days: int = 45,
                 n_estimators: int = 100, learning_rate: float = 0.05, num_leaves: int = 7,
                 min_child_samples: int = 500, features: tuple[str, ...] = FEATURES, random_state: int = 42):
        self.knn_candidates = knn_candidates
        self.ease_candidates = ease_candidates
        self.popular_candidates = popular_candidates
        self.cuts = cuts
        self.label_days = label_days
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
        parts, cuts = [], []
        for days in self.cuts:
            part = self._inner_cut(data, days)
            if part is not None:
                parts.append(part)
                cuts.append(days)
        if not parts:
            raise ValueError("two_stage: no inner cut has purchases on both sides (the history is too short)")
        X = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        group = np.concatenate([p[2] for p in parts])
        self.ranker_ = lgb.LGBMRanker(
            objective="lambdarank", n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            num_leaves=self.num_leaves, min_child_samples=self.min_child_samples, subsample=0.8, subsample_freq=1,
            colsample_bytree=0.8, random_state=self.random_state, n_jobs=2, verbose=-1,
            lambdarank_truncation_level=20,
        )
        self.ranker_.fit(self._frame(X), y, group=group)
        self.training_ = {"cuts_days_before": cuts, "label_days": self.label_days, "queries": int(len(group)),
                          "candidates": int(len(y)), "positives": int(y.sum())}
        self.helpers_ = self._helpers(data)

    def _inner_cut(self, data: Interactions, days: int):
        """Features as of ``days`` before the snapshot, labels = what was bought in the next ``label_days``.

        The label window ends before the snapshot, and never overlaps the history the features read.
        """
        inner_as_of = data.as_of - dt.timedelta(days=days)
        lines = data.lines
        if not (lines["order_date"] < pd.Timestamp(inner_as_of)).any():
            return None
        inner = build_interactions(lines, inner_as_of)
        until = min(pd.Timestamp(inner_as_of) + pd.Timedelta(days=self.label_days), pd.Timestamp(data.as_of))
        window = lines[(lines["order_date"] >= pd.Timestamp(inner_as_of)) & (lines["order_date"] < until)]
        labels = set(zip(window["customer_id"], window["product_id"], strict=True))
        rows = np.array([inner.customer_index[c] for c in window["customer_id"].unique()
                         if c in inner.customer_index], dtype=np.int64)
        if not len(rows):
            return None
        pairs, X = self._candidates(inner, self._helpers(inner), np.sort(rows))
        y = np.fromiter(((inner.customers[r], inner.products[i]) in labels for r, i in pairs), dtype=np.int8,
                        count=len(pairs))
        # rank only where something is to be learned: customers with a positive candidate
        keep = np.isin(pairs[:, 0], np.unique(pairs[y == 1, 0]))
        pairs, X, y = pairs[keep], X[keep], y[keep]
        return X, y, np.unique(pairs[:, 0], return_counts=True)[1]

    def _helpers(self, data: Interactions) -> dict:
        return {"knn": ItemKNN().fit(data), "ease": EASE().fit(data)}

    def _candidates(self, data: Interactions, helpers: dict, rows: np.ndarray):
        """Candidate (row, product) pairs of ``rows`` and their feature matrix, in batches of rows.

        Each batch holds a few dense rows x products blocks, so a batch is as many rows as
        fit in :data:`~customerlens.core.memory.BATCH_BYTES` per block.
        """
        # what every batch reads about the products: computed once, not per batch
        order_recent = np.argsort(-data.product_buyers_recent, kind="stable")
        products = {"popular": order_recent[: self.popular_candidates],
                    "rank_recent": np.empty(data.n_products),
                    "buyers": np.diff(data.orders.tocsc().indptr),
                    "recent_share": data.product_buyers_recent / (data.product_buyers_recent.max() + 1.0)}
        products["rank_recent"][order_recent] = np.arange(data.n_products)
        step = batch_rows(data.n_products, arrays=2)
        parts = [self._candidate_batch(data, helpers, products, rows[start: start + step])
                 for start in range(0, len(rows), step)]
        if not parts:
            return np.empty((0, 2), dtype=np.int64), np.empty((0, len(FEATURES)), dtype=np.float32)
        return np.concatenate([p for p, _ in parts]), np.concatenate([x for _, x in parts])

    def _candidate_batch(self, data: Interactions, helpers: dict, products: dict, rows: np.ndarray):
        knn = helpers["knn"].score(rows)
        ease = helpers["ease"].score(rows)  # -inf outside EASE's products on large catalogues: missing
        orders = data.orders[rows].toarray()
        cand = orders > 0
        owned = cand.copy()
        knn_rank = _top_ranks(np.where(owned, -np.inf, knn), self.knn_candidates)
        ease_rank = _top_ranks(np.where(owned, -np.inf, ease), self.ease_candidates)
        cand |= (knn_rank < self.knn_candidates) | (ease_rank < self.ease_candidates)
        cand[:, products["popular"]] = True
        # the customer's own products in personal-frequency order (orders, ties to the recently popular):
        # the strongest single signal of what is bought again
        own_rank = _top_ranks(np.where(owned, orders + 0.5 * products["recent_share"], -np.inf),
                              int(owned.sum(axis=1).max(initial=0)))
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
        X = np.column_stack([
            count, last, first, interval, overdue, count / user_orders, user_orders,
            data.customer_last_days[rows][r_local], data.product_buyers_recent[items], products["buyers"][items],
            knn[r_local, items], _missing_if_infinite(ease[r_local, items]), bought.astype(float),
            products["rank_recent"][items], np.where(bought, own_rank[r_local, items], np.nan),
            np.where(bought, np.nan, knn_rank[r_local, items]), np.where(bought, np.nan, ease_rank[r_local, items]),
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


def _top_ranks(scores: np.ndarray, k: int) -> np.ndarray:
    """Rank (0 = best) of each row's ``k`` best finite entries, ties to the lower index; the others ``n``.

    Only the top ``k`` are sorted (``argpartition`` first): a full sort of rows as wide as a
    70,000-product catalogue would cost more than the ranker.
    """
    n_rows, n = scores.shape
    ranks = np.full(scores.shape, n, dtype=np.int64)
    k = min(k, n)
    if k <= 0 or n_rows == 0:
        return ranks
    # the k best of each row, ties at the k-th value to the lower index (as a full stable sort would)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]
    above, tied = scores > kth, scores == kth
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= k - above.sum(axis=1, keepdims=True)))
    top = np.nonzero(chosen)[1].reshape(n_rows, k)
    values = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -values), axis=1)
    top, values = np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
    rank = np.broadcast_to(np.arange(k), top.shape)
    finite = np.isfinite(values)
    rows = np.broadcast_to(np.arange(n_rows)[:, None], top.shape)
    ranks[rows[finite], top[finite]] = rank[finite]
    return ranks
