import pandas as pd
import pytest

from customerlens import insights

SEGMENTS = pd.DataFrame({
    "customer_id": ["a", "b", "c", "d"],
    "segment_id": [1, 1, 2, 2],
    "segment_name": ["Big", "Big", "Small", "Small"],
    "recency_days": [1, 3, 10, 20],
    "frequency": [4, 2, 1, 1],
    "monetary": [100.0, 60.0, 10.0, 30.0],
})
LINES = pd.DataFrame({
    "customer_id": ["a", "a", "b", "c", "d", "d"],
    "order_id": ["1", "2", "3", "4", "5", "5"],
    "order_date": pd.to_datetime(["2024-01-05", "2024-02-01", "2024-01-20", "2024-01-02", "2024-02-10", "2024-02-10"]),
    "product_id": ["X", "Y", "X", "X", "Z", "X"],
    "product_name": ["EX", "WHY", "EX", "EX", "ZED", "EX"],
    "amount": [50.0, 50.0, 60.0, 10.0, 20.0, 10.0],
})


def test_profiles_by_hand():
    p = insights.segment_profiles(SEGMENTS, {"Big": "treat well"}).set_index("segment_name")
    assert p.loc["Big", "customers"] == 2 and p.loc["Big", "revenue"] == 160
    assert p.loc["Big", "share_revenue"] == pytest.approx(0.8)
    assert p.loc["Big", "avg_order_value"] == pytest.approx(160 / 6)
    assert p.loc["Small", "median_recency_days"] == 15
    assert p.loc["Big", "strategy"] == "treat well" and p.loc["Small", "strategy"] == ""
    assert p["share_customers"].sum() == pytest.approx(1.0)


def test_top_products_revenue_buyers_and_lift():
    top = insights.top_products(LINES, SEGMENTS, n=5)
    big = top[top.segment_name == "Big"].set_index("product_id")
    assert list(big.index) == ["X", "Y"]            # 110 of X, 50 of Y
    assert big.loc["X", "revenue"] == 110 and big.loc["X", "buyers"] == 2
    # X: bought by 2 of 2 in Big, 4 of 4 overall -> lift 1; Y: 1 of 2 vs 1 of 4 -> lift 2
    assert big.loc["X", "lift"] == pytest.approx(1.0) and big.loc["Y", "lift"] == pytest.approx(2.0)
    by_lift = insights.top_products(LINES, SEGMENTS, n=5, by="lift", min_buyers=1)
    assert by_lift[by_lift.segment_name == "Big"]["product_id"].tolist() == ["Y", "X"]
    assert by_lift[by_lift.segment_name == "Small"]["product_id"].tolist()[0] == "Z"


def test_top_products_without_products_is_empty():
    lines = LINES.assign(product_id=None)
    assert insights.top_products(lines, SEGMENTS).empty


def test_monthly_trend():
    m = insights.monthly_trend(LINES, SEGMENTS)
    jan_big = m[(m.segment_name == "Big") & (m.month == "2024-01-01")].iloc[0]
    assert jan_big["revenue"] == 110 and jan_big["active_customers"] == 2
    feb_small = m[(m.segment_name == "Small") & (m.month == "2024-02-01")].iloc[0]
    assert feb_small["revenue"] == 30 and feb_small["orders"] == 1
