"""Purchase history as a customer x product matrix, with the facts models need."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from customerlens.core.frames import as_pandas as _as_pandas
from customerlens.errors import ConfigError


@dataclass
class Interactions:
    """Who bought what before ``as_of``.

    ``orders`` is a CSR matrix (customers x products) of the number of distinct
    orders in which the customer bought the product; ``last_days`` the days
    from the last such order to ``as_of`` (same sparsity); ``first_days`` the
    days from the first one.
    """

    customers: np.ndarray  # index -> customer_id
    products: np.ndarray  # index -> product_id
    orders: sp.csr_matrix
    last_days: sp.csr_matrix
    first_days: sp.csr_matrix
    as_of: dt.datetime
    product_names: dict[str, str]
    customer_orders: np.ndarray  # distinct orders per customer
    customer_last_days: np.ndarray  # days since the customer's last order
    product_buyers_recent: np.ndarray  # distinct buyers per product in the last `recent_days`
    recent_days: int
    lines: pd.DataFrame | None = None  # the purchase lines behind it (customer_id, product_id, order_id, order_date)

    @property
    def customer_index(self) -> dict[str, int]:
        """Row of each customer id in the matrices (built on first use)."""
        if not hasattr(self, "_cidx"):
            self._cidx = {c: i for i, c in enumerate(self.customers)}
        return self._cidx

    @property
    def n_customers(self) -> int:
        """Number of customers (rows of the matrices)."""
        return len(self.customers)

    @property
    def n_products(self) -> int:
        """Number of products (columns of the matrices)."""
        return len(self.products)

    def co_purchases(self, private: bool = False) -> sp.csr_matrix:
        """Customers who bought both products, for every pair (``X'X`` of :meth:`binary`, float32 CSR).

        Counted once while :meth:`sharing_co_purchases` is open (item kNN and EASE both start from it);
        ``private``: the caller changes it, so the shared one comes as a copy (a new count is its own).
        """
        shared = getattr(self, "_co_purchases", None)
        if shared is not None:
            return shared.copy() if private else shared
        X = self.binary().tocsc()
        return (X.T @ X).tocsr().astype(np.float32)

    @contextlib.contextmanager
    def sharing_co_purchases(self):
        """Within: :meth:`co_purchases` is counted once and shared (then released)."""
        self._co_purchases = None
        self._co_purchases = self.co_purchases()
        try:
            yield
        finally:
            self._co_purchases = None

    def binary(self, rows: np.ndarray | None = None) -> sp.csr_matrix:
        """A copy of ``orders`` (of its ``rows`` only, when given) with 1 wherever the customer bought the product."""
        out = self.orders.copy() if rows is None else self.orders[rows]  # a row slice is a copy already
        out.data = np.ones_like(out.data, dtype=np.float32)
        return out


def build_interactions(transactions: Any, as_of: dt.datetime, recent_days: int = 90,
                       products: np.ndarray | None = None) -> Interactions:
    """Interactions from clean transactions strictly before ``as_of``.

    ``products`` (sorted product ids, a superset of those bought) fixes the matrices' columns,
    so that interactions at several dates share one product index.
    """
    lines = _as_pandas(transactions)
    lines = lines[(lines["order_date"] < pd.Timestamp(as_of)) & lines["product_id"].notna()]
    if "quantity" in lines:
        lines = lines[lines["quantity"] > 0]
    if lines.empty:
        raise ConfigError(f"no product purchases before as_of {pd.Timestamp(as_of).date()}: choose a later date "
                          "(the recommenders learn from the purchases before it)", parameter="as_of")
    per = (lines.groupby(["customer_id", "product_id"])
           .agg(orders=("order_id", "nunique"), last=("order_date", "max"), first=("order_date", "min"))
           .reset_index())
    customers = np.sort(per["customer_id"].unique())
    if products is None:
        products = np.sort(per["product_id"].unique())
    ci = pd.Index(customers).get_indexer(per["customer_id"])
    pi = pd.Index(products).get_indexer(per["product_id"])
    shape = (len(customers), len(products))
    as_of_ts = pd.Timestamp(as_of)
    last_days = ((as_of_ts - per["last"]).dt.total_seconds() / 86400).to_numpy()
    first_days = ((as_of_ts - per["first"]).dt.total_seconds() / 86400).to_numpy()
    orders = sp.csr_matrix((per["orders"].to_numpy(np.float32), (ci, pi)), shape=shape)
    last = sp.csr_matrix((last_days.astype(np.float32) + 1e-3, (ci, pi)), shape=shape)
    first = sp.csr_matrix((first_days.astype(np.float32) + 1e-3, (ci, pi)), shape=shape)
    for matrix in (orders, last, first):  # one sparsity, products in order within each row (models rely on it)
        matrix.sort_indices()
    cust = lines.groupby("customer_id").agg(n=("order_id", "nunique"), last=("order_date", "max"))
    cust = cust.reindex(customers)
    recent = lines[lines["order_date"] >= as_of_ts - pd.Timedelta(days=recent_days)]
    buyers = recent.groupby("product_id")["customer_id"].nunique().reindex(products).fillna(0).to_numpy()
    names = {}
    if "product_name" in lines:
        names = (lines.dropna(subset=["product_name"]).groupby(["product_id", "product_name"]).size()
                 .reset_index(name="n").sort_values(["product_id", "n"], ascending=[True, False])
                 .drop_duplicates("product_id").set_index("product_id")["product_name"].to_dict())
    return Interactions(
        customers=customers, products=products, orders=orders, last_days=last, first_days=first,
        as_of=as_of, product_names=names,
        customer_orders=cust["n"].to_numpy(),
        customer_last_days=((as_of_ts - cust["last"]).dt.total_seconds() / 86400).to_numpy(),
        product_buyers_recent=buyers.astype(float), recent_days=recent_days,
        lines=lines[["customer_id", "product_id", "order_id", "order_date"]].reset_index(drop=True),
    )


def contains(matrix: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """``matrix[i, items[i, j]] != 0`` for every i, j, without densifying the matrix."""
    coo = matrix.tocoo()
    n = matrix.shape[1]
    keys = np.sort(coo.row.astype(np.int64) * n + coo.col)
    query = np.arange(items.shape[0], dtype=np.int64)[:, None] * n + items
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1) if len(keys) else pos
    return (keys[pos] == query) if len(keys) else np.zeros(items.shape, dtype=bool)
