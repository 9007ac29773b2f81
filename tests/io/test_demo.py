import numpy as np
import pyarrow.csv as pacsv

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
