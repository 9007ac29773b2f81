import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

import customerlens as cl
from customerlens.errors import CustomerLensError, NotFittedError
from customerlens.insights.segmentation import segment_customers
from customerlens.io import demo
from customerlens.models.segment.segmenter import (
    NAME_ORDER,
    RFM_GRID,
    STRATEGIES,
    CustomerSegmenter,
    find_knee,
    name_segments,
    rfm_scores,
)


def profiles(rows):
    return pd.DataFrame(rows, columns=["recency_days", "frequency", "monetary"])


# ------------------------------------------------------------------ naming rules


def test_names_of_four_clear_cut_centroids():
    names = name_segments(profiles([
        [-1.2, 1.8, 2.0],   # recent, frequent, big spenders
        [-0.9, 1.0, 0.3],   # recent and regular, moderate spend
        [1.3, 0.4, 0.5],    # used to buy, gone for long
        [-0.2, -1.0, -0.9], # one order or two, not long ago
    ]))
    assert names == ["High-Value", "Frequent & Loyal", "At-Risk", "Occasional Buyers"]


def test_four_segments_always_get_the_briefs_four_names():
    """Online Retail's k = 4 centroids (standard scores): the lapsed one-time buyers are At-Risk."""
    names = name_segments(profiles([[-1.25, 1.66, 1.40], [0.11, 0.32, 0.52], [-0.79, -0.42, -0.44],
                                    [0.93, -0.77, -0.80]]))
    assert names == ["High-Value", "Frequent & Loyal", "Occasional Buyers", "At-Risk"]


def test_fifth_segment_of_recent_low_frequency_customers_is_new():
    names = name_segments(profiles([[-1.30, 1.76, 2.14], [-0.97, 0.99, 0.54], [0.88, 0.28, 0.44],
                                    [-0.88, -0.84, -0.80], [0.84, -0.94, -0.88]]))
    assert names == ["High-Value", "Frequent & Loyal", "At-Risk", "New Customers", "Occasional Buyers"]


def test_names_do_not_depend_on_row_order():
    rows = [[-1.25, 1.66, 1.40], [0.11, 0.32, 0.52], [-0.79, -0.42, -0.44], [0.93, -0.77, -0.80]]
    forward = dict(zip(map(tuple, rows), name_segments(profiles(rows)), strict=True))
    backward = dict(zip(map(tuple, rows[::-1]), name_segments(profiles(rows[::-1])), strict=True))
    assert forward == backward


@pytest.mark.parametrize("k", [1, 2, 3, 6, 9, 12])
def test_names_are_unique_for_any_k(k):
    rng = np.random.default_rng(k)
    names = name_segments(profiles(rng.normal(size=(k, 3))))
    assert len(set(names)) == k
    assert all(n in STRATEGIES or n.startswith("Segment ") for n in names)
    if 4 <= k <= len(NAME_ORDER):
        assert {"High-Value", "Frequent & Loyal", "At-Risk", "Occasional Buyers"} <= set(names)


def test_every_name_has_a_strategy():
    assert all(len(STRATEGIES[name]) > 20 for name in NAME_ORDER)


# ------------------------------------------------------------------ the estimator


@pytest.fixture(scope="module")
def demo_customers(tmp_path_factory):
    data = demo.generate(4000, seed=42)
    path, _ = demo.write(data, tmp_path_factory.mktemp("demo") / "demo.csv")
    ingested = cl.ingest(path)
    features = cl.customer_features(ingested.cleaned.transactions).df()
    return features.merge(data.types.to_pandas(), on="customer_id")


@pytest.fixture(scope="module")
def fitted(demo_customers):
    """The default segmenter fitted once on the demo customers (the elbow search is the slow part)."""
    return CustomerSegmenter().fit(demo_customers)


def test_recovers_the_planted_types(demo_customers, fitted):
    seg = fitted
    assigned = seg.assign(demo_customers)
    ari = adjusted_rand_score(assigned["true_type"], assigned["segment_id"])
    assert ari >= 0.8, seg.k_choice_
    expected = {"High-Value": "high_value", "Frequent & Loyal": "loyal", "At-Risk": "at_risk",
                "Occasional Buyers": "occasional", "New Customers": "new"}
    for name, group in assigned.groupby("segment_name"):
        majority = group["true_type"].value_counts().idxmax()
        assert expected.get(name) == majority, (name, group["true_type"].value_counts().to_dict())


def test_k_search_records_the_curve_and_a_reason(fitted):
    seg = fitted
    elbow = seg.elbow_
    assert list(elbow["k"]) == list(range(1, 11))
    assert elbow["inertia"].is_monotonic_decreasing
    assert np.isnan(elbow.loc[0, "silhouette"]) and elbow["silhouette"].iloc[1:].notna().all()
    assert elbow["calinski_harabasz"].iloc[1:].gt(0).all() and elbow["davies_bouldin"].iloc[1:].gt(0).all()
    assert seg.k_choice_.knee == find_knee(elbow["k"].to_numpy(), elbow["inertia"].to_numpy())
    assert seg.k_ >= 4 and f"k = {seg.k_}" in seg.k_choice_.reason and "kneedle" in seg.k_choice_.reason


def test_segment_ids_are_ordered_by_value(demo_customers, fitted):
    assigned = fitted.assign(demo_customers)
    means = assigned.groupby("segment_id")["monetary"].mean()
    assert list(means.index) == list(range(1, len(means) + 1))
    assert means.is_monotonic_decreasing


def test_k_override_and_determinism(demo_customers):
    # a short k search: the curve beside a given k is the other tests' subject
    a = CustomerSegmenter(k=3, random_state=1, k_range=(2, 4)).fit_predict(demo_customers)
    shuffled = demo_customers.sample(frac=1, random_state=3).sort_values("customer_id")
    b = CustomerSegmenter(k=3, random_state=1, k_range=(2, 4)).fit_predict(shuffled)
    assert len(np.unique(a)) == 3
    np.testing.assert_array_equal(a, b)
    seg = CustomerSegmenter(k=3, k_range=(2, 4)).fit(demo_customers)
    assert "set by the user" in seg.k_choice_.reason and list(seg.elbow_["k"]) == [2, 3, 4]


def test_save_load_predict_new_customers(demo_customers, tmp_path):
    seg = CustomerSegmenter().fit(demo_customers.iloc[:3000])
    path = seg.save(tmp_path / "model.joblib")
    loaded = CustomerSegmenter.load(path)
    new = demo_customers.iloc[3000:]
    np.testing.assert_array_equal(loaded.predict(new), seg.predict(new))
    assert set(loaded.assign(new)["segment_name"]) <= set(seg.segment_names_.values())


def test_refuses_before_fit_and_bad_input():
    with pytest.raises(NotFittedError):
        CustomerSegmenter().predict(pd.DataFrame({"recency_days": [1], "frequency": [1], "monetary": [1]}))
    with pytest.raises(CustomerLensError, match="not in the customer table"):
        CustomerSegmenter(features=("nope",)).fit(pd.DataFrame({"customer_id": ["a", "b"], "x": [1, 2]}))
    tiny = pd.DataFrame({"customer_id": ["a", "b", "c"], "recency_days": [1, 50, 300],
                         "frequency": [9, 2, 1], "monetary": [900.0, 80.0, 10.0]})
    with pytest.raises(CustomerLensError, match="^k must be between"):
        CustomerSegmenter(k=5).fit(tiny)
    assert CustomerSegmenter().fit(tiny).k_ >= 1


# ------------------------------------------------------------------ RFM


def test_rfm_scores_by_hand():
    frame = pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(10)],
        "recency_days": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        "frequency": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1],
        "monetary": [100, 90, 80, 70, 60, 50, 40, 30, 20, 10],
    })
    out = rfm_scores(frame).set_index("customer_id")
    assert out["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert out["f_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert out.loc["c0", "rfm_score"] == "555" and out.loc["c0", "rfm_segment"] == "Champions"
    assert out.loc["c9", "rfm_segment"] == "Lost"
    assert out.loc["c4", "rfm_segment"] == "Need Attention"


def test_rfm_grid_covers_the_named_segments():
    names = {name for row in RFM_GRID.values() for name in row}
    assert names == {"Champions", "Loyal Customers", "Potential Loyalist", "New Customers", "Promising",
                     "Need Attention", "About To Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost"}


def test_rfm_method_segments(demo_customers):
    seg = segment_customers(demo_customers, method="rfm")
    assert seg.segmenter is None
    counts = seg.assigned["segment_name"].value_counts()
    assert counts.sum() == len(demo_customers)
    assert {"Champions", "Lost"} <= set(counts.index)
    assert seg.assigned["r_score"].between(1, 5).all()
    with pytest.raises(CustomerLensError, match="^method must be one of"):
        segment_customers(demo_customers, method="dbscan")


# -- names checked against the segments' own numbers (customerlens.models.segment.naming)
def _stats(rows: dict[int, tuple[float, float, float, float | None]]) -> pd.DataFrame:
    """Per segment: mean spend, mean orders, overdue (recency / own rhythm), mean churn risk."""
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=["monetary", "frequency", "overdue", "churn_risk"])
    return frame.dropna(axis=1, how="all")


def test_check_names_moves_a_name_that_contradicts_its_numbers():
    from customerlens.models.segment.naming import broken_promises, check_names

    names = {1: "High-Value", 2: "Frequent & Loyal", 3: "At-Risk", 4: "Occasional Buyers"}
    # the grocery chain of the issue: "At-Risk" has the lowest churn risk (6 % against 26 %), and
    # "Frequent & Loyal" orders less often than "At-Risk"
    stats = _stats({1: (5000, 60, 0.9, 0.05), 2: (900, 18, 1.1, 0.10), 3: (1500, 25, 0.8, 0.06),
                    4: (300, 4, 3.0, 0.26)})
    assert broken_promises(names, stats)
    checked, notes = check_names(names, stats)
    assert checked == {1: "High-Value", 2: "Occasional Buyers", 3: "Frequent & Loyal", 4: "At-Risk"}
    assert broken_promises(checked, stats) == []
    assert len(notes) == 2 and "'At-Risk' moved from segment 3 to segment 4 (the highest mean churn risk, 26%)" \
        in notes[0]
    # numbers that agree with the names: nothing moves
    again, none = check_names(checked, stats)
    assert again == checked and none == []


def test_without_churn_risk_at_risk_is_the_most_overdue_for_its_rhythm():
    from customerlens.models.segment.naming import broken_promises, check_names

    names = {1: "High-Value", 2: "At-Risk", 3: "Frequent & Loyal", 4: "Occasional Buyers"}
    # segment 2 waited 40 days, but orders every 60: on rhythm. Segment 4 waited 30 days against a 7-day rhythm.
    stats = _stats({1: (3000, 20, 1.0, None), 2: (800, 6, 40 / 60, None), 3: (900, 12, 1.2, None),
                    4: (200, 3, 30 / 7, None)})
    checked, notes = check_names(names, stats)
    assert checked[4] == "At-Risk" and checked[2] == "Occasional Buyers" and broken_promises(checked, stats) == []
    assert "relative to its rhythm" in notes[0]


def test_frequent_means_the_shorter_gap_between_orders():
    """The grocery shape at k = 4: weekly shoppers who joined six weeks ago (5 orders, every 7 days) were
    called Occasional Buyers and customers with 8 orders a year (every 43 days) Frequent & Loyal.
    """
    from customerlens.models.segment.naming import broken_promises, check_names

    names = {1: "High-Value", 2: "At-Risk", 3: "Frequent & Loyal", 4: "Occasional Buyers"}
    stats = _stats({1: (9000, 60, 0.7, 0.01), 2: (4000, 34, 18.0, 0.9), 3: (480, 8, 0.5, 0.2),
                    4: (600, 5, 0.6, 0.1)})
    stats["gap"] = [5.0, 7.0, 43.0, 7.0]
    assert broken_promises(names, stats) == ["Frequent & Loyal orders less often than Occasional Buyers"]
    checked, notes = check_names(names, stats)
    assert checked[4] == "Frequent & Loyal" and checked[3] == "Occasional Buyers"
    assert notes == ["'Frequent & Loyal' moved from segment 3 to segment 4 (orders every 7 days, the shorter gap); "
                     "segment 3 is now 'Occasional Buyers'"]
    assert broken_promises(checked, stats) == []


def test_one_order_customers_are_censored_not_frequent():
    """A customer with one order has no gap yet, only a lower bound: the Kaplan-Meier median."""
    from customerlens.models.segment.naming import kaplan_meier_median

    nan = float("nan")
    # 5 (censored), 10, 20, 100 (censored): survival 1, 2/3, 1/3 -> the median is 20
    assert kaplan_meier_median(np.array([nan, 10.0, 20.0, nan]), np.array([5.0, 0, 0, 100.0])) == 20.0
    # most never seen to order again: the rhythm is longer than the data shows
    assert kaplan_meier_median(np.array([nan, nan, nan, 30.0]), np.array([40.0, 50.0, 60.0, 0])) == float("inf")
    # two new one-order customers (5 and 10 days since it) and two with gaps of 90 and 100 days: 90,
    # where taking the days since a single order as a gap would have said 47.5
    assert kaplan_meier_median(np.array([nan, nan, 90.0, 100.0]), np.array([5.0, 10.0, 0, 0])) == 90.0


def test_high_value_goes_first_and_is_never_undone():
    from customerlens.models.segment.naming import broken_promises, check_names

    names = {1: "At-Risk", 2: "High-Value", 3: "Occasional Buyers", 4: "Frequent & Loyal", 5: "New Customers"}
    stats = _stats({1: (9000, 40, 2.0, 0.7), 2: (500, 5, 1.0, 0.2), 3: (700, 30, 0.5, 0.1), 4: (400, 2, 0.7, 0.3),
                    5: (99999, 1, 9.0, 0.9)})  # not one of the four: never touched
    checked, notes = check_names(names, stats)
    assert checked[5] == "New Customers"
    assert checked[1] == "High-Value" and broken_promises(checked, stats) == []
    assert all(note.startswith("'") for note in notes)


@pytest.mark.parametrize("shape", ["demo", "online_retail", "cdnow"])
def test_names_keep_their_promises_on_the_shared_data(shape, request):
    """After a whole analysis (value included), on the demo and the shared data sets."""
    from customerlens.models.segment.naming import broken_promises, segment_stats

    truth = None
    if shape == "demo":
        data = request.getfixturevalue("tmp_path") / "demo.csv"
        generated = demo.generate(1500, seed=4)
        demo.write(generated, data)
        truth = generated.types.to_pandas()
    else:
        data = request.getfixturevalue({"online_retail": "online_retail", "cdnow": "cdnow_sample"}[shape])
    with cl.analyze(data, top_n=0, charts=False, report=False, insights=False) as analysis:
        seg = analysis.segmentation
        churn = analysis.value.table.set_index("customer_id")["churn_risk"] if analysis.value is not None else None
        stats = segment_stats(seg.assigned, churn)
        names = seg.segmenter.segment_names_
        assert broken_promises(names, stats) == [], (names, stats, seg.naming_notes)
        assert analysis.record()["segmentation"]["naming"]
        if truth is not None:  # and the checks did not take the planted types' names away from them
            planted = seg.assigned.merge(truth, on="customer_id").groupby("segment_name")["true_type"]
            majority = planted.agg(lambda types: types.value_counts().index[0])
            assert majority["At-Risk"] == "at_risk" and majority["High-Value"] == "high_value", majority


def test_silhouette_is_scikit_learns():
    """The elbow search's silhouettes (every k from one matrix product) equal scikit-learn's, singletons and
    labels that skip numbers included, each k alone or side by side.
    """
    from sklearn.metrics import pairwise_distances, silhouette_score

    from customerlens.models.segment.segmenter import silhouette, silhouettes

    rng = np.random.default_rng(3)
    for n, ks in [(60, (3, 2)), (400, (8, 5, 9)), (40, (35,))]:  # the last has segments of one customer
        distances = pairwise_distances(rng.normal(size=(n, 4)))
        label_sets = [rng.integers(0, k, n) * 2 for k in ks]  # 0, 2, 4, ...: codes need not be 0..k-1
        expected = [silhouette_score(distances, labels, metric="precomputed") for labels in label_sets]
        assert silhouettes(distances, label_sets) == pytest.approx(expected, abs=1e-12)
        assert silhouette(distances, label_sets[0]) == pytest.approx(expected[0], abs=1e-12)
    assert silhouettes(distances, []) == []
