"""Recommenders: one contract test over every model on a tiny matrix with obvious answers,
metrics by hand, and reasons.
"""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from customerlens.errors import NotFittedError
from customerlens.models.recommend import build_interactions, make_model
from customerlens.models.recommend.backtest import evaluate, make_holdout
from customerlens.models.recommend.registry import MODELS
from customerlens.models.recommend.service import Recommendations

AS_OF = dt.datetime(2024, 4, 1)


def tiny_lines():
    """Two tastes: tea drinkers buy TEA, CUP, POT together; bakers buy FLOUR, TIN, WHISK.

    Customer t9 bought only TEA and CUP: POT is the obvious discovery. Customer r
    re-buys TEA every week: TEA is the obvious repeat.
    """
    rows = []
    day = dt.datetime(2024, 1, 1)
    n = 0
    for c in range(8):
        for basket in (["TEA", "CUP", "POT"], ["FLOUR", "TIN", "WHISK"]):
            who = f"t{c}" if basket[0] == "TEA" else f"b{c}"
            for p in basket:
                rows.append((who, f"o{n}", day + dt.timedelta(days=c), p))
            n += 1
    rows += [("t9", "o100", day, "TEA"), ("t9", "o100", day, "CUP")]
    for w in range(10):
        rows.append(("r", f"r{w}", day + dt.timedelta(days=7 * w), "TEA"))
    rows.append(("r", "rx", day, "WHISK"))
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "product_id"])
    frame["product_name"] = frame["product_id"].str.title()
    frame["quantity"] = 1.0
    return frame


@pytest.fixture(scope="module")
def data():
    return build_interactions(tiny_lines(), AS_OF)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_fits_and_recommends(data, name):
    model = make_model(name)
    with pytest.raises(NotFittedError):
        model.recommend(np.array([0]), n=3)
    model.fit(data, segments={c: ("Tea" if c.startswith("t") else "Bake") for c in data.customers})
    rows = np.arange(data.n_customers)
    items, scores = model.recommend(rows, n=3)
    assert items.shape == (data.n_customers, 3)
    valid = items >= 0
    assert np.all(np.diff(np.where(valid, scores, -np.inf), axis=1) <= 1e-12)  # best first
    for r in rows:  # no product twice in a list
        listed = items[r][items[r] >= 0]
        assert len(set(listed)) == len(listed)
    again, _ = make_model(name).fit(data, segments=None).recommend(rows, n=3) if name != "segment_popularity" \
        else (items, None)
    if name not in ("als", "two_stage"):
        np.testing.assert_array_equal(again, items)  # deterministic


@pytest.mark.parametrize("name", ["item_knn", "ease", "blend"])
def test_collaborative_models_discover_the_obvious_product(data, name):
    model = make_model(name).fit(data)
    row = data.customer_index["t9"]
    items, _ = model.recommend(np.array([row]), n=1, exclude_seen=True)
    assert data.products[items[0, 0]] == "POT"


@pytest.mark.parametrize("name", ["personal_frequency", "blend"])
def test_repeat_models_put_the_weekly_product_first(data, name):
    model = make_model(name).fit(data)
    items, _ = model.recommend(np.array([data.customer_index["r"]]), n=1)
    assert data.products[items[0, 0]] == "TEA"


def test_popularity_is_the_same_for_everyone(data):
    items, _ = make_model("popularity").fit(data).recommend(np.arange(data.n_customers), n=2)
    assert (items == items[0]).all()
    assert data.products[items[0, 0]] == "TEA"  # most buyers


def test_reasons_say_why(data):
    recs = Recommendations(make_model("blend").fit(data), data, {"t9": "Tea"})
    table = recs.for_customers(["t9", "r"], n=3)
    t9 = table[table.customer_id == "t9"].set_index("product_id")
    assert t9.loc["TEA", "reason"].startswith("bought once, last")
    assert t9.loc["POT", "reason"] == "customers who buy Tea also buy this" or \
        t9.loc["POT", "reason"] == "customers who buy Cup also buy this"
    r = table[table.customer_id == "r"].set_index("product_id")
    assert r.loc["TEA", "reason"] == "bought 10 times, last 28 days ago"
    assert list(table.columns) == ["customer_id", "rank", "product_id", "product_name", "score", "reason"]
    new = recs.recommend("somebody-new", n=2)
    assert len(new) == 2 and (new["reason"] == "popular right now (new customer)").all()


def test_metrics_by_hand():
    lines = pd.DataFrame({
        "customer_id": ["a", "a", "b", "a", "a", "b", "b"],
        "order_id": ["1", "1", "2", "3", "3", "4", "4"],
        "order_date": pd.to_datetime(["2024-01-01"] * 3 + ["2024-05-01"] * 4),
        "product_id": ["X", "Y", "X", "X", "Z", "Q", "NEW"],
        "quantity": 1.0,
    })
    lines.loc[2, "product_id"] = "Q"
    as_of = dt.datetime(2024, 3, 1)
    holdout = make_holdout(lines, lines, as_of)
    prods = list(holdout.train.products)  # ['Q', 'X', 'Y']
    # a bought X, Z after (Z unknown); b bought Q, NEW after (NEW unknown)
    a, b = list(holdout.train.customers).index("a"), list(holdout.train.customers).index("b")
    items = np.full((2, 2), -1)
    order = list(holdout.train.customers[holdout.test_rows])
    items[order.index("a")] = [prods.index("Y"), prods.index("X")]  # hit at rank 2
    items[order.index("b")] = [prods.index("Q"), -1]                 # hit at rank 1
    m = evaluate(items, holdout, k=2)
    assert m["customers"] == 2
    assert m["recall@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["precision@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["hitrate@2"] == 1.0
    ideal = 1 + 1 / np.log2(3)
    assert m["ndcg@2"] == pytest.approx(((1 / np.log2(3)) / ideal + 1 / ideal) / 2)
    assert m["map@2"] == pytest.approx(((1 / 2) / 2 + 1 / 2) / 2)
    assert m["recall@2_repeat"] == pytest.approx(1.0)   # both hits were bought before
    assert m["recall@2_new"] == pytest.approx(0.0)
    assert m["coverage"] == pytest.approx(3 / 3)
    assert a != b


def test_large_catalogue_path_is_sparse_and_still_right(data):
    """Above dense_limit products the blend uses sparse top-K neighbours (implicit) instead of EASE."""
    from customerlens.models.recommend.blend import Blend
    from customerlens.models.recommend.models import ItemKNN

    model = Blend(dense_limit=1).fit(data)
    assert isinstance(model.co_, ItemKNN) and model._sparse()
    t9 = np.array([data.customer_index["t9"]])
    items, _ = model.recommend(t9, n=1, exclude_seen=True)
    assert data.products[items[0, 0]] == "POT"
    items, _ = model.recommend(np.array([data.customer_index["r"]]), n=1)
    assert data.products[items[0, 0]] == "TEA"
    recs = Recommendations(model, data).for_customers(["t9"], n=3, exclude_seen=True)
    assert recs.iloc[0]["reason"].startswith("customers who buy")


def test_discovery_slots_keep_new_products_in_the_list(data):
    """Customer r bought TEA and WHISK: with 2 of 4 places kept for discovery, two products
    r never bought are in the list, after TEA (its best repeat), and nothing repeats.
    """
    model = make_model("personal_frequency").fit(data)
    r = np.array([data.customer_index["r"]])
    plain, _ = model.recommend(r, n=4)
    assert {data.products[i] for i in plain[0] if i >= 0} == {"TEA", "WHISK"}  # only repeats, padded
    items, _ = make_model("blend").fit(data).recommend(r, n=4, discovery=2)
    names = [data.products[i] for i in items[0] if i >= 0]
    assert names[0] == "TEA"
    bought = {"TEA", "WHISK"}
    assert len([p for p in names if p not in bought]) == 2
    assert len(names) == len(set(names))
    # the wrapper used by the backtest gives the same lists
    from customerlens.models.recommend.models import WithDiscovery

    wrapped = WithDiscovery(make_model("blend"), 2).fit(data)
    assert wrapped.name == "blend+2_new"
    assert np.array_equal(wrapped.recommend(r, n=4)[0], items)


def test_discovery_slots_from_the_service(data):
    recs = Recommendations(make_model("blend").fit(data), data)
    table = recs.for_customers(["r"], n=3, discovery=1)
    assert len(table) == 3
    new = table[~table["product_id"].isin(["TEA", "WHISK"])]
    assert len(new) >= 1
    assert new["reason"].str.contains("also buy|popular").all()


def test_ease_on_a_large_catalogue_keeps_its_most_bought_products(data):
    """Above max_products EASE learns among the most-bought products only; the rest score -inf."""
    from customerlens.models.recommend.models import EASE

    model = EASE(max_products=3).fit(data)
    kept = set(data.products[model.kept_])
    assert model.weights_.shape == (3, 3) and "TEA" in kept  # TEA: the most buyers
    scores = model.score(np.arange(data.n_customers))
    outside = [i for i, p in enumerate(data.products) if p not in kept]
    assert np.all(np.isneginf(scores[:, outside]))
    full = EASE().fit(data)
    assert full.kept_ is None and full.weights_.shape == (data.n_products, data.n_products)
    # reasons still work for products outside the kept ones (no weight: zero)
    t9 = data.customer_index["t9"]
    history = data.orders[t9].indices
    assert np.all(model.contribution(history, outside[0]) == 0)


def test_a_dense_block_that_would_not_fit_is_a_clear_error(data, monkeypatch):
    """With little memory available EASE says what it needs and what to do; nothing is allocated."""
    from customerlens.errors import MemoryLimitError
    from customerlens.models.recommend.models import EASE

    monkeypatch.setenv("CUSTOMERLENS_MEMORY_LIMIT", "100B")
    with pytest.raises(MemoryLimitError, match=r"EASE's 6 x 6 product weights needs about 432 bytes of memory and 100 bytes is available .* max_products"):
        EASE().fit(data)
    monkeypatch.setenv("CUSTOMERLENS_MEMORY_LIMIT", "lots")
    with pytest.raises(MemoryLimitError, match="CUSTOMERLENS_MEMORY_LIMIT: not a memory size: 'lots'"):
        EASE().fit(data)


def big_catalogue_lines(products: int = 100_000, customers: int = 1_000, seed: int = 0) -> pd.DataFrame:
    """Every one of ``products`` products bought at least once, most lines on a few (Zipf)."""
    rng = np.random.default_rng(seed)
    tail = np.arange(products)
    head = np.minimum(rng.zipf(1.2, 60_000) - 1, products - 1)
    product = np.concatenate([tail, head])
    customer = rng.integers(0, customers, len(product))
    order = rng.integers(0, 12, len(product))
    frame = pd.DataFrame({"customer_id": [f"c{c}" for c in customer], "product_id": [f"p{p}" for p in product],
                          "order_id": [f"c{c}-{o}" for c, o in zip(customer, order, strict=True)]})
    day = {o: d for o, d in zip(frame["order_id"].unique(), rng.integers(0, 365, frame["order_id"].nunique()),
                                strict=True)}
    frame["order_date"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["order_id"].map(day), unit="D")
    return frame


BIG_CATALOGUE_BACKTEST = """
import datetime as dt, json, resource, sys
from customerlens.models.recommend.backtest import make_holdout, run_backtest
from customerlens.models.recommend.models import ALS
from customerlens.models.recommend.registry import MODELS, make_model
from customerlens.models.recommend.twostage import TwoStage
sys.path.insert(0, sys.argv[1])
from test_recommend import big_catalogue_lines

lines = big_catalogue_lines(products=120_000)
holdout = make_holdout(lines, lines, dt.datetime(2024, 11, 1))
models = {name: make_model(name) for name in MODELS}
# one inner cut, fewer trees and sweeps: the memory is in the candidates and the factors, not the rounds
models["two_stage"] = TwoStage(n_estimators=20, cuts=(45,), max_queries=300, knn_candidates=20, ease_candidates=20)
models["als"] = ALS(iterations=3)
table = run_backtest(holdout, models, k=10)
table = table[table["list"] == "top"]
print(json.dumps({"products": holdout.train.n_products, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "models": table["model"].tolist(), "hitrate": table["hitrate@10"].tolist()}))
"""


@pytest.mark.slow
def test_every_model_and_the_backtest_at_100k_products(tmp_path):
    """Over 100,000 products: no model builds a product x product block (40 GB dense); peak memory stays small.

    The backtest runs in its own process, so its peak resident memory is its own. The memory cap
    turns a regression into a MemoryLimitError instead of a killed test run.
    """
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "CUSTOMERLENS_MEMORY_LIMIT": "6GB"}
    done = subprocess.run([sys.executable, "-c", BIG_CATALOGUE_BACKTEST, str(Path(__file__).parent)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["products"] >= 100_000
    assert sorted(result["models"]) == sorted(MODELS)
    peak = result["peak_kb"] * 1024
    assert peak < 2e9, f"peak {peak / 1e9:.2f} GB"
    # the lists are real: repeat-based models hit what customers buy again
    hitrate = dict(zip(result["models"], result["hitrate"], strict=True))
    assert hitrate["personal_frequency"] > 0.2


def test_two_stage_gives_way_to_the_blend_on_a_short_history(data, monkeypatch):
    """Too few customers in its inner windows to learn from, or a base too large to score densely:
    the blend recommends, and the service says why.
    """
    from customerlens.models.recommend import service

    model = make_model("two_stage").fit(data)
    assert model.fallback_ is not None and "too short" in model.note_
    np.testing.assert_array_equal(model.recommend(np.arange(data.n_customers), n=3)[0],
                                  make_model("blend").fit(data).recommend(np.arange(data.n_customers), n=3)[0])
    recs = service.fit_recommendations(tiny_lines(), AS_OF)
    assert recs.model.name == "blend" and "too short" in recs.note
    monkeypatch.setattr(service, "TWO_STAGE_PRODUCTS", 5)
    recs = service.fit_recommendations(tiny_lines(), AS_OF)
    assert recs.model.name == "blend" and "customers x 6 products: above" in recs.note
    recs = service.fit_recommendations(tiny_lines(), AS_OF, model="ease")  # asked for: no note
    assert recs.model.name == "ease" and recs.note == ""


def test_the_split_fit_on_a_short_history_gives_the_blends_lists():
    """A run's worker learns (learn_recommender) while the caller makes the final weights and what it can of
    the lists ahead (final_weights, prepared_lists); joined, the lists are fit_recommendations'. On a history
    too short for the ranker: the blend's, with its note. (For the ranker itself the rerun test compares a
    two-process run with a one-process run byte for byte: tests/pipeline/test_pipeline.py.)
    """
    from customerlens.models.recommend import service

    lines, segments = tiny_lines(), {}
    whole = service.fit_recommendations(lines, AS_OF, segments=segments)
    learned, note = service.learn_recommender(lines, AS_OF)
    data, weights = service.final_weights(lines, AS_OF)
    joined = service.joined(learned, note, data, weights, segments, service.prepared_lists(data, weights, segments))
    assert joined.model.name == whole.model.name == "blend" and joined.note == whole.note and "too short" in note + joined.note
    pd.testing.assert_frame_equal(joined.lists(), whole.lists())
    pd.testing.assert_frame_equal(joined.lists(n=3), whole.lists(n=3))


def _awkward_lines(seed: int = 3, unit: str = "us") -> pd.DataFrame:
    """Lines with what the integer codes must get right: repeated lines of one order, an order id missing,
    an order spanning two dates, a line of no customer, customers new since the earlier cuts, ids that sort differently as text than as numbers, and dates to the
    nanosecond (``unit="ns"``).
    """
    rng = np.random.default_rng(seed)
    n = 4_000
    frame = pd.DataFrame({
        "customer_id": [f"c{x}" for x in rng.integers(0, 120, n)],
        "product_id": [f"p{x}" for x in rng.integers(0, 60, n)],
        "order_id": [f"o{x}" for x in rng.integers(0, 900, n)],
        "order_date": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 400 * 86400, n), unit="s"),
        "quantity": rng.choice([1.0, 2.0, -1.0], n, p=[0.6, 0.35, 0.05]),
    })
    frame.loc[5, ["order_id", "order_date", "quantity"]] = [None, pd.Timestamp("2023-12-01"), 1.0]
    frame.loc[6, ["customer_id", "order_date", "quantity"]] = [None, pd.Timestamp("2023-12-02"), 1.0]  # nobody's
    frame.loc[10:29, "customer_id"] = [f"new{x}" for x in range(20)]  # first bought in the last weeks
    frame.loc[10:29, "order_date"] = pd.Timestamp("2024-01-10")
    frame = pd.concat([frame, frame.iloc[:50]], ignore_index=True)  # the same lines twice
    frame.loc[len(frame) - 1, "order_date"] += pd.Timedelta(days=3)  # one order on two dates
    frame["order_date"] = frame["order_date"].astype(f"datetime64[{unit}]")
    if unit == "ns":
        frame["order_date"] += pd.to_timedelta(rng.integers(0, 1000, len(frame)), unit="ns")
    frame["product_name"] = frame["product_id"].str.upper()
    return frame


def _reference_interactions(lines: pd.DataFrame, as_of, products=None) -> dict:
    """What build_interactions computed by pandas group-bys before the integer codes: the test's oracle.

    A line without an order id counts as an order (``nunique(dropna=False)``): a pair bought has orders.
    """
    lines = lines[(lines["order_date"] < pd.Timestamp(as_of)) & lines["product_id"].notna() & (lines["quantity"] > 0)
                  & lines["customer_id"].notna()]
    per = (lines.groupby(["customer_id", "product_id"])
           .agg(orders=("order_id", lambda o: o.nunique(dropna=False)), last=("order_date", "max"),
                first=("order_date", "min")).reset_index())
    customers = np.sort(per["customer_id"].unique())
    products = np.sort(per["product_id"].unique()) if products is None else products
    ci, pi = pd.Index(customers).get_indexer(per["customer_id"]), pd.Index(products).get_indexer(per["product_id"])
    as_of = pd.Timestamp(as_of)
    days = {k: ((as_of - per[k]).dt.total_seconds() / 86400).to_numpy() for k in ("last", "first")}
    shape = (len(customers), len(products))
    import scipy.sparse as sp

    cust = lines.groupby("customer_id").agg(n=("order_id", lambda o: o.nunique(dropna=False)),
                                            last=("order_date", "max")).reindex(customers)
    recent = lines[lines["order_date"] >= as_of - pd.Timedelta(days=90)]
    return {
        "customers": customers, "products": products,
        "orders": sp.csr_matrix((per["orders"].to_numpy(np.float32), (ci, pi)), shape=shape),
        "last_days": sp.csr_matrix((days["last"].astype(np.float32) + 1e-3, (ci, pi)), shape=shape),
        "first_days": sp.csr_matrix((days["first"].astype(np.float32) + 1e-3, (ci, pi)), shape=shape),
        "customer_orders": cust["n"].to_numpy(),
        "customer_last_days": ((as_of - cust["last"]).dt.total_seconds() / 86400).to_numpy(),
        "product_buyers_recent": recent.groupby("product_id")["customer_id"].nunique().reindex(products)
        .fillna(0).to_numpy().astype(float),
    }


@pytest.mark.parametrize("unit", ["us", "ns"])
def test_interactions_from_integer_codes_equal_the_group_bys(unit):
    """build_interactions and Interactions.at (the two-stage ranker's inner cuts) group integer codes; every
    matrix and fact equals pandas' group-bys of the text ids, bit for bit, at the snapshot and at earlier cuts.
    """
    lines = _awkward_lines(unit=unit)
    as_of = dt.datetime(2024, 1, 20)
    data = build_interactions(lines, as_of)
    cases = [(data, _reference_interactions(lines, as_of))]
    for days in (45, 105, 300):
        cut = as_of - dt.timedelta(days=days)
        cases.append((data.at(cut), _reference_interactions(lines, cut, products=data.products)))
    for got, want in cases:
        for name, expected in want.items():
            actual = getattr(got, name)
            if hasattr(expected, "tocsr"):
                expected.sort_indices()
                for part in ("indptr", "indices", "data"):
                    np.testing.assert_array_equal(getattr(actual, part), getattr(expected, part), err_msg=name)
                assert actual.dtype == expected.dtype and actual.has_sorted_indices
            else:
                np.testing.assert_array_equal(actual, expected, err_msg=name)
    assert data.customer_orders.max() > 1 and data.at(as_of - dt.timedelta(days=300)).n_customers < data.n_customers
    names = lines.groupby("product_id")["product_name"].first()
    assert data.product_names == {p: names[p] for p in data.products}


def test_history_facts_from_integer_codes_equal_the_group_bys():
    """The two-stage ranker's facts about products and customers (first sale, buyers in the last 30 days,
    days between orders, the decayed pair weights) equal pandas' group-bys of the text ids.
    """
    from customerlens.models.recommend.twostage import _history_facts

    lines = _awkward_lines(seed=4)
    as_of = dt.datetime(2024, 1, 20)
    data = build_interactions(lines, as_of).at(dt.datetime(2023, 11, 1))
    facts = _history_facts(data)
    cut = pd.Timestamp(data.as_of)
    kept = lines[(lines["order_date"] < cut) & (lines["quantity"] > 0) & lines["customer_id"].notna()]
    orders = kept.drop_duplicates(["customer_id", "product_id", "order_id"])
    age = (cut - orders["order_date"]).dt.total_seconds().to_numpy() / 86400
    import scipy.sparse as sp

    decayed = sp.csr_matrix((0.5 ** (age / 60.0), (pd.Index(data.customers).get_indexer(orders["customer_id"]),
                                                   pd.Index(data.products).get_indexer(orders["product_id"]))),
                            shape=data.orders.shape)
    decayed.sum_duplicates()
    np.testing.assert_array_equal(facts["decayed"].toarray(), decayed.toarray())
    buyers_30 = orders[age < 30].groupby("product_id")["customer_id"].nunique().reindex(data.products).fillna(0)
    np.testing.assert_array_equal(facts["buyers_30"], buyers_30.to_numpy(float))
    first_sale = kept.groupby("product_id")["order_date"].min().reindex(data.products)
    np.testing.assert_array_equal(facts["item_age"], ((cut - first_sale).dt.total_seconds() / 86400).to_numpy())
    first_order = kept.groupby("customer_id")["order_date"].min().reindex(data.customers)
    tenure = ((cut - first_order).dt.total_seconds() / 86400).to_numpy() - data.customer_last_days
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(data.customer_orders > 1, tenure / (data.customer_orders - 1), np.nan)
    np.testing.assert_array_equal(facts["user_gap"], gap)
    assert np.isnan(facts["item_age"]).sum() == 0 and np.isfinite(gap).any()


def test_top_ranks_equal_a_full_stable_sort():
    """The candidates' ranks (only the best k of each row sorted) equal a full stable sort's, ties to the lower
    index, on rows with many ties at the k-th value and rows with fewer than k finite scores.
    """
    from customerlens.models.recommend.twostage import _top_ranks

    rng = np.random.default_rng(5)
    for _ in range(200):
        n_rows, n = rng.integers(1, 30), rng.integers(1, 120)
        scores = rng.integers(0, rng.integers(1, 30), (n_rows, n)).astype(float)
        scores[rng.random(scores.shape) < rng.random()] = -np.inf
        k = int(rng.integers(0, n + 3))
        expected = np.full(scores.shape, n, dtype=np.int64)
        for i, row in enumerate(scores):
            best = np.argsort(-row, kind="stable")[:k]
            best = best[np.isfinite(row[best])]
            expected[i, best] = np.arange(len(best))
        np.testing.assert_array_equal(_top_ranks(scores, k), expected)


def _anchors_pair_by_pair(recs, rows, items, bought):
    """The anchor of each (row, item) pair as the reasons found it before: one lookup per pair."""
    expected = np.full(len(rows), -1)
    indptr, indices = recs.data.orders.indptr, recs.data.orders.indices
    for j in np.flatnonzero(~bought):
        history = indices[indptr[rows[j]]: indptr[rows[j] + 1]]
        w = np.asarray(recs._co.contribution(history, items[j])).ravel()
        if len(history) and w[np.argmax(w)] > 0:
            expected[j] = history[np.argmax(w)]
    return expected


@pytest.mark.parametrize("name", ["ease", "item_knn", "item_knn_large", "blend"])
def test_reasons_anchors_equal_one_lookup_per_pair(name):
    """The "customers who buy X also buy this" anchor, found with one block of weights per customer, is the
    product a lookup per (customer, product) pair finds: the first of the largest positive weights.
    """
    from customerlens.models.recommend import models

    data = build_interactions(_awkward_lines(seed=6), dt.datetime(2024, 1, 20))
    # item_knn_large: the large-catalogue layout (implicit's neighbours, similarity by history row)
    model = models.ItemKNN(implicit_above=10).fit(data) if name == "item_knn_large" else make_model(name).fit(data)
    assert getattr(model, "large_", False) == (name == "item_knn_large")
    recs = Recommendations(model, data, {})
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(data.n_customers), 6)
    items = rng.integers(0, data.n_products, len(rows))
    bought = np.asarray(data.orders[rows, items]).ravel() > 0
    expected = _anchors_pair_by_pair(recs, rows, items, bought)
    np.testing.assert_array_equal(recs._anchors(rows, items, bought), expected)
    assert (expected >= 0).sum() > len(rows) // 4 and (expected[bought] == -1).all()


def test_item_knn_similarity_is_the_cosine_of_the_counts_with_ties_kept_as_before():
    """The neighbours are computed on the co-purchase counts' own rows: the same matrix, entry for entry and
    in the same order, as the cosine built from (row, column) lists (how it was computed before), including
    which of equal similarities a row keeps when it has more than ``neighbours``.
    """
    import scipy.sparse as sp

    from customerlens.models.recommend.models import ItemKNN, _top_k_rows

    data = build_interactions(_awkward_lines(seed=9), dt.datetime(2024, 1, 20))
    knn = ItemKNN(neighbours=5).fit(data)  # few neighbours: most rows have more, with tied similarities
    co = data.co_purchases(private=True)
    counts = co.diagonal()
    co.setdiag(0)
    co.eliminate_zeros()
    co = co.tocoo()
    sim = sp.csr_matrix((co.data / (np.sqrt(counts[co.row] * counts[co.col]) + knn.shrink), (co.row, co.col)),
                        shape=co.shape)
    expected = _top_k_rows(sim, 5)
    for part in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(knn.similarity_, part), getattr(expected, part))
    assert knn.similarity_.data.dtype == expected.data.dtype == np.float32
    np.testing.assert_array_equal(knn.dense_, expected.T.toarray())
    assert knn.dense_.flags["C_CONTIGUOUS"]
    full = np.diff(sim.indptr) > 5
    values = [np.sort(sim.data[sim.indptr[i]:sim.indptr[i + 1]])[::-1] for i in np.nonzero(full)[0]]
    assert sum(v[4] == v[5] for v in values) >= 3  # rows whose 5th and 6th similarities tie


def test_item_knn_scores_through_its_dense_weights_equal_the_sparse_product():
    """Small catalogues score a customer's history times the dense similarity: bit for bit the sparse product."""
    data = build_interactions(_awkward_lines(seed=8), dt.datetime(2024, 1, 20))
    knn = make_model("item_knn").fit(data)
    assert knn.dense_ is not None
    rows = np.arange(data.n_customers)
    dense = knn.score(rows)
    np.testing.assert_array_equal(dense, (data.binary(rows) @ knn.similarity_.T).toarray())
    assert dense.dtype == np.float32 and (dense > 0).mean() > 0.2


def test_the_discover_picks_made_with_the_candidates_equal_eases_own():
    """The discover list's EASE picks read off the candidates' EASE ranks equal EASE.recommend(exclude_seen=True):
    the same products in the same order, the same scores, -1 where a customer has fewer new products.
    """
    from customerlens.models.recommend.service import final_weights
    from customerlens.models.recommend.twostage import TwoStage

    lines = _awkward_lines(seed=9)
    data, weights = final_weights(lines, dt.datetime(2024, 1, 20))
    shell = TwoStage().use(data, weights).prepare(np.arange(data.n_customers), discover=10)
    items, scores = shell.discover_picks_
    want_items, want_scores = weights["ease"].recommend(np.arange(data.n_customers), n=10, exclude_seen=True)
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(scores, want_scores)
    assert (items >= 0).all(axis=1).mean() > 0.5
    many = TwoStage(ease_candidates=5).use(data, weights).prepare(np.arange(data.n_customers), discover=10)
    assert many.discover_picks_ is None  # the ranks do not reach that far: the discover list makes its own
    # a purchase without an order id is an order all the same: bought, with its candidates and picks
    lines.loc[len(lines)] = {**lines.iloc[0].to_dict(), "customer_id": "c-no-order", "order_id": None}
    data, weights = final_weights(lines, dt.datetime(2024, 1, 20))
    row = data.customer_index["c-no-order"]
    assert data.orders[row].data.tolist() == [1.0] and data.customer_orders[row] == 1
    shell = TwoStage().use(data, weights).prepare(np.arange(data.n_customers), discover=10)
    np.testing.assert_array_equal(shell.discover_picks_[0], weights["ease"].recommend(
        np.arange(data.n_customers), n=10, exclude_seen=True)[0])


def test_the_ranker_through_lightgbms_own_api_is_lgbmrankers():
    """The two-stage ranker learns through lightgbm.train (a worker imports LightGBM without scikit-learn):
    the same trees as the scikit-learn wrapper with the settings it had.
    """
    import lightgbm as lgb

    from customerlens.models.recommend import twostage

    rng = np.random.default_rng(3)
    X = rng.random((6_000, len(twostage.FEATURES))).astype(np.float32)
    group = np.full(60, 100)
    y = (X[:, 0] + 0.3 * rng.random(len(X)) > 0.9).astype(np.int8)
    booster = twostage.TwoStage(min_child_samples=20)._train(X, y, group)
    wrapper = lgb.LGBMRanker(objective="rank_xendcg", n_estimators=50, learning_rate=0.1, num_leaves=7,
                             min_child_samples=20, max_bin=63, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
                             random_state=42, n_jobs=1, verbose=-1)
    wrapper.fit(X, y, group=group, feature_name=list(twostage.FEATURES))
    np.testing.assert_array_equal(booster.predict(X), wrapper.booster_.predict(X))
    assert booster.num_trees() == 50
    # it forces row-wise histograms: on one thread the column-wise ones make the same trees
    columns = lgb.LGBMRanker(**{**wrapper.get_params(), "force_col_wise": True})
    columns.fit(X, y, group=group, feature_name=list(twostage.FEATURES))
    np.testing.assert_array_equal(booster.predict(X), columns.booster_.predict(X))
    # the lists score on every core: each candidate's score is the same on one thread or two
    np.testing.assert_array_equal(booster.predict(X, num_threads=2), booster.predict(X, num_threads=1))


def test_a_worker_imports_lightgbm_without_scikit_learn():
    """lean_lightgbm: LightGBM imported first finds no scikit-learn (0.4-0.8 s less of a worker's start); scikit-learn
    imports as usual afterwards.
    """
    import subprocess
    import sys

    code = ("import sys, customerlens.models.recommend.lean_lightgbm, customerlens.models.recommend.twostage\n"
            "assert 'lightgbm' in sys.modules and 'sklearn' not in sys.modules, sorted(sys.modules)\n"
            "import sklearn.base; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
