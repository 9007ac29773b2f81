"""Stage 0: the canonical transaction columns and the mapping from real layouts.

Every later stage reads only canonical names. :func:`resolve_mapping` maps the
columns a user's file really has (UCI Online Retail, Online Retail II, CDNOW,
generic snake_case, ...) onto them, with explicit overrides winning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from customerlens.errors import SchemaError

#: Canonical columns, in output order.
CANONICAL = (
    "customer_id",
    "order_id",
    "order_date",
    "product_id",
    "product_name",
    "quantity",
    "unit_price",
)
#: Optional canonical columns, carried through when present.
OPTIONAL = ("amount", "country", "channel", "category")
ALL_FIELDS = CANONICAL + OPTIONAL

#: Accepted source names per canonical field, compared after :func:`normalize`
#: (lower case, letters and digits only), in order of preference. The names
#: other systems use: ERP and e-commerce exports, grocery and loyalty data
#: (households, baskets, receipts), CRM and bank exports (clients, accounts).
ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customerid", "customer", "custid", "customerno", "customernumber", "customerkey", "customercode",
        "clientid", "clientno", "clientnumber", "client", "householdid", "householdkey", "household",
        "userid", "user", "memberid", "memberno", "member", "accountid", "accountno", "accountnumber", "account",
        "shopperid", "shopper", "buyerid", "buyer", "loyaltyid", "cardid", "cardnumber", "masterid", "personid",
        "contactid", "subscriberid", "subscriber",
    ),
    "order_id": (
        "invoiceno", "invoice", "invoiceid", "invoicenumber", "orderid", "orderno", "ordernumber", "order",
        "transactionid", "transactionno", "transactionnumber", "txnid", "basketid", "basketkey", "basket",
        "receiptid", "receiptno", "receiptnumber", "receipt", "ticketid", "ticketno", "ticket", "checkoutid",
        "cartid", "saleid", "salesorder", "salesorderid", "documentid", "documentno",
    ),
    "order_date": (
        "invoicedate", "orderdate", "transactiondate", "transactiontimestamp", "transactiondatetime",
        "transactiontime", "purchasedate", "purchasetimestamp", "purchasetime", "purchasedatetime", "txndate",
        "txntimestamp", "orderts", "ordertimestamp", "orderdatetime", "ordertime", "createdat", "createddate",
        "createdon", "saledate", "salesdate", "receiptdate", "basketdate", "checkoutdate", "paymentdate",
        "bookingdate", "billingdate", "chargedate", "valuedate", "date", "datetime", "timestamp", "ts", "day", "time",
    ),
    "product_id": (
        "stockcode", "productid", "productcode", "productno", "productnumber", "productkey", "sku", "skuid",
        "itemid", "itemcode", "itemno", "itemnumber", "articleid", "articleno", "articlenumber", "upc", "ean",
        "gtin", "plu", "barcode", "materialid", "material", "planid", "plancode", "product", "item", "article",
        "plan",
    ),
    "product_name": (
        "description", "productname", "itemname", "itemdescription", "productdescription", "articlename",
        "skuname", "productdesc", "itemdesc", "productlabel", "name", "title",
    ),
    "quantity": ("quantity", "qty", "units", "unitssold", "numberofcds", "numberofitems", "itemcount",
                 "quantitysold", "qtysold", "pieces", "count"),
    "unit_price": ("unitprice", "price", "itemprice", "unitcost", "priceeach", "priceperunit", "sellingprice",
                   "saleprice", "retailprice", "unitsaleprice"),
    "amount": (
        "amount", "lineamount", "linetotal", "linevalue", "lineprice", "salesvalue", "salesamount", "saleamount",
        "netsales", "netamount", "netvalue", "grosssales", "totalamount", "totalprice", "totalvalue",
        "transactionamount", "transactionvalue", "orderamount", "dollarvalue", "extendedprice", "revenue",
        "sales", "spend", "value", "total",
    ),
    "country": ("country", "countrycode", "region"),
    "channel": ("channel", "saleschannel", "store"),
    "category": ("category", "productcategory", "department", "categoryname"),
}

#: Generic names: a column so named is taken when nothing more specific is there, reported as a
#: guess, and never makes a file ambiguous.
GENERIC: dict[str, frozenset[str]] = {
    "customer_id": frozenset({"customer", "client", "household", "user", "member", "account", "shopper", "buyer",
                              "subscriber"}),
    "order_id": frozenset({"order", "invoice", "basket", "receipt", "ticket", "material"}),
    "order_date": frozenset({"date", "datetime", "timestamp", "ts", "day", "time"}),
    "product_id": frozenset({"product", "item", "article", "material", "plan"}),
    "product_name": frozenset({"name", "title"}),
    "quantity": frozenset({"count", "pieces", "units"}),
    "unit_price": frozenset({"price"}),
    "amount": frozenset({"value", "total", "sales", "spend"}),
    "country": frozenset({"region"}),
    "channel": frozenset({"store"}),
    "category": frozenset({"department"}),
}

#: How sure a column choice is, as ``ingest`` reports it.
CONFIDENCE = {
    "given": "named with --map",
    "exact": "the canonical name",
    "alias": "a known name for it",
    "generic": "a generic name: check it",
}

#: Layouts recognised by name, for the schema report. Values: the exact source
#: columns that identify the layout.
KNOWN_LAYOUTS: dict[str, tuple[str, ...]] = {
    "UCI Online Retail": (
        "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
        "CustomerID", "Country",
    ),
    "Online Retail II": (
        "Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
        "Customer ID", "Country",
    ),
    "CDNOW": ("customer_id", "date", "number_of_cds", "dollar_value"),
    "CDNOW sample (headerless)": ("master_id", "sample_id", "date", "number_of_cds", "dollar_value"),
}

#: Column names given to headerless whitespace files, by column count.
HEADERLESS_NAMES: dict[int, tuple[str, ...]] = {
    4: KNOWN_LAYOUTS["CDNOW"],
    5: KNOWN_LAYOUTS["CDNOW sample (headerless)"],
}


#: Names of a time-of-day column, after :func:`normalize` (with or without these prefixes)
_TIME_PREFIXES = ("", "order", "transaction", "trans", "txn", "purchase", "sale", "sales", "receipt", "basket",
                  "invoice", "checkout", "booking")


def _time_only(column: str) -> bool:
    """Whether a column's name says time of day only (``order_time``, ``TRANS_TIME``), not a date or timestamp."""
    name = normalize(column)
    return name.endswith("time") and name[: -len("time")] in _TIME_PREFIXES or name == "timeofday"


def normalize(name: str) -> str:
    """Lower-case a column name and keep only letters and digits."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds each canonical field, and which layout it is."""

    fields: dict[str, str]
    layout: str
    source_columns: tuple[str, ...]
    derived: dict[str, str] = field(default_factory=dict)
    #: how each field was chosen: ``given``, ``exact``, ``alias`` or ``generic`` (see :data:`CONFIDENCE`)
    confidence: dict[str, str] = field(default_factory=dict)
    #: a time-of-day column beside a date-only ``order_date`` (``trans_time``: 1631 or 16:31), added to it
    time_of_day: str | None = None

    @property
    def has_products(self) -> bool:
        """Whether a source column feeds ``product_id`` (else product-level outputs are skipped)."""
        return "product_id" in self.fields

    def as_dict(self) -> dict:
        """The mapping for the schema report: layout, columns found, mapping, derived fields, has_products."""
        return {
            "layout": self.layout,
            "columns_found": list(self.source_columns),
            "mapping": dict(self.fields),
            "confidence": {key: self.confidence.get(key, "alias") for key in self.fields},
            "derived": dict(self.derived),
            "has_products": self.has_products,
            **({"time_of_day": self.time_of_day} if self.time_of_day else {}),
        }


def detect_layout(columns: Sequence[str]) -> str:
    """Name of the first known layout whose columns are all in ``columns``, else ``"generic"``."""
    present = set(columns)
    for name, cols in KNOWN_LAYOUTS.items():
        if set(cols) <= present:
            return name
    return "generic"


def parse_overrides(items: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """Turn ``["order_date=Date", ...]`` (or a dict) into ``{canonical: source}``."""
    if not items:
        return {}
    if isinstance(items, Mapping):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            if "=" not in item:
                raise SchemaError(
                    f"--map expects canonical=SourceColumn (e.g. order_date=Date), got {item!r}"
                )
            key, _, value = item.partition("=")
            pairs.append((key.strip(), value.strip()))
    out = {}
    for key, value in pairs:
        if key not in ALL_FIELDS:
            raise SchemaError(
                f"--map {key}={value}: {key!r} is not a canonical field; "
                f"choose from {', '.join(ALL_FIELDS)}"
            )
        out[key] = value
    return out


def resolve_mapping(
    columns: Sequence[str],
    overrides: Sequence[str] | Mapping[str, str] | None = None,
    *,
    source: str = "input",
) -> ColumnMapping:
    """Map source ``columns`` to canonical fields.

    Explicit ``overrides`` win; every other field takes the first source column
    whose normalized name is one of its aliases. Raises :class:`SchemaError`
    listing the columns found and the ones needed when the input cannot work.
    """
    columns = [str(c) for c in columns]
    explicit = parse_overrides(overrides)
    for key, value in explicit.items():
        if value not in columns:
            raise SchemaError(
                f"{source}: --map {key}={value} names a column that is not there; "
                f"columns found: {', '.join(columns)}"
            )
    by_norm: dict[str, list[str]] = {}
    for col in columns:
        by_norm.setdefault(normalize(col), []).append(col)
    fields: dict[str, str] = dict(explicit)
    confidence = dict.fromkeys(explicit, "given")
    used = set(explicit.values())
    for key in ALL_FIELDS:
        if key in fields:
            continue
        # every free column with a name for this field, most preferred name first
        candidates = [(rank, col) for rank, alias in enumerate(ALIASES[key])
                      for col in by_norm.get(alias, ()) if col not in used]
        if not candidates:
            continue
        specific = [col for rank, col in candidates if ALIASES[key][rank] not in GENERIC[key]]
        if key == "order_date":  # a time-of-day column beside a date column is not a second date
            dates = [col for col in specific if not _time_only(col)]
            specific = dates or specific[:1]
        if len(specific) > 1 and key in ("customer_id", "order_id", "order_date", "amount"):
            raise SchemaError(
                f"{source}: {len(specific)} columns could be {key}: {', '.join(specific)}. Say which with "
                f"--map {key}=COLUMN (e.g. --map {key}={specific[0]})"
            )
        rank, col = candidates[0]
        fields[key] = col
        used.add(col)
        name = ALIASES[key][rank]
        confidence[key] = ("exact" if name == normalize(key) else
                           "generic" if name in GENERIC[key] else "alias")

    has_value = "amount" in fields or ("quantity" in fields and "unit_price" in fields)
    missing = [k for k in ("customer_id", "order_date") if k not in fields]
    if not has_value:
        missing.append("amount (or quantity and unit_price)")
    if missing:
        raise SchemaError(
            f"{source}: cannot find {', '.join(missing)}. Columns found: "
            f"{', '.join(columns) or '(none)'}. customerlens needs customer_id, order_date and "
            "amount or quantity+unit_price (order_id, product_id, product_name optional); "
            "name them with --map, e.g. --map customer_id=Client --map order_date=Date"
        )
    derived = {}
    time_of_day = None
    if not _time_only(fields["order_date"]):
        # a date column and a time column (a store's DAY and TRANS_TIME): the time is added to the date
        times = [col for col in columns if col not in used and _time_only(col)]
        if times:
            time_of_day = times[0]
            derived["order_date"] = f"{fields['order_date']} + {time_of_day} (the time of day, when the date has none)"
    if "order_id" not in fields:
        derived["order_id"] = "customer_id + calendar day (one order per customer per day)"
    if "quantity" not in fields:
        derived["quantity"] = "1 per line (-1 for a negative amount: a refund)"
    if "unit_price" not in fields:
        derived["unit_price"] = "amount / quantity"
    if "amount" not in fields:
        derived["amount"] = "quantity * unit_price"
    return ColumnMapping(
        fields=fields,
        layout=detect_layout(columns),
        source_columns=tuple(columns),
        derived=derived,
        confidence=confidence,
        time_of_day=time_of_day,
    )
