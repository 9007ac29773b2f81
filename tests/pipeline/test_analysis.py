"""The notebook-first API: analyze() in memory, save() = what `run` writes, checked settings."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

import customerlens as cl
from customerlens.io import demo


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path, _ = demo.write(demo.generate(500, seed=21), tmp_path_factory.mktemp("demo") / "demo.csv")
    return path


@pytest.fixture(scope="module")
def analysis(demo_file, tmp_path_factory):
    """analyze() from an empty working directory: it must leave the directory empty."""
    cwd = tmp_path_factory.mktemp("cwd")
    before = os.getcwd()
    os.chdir(cwd)
    try:
        result = cl.analyze(demo_file, top_n=5)
        created = sorted(p.name for p in cwd.iterdir())
    finally:
        os.chdir(before)
    result.created_files = created
    yield result
    result.close()


def test_analyze_writes_no_file(analysis):
    assert analysis.created_files == []
    assert analysis.outputs == {} and analysis.out_dir is None


def test_analyze_returns_typed_attributes(analysis):
    import altair as alt

    from customerlens.cleaning.rules import QualityReport
    from customerlens.models.value import ValueResult

    assert isinstance(analysis.quality, QualityReport) and analysis.quality.is_consistent()
    features = analysis.features
    assert isinstance(features, pd.DataFrame) and len(features) == analysis.customers > 400
    assert features["customer_id"].is_monotonic_increasing
    segments = analysis.segments
    assert len(segments) == analysis.customers and {"segment_id", "segment_name"} <= set(segments.columns)
    profiles = analysis.segment_profiles
    assert profiles["customers"].sum() == analysis.customers
    assert isinstance(analysis.value, ValueResult) and len(analysis.value.table) == analysis.customers
    recs = analysis.recommendations
    assert recs.groupby("customer_id")["rank"].max().max() == 5
    assert analysis.campaigns is None  # none given
    charts = analysis.charts
    assert {"elbow", "segments_pca", "box_plots", "top_products", "value_tracking"} <= set(charts)
    assert all(isinstance(chart, alt.TopLevelMixin) for chart in charts.values())
    from customerlens.outputs.charts import spec

    for chart in charts.values():  # runs skip the Vega-Lite schema check (outputs.charts.spec): it is done here
        spec(chart, validate=True)
    assert repr(analysis).startswith(f"<Analysis customers={analysis.customers:,}") and len(repr(analysis)) < 200
    html = analysis._repr_html_()
    assert f"{analysis.customers:,} customers" in html and profiles["segment_name"].iloc[0] in html


@pytest.mark.slow  # a whole run or many CLI processes: in make test, not test-fast
def test_save_writes_what_run_writes(analysis, demo_file, tmp_path):
    """Run = analyze + save: the same files, the same bytes (the report's "run at" time aside)."""
    saved = tmp_path / "saved"
    outputs = analysis.save(saved)
    assert outputs["store"] == saved / "customerlens.duckdb" and analysis.out_dir == saved
    ran = tmp_path / "ran"
    cl.run(demo_file, ran, top_n=5).close()
    files = sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(ran).as_posix() for p in ran.rglob("*") if p.is_file())
    assert "report.html" in files and "charts/elbow.png" in files and "targets/at-risk.csv" in files
    compared = [f for f in files if f.endswith((".csv", ".json", ".md", ".svg"))]
    assert len(compared) > 20
    # numpy's vectorised exp/log can differ in the last bit with an array's memory alignment, and the value
    # models amplify that to the 9th digit of a few customers' CLV between two fits in one process (separate
    # processes on Online Retail give the same bytes). So CSV files are compared as tables, exact but for
    # floats (1e-6 relative), and the value chart drawn from them is left out; every other file by bytes.
    for name in compared:
        a, b = saved / name, ran / name
        if name.endswith(".csv"):
            pd.testing.assert_frame_equal(pd.read_csv(a), pd.read_csv(b), check_exact=False, rtol=1e-6, obj=name)
        elif name != "charts/value_by_segment.svg":
            a, b = a.read_bytes(), b.read_bytes()
            if name.endswith(".svg"):  # the SVG renderer numbers gradients per process: gradient_0 vs gradient_4
                a, b = (re.sub(rb"gradient_\d+", b"gradient", x) for x in (a, b))
            assert a == b, name


def test_analyze_with_a_campaign_table(demo_file, tmp_path):
    """A campaign table given to analyze() is measured by the analysis's own segments and saved."""
    import numpy as np

    with cl.analyze(demo_file, top_n=0, charts=False, report=False) as first:
        ids = first.segments["customer_id"].to_numpy()
    rng = np.random.default_rng(3)
    table = pd.DataFrame({"customer": ids, "group": rng.choice(["mail", "control"], len(ids)),
                          "bought": rng.integers(0, 2, len(ids))})
    with cl.analyze(demo_file, top_n=0, charts=False, report=False, campaigns=table,
                    campaign_options={"outcomes": ["bought"], "customer_col": "customer"}) as result:
        lift = result.campaigns
        assert set(lift.loc[lift["segment_by"] == "segment_name", "segment_value"]) == \
            set(result.segments["segment_name"])
        outputs = result.save(tmp_path / "out")
    assert (tmp_path / "out" / "campaign_lift.csv").is_file() and "campaign_summary" in outputs
    from customerlens.outputs.store import table_names

    assert "campaign_lift" in table_names(outputs["store"])


def test_flat_options_and_nested_config_are_the_same(demo_file):
    flat = cl.RunConfig.from_options(k=3, as_of="2011-09-09", top_n=0, charts=False, value=False,
                                     memory_limit="2 gb")
    assert flat.segmentation.k == 3 and flat.recommend is None and flat.value is None
    assert flat.output.charts is False and flat.engine.memory_limit == "2GB"
    nested = cl.RunConfig(as_of="2011-09-09", segmentation=cl.SegmentConfig(k=3), recommend=None, value=None,
                          output=cl.OutputConfig(charts=False), engine=cl.EngineConfig(memory_limit="2GB"))
    assert flat == nested
    assert flat.as_dict()["segmentation"]["k"] == 3  # what the run record stores


@pytest.mark.parametrize("options, parameter", [
    ({"k": 0}, "segmentation.k"),
    ({"method": "dbscan"}, "segmentation.method"),
    ({"k_range": (5, 2)}, "segmentation.k_range"),
    ({"as_of": "yesterday"}, "as_of"),
    ({"engine": "hadoop"}, "engine.name"),
    ({"memory_limit": "lots"}, "engine.memory_limit"),
    ({"top_n": 3, "discovery_slots": 4}, "recommend.discovery_slots"),
    ({"recommender": "magic"}, "recommend.model"),
    ({"horizon_days": 0}, "value.horizon_days"),
    ({"discount_rate": 2.0}, "value.discount_rate"),
    ({"migration_from": "not a date"}, "insights.migration_from"),
    ({"colour": "red"}, "colour"),
])
def test_bad_settings_fail_when_built_and_name_the_parameter(options, parameter):
    with pytest.raises(cl.ConfigError) as caught:
        cl.RunConfig.from_options(**options)
    assert caught.value.parameter == parameter
    assert parameter in str(caught.value) and "--" not in str(caught.value)


def test_sections_can_be_given_as_flat_options():
    config = cl.RunConfig.from_options(value=cl.ValueConfig(horizon_days=30), insights=None, top_n=0)
    assert config.value.horizon_days == 30 and config.insights is None and config.recommend is None
    with pytest.raises(cl.ConfigError, match="not both"):
        cl.RunConfig.from_options(value=cl.ValueConfig(), horizon_days=30)
    with pytest.raises(cl.ConfigError, match="0 .no recommendations. or more"):
        cl.RunConfig.from_options(top_n=-1)


def test_config_and_options_together_is_an_error(demo_file):
    with pytest.raises(cl.ConfigError, match="not both"):
        cl.analyze(demo_file, cl.RunConfig(), k=3)


def test_cli_shows_its_flags_for_the_parameters(tmp_path):
    from tests.conftest import cli

    result = cli("segment", tmp_path / "any.csv", "--k-range", "5,2", "--out", tmp_path / "o")
    assert result.returncode == 2 and "--k-range needs 1 <= low <= high" in result.stderr
    assert "segmentation." not in result.stderr and "Traceback" not in result.stderr
