"""Offline evaluation on a time-based holdout.

Protocol (docs/recommendations.md): train on the lines before DATE (cleaned as
of DATE, so no later return leaks in); test on the customers who bought both
before and after DATE; the relevant items of a customer are the distinct
products they bought on or after DATE (products new to the catalogue
included: they cannot be recommended, and count as misses). Metrics at k,
averaged over test customers:

* Recall@k = hits / relevant; Precision@k = hits / k; HitRate@k = any hit;
* NDCG@k = DCG / ideal DCG, gains 1 / log2(rank + 1), ideal over
  min(k, relevant) items;
* MAP@k = sum of precision at each hit / min(k, relevant);
* coverage = distinct products recommended / products in the training data;
* the same recall and NDCG on *repeat* items (bought before DATE) and *new*
  items (not bought before), each over the customers who have such items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from customerlens.core.frames import as_pandas as _as_pandas
from customerlens.models.recommend.data import Interactions, build_interactions, contains
from customerlens.models.recommend.models import Recommender


@dataclass
class Holdout:
    """A time-based split: training interactions, the test customers and what each bought after the date."""

    train: Interactions
    test_rows: np.ndarray  # customer rows (in train) of the test customers
    relevant: sp.csr_matrix  # test customers x train products, 1 = bought after DATE
    n_relevant: np.ndarray  # distinct products bought after DATE, per test customer (all products)


def make_holdout(train_lines: Any, test_lines: Any, as_of: dt.datetime) -> Holdout:
    """Training interactions before ``as_of`` and what test customers bought after it."""
    train = build_interactions(train_lines, as_of)
    test = _as_pandas(test_lines)
    test = test[(test["order_date"] >= pd.Timestamp(as_of)) & test["product_id"].notna()]
    if "quantity" in test:
        test = test[test["quantity"] > 0]
    pairs = test[["customer_id", "product_id"]].drop_duplicates()
    pairs = pairs[pairs["customer_id"].isin(train.customer_index)]
    n_rel = pairs.groupby("customer_id").size()
    customers = np.sort(n_rel.index.to_numpy())
    rows = np.array([train.customer_index[c] for c in customers], dtype=np.int64)
    known = pairs[pairs["product_id"].isin(set(train.products))]
    ri = pd.Index(customers).get_indexer(known["customer_id"])
    pi = pd.Index(train.products).get_indexer(known["product_id"])
    relevant = sp.csr_matrix((np.ones(len(known), dtype=np.float32), (ri, pi)),
                             shape=(len(customers), train.n_products))
    return Holdout(train=train, test_rows=rows, relevant=relevant, n_relevant=n_rel.loc[customers].to_numpy())


def _ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k per customer from a hit matrix; NaN where a customer has nothing relevant."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits * discount).sum(axis=1)
    ideal = np.cumsum(discount)[np.clip(np.minimum(k, n_relevant).astype(int), 1, k) - 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, dcg / ideal, np.nan)


def _hits(items: np.ndarray, holdout: Holdout, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``k`` of each list, which places hold a product, and which of those were bought after."""
    items = items[:, :k]
    valid = items >= 0
    return items, valid, contains(holdout.relevant, np.where(valid, items, 0)) & valid


def ndcg_by_customer(items: np.ndarray, holdout: Holdout, k: int = 10) -> np.ndarray:
    """NDCG@k of each test customer's list (the per-customer values :func:`evaluate` averages)."""
    return _ndcg(_hits(items, holdout, k)[2], holdout.n_relevant.astype(float), k)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 42) -> dict[str, float]:
    """Mean of ``a - b`` over the same customers and its 95 % percentile interval (customers resampled)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    diff = diff[np.isfinite(diff)]
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(resamples)])
    low, high = np.percentile(means, [2.5, 97.5])
    return {"difference": float(diff.mean()), "ci95_low": float(low), "ci95_high": float(high),
            "customers": int(len(diff)), "resamples": resamples}


def evaluate(items: np.ndarray, holdout: Holdout, k: int = 10) -> dict[str, float]:
    """Metrics of recommendation lists ``items`` (test customers x k product indices, -1 = none)."""
    items, valid, hits = _hits(items, holdout, k)
    rel = holdout.relevant
    seen = holdout.train.orders[holdout.test_rows]
    repeat_item = contains(seen, np.where(valid, items, 0)) & valid
    n_rel = holdout.n_relevant.astype(float)
    rel_repeat = np.asarray(rel.multiply(seen > 0).sum(axis=1)).ravel()
    rel_new = n_rel - rel_repeat  # products new to the customer (or to the catalogue)
    hits_repeat = hits & repeat_item
    hits_new = hits & ~repeat_item
    cum_hits = np.cumsum(hits, axis=1)
    precision_at = cum_hits / np.arange(1, k + 1)
    out = {
        "customers": int(len(items)),
        f"recall@{k}": float(np.mean(hits.sum(axis=1) / n_rel)),
        f"ndcg@{k}": float(np.nanmean(_ndcg(hits, n_rel, k))),
        f"precision@{k}": float(np.mean(hits.sum(axis=1) / k)),
        f"hitrate@{k}": float(np.mean(hits.any(axis=1))),
        f"map@{k}": float(np.mean((precision_at * hits).sum(axis=1) / np.minimum(k, n_rel))),
        "coverage": float(len(np.unique(items[valid])) / holdout.train.n_products),
    }
    def mean(values):
        return float(np.mean(values)) if len(values) else float("nan")

    with np.errstate(invalid="ignore", divide="ignore"):
        has_r, has_n = rel_repeat > 0, rel_new > 0
        out[f"recall@{k}_repeat"] = mean(hits_repeat.sum(axis=1)[has_r] / rel_repeat[has_r])
        out[f"recall@{k}_new"] = mean(hits_new.sum(axis=1)[has_n] / rel_new[has_n])
        out[f"ndcg@{k}_repeat"] = mean(_ndcg(hits_repeat, rel_repeat, k)[has_r])
        out[f"ndcg@{k}_new"] = mean(_ndcg(hits_new, rel_new, k)[has_n])
    return out


def run_backtest(holdout: Holdout, models: dict[str, Recommender | Callable[[], Recommender]], k: int = 10,
                 segments: dict | None = None, progress=None, discover: bool = True,
                 per_customer: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Fit every model on the training data and evaluate it; one row per model and list.

    ``models`` maps names to models, or to functions that make one: a model made here is
    dropped once scored, so a backtest of many models holds one fitted model at a time.
    Each model's ``top`` list (repeats included) is judged on NDCG and Recall; with ``discover``
    its ``discover`` list too (products new to the customer, from the model's discovery part),
    judged on new-item recall. ``per_customer`` (when given) receives each model's per-customer
    NDCG@k of its top list, for paired comparisons (:func:`paired_bootstrap`).
    """
    import time

    rows, discovered = [], []
    for name, made in models.items():
        if progress:
            progress(name)
        t = time.perf_counter()
        model = made if isinstance(made, Recommender) else made()
        model.fit(holdout.train, segments=segments)
        items, _ = model.recommend(holdout.test_rows, n=k)
        seconds = time.perf_counter() - t
        rows.append({"model": name, "list": "top", **evaluate(items, holdout, k), "seconds": round(seconds, 2)})
        if per_customer is not None:
            per_customer[name] = ndcg_by_customer(items, holdout, k)
        if discover:
            t = time.perf_counter()
            new, _ = model._discovery_source().recommend(holdout.test_rows, n=k, exclude_seen=True)
            discovered.append({"model": name, "list": "discover", **evaluate(new, holdout, k),
                               "seconds": round(time.perf_counter() - t, 2)})
        del model, items
    return pd.DataFrame(rows + discovered)  # the top rows, then the discover rows
