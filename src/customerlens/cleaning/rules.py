"""Stage 2: named, switchable cleaning rules, each counted in a quality report.

Input: canonical transactions (see :mod:`customerlens.io.load`), as any frame
narwhals reads (a DuckDB relation by default, pandas or Polars too). Output: the
clean lines, in the same engine, with returns netted into the purchases they
cancel, plus a :class:`QualityReport` in which every input line is accounted
for exactly once: ``input_lines == kept_lines + sum(lines removed per rule)``.

The rules, applied in this order (a line is counted under the first rule that
removes it):

``unparseable``
    a date, quantity, price or amount that is empty or cannot be read.
``implausible_date``
    dated before ``earliest_date`` (1990-01-01) or after ``latest_date`` (by
    default tomorrow): a typo (year 1, 2099) or a placeholder (9999-12-31) would
    otherwise move the snapshot and give recencies of thousands of years.
``implausible_value``
    a quantity, unit price or line amount that is not a finite number (NaN,
    infinity) or absurdly large (above ``max_quantity``, ``max_price``,
    ``max_amount``): 1e308 units would make revenue infinite. Its amount counts
    as no revenue in the report, so no figure meant for people is inf or nan.
``after_as_of``
    dated on or after the snapshot (only with ``as_of``): later lines must not
    leak into an analysis as of an earlier date, not even through returns.
``missing_customer``
    no customer id: the line cannot be attributed to anyone.
``exact_duplicate``
    the same order, product, date, quantity and price as an earlier line (the
    first one is kept). Only applied when the input has order ids: without them
    two equal lines can be two real purchases.
``non_product``
    postage, fees, manual adjustments, samples, bank charges, vouchers
    (:data:`DEFAULT_NON_PRODUCT_CODES`, overridable).
``non_merchandise``
    lines that are not goods, recognised by their product name (or code): fuel,
    bottle deposits, bag fees, coupons, gift cards and vouchers, shipping and
    postage, service and handling charges, tips and taxes
    (:data:`DEFAULT_NON_MERCHANDISE`, a regular expression on the upper-cased
    name, overridable). Such lines are never recommended and never counted as
    items; ``ingest`` lists the products caught.
``quantity_outlier``
    every line of a product whose usual quantity is out of all proportion: the median quantity of
    its lines is at least ``outlier_quantity`` (1,000) and 100 times the median line's, over at
    least 5 lines. Fuel pumps report litres in thousandths (a 45-litre fill is quantity 45,000),
    scales report grams: such quantities are not items, so these products are never counted as
    items nor recommended. A single large order (a wholesaler's 1,300 tea towels) is not a
    pattern and is kept; on Online Retail the rule catches nothing. ``ingest`` lists the products.
``non_positive_price``
    a negative unit price (including "Adjust bad debt"), zero quantity, or a zero
    price in data with products (free items, adjustments). Without products a
    zero amount is kept: it is still a purchase occasion (CDNOW has 80).
``return_netted`` / ``return_unmatched`` / ``cancelled_by_return``
    a return (negative quantity, e.g. an Online Retail ``C`` invoice) is netted
    against the same customer's earlier purchases of the same product, latest
    first: the purchase lines keep their net quantity and record what was
    returned (``returned_quantity``, ``returned_amount``); purchase lines
    returned in full are removed as ``cancelled_by_return``; the return line
    itself is removed as ``return_netted``. A return with no earlier purchase
    of that product by that customer in the data (it cancels a purchase made
    before the data starts) is removed as ``return_unmatched``. For data
    without products (CDNOW, bank transactions), refunds are netted by value
    against the customer's earlier transactions.

So a customer's monetary value is net of returns, and a fully cancelled order
no longer counts as an order.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import narwhals as nw

from customerlens.core.db import quote
from customerlens.core.db import run as run_sql
from customerlens.core.frames import collect, count_rows

log = logging.getLogger(__name__)

#: Stock codes that are not products in Online Retail-style data (compared in
#: upper case): postage, carriage, fees, manual lines, discounts, samples,
#: commissions, bad-debt adjustments, pads. Override with ``CleaningConfig``.
DEFAULT_NON_PRODUCT_CODES = (
    "POST", "DOT", "C2", "M", "BANK CHARGES", "AMAZONFEE", "CRUK", "D", "S", "PADS", "B",
    "ADJUST", "ADJUST2", "TEST001", "TEST002",
)
#: Code prefixes that are not products (gift vouchers), compared in upper case.
DEFAULT_NON_PRODUCT_PREFIXES = ("GIFT_",)
#: Names of lines that are not goods (matched on the upper-cased product name and code): fuel,
#: deposits, bag fees, coupons, gift cards, vouchers, shipping, service charges, tips and taxes.
#: Plain regular expression syntax that DuckDB (RE2), Spark (Java), pandas and Polars all read.
#: Checked on Online Retail's 4,070 product names: it catches postage and gift vouchers only.
DEFAULT_NON_MERCHANDISE = (
    r"\bFUEL\b|GASOLINE|\bPETROL\b|\bDIESEL\b|UNLEADED"
    r"|\bDEPOSIT\b|\bPFAND\b|BOTTLE REFUND"
    r"|\bBAGS? (?:FEE|CHARGE|LEVY|TAX)\b|CARRIER BAG CHARGE"
    r"|\bCOUPONS?\b|\bCPN\b"
    r"|GIFT ?CARDS?\b|GIFTCARD|\bVOUCHERS?\b"
    r"|\bSHIPPING\b|\bPOSTAGE\b|\bFREIGHT\b|\bDELIVERY (?:CHARGE|FEE)\b"
    r"|\bSERVICE (?:CHARGE|FEE)\b|\bHANDLING (?:CHARGE|FEE)\b|\bSURCHARGE\b"
    r"|^TIPS?$|\bGRATUITY\b"
    r"|\bSALES TAX\b|^TAX$|\bVAT\b"
)

RULES: dict[str, str] = {
    "unparseable": "date, quantity, price or amount empty or unreadable",
    "implausible_date": "dated before 1990 or after tomorrow (a typo, or a placeholder such as 9999-12-31)",
    "implausible_value": "quantity, price or amount not a finite number, or absurdly large",
    "after_as_of": "dated on or after the --as-of snapshot",
    "missing_customer": "no customer id",
    "exact_duplicate": "same order, product, date, quantity and price as an earlier line",
    "non_product": "postage, fees, adjustments, samples, vouchers (non-product codes)",
    "non_merchandise": "not goods, by name: fuel, deposits, bag fees, coupons, gift cards, shipping, "
                       "service charges, tips, taxes",
    "quantity_outlier": "products whose usual quantity per line is out of all proportion (fuel in "
                        "thousandths of a litre, grams): not items",
    "non_positive_price": "zero or negative unit price, or zero quantity",
    "return_netted": "return netted against the customer's earlier purchases",
    "return_unmatched": "return of a purchase not in the data (made before it starts)",
    "cancelled_by_return": "purchase line returned in full",
}

#: Columns of the clean transactions, in order.
CLEAN_COLUMNS = (
    "source_row", "customer_id", "order_id", "order_date", "product_id", "product_name",
    "quantity", "unit_price", "amount", "returned_quantity", "returned_amount",
    "country", "channel", "category",
)
_DUP_COLUMNS = ("customer_id", "order_id", "order_date", "product_id", "product_name",
                "quantity", "unit_price", "amount")
_EPS = 1e-9
#: Up to this many lines, the labelled lines are copied on every thread and sorted (in memory, quicker:
#: Online Retail's 540,000 lines 0.4 s against 1.0 s on one thread); above, copied on one thread in
#: order (10M lines: 7.4 s sorted, 5.8 s on one thread)
SORT_IN_MEMORY = 2_000_000
#: numbers the labelled-lines table of each call (a result stays valid after the next call)
_RESULTS = itertools.count(1)
#: the cleaning's intermediate tables, read only while the labelled lines are built. Dropped then (with
#: ``con``): left in place, the input's copy and the labelled lines both held every line, and DuckDB
#: wrote the unread copy to its spill folder when later stages needed the memory (10M lines: 1.5 GB
#: held in memory and 1.2 GB spilled by the time the store was written)
_STEPS = ("_cl_input", "_cl_repeats", "_cl_outliers", "_cl_returns", "_cl_return_buys", "_cl_adjustments")


@dataclass(frozen=True)
class CleaningConfig:
    """Which rules run, and the non-product code list. Every rule is on by default."""

    unparseable: bool = True
    missing_customer: bool = True
    exact_duplicate: bool = True
    non_product: bool = True
    non_merchandise: bool = True
    quantity_outlier: bool = True
    non_positive_price: bool = True
    net_returns: bool = True
    implausible_date: bool = True
    implausible_value: bool = True
    non_product_codes: tuple[str, ...] = DEFAULT_NON_PRODUCT_CODES
    non_product_prefixes: tuple[str, ...] = DEFAULT_NON_PRODUCT_PREFIXES
    #: regular expression on the upper-cased product name and code (see ``non_merchandise``)
    non_merchandise_pattern: str = DEFAULT_NON_MERCHANDISE
    #: dates outside [earliest_date, latest_date] are implausible; latest_date None: tomorrow (the run's day + 1)
    earliest_date: dt.date = dt.date(1990, 1, 1)
    latest_date: dt.date | None = None
    #: larger quantities, unit prices or line amounts (in absolute value) are implausible
    max_quantity: float = 1e9
    max_price: float = 1e9
    max_amount: float = 1e12
    #: a product is a quantity outlier when its lines' median quantity is at least this and
    #: ``outlier_ratio`` times the median line's, over at least ``outlier_lines`` lines
    outlier_quantity: float = 1_000.0
    outlier_ratio: float = 100.0
    outlier_lines: int = 5

    def without(self, *rules: str) -> CleaningConfig:
        """A copy with the named rules switched off (``returns`` = ``net_returns``)."""
        names = {"returns": "net_returns", "return_netted": "net_returns"}
        changes = {}
        for rule in rules:
            key = names.get(rule, rule)
            if key not in SWITCHES and key != "net_returns":
                raise ValueError(f"unknown cleaning rule {rule!r}; rules: {', '.join(SWITCHES)}")
            changes[key] = False
        return CleaningConfig(**{**asdict(self), **changes})


SWITCHES = ("unparseable", "implausible_date", "implausible_value", "missing_customer", "exact_duplicate",
            "non_product", "non_merchandise", "quantity_outlier", "non_positive_price", "returns")


@dataclass
class RuleCount:
    """One rule's entry in the quality report: whether it was on, the lines and revenue it removed, a note."""

    rule: str
    description: str
    enabled: bool
    lines: int = 0
    revenue: float = 0.0
    note: str | None = None


@dataclass
class QualityReport:
    """Lines and revenue affected per rule; the counts add up to the input."""

    input_lines: int
    kept_lines: int
    input_revenue: float
    kept_revenue: float
    rules: list[RuleCount]
    input_customers: int
    kept_customers: int
    partially_returned_lines: int = 0
    returned_value_netted: float = 0.0
    excess_return_value: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def removed_lines(self) -> int:
        """Lines removed by all the rules together."""
        return sum(r.lines for r in self.rules)

    def is_consistent(self) -> bool:
        """Whether the kept and removed lines add up to the input (every line accounted for)."""
        return self.input_lines == self.kept_lines + self.removed_lines

    def as_dict(self) -> dict:
        """The report as JSON-ready data: totals, revenue rounded to cents, one entry per rule, and ``extra``."""
        return {
            "input_lines": self.input_lines,
            "kept_lines": self.kept_lines,
            "removed_lines": self.removed_lines,
            "lines_accounted_for": self.is_consistent(),
            "input_revenue": round(self.input_revenue, 2),
            "kept_revenue": round(self.kept_revenue, 2),
            "input_customers": self.input_customers,
            "kept_customers": self.kept_customers,
            "partially_returned_lines": self.partially_returned_lines,
            "returned_value_netted": round(self.returned_value_netted, 2),
            "excess_return_value": round(self.excess_return_value, 2),
            "rules": [
                {**asdict(r), "revenue": round(r.revenue, 2)} for r in self.rules
            ],
            **self.extra,
        }

    def to_frame(self):
        """One row per rule (a pandas DataFrame), revenue rounded to cents as in :meth:`as_dict`."""
        import pandas as pd

        # revenue in cents, as in as_dict: the 6th decimal of a sum can differ between runs (the
        # engine's summation order), cents do not
        return pd.DataFrame([{**asdict(r), "revenue": round(r.revenue, 2)} for r in self.rules])


@dataclass
class CleanResult:
    """Clean lines (native frame of the input's engine), excluded lines, report."""

    transactions: Any
    excluded: Any
    report: QualityReport


def clean(
    transactions: Any,
    config: CleaningConfig | None = None,
    *,
    has_products: bool | None = None,
    has_order_ids: bool | None = None,
    as_of: dt.datetime | None = None,
    con: Any = None,
) -> CleanResult:
    """Apply the cleaning rules to canonical transactions.

    Parameters
    ----------
    transactions
        Canonical transactions with ``source_row`` and ``parse_error`` (as
        :func:`customerlens.io.load.load` produces), as a DuckDB relation, pandas
        or Polars frame.
    config
        Rule switches and the non-product list.
    has_products, has_order_ids
        Whether product ids / real order ids exist; inferred when omitted.
    as_of
        Snapshot: lines on or after it are removed (rule ``after_as_of``)
        before returns are netted.
    con
        The DuckDB connection a relation ``transactions`` belongs to (optional). The steps the
        cleaning computes once are then read back as that connection's tables, so the steps after
        them do not bind every step before them again (on Online Retail: 179 binds instead of 815).
    """
    config = config or CleaningConfig()
    frame = nw.from_native(transactions)
    if "parse_error" not in frame.columns:
        frame = frame.with_columns(parse_error=nw.lit(None, dtype=nw.String()))
    if has_products is None:
        has_products = count_rows(frame.filter(nw.col("product_id").is_null().__invert__())) > 0
    if has_order_ids is None:
        has_order_ids = has_products
    labelled = _label(frame, config, has_products, has_order_ids, as_of, con)
    # computed once: the report, the clean lines and the excluded lines all read it, and
    # every later stage reads the clean lines again (features, store, insights)
    extra = [c for c in ("_rule", "_excess", "_orig_amount") if c in labelled.columns]
    labelled = _materialize(labelled.select(*CLEAN_COLUMNS, *extra), f"_cl_labelled_{next(_RESULTS)}",
                            in_input_order=True, joined=True, lines=_input_lines(labelled), con=con)
    if con is not None:  # the labelled lines stand alone (a table of con): the steps that built them can go
        for step in _STEPS:
            run_sql(con, f"DROP TABLE IF EXISTS {step}")
    report = _report(labelled, config, has_products, has_order_ids, as_of)
    kept = labelled.filter(nw.col("_rule").is_null()).select(*CLEAN_COLUMNS)
    excluded = labelled.filter(nw.col("_rule").is_null().__invert__()).select(
        "source_row", nw.col("_rule").alias("rule")
    )
    return CleanResult(
        transactions=kept.to_native(), excluded=excluded.to_native(), report=report
    )


# --------------------------------------------------------------------------- rules


def _label(frame, config: CleaningConfig, has_products: bool, has_order_ids: bool, as_of=None, con=None):
    """Add ``_rule`` (first rule removing the line, or null) and netted columns."""
    col = nw.col
    # The rules that look at one line only are worked out once, as the input is copied
    # (returns netting and the labelling read them again, and the name pattern is a regular
    # expression over every line); the two that need other lines (duplicates, outlier
    # products) are joined in between, in the rules' order.
    early: list[Any] = []
    if config.unparseable:
        early.append(_named("unparseable", col("parse_error").is_null().__invert__()))
    if config.implausible_date:
        latest = config.latest_date or (dt.date.today() + dt.timedelta(days=1))
        too_early = col("order_date") < nw.lit(dt.datetime.combine(config.earliest_date, dt.time()))
        too_late = col("order_date") >= nw.lit(dt.datetime.combine(latest + dt.timedelta(days=1), dt.time()))
        early.append(_named("implausible_date", (too_early | too_late).fill_null(False)))
    if config.implausible_value:
        # NaN and infinities fail "abs(x) <= limit" on every engine, as do absurd sizes; nulls are unparseable's
        absurd = None
        for name, limit in (("quantity", config.max_quantity), ("unit_price", config.max_price),
                            ("amount", config.max_amount)):
            bad = (col(name).abs() <= limit).__invert__().fill_null(False)
            absurd = bad if absurd is None else absurd | bad
        early.append(_named("implausible_value", absurd))
    if as_of is not None:
        early.append(_named("after_as_of", col("order_date") >= nw.lit(as_of)))
    if config.missing_customer:
        early.append(_named("missing_customer", col("customer_id").is_null()))
    middle: list[Any] = []
    if config.non_product and has_products:
        code = col("product_id").str.to_uppercase()
        # equalities, not is_in: DuckDB runs a list of constants as a join, which loses the lines' order
        is_fee = nw.lit(False)
        for fee in config.non_product_codes:
            is_fee = is_fee | (code == fee.upper())
        for prefix in config.non_product_prefixes:
            is_fee = is_fee | code.str.starts_with(prefix.upper())
        middle.append(_named("non_product", is_fee.fill_null(False)))
    if config.non_merchandise and has_products:
        pattern = config.non_merchandise_pattern
        by_name = col("product_name").str.to_uppercase().str.contains(pattern).fill_null(False)
        by_code = col("product_id").str.to_uppercase().str.contains(pattern).fill_null(False)
        middle.append(_named("non_merchandise", by_name | by_code))
    late: list[Any] = []
    if config.non_positive_price:
        # a zero price is a free item or an adjustment in product data; without
        # products a zero amount is still a purchase occasion (CDNOW has 80)
        zero_price = (col("unit_price") <= 0) if has_products else (col("unit_price") < 0)
        bad_price = col("unit_price").is_null() | zero_price | (col("quantity") == 0)
        late.append(_named("non_positive_price", bad_price))
    # the input may be a view that parses text on every read (see load.py):
    # parse it once, since the duplicate check reads it twice
    frame = _materialize(
        frame.with_columns(_rule_early=_first(early), _rule_middle=_first(middle), _rule_late=_first(late)),
        "_cl_input", in_input_order=True, con=con,
    )
    rules: list[Any] = [col("_rule_early")]
    if config.exact_duplicate and has_order_ids:
        frame = frame.join(_repeats(frame, con), on="source_row", how="left")
        rules.append(_named("exact_duplicate", col("_repeat").fill_null(False)))
    rules.append(col("_rule_middle"))
    if config.quantity_outlier and has_products:
        frame = frame.join(_outlier_products(frame, config, con), on="product_id", how="left")
        rules.append(_named("quantity_outlier", col("_outlier").fill_null(False)))
    rules.append(col("_rule_late"))

    frame = frame.with_columns(_rule=_first(rules))
    if config.net_returns:
        return _net_returns(frame, has_products, con)
    return frame.with_columns(
        returned_quantity=nw.lit(0.0), returned_amount=nw.lit(0.0), _excess=nw.lit(0.0)
    )


def _repeats(frame, con=None):
    """``source_row, _repeat``: the lines equal to an earlier line in every one of :data:`_DUP_COLUMNS`.

    The row numbers of the repeats (all but the first of each group of equal lines): a hash
    aggregate and an anti-join on the row number are much cheaper than a window over 8 columns,
    and the result is small.
    """
    col = nw.col
    if con is not None and _is_duckdb(frame):
        # ``frame`` is the table _cl_input. Equal lines have equal hashes (DuckDB's own grouping rests
        # on it), so only lines whose hash of the eight columns is shared can be repeats: a group-by
        # of one 64-bit hash finds those few, and the exact group-by runs on them alone. The same
        # rows; at 10M lines 1.4 s instead of 3.1 s, and far less to spill at 100M.
        columns = ", ".join(quote(c) for c in _DUP_COLUMNS)
        run_sql(
            con,
            "CREATE OR REPLACE TEMP TABLE _cl_repeats AS "
            f"WITH hashed AS (SELECT source_row, hash({columns}) AS _h FROM _cl_input), "
            "shared AS (SELECT _h FROM hashed GROUP BY _h HAVING count(*) > 1), "
            "candidates AS (SELECT * FROM _cl_input SEMI JOIN "
            "(SELECT source_row FROM hashed SEMI JOIN shared USING (_h)) AS s USING (source_row)) "
            "SELECT source_row, true AS _repeat FROM candidates ANTI JOIN "
            f"(SELECT min(source_row) AS _first_row FROM candidates GROUP BY {columns}) AS f "
            "ON candidates.source_row = f._first_row",
        )
        return nw.from_native(con.table("_cl_repeats"))
    firsts = frame.group_by(*_DUP_COLUMNS).agg(col("source_row").min().alias("_first_row"))
    return _materialize(
        frame.select("source_row")
        .join(firsts, left_on="source_row", right_on="_first_row", how="anti")
        .with_columns(_repeat=nw.lit(True)),
        "_cl_repeats", con=con,
    )


def _is_duckdb(frame) -> bool:
    import duckdb

    return isinstance(frame.to_native(), duckdb.DuckDBPyRelation)


def _input_lines(frame) -> int | None:
    """How many lines the cleaning's input copy holds (DuckDB: a count of the table, no scan)."""
    if not _is_duckdb(frame):
        return None
    return frame.to_native().query("_cl_self", "SELECT count(*) FROM _cl_input").fetchall()[0][0]


def _named(name: str, condition):
    """The rule ``name`` where ``condition`` holds, else null."""
    return nw.when(condition).then(nw.lit(name))


def _first(rules: list):
    """The first of ``rules`` (rule names, null where a rule does not apply) that applies, else null."""
    return nw.coalesce(*rules, nw.lit(None, dtype=nw.String()))


def _outlier_products(frame, config: CleaningConfig, con=None):
    """``product_id, _outlier`` of the products whose usual quantity is out of all proportion."""
    col = nw.col
    bought = frame.filter(col("parse_error").is_null() & (col("quantity") > 0) & col("product_id").is_null().__invert__())
    typical = collect(bought.select(col("quantity").median())).item(0, 0)
    limit = max(config.outlier_quantity, config.outlier_ratio * float(typical or 0.0))
    per_product = bought.group_by("product_id").agg(col("quantity").median().alias("_median"),
                                                    nw.len().alias("_lines"))
    return _materialize(
        per_product.filter((col("_median") >= limit) & (col("_lines") >= config.outlier_lines))
        .select("product_id", nw.lit(True).alias("_outlier")),
        "_cl_outliers", con=con,
    )


def _net_returns(frame, has_products: bool, con=None):
    """Net returns against the same customer's earlier purchases, latest first.

    Per-key totals are group-bys joined back, and the ordered allocation runs
    only over the purchases of keys that have returns, so the cost stays close
    to one scan of the data.
    """
    col = nw.col
    key = ["customer_id", "product_id"] if has_products else ["customer_id"]
    measure = "quantity" if has_products else "amount"
    live = col("_rule").is_null()
    frame = frame.with_columns(
        _is_return=(live & (col("quantity") < 0)).fill_null(False),
        _is_buy=(live & (col("quantity") > 0)).fill_null(False),
        _size=col(measure).abs(),
    )
    # Only keys (customer, product) that have a return matter: find them first
    # and work on their lines only, a small fraction of the data.
    returns = _materialize(
        frame.filter(col("_is_return")).select("source_row", *key, "order_date", "_size", "amount"),
        "_cl_returns", con=con,
    )
    buys = _materialize(
        frame.filter(col("_is_buy"))
        .select("source_row", *key, "order_date", "_size")
        .join(returns.select(*key).unique(), on=key, how="inner"),
        "_cl_return_buys", con=con,
    )
    first_buy = buys.group_by(*key).agg(col("order_date").min().alias("_first_buy"))
    returns = returns.join(first_buy, on=key, how="left").with_columns(
        _matched=(col("_first_buy") <= col("order_date")).fill_null(False),
    )
    per_key = (
        returns.filter(col("_matched"))
        .with_columns(_value=-col("amount"))
        .group_by(*key)
        .agg(
            col("_size").sum().alias("_returned"),
            col("_value").sum().alias("_returned_value"),
            col("order_date").max().alias("_last_return"),
        )
        # rounded: the sum's last bits depend on the engine's order
        .with_columns(_returned_value=col("_returned_value").round(6))
    )
    eligible = (
        buys.join(per_key, on=key, how="inner")
        .filter(col("order_date") <= col("_last_return"))
        .with_columns(
            # this purchase and the later ones, in time order (LIFO allocation)
            _later=col("_size").cum_sum(reverse=True).over(*key, order_by=["order_date", "source_row"]),
        )
    )
    left = col("_returned") - (col("_later") - col("_size"))
    eligible = eligible.with_columns(
        _alloc=nw.when(left <= 0).then(0.0).when(left >= col("_size")).then(col("_size")).otherwise(left),
        # refunded at the return lines' own average price: money actually given back
        _price=col("_returned_value") / col("_returned"),
    )
    eligible_total = eligible.group_by(*key).agg(col("_size").sum().alias("_elig_total"))
    excess = (
        per_key.join(eligible_total, on=key, how="left")
        .with_columns(
            _excess_qty=nw.when(col("_returned") > col("_elig_total").fill_null(0.0) + _EPS)
            .then(col("_returned") - col("_elig_total").fill_null(0.0))
            .otherwise(0.0)
        )
        .select(*key, "_excess_qty", "_returned", "_returned_value")
    )
    # spread each key's excess over its matched returns, so it sums right
    returns = returns.join(excess, on=key, how="left").with_columns(
        _excess=nw.when(col("_matched"))
        .then(col("_excess_qty").fill_null(0.0) * col("_returned_value") / col("_returned") * col("_size") / col("_returned"))
        .otherwise(0.0)
    ).select("source_row", "_matched", "_excess")
    # one narrow table of adjustments (a few rows per return), computed once and
    # joined back: the wide lines are never copied again
    allocations = eligible.select(
        "source_row",
        col("_alloc").cast(nw.Float64()),
        col("_price").cast(nw.Float64()),
        nw.lit(False).alias("_matched"),
        nw.lit(0.0).alias("_excess"),
    )
    return_marks = returns.select(
        "source_row",
        nw.lit(0.0).alias("_alloc"),
        nw.lit(0.0).alias("_price"),
        "_matched",
        col("_excess").cast(nw.Float64()),
    )
    adjustments = _materialize(nw.concat([allocations, return_marks]), "_cl_adjustments", con=con)
    frame = frame.join(adjustments, on="source_row", how="left").with_columns(
        _alloc=col("_alloc").fill_null(0.0),
        _matched=col("_matched").fill_null(False),
        _excess=col("_excess").fill_null(0.0),
    )
    if has_products:
        returned_qty = col("_alloc")
        returned_amt = col("_alloc") * col("_price")
    else:
        returned_amt = col("_alloc")
        returned_qty = col("quantity") * col("_alloc") / col("amount")
    frame = frame.with_columns(
        returned_quantity=nw.when(col("_alloc") > 0).then(returned_qty).otherwise(0.0),
        returned_amount=nw.when(col("_alloc") > 0).then(returned_amt).otherwise(0.0),
    )
    fully_returned = col("_is_buy") & (col("_alloc") > 0) & (col("_alloc") >= col("_size") - _EPS)
    rule = (
        nw.when(col("_is_return") & col("_matched")).then(nw.lit("return_netted"))
        .when(col("_is_return")).then(nw.lit("return_unmatched"))
        .when(fully_returned).then(nw.lit("cancelled_by_return"))
        .otherwise(col("_rule"))
    )
    return frame.with_columns(
        _rule=rule,
        _orig_amount=col("amount"),
        quantity=col("quantity") - col("returned_quantity"),
        amount=col("amount") - col("returned_amount"),
    )


# --------------------------------------------------------------------------- report


def _materialize(frame, name: str = "_cl_labelled", *, in_input_order: bool = False, joined: bool = False,
                 lines: int | None = None, con=None):
    """Compute a frame once; every later read reuses the result.

    ``in_input_order``: the table holds the lines in ``source_row`` order (the store writes
    them as they are, without sorting 100M lines again); ``joined``: the frame joins the
    lines to other tables, about ``lines`` of them. Other tables keep whatever order the engine gives.
    ``con``: the DuckDB relation's connection, if known: the result is read back as its table (a
    relation of one step), not as a query over the relation (which binds all its steps again).
    """
    native = frame.to_native()
    import duckdb

    if isinstance(native, duckdb.DuckDBPyRelation):
        # a temp table in the relation's own connection: stays in DuckDB,
        # spills to disk when large, never passes through Python
        if in_input_order and "source_row" in native.columns:
            _create_in_order(native, name, joined, lines, con)
        else:
            native.query("_cl_self", f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _cl_self")
        if con is not None:
            return nw.from_native(con.table(name))
        return nw.from_native(native.query("_cl_self", f"SELECT * FROM {name}"))
    if type(native).__module__.startswith("pyspark."):
        # computed once on the executors and kept there (memory, spilling to
        # disk); the plan is cut, so later joins do not recompute the lines
        return nw.from_native(native.localCheckpoint(eager=True))
    if isinstance(frame, nw.LazyFrame):
        return frame.collect().lazy()
    return frame


def _create_in_order(native, name: str, joined: bool, lines: int | None = None, con=None) -> None:
    """``CREATE TEMP TABLE name`` from ``native``, its rows in ``source_row`` order.

    A copy of a scan keeps the scan's order, which is the input's (DuckDB keeps insertion
    order through projections and filters). After a join DuckDB promises no order, and
    sorting every line (wide rows, spilled to disk at 100M lines) cost more than the rest
    of the cleaning together; copied on one thread, a join streams its input as it comes.
    So a joined frame is copied on one thread, every copy is checked with one narrow scan,
    and sorted only if it came out of order. Up to :data:`SORT_IN_MEMORY` lines (``lines``) a
    joined frame is copied by every thread and sorted: faster while the sort fits in memory.
    With ``con`` (the relation's connection) the statements after the copy run on it, not as
    queries over the relation (which would bind all its steps again).
    """

    def after(sql: str) -> list:
        return con.execute(sql).fetchall() if con is not None else native.query("_cl_self", sql).fetchall()

    if joined and lines is not None and lines <= SORT_IN_MEMORY:
        # small enough to sort in memory: every thread copies, one sort puts the lines in order
        native.query("_cl_self", f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _cl_self ORDER BY source_row")
        return
    if joined:
        threads = native.query("_cl_self", "SELECT current_setting('threads')").fetchall()[0][0]
        native.query("_cl_self", "SET threads = 1")
    try:
        native.query("_cl_self", f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _cl_self")
    finally:
        if joined:
            after(f"SET threads = {int(threads)}")
    # an empty OVER () reads the table in its stored order
    unordered = after(
        f"SELECT count(*) FROM (SELECT source_row <= lag(source_row) OVER () AS back FROM {name}) WHERE back"
    )[0][0]
    if unordered:
        log.debug("%s: %d lines out of order after the copy; sorting", name, unordered)
        after(f"CREATE OR REPLACE TEMP TABLE {name}_sorted AS SELECT * FROM {name} ORDER BY source_row")
        after(f"DROP TABLE {name}")
        after(f"ALTER TABLE {name}_sorted RENAME TO {name}")


def _report(
    labelled, config: CleaningConfig, has_products: bool, has_order_ids: bool, as_of=None
) -> QualityReport:
    col = nw.col
    # one pass: a row per rule, and the kept lines under the empty name
    groups = collect(
        labelled.with_columns(
            _group=col("_rule").fill_null(""),
            # an implausible amount (infinite, NaN, 1e300) counts as no revenue: no figure for people is inf or nan
            _orig=nw.when(col("_rule") == "implausible_value").then(nw.lit(0.0)).otherwise(
                col("_orig_amount") if "_orig_amount" in labelled.columns else col("amount")),
            _partial=nw.when(col("returned_quantity") != 0).then(1).otherwise(0),
        )
        .group_by("_group")
        .agg(
            nw.len().alias("lines"),
            col("_orig").sum().alias("revenue"),
            col("amount").sum().alias("net_revenue"),
            col("_partial").sum().alias("partial"),
            col("returned_amount").sum().alias("netted"),
            col("_excess").sum().alias("excess"),
        )
    ).rows(named=True)
    counts = {g["_group"]: g for g in groups}
    kept = counts.pop("", {})
    excess = sum(float(g["excess"] or 0.0) for g in groups)
    # one pass over customers: who is there at all, and who keeps a line
    customers_row = collect(
        labelled.filter(col("customer_id").is_null().__invert__())
        .with_columns(_kept=nw.when(col("_rule").is_null()).then(1).otherwise(0))
        .group_by("customer_id")
        .agg(col("_kept").max())
        .select(nw.len().alias("customers"), col("_kept").sum().alias("kept_customers"))
    ).rows(named=True)[0]

    enabled = {
        "unparseable": config.unparseable,
        "implausible_date": config.implausible_date,
        "implausible_value": config.implausible_value,
        "after_as_of": as_of is not None,
        "missing_customer": config.missing_customer,
        "exact_duplicate": config.exact_duplicate and has_order_ids,
        "non_product": config.non_product and has_products,
        "non_merchandise": config.non_merchandise and has_products,
        "quantity_outlier": config.quantity_outlier and has_products,
        "non_positive_price": config.non_positive_price,
        "return_netted": config.net_returns,
        "return_unmatched": config.net_returns,
        "cancelled_by_return": config.net_returns,
    }
    notes = {}
    if config.exact_duplicate and not has_order_ids:
        notes["exact_duplicate"] = "not applied: no order id column, equal lines may be real"
    if config.non_product and not has_products:
        notes["non_product"] = "not applied: no product column"
    for name in ("non_merchandise", "quantity_outlier"):
        if getattr(config, name) and not has_products:
            notes[name] = "not applied: no product column"
    rules = [
        RuleCount(
            rule=name,
            description=desc,
            enabled=enabled[name],
            lines=int(counts.get(name, {}).get("lines", 0)),
            revenue=_money(counts.get(name, {}).get("revenue")),
            note=notes.get(name),
        )
        for name, desc in RULES.items()
    ]
    extra = {}
    caught = [name for name in ("non_product", "non_merchandise", "quantity_outlier")
              if enabled[name] and counts.get(name)]
    if caught:
        extra["excluded_products"] = _excluded_products(labelled, caught)
    return QualityReport(
        extra=extra,
        input_lines=sum(int(g["lines"]) for g in groups),
        kept_lines=int(kept.get("lines", 0)),
        input_revenue=_money(sum(float(g["revenue"] or 0.0) for g in groups)),
        kept_revenue=_money(kept.get("net_revenue")),
        rules=rules,
        input_customers=int(customers_row["customers"] or 0),
        kept_customers=int(customers_row["kept_customers"] or 0),
        partially_returned_lines=int(kept.get("partial", 0) or 0),
        returned_value_netted=_money(kept.get("netted")),
        excess_return_value=_money(excess),
    )


#: Most products listed per rule in the report's ``excluded_products``
LISTED_PRODUCTS = 25


def _excluded_products(labelled, rules: list[str]) -> list[dict]:
    """The products the non-goods rules removed, most lines first (at most :data:`LISTED_PRODUCTS` per rule)."""
    col = nw.col
    rows = collect(
        labelled.filter(col("_rule").is_in(rules))
        .group_by("_rule", "product_id")
        .agg(nw.len().alias("lines"), col("product_name").min().alias("product_name"),
             col("amount").sum().alias("revenue"))
    ).rows(named=True)
    listed = []
    for rule in rules:
        mine = sorted((r for r in rows if r["_rule"] == rule), key=lambda r: (-r["lines"], str(r["product_id"])))
        listed += [{"rule": rule, "product_id": r["product_id"], "product_name": r["product_name"],
                    "lines": int(r["lines"]), "revenue": _money(r["revenue"])} for r in mine[:LISTED_PRODUCTS]]
    return listed


def _money(value) -> float:
    """A sum of money, with the last bits of float summation (order-dependent) rounded off."""
    return round(float(value or 0.0), 6)

