"""Campaign analysis: lifts and intervals checked by hand, on Hillstrom, and for honesty by simulation."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from customerlens.errors import CustomerLensError, DataQualityError, SchemaError
from customerlens.models.campaigns import (
    ALL,
    COLUMNS,
    SEGMENT_NAME,
    benjamini_hochberg,
    bootstrap_means,
    campaign_lift,
    campaign_summary,
    lift_heterogeneity,
)
from customerlens.outputs import charts
from tests.conftest import cli, cli_in_process, to_engine

Z975 = NormalDist().inv_cdf(0.975)

# Ten customers per arm, two regions; a binary outcome and a spend, small enough to do by hand.
TINY = pd.DataFrame({
    "customer": [f"c{i:02d}" for i in range(20)],
    "group": ["mail"] * 10 + ["none"] * 10,
    "region": ["north", "south"] * 10,
    "bought": [1, 1, 1, 0, 1, 1, 0, 0, 1, 0] + [1, 0, 1, 0, 0, 0, 1, 0, 0, 0],
    "spend": [10, 0, 20, 0, 30, 0, 0, 0, 40, 0] + [10, 0, 0, 0, 0, 0, 20, 0, 0, 0],
})


def tiny_lift(data=TINY, **kwargs):
    options = {"outcomes": ["bought", "spend"], "control": "none", "segment_by": ["region"], "min_n": 2,
               "min_responders": 1, "bootstrap": 0, **kwargs}
    return campaign_lift(data, **options)


def row(frame, outcome, by=ALL, value=ALL, arm=None):
    part = frame[(frame["outcome"] == outcome) & (frame["segment_by"] == by) & (frame["segment_value"] == value)]
    if arm is not None:
        part = part[part["arm"] == arm]
    assert len(part) == 1, part
    return part.iloc[0]


# --------------------------------------------------------------------------- by hand


def test_tiny_binary_by_hand():
    lift = tiny_lift()
    r = row(lift, "bought")
    # mail: 6 of 10 bought; none: 3 of 10
    assert (r.n_treatment, r.n_control, r.responders_treatment, r.responders_control) == (10, 10, 6, 3)
    assert r.mean_treatment == pytest.approx(0.6) and r.mean_control == pytest.approx(0.3)
    assert r.lift == pytest.approx(0.3)
    se = math.sqrt(0.6 * 0.4 / 10 + 0.3 * 0.7 / 10)  # Wald: sqrt(0.045)
    assert r.lift_se == pytest.approx(se)
    assert r.lift_ci_low == pytest.approx(0.3 - Z975 * se) and r.lift_ci_high == pytest.approx(0.3 + Z975 * se)
    pooled = 0.45
    z = 0.3 / math.sqrt(pooled * (1 - pooled) * (1 / 10 + 1 / 10))
    assert r.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert r.relative_lift == pytest.approx(1.0)
    se_log = math.sqrt(0.6 * 0.4 / 10 / 0.6 ** 2 + 0.3 * 0.7 / 10 / 0.3 ** 2)
    assert r.relative_lift_ci_low == pytest.approx(2 * math.exp(-Z975 * se_log) - 1)
    assert r.relative_lift_ci_high == pytest.approx(2 * math.exp(Z975 * se_log) - 1)
    assert r.incremental_value == pytest.approx(3.0)
    assert r.outcome_type == "binary" and math.isnan(r.lift_boot_ci_low)


def test_tiny_spend_welch_by_hand():
    lift = tiny_lift()
    r = row(lift, "spend")
    # mail: 10+20+30+40 = 100 over 10 -> 10; none: 30 over 10 -> 3
    assert r.mean_treatment == pytest.approx(10.0) and r.mean_control == pytest.approx(3.0)
    # sample variances: (sum of squares - n mean^2) / (n - 1)
    var_t = (100 + 400 + 900 + 1600 - 10 * 10.0 ** 2) / 9
    var_c = (100 + 400 - 10 * 3.0 ** 2) / 9
    a, b = var_t / 10, var_c / 10
    se = math.sqrt(a + b)
    df = (a + b) ** 2 / (a ** 2 / 9 + b ** 2 / 9)
    assert r.lift == pytest.approx(7.0) and r.lift_se == pytest.approx(se) and r.df == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * se
    assert r.lift_ci_low == pytest.approx(7 - half) and r.lift_ci_high == pytest.approx(7 + half)
    assert r.p_value == pytest.approx(2 * stats.t.sf(7 / se, df))
    expected = stats.ttest_ind(TINY.spend[:10], TINY.spend[10:], equal_var=False)
    assert r.p_value == pytest.approx(expected.pvalue)
    assert r.relative_lift == pytest.approx(10 / 3 - 1)
    assert r.outcome_type == "continuous"


def test_tiny_segments_are_the_same_sums_on_the_subsets():
    lift = tiny_lift()
    for region in ("north", "south"):
        part = TINY[TINY.region == region]
        direct = tiny_lift(part.drop(columns="region"), segment_by=[])
        for outcome in ("bought", "spend"):
            seg, whole = row(lift, outcome, "region", region), row(direct, outcome)
            for column in ("n_treatment", "n_control", "mean_treatment", "mean_control", "lift", "lift_ci_low",
                           "lift_ci_high", "p_value"):
                assert seg[column] == pytest.approx(whole[column]), (region, outcome, column)


def test_result_shape_and_order():
    lift = tiny_lift()
    assert list(lift.columns) == list(COLUMNS)
    assert len(lift) == 2 * (1 + 2)  # outcomes x (all + two regions)
    assert lift["segment_by"].tolist() == ["all", "region", "region"] * 2
    assert lift["campaign"].unique().tolist() == ["campaign"] and lift["arm"].unique().tolist() == ["mail"]


def test_the_same_on_every_engine(engine):
    expected = tiny_lift()
    got = tiny_lift(to_engine(TINY, engine))
    pd.testing.assert_frame_equal(got, expected)


def test_roi_from_the_revenue_outcome():
    lift = tiny_lift(cost_per_contact=2.0, revenue_outcome="spend")
    r = row(lift, "spend")
    assert r.cost == pytest.approx(20.0)
    assert r.roi == pytest.approx((7.0 * 10 - 20) / 20)
    assert r.roi_ci_low == pytest.approx((r.lift_ci_low * 10 - 20) / 20)
    assert math.isnan(row(lift, "bought").roi)
    # one non-binary outcome: it is the revenue outcome without being named
    assert row(tiny_lift(cost_per_contact=2.0), "spend").roi == pytest.approx(r.roi)


def test_too_small_rules():
    lift = tiny_lift(min_n=6, min_responders=3)
    whole, north = row(lift, "bought"), row(lift, "bought", "region", "north")
    assert not whole.too_small and whole.too_small_reason == ""
    assert north.too_small and "fewer than 6 customers" in north.too_small_reason  # 5 per arm
    spend_all = row(lift, "spend")
    assert spend_all.responders_control == 2 and spend_all.too_small
    assert "fewer than 3 responders" in spend_all.too_small_reason
    # a binary outcome also needs non-responders
    nearly_all = TINY.assign(bought=1)
    assert "non-responders" in row(tiny_lift(nearly_all, outcomes=["bought"]), "bought").too_small_reason


def test_row_order_does_not_matter():
    rng = np.random.default_rng(3)
    data = pd.DataFrame({"group": rng.choice(["a", "b", "c"], 600), "seg": rng.choice(["x", "y"], 600),
                         "spend": np.where(rng.random(600) < 0.3, rng.gamma(2, 20, 600).round(2), 0.0)})
    options = {"outcomes": ["spend"], "control": "a", "segment_by": ["seg"], "bootstrap": 300}
    first = campaign_lift(data, **options)
    second = campaign_lift(data.sample(frac=1, random_state=1), **options)
    pd.testing.assert_frame_equal(first, second)
    assert first["lift_boot_ci_low"].notna().all()
    assert first["arm"].unique().tolist() == ["b", "c"]


def test_segments_joined_by_customer_id():
    segments = pd.DataFrame({"customer_id": [f"c{i:02d}" for i in range(0, 20, 2)], SEGMENT_NAME: "Loyal"})
    lift = tiny_lift(customer_col="customer", segments=segments, segment_by=[])
    values = set(lift.loc[lift.segment_by == SEGMENT_NAME, "segment_value"])
    assert values == {"Loyal", "(unsegmented)"}
    # even customers are the north ones: the Loyal rows equal the north rows
    by_region = tiny_lift()
    assert row(lift, "spend", SEGMENT_NAME, "Loyal").lift == pytest.approx(row(by_region, "spend", "region",
                                                                                "north").lift)
    as_mapping = tiny_lift(customer_col="customer", segment_by=[],
                           segments=dict(zip(segments.customer_id, segments[SEGMENT_NAME], strict=True)))
    pd.testing.assert_frame_equal(as_mapping, lift)


def test_several_campaigns_and_numeric_buckets():
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"wave": np.repeat(["spring", "autumn"], 400), "group": np.tile(["t", "c"], 400),
                         "history": rng.gamma(2, 100, 800), "visit": rng.integers(0, 2, 800)})
    lift = campaign_lift(data, outcomes=["visit"], control="c", campaign_col="wave", segment_by=["history"],
                         bootstrap=0)
    assert lift["campaign"].unique().tolist() == ["autumn", "spring"]
    buckets = lift.loc[(lift.segment_by == "history") & (lift.campaign == "spring"), "segment_value"].tolist()
    assert len(buckets) == 5 and buckets[0].startswith("Q1 ") and buckets[-1].startswith("Q5 ")
    spring = data[data.wave == "spring"]
    r = row(lift[lift.campaign == "spring"], "visit")
    assert r.lift == pytest.approx(spring[spring.group == "t"].visit.mean() - spring[spring.group == "c"].visit.mean())


# --------------------------------------------------------------------------- bad input


def test_bad_input_names_file_column_and_row(tmp_path):
    path = tmp_path / "camp.csv"
    path.write_text("group,spend\nnone,1\nmail,2\nmail,lots\nnone,3\n")
    with pytest.raises(DataQualityError) as exc:
        campaign_lift(path, outcomes=["spend"], control="none")
    message = str(exc.value)
    assert str(path) in message and "'spend'" in message and "row 3 (line 4)" in message and "'lots'" in message
    with pytest.raises(SchemaError, match="no column 'revenue'"):
        campaign_lift(path, outcomes=["revenue"], control="none")
    with pytest.raises(SchemaError, match="no column 'arm'"):
        campaign_lift(path, outcomes=["spend"], group_col="arm", control="none")
    with pytest.raises(DataQualityError, match=r"no row has the control arm 'None'.*did you mean 'none'"):
        campaign_lift(path, outcomes=["spend"], control="None")
    empty = tmp_path / "empty_outcome.csv"
    empty.write_text("group,spend\nnone,1\nmail,\n")
    with pytest.raises(DataQualityError, match=r"'spend', row 2 \(line 3\): the outcome is empty"):
        campaign_lift(empty, outcomes=["spend"], control="none")


def test_bad_input_in_frames_and_campaigns():
    twice = TINY.assign(customer="same")
    with pytest.raises(DataQualityError, match=r"column 'customer', row 2: this customer appears twice"):
        tiny_lift(twice, customer_col="customer")
    waves = TINY.assign(wave=["a"] * 15 + ["b"] * 5)
    waves.loc[waves.wave == "b", "group"] = "mail"  # wave b has no control customer
    with pytest.raises(DataQualityError, match="campaign 'b' has no control arm 'none'"):
        tiny_lift(waves, campaign_col="wave")
    with pytest.raises(CustomerLensError, match="revenue outcome"):
        tiny_lift(cost_per_contact=1.0, revenue_outcome="visits")


# --------------------------------------------------------------------------- Benjamini-Hochberg


def test_benjamini_hochberg_by_hand_and_against_scipy():
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    # sorted 0.005 0.01 0.03 0.04 0.5, times m / rank: 0.025 0.025 0.05 0.05 0.5, running min from the top
    assert benjamini_hochberg(p) == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    assert np.isnan(benjamini_hochberg([0.2, np.nan, 0.01])[1])
    assert benjamini_hochberg([0.2, np.nan, 0.01])[[0, 2]] == pytest.approx([0.2, 0.02])
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(0, 0.2, rng.integers(1, 30))
        assert benjamini_hochberg(q) == pytest.approx(stats.false_discovery_control(q, method="bh"))


@pytest.mark.realdata
def test_p_adjusted_families(hillstrom):
    lift = campaign_lift(hillstrom, outcomes=["conversion"], group_col="segment", control="No E-Mail",
                         segment_by=["history_segment", "channel"], bootstrap=0)
    overall = lift[lift.segment_by == ALL]
    assert (overall.p_adjusted == overall.p_value).all()
    for _, family in lift[lift.segment_by != ALL].groupby(["arm", "outcome", "segment_by"]):
        assert family.p_adjusted.to_numpy() == pytest.approx(
            stats.false_discovery_control(family.p_value.to_numpy(), method="bh"))
        assert (family.p_adjusted >= family.p_value - 1e-15).all()


# --------------------------------------------------------------------------- Hillstrom


PUBLISHED = {  # data README: visit, conversion, mean spend of the whole arm
    "Mens E-Mail": (0.1828, 0.0125, 1.4226),
    "Womens E-Mail": (0.1514, 0.0088, 1.0772),
    "No E-Mail": (0.1062, 0.0057, 0.6528),
}
BY = ["history_segment", "channel", "zip_code", "newbie"]


@pytest.fixture(scope="module")
def hill(hillstrom):
    data = pd.read_csv(hillstrom)
    lift = campaign_lift(hillstrom, outcomes=["visit", "conversion", "spend"], group_col="segment",
                         control="No E-Mail", segment_by=BY, cost_per_contact=0.1, revenue_outcome="spend")
    return data, lift


@pytest.mark.realdata
def test_hillstrom_overall_lifts_equal_a_direct_computation(hill):
    data, lift = hill
    control = data[data.segment == "No E-Mail"]
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        treated = data[data.segment == arm]
        for i, outcome in enumerate(("visit", "conversion", "spend")):
            r = row(lift, outcome, arm=arm)
            assert round(r.mean_treatment, 4) == PUBLISHED[arm][i]
            assert round(r.mean_control, 4) == PUBLISHED["No E-Mail"][i]
            assert (r.n_treatment, r.n_control) == (len(treated), len(control))
            assert r.lift == pytest.approx(treated[outcome].mean() - control[outcome].mean(), rel=1e-12)
            assert r.incremental_value == pytest.approx(r.lift * len(treated))


@pytest.mark.realdata
def test_hillstrom_interval_widths_match_the_textbook(hill):
    data, lift = hill
    control = data[data.segment == "No E-Mail"]
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        treated = data[data.segment == arm]
        for outcome in ("visit", "conversion"):
            p1, p0, n1, n0 = treated[outcome].mean(), control[outcome].mean(), len(treated), len(control)
            wald = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
            r = row(lift, outcome, arm=arm)
            assert r.lift_ci_high - r.lift_ci_low == pytest.approx(2 * Z975 * wald, rel=1e-9)
            _, chi_p, _, _ = stats.chi2_contingency(pd.crosstab(pd.concat([treated, control]).segment,
                                                                pd.concat([treated, control])[outcome]),
                                                    correction=False)
            assert r.p_value == pytest.approx(chi_p, rel=1e-6)  # pooled z test == chi-squared without correction
        v1, v0 = treated.spend.var(ddof=1) / len(treated), control.spend.var(ddof=1) / len(control)
        df = (v1 + v0) ** 2 / (v1 ** 2 / (len(treated) - 1) + v0 ** 2 / (len(control) - 1))
        r = row(lift, "spend", arm=arm)
        assert r.lift_ci_high - r.lift_ci_low == pytest.approx(2 * stats.t.ppf(0.975, df) * math.sqrt(v1 + v0),
                                                               rel=1e-9)
        assert r.p_value == pytest.approx(stats.ttest_ind(treated.spend, control.spend, equal_var=False).pvalue)
        # the bootstrap interval of a mean difference with 20,000 customers per arm is close to Welch's
        width = r.lift_ci_high - r.lift_ci_low
        assert abs(r.lift_boot_ci_low - r.lift_ci_low) < 0.1 * width
        assert abs(r.lift_boot_ci_high - r.lift_ci_high) < 0.1 * width
        assert r.roi == pytest.approx(r.lift / 0.1 - 1)


@pytest.mark.realdata
def test_hillstrom_every_segment_value_is_covered(hill):
    data, lift = hill
    for arm in ("Mens E-Mail", "Womens E-Mail"):
        for outcome in ("visit", "conversion", "spend"):
            for by in BY:
                part = lift[(lift.arm == arm) & (lift.outcome == outcome) & (lift.segment_by == by)]
                assert set(part.segment_value) == {str(v) for v in data[by].unique()}, (arm, outcome, by)
                assert part.n_treatment.sum() == (data.segment == arm).sum()
                assert part.n_control.sum() == (data.segment == "No E-Mail").sum()
    # the flag follows its rule: fewer than 10 buyers in an arm of history_segment "7) $1,000 +"
    top = data[data.history_segment == "7) $1,000 +"]
    buyers = top.groupby("segment").conversion.sum()
    r = row(lift, "conversion", "history_segment", "7) $1,000 +", arm="Mens E-Mail")
    assert r.too_small == (min(buyers["Mens E-Mail"], buyers["No E-Mail"]) < 10)
    assert r.too_small  # 6 buyers in the control arm


@pytest.mark.realdata
def test_hillstrom_summary_and_chart(hill, tmp_path):
    _, lift = hill
    sentences = campaign_summary(lift, currency="$", money_outcomes=["spend"])
    mens = row(lift, "spend", arm="Mens E-Mail")
    first = next(s for s in sentences if s.startswith("Mens E-Mail raised spend"))
    assert f"${mens.lift:.2f} per customer" in first and "p < 0.001" in first
    assert f"95% CI ${mens.lift_ci_low:.2f} to ${mens.lift_ci_high:.2f}" in first
    assert any(s.startswith("Too small to judge") for s in sentences)
    het = lift_heterogeneity(lift)
    assert set(het.segment_by) == set(BY) and het.p_value.between(0, 1).all()
    chart = charts.campaign_lift_chart(lift, "spend")
    spec = json.dumps(chart.to_dict())
    assert "#bab0ac" in spec and "datum.too_small" in spec
    paths = charts.save_chart(chart, tmp_path / "lift_spend")
    assert paths["png"].stat().st_size > 10_000 and paths["svg"].is_file()
    one_arm = json.dumps(charts.campaign_lift_chart(lift, "visit", arm="Womens E-Mail").to_dict())
    assert "Womens E-Mail" in one_arm and "Mens E-Mail" not in one_arm


# --------------------------------------------------------------------------- interval honesty


def test_intervals_cover_the_true_lift_in_95_percent_of_simulated_campaigns():
    """1,000 simulated campaigns, 1,000 customers per arm, known true lifts; every interval covers ~95%."""
    rng = np.random.default_rng(20240607)
    sims, n = 1000, 1000
    p_control, p_treated = 0.20, 0.25  # a response rate
    q_control, q_treated, mu, sigma = 0.10, 0.13, 3.5, 0.8  # who buys, and a log-normal basket when they do
    basket = math.exp(mu + sigma ** 2 / 2)
    treated = np.tile(np.r_[np.ones(n, bool), np.zeros(n, bool)], sims)
    size = treated.size
    buys = rng.random(size) < np.where(treated, q_treated, q_control)
    data = pd.DataFrame({
        "campaign": np.repeat(np.arange(sims), 2 * n),
        "group": np.where(treated, "mailed", "control"),
        "responded": (rng.random(size) < np.where(treated, p_treated, p_control)).astype(np.int8),
        "spend": np.where(buys, rng.lognormal(mu, sigma, size), 0.0),
    })
    lift = campaign_lift(data, outcomes=["responded", "spend"], campaign_col="campaign", bootstrap=500,
                         random_state=11)
    assert len(lift) == 2 * sims
    binary, spend = lift[lift.outcome == "responded"], lift[lift.outcome == "spend"]
    true_rate, true_spend = p_treated - p_control, (q_treated - q_control) * basket

    def coverage(frame, low, high, truth):
        return float(((frame[low] <= truth) & (truth <= frame[high])).mean())

    measured = {
        "wald": coverage(binary, "lift_ci_low", "lift_ci_high", true_rate),
        "welch": coverage(spend, "lift_ci_low", "lift_ci_high", true_spend),
        "bootstrap": coverage(spend, "lift_boot_ci_low", "lift_boot_ci_high", true_spend),
        "relative_binary": coverage(binary, "relative_lift_ci_low", "relative_lift_ci_high",
                                    p_treated / p_control - 1),
        "relative_spend": coverage(spend, "relative_lift_ci_low", "relative_lift_ci_high",
                                   q_treated / q_control - 1),
    }
    print("coverage", measured)
    for name, value in measured.items():
        assert 0.93 <= value <= 0.97, (name, value)


def test_bootstrap_means_are_exact_resampling():
    rng = np.random.default_rng(1)
    values = np.r_[np.zeros(900), rng.gamma(2, 30, 100)]
    means = bootstrap_means(values, 4000, np.random.default_rng(2))
    direct = values[np.random.default_rng(3).integers(0, values.size, (4000, values.size))].mean(axis=1)
    assert means.mean() == pytest.approx(values.mean(), rel=0.01)
    assert means.std() == pytest.approx(direct.std(), rel=0.05)
    assert means.std() == pytest.approx(values.std() / math.sqrt(values.size), rel=0.05)
    assert np.array_equal(bootstrap_means(values, 50, np.random.default_rng(9)),
                          bootstrap_means(values[::-1], 50, np.random.default_rng(9)))
    assert (bootstrap_means(np.full(5, 2.0), 10, rng) == 2.0).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["t", "c"]), st.integers(0, 1)), min_size=4, max_size=60))
def test_binary_invariants(rows):
    data = pd.DataFrame(rows, columns=["group", "hit"])
    if set(data.group) != {"t", "c"}:
        with pytest.raises(DataQualityError):
            campaign_lift(data, outcomes=["hit"], control="c")
        return
    r = row(campaign_lift(data, outcomes=["hit"], control="c", bootstrap=0), "hit")
    assert r.lift == pytest.approx(data[data.group == "t"].hit.mean() - data[data.group == "c"].hit.mean())
    assert r.lift_ci_low <= r.lift + 1e-12 and r.lift <= r.lift_ci_high + 1e-12
    assert 0 <= r.p_value <= 1 and r.too_small  # never more than 60 customers: always too small to judge


# --------------------------------------------------------------------------- command line


def hillstrom_slice(hillstrom, tmp_path, rows=8000):
    path = tmp_path / "hill.csv"
    pd.read_csv(hillstrom, nrows=rows).to_csv(path, index=False)
    return path


@pytest.mark.realdata
def test_cli_campaigns_writes_the_table_summary_and_charts(hillstrom, tmp_path):
    path = hillstrom_slice(hillstrom, tmp_path)
    out = tmp_path / "out"
    result = cli("campaigns", path, "--group-col", "segment", "--control", "No E-Mail", "--outcomes",
                 "visit,conversion,spend", "--by", "history_segment,channel", "--cost-per-contact", "0.1",
                 "--revenue-outcome", "spend", "--currency", "$", "--out", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "campaign_lift.csv")
    overall = table[table.segment_by == "all"]
    assert len(overall) == 2 * 3 and (overall.segment_value == "all").all()
    data = pd.read_csv(path)
    mens = overall[(overall.arm == "Mens E-Mail") & (overall.outcome == "visit")].iloc[0]
    expected = data[data.segment == "Mens E-Mail"].visit.mean() - data[data.segment == "No E-Mail"].visit.mean()
    assert mens.lift == pytest.approx(expected)
    assert set(table.segment_by) == {"all", "history_segment", "channel"}
    summary = (out / "campaign_summary.txt").read_text()
    assert summary.startswith("Mens E-Mail") and "ROI" in summary
    for outcome in ("visit", "conversion", "spend"):
        assert (out / "charts" / f"campaign_lift_{outcome}.png").stat().st_size > 0
        assert (out / "charts" / f"campaign_lift_{outcome}.svg").is_file()
    assert "Lift over No E-Mail" in result.stdout and "Mens E-Mail raised the visit rate" in result.stdout


@pytest.mark.realdata
def test_cli_campaigns_json(hillstrom, tmp_path):
    path = hillstrom_slice(hillstrom, tmp_path, rows=3000)
    result = cli("campaigns", path, "--group-col", "segment", "--control", "No E-Mail", "--outcomes", "visit",
                 "--by", "newbie", "--no-charts", "--json", "--out", tmp_path / "o")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {r["arm"] for r in payload["overall"]} == {"Mens E-Mail", "Womens E-Mail"}
    assert payload["summary"] and (tmp_path / "o" / "campaign_summary.json").is_file()
    assert not (tmp_path / "o" / "charts").exists()


def test_cli_campaigns_help():
    result = cli("campaigns", "--help")
    assert result.returncode == 0 and "--group-col" in result.stdout and "Example" in result.stdout


def test_cli_campaigns_bad_input_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "camp.csv"
    path.write_text("segment,visit,spend\nNo E-Mail,0,0\nMens E-Mail,1,oops\nNo E-Mail,1,3\n")
    cases = {
        "missing column": (["--group-col", "arm", "--control", "No E-Mail", "--outcomes", "visit"], "'arm'"),
        "missing outcome": (["--group-col", "segment", "--control", "No E-Mail", "--outcomes", "clicks"],
                            "'clicks'"),
        "unknown control": (["--group-col", "segment", "--control", "Control", "--outcomes", "visit"],
                            "control arm 'Control'"),
        "not a number": (["--group-col", "segment", "--control", "No E-Mail", "--outcomes", "spend"],
                         "row 2 (line 3)"),
        "missing --by column": (["--group-col", "segment", "--control", "No E-Mail", "--outcomes", "visit",
                                 "--by", "region"], "'region'"),
    }
    for label, (args, expected) in cases.items():
        result = cli_in_process("campaigns", path, *args, "--out", tmp_path / "o")
        assert result.returncode == 2, (label, result.stdout, result.stderr)
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in result.stderr, (label, result.stderr)
        assert lines[0].startswith("error:") and expected in lines[0] and str(path) in lines[0], (label, lines[0])


def test_outcomes_derived_from_transactions_by_hand():
    """Sent 2024-03-01 with a 7-day window: a buys twice in it (one order on the 8th is outside), b never."""
    from customerlens.models.campaigns import outcomes_from_transactions

    table = pd.DataFrame({"cust": [1.0, 2.0, 3.0], "group": ["mail", "mail", "control"]})
    lines = pd.DataFrame({
        "customer_id": ["1", "1", "1", "3", "1"],
        "order_id": ["o1", "o1", "o2", "o3", "o4"],
        "order_date": pd.to_datetime(["2024-03-01 09:00", "2024-03-01 09:00", "2024-03-07 23:00",
                                      "2024-02-28 00:00", "2024-03-08 00:00"]),
        "amount": [10.0, 5.0, 2.5, 99.0, 50.0],
    })
    out = outcomes_from_transactions(table, lines, customer_col="cust", send_date="2024-03-01", window_days=7)
    assert out["orders"].tolist() == [2, 0, 0]
    assert out["spend"].tolist() == [17.5, 0.0, 0.0]
    assert out["purchased"].tolist() == [1, 0, 0]
    assert list(table.columns) == ["cust", "group"]  # the input is not modified
    per_row = table.assign(sent=["2024-02-27", "2024-03-01", "2024-02-27"])
    out = outcomes_from_transactions(per_row, lines, customer_col="cust", send_date_col="sent", window_days=7)
    assert out["spend"].tolist() == [15.0, 0.0, 99.0]
    with pytest.raises(CustomerLensError, match="either"):
        outcomes_from_transactions(table, lines, customer_col="cust", window_days=7)
    with pytest.raises(CustomerLensError, match="not a date"):
        outcomes_from_transactions(per_row.assign(sent=["x", "2024-03-01", "2024-03-01"]), lines,
                                   customer_col="cust", send_date_col="sent")


def test_campaigns_command_derives_outcomes_from_transactions(tmp_path):
    from customerlens.io import demo

    path, _ = demo.write(demo.generate(300, seed=2), tmp_path / "lines.csv")
    ids = sorted(pd.read_csv(path, dtype=str)["CustomerID"].dropna().unique())
    rng = np.random.default_rng(0)
    pd.DataFrame({"customer": ids, "group": rng.choice(["mail", "control"], len(ids))}).to_csv(
        tmp_path / "camp.csv", index=False)
    result = cli("campaigns", tmp_path / "camp.csv", "--transactions", path, "--customer-col", "customer",
                 "--send-date", "2024-10-01", "--window-days", "30", "--out", tmp_path / "o", "--no-charts")
    assert result.returncode == 0, result.stderr
    lift = pd.read_csv(tmp_path / "o" / "campaign_lift.csv")
    assert set(lift["outcome"]) == {"purchased", "orders", "spend"}
    bad = cli("campaigns", tmp_path / "camp.csv", "--transactions", path, "--send-date", "2024-10-01",
              "--out", tmp_path / "x")
    assert bad.returncode == 2 and "--customer-col" in bad.stderr
