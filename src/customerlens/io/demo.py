"""Synthetic demo data: Online Retail-shaped transactions with planted customer types.

The behavioural model (documented in ``docs/demo-data.md``):

* **Customers** belong to one of five planted types, in these shares by default:
  ``occasional`` 35 %, ``at_risk`` 20 %, ``loyal`` 20 %, ``high_value`` 10 %,
  ``new`` 15 %. Each type sets how many orders a customer places, when (its
  active window inside the period), how many lines an order has, how many
  units a line has, and which product categories it prefers:

  ============  ================  ==================================  =========  =========
  type          orders            active window (day of period)       lines      units
  ============  ================  ==================================  =========  =========
  occasional    1 + Poisson(0.8)  starts by day 174, stops between     1+P(3)     geom 1/3
                                  200 and 60 days before the end
  at_risk       4 + Poisson(4)    starts in the first 60 days, stops  1+P(6)     geom 1/5
                                  between day 90 and day 200
  loyal         10 + Poisson(6)   starts in the first 90 days, runs   1+P(5)     geom 1/3
                                  to the last 15 days
  high_value    22 + Poisson(12)  starts in the first 60 days, runs   1+P(16)    geom 1/16
                                  to the last 10 days
  new           1 + Poisson(1)    the last 60 days only               1+P(3)     geom 1/3
  ============  ================  ==================================  =========  =========

* **Seasonality**: order dates follow a yearly density that rises from
  September to a peak in late November (x2.2 at the peak), within each
  customer's active window.
* **Products**: a catalogue with Zipf-skewed popularity (exponent 1.1), twelve
  categories, and a per-type preference over categories; each customer also
  has eight favourite products and re-buys one of them on 35 % of lines.
* **Dirt**, as in the real data: 12 % of orders are guest orders without a
  customer id, postage (``POST``/``DOT``) lines, manual (``M``) lines,
  "Adjust bad debt" lines with negative prices, zero prices, 1 % exact
  duplicate lines, variant descriptions of a product, and 2 % of lines
  returned later on a ``C`` invoice (in part or in full).

The true type of every customer goes to a side file so later stages can
measure how well segments recover it. Everything is seeded: the same
arguments give the same file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from customerlens.core.files import atomic_path

TYPES = ("occasional", "at_risk", "loyal", "high_value", "new")
DEFAULT_SHARES = (0.35, 0.20, 0.20, 0.10, 0.15)


@dataclass(frozen=True)
class _TypeModel:
    base_orders: int
    extra_orders: float
    start: tuple[float, float]  # first possible day, as fractions of the period
    end: tuple[float, float]  # last possible day
    lines: float
    unit_p: float  # geometric parameter for units per line
    price_factor: float


def _models(days: int) -> dict[str, _TypeModel]:
    d = float(days)
    return {
        "occasional": _TypeModel(1, 0.8, (0, d - 200), (d - 200, d - 60), 3, 1 / 3, 1.0),
        "at_risk": _TypeModel(4, 4, (0, 60), (90, 200), 6, 1 / 5, 1.1),
        "loyal": _TypeModel(10, 6, (0, 90), (d - 15, d), 5, 1 / 3, 1.0),
        "high_value": _TypeModel(22, 12, (0, 60), (d - 10, d), 16, 1 / 16, 1.3),
        "new": _TypeModel(1, 1, (d - 60, d - 20), (d, d), 3, 1 / 3, 1.0),
    }


CATEGORIES = (
    ("KITCHEN", ("MUG", "TEAPOT", "CAKE STAND", "JAM JAR", "TEA TOWEL", "LUNCH BOX")),
    ("LIGHTING", ("T-LIGHT HOLDER", "LANTERN", "FAIRY LIGHTS", "NIGHT LIGHT")),
    ("PARTY", ("PARTY BUNTING", "PAPER CHAIN KIT", "BALLOONS", "NAPKINS", "PAPER PLATES")),
    ("CHRISTMAS", ("CHRISTMAS BAUBLE", "ADVENT CALENDAR", "STOCKING", "TREE DECORATION")),
    ("BAGS", ("JUMBO BAG", "SHOPPER BAG", "LUNCH BAG", "CHARLOTTE BAG")),
    ("STATIONERY", ("NOTEBOOK", "WRAPPING PAPER", "GIFT TAG", "PENCILS", "STICKERS")),
    ("HOME", ("CUSHION COVER", "DOORMAT", "PHOTO FRAME", "WALL CLOCK", "DOORSTOP")),
    ("GARDEN", ("PLANT POT", "BIRD FEEDER", "WATERING CAN", "GARDEN SIGN")),
    ("TOYS", ("SPACEBOY TOY", "WOODEN SOLDIER", "DOLLY GIRL", "SKIPPING ROPE")),
    ("STORAGE", ("STORAGE TIN", "TRINKET BOX", "HANGING BASKET", "DRAWER KNOB")),
    ("BATHROOM", ("SOAP DISH", "TOOTHBRUSH HOLDER", "HAND TOWEL", "WASHBAG")),
    ("VINTAGE", ("METAL SIGN", "POSTCARD SET", "ENAMEL BUCKET", "MIRROR")),
)
_ADJECTIVES = (
    "WHITE", "RED", "PINK", "BLUE", "GREEN", "VINTAGE", "RETRO", "REGENCY", "HEART",
    "POLKADOT", "SPOTTY", "ROSE", "STRIPED", "LACE", "GINGHAM", "JUMBO", "SMALL", "LARGE",
)
_COUNTRIES = (
    ("United Kingdom", 0.88), ("Germany", 0.025), ("France", 0.022), ("EIRE", 0.02),
    ("Spain", 0.01), ("Netherlands", 0.01), ("Belgium", 0.008), ("Switzerland", 0.007),
    ("Portugal", 0.006), ("Australia", 0.006), ("Norway", 0.006),
)
# Per type: weight of each category (same order as CATEGORIES).
_PREFERENCES = {
    "occasional": (1, 1, 2, 3, 1, 2, 1, 1, 2, 1, 1, 1),
    "at_risk": (2, 1, 1, 1, 3, 1, 2, 2, 1, 2, 2, 1),
    "loyal": (3, 2, 1, 1, 2, 1, 3, 1, 1, 2, 1, 2),
    "high_value": (2, 3, 3, 2, 2, 1, 1, 1, 1, 3, 1, 1),
    "new": (1, 2, 2, 2, 1, 3, 1, 1, 3, 1, 1, 1),
}
COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
           "CustomerID", "Country")


@dataclass
class DemoData:
    """The generated lines (a pyarrow Table in Online Retail layout) and true types."""

    lines: object
    types: object  # pyarrow Table: customer_id, true_type

    def to_pandas(self):
        """The generated lines as a pandas DataFrame."""
        return self.lines.to_pandas()


def _seasonal_grid(start: dt.date, days: int) -> tuple[np.ndarray, np.ndarray]:
    grid = np.arange(days + 1, dtype=float)
    doy = np.array([(start + dt.timedelta(days=int(x))).timetuple().tm_yday for x in grid])
    density = 1.0 + 1.2 * np.exp(-(((doy - 328) / 28.0) ** 2)) + 0.3 * (doy > 245)
    cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2)])
    return grid, cdf / cdf[-1]


def _catalogue(rng: np.random.Generator, n_products: int):
    cat_idx = rng.integers(0, len(CATEGORIES), n_products)
    nouns = [CATEGORIES[c][1][rng.integers(0, len(CATEGORIES[c][1]))] for c in cat_idx]
    adj1 = rng.integers(0, len(_ADJECTIVES), n_products)
    adj2 = rng.integers(0, len(_ADJECTIVES), n_products)
    names, seen = [], set()
    for i in range(n_products):
        name = f"{_ADJECTIVES[adj1[i]]} {nouns[i]}"
        if name in seen:
            name = f"{_ADJECTIVES[adj2[i]]} {_ADJECTIVES[adj1[i]]} {nouns[i]}"
        if name in seen:
            name = f"{name} {i}"
        seen.add(name)
        names.append(name)
    codes = [f"{20000 + 37 * i:05d}" + ("ABCDEFG"[i % 7] if i % 5 == 0 else "") for i in range(n_products)]
    ranks = rng.permutation(n_products) + 1
    popularity = 1.0 / ranks**1.1
    price = np.round(np.exp(rng.normal(0.6, 0.75, n_products)) * 20) / 20 + 0.05
    return np.array(codes), np.array(names), cat_idx, popularity, price


def generate(
    customers: int = 4000,
    *,
    seed: int = 42,
    start: dt.date = dt.date(2023, 12, 1),
    days: int = 374,
    products: int | None = None,
    shares: tuple[float, ...] = DEFAULT_SHARES,
) -> DemoData:
    """Generate demo transactions for ``customers`` customers (about 70 lines each).

    The steps, each drawing from one seeded generator in turn: the catalogue,
    each customer's type and order dates (:func:`_orders`), the lines of every
    order and their products (:func:`_lines`, :func:`_products`), quantities and
    prices (:func:`_quantities_and_prices`), then the dirt real files have
    (:func:`_dirt`: postage, manual lines, bad-debt adjustments, returns, zero
    prices, duplicates) and the table in the UCI layout (:func:`_assemble`).
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    rng = np.random.default_rng(seed)
    n_products = products or int(min(50_000, max(300, 4 * customers ** 0.75)))
    catalogue = _catalogue(rng, n_products)
    models = _models(days)
    grid, cdf = _seasonal_grid(start, days)
    ctype = rng.choice(len(TYPES), size=customers, p=np.asarray(shares) / np.sum(shares))
    cust_ids = 12346 + rng.permutation(customers * 2)[:customers]
    orders = _orders(rng, ctype, models, grid, cdf, days)
    lines = _lines(rng, ctype, orders, models)
    product = _products(rng, ctype, lines, catalogue)
    quantity, price = _quantities_and_prices(rng, lines, product, catalogue, models)
    table = _assemble(rng, start, days, cust_ids, orders, lines, product, quantity, price, catalogue)
    types = pa.table({
        "customer_id": pa.array(cust_ids.astype(str)),
        "true_type": pa.array(np.array(TYPES)[ctype]),
    }).sort_by("customer_id")
    return DemoData(lines=table, types=types)


@dataclass
class _Orders:
    """Every order: whose (-1 for a guest), its type (-1 for a guest) and its time in seconds from the start."""

    seconds: np.ndarray
    customer: np.ndarray
    ctype: np.ndarray
    n_customer_orders: int  # the first n orders are customers', the rest guests'


def _orders(rng: np.random.Generator, ctype: np.ndarray, models: dict[str, _TypeModel], grid: np.ndarray,
            cdf: np.ndarray, days: int) -> _Orders:
    """Orders per customer inside each one's active window, on seasonal dates in shop hours, and guest orders."""
    customers = ctype.size
    n_orders = np.empty(customers, dtype=np.int64)
    win_lo = np.empty(customers)
    win_hi = np.empty(customers)
    for t, name in enumerate(TYPES):
        m = models[name]
        idx = np.flatnonzero(ctype == t)
        n_orders[idx] = m.base_orders + rng.poisson(m.extra_orders, idx.size)
        win_lo[idx] = rng.uniform(*m.start, idx.size)
        win_hi[idx] = rng.uniform(*m.end, idx.size)
    win_hi = np.maximum(win_hi, win_lo + 1)
    order_cust = np.repeat(np.arange(customers), n_orders)
    # seasonal dates inside each customer's window (inverse CDF)
    lo_c, hi_c = np.interp(win_lo, grid, cdf), np.interp(win_hi, grid, cdf)
    u = rng.uniform(size=order_cust.size)
    order_day = np.interp(lo_c[order_cust] + u * (hi_c - lo_c)[order_cust], cdf, grid)
    # the first order sits at the window start, so windows show in the data
    first_of_customer = np.r_[0, np.cumsum(n_orders)[:-1]]
    order_day[first_of_customer] = np.minimum(win_lo, days - 1e-3)
    # shop hours 8:00-18:00
    order_seconds = np.floor(order_day) * 86400 + rng.integers(8 * 3600, 18 * 3600, order_cust.size)
    # guest orders (no customer id)
    n_guest = int(0.12 * order_cust.size)
    guest_seconds = np.floor(np.interp(rng.uniform(size=n_guest), cdf, grid)) * 86400 + rng.integers(
        8 * 3600, 18 * 3600, n_guest
    )
    return _Orders(seconds=np.concatenate([order_seconds, guest_seconds]),
                   customer=np.concatenate([order_cust, np.full(n_guest, -1)]),
                   ctype=np.concatenate([ctype[order_cust], np.full(n_guest, -1)]),
                   n_customer_orders=order_cust.size)


@dataclass
class _Lines:
    """Every order line: its order, its order's rank in time (the invoice number) and customer and type."""

    order: np.ndarray
    order_rank: np.ndarray
    customer: np.ndarray
    ctype: np.ndarray


def _lines(rng: np.random.Generator, ctype: np.ndarray, orders: _Orders, models: dict[str, _TypeModel]) -> _Lines:
    """How many lines each order has; invoice numbers follow time."""
    lines_mean = np.array([models[n].lines for n in TYPES])
    n_lines = 1 + rng.poisson(lines_mean[orders.ctype[: orders.n_customer_orders]])
    n_lines_guest = 1 + rng.poisson(4, orders.seconds.size - orders.n_customer_orders)
    all_lines = np.concatenate([n_lines, n_lines_guest])
    order_rank = np.empty(orders.seconds.size, dtype=np.int64)
    order_rank[np.argsort(orders.seconds, kind="stable")] = np.arange(orders.seconds.size)
    line_order = np.repeat(np.arange(orders.seconds.size), all_lines)
    return _Lines(order=line_order, order_rank=order_rank, customer=orders.customer[line_order],
                  ctype=orders.ctype[line_order])


def _products(rng: np.random.Generator, ctype: np.ndarray, lines: _Lines, catalogue: tuple) -> np.ndarray:
    """The product of every line: by the type's category preferences, 35 % from the customer's favourites."""
    _, _, cat_idx, popularity, _ = catalogue
    n_products = popularity.size
    product = np.empty(lines.order.size, dtype=np.int64)
    type_probs = {}
    for t, name in enumerate(TYPES):
        w = popularity * np.asarray(_PREFERENCES[name], dtype=float)[cat_idx]
        type_probs[t] = w / w.sum()
    guest_p = popularity / popularity.sum()
    for t in range(len(TYPES)):
        idx = np.flatnonzero(lines.ctype == t)
        product[idx] = rng.choice(n_products, idx.size, p=type_probs[t])
    idx = np.flatnonzero(lines.ctype == -1)
    product[idx] = rng.choice(n_products, idx.size, p=guest_p)
    # favourites: each customer re-buys from eight products of their own
    favourites = np.empty((ctype.size, 8), dtype=np.int64)
    for t in range(len(TYPES)):
        cidx = np.flatnonzero(ctype == t)
        favourites[cidx] = rng.choice(n_products, (cidx.size, 8), p=type_probs[t])
    repeat = (lines.customer >= 0) & (rng.uniform(size=lines.order.size) < 0.35)
    product[repeat] = favourites[lines.customer[repeat], rng.integers(0, 8, repeat.sum())]
    # one line per product per order: a repeated draw moves to the next product
    for _ in range(3):
        key = lines.order * n_products + product
        _, first = np.unique(key, return_index=True)
        clash = np.ones(key.size, dtype=bool)
        clash[first] = False
        if not clash.any():
            break
        product[clash] = (product[clash] + 1 + rng.integers(0, n_products - 1, clash.sum())) % n_products
    return product


def _quantities_and_prices(rng: np.random.Generator, lines: _Lines, product: np.ndarray, catalogue: tuple,
                           models: dict[str, _TypeModel]) -> tuple[np.ndarray, np.ndarray]:
    """Quantities (geometric by type, a quarter in packs of six) and prices (bulk discount, rare odd prices)."""
    base_price = catalogue[4]
    unit_p = np.array([models[n].unit_p for n in TYPES] + [1 / 4])
    quantity = rng.geometric(unit_p[lines.ctype]).astype(np.int64)
    pack = rng.uniform(size=quantity.size) < 0.25
    quantity[pack] = np.ceil(quantity[pack] / 6) * 6
    price_factor = np.array([models[n].price_factor for n in TYPES] + [1.0])
    price = np.round(base_price[product] * np.where(quantity >= 24, 0.85, 1.0), 2)
    price = np.round(price * np.where(rng.uniform(size=price.size) < 0.02, price_factor[lines.ctype], 1.0), 2)
    return quantity, price


def _line_table(start: dt.date, inv, code, dsc, qty, secs, prc, cust, ctry) -> pa.Table:
    """Lines in the UCI layout (dates still timestamps)."""
    epoch = np.asarray(secs, dtype=np.int64) + _epoch_seconds(start)
    return pa.table({
        "InvoiceNo": pa.array(inv, type=pa.string()),
        "StockCode": pa.array(code, type=pa.string()),
        "Description": pa.array(dsc, type=pa.string()),
        "Quantity": pa.array(np.asarray(qty, dtype=np.int64)),
        "InvoiceDate": pa.array(epoch, type=pa.timestamp("s")),
        "UnitPrice": pa.array(np.asarray(prc, dtype=float)),
        "CustomerID": pa.array(cust, type=pa.string()),
        "Country": pa.array(ctry, type=pa.string()),
    })


def _assemble(rng: np.random.Generator, start: dt.date, days: int, cust_ids: np.ndarray, orders: _Orders,
              lines: _Lines, product: np.ndarray, quantity: np.ndarray, price: np.ndarray,
              catalogue: tuple) -> pa.Table:
    """The lines as the UCI file has them: texts, countries, then the dirt, sorted by date and invoice."""
    codes, names = catalogue[0], catalogue[1]
    customers = cust_ids.size
    line_cust, line_order, order_rank = lines.customer, lines.order, lines.order_rank
    n_guest = orders.seconds.size - orders.n_customer_orders
    invoice = pa.array(536365 + order_rank[line_order]).cast(pa.string())
    seconds = orders.seconds[line_order]
    stock = pa.array(codes).take(pa.array(product))
    desc_np = names[product].astype(object)
    variant = np.flatnonzero(rng.uniform(size=desc_np.size) < 0.01)
    desc_np[variant] = [d + " " for d in desc_np[variant]]  # trailing-space variants
    desc = pa.array(desc_np, type=pa.string())
    country_names = np.array([c for c, _ in _COUNTRIES])
    country_p = np.array([p for _, p in _COUNTRIES])
    cust_country = rng.choice(country_names.size, customers, p=country_p / country_p.sum())
    guest_country = rng.choice(country_names.size, n_guest, p=country_p / country_p.sum())
    country_idx = np.where(
        line_cust >= 0,
        cust_country[np.maximum(line_cust, 0)],
        guest_country[np.maximum(line_order - orders.n_customer_orders, 0)],
    )
    country = pa.array(country_names).take(pa.array(country_idx))
    cust_text = pc.binary_join_element_wise(pa.array(cust_ids).cast(pa.string()), ".0", "")
    cust_str = cust_text.take(pa.array(np.maximum(line_cust, 0)))
    cust_str = pc.if_else(pa.array(line_cust >= 0), cust_str, "")
    extra = _non_product_lines(rng, days, cust_ids, orders, lines, np.array(country_names)[country_idx])
    # returns: C invoices cancelling part or all of a line, within 20 days
    ret = np.flatnonzero((line_cust >= 0) & (rng.uniform(size=line_order.size) < 0.02))
    ret_qty = -np.maximum(1, np.floor(quantity[ret] * rng.uniform(0.2, 1.0, ret.size))).astype(np.int64)
    full = rng.uniform(size=ret.size) < 0.6
    ret_qty[full] = -quantity[ret][full]
    ret_seconds = np.minimum(seconds[ret] + rng.integers(600, 20 * 86400, ret.size), days * 86400 - 1)
    zero = rng.uniform(size=line_order.size) < 0.001
    price = price.astype(float)
    price[zero] = 0.0

    main = _line_table(start, invoice, stock, desc, quantity, seconds, price, cust_str, country)
    take = pa.array(ret)
    returns = _line_table(
        start, [f"C{600000 + i}" for i in range(ret.size)],
        stock.take(take), desc.take(take), ret_qty, ret_seconds, price[ret], cust_str.take(take),
        country.take(take),
    )
    parts = [main, returns]
    if extra:
        cols = list(zip(*extra, strict=True))
        parts.append(_line_table(start, *[list(c) for c in cols]))
    dups = rng.choice(main.num_rows, max(1, main.num_rows // 100), replace=False)
    parts.append(main.take(pa.array(np.sort(dups))))
    table = pa.concat_tables(parts)
    order = pc.sort_indices(table, sort_keys=[("InvoiceDate", "ascending"), ("InvoiceNo", "ascending")])
    table = table.take(order)
    # text dates as in the UCI CSV: 2010-12-01 08:26:00
    return table.set_column(
        table.schema.get_field_index("InvoiceDate"), "InvoiceDate",
        pc.cast(table["InvoiceDate"], pa.string()),
    )


def _non_product_lines(rng: np.random.Generator, days: int, cust_ids: np.ndarray, orders: _Orders, lines: _Lines,
                       line_country: np.ndarray) -> list[tuple]:
    """Postage on 5 % of orders, DOTCOM postage on 1 %, manual lines on 0.2 %, and bad-debt adjustments."""
    extra = []
    order_rank, line_order = lines.order_rank, lines.order
    for code, text, share in (("POST", "POSTAGE", 0.05), ("DOT", "DOTCOM POSTAGE", 0.01), ("M", "Manual", 0.002)):
        for o in np.flatnonzero(rng.uniform(size=orders.seconds.size) < share):
            c = orders.customer[o]
            if code == "POST":
                amount = 18.0 if rng.uniform() < 0.7 else 40.0
            else:
                amount = float(np.round(rng.uniform(5, 600) if code == "DOT" else rng.uniform(0.5, 50), 2))
            extra.append((str(536365 + order_rank[o]), code, text, 1, orders.seconds[o], amount,
                          f"{cust_ids[c]}.0" if c >= 0 else "", line_country[np.searchsorted(line_order, o)]))
    for k in range(max(1, orders.seconds.size // 20000)):
        extra.append((f"A{563185 + k}", "B", "Adjust bad debt", 1, float(rng.integers(0, days) * 86400 + 36000),
                      -float(np.round(rng.uniform(1000, 12000), 2)), "", "United Kingdom"))
    return extra


def _epoch_seconds(day: dt.date) -> int:
    return int((dt.datetime.combine(day, dt.time()) - dt.datetime(1970, 1, 1)).total_seconds())


def types_path(out: str | Path) -> Path:
    """Where :func:`write` puts the true customer types for ``out``."""
    out = Path(out)
    name = out.name
    for suffix in (".gz", ".csv", ".parquet"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return out.with_name(f"{name}.types.csv")


def write(data: DemoData, out: str | Path) -> tuple[Path, Path]:
    """Write the lines (CSV, ``.csv.gz`` or Parquet by suffix) and the types side file."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out = Path(out)
    with atomic_path(out) as tmp:
        if out.suffix == ".parquet":
            pq.write_table(data.lines, tmp)
        elif out.name.endswith(".gz"):
            import pyarrow as pa

            with pa.CompressedOutputStream(str(tmp), "gzip") as stream:
                pacsv.write_csv(data.lines, stream)
        else:
            pacsv.write_csv(data.lines, tmp)
    side = types_path(out)
    with atomic_path(side) as tmp:
        pacsv.write_csv(data.types, tmp)
    return out, side
