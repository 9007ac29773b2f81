"""The recommendation backtest on Online Retail (cut 2011-09-09, k = 10)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import customerlens as cl
from customerlens.models.recommend.backtest import evaluate, make_holdout
from customerlens.models.recommend.service import DEFAULT_MODEL
from customerlens.pipeline.backtest import backtest

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
DATE = "2011-09-09"


@pytest.fixture(scope="module")
def both(online_retail):
    """The backtest's top and discover rows, each indexed by model, and its facts."""
    table, facts = backtest(online_retail, DATE, k=10, models=(DEFAULT_MODEL, "personal_frequency", "popularity",
                                                               "segment_popularity", "item_knn", "ease", "als"))
    return (table[table["list"] == "top"].set_index("model"), table[table["list"] == "discover"].set_index("model"),
            facts)


@pytest.fixture(scope="module")
def results(both):
    top, _, facts = both
    return top, facts


def test_discover_list_beats_every_baseline_on_new_items(both):
    """The discover list (issue 20): above popularity, segment popularity and item kNN on new-item
    Recall@10, and at least twice popularity's.
    """
    _, discover, _ = both
    new = discover["recall@10_new"]
    for baseline in ("popularity", "segment_popularity", "item_knn"):
        assert new[DEFAULT_MODEL] > new[baseline], baseline
    assert new[DEFAULT_MODEL] >= 2 * new["popularity"]


def test_backtest_says_how_sure_the_default_is(both):
    """A paired bootstrap of the default's NDCG@10 against personal frequency, over the same customers."""
    top, _, facts = both
    compared = facts["ndcg_vs_personal_frequency"]
    assert compared["model"] == DEFAULT_MODEL and compared["customers"] == 1915
    difference = top.loc[DEFAULT_MODEL, "ndcg@10"] - top.loc["personal_frequency", "ndcg@10"]
    assert compared["difference"] == pytest.approx(difference, abs=1e-9)
    assert compared["ci95_low"] < compared["difference"] < compared["ci95_high"]


def test_baselines_reproduce_the_independent_figures(results):
    """Figures from an independent implementation of the same protocol (issue 5)."""
    table, facts = results
    assert facts["test_customers"] == 1915
    expected = {"personal_frequency": (0.380, 0.137), "ease": (0.297, 0.096), "popularity": (0.109, 0.030)}
    for model, (ndcg, recall) in expected.items():
        assert table.loc[model, "ndcg@10"] == pytest.approx(ndcg, abs=0.004), model
        assert table.loc[model, "recall@10"] == pytest.approx(recall, abs=0.003), model
    # implicit ALS: "about 0.28 / 0.11"; the recall matches, the NDCG depends on settings (docs)
    assert table.loc["als", "recall@10"] == pytest.approx(0.11, abs=0.005)
    assert 0.25 < table.loc["als", "ndcg@10"] < 0.34


def test_default_model_beats_personal_frequency(results):
    """The default's top list (issue 20): above personal frequency on NDCG@10 and Recall@10, with the
    paired interval above 0, and Recall@10 at the issue's 0.142 (NDCG@10 measured 0.3906: docs).
    """
    table, facts = results
    assert table.loc[DEFAULT_MODEL, "ndcg@10"] > table.loc["personal_frequency", "ndcg@10"] + 0.005
    assert table.loc[DEFAULT_MODEL, "recall@10"] >= 0.142 > table.loc["personal_frequency", "recall@10"]
    assert facts["ndcg_vs_personal_frequency"]["ci95_low"] > 0


def test_run_writes_what_the_backtest_scores(online_retail, both, tmp_path):
    """One code path: both lists of recommendations.csv of `run --as-of` score as the backtest says."""
    top, discover, _ = both
    out = tmp_path / "run"
    # the recommendations only: value, insights and the report are other tests' subject
    with cl.run(online_retail, out, cl.RunConfig.from_options(as_of=DATE, charts=False, value=False,
                                                              insights=False, report=False)) as ran:
        train = ran.ingested.cleaned.transactions.df()  # the run's own clean lines before the snapshot
    recs = pd.read_csv(out / "recommendations.csv", dtype={"customer_id": str, "product_id": str})
    as_of = dt.datetime(2011, 9, 9)
    full = cl.ingest(online_retail).cleaned.transactions.df()
    holdout = make_holdout(train, full, as_of)
    products = pd.Index(holdout.train.products)
    customers = holdout.train.customers[holdout.test_rows]
    assert set(recs["list"]) == {"top", "discover"} and recs["reason"].notna().all()
    # the discover list holds only products the customer never bought before the snapshot
    bought = set(zip(train["customer_id"], train["product_id"], strict=True))
    new = recs[recs["list"] == "discover"]
    assert not any(pair in bought for pair in zip(new["customer_id"], new["product_id"], strict=True))
    position = {c: i for i, c in enumerate(customers)}
    for which, expected in (("top", ("ndcg@10", "recall@10")), ("discover", ("recall@10_new", "ndcg@10_new"))):
        mine = recs[(recs["list"] == which) & recs["customer_id"].isin(position)]
        items = np.full((len(customers), 10), -1)
        for row in mine.itertuples(index=False):
            items[position[row.customer_id], row.rank - 1] = products.get_loc(row.product_id)
        got = evaluate(items, holdout, 10)
        table = top if which == "top" else discover
        for metric in expected:
            assert got[metric] == pytest.approx(table.loc[DEFAULT_MODEL, metric], abs=1e-9), (which, metric)
