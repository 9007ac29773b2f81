import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pytest

from customerlens.io import demo
from customerlens.io.load import load
from customerlens.pipeline import ingest


def test_same_seed_same_data_and_types_side_file(tmp_path):
    a = demo.generate(500, seed=1)
    b = demo.generate(500, seed=1)
    assert a.lines.equals(b.lines) and a.types.equals(b.types)
    assert not demo.generate(500, seed=2).lines.equals(a.lines)
    path, side = demo.write(a, tmp_path / "demo.csv")
    assert side.name == "demo.types.csv"
    types = pacsv.read_csv(side).to_pandas()
    assert len(types) == 500 and set(types["true_type"]) == set(demo.TYPES)


def test_shape_and_dirt_like_the_real_data(tmp_path):
    data = demo.generate(1500, seed=3)
    path, _ = demo.write(data, tmp_path / "demo.csv.gz")
    result = ingest(path)
    assert result.loaded.mapping.layout == "UCI Online Retail"
    counts = {r.rule: r.lines for r in result.cleaned.report.rules}
    for rule in ("missing_customer", "exact_duplicate", "non_product", "non_positive_price",
                 "return_netted", "cancelled_by_return"):
        assert counts[rule] > 0, rule
    assert result.cleaned.report.is_consistent()
    assert 40 < data.lines.num_rows / 1500 < 120  # about 70 lines a customer


def test_planted_types_behave_as_documented(tmp_path):
    data = demo.generate(3000, seed=4)
    path, _ = demo.write(data, tmp_path / "demo.parquet")
    from customerlens.features.customer import customer_features

    result = ingest(path)
    feats = customer_features(result.cleaned.transactions).df()
    types = data.types.to_pandas()
    merged = feats.merge(types, on="customer_id")
    med = merged.groupby("true_type")[["recency_days", "frequency", "monetary", "tenure_days"]].median()
    assert med.loc["high_value", "monetary"] == med["monetary"].max()
    assert med.loc["at_risk", "recency_days"] > 150
    assert med.loc["new", "tenure_days"] < 70
    assert med.loc["occasional", "frequency"] <= 2
    assert med.loc["loyal", "frequency"] > med.loc["at_risk", "frequency"]
    assert np.isclose(len(merged), len(feats))


def test_parquet_output_loads(tmp_path):
    path, _ = demo.write(demo.generate(50, seed=5), tmp_path / "x.parquet")
    assert load(path).rows > 0


def test_grocery_shape_end_to_end(tmp_path):
    """A supermarket's year of baskets: read without --map, non-goods caught and never offered, the one-day
    last month marked, and names that keep their promises and hold the planted at-risk households.
    """
    import customerlens as cl
    from customerlens.io import demo as demo_mod
    from customerlens.io.shapes import NOT_GOODS, grocery
    from customerlens.models.segment.naming import broken_promises, segment_stats

    data = grocery(150, products=3000, lines_per_basket=(6, 10), seed=3)
    path, _ = demo_mod.write(data, tmp_path / "grocery.csv")
    lines = data.lines.to_pandas()
    not_goods = lines["product_name"].isin(list(NOT_GOODS))
    assert not_goods.sum() > 1000 and lines.loc[lines["product_name"] == "GASOLINE-REG UNLEADED", "quantity"].min() \
        >= 5000
    with cl.analyze(path, top_n=5, charts=False, report=False) as analysis:
        mapping = analysis.record()["schema"]["mapping"]
        assert mapping == {"customer_id": "household_id", "order_id": "basket_id",
                           "order_date": "transaction_timestamp", "product_id": "product_id",
                           "product_name": "product_name", "quantity": "quantity", "amount": "sales_value"}
        rules = {r.rule: r.lines for r in analysis.quality.rules}
        assert rules["non_merchandise"] == not_goods.sum() and rules["exact_duplicate"] == 0
        seg = analysis.segmentation
        offered = [analysis.recommendations["product_name"], seg.top_products["product_name"],
                   seg.distinctive_products["product_name"], analysis.action_plan["promote"].fillna("")]
        for names in offered:
            assert not names.str.contains("GASOLINE|DEPOSIT|COUPON").any()
        assert list(seg.monthly.loc[seg.monthly["partial"], "month"].unique()) == [pd.Timestamp("2025-01-01")]
        churn = analysis.value.table.set_index("customer_id")["churn_risk"]
        assert broken_promises(seg.segmenter.segment_names_, segment_stats(seg.assigned, churn)) == []
        truth = seg.assigned.merge(data.types.to_pandas(), on="customer_id")
        at_risk = truth[truth["true_type"] == "at_risk"]
        assert (at_risk["segment_name"] == "At-Risk").mean() >= 0.9
        assert (truth.loc[truth["true_type"] == "high_value", "segment_name"] == "High-Value").all()
        # customers with a basket every 4-8 weeks are Occasional Buyers, not Frequent & Loyal
        occasional = truth.loc[truth["true_type"] == "occasional", "segment_name"]
        assert (occasional == "Occasional Buyers").mean() >= 0.6, occasional.value_counts()


#: shape -> (customers at test size, the columns its export has)
OTHER_SHAPES = {
    "subscription": (300, ["subscriber_id", "invoice_id", "billing_date", "plan", "amount"]),
    "b2b": (150, ["account_id", "order_number", "order_date", "sku", "description", "quantity", "unit_price"]),
    "bank": (300, ["account_id", "transaction_id", "booking_date", "amount", "channel"]),
}


@pytest.mark.parametrize("shape", sorted(OTHER_SHAPES))
def test_other_shapes_end_to_end(shape, tmp_path, recwarn):
    """Subscription, b2b and bank data: read without --map, the naming promises kept, and the planted
    types under their names: churners and lapsed accounts At-Risk, the biggest spenders High-Value,
    the occasional ones Occasional Buyers, the loyal ones never At-Risk nor Occasional.
    """
    import customerlens as cl
    from customerlens.io import demo as demo_mod
    from customerlens.io.shapes import GENERATORS
    from customerlens.models.segment.naming import broken_promises, segment_stats

    customers, columns = OTHER_SHAPES[shape]
    data = GENERATORS[shape](customers, seed=5)  # seed 5: the subscription's spend model hits a boundary
    assert data.lines.schema.names == columns
    path, _ = demo_mod.write(data, tmp_path / f"{shape}.csv")
    with cl.analyze(path, top_n=3, charts=False, report=False) as analysis:
        record = analysis.record()
        assert record["schema"]["mapping"]["customer_id"] == columns[0]
        assert record["schema"]["has_products"] == (shape != "bank")
        assert (analysis.recommendations is None or analysis.recommendations.empty) == (shape == "bank")
        # no products: no lists, and the record says why; else both lists for every customer
        expected = ({"skipped": "the data has no product column"} if shape == "bank" else
                    {"model": "two_stage", "lists": ["top", "discover"], "customers": customers,
                     "rows": len(analysis.recommendations)})
        assert record["recommendations"] == expected
        seg = analysis.segmentation
        churn = analysis.value.table.set_index("customer_id")["churn_risk"]
        assert broken_promises(seg.segmenter.segment_names_, segment_stats(seg.assigned, churn)) == []
        truth = seg.assigned.merge(data.types.to_pandas(), on="customer_id")
        assert len(truth) == customers

        def share(kind: str, *names: str) -> float:
            return truth.loc[truth["true_type"] == kind, "segment_name"].isin(names).mean()

        assert share("at_risk", "At-Risk") >= 0.9
        assert share("high_value", "High-Value") >= 0.9
        assert share("occasional", "Occasional Buyers") >= 0.6
        assert share("loyal", "Frequent & Loyal", "High-Value") >= 0.9
        # who pays every month or every other day is not about to leave
        loyal = truth.loc[truth["true_type"] == "loyal", "customer_id"]
        assert churn.loc[loyal].median() < 0.2
    # no numbers gone wrong on the way (a log of a negative, an overflow)
    assert not [str(w.message) for w in recwarn if issubclass(w.category, RuntimeWarning)]
