"""Demo data in other shapes than the gift wholesaler's: a grocery chain's year of baskets.

:func:`grocery` writes what a supermarket's loyalty data looks like, with the truth planted: each
household's type (the same five as :mod:`customerlens.io.demo`), weekly baskets of 20-40 lines over
a large catalogue, fuel lines with huge quantities (litres in thousandths, as fuel pumps report),
bottle deposits and coupons, and a last month with one day in it. Columns as such exports name them
(``household_id, basket_id, product_id, product_name, quantity, sales_value,
transaction_timestamp, store_id``): the loader maps them without ``--map``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from customerlens.io.demo import TYPES, DemoData

#: Shapes ``customerlens demo --shape`` knows ("retail" is :func:`customerlens.io.demo.generate`).
SHAPES = ("retail", "grocery")

GROCERY_COLUMNS = ("household_id", "basket_id", "product_id", "product_name", "quantity", "sales_value",
                   "transaction_timestamp", "store_id")
_FOODS = ("MILK", "BREAD", "EGGS", "BANANAS", "CHEESE", "YOGURT", "APPLES", "CHICKEN", "PASTA", "RICE",
          "COFFEE", "TEA", "CEREAL", "BUTTER", "TOMATOES", "POTATOES", "ONIONS", "JUICE", "WATER", "SOUP",
          "BEANS", "FLOUR", "SUGAR", "CHOCOLATE", "CRISPS", "BISCUITS", "ICE CREAM", "PIZZA", "SALMON", "BEEF")
_BRANDS = ("PRIVATE LABEL", "NATIONAL", "ORGANIC", "VALUE", "PREMIUM", "FAMILY", "FRESH", "CLASSIC")
#: Lines that are not goods, as a grocery export names them, with their quantity and value ranges
NOT_GOODS = {
    "GASOLINE-REG UNLEADED": ((5_000, 90_000), (25.0, 70.0)),
    "BOTTLE DEPOSIT": ((1, 12), (0.05, 0.60)),
    "MFR COUPON": ((1, 1), (-2.0, -0.25)),
}


def grocery(households: int = 2500, *, seed: int = 7, products: int = 68_000,
            lines_per_basket: tuple[int, int] = (20, 40), start: dt.date = dt.date(2024, 1, 1)) -> DemoData:
    """A grocery chain's year of baskets for ``households`` households, the types planted.

    Types: ``loyal`` (a basket about every 7 days all year), ``high_value`` (every 4-5 days, bigger
    and dearer baskets), ``occasional`` (every 4-8 weeks, smaller baskets), ``at_risk`` (weekly until
    they stop, 3-5 months before the end), ``new`` (weekly, from the last six weeks only). The data
    runs from ``start`` for a year and one day: the last month holds a single day. About 1.5 million
    lines at the defaults (2,500 households, 68,000 products).
    """
    if households < 1:
        raise ValueError("households must be at least 1")
    rng = np.random.default_rng(seed)
    # a year, and the first day of the next: the last month holds one day
    days = (start.replace(year=start.year + 1) - start).days
    names = np.array([f"{_BRANDS[i % len(_BRANDS)]} {_FOODS[(i // len(_BRANDS)) % len(_FOODS)]} {i}"
                      for i in range(products)])
    codes = np.array([str(800_000 + i) for i in range(products)])
    popularity = 1.0 / (rng.permutation(products) + 1.0) ** 1.05
    cumulative = np.cumsum(popularity / popularity.sum())
    price = np.round(np.exp(rng.normal(1.0, 0.6, products)), 2) + 0.09
    shares = np.array([0.25, 0.20, 0.30, 0.10, 0.15])  # occasional, at_risk, loyal, high_value, new
    ctype = rng.choice(len(TYPES), size=households, p=shares)
    ids = 1000 + rng.permutation(households * 3)[:households]

    cols: dict[str, list] = {c: [] for c in GROCERY_COLUMNS}
    basket_no = 0
    lo, hi = lines_per_basket
    for h in range(households):
        kind = TYPES[ctype[h]]
        gap, first, last, size, dear = {
            "loyal": (7.0, rng.uniform(0, 10), days, 1.0, 1.0),
            "high_value": (4.5, rng.uniform(0, 10), days, 1.3, 1.6),
            "occasional": (rng.uniform(28, 56), rng.uniform(0, 60), days, 0.5, 0.9),
            "at_risk": (7.0, rng.uniform(0, 20), days - rng.uniform(90, 150), 1.0, 1.0),
            "new": (7.0, days - rng.uniform(20, 42), days, 1.0, 1.0),
        }[kind]
        t = first
        while t <= last:
            basket_no += 1
            n = max(1, int(rng.integers(lo, hi + 1) * size))
            # one line per product in a basket (a second scan of the same item is one line of quantity 2)
            chosen = np.unique(np.minimum(np.searchsorted(cumulative, rng.random(n)), products - 1))
            n = len(chosen)
            qty = rng.geometric(0.7, n)
            value = np.round(qty * price[chosen] * dear, 2)
            when = dt.datetime.combine(start, dt.time()) + dt.timedelta(days=float(min(t, days)),
                                                                         hours=float(rng.uniform(8, 20)))
            extra = []
            if kind in ("loyal", "high_value") and rng.random() < 0.15:
                extra.append("GASOLINE-REG UNLEADED")
            if rng.random() < 0.3:
                extra.append("BOTTLE DEPOSIT")
            if rng.random() < 0.2:
                extra.append("MFR COUPON")
            store = f"S{int(rng.integers(1, 21)):02d}"
            for i in range(n):
                _append(cols, ids[h], basket_no, codes[chosen[i]], names[chosen[i]], int(qty[i]), float(value[i]),
                        when, store)
            for name in extra:
                (q_lo, q_hi), (v_lo, v_hi) = NOT_GOODS[name]
                code = {"GASOLINE-REG UNLEADED": "6534178", "BOTTLE DEPOSIT": "6534179", "MFR COUPON": "6534180"}[name]
                _append(cols, ids[h], basket_no, code, name, int(rng.integers(q_lo, q_hi + 1)),
                        round(float(rng.uniform(v_lo, v_hi)), 2), when, store)
            t += max(1.0, rng.normal(gap, gap * 0.25))
    table = pa.table({
        "household_id": pa.array(cols["household_id"], pa.string()),
        "basket_id": pa.array(cols["basket_id"], pa.string()),
        "product_id": pa.array(cols["product_id"], pa.string()),
        "product_name": pa.array(cols["product_name"], pa.string()),
        "quantity": pa.array(cols["quantity"], pa.int64()),
        "sales_value": pa.array(cols["sales_value"], pa.float64()),
        "transaction_timestamp": pa.array(cols["transaction_timestamp"], pa.string()),
        "store_id": pa.array(cols["store_id"], pa.string()),
    })
    types = pa.table({"customer_id": pa.array(ids.astype(str)),
                      "true_type": pa.array(np.array(TYPES)[ctype])}).sort_by("customer_id")
    return DemoData(lines=table, types=types)


def _append(cols: dict, household, basket: int, code, name, qty: int, value: float, when: dt.datetime,
            store: str) -> None:
    cols["household_id"].append(str(household))
    cols["basket_id"].append(f"B{basket:08d}")
    cols["product_id"].append(str(code))
    cols["product_name"].append(str(name))
    cols["quantity"].append(qty)
    cols["sales_value"].append(value)
    cols["transaction_timestamp"].append(when.strftime("%Y-%m-%d %H:%M:%S"))
    cols["store_id"].append(store)
