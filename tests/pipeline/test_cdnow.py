"""CDNOW (Fader & Hardie): whitespace files, no products, derived orders."""

import pytest

from customerlens.features.customer import customer_features
from customerlens.pipeline import ingest

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize(("name", "customers", "lines", "total"), [
    ("cdnow_sample", 2_357, 6_919, 244_091.94),
    ("cdnow_master", 23_570, 69_659, 2_500_315.63),
])
def test_every_customer_and_dollar_is_kept(request, name, customers, lines, total):
    result = ingest(request.getfixturevalue(name))
    report = result.cleaned.report
    assert report.input_lines == lines and report.is_consistent()
    # zero-dollar purchases are purchase occasions here: nobody is lost
    assert report.kept_customers == customers
    assert report.kept_revenue == pytest.approx(total)
    feats = customer_features(result.cleaned.transactions).df()
    assert len(feats) == customers
    assert feats["distinct_products"].isna().all()
    # same-day lines are one order (the papers' convention)
    assert feats["frequency"].sum() == result.con.execute(
        "SELECT count(DISTINCT (customer_id, CAST(order_date AS DATE))) FROM transactions_raw"
    ).fetchall()[0][0]
