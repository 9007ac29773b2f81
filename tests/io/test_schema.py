import pytest

from customerlens.errors import SchemaError
from customerlens.io.schema import KNOWN_LAYOUTS, resolve_mapping


def test_uci_online_retail_layout():
    m = resolve_mapping(KNOWN_LAYOUTS["UCI Online Retail"])
    assert m.layout == "UCI Online Retail"
    assert m.fields == {
        "customer_id": "CustomerID", "order_id": "InvoiceNo", "order_date": "InvoiceDate",
        "product_id": "StockCode", "product_name": "Description", "quantity": "Quantity",
        "unit_price": "UnitPrice", "country": "Country",
    }
    assert m.has_products


def test_online_retail_ii_layout():
    m = resolve_mapping(KNOWN_LAYOUTS["Online Retail II"])
    assert m.layout == "Online Retail II"
    assert m.fields["customer_id"] == "Customer ID"
    assert m.fields["order_id"] == "Invoice"
    assert m.fields["unit_price"] == "Price"


def test_cdnow_layouts_have_no_products_and_derive_orders():
    m = resolve_mapping(KNOWN_LAYOUTS["CDNOW"])
    assert m.fields == {"customer_id": "customer_id", "order_date": "date",
                        "quantity": "number_of_cds", "amount": "dollar_value"}
    assert not m.has_products
    assert "order_id" in m.derived
    sample = resolve_mapping(KNOWN_LAYOUTS["CDNOW sample (headerless)"])
    assert sample.layout == "CDNOW sample (headerless)"
    assert sample.fields["customer_id"] == "master_id"


def test_generic_snake_case_and_bank_layout():
    m = resolve_mapping(["customer_id", "order_id", "order_date", "product_id", "quantity", "unit_price"])
    assert m.layout == "generic"
    assert m.fields["order_date"] == "order_date"
    bank = resolve_mapping(["account_id", "transaction_date", "amount"])
    assert bank.fields == {"customer_id": "account_id", "order_date": "transaction_date", "amount": "amount"}
    assert not bank.has_products


def test_override_wins_and_frees_the_column():
    m = resolve_mapping(["client", "Date", "when", "total"], ["order_date=when"])
    assert m.fields["order_date"] == "when"
    assert m.fields["customer_id"] == "client"


def test_unmappable_lists_found_and_needed():
    with pytest.raises(SchemaError) as info:
        resolve_mapping(["foo", "bar", "Quantity"], source="shop.csv")
    text = str(info.value)
    assert "shop.csv" in text and "foo, bar, Quantity" in text
    assert "customer_id" in text and "order_date" in text and "amount" in text


@pytest.mark.parametrize("bad", [["order_date"], ["nonsense=Date"], ["order_date=Missing"]])
def test_bad_overrides(bad):
    with pytest.raises(SchemaError):
        resolve_mapping(["CustomerID", "Date", "Amount"], bad)


#: Header variants of other systems, and the columns each canonical field must come from
HEADER_VARIANTS = [
    # a grocery chain's year of baskets (sales_value is the line total; no unit price)
    (["household_id", "basket_id", "product_id", "product_name", "quantity", "sales_value",
      "transaction_timestamp", "store_id"],
     {"customer_id": "household_id", "order_id": "basket_id", "order_date": "transaction_timestamp",
      "product_id": "product_id", "product_name": "product_name", "amount": "sales_value"}),
    # an e-commerce platform
    (["user_id", "order_number", "created_at", "sku", "title", "qty", "line_total"],
     {"customer_id": "user_id", "order_id": "order_number", "order_date": "created_at", "product_id": "sku",
      "product_name": "title", "quantity": "qty", "amount": "line_total"}),
    # a CRM export
    (["Client ID", "Transaction ID", "Purchase Date", "Item ID", "Item Name", "Net Sales"],
     {"customer_id": "Client ID", "order_id": "Transaction ID", "order_date": "Purchase Date",
      "product_id": "Item ID", "product_name": "Item Name", "amount": "Net Sales"}),
    # a loyalty scheme
    (["member_id", "receipt_id", "order_ts", "article", "article_name", "units", "revenue"],
     {"customer_id": "member_id", "order_id": "receipt_id", "order_date": "order_ts", "product_id": "article",
      "product_name": "article_name", "quantity": "units", "amount": "revenue"}),
    # a bank: amounts without products
    (["account_id", "transaction_id", "booking_date", "amount"],
     {"customer_id": "account_id", "order_id": "transaction_id", "order_date": "booking_date", "amount": "amount"}),
    # an ERP with numbered customers
    (["CustomerNo", "OrderNumber", "OrderDate", "ItemNo", "Description", "Quantity", "UnitPrice"],
     {"customer_id": "CustomerNo", "order_id": "OrderNumber", "order_date": "OrderDate", "product_id": "ItemNo",
      "product_name": "Description", "quantity": "Quantity", "unit_price": "UnitPrice"}),
    # a point-of-sale export in camelCase
    (["customerKey", "ticketId", "saleDate", "upc", "productDescription", "qtySold", "extendedPrice"],
     {"customer_id": "customerKey", "order_id": "ticketId", "order_date": "saleDate", "product_id": "upc",
      "product_name": "productDescription", "quantity": "qtySold", "amount": "extendedPrice"}),
    # a marketplace with a date and a separate time of day: the date column is the order date
    (["buyer_id", "cart_id", "purchase_date", "purchase_time", "gtin", "price", "quantity"],
     {"customer_id": "buyer_id", "order_id": "cart_id", "order_date": "purchase_date", "product_id": "gtin",
      "unit_price": "price", "quantity": "quantity"}),
    # a subscription business
    (["subscriber_account_no", "invoice_id", "payment_date", "plan", "amount"],
     {"order_id": "invoice_id", "order_date": "payment_date", "amount": "amount"}),
    # Spanish-speaking shop exported with English headers but spaces and capitals
    (["CUSTOMER NUMBER", "INVOICE NUMBER", "INVOICE DATE", "PRODUCT CODE", "PRODUCT NAME", "QTY", "PRICE EACH"],
     {"customer_id": "CUSTOMER NUMBER", "order_id": "INVOICE NUMBER", "order_date": "INVOICE DATE",
      "product_id": "PRODUCT CODE", "product_name": "PRODUCT NAME", "quantity": "QTY", "unit_price": "PRICE EACH"}),
    # generic names only: taken, and reported as guesses
    (["customer", "order", "date", "item", "value"],
     {"customer_id": "customer", "order_id": "order", "order_date": "date", "product_id": "item",
      "amount": "value"}),
]


@pytest.mark.parametrize(("columns", "expected"), HEADER_VARIANTS, ids=[v[0][0] for v in HEADER_VARIANTS])
def test_header_variants_of_other_systems(columns, expected):
    if "customer_id" not in expected:  # no customer column at all: the error lists what is there
        with pytest.raises(SchemaError, match="cannot find customer_id"):
            resolve_mapping(columns)
        return
    m = resolve_mapping(columns)
    assert {k: v for k, v in m.fields.items() if k in expected} == expected
    assert set(m.as_dict()["confidence"]) == set(m.fields)


def test_a_time_of_day_column_is_added_to_the_date():
    m = resolve_mapping(["buyer_id", "cart_id", "purchase_date", "purchase_time", "gtin", "price", "quantity"])
    assert m.time_of_day == "purchase_time" and m.fields["order_date"] == "purchase_date"
    assert m.as_dict()["time_of_day"] == "purchase_time"
    assert m.derived["order_date"].startswith("purchase_date + purchase_time")
    # a timestamp column alone has nothing to add; "lifetime" is no time of day
    assert resolve_mapping(["customer_id", "order_ts", "amount", "lifetime"]).time_of_day is None


def test_confidence_says_how_each_column_was_chosen():
    m = resolve_mapping(["customer_id", "basket_id", "date", "value", "sku"], {"product_id": "sku"})
    confidence = m.as_dict()["confidence"]
    assert confidence == {"product_id": "given", "customer_id": "exact", "order_id": "alias",
                          "order_date": "generic", "amount": "generic"}


@pytest.mark.parametrize("columns", [
    ["customer_id", "household_id", "order_date", "amount"],
    ["customer_id", "transaction_id", "basket_id", "order_date", "amount"],
    ["customer_id", "order_date", "created_at", "amount"],
    ["customer_id", "order_date", "sales_value", "line_total"],
])
def test_an_ambiguous_file_lists_the_candidates(columns):
    with pytest.raises(SchemaError) as caught:
        resolve_mapping(columns, source="x.csv")
    message = str(caught.value)
    assert message.startswith("x.csv: 2 columns could be ") and "--map" in message
    taken = [c for c in columns if c in message]
    assert len(taken) == 2, message
    # saying which one settles it
    field = message.split("could be ")[1].split(":")[0]
    assert resolve_mapping(columns, {field: taken[1]}).fields[field] == taken[1]
