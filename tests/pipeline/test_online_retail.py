"""Integration on the real UCI Online Retail file (../shared/data)."""

import pytest

from customerlens.core.db import fetch_one
from customerlens.features.customer import customer_features
from customerlens.pipeline import ingest

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def retail(online_retail):
    return ingest(online_retail)


def test_raw_counts_match_the_published_ones(retail):
    loaded = retail.loaded
    assert loaded.rows == 541_909
    n, customers, invoices, products, gross = fetch_one(
        loaded.con,
        f"SELECT count(*), count(DISTINCT customer_id), count(DISTINCT order_id), "
        f"count(DISTINCT product_id), round(sum(quantity * unit_price), 2) FROM {loaded.table}",
    )
    assert (n, customers, invoices, products) == (541_909, 4_372, 25_900, 4_070)
    assert gross == pytest.approx(9_747_747.93)
    assert fetch_one(loaded.con, f"SELECT count(*) FROM {loaded.table} WHERE customer_id IS NULL")[0] == 135_080
    assert fetch_one(loaded.con, f"SELECT count(*) FROM {loaded.table} WHERE order_id LIKE 'C%'")[0] == 9_288


def test_quality_report_accounts_for_every_line(retail):
    report = retail.cleaned.report
    assert report.is_consistent()
    assert report.input_lines == report.kept_lines + sum(r.lines for r in report.rules) == 541_909
    counts = {r.rule: r.lines for r in report.rules}
    assert counts["missing_customer"] == 135_080
    assert counts["unparseable"] == 0
    # a wholesaler's big orders are no pattern of measured quantities (docs/data-quality.md)
    assert counts["quantity_outlier"] == 0
    # every cancellation line with a customer is either netted or unmatched
    # (a few are caught earlier as duplicates or non-product codes)
    assert 8_000 < counts["return_netted"] + counts["return_unmatched"] <= 9_288
    removed_revenue = sum(r.revenue for r in report.rules)
    kept_gross = report.kept_revenue + report.returned_value_netted
    assert kept_gross + removed_revenue == pytest.approx(report.input_revenue)


def test_customers_with_features(retail):
    feats = customer_features(retail.cleaned.transactions).df()
    # 4,372 customers in the file; 48 have nothing left once returns are netted
    # and fees removed (docs/data-quality.md explains who they are)
    assert len(feats) == retail.cleaned.report.kept_customers == 4_324
    assert feats["monetary"].min() > 0
    assert (feats["frequency"] >= 1).all()
    assert feats["recency_days"].min() == 1
    # the 80,995-unit order cancelled the same day no longer inflates its buyer
    assert feats.set_index("customer_id").loc["16446", "monetary"] < 200


@pytest.fixture(scope="module")
def retail_segments(retail):
    from customerlens.insights.segmentation import segment_customers

    features = customer_features(retail.cleaned.transactions).df()
    seg = segment_customers(features)
    seg.add_insights(retail.cleaned.transactions.df())
    return seg


def test_segments_make_sense_on_online_retail(retail_segments):
    seg = retail_segments
    elbow = seg.segmenter.elbow_
    assert len(elbow) == 10 and seg.segmenter.k_choice_.knee is not None
    assert seg.k >= 4 and "kneedle" in seg.reason
    a = seg.assigned
    med = a.groupby("segment_name")[["recency_days", "frequency", "monetary"]].median()
    base = a[["recency_days", "frequency", "monetary"]].median()
    assert {"High-Value", "At-Risk", "Occasional Buyers", "Frequent & Loyal"} <= set(med.index)
    assert med["monetary"].idxmax() == "High-Value"
    assert med.loc["At-Risk", "recency_days"] > 2 * base["recency_days"]
    recent = med[med["recency_days"] <= base["recency_days"]]
    assert recent["frequency"].idxmin() == "Occasional Buyers"
    top = seg.top_products
    assert set(top["segment_name"]) == set(med.index) and top["rank"].max() == 10
    assert top.groupby("segment_name")["revenue"].apply(lambda s: s.is_monotonic_decreasing).all()
