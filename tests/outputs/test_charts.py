"""Every chart: a PNG of the expected size, an SVG, and a spec that carries the data."""

import json
import struct

import numpy as np
import pandas as pd
import pytest

from customerlens import insights
from customerlens.models.segment.segmenter import CustomerSegmenter
from customerlens.outputs import charts


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def spec_values(chart):
    """Every data value in a chart's spec (inline datasets)."""
    spec = chart.to_dict()
    return json.dumps(spec.get("datasets", {}))


@pytest.fixture(scope="module")
def segmented():
    rng = np.random.default_rng(0)
    n = 600
    group = rng.integers(0, 4, n)
    feats = pd.DataFrame({
        "customer_id": [f"c{i:04d}" for i in range(n)],
        "recency_days": np.exp(rng.normal([2, 3, 5, 4][0], 0.3, n) + group * 0.6).round() + 1,
        "frequency": np.exp(rng.normal(1, 0.3, n) + (3 - group) * 0.5).round() + 1,
        "monetary": np.exp(rng.normal(5, 0.4, n) + (3 - group) * 0.7),
        "avg_order_value": rng.gamma(3, 30, n),
    })
    seg = CustomerSegmenter(k=4).fit(feats)
    assigned = seg.assign(feats)
    lines = pd.DataFrame({
        "customer_id": np.repeat(feats["customer_id"], 3).to_numpy(),
        "order_id": [f"o{i}" for i in range(3 * n)],
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, 3 * n), unit="D"),
        "product_id": rng.choice([f"P{i}" for i in range(30)], 3 * n),
        "amount": rng.gamma(2, 10, 3 * n),
    })
    lines["product_name"] = "PRODUCT " + lines["product_id"]
    return seg, assigned, lines


def test_elbow_chart(segmented, tmp_path):
    seg, _, _ = segmented
    chart = charts.elbow_chart(seg.elbow_, seg.k_, "because")
    paths = charts.save_chart(chart, tmp_path / "elbow")
    w, h = png_size(paths["png"])
    assert 2 * 2 * (charts.WIDTH // 2 + 60) < w < 2 * 1500 and 2 * charts.HEIGHT < h < 2 * 600
    assert paths["svg"].read_text().startswith("<svg")
    values = spec_values(chart)
    assert f"chosen k = {seg.k_}" in values
    for inertia in seg.elbow_["inertia"]:
        assert json.dumps(float(inertia)) in values


def test_distribution_and_spending_charts(segmented, tmp_path):
    _, assigned, _ = segmented
    profiles = insights.segment_profiles(assigned)
    for fn, stem in ((charts.distribution_chart, "distribution"), (charts.spending_chart, "spending")):
        chart = fn(profiles)
        w, h = png_size(charts.save_chart(chart, tmp_path / stem)["png"])
        assert w > 2 * charts.WIDTH * 0.9 and h > 100
        values = spec_values(chart)
        for name in profiles["segment_name"]:
            assert name in values
    assert json.dumps(float(profiles["share_revenue"].iloc[0])) in spec_values(charts.distribution_chart(profiles))


def test_box_plots(segmented, tmp_path):
    _, assigned, _ = segmented
    stats = insights.box_stats(assigned)
    chart = charts.box_plots(stats)
    w, h = png_size(charts.save_chart(chart, tmp_path / "box")["png"])
    assert w > charts.WIDTH and h > 3 * 2 * 28 * 4
    values = spec_values(chart)
    median = stats[(stats.feature == "monetary")]["median"].iloc[0]
    assert json.dumps(float(median)) in values
    # boxes are right: median between quartiles, whiskers outside the box
    assert (stats["q1"] <= stats["median"]).all() and (stats["median"] <= stats["q3"]).all()
    assert (stats["whisker_low"] <= stats["q1"]).all() and (stats["whisker_high"] >= stats["q3"]).all()


def test_trend_and_top_products_charts(segmented, tmp_path):
    _, assigned, lines = segmented
    monthly = insights.monthly_trend(lines, assigned)
    chart = charts.trend_chart(monthly)
    w, h = png_size(charts.save_chart(chart, tmp_path / "trend")["png"])
    assert w > 2 * charts.WIDTH and h > 2 * charts.HEIGHT
    assert json.dumps(int(monthly["active_customers"].iloc[0])) in spec_values(chart)
    top = insights.top_products(lines, assigned, n=5)
    chart = charts.top_products_chart(top)
    w, h = png_size(charts.save_chart(chart, tmp_path / "top")["png"])
    assert w > 2 * charts.WIDTH and h > 2 * 16 * 5
    values = spec_values(chart)
    for name in top["product_name"]:
        assert name in values


def test_pca_chart(segmented, tmp_path):
    seg, assigned, _ = segmented
    chart = charts.pca_chart(seg.transform(assigned), assigned["segment_name"].to_numpy(), sample=300)
    w, h = png_size(charts.save_chart(chart, tmp_path / "pca")["png"])
    assert w > 2 * charts.WIDTH and h > 2 * charts.HEIGHT
    data = chart.to_dict()["datasets"]
    assert len(next(iter(data.values()))) == 300


def test_typed_channels_give_altairs_own_specification():
    """charts.Chart builds shorthand channels typed (issue 22: Altair parsed each against the whole schema):
    the specification is the one plain Altair writes.
    """
    import altair as alt

    from customerlens.outputs.charts import Chart

    data = pd.DataFrame({"amount": [3.0, 1.0], "segment_name": ["A", "B"], "month": ["2024-01-01", "2024-02-01"]})
    for build in (
        lambda c: c(data).mark_bar().encode(x="amount:Q", y=alt.Y("segment_name:N", sort="-x"),
                                           tooltip=["segment_name", alt.Tooltip("amount:Q", format=",.0f")]),
        lambda c: c(data).mark_line().encode(x="yearmonth(month):T", y="sum(amount):Q", color="segment_name",
                                            tooltip=["amount", "month:T"], opacity=alt.value(0.5)),
        lambda c: c(data).mark_text().encode(text="segment_name:N", xOffset="amount:Q"),
        lambda c: c(data).mark_rule().encode(x=alt.datum(0), color=alt.value("#555"), size=alt.value(2)),
    ):
        assert build(Chart).to_dict() == build(alt.Chart).to_dict()  # validated against the schema too


def test_product_labels_are_short_and_unique_within_a_segment():
    """Two products of one name in a segment stay two bars (their ids tell them apart); long names end in an
    ellipsis at LABEL_CHARS; the same name in another segment keeps its plain label.
    """
    frame = pd.DataFrame({
        "segment_name": ["A", "A", "B", "A"], "product_id": ["85123A", "85123B", "85123A", "22423"],
        "product_name": ["HEART HOLDER", "HEART HOLDER", "HEART HOLDER", "REGENCY CAKESTAND 3 TIER WITH A VERY LONG NAME"],
    })
    labels = charts.product_labels(frame).tolist()
    assert labels[:3] == ["HEART HOLDER (85123A)", "HEART HOLDER (85123B)", "HEART HOLDER"]
    assert len(labels[3]) == charts.LABEL_CHARS and labels[3].endswith("\u2026")
    spec = charts.spec(charts.top_products_chart(frame.assign(segment_id=[1, 1, 2, 1], rank=[1, 2, 1, 3], revenue=1.0,
                                                              buyers=1, lift=1.0)))
    assert json.dumps("HEART HOLDER (85123B)") in json.dumps(spec)
