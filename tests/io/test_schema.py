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
