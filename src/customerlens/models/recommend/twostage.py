"""A learned ranker over candidates (LightGBM): ``two_stage``, the default recommender.

Stage 1 gathers candidates per customer: every product they bought before, the 50 best new
products by item-to-item co-purchase and the 50 best by EASE, and the 30 recently most popular.
Stage 2 ranks them with LightGBM (``rank_xendcg``, 50 trees of 7 leaves) over features of the
customer, the product and the pair (:data:`FEATURES`, described in :func:`_history_facts` and
docs/recommendations.md): the product's place in the customer's own personal-frequency list (by
far the strongest) and in their recency-weighted one, how often and how recently they bought it,
their rhythm for it, the customer's rhythm and share of repeats, the product's popularity and
trend, and the co-purchase and EASE scores and ranks.

The ranker learns on five inner cuts *inside the training data* (45, 60, 75, 90 and 105 days before
the snapshot): features as of each cut, labels = the products each customer bought in the 45 days
after it. Every label window ends before the snapshot, so the test window is never seen, and labels
never overlap the lines their features come from. On Online Retail (cut 2011-09-09): NDCG@10 0.3906,
Recall@10 0.1423 (docs/recommendations.md). A history too short to learn from (fewer than
``min_queries`` customers in the inner windows) gives way to the blend, with ``note_`` saying so.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import scipy.sparse as sp

from customerlens.core.memory import batch_rows
from customerlens.core.worker import usable_cores
from customerlens.models.recommend.data import Interactions, distinct_counts, row_of_each
from customerlens.models.recommend.models import EASE, ItemKNN, Recommender

FEATURES = ("orders", "last_days", "first_days", "interval", "overdue", "share", "user_orders",
            "user_last_days", "item_recent_buyers", "item_buyers", "knn", "ease", "is_repeat",
            "item_rank_recent", "own_rank", "knn_rank", "ease_rank",
            "decayed", "item_repeat", "item_trend", "user_gap", "user_overdue", "user_products", "decayed_rank",
            "item_age", "user_repeat", "own_share_rank", "item_trend14", "item_gap", "item_overdue")
#: inner cuts (days before the snapshot) the ranker learns from, each labelled by the next label_days
CUTS = (45, 60, 75, 90, 105)


class TwoStage(Recommender):
    """Repeat and co-purchase candidates ranked by LightGBM LambdaRank."""

    name = "two_stage"

    def __init__(self, knn_candidates: int = 50, ease_candidates: int = 50, popular_candidates: int = 30,
                 cuts: tuple[int, ...] = CUTS, label_days: int = 45,
                 objective: str = "rank_xendcg", n_estimators: int = 50, learning_rate: float = 0.1,
                 num_leaves: int = 7, max_bin: int = 63,
                 min_child_samples: int = 500, max_queries: int = 1000, min_queries: int = 100, features: tuple[str, ...] = FEATURES, random_state: int = 42):
        self.knn_candidates = knn_candidates
        self.ease_candidates = ease_candidates
        self.popular_candidates = popular_candidates
        self.cuts = cuts
        self.label_days = label_days
        self.objective = objective
        self.max_queries = max_queries
        self.min_queries = min_queries
        self.max_bin = max_bin
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.features = features
        self.random_state = random_state

    # -- learning
    def _fit(self, data: Interactions, segments):
        self.learn(data)
        if self.fallback_ is None:
            self.use(data, self.final_weights(data))

    def learn(self, data: Interactions) -> TwoStage:
        """The ranker, learned on the inner cuts of ``data``: :meth:`fit` without the final weights.

        :meth:`use` adds them (from :meth:`final_weights`, which may be computed elsewhere meanwhile:
        a run does it in its own process while a worker process learns); returns self.
        """
        if data.coded is None:
            raise ValueError("two_stage needs the purchase lines' codes (build_interactions keeps them)")
        # who bought in each inner window, first: a history too short to learn from is known before any work
        windows = {days: window for days in self.cuts if (window := self._window(data, days)) is not None}
        self.fallback_ = None
        buyers = sum(len(rows) for _, rows, _ in windows.values())
        if not windows or buyers < self.min_queries:
            return self._fall_back(data, buyers)
        # the co-purchase and EASE weights of the inner cuts are learned once, at the earliest cut
        # (before every label window), and score each cut's histories: one fit instead of five
        earliest = data.as_of - dt.timedelta(days=max(windows))
        shared = self._weights(data.at(earliest))
        # each cut's history is dropped once its candidates are built (pop): one at a time in memory
        parts = {days: self._inner_cut(*windows.pop(days), shared) for days in list(windows)}
        cuts = [days for days, part in parts.items() if part is not None]
        parts = [parts[days] for days in cuts]
        queries = sum(len(p[2]) for p in parts)
        if queries < self.min_queries:
            return self._fall_back(data, queries)
        X = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        group = np.concatenate([p[2] for p in parts])
        self.ranker_ = self._train(X, y, group)
        self.training_ = {"cuts_days_before": cuts, "label_days": self.label_days, "queries": int(len(group)),
                          "candidates": int(len(y)), "positives": int(y.sum())}
        return self

    def _train(self, X: np.ndarray, y: np.ndarray, group: np.ndarray):
        """The LightGBM ranker (a Booster) of candidates ``X``, labels ``y`` and queries' sizes ``group``.

        LightGBM's own API: its scikit-learn wrapper (LGBMRanker) with these settings makes the same
        trees (tested), and a run's worker process imports LightGBM without scikit-learn (lean_lightgbm).
        """
        import lightgbm as lgb  # here, not above: a short history never pays for the import

        params = {
            "objective": self.objective, "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples, "max_bin": self.max_bin, "subsample": 0.8,
            "subsample_freq": 1, "colsample_bytree": 0.8, "random_state": self.random_state,
            "num_threads": 1,  # one thread: the same trees on every machine and in a run's worker process
            # row-wise histograms, chosen without LightGBM's timing of both ways at the start (0.06-0.1 s
            # on Online Retail); on one thread both ways make the same trees (tested)
            "force_row_wise": True,
            "verbose": -1, **({"lambdarank_truncation_level": 20} if self.objective == "lambdarank" else {}),
        }
        train = lgb.Dataset(self._columns(X), y, group=group, feature_name=list(self.features),
                            params={"max_bin": self.max_bin, "verbose": -1})
        return lgb.train(params, train, num_boost_round=self.n_estimators)

    @classmethod
    def final_weights(cls, data: Interactions) -> dict:
        """The co-purchase and EASE weights and the history facts of ``data``, that candidates are scored with."""
        return {**cls._weights(data), "facts": _history_facts(data)}

    def use(self, data: Interactions, weights: dict) -> TwoStage:
        """Recommend for ``data``'s customers with ``weights`` (:meth:`final_weights` of ``data``); returns self."""
        self.data_, self.helpers_ = data, weights
        self.fallback_ = getattr(self, "fallback_", None)
        self.prepared_ = self.discover_picks_ = None
        return self

    def prepare(self, rows: np.ndarray, discover: int = 0) -> TwoStage:
        """The candidates of ``rows`` and their features, now: :meth:`score` takes its rows' from them.

        They need the final weights, not the ranker: a run computes them while its worker process
        is still learning the ranker. A customer's candidates and features are their own (the same
        whichever customers are scored with them), so the lists are the same. ``discover``: also
        keep each row's ``discover`` best new products by EASE (:attr:`discover_picks_`, what
        ``EASE.recommend(rows, discover, exclude_seen=True)`` gives), read off the EASE ranks the
        candidates are chosen by. Returns self.
        """
        rows = np.unique(rows)
        self.discover_picks_ = None
        picks = discover if 0 < discover <= self.ease_candidates else 0  # the ranks must reach that far
        pairs, X = self._candidates(self.data_, self.helpers_, rows, picks)
        self.prepared_ = (rows, pairs, X)
        return self

    def _prepared(self, rows: np.ndarray):
        """The prepared candidates and features of ``rows`` (None when :meth:`prepare` did not cover them)."""
        if getattr(self, "prepared_", None) is None:
            return None
        ready, pairs, X = self.prepared_
        if not np.isin(rows, ready).all():
            return None
        keep = np.isin(pairs[:, 0], rows)
        return pairs[keep], X[keep]

    def _fall_back(self, data: Interactions, queries: int) -> TwoStage:
        from customerlens.models.recommend.blend import Blend

        self.fallback_ = Blend().fit(data)  # the blend reads no segments
        self.note_ = (f"the history is too short for the two-stage ranker to learn from ({queries} customers "
                      f"bought in its inner windows, it needs {self.min_queries}): the blend recommends instead")
        return self

    def _window(self, data: Interactions, days: int):
        """The history as of ``days`` before the snapshot, the customers who bought in the next ``label_days``, and what.

        The label window ends before the snapshot, and never overlaps the history the features read.
        ``None`` when nothing was bought before the cut or nobody known bought in the window.
        """
        inner_as_of = data.as_of - dt.timedelta(days=days)
        coded = data.coded
        if not coded.before(inner_as_of).any():
            return None
        inner = data.at(inner_as_of)
        until = min(pd.Timestamp(inner_as_of) + pd.Timedelta(days=self.label_days), pd.Timestamp(data.as_of))
        window = ~coded.before(inner_as_of) & coded.before(until)
        # labels as (row, product) keys of the inner data: customers new in the window have no row
        customer = coded.customer[window]
        row = np.searchsorted(inner.customer_codes, customer)
        known = row < inner.n_customers
        known[known] = inner.customer_codes[row[known]] == customer[known]
        product = coded.product[window]
        labels = np.unique(row[known].astype(np.int64) * inner.n_products + product[known])
        rows = np.unique(row[known])
        if not len(rows):
            return None
        if len(rows) > self.max_queries:  # a seeded sample bounds the time and memory of learning
            rng = np.random.default_rng([self.random_state, days])
            rows = np.sort(rng.choice(rows, self.max_queries, replace=False))
        return inner, rows, labels

    def _inner_cut(self, inner: Interactions, rows: np.ndarray, labels: np.ndarray, shared: dict):
        """Candidates of ``rows`` in ``inner`` with their features and labels (1: bought in the window)."""
        weights = {name: model.on_history(inner) for name, model in shared.items()}
        pairs, X = self._candidates(inner, {**weights, "facts": _history_facts(inner)}, rows)
        y = np.isin(pairs[:, 0] * inner.n_products + pairs[:, 1], labels).astype(np.int8)
        # rank only where something is to be learned: customers with a positive candidate
        keep = np.isin(pairs[:, 0], np.unique(pairs[y > 0, 0]))
        pairs, X, y = pairs[keep], X[keep], y[keep]
        return X, y, np.unique(pairs[:, 0], return_counts=True)[1]

    @staticmethod
    def _weights(data: Interactions) -> dict:
        if data.n_products > EASE().max_products:  # each starts from a matrix of its own
            return {"knn": ItemKNN().fit(data), "ease": EASE().fit(data)}
        with data.sharing_co_purchases():  # both start from the co-purchase counts: counted once
            return {"knn": ItemKNN().fit(data), "ease": EASE().fit(data)}

    def _candidates(self, data: Interactions, helpers: dict, rows: np.ndarray, picks: int = 0):
        """Candidate (row, product) pairs of ``rows`` and their feature matrix, in batches of rows.

        Each batch holds a few dense rows x products blocks, so a batch is as many rows as
        fit in :data:`~customerlens.core.memory.BATCH_BYTES` per block. ``picks``: each row's best
        ``picks`` new products by EASE, kept as :attr:`discover_picks_` (items, scores).
        """
        step = batch_rows(data.n_products, arrays=2)
        parts = [self._candidate_batch(data, helpers, rows[start: start + step], picks)
                 for start in range(0, len(rows), step)]
        if picks:
            self.discover_picks_ = (np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts])) \
                if parts else (np.empty((0, picks), dtype=np.int64), np.empty((0, picks)))
        if not parts:
            return np.empty((0, 2), dtype=np.int64), np.empty((0, len(FEATURES)), dtype=np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _candidate_batch(self, data: Interactions, helpers: dict, rows: np.ndarray, picks: int = 0):
        facts = helpers["facts"]
        knn = helpers["knn"].score(rows)
        ease = helpers["ease"].score(rows)  # -inf outside EASE's products on large catalogues: missing
        orders = data.orders[rows].toarray()
        owned = orders > 0
        knn_rank = _top_ranks(np.where(owned, -np.inf, knn), self.knn_candidates)
        ease_rank = _top_ranks(np.where(owned, -np.inf, ease), self.ease_candidates)
        extra = _picks(ease, ease_rank, picks) if picks else ()
        cand = owned | (knn_rank < self.knn_candidates) | (ease_rank < self.ease_candidates)
        cand[:, facts["popular"][: self.popular_candidates]] = True
        r, items = np.nonzero(cand)
        pairs = np.column_stack([rows[r], items])
        count = orders[r, items]
        bought = count > 0

        def owned_only(matrix, offset=0.0):
            """A pair fact (``matrix``: the sparsity of ``orders``) of the customer's own products, NaN for others.

            The pairs are in row-major order, so the bought ones are the rows' stored entries, in order.
            """
            out = np.full(len(r), np.nan)
            out[bought] = matrix[rows].data - offset
            return out

        last, first = owned_only(data.last_days), owned_only(data.first_days)
        own_rank = owned_only(facts["own_rank"], 1.0)  # stored 1-based: 0 is "not bought" in a sparse matrix
        user_orders = data.customer_orders[rows][r].astype(float)
        user_products = facts["user_products"][rows][r]
        recent = data.product_buyers_recent[items] + 1.0
        with np.errstate(invalid="ignore", divide="ignore"):
            interval = np.where(count > 1, (first - last) / (count - 1), np.nan)
            columns = {
                "orders": count, "last_days": last, "first_days": first, "interval": interval,
                "overdue": last / interval, "share": count / user_orders, "user_orders": user_orders,
                "user_last_days": data.customer_last_days[rows][r], "item_recent_buyers": recent - 1.0,
                "item_buyers": facts["buyers"][items], "knn": knn[r, items],
                "ease": _missing_if_infinite(ease[r, items]), "is_repeat": bought.astype(float),
                "item_rank_recent": facts["rank_recent"][items], "own_rank": own_rank,
                "knn_rank": np.where(bought, np.nan, knn_rank[r, items]),
                "ease_rank": np.where(bought, np.nan, ease_rank[r, items]),
                "decayed": owned_only(facts["decayed"]), "item_repeat": facts["repeat"][items],
                "item_trend": facts["buyers_30"][items] / recent, "user_gap": facts["user_gap"][rows][r],
                "user_overdue": data.customer_last_days[rows][r] / facts["user_gap"][rows][r],
                "user_products": user_products, "decayed_rank": owned_only(facts["decayed_rank"], 1.0),
                "item_age": facts["item_age"][items], "user_repeat": facts["user_repeat"][rows][r],
                "own_share_rank": own_rank / user_products, "item_trend14": facts["buyers_14"][items] / recent,
                "item_gap": facts["item_gap"][items], "item_overdue": last / facts["item_gap"][items],
            }
        # float32, column by column: the values np.column_stack(...).astype(np.float32) gives (each through
        # float64, as there), without its float64 matrix of every candidate
        X = np.empty((len(r), len(FEATURES)), dtype=np.float32)
        for j, name in enumerate(FEATURES):
            X[:, j] = np.asarray(columns[name], dtype=np.float64)
        return (pairs, X, *extra)

    def _discovery_source(self) -> Recommender:
        """Products new to the customer come from EASE (the ranker spends its places on repeats)."""
        return self.fallback_._discovery_source() if self.fallback_ else self.helpers_["ease"]

    def contribution(self, history, item):
        """EASE's weight from each of the customer's products to ``item`` (for reasons)."""
        return (self.fallback_ or self.helpers_["ease"]).contribution(history, item)

    def contributions(self, history, items):
        """:meth:`contribution` of several ``items`` at once."""
        return (self.fallback_ or self.helpers_["ease"]).contributions(history, items)

    def recommend(self, rows, n=10, exclude_seen=False, batch=2048, discovery=0):
        """As :meth:`Recommender.recommend`; the blend's lists when the history was too short to learn from."""
        if getattr(self, "fallback_", None) is not None:  # not fitted: the base class says so
            return self.fallback_.recommend(rows, n=n, exclude_seen=exclude_seen, batch=batch, discovery=discovery)
        return super().recommend(rows, n=n, exclude_seen=exclude_seen, batch=batch, discovery=discovery)

    def _columns(self, X: np.ndarray) -> np.ndarray:
        """The columns of the features the ranker uses (all by default), as one array (no DataFrame copy)."""
        if tuple(self.features) == FEATURES:
            return X
        return X[:, [FEATURES.index(name) for name in self.features]]

    # -- scoring
    def score(self, rows):
        """Ranker scores of each row's candidates; ``-inf`` for products that are not candidates."""
        if self.fallback_ is not None:
            return self.fallback_.score(rows)
        rows = np.asarray(rows)
        pairs, X = self._prepared(rows) or self._candidates(self.data_, self.helpers_, rows)
        s = np.full((len(rows), self.data_.n_products), -np.inf)
        if len(pairs):
            # every core: each candidate's score is its own (the same on one thread or many), and the
            # lists come when a run's worker process has finished learning
            pred = self.ranker_.predict(self._columns(X), num_threads=usable_cores())
            local = np.searchsorted(rows, pairs[:, 0]) if np.all(np.diff(rows) > 0) else \
                pd.Index(rows).get_indexer(pairs[:, 0])
            s[local, pairs[:, 1]] = pred
        return s


def _history_facts(data: Interactions, half_life: float = 60.0) -> dict:
    """What the candidate features read about products, customers and pairs, computed once per data.

    Pairs (sparse, the sparsity of ``orders``): ``decayed`` weighs every order of a product by
    ``0.5 ** (age / half_life)``; ``own_rank`` is the product's place (1 = first) in the customer's
    personal-frequency list (orders, ties to the recently popular), ``decayed_rank`` the same by
    ``decayed``. Products: ``popular`` (by recent buyers, best first), ``rank_recent``, ``buyers``,
    buyers in the last 30 and 14 days, ``repeat`` (share of its buyers who bought it twice),
    ``item_gap`` (median days between two orders of one customer), ``item_age`` (days since its
    first sale). Customers: ``user_gap`` (mean days between orders; NaN for one order),
    ``user_products`` and ``user_repeat`` (share of their product purchases that were repeats).
    """
    coded = data.coded
    keep = coded.before(data.as_of)
    c, p, o, when = coded.customer[keep], coded.product[keep], coded.order[keep], coded.when[keep]
    # each (customer, product, order) once, its first line's date, in the lines' order
    row = np.searchsorted(data.customer_codes, c)  # each line's row
    triple = _first_of_each(c, p, o)
    ci = row[triple]
    pi = p[triple]
    age = coded.days_before(data.as_of, when[triple])
    decayed = sp.csr_matrix((0.5 ** (age / half_life), (ci, pi)), shape=data.orders.shape)
    decayed.sum_duplicates()

    def buyers_within(days):
        window = age < days
        return distinct_counts(pi[window], ci[window], data.n_products).astype(float)

    popular = np.argsort(-data.product_buyers_recent, kind="stable")
    rank_recent = np.empty(data.n_products)
    rank_recent[popular] = np.arange(data.n_products)
    recent_share = data.product_buyers_recent / (data.product_buyers_recent.max() + 1.0)
    by_product = data.orders.tocsc()
    buyers = np.diff(by_product.indptr)
    # each pair's mean days between its orders (for two orders or more), then the product's median
    gaps = data.first_days.tocsc()  # the sparsity of orders and last_days
    column = row_of_each(gaps)  # each entry's product (gaps is CSC)
    repeated = by_product.data > 1
    gap = (gaps.data - data.last_days.tocsc().data)[repeated] / (by_product.data[repeated] - 1)
    item_gap = _medians(gap, column[repeated], data.n_products)
    first_sale = np.full(data.n_products, np.iinfo(np.int64).max)
    np.minimum.at(first_sale, p, when)
    first_order = np.full(data.n_customers, np.iinfo(np.int64).max)
    np.minimum.at(first_order, row, when)
    tenure = coded.days_before(data.as_of, first_order) - data.customer_last_days
    sold = first_sale < np.iinfo(np.int64).max
    item_age = np.full(data.n_products, np.nan)
    item_age[sold] = coded.days_before(data.as_of, first_sale[sold])
    user_products = np.diff(data.orders.indptr).astype(float)
    purchases = np.asarray(data.orders.sum(axis=1)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        user_gap = np.where(data.customer_orders > 1, tenure / (data.customer_orders - 1), np.nan)
        user_repeat = (purchases - user_products) / purchases
        repeat = np.diff((by_product >= 2).indptr) / np.maximum(buyers, 1)
    return {
        "decayed": decayed,
        "own_rank": _row_ranks(data.orders, 0.5 * recent_share),
        "decayed_rank": _row_ranks(decayed, 1e-6 * recent_share),
        "popular": popular, "rank_recent": rank_recent, "buyers": buyers.astype(float), "repeat": repeat,
        "buyers_30": buyers_within(30), "buyers_14": buyers_within(14), "item_gap": item_gap,
        "item_age": item_age,
        "user_gap": user_gap, "user_products": user_products, "user_repeat": user_repeat,
    }


def _first_of_each(*codes: np.ndarray) -> np.ndarray:
    """The positions of the first of each distinct combination of ``codes``, in order (``drop_duplicates``)."""
    order = np.lexsort(codes[::-1])  # stable: the first of equal keys stays first
    repeat = np.ones(len(order), dtype=bool)  # the same combination as the one before
    for code in codes:
        values = code[order]
        repeat[1:] &= values[1:] == values[:-1]
    repeat[:1] = False
    return np.sort(order[~repeat])


def _medians(values: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """The median of ``values`` in each of ``n`` groups (NaN for an empty group), one sort for all."""
    order = np.lexsort((values, group))
    values, group = values[order], group[order]
    counts = np.bincount(group, minlength=n)
    start = np.r_[0, np.cumsum(counts)[:-1]]
    out = np.full(n, np.nan)
    has = counts > 0
    low, high = start + (counts - 1) // 2, start + counts // 2
    out[has] = (values[low[has]] + values[high[has]]) / 2
    return out


def _row_ranks(matrix: sp.csr_matrix, bonus: np.ndarray) -> sp.csr_matrix:
    """1 + the place of each stored entry in its row, by value + ``bonus`` of its column (ties to the lower column).

    The sparsity of ``matrix``: a row's products are sorted among themselves only.
    """
    m = matrix.tocsr()
    m.sort_indices()
    row = row_of_each(m)
    order = np.lexsort((m.indices, -(m.data + bonus[m.indices]), row))
    place = np.empty(m.nnz)
    place[order] = np.arange(m.nnz) - m.indptr[row[order]]
    return sp.csr_matrix((place + 1.0, m.indices.copy(), m.indptr.copy()), shape=m.shape)


def _picks(scores: np.ndarray, ranks: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``n`` best products by ``ranks`` (:func:`_top_ranks` of ``scores``): items (-1: none) and scores.

    What ``Recommender.recommend(rows, n, exclude_seen=True)`` gives for the same scores: the same
    order (ties to the lower index), float64 scores, ``-1`` and ``-inf`` where a row has fewer.
    """
    items = np.full((len(ranks), n), -1, dtype=np.int64)
    values = np.full((len(ranks), n), -np.inf)
    r, c = np.nonzero(ranks < n)
    items[r, ranks[r, c]] = c
    values[r, ranks[r, c]] = scores[r, c]
    return items, values


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
    need = k - above.sum(axis=1)
    chosen = above | tied
    # where more than the places left tie at the k-th value, the lower indexes take them (few rows: real ties)
    over = np.nonzero(tied.sum(axis=1) > need)[0]
    if len(over):
        ties = tied[over]
        chosen[over] = above[over] | (ties & (np.cumsum(ties, axis=1) <= need[over, None]))
    top = np.nonzero(chosen)[1].reshape(n_rows, k)
    values = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -values), axis=1)
    top, values = np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)
    rank = np.broadcast_to(np.arange(k), top.shape)
    finite = np.isfinite(values)
    rows = np.broadcast_to(np.arange(n_rows)[:, None], top.shape)
    ranks[rows[finite], top[finite]] = rank[finite]
    return ranks
