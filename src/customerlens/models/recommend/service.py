"""Recommendations for every customer, with reasons, and the backtest in one call."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from customerlens.core.threads import one_blas_thread
from customerlens.models.recommend.data import Interactions, build_interactions
from customerlens.models.recommend.models import EASE, Recommender
from customerlens.models.recommend.registry import make_model
from customerlens.models.recommend.twostage import TwoStage

DEFAULT_MODEL = "two_stage"
#: what ``run`` uses unless told otherwise: the default model where it runs in bounded time, else the blend
AUTO = "auto"
#: above this many products, or customers x products, the two-stage ranker's dense candidate work
#: takes more than twice the blend's (grocery shape, 72,811 products: a 103.5 s run against 44.6 s):
#: ``auto`` takes the blend (sparse on large catalogues) instead, and the run record says so
TWO_STAGE_PRODUCTS = 20_000
TWO_STAGE_CELLS = 2_000_000_000
#: The two lists every customer gets: ``top`` (most likely next purchases, repeats included, judged on
#: NDCG and Recall) and ``discover`` (products new to the customer, judged on new-item recall).
LISTS = ("top", "discover")
#: Columns of both lists together (``recommendations.csv``)
COLUMNS = ("customer_id", "list", "rank", "product_id", "product_name", "score", "reason")
BASELINES = ("popularity", "segment_popularity", "personal_frequency")
COLLABORATIVE = ("item_knn", "ease", "als")
#: the backtest scores the default model with this many discovery places too when asked (0: not by
#: default; the discover list is the place for new products)
DISCOVERY_ROW = 0


class Recommendations:
    """A fitted model over the purchase history, ready to recommend with reasons."""

    def __init__(self, model: Recommender, data: Interactions, segments: dict | None = None, note: str = ""):
        self.model = model
        self.note = note  # why the model is not the one asked for, when it is not
        self.data = data
        self.segments = segments or {}
        # what explains a discovery: the model's own co-purchase part, else EASE
        explains = type(model).contribution is not Recommender.contribution
        self._co = model if explains else EASE().fit(data)
        self._fallback = make_model("segment_popularity").fit(data, segments=self.segments)
        self.prepared_discover: tuple[int, pd.DataFrame] | None = None  # n and the discover list made ahead

    def for_customers(self, customer_ids: Any = None, n: int = 10, exclude_seen: bool = False,
                      discovery: int = 0) -> pd.DataFrame:
        """The ``top`` list: ``customer_id, rank, product_id, product_name, score, reason`` for known customers.

        The most likely next purchases, repeats included (unless ``exclude_seen``); ``discovery``:
        places of each list kept for products the customer never bought.
        """
        rows = self._rows(customer_ids)
        items, scores = self.model.recommend(rows, n=n, exclude_seen=exclude_seen, discovery=discovery)
        return self._table(rows, *self._filled(rows, items, scores, n))

    def discover(self, customer_ids: Any = None, n: int = 10, picks: tuple | None = None) -> pd.DataFrame:
        """The ``discover`` list: products each customer has never bought, best first (columns as ``for_customers``).

        Ranked by the model's discovery part (the blend's co-purchase model: EASE on most
        catalogues), filled from the customer's segment's popular products they never bought.
        ``picks``: that part's ``recommend(rows, n, exclude_seen=True)`` for these rows, made already.
        """
        rows = self._rows(customer_ids)
        items, scores = picks if picks is not None else \
            self.model._discovery_source().recommend(rows, n=n, exclude_seen=True)
        return self._table(rows, *self._filled(rows, items, scores, n))

    def lists(self, customer_ids: Any = None, n: int = 10, exclude_seen: bool = False,
              discovery: int = 0) -> pd.DataFrame:
        """Both lists, ``customer_id, list, rank, product_id, product_name, score, reason``: ``top`` then ``discover``.

        ``exclude_seen`` and ``discovery`` shape the ``top`` list (see :meth:`for_customers`). A
        discover list made ahead for every customer (:func:`joined`) is used once, then dropped, as
        are the top list's prepared candidates.
        """
        top = self.for_customers(customer_ids, n, exclude_seen=exclude_seen, discovery=discovery)
        ready, self.prepared_discover = self.prepared_discover, None
        if getattr(self.model, "prepared_", None) is not None:
            self.model.prepared_ = None  # the candidates' features: their memory goes
        made_ahead = ready is not None and customer_ids is None and ready[0] == n  # (n, the list) of everyone
        new = ready[1] if made_ahead else self.discover(customer_ids, n)
        both = pd.concat([top.assign(list=LISTS[0]), new.assign(list=LISTS[1])], ignore_index=True)
        order = both["list"].map({name: i for i, name in enumerate(LISTS)})
        both = both.assign(_order=order).sort_values(["customer_id", "_order", "rank"], kind="stable")
        return both[list(COLUMNS)].reset_index(drop=True)

    def _rows(self, customer_ids: Any) -> np.ndarray:
        data = self.data
        if customer_ids is None:
            return np.arange(data.n_customers)
        return np.array([data.customer_index[c] for c in customer_ids if c in data.customer_index], dtype=np.int64)

    def _filled(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray, n: int):
        """Short lists (little history) filled from the customer's segment's popular products they never bought."""
        if (items < 0).any():
            fill_items, _ = self._fallback.recommend(rows, n=n + n, exclude_seen=True)
            for r in np.flatnonzero((items < 0).any(axis=1)):
                have = [i for i in items[r] if i >= 0]
                extra = [i for i in fill_items[r] if i >= 0 and i not in have][: n - len(have)]
                items[r, len(have): len(have) + len(extra)] = extra
                scores[r, len(have): len(have) + len(extra)] = 0.0
        return items, scores

    def _table(self, rows, items, scores) -> pd.DataFrame:
        data = self.data
        r_idx, rank = np.nonzero(items >= 0)
        item = items[r_idx, rank]
        frame = pd.DataFrame({
            "customer_id": data.customers[rows[r_idx]],
            "rank": rank + 1,
            "product_id": data.products[item],
            "score": np.round(np.where(np.isfinite(scores[r_idx, rank]), scores[r_idx, rank], 0.0), 6),
        })
        frame["product_name"] = frame["product_id"].map(data.product_names)
        frame["reason"] = self._reasons(rows[r_idx], item)
        return frame[["customer_id", "rank", "product_id", "product_name", "score", "reason"]]

    def _reasons(self, rows: np.ndarray, items: np.ndarray) -> list[str]:
        data = self.data
        counts = _lookup(data.orders, rows, items)
        days = np.rint(_lookup(data.last_days, rows, items)).astype(int)
        anchors = self._anchors(rows, items, counts > 0)
        reasons = []
        for r, count, day, anchor in zip(rows, counts, days, anchors, strict=True):
            if count > 0:
                times = "once" if count == 1 else f"{int(count)} times"
                reasons.append(f"bought {times}, last {day} days ago")
            elif anchor >= 0:
                product = data.products[anchor]
                reasons.append(f"customers who buy {data.product_names.get(product, product)} also buy this")
            else:
                label = self.segments.get(data.customers[r])
                reasons.append(f"popular in your segment ({label})" if label else "popular right now")
        return reasons

    def _anchors(self, rows: np.ndarray, items: np.ndarray, bought: np.ndarray) -> np.ndarray:
        """For each (row, item) not ``bought``: the customer's product that adds most to the item (-1: none adds).

        One block of the co-purchase model's weights per customer (their products x their new items);
        the first product on ties, as ``np.argmax``.
        """
        indptr, indices = self.data.orders.indptr, self.data.orders.indices  # each row's products, no slicing
        anchors = np.full(len(rows), -1, dtype=np.int64)
        new = np.flatnonzero(~bought)
        if not len(new):
            return anchors
        order = new[np.argsort(rows[new], kind="stable")]
        starts = np.flatnonzero(np.r_[True, rows[order][1:] != rows[order][:-1]])
        for part in np.split(order, starts[1:]):
            r = rows[part[0]]
            history = indices[indptr[r]: indptr[r + 1]]
            if not len(history):
                continue
            w = self._co.contributions(history, items[part])
            if w is None:
                continue
            best = np.argmax(w, axis=0)
            found = w[best, np.arange(len(part))] > 0
            anchors[part[found]] = history[best[found]]
        return anchors

    def recommend(self, customer_id: str, n: int = 10) -> pd.DataFrame:
        """Top ``n`` for one customer; unknown customers get recent popular products."""
        if customer_id in self.data.customer_index:
            return self.for_customers([customer_id], n=n)
        pop = self._fallback.by_label_[""]
        top = np.argsort(-pop, kind="stable")[:n]
        return pd.DataFrame({
            "customer_id": customer_id, "rank": np.arange(1, len(top) + 1),
            "product_id": self.data.products[top],
            "product_name": [self.data.product_names.get(p) for p in self.data.products[top]],
            "score": np.round(pop[top], 6), "reason": "popular right now (new customer)",
        })


def _lookup(matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``matrix[rows[j], cols[j]]`` for every j (0 where absent), without a Python loop."""
    coo = matrix.tocoo()
    n = matrix.shape[1]
    keys = coo.row.astype(np.int64) * n + coo.col
    order = np.argsort(keys)
    keys, values = keys[order], coo.data[order]
    query = rows.astype(np.int64) * n + cols
    if not len(keys):
        return np.zeros(len(query))
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[pos] == query, values[pos], 0.0)


def fit_recommendations(transactions: Any, as_of: dt.datetime, model: str = AUTO,
                        segments: dict | None = None) -> Recommendations:
    """Fit ``model`` on the purchases before ``as_of``.

    ``auto`` (the default) is the two-stage ranker, or the blend above :data:`TWO_STAGE_PRODUCTS`
    products or :data:`TWO_STAGE_CELLS` customers x products; the two-stage ranker also gives way
    to the blend on a history too short to learn from. ``Recommendations.note`` says when and why.
    """
    data = build_interactions(transactions, as_of)
    model, note = _resolve(model, data)
    with one_blas_thread():
        fitted = make_model(model).fit(data, segments=segments)
    if getattr(fitted, "fallback_", None) is not None:  # the two-stage ranker had too little to learn from
        fitted, note = fitted.fallback_, fitted.note_
    return Recommendations(fitted, data, segments, note=note)


def learn_recommender(transactions: Any, as_of: dt.datetime, model: str = AUTO) -> tuple[Recommender, str]:
    """A run's worker process's half of :func:`fit_recommendations`: the model ``model`` stands for, learned.

    The two-stage ranker learns its ranker on the inner cuts only; the caller computes the final
    weights meanwhile (:func:`final_weights`) and joins both (:func:`joined`). Any other model is
    fitted whole here. Returns the model and the note :func:`fit_recommendations` would give.
    """
    data = build_interactions(transactions, as_of)
    name, note = _resolve(model, data)
    recommender = make_model(name)
    with one_blas_thread():
        if isinstance(recommender, TwoStage):
            recommender.learn(data)
        else:
            recommender.fit(data)
    return recommender, note


def final_weights(transactions: Any, as_of: dt.datetime, model: str = AUTO) -> tuple[Interactions, dict | None]:
    """The caller's half: the interactions and, for the two-stage ranker, its final weights (else None)."""
    data = build_interactions(transactions, as_of)
    if _resolve(model, data)[0] != TwoStage.name:
        return data, None
    with one_blas_thread():
        return data, TwoStage.final_weights(data)


#: candidates' features prepared ahead (:func:`prepared_lists`) up to this size; beyond, scored as usual
PREPARED_BYTES = 256 * 2**20


def prepared_lists(data: Interactions, weights: dict | None, segments: dict | None, n: int = 10) -> dict:
    """What both lists need of the two-stage ranker's final weights but not of its ranker, made now.

    The ``discover`` list (from the EASE part), and the top list's candidates with their features
    (when they fit in :data:`PREPARED_BYTES`): a run makes them while its worker process is still
    learning the ranker. Empty for other models. :func:`joined` and ``Recommendations.lists`` take it.
    """
    if weights is None:
        return {}
    shell = TwoStage().use(data, weights)  # the final weights, no ranker yet
    out = {}
    new = shell.knn_candidates + shell.ease_candidates + shell.popular_candidates  # a customer's at most
    expected = (data.n_customers * new + data.orders.nnz) * len(shell.features) * 4  # float32 features
    if expected <= PREPARED_BYTES:
        # the discover list's EASE picks come with the candidates (read off the same EASE ranks)
        out["candidates"] = shell.prepare(np.arange(data.n_customers), discover=n).prepared_
    picks, shell.discover_picks_ = shell.discover_picks_, None  # set by prepare(), else None (use())
    out["discover"] = (n, Recommendations(shell, data, segments).discover(n=n, picks=picks))
    return out


def joined(learned: Recommender, note: str, data: Interactions, weights: dict | None,
           segments: dict | None = None, prepared: dict | None = None) -> Recommendations:
    """:func:`learn_recommender`'s model and :func:`final_weights`' weights as :func:`fit_recommendations`' result.

    ``prepared``: :func:`prepared_lists` of the same weights: the ranker scores its candidates, and
    :meth:`Recommendations.lists` takes its discover list (``prepared_discover``) once.
    """
    if isinstance(learned, TwoStage):
        if learned.fallback_ is not None:  # the history was too short to learn from: the blend's own lists
            return Recommendations(learned.fallback_, data, segments, note=learned.note_)
        learned.use(data, weights)
        learned.prepared_ = (prepared or {}).get("candidates")
    fitted = Recommendations(learned, data, segments, note=note)
    fitted.prepared_discover = (prepared or {}).get("discover") if isinstance(learned, TwoStage) else None
    return fitted


def _resolve(model: str, data: Interactions) -> tuple[str, str]:
    """The model ``auto`` stands for on ``data``, and why when it is not the default."""
    if model != AUTO:
        return model, ""
    if data.n_products > TWO_STAGE_PRODUCTS or data.n_customers * data.n_products > TWO_STAGE_CELLS:
        return "blend", (f"{data.n_customers:,} customers x {data.n_products:,} products: above what the two-stage "
                         f"ranker scores in bounded time ({TWO_STAGE_PRODUCTS:,} products, {TWO_STAGE_CELLS:,} "
                         "pairs), the blend recommends (ask for two_stage to use it anyway)")
    return DEFAULT_MODEL, ""
