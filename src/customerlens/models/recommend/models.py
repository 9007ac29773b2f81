"""Recommendation models, one interface.

Every model learns from :class:`~customerlens.models.recommend.data.Interactions`
(purchases before a date) and scores products for customers:

``fit(data, segments=None)`` -> self; ``score(rows)`` -> dense scores for
customer rows; ``recommend(rows, n, exclude_seen)`` -> (product indices,
scores), best first, ``-inf`` scores where there is nothing to recommend.
"""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp

from customerlens.core.memory import batch_rows, check
from customerlens.errors import NotFittedError
from customerlens.models.recommend.data import Interactions, row_of_each

#: Largest catalogue a dense product x product matrix is built for (EASE, the two-stage helpers):
#: 6,000 x 6,000 float32 is 144 MB; larger catalogues keep their most-bought products in it.
MAX_DENSE_PRODUCTS = 6_000


class Recommender:
    """Base class: subclasses implement ``_fit`` and ``score``."""

    name = "base"

    def fit(self, data: Interactions, segments: dict | None = None) -> Recommender:
        """Learn from ``data`` (``segments``: customer id -> segment label, for models that use it); returns self."""
        self.data_ = data
        self._fit(data, segments)
        return self

    def _fit(self, data: Interactions, segments: dict | None) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Dense scores (rows x products) of customer ``rows``, higher is better; ``-inf``: nothing to recommend."""
        raise NotImplementedError

    def on_history(self, data: Interactions) -> Recommender:
        """The fitted model, scoring the customers of ``data`` (same products) with the weights it learned.

        A shallow copy: the learned weights are shared, not copied. For item-to-item models
        (co-purchase, EASE), whose scores are a customer's history times product weights.
        """
        if not np.array_equal(data.products, self.data_.products):
            raise ValueError("on_history needs the same products, in the same order, as the data it was fitted on")
        view = copy.copy(self)
        view.data_ = data
        return view

    def _sparse(self) -> bool:
        """Whether scores come sparse (``score_sparse``): only candidates are materialised."""
        return hasattr(self, "score_sparse")

    def _discovery_source(self) -> Recommender:
        """The model that ranks products new to the customer for discovery places."""
        return self

    def contribution(self, history: np.ndarray, item: int) -> np.ndarray | None:
        """How much each of the customer's products adds to ``item``'s score (for reasons)."""
        return None

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """:meth:`contribution` for several ``items`` at once: ``(len(history), len(items))``, column j for items[j]."""
        columns = [self.contribution(history, item) for item in items]
        if any(c is None for c in columns):
            return None
        return np.column_stack([np.asarray(c).ravel() for c in columns]) if columns else np.empty((len(history), 0))

    def recommend(self, rows: np.ndarray, n: int = 10, exclude_seen: bool = False,
                  batch: int = 2048, discovery: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` products per customer row; ``discovery`` = slots kept for products new to them.

        With ``discovery=m`` the list holds at least ``m`` products the customer
        never bought (the model's best such ones, replacing its lowest-ranked
        repeat products at the end of the list) whenever the model has them.
        """
        if not hasattr(self, "data_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit() first")
        rows = np.asarray(rows)
        if discovery > 0 and not exclude_seen:
            items, scores = self.recommend(rows, n, batch=batch)
            source = self._discovery_source()
            new_items, new_scores = source.recommend(rows, min(n, discovery), exclude_seen=True, batch=batch)
            return _keep_discovery(items, scores, new_items, new_scores, self.data_.orders[rows], discovery)
        if self._sparse():
            # only candidates are materialised: about (products per customer x 200 neighbours) a
            # row, at most the catalogue; batches hold BATCH_BYTES of them (12 bytes an entry)
            data = self.data_
            per_row = min(data.n_products, max(1, data.orders.nnz // max(1, data.n_customers)) * 200)
            return _top_n_sparse(self, rows, n, exclude_seen,
                                 batch=min(batch, batch_rows(per_row, arrays=3, itemsize=12)))
        # dense score rows are as wide as the catalogue: at 70,000 products a batch of
        # 2,048 rows would take 1.1 GB, so batches shrink to BATCH_BYTES
        batch = min(batch, batch_rows(self.data_.n_products, arrays=3))
        items = np.empty((len(rows), n), dtype=np.int64)
        scores = np.empty((len(rows), n), dtype=np.float64)
        seen = self.data_.orders
        for start in range(0, len(rows), batch):
            part = rows[start: start + batch]
            s = np.asarray(self.score(part), dtype=np.float64)
            if exclude_seen:
                mask = seen[part]
                s[mask.nonzero()] = -np.inf
            # product index breaks ties, so results never depend on sort internals
            k = min(n, s.shape[1])
            top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < s.shape[1] else np.tile(np.arange(s.shape[1]), (len(part), 1))
            top_scores = np.take_along_axis(s, top, axis=1)
            order = np.lexsort((top, -top_scores), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            top_scores = np.take_along_axis(top_scores, order, axis=1)
            if k < n:
                top = np.pad(top, ((0, 0), (0, n - k)), constant_values=-1)
                top_scores = np.pad(top_scores, ((0, 0), (0, n - k)), constant_values=-np.inf)
            items[start: start + len(part)] = top
            scores[start: start + len(part)] = top_scores
        items[~np.isfinite(scores)] = -1
        return items, scores


def _keep_discovery(items, scores, new_items, new_scores, seen: sp.csr_matrix, slots: int):
    """Replace the last repeat products of each list by new ones until ``slots`` new ones are in it."""
    from customerlens.models.recommend.data import contains

    items, scores = items.copy(), scores.copy()
    n = items.shape[1]
    repeat = contains(seen, np.where(items >= 0, items, 0)) & (items >= 0)
    is_new = (items >= 0) & ~repeat
    for r in np.flatnonzero(is_new.sum(axis=1) < slots):
        have = set(items[r][is_new[r]].tolist())
        extra = [(i, s) for i, s in zip(new_items[r], new_scores[r], strict=True) if i >= 0 and i not in have]
        extra = extra[: slots - len(have)]
        if not extra:
            continue
        keep_repeat = np.flatnonzero(repeat[r])[: max(0, n - slots)]
        order = sorted([*keep_repeat.tolist(), *np.flatnonzero(is_new[r]).tolist()])
        kept = [(items[r, j], scores[r, j]) for j in order][: n - len(extra)]
        merged = kept + extra
        items[r] = -1
        scores[r] = -np.inf
        items[r, : len(merged)] = [i for i, _ in merged]
        scores[r, : len(merged)] = [s for _, s in merged]
    return items, scores


def _top_n_sparse(model: Recommender, rows: np.ndarray, n: int, exclude_seen: bool,
                  batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` per row from sparse scores: only candidates are ever materialised."""
    items = np.full((len(rows), n), -1, dtype=np.int64)
    scores = np.full((len(rows), n), -np.inf)
    for start in range(0, len(rows), batch):
        part = rows[start: start + batch]
        s = model.score_sparse(part).tocsr()
        if exclude_seen:
            s = s - s.multiply(model.data_.orders[part] > 0)
        s.eliminate_zeros()
        for local in range(s.shape[0]):
            lo, hi = s.indptr[local], s.indptr[local + 1]
            if lo == hi:
                continue
            vals, cols = s.data[lo:hi], s.indices[lo:hi]
            k = min(n, len(vals))
            top = np.argpartition(-vals, k - 1)[:k] if len(vals) > k else np.arange(len(vals))
            order = np.lexsort((cols[top], -vals[top]))
            items[start + local, :k] = cols[top][order]
            scores[start + local, :k] = vals[top][order]
    return items, scores


class RecentPopularity(Recommender):
    """Products with the most distinct buyers in the last ``recent_days`` before the snapshot."""

    name = "popularity"

    def _fit(self, data, segments):
        self.popularity_ = data.product_buyers_recent + 1e-6 * data.orders.sum(axis=0).A1

    def score(self, rows):
        """The same recent popularity for every customer row."""
        return np.tile(self.popularity_, (len(rows), 1))


class SegmentPopularity(Recommender):
    """Recent popularity among the customer's own segment (global popularity without one)."""

    name = "segment_popularity"

    def _fit(self, data, segments):
        recent = data.last_days.copy()
        recent.data = (recent.data <= data.recent_days).astype(np.float64)
        recent.eliminate_zeros()
        global_pop = np.asarray(recent.sum(axis=0)).ravel() + 1e-6 * data.orders.sum(axis=0).A1
        labels = np.array([segments.get(c, "") if segments else "" for c in data.customers])
        self.row_label_ = labels
        self.by_label_ = {"": global_pop}
        for label in np.unique(labels):
            if label:
                rows = np.flatnonzero(labels == label)
                self.by_label_[label] = np.asarray(recent[rows].sum(axis=0)).ravel() + 1e-6 * global_pop

    def score(self, rows):
        """Each row's recent popularity within its segment (global popularity for customers without one)."""
        return np.vstack([self.by_label_.get(self.row_label_[r], self.by_label_[""]) for r in rows])


class PersonalFrequency(Recommender):
    """The customer's own products, by the number of orders they were in (ties: recently popular first)."""

    name = "personal_frequency"

    def score_sparse(self, rows):
        """Sparse scores of ``rows``: the customer's own products by orders, ties to the recently popular."""
        return self.scores_[rows]

    def _fit(self, data, segments):
        # ties (most products were bought once) go to the products most customers
        # bought recently: a tie-break worth 4 NDCG points on Online Retail
        pop = data.product_buyers_recent / (data.product_buyers_recent.max() + 1.0)
        bought = (data.orders > 0).astype(np.float64)
        self.scores_ = (data.orders + bought @ sp.diags(pop * 0.5)).tocsr()  # stays sparse

    def score(self, rows):
        """Scores of ``rows`` as in :meth:`score_sparse`, dense; ``-inf`` for products the customer never bought."""
        s = self.scores_[rows].toarray()
        s[s == 0] = -np.inf
        return s


class ItemKNN(Recommender):
    """Item-to-item co-purchase: cosine similarity of products' buyer sets, top ``neighbours`` kept."""

    name = "item_knn"

    def __init__(self, neighbours: int = 200, shrink: float = 10.0, implicit_above: int = 20_000,
                 pairs_limit: int = 30_000_000):
        self.neighbours = neighbours
        self.shrink = shrink
        self.implicit_above = implicit_above
        self.pairs_limit = pairs_limit

    def _fit(self, data, segments):
        # the full co-occurrence matrix has at most sum(products per customer ^ 2) entries
        # (12 bytes each, and a copy): above pairs_limit, neighbours come from implicit
        per_customer = np.diff(data.orders.indptr).astype(np.float64)
        pairs = min(float(data.n_products) ** 2, float((per_customer ** 2).sum()))
        self.large_ = data.n_products > self.implicit_above or pairs > self.pairs_limit
        self.dense_ = None
        if self.large_:
            # implicit computes the top-K neighbours item by item (C++), never
            # the full co-occurrence matrix, which does not fit at this size
            import warnings

            from implicit.nearest_neighbours import CosineRecommender
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1, "blas"), warnings.catch_warnings():
                # implicit's own cosine normalisation hands itself a COO matrix and warns
                warnings.filterwarnings("ignore", message="Method expects CSR input")
                knn = CosineRecommender(K=self.neighbours)
                knn.fit(sp.csr_matrix(data.binary(), dtype=np.float32), show_progress=False)
            self.similarity_ = knn.similarity.tocsr().astype(np.float32)
            self.similarity_.setdiag(0)
            self.similarity_.eliminate_zeros()
            return
        # the counts are symmetric: their transpose, made CSR, is the same counts, each row in column
        # order (a counting pass, where sorting each row took 0.2 s)
        co = data.co_purchases().T.tocsr()
        counts = co.diagonal()  # a product's co-purchases with itself: its buyers
        # cosine over the counts off the diagonal (a product is not its own neighbour), computed on
        # the counts' own rows (a CSR matrix built from (row, column) lists was 0.5 s of 0.9)
        rows = row_of_each(co)
        keep = (rows != co.indices) & (co.data != 0)
        rows, cols = rows[keep], co.indices[keep]
        norm = np.sqrt(counts[rows] * counts[cols]) + self.shrink
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=co.shape[0]))])
        sim = sp.csr_matrix((co.data[keep] / norm, cols, indptr), shape=co.shape)
        # each row in column order, as before: which of equal similarities _top_k_rows keeps depends on it
        self.similarity_ = _top_k_rows(sim, self.neighbours)
        # scores as a sparse history times this dense matrix: the same sums in the same order as the
        # sparse product, at a third of its time (a result that dense is slow to build sparse)
        if data.n_products <= MAX_DENSE_PRODUCTS:  # the similarity's transpose, written in place
            self.dense_ = np.zeros(co.shape, dtype=np.float32)
            self.dense_[self.similarity_.indices, row_of_each(self.similarity_)] = self.similarity_.data

    def _sparse(self) -> bool:
        return self.large_

    def score(self, rows):
        """Dense co-purchase scores of ``rows`` (from :meth:`score_sparse` for large catalogues)."""
        if self.large_:
            return self.score_sparse(rows).toarray()
        # small catalogues: products whose nearest neighbours include the
        # customer's products (better on Online Retail: NDCG 0.245 against 0.210)
        if self.dense_ is not None:
            return self.data_.binary(rows) @ self.dense_
        return (self.data_.binary(rows) @ self.similarity_.T).toarray()

    def score_sparse(self, rows):
        """Sparse scores of ``rows``: each product the customer bought passes its similarity to its top neighbours."""
        # each product the customer bought passes its score to its own top
        # neighbours: at most K candidates per product, so it stays sparse
        return self.data_.binary(rows) @ self.similarity_

    def contribution(self, history, item):
        """Similarity between each of the customer's products (``history``) and ``item`` (for reasons)."""
        if self.large_:
            return self.similarity_[history][:, item].toarray().ravel()
        return self.similarity_[item][:, history].toarray().ravel()

    def contributions(self, history, items):
        """:meth:`contribution` of several ``items`` at once (one sparse slice, not one per item)."""
        if self.large_:
            return self.similarity_[history][:, items].toarray()
        return self.similarity_[items][:, history].toarray().T


def _top_k_rows(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of every row."""
    matrix = matrix.tocsr()
    indptr, indices, data = [0], [], []
    for i in range(matrix.shape[0]):
        start, end = matrix.indptr[i], matrix.indptr[i + 1]
        vals = matrix.data[start:end]
        cols = matrix.indices[start:end]
        if len(vals) > k:
            keep = np.argpartition(-vals, k - 1)[:k]
            vals, cols = vals[keep], cols[keep]
        indices.append(cols)
        data.append(vals)
        indptr.append(indptr[-1] + len(vals))
    return sp.csr_matrix((np.concatenate(data) if data else [], np.concatenate(indices) if indices else [],
                          indptr), shape=matrix.shape)


class EASE(Recommender):
    """EASE (Steck 2019): closed-form item-item weights, ``B = I - P / diag(P)``, ``P = (X'X + l I)^-1``.

    The weights are a dense product x product matrix, so on catalogues above ``max_products`` they
    are learned among the ``max_products`` products with the most buyers only (6,000 products: a
    144 MB matrix, where 59,000 would take 13 GB); the others score ``-inf`` (EASE knows nothing
    about them). Before building the matrix it checks that it fits (:mod:`customerlens.core.memory`).
    """

    name = "ease"

    def __init__(self, l2: float = 250.0, max_products: int = MAX_DENSE_PRODUCTS):
        self.l2 = l2
        self.max_products = max_products

    def _fit(self, data, segments):
        from scipy.linalg import lapack

        X = data.binary()
        if data.n_products > self.max_products:
            # the most-bought products (buyers per column), ties to the lower index (stable)
            buyers = X.getnnz(axis=0)
            self.kept_ = np.sort(np.argsort(-buyers, kind="stable")[: self.max_products])
            X = X[:, self.kept_]
        else:
            self.kept_ = None
        n = X.shape[1]
        check(3 * 4 * n * n, f"EASE's {n:,} x {n:,} product weights",
              "lower the model's max_products, or leave ease out of --models")
        # counted once with item kNN's when both are fitted together (TwoStage)
        G = (X.T @ X if self.kept_ is not None else data.co_purchases()).toarray().astype(np.float32, copy=False)
        G[np.diag_indices_from(G)] += self.l2
        # G is symmetric positive definite: a Cholesky inverse (LAPACK potrf/potri), in place,
        # is about 4x faster than a general inverse and takes no second copy
        # (G.T is G, and Fortran-ordered: what LAPACK overwrites without a copy)
        factor, info = lapack.spotrf(G.T, lower=1, overwrite_a=1)
        if info == 0:
            P, info = lapack.spotri(factor, lower=1, overwrite_c=1)
        if info != 0:  # pragma: no cover - numerically singular: fall back
            G = (X.T @ X).toarray().astype(np.float64)
            G[np.diag_indices_from(G)] += self.l2
            P = np.linalg.inv(G).astype(np.float32)
        else:
            _symmetrise_lower(P)
            # C order (scipy's sparse x dense product would copy a Fortran-ordered matrix on every call):
            # P is symmetric now, so its transpose is the same matrix, in C order, without a copy
            P = P.T
        P /= -np.diag(P).copy()  # B = -P / diag(P), column by column
        P[np.diag_indices_from(P)] = 0.0
        self.weights_ = np.ascontiguousarray(P)  # no copy where it is C-ordered already
        if self.kept_ is not None:
            self.position_ = np.full(data.n_products, -1, dtype=np.int64)
            self.position_[self.kept_] = np.arange(len(self.kept_))

    def score(self, rows):
        """Scores of ``rows``: the customer's bought products times EASE's item-item weights."""
        X = self.data_.binary(rows)
        if self.kept_ is None:
            return X @ self.weights_
        out = np.full((X.shape[0], self.data_.n_products), -np.inf, dtype=np.float32)
        out[:, self.kept_] = X[:, self.kept_] @ self.weights_
        return out

    def contribution(self, history, item):
        """EASE's weight from each of the customer's products (``history``) to ``item`` (for reasons)."""
        if self.kept_ is None:
            return self.weights_[history, item]
        column, rows = self.position_[item], self.position_[np.asarray(history)]
        out = np.zeros(len(rows), dtype=np.float32)
        if column >= 0:
            out[rows >= 0] = self.weights_[rows[rows >= 0], column]
        return out

    def contributions(self, history, items):
        """:meth:`contribution` of several ``items`` at once: one block of the weights."""
        history, items = np.asarray(history), np.asarray(items)
        if self.kept_ is None:
            return self.weights_[np.ix_(history, items)]
        columns, rows = self.position_[items], self.position_[history]
        out = np.zeros((len(rows), len(columns)), dtype=np.float32)
        known_rows, known_columns = rows >= 0, columns >= 0
        out[np.ix_(known_rows, known_columns)] = self.weights_[np.ix_(rows[known_rows], columns[known_columns])]
        return out


def _symmetrise_lower(P: np.ndarray, block: int = 1024) -> None:
    """Copy the lower triangle of ``P`` onto its upper one, in place (LAPACK fills only the lower)."""
    n = P.shape[0]
    for start in range(0, n, block):  # block by block: no n x n temporary
        stop = min(n, start + block)
        P[start:stop, stop:] = P[stop:, start:stop].T
        tile = P[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        tile[upper] = tile.T[upper]


class ALS(Recommender):
    """Matrix factorisation for implicit feedback (``implicit``'s ALS), confidence = alpha x orders.

    ``alpha = 1`` follows implicit's convention (the counts are the confidence).
    """

    name = "als"

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 20,
                 alpha: float = 1.0, random_state: int = 42):
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.random_state = random_state

    def _fit(self, data, segments):
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        confidence = data.orders.copy().astype(np.float32)
        confidence.data = self.alpha * confidence.data
        # implicit's docs: one BLAS thread, implicit parallelises itself
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                            iterations=self.iterations, random_state=self.random_state,
                                            num_threads=0)
            model.fit(confidence, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors)
        self.item_factors_ = np.asarray(model.item_factors)

    def score(self, rows):
        """Scores of ``rows``: dot products of the customer and product factors."""
        return self.user_factors_[rows] @ self.item_factors_.T


class WithDiscovery(Recommender):
    """Any model with ``slots`` places of each list kept for products new to the customer."""

    def __init__(self, model: Recommender, slots: int = 2):
        self.model = model
        self.slots = slots
        self.name = f"{model.name}+{slots}_new"

    def fit(self, data: Interactions, segments: dict | None = None) -> Recommender:
        """Fit the wrapped model on ``data``; returns self."""
        self.model.fit(data, segments=segments)
        self.data_ = data
        return self

    def contribution(self, history, item):
        """The wrapped model's contribution of each of the customer's products to ``item``."""
        return self.model.contribution(history, item)

    def contributions(self, history, items):
        """The wrapped model's contributions to several ``items``."""
        return self.model.contributions(history, items)

    def recommend(self, rows, n=10, exclude_seen=False, batch=2048, discovery=0):
        """The wrapped model's top ``n``, ``max(slots, discovery)`` places kept for products new to the customer."""
        return self.model.recommend(rows, n, exclude_seen=exclude_seen, batch=batch,
                                    discovery=max(discovery, self.slots))
