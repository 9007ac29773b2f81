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
    # by lift: one or two buyers are no statistical support, whatever the ratio
    assert insights.top_products(LINES, SEGMENTS, n=5, by="lift", min_buyers=1).empty


def _basket_data(seed: int = 0):
    """Segment A (1,000 customers) and B (4,000): P is bought by 30% of A and 5% of B; L by 6 of A only;
    Q by 10% of everyone; R by 12% of A and 8% of B (a lift above 1 that chance could give).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = {"A": 1000, "B": 4000}
    customers = [(f"{seg}{i}", seg) for seg, n in sizes.items() for i in range(n)]
    segments = pd.DataFrame({"customer_id": [c for c, _ in customers],
                             "segment_id": [1 if s == "A" else 2 for _, s in customers],
                             "segment_name": [s for _, s in customers]})
    rates = {"P": {"A": 0.30, "B": 0.05}, "Q": {"A": 0.10, "B": 0.10}, "R": {"A": 0.10, "B": 0.09}}
    rows = []
    for customer, seg in customers:
        for product, rate in rates.items():
            if rng.random() < rate[seg]:
                rows.append((customer, product))
    rows += [(f"A{i}", "L") for i in range(6)]  # six lucky buyers: lift 5, but 0.6% of the segment
    lines = pd.DataFrame(rows, columns=["customer_id", "product_id"])
    lines["order_id"] = [f"o{i}" for i in range(len(lines))]
    lines["order_date"] = pd.Timestamp("2024-03-01")
    lines["product_name"] = lines["product_id"]
    lines["amount"] = 10.0
    return lines, segments


def test_distinctive_products_need_statistical_support():
    lines, segments = _basket_data()
    by_lift = insights.top_products(lines, segments, n=10, by="lift")
    a = by_lift[by_lift.segment_name == "A"].set_index("product_id")
    assert a.index.tolist()[0] == "P" and a.loc["P", "lift_low"] > 1.0
    assert "L" not in a.index  # 6 buyers of 1,000: under 1% of the segment
    assert "Q" not in a.index  # lift about 1
    assert "R" not in a.index or a.loc["R", "lift_low"] > 1.0  # only with a bound above 1
    assert (by_lift["lift_low"] > 1.0).all() and (by_lift["lift_low"] <= by_lift["lift"]).all()
    # ranked by the lower bound: no list of identical lifts from a handful of buyers
    assert by_lift.groupby("segment_id")["lift_low"].apply(lambda s: s.is_monotonic_decreasing).all()


def test_partial_first_and_last_months_are_marked():
    from customerlens.insights.trends import partial_months

    # the grocery year of the issue: the last month holds one day
    dates = pd.Series(pd.to_datetime(["2024-01-01", "2024-06-15", "2024-12-01"]))
    assert partial_months(dates) == {pd.Timestamp("2024-12-01"): round(1 / 31, 3)}
    late_start = pd.Series(pd.to_datetime(["2024-01-20", "2024-03-31"]))
    assert list(partial_months(late_start)) == [pd.Timestamp("2024-01-01")]
    assert partial_months(pd.Series(pd.to_datetime(["2024-01-01", "2024-03-31"]))) == {}
    lines = LINES.assign(order_date=pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-20", "2024-01-02",
                                                    "2024-02-02", "2024-02-02"]))
    m = insights.monthly_trend(lines, SEGMENTS)
    assert m.loc[m["month"] == "2024-02-01", "partial"].all() and not m.loc[m["month"] == "2024-01-01",
                                                                             "partial"].any()
    cohorts = insights.cohort_retention(lines).set_index(["cohort", "months_since"])["partial"]
    january, february = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")
    assert not cohorts[(january, 0)] and cohorts[(january, 1)]  # the January cohort in February: two days seen
    assert cohorts[(february, 0)]
    from customerlens.outputs import charts

    drawn = charts.trend_chart(m).to_dict()
    months = {row["month"][:7] for data in drawn["datasets"].values() for row in data}
    assert months == {"2024-01"}  # the partial February is left out of the chart


def test_top_products_without_products_is_empty():
    lines = LINES.assign(product_id=None)
    assert insights.top_products(lines, SEGMENTS).empty


def test_monthly_trend():
    m = insights.monthly_trend(LINES, SEGMENTS)
    jan_big = m[(m.segment_name == "Big") & (m.month == "2024-01-01")].iloc[0]
    assert jan_big["revenue"] == 110 and jan_big["active_customers"] == 2
    feb_small = m[(m.segment_name == "Small") & (m.month == "2024-02-01")].iloc[0]
    assert feb_small["revenue"] == 30 and feb_small["orders"] == 1
