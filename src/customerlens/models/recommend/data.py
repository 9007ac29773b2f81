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
    coded: CodedLines | None = None  # the lines' codes (the lines before a later date, for :meth:`at`)
    customer_codes: np.ndarray | None = None  # each row's customer in ``coded``

    def at(self, as_of: dt.datetime) -> Interactions:
        """The interactions before an earlier ``as_of``, on the same products, from the codes (no ``lines``)."""
        return _interactions(self.coded, as_of, self.recent_days, {}, None)

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
    so that interactions at several dates share one product index. The lines are coded as
    integers once (:class:`CodedLines`): :meth:`Interactions.at` builds the interactions at an
    earlier date from those codes, without grouping the text ids again.
    """
    lines = _as_pandas(transactions)
    # a line without a customer or product is nobody's purchase of anything (pandas' group-bys left it out)
    lines = lines[(lines["order_date"] < pd.Timestamp(as_of)) & lines["product_id"].notna()
                  & lines["customer_id"].notna()]
    if "quantity" in lines:
        lines = lines[lines["quantity"] > 0]
    if lines.empty:
        raise ConfigError(f"no product purchases before as_of {pd.Timestamp(as_of).date()}: choose a later date "
                          "(the recommenders learn from the purchases before it)", parameter="as_of")
    coded = CodedLines.of(lines, products)
    names = {}
    if "product_name" in lines:
        names = (lines.dropna(subset=["product_name"]).groupby(["product_id", "product_name"]).size()
                 .reset_index(name="n").sort_values(["product_id", "n"], ascending=[True, False])
                 .drop_duplicates("product_id").set_index("product_id")["product_name"].to_dict())
    lines = lines[["customer_id", "product_id", "order_id", "order_date"]].reset_index(drop=True)
    return _interactions(coded, as_of, recent_days, names, lines)


@dataclass
class CodedLines:
    """Purchase lines as integer codes, made once: interactions at other dates group integers, not text.

    ``customer`` and ``product`` index the sorted ``customers`` and ``products`` ids; ``order`` codes
    the order ids (-1: none); ``when`` is the order date as integer ``ticks`` per second since the epoch
    (microseconds, or nanoseconds for dates that carry them, as the dates' own unit).
    """

    customers: np.ndarray
    products: np.ndarray
    customer: np.ndarray
    product: np.ndarray
    order: np.ndarray
    when: np.ndarray
    ticks: int

    @classmethod
    def of(cls, lines: pd.DataFrame, products: np.ndarray | None = None) -> CodedLines:
        """The codes of ``lines`` (customer, product and order ids, dates); ``products``: as in build_interactions."""
        customer, customers = pd.factorize(lines["customer_id"], sort=True)
        if products is None:
            product, products = pd.factorize(lines["product_id"], sort=True)
        else:
            product = pd.Index(products).get_indexer(lines["product_id"])
            if (product < 0).any():
                raise ValueError("products must hold every product of the lines")
        order, _ = pd.factorize(lines["order_id"])
        dates = lines["order_date"]
        unit = np.datetime_data(dates.dtype)[0] if dates.dtype.kind == "M" else "us"
        unit = "ns" if unit == "ns" else "us"  # as pandas subtracts a (microsecond) Timestamp from them
        when = dates.to_numpy(f"datetime64[{unit}]").view(np.int64)
        return cls(np.asarray(customers), np.asarray(products), customer.astype(np.int32), product.astype(np.int32),
                   order.astype(np.int64), when, 10**9 if unit == "ns" else 10**6)

    def tick(self, moment: Any) -> int:
        """``moment`` in the unit of ``when``."""
        unit = "ns" if self.ticks == 10**9 else "us"
        return int(pd.Timestamp(moment).to_datetime64().astype(f"datetime64[{unit}]").view(np.int64))

    def days_before(self, moment: Any, when: np.ndarray) -> np.ndarray:
        """Days from each of ``when`` to ``moment`` (float, as pandas' ``total_seconds() / 86400``)."""
        return (self.tick(moment) - when) / self.ticks / 86400

    def before(self, moment: Any) -> np.ndarray:
        """Which lines are dated strictly before ``moment``."""
        return self.when < self.tick(moment)


def _interactions(coded: CodedLines, as_of: dt.datetime, recent_days: int, names: dict,
                  lines: pd.DataFrame | None) -> Interactions:
    """The interactions of ``coded``'s lines before ``as_of``, on all of its products."""
    keep = coded.before(as_of)
    c, p, o, when = coded.customer[keep], coded.product[keep], coded.order[keep], coded.when[keep]
    codes = np.unique(c)  # the customers who bought before as_of, in id order
    row = np.searchsorted(codes, c)
    n_products = len(coded.products)
    shape = (len(codes), n_products)
    # one (customer, product) pair per entry: its distinct orders, first and last order dates
    pair = row.astype(np.int64) * n_products + p
    pairs, pair_id = np.unique(pair, return_inverse=True)
    last = np.full(len(pairs), np.iinfo(np.int64).min)
    np.maximum.at(last, pair_id, when)
    first = np.full(len(pairs), np.iinfo(np.int64).max)
    np.minimum.at(first, pair_id, when)
    # lines without an order id count as one order: a pair bought is never a pair of no orders
    orders = distinct_counts(pair_id, o, len(pairs), none_counts=True)
    pair_row, pair_product = pairs // n_products, (pairs % n_products).astype(np.int32)
    indptr = np.r_[0, np.cumsum(np.bincount(pair_row, minlength=len(codes)))]

    def matrix(values):  # the pairs come sorted by row, then product: CSR as it is
        return sp.csr_matrix((values, pair_product.copy(), indptr.copy()), shape=shape)

    orders_m = matrix(orders.astype(np.float32))
    last_m = matrix(coded.days_before(as_of, last).astype(np.float32) + 1e-3)
    first_m = matrix(coded.days_before(as_of, first).astype(np.float32) + 1e-3)
    customer_last = np.full(len(codes), np.iinfo(np.int64).min)
    np.maximum.at(customer_last, row, when)
    recent = when >= coded.tick(pd.Timestamp(as_of) - pd.Timedelta(days=recent_days))
    buyers = distinct_counts(p[recent], row[recent], n_products)
    return Interactions(
        customers=coded.customers[codes], products=coded.products, orders=orders_m, last_days=last_m,
        first_days=first_m, as_of=as_of, product_names=names,
        customer_orders=distinct_counts(row, o, len(codes), none_counts=True),
        customer_last_days=coded.days_before(as_of, customer_last),
        product_buyers_recent=buyers.astype(float), recent_days=recent_days, lines=lines,
        coded=coded, customer_codes=codes,
    )


def distinct_counts(group: np.ndarray, values: np.ndarray, n: int, none_counts: bool = False) -> np.ndarray:
    """The number of distinct ``values`` in each of ``n`` groups, as pandas' nunique.

    -1 (none) is not counted, unless ``none_counts``: then it is one value more (``nunique(dropna=False)``).
    """
    if not none_counts:
        has = values >= 0
        group, values = group[has], values[has]
    if not len(group):
        return np.zeros(n, dtype=np.int64)
    order = np.lexsort((values, group))
    g, v = group[order], values[order]
    new = np.r_[True, (g[1:] != g[:-1]) | (v[1:] != v[:-1])]
    return np.bincount(g[new], minlength=n)


def row_of_each(matrix: sp.csr_matrix | sp.csc_matrix) -> np.ndarray:
    """The row of each stored entry of a CSR ``matrix`` (what its COO form calls ``row``); of a CSC one, the column."""
    return np.repeat(np.arange(len(matrix.indptr) - 1, dtype=matrix.indices.dtype), np.diff(matrix.indptr))


def contains(matrix: sp.csr_matrix, items: np.ndarray) -> np.ndarray:
    """``matrix[i, items[i, j]] != 0`` for every i, j, without densifying the matrix."""
    coo = matrix.tocoo()
    n = matrix.shape[1]
    keys = np.sort(coo.row.astype(np.int64) * n + coo.col)
    query = np.arange(items.shape[0], dtype=np.int64)[:, None] * n + items
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1) if len(keys) else pos
    return (keys[pos] == query) if len(keys) else np.zeros(items.shape, dtype=bool)
