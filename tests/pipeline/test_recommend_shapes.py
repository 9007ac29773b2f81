"""The default's top list on the other shapes of data (issue 20): above personal frequency on each."""

import pytest

from customerlens.io import demo, shapes
from customerlens.models.recommend.service import DEFAULT_MODEL
from customerlens.pipeline.backtest import backtest

pytestmark = pytest.mark.slow

#: shape -> (how to make it, the backtest's date): small, as in the any-data issue's tests
SHAPES = {
    "grocery": (lambda: shapes.grocery(300, products=1000, seed=5), "2024-11-01"),
    "b2b": (lambda: shapes.b2b(150, seed=5), "2024-09-01"),
    "subscription": (lambda: shapes.subscription(300, seed=5), "2024-09-01"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_default_top_list_beats_personal_frequency(shape, tmp_path):
    make, as_of = SHAPES[shape]
    path, _ = demo.write(make(), tmp_path / f"{shape}.parquet")
    table, facts = backtest(path, as_of, k=10, models=(DEFAULT_MODEL, "personal_frequency"))
    top = table[table["list"] == "top"].set_index("model")["ndcg@10"]
    compared = facts["ndcg_vs_personal_frequency"]
    assert compared["model"] == DEFAULT_MODEL and compared["customers"] >= 90
    if top["personal_frequency"] == 1.0:
        # subscriptions: every customer renews the plan they hold, which personal frequency ranks
        # first for everyone: a perfect score, which the default must keep
        assert shape == "subscription" and top[DEFAULT_MODEL] == 1.0
    else:
        assert top[DEFAULT_MODEL] > top["personal_frequency"]
        assert compared["ci95_low"] > 0  # not by chance: the paired interval is above 0
