"""Demo data in other shapes than the gift wholesaler's: grocery, subscription, b2b and bank.

Every shape plants the same five customer types as :mod:`customerlens.io.demo` (``occasional``,
``at_risk``, ``loyal``, ``high_value``, ``new``), each as that kind of business sees them, with
column names as such exports spell them (the loader maps each without ``--map``):

* :func:`grocery`: a supermarket's year of weekly baskets over a large catalogue;
* :func:`subscription`: two years of monthly plan charges; churners cancel and their charges stop;
* :func:`b2b`: a wholesaler's few business accounts with large, irregular orders;
* :func:`bank`: a year of card payments and transfers per account: amounts, no products.

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
SHAPES = ("retail", "grocery", "subscription", "b2b", "bank")

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
    return _finish(ids, ctype, cols)


def _arrow(cols: dict[str, list]) -> pa.Table:
    """The generated columns as a table: whole numbers as int64, other numbers as float64, text as text."""
    def kind(values: list) -> pa.DataType:
        return pa.int64() if values and isinstance(values[0], int) else \
            pa.float64() if values and isinstance(values[0], float) else pa.string()

    return pa.table({name: pa.array(values, kind(values)) for name, values in cols.items()})


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


# --------------------------------------------------------------------------- the other shapes

#: Share of each type in :data:`customerlens.io.demo.TYPES` order: occasional, at_risk, loyal, high_value, new
_SHARES = np.array([0.25, 0.20, 0.30, 0.10, 0.15])
#: Monthly plans of :func:`subscription` (price per month), and the add-ons high-value subscribers take
PLANS = {"BASIC": 9.99, "STANDARD": 15.99, "PREMIUM": 22.99, "FAMILY": 29.99}
ADD_ONS = {"EXTRA STORAGE": 4.99, "HD PACK": 3.99, "SPORTS PACK": 7.99}
DAY_PASS = ("DAY PASS", 4.99)


def _event_days(rng: np.random.Generator, first: float, last: float, gap: float, spread: float) -> np.ndarray:
    """Days from ``first`` to ``last`` with gaps around ``gap`` (gamma, coefficient of variation ``spread``)."""
    if last < first:
        return np.empty(0)
    shape = 1.0 / spread**2
    n = int((last - first) / gap * 1.5) + 5
    days = first + np.concatenate([[0.0], np.cumsum(rng.gamma(shape, gap / shape, n))])
    return days[days <= last]


def _types(rng: np.random.Generator, customers: int) -> tuple[np.ndarray, np.ndarray]:
    """Customer ids and their planted type indices."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    return 1000 + rng.permutation(customers * 3)[:customers], rng.choice(len(TYPES), size=customers, p=_SHARES)


def _stamp(start: dt.date, days: np.ndarray, rng: np.random.Generator, hours: tuple[float, float]) -> list[str]:
    base = dt.datetime.combine(start, dt.time())
    offsets = days + rng.uniform(hours[0], hours[1], len(days)) / 24
    return [(base + dt.timedelta(days=float(d))).strftime("%Y-%m-%d %H:%M:%S") for d in offsets]


def _finish(ids: np.ndarray, ctype: np.ndarray, cols: dict[str, list]) -> DemoData:
    types = pa.table({"customer_id": pa.array(ids.astype(str)),
                      "true_type": pa.array(np.array(TYPES)[ctype])}).sort_by("customer_id")
    return DemoData(lines=_arrow(cols), types=types)


def subscription(customers: int = 3000, *, seed: int = 7, start: dt.date = dt.date(2023, 1, 1)) -> DemoData:
    """Two years of a streaming service's charges, the types planted.

    ``loyal``: a BASIC or STANDARD plan charged every month for the whole two years; ``high_value``:
    PREMIUM or FAMILY every month with one or two add-ons charged beside it; ``at_risk`` (churners):
    monthly until they cancel, 2 to 8 months before the end, and nothing after; ``occasional``: no
    plan, a DAY PASS every one to four months; ``new``: monthly from the last two months only.
    Columns: ``subscriber_id, invoice_id, billing_date, plan, amount`` (the charge).
    """
    rng = np.random.default_rng(seed)
    ids, ctype = _types(rng, customers)
    days = 730
    cols: dict[str, list] = {"subscriber_id": [], "invoice_id": [], "billing_date": [], "plan": [], "amount": []}
    invoice = 0
    for cid, t in zip(ids, ctype, strict=True):
        kind = TYPES[t]
        if kind == "occasional":
            when = _event_days(rng, rng.uniform(0, 120), days, rng.uniform(30, 120), 0.5)
            items = [[DAY_PASS] for _ in when]
        else:
            first, last = {
                "loyal": (rng.uniform(0, 30), days),
                "high_value": (rng.uniform(0, 30), days),
                "at_risk": (rng.uniform(0, 120), days - rng.uniform(60, 240)),
                "new": (days - rng.uniform(35, 60), days),
            }[kind]
            when = np.arange(first, last, 30.44)  # the billing day each month
            pool = ("PREMIUM", "FAMILY") if kind == "high_value" else ("BASIC", "STANDARD")
            plan = pool[int(rng.integers(0, 2))]
            extras = list(rng.choice(list(ADD_ONS), size=int(rng.integers(1, 3)), replace=False)) \
                if kind == "high_value" else []
            items = [[(plan, PLANS[plan]), *((e, ADD_ONS[e]) for e in extras)] for _ in when]
        stamps = _stamp(start, when, rng, (0, 6))
        for stamp, charge in zip(stamps, items, strict=True):
            invoice += 1
            for name, price in charge:
                cols["subscriber_id"].append(str(cid))
                cols["invoice_id"].append(f"INV{invoice:08d}")
                cols["billing_date"].append(stamp)
                cols["plan"].append(name)
                cols["amount"].append(price)
    return _finish(ids, ctype, cols)


def b2b(customers: int = 150, *, seed: int = 7, products: int = 2000, start: dt.date = dt.date(2023, 1, 1)) -> DemoData:
    """Two years of a wholesaler's orders from a few business accounts, the types planted.

    Orders are large (5 to 60 lines, 5 to 200 units a line) and irregular (gaps with a coefficient
    of variation of 0.6). ``high_value``: an order every 10-20 days, the largest; ``loyal``: about
    monthly; ``occasional``: every 2-5 months, small; ``at_risk``: monthly until 5-10 months before
    the end; ``new``: from the last three months, every 2-3 weeks. Columns: ``account_id,
    order_number, order_date, sku, description, quantity, unit_price``.
    """
    rng = np.random.default_rng(seed)
    ids, ctype = _types(rng, customers)
    days = 730
    popularity = 1.0 / (rng.permutation(products) + 1.0) ** 0.9
    cumulative = np.cumsum(popularity / popularity.sum())
    price = np.round(np.exp(rng.normal(2.0, 0.8, products)), 2)
    names = [f"{_BRANDS[i % len(_BRANDS)]} {_FOODS[(i // len(_BRANDS)) % len(_FOODS)]} CASE {i}" for i in range(products)]
    cols: dict[str, list] = {"account_id": [], "order_number": [], "order_date": [], "sku": [], "description": [],
                             "quantity": [], "unit_price": []}
    order = 0
    for cid, t in zip(ids, ctype, strict=True):
        kind = TYPES[t]
        first, last, gap, lines, units = {
            "high_value": (rng.uniform(0, 20), days, rng.uniform(10, 20), (25, 60), (40, 200)),
            "loyal": (rng.uniform(0, 40), days, rng.uniform(25, 35), (10, 25), (5, 40)),
            "occasional": (rng.uniform(0, 150), days, rng.uniform(60, 150), (5, 12), (5, 20)),
            "at_risk": (rng.uniform(0, 60), days - rng.uniform(150, 300), rng.uniform(25, 35), (10, 25), (5, 40)),
            "new": (days - rng.uniform(60, 90), days, rng.uniform(14, 21), (10, 25), (5, 40)),
        }[kind]
        when = _event_days(rng, first, last, gap, 0.6)
        for stamp in _stamp(start, when, rng, (7, 17)):
            order += 1
            chosen = np.unique(np.minimum(np.searchsorted(cumulative, rng.random(int(rng.integers(*lines)))),
                                          products - 1))
            for p in chosen:
                cols["account_id"].append(f"ACC-{cid}")
                cols["order_number"].append(f"SO{order:07d}")
                cols["order_date"].append(stamp)
                cols["sku"].append(f"SKU{p:05d}")
                cols["description"].append(names[p])
                cols["quantity"].append(int(rng.integers(*units)))
                cols["unit_price"].append(float(price[p]))
    return _finish(np.array([f"ACC-{i}" for i in ids]), ctype, cols)


def bank(customers: int = 2000, *, seed: int = 7, start: dt.date = dt.date(2024, 1, 1)) -> DemoData:
    """A year of a bank's card payments and transfers per account: amounts, no products; the types planted.

    ``loyal``: about three card payments a week all year (around 25 each); ``high_value``: four a week
    and larger (around 110), with a large transfer each month; ``occasional``: two or three a month;
    ``at_risk``: three a week until the account goes quiet, 3 to 6 months before the end; ``new``:
    accounts opened in the last six weeks. About 2% of payments are refunded (a negative amount a few
    days later). Columns: ``account_id, transaction_id, booking_date, amount, channel``.
    """
    rng = np.random.default_rng(seed)
    ids, ctype = _types(rng, customers)
    days = 365
    cols: dict[str, list] = {"account_id": [], "transaction_id": [], "booking_date": [], "amount": [], "channel": []}
    for cid, t in zip(ids, ctype, strict=True):
        kind = TYPES[t]
        first, last, gap, mean = {
            "loyal": (rng.uniform(0, 10), days, 2.3, 3.2),
            "high_value": (rng.uniform(0, 10), days, 1.75, 4.7),
            "occasional": (rng.uniform(0, 30), days, 12.0, 3.4),
            "at_risk": (rng.uniform(0, 10), days - rng.uniform(90, 180), 2.3, 3.2),
            "new": (days - rng.uniform(20, 42), days, 2.3, 3.2),
        }[kind]
        when = _event_days(rng, first, last, gap, 0.8)
        amount = np.round(np.exp(rng.normal(mean, 0.7, len(when))), 2)
        channel = ["card"] * len(when)
        if kind == "high_value":  # a large transfer each month
            monthly = np.arange(first + 3, last, 30.44)
            when = np.concatenate([when, monthly])
            amount = np.concatenate([amount, np.round(rng.uniform(1500, 4000, len(monthly)), 2)])
            channel += ["transfer"] * len(monthly)
        refunded = rng.random(len(when)) < 0.02
        refund_days = np.minimum(when[refunded] + rng.uniform(1, 6, refunded.sum()), days)
        when = np.concatenate([when, refund_days])
        amount = np.concatenate([amount, -amount[refunded]])
        channel += ["card"] * int(refunded.sum())
        for i, stamp in enumerate(_stamp(start, when, rng, (6, 23))):
            cols["account_id"].append(f"DE{cid:08d}")
            cols["transaction_id"].append(f"T{cid}-{i:05d}")
            cols["booking_date"].append(stamp)
            cols["amount"].append(float(amount[i]))
            cols["channel"].append(channel[i])
    return _finish(np.array([f"DE{i:08d}" for i in ids]), ctype, cols)


#: shape name -> generator of :class:`DemoData` for ``customers`` customers (the retail one is demo.generate)
GENERATORS = {"grocery": grocery, "subscription": subscription, "b2b": b2b, "bank": bank}
