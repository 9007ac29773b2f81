"""Trends and decisions: cohorts by hand, segment migration, the action plan and the target lists."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest

import customerlens as cl
from customerlens import insights
from customerlens.core.text import slug
from customerlens.insights.segmentation import segment_customers


def test_cohort_retention_by_hand():
    """a, b start in January; c in February. a buys again in February and April, c in March."""
    rows = [("a", "2024-01-03", 10), ("b", "2024-01-20", 5), ("a", "2024-02-10", 7), ("c", "2024-02-11", 3),
            ("c", "2024-03-01", 4), ("a", "2024-04-05", 1), ("a", "2024-04-06", 2)]
    lines = pd.DataFrame(rows, columns=["customer_id", "order_date", "amount"])
    lines["order_date"] = pd.to_datetime(lines["order_date"])
    cohorts = insights.cohort_retention(lines)
    jan = cohorts[cohorts["cohort"] == "2024-01-01"].set_index("months_since")
    assert list(jan.index) == [0, 1, 2, 3]  # every month up to the data's last
    assert jan.loc[2, "active_customers"] == 0 and jan.loc[2, "retention"] == 0
    assert jan.loc[0, "cohort_size"] == 2 and jan.loc[0, "active_customers"] == 2 and jan.loc[0, "retention"] == 1
    assert jan.loc[1, "retention"] == 0.5 and jan.loc[3, "revenue"] == 3
    feb = cohorts[cohorts["cohort"] == "2024-02-01"].set_index("months_since")
    assert feb.loc[1, "active_customers"] == 1 and feb.loc[1, "retention"] == 1.0
    matrix = insights.retention_matrix(cohorts)
    assert matrix.shape == (2, 4) and np.isnan(matrix.loc["2024-02-01", 3])  # not observed yet


@pytest.fixture(scope="module")
def retail_dec(online_retail):
    ingested = cl.ingest(online_retail, cl.RunConfig.from_options(as_of="2011-12-01"))
    lines = ingested.cleaned.transactions.df()
    features = cl.customer_features(ingested.cleaned.transactions, as_of="2011-12-01").df()
    return lines, segment_customers(features)


@pytest.mark.realdata
def test_online_retail_cohorts_and_migration(retail_dec):
    lines, seg = retail_dec
    cohorts = insights.cohort_retention(lines)
    matrix = insights.retention_matrix(cohorts)
    assert matrix.index.min() == pd.Timestamp("2010-12-01") and (matrix[0] == 1).all()
    assert cohorts.groupby("cohort")["cohort_size"].first().sum() == lines["customer_id"].nunique()
    migration, movers = insights.segment_migration(lines, seg.segmenter, "2011-06-01", "2011-12-01")
    # rows sum to the segment sizes at the first date (same fitted model)
    before = cl.customer_features(lines, as_of="2011-06-01")
    sizes = pd.Series(seg.segmenter.predict(before)).map(seg.segmenter.segment_names_).value_counts()
    rows = migration[migration["from_segment"] != insights.NOT_YET].groupby("from_segment")["customers"].sum()
    assert rows.sort_index().to_dict() == sizes.sort_index().to_dict()
    # and columns to the sizes at the second date
    cols = migration.groupby("to_segment")["customers"].sum()
    assert cols.sum() == len(seg.assigned)
    assert cols.to_dict() == seg.assigned["segment_name"].value_counts().to_dict()
    assert (migration["revenue"] >= 0).all()
    loyal_to_risk = movers[(movers["from_segment"] == "Frequent & Loyal") & (movers["to_segment"] == "At-Risk")]
    assert len(loyal_to_risk) == migration[(migration["from_segment"] == "Frequent & Loyal")
                                           & (migration["to_segment"] == "At-Risk")]["customers"].sum()


@pytest.mark.realdata
def test_migration_on_the_duckdb_relation_equals_pandas(online_retail, retail_dec):
    """The pipeline hands migration the DuckDB relation (features by DuckDB); same result as on pandas."""
    lines, seg = retail_dec
    relation = cl.ingest(online_retail, cl.RunConfig.from_options(as_of="2011-12-01")).cleaned.transactions
    on_duckdb = insights.segment_migration(relation, seg.segmenter, "2011-06-01", "2011-12-01")
    on_pandas = insights.segment_migration(lines, seg.segmenter, "2011-06-01", "2011-12-01")
    for a, b in zip(on_duckdb, on_pandas, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    assert on_duckdb[0]["revenue"].sum() > 0
    # a run hands over its own features at the snapshot (the segments' table) instead of computing them again
    given = insights.segment_migration(relation, seg.segmenter, "2011-06-01", "2011-12-01", features_to=seg.assigned)
    for a, b in zip(given, on_duckdb, strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_run_writes_action_plan_and_target_lists(tmp_path):
    from customerlens.io import demo

    path, _ = demo.write(demo.generate(500, seed=11), tmp_path / "d.csv")
    out = tmp_path / "out"
    result = cl.run(path, out, cl.RunConfig.from_options(charts=False, top_n=3))
    html = (out / "report.html").read_text()  # the run ends with the self-contained report
    assert "<html" in html and "Action plan" in html
    plan = pd.read_csv(out / "action_plan.csv")
    profiles = pd.read_csv(out / "segment_profiles.csv")
    assert list(plan["segment_name"]) == list(profiles["segment_name"])
    assert plan["customers"].sum() == result.customers
    assert plan["strategy"].str.len().min() > 10 and plan["traits"].str.contains("order").all()
    assert {"expected_value", "value_at_risk", "promote"} <= set(plan.columns)
    text = (out / "action_plan.md").read_text()
    for row in plan.itertuples():
        assert f"## {row.segment_id}. {row.segment_name}" in text
    listed = 0
    for name in plan["segment_name"]:
        target = pd.read_csv(out / "targets" / f"{slug(name)}.csv", dtype={"customer_id": str})
        assert (target["segment_name"] == name).all()
        assert {"customer_id", "churn_risk", "clv_12m", "next_product_id"} <= set(target.columns)
        assert target["value_at_risk"].is_monotonic_decreasing  # who to call first
        listed += len(target)
    assert listed == result.customers
    segments = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    at_risk = pd.read_csv(out / "targets" / "at-risk.csv", dtype={"customer_id": str})
    assert set(at_risk["customer_id"]) == set(segments.loc[segments["segment_name"] == "At-Risk", "customer_id"])
    migration = pd.read_csv(out / "segment_migration.csv")
    assert migration["customers"].sum() == result.customers
    moved = list((out / "targets").glob("moved_*_to_at-risk.csv"))
    for path in moved:
        assert len(pd.read_csv(path)) > 0
    with duckdb.connect(str(out / "customerlens.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.sql("SHOW TABLES").fetchall()}
        record = json.loads(con.sql("SELECT record FROM run").fetchall()[0][0])
    assert {"action_plan", "cohort_retention", "segment_migration"} <= tables
    assert record["segmentation"]["migration"]["to"] == str(result.as_of.date())


def test_migration_needs_two_ordered_dates():
    from customerlens.errors import CustomerLensError

    with pytest.raises(CustomerLensError, match="two dates"):
        insights.segment_migration(pd.DataFrame(), None, "2024-02-01", "2024-01-01")


def _customers(n: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A segmented customer table sorted by id, and a value table for the same customers."""
    rng = np.random.default_rng(seed)
    ids = pd.Series([f"C{i:05d}" for i in range(n)], dtype="str")
    names = {1: "High-Value", 2: "Frequent & Loyal", 3: "At-Risk", 4: "Occasional Buyers"}
    seg = rng.integers(1, 5, n)
    assigned = pd.DataFrame({"customer_id": ids, "segment_id": seg, "segment_name": [names[s] for s in seg],
                             "recency_days": rng.integers(0, 400, n), "frequency": rng.integers(1, 9, n),
                             "monetary": rng.integers(1, 50, n) * 10.0})  # ties: the customer id decides
    value = pd.DataFrame({"customer_id": ids, "p_alive": rng.random(n), "clv_12m": rng.random(n) * 100,
                          "churn_risk": rng.random(n), "value_at_risk": np.round(rng.random(n) * 4, 0)})
    return assigned, value


def test_target_list_order_and_values_with_and_without_the_same_customers():
    """The lists: segment by segment, most value at risk first, then customer id; each customer's
    own value columns, NaN where the value table does not list them, whatever the tables' order.
    """
    assigned, value = _customers(500)
    fast = insights.target_list(assigned, value)  # same customers, same order: no merge
    expected = assigned[["customer_id", "segment_id", "segment_name", "recency_days", "frequency", "monetary"]].merge(
        value[["customer_id", "p_alive", "clv_12m", "churn_risk", "value_at_risk"]], on="customer_id", how="left")
    expected = expected.sort_values(["segment_id", "value_at_risk", "customer_id"],
                                    ascending=[True, False, True]).reset_index(drop=True)
    pd.testing.assert_frame_equal(fast, expected)
    assert fast["segment_id"].is_monotonic_increasing
    # value for a shuffled subset of the customers; segments shuffled too
    partial = value.sample(frac=0.8, random_state=1)
    slow = insights.target_list(assigned.sample(frac=1, random_state=2), partial)
    missing = ~slow["customer_id"].isin(partial["customer_id"])
    assert missing.sum() == 100 and slow.loc[missing, "p_alive"].isna().all()
    kept = slow[~missing].set_index("customer_id")
    mine = partial.set_index("customer_id").loc[kept.index]
    np.testing.assert_array_equal(kept["clv_12m"].to_numpy(), mine["clv_12m"].to_numpy())
    for _, group in slow.groupby("segment_id"):  # NaN (no value) last, ties by customer id
        ranked = group.sort_values(["value_at_risk", "customer_id"], ascending=[False, True], na_position="last")
        assert list(group["customer_id"]) == list(ranked["customer_id"])


def test_value_by_segment_same_with_and_without_aligned_tables():
    from types import SimpleNamespace

    from customerlens.insights import value_by_segment

    assigned, table = _customers(400, seed=5)
    value = SimpleNamespace(table=table, config=SimpleNamespace(clv_months=12))
    fast = value_by_segment(value, assigned)
    reference = table.merge(assigned[["customer_id", "segment_id", "segment_name"]], on="customer_id")
    counts = reference.groupby("segment_id").size()
    assert list(fast["customers"]) == list(counts) and fast["customers"].sum() == 400
    np.testing.assert_allclose(fast["clv_12m"], reference.groupby("segment_id")["clv_12m"].sum().round(6))
    assert fast["share_clv"].sum() == pytest.approx(1)
    # the value table in another order and without some customers: the same per-segment sums
    part = SimpleNamespace(table=table.iloc[::-1].iloc[50:].reset_index(drop=True), config=value.config)
    slow = value_by_segment(part, assigned.sample(frac=1, random_state=4))
    ref = part.table.merge(assigned[["customer_id", "segment_id"]], on="customer_id").groupby("segment_id")
    assert list(slow["customers"]) == list(ref.size()) and slow["customers"].sum() == 350
    np.testing.assert_allclose(slow["value_at_risk"], ref["value_at_risk"].sum().round(6))
    assert list(slow["segment_name"]) == [n for n in ("High-Value", "Frequent & Loyal", "At-Risk", "Occasional Buyers")]


@pytest.mark.parametrize("values", [["a", "b", "b"], ["b", "a"], ["a", None, "c"], [], ["x"], [None], ["é", "z"],
                                    ["z", "é"]])
def test_is_increasing_matches_pandas(values):
    from customerlens.core.frames import is_increasing

    for dtype in ("str", object):
        series = pd.Series(values, dtype=dtype)
        assert is_increasing(series) == series.is_monotonic_increasing
