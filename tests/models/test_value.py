"""Customer value: BG/NBD, Pareto/NBD and Gamma-Gamma against the published CDNOW figures,
parameter recovery on simulated data, churn risk on the CDNOW holdout, and the run's outputs.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
from scipy.special import hyp2f1

from customerlens.errors import ConfigError, CustomerLensError, NotFittedError
from customerlens.models.value import (
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    ValueConfig,
    evaluate_holdout,
    fit_value,
    rfm_summary,
    simulate_bgnbd,
)
from customerlens.models.value.pareto import _log_a0
from tests.conftest import to_engine

CAL, HOLD = "1997-09-30", "1998-06-30"


# -- the per-customer summary, by hand ------------------------------------------------------------

def tiny_lines() -> pd.DataFrame:
    """Customer a: Jan 1 (two orders that day, 10 + 5), Jan 8 (20), Jan 15 (40). Customer b: once, Jan 10."""
    rows = [("a", "o1", "2024-01-01 09:00", 10.0), ("a", "o2", "2024-01-01 17:00", 5.0),
            ("a", "o3", "2024-01-08 10:00", 20.0), ("a", "o4", "2024-01-15 10:00", 40.0),
            ("b", "o5", "2024-01-10 12:00", 7.0), ("a", "o6", "2024-02-01 10:00", 99.0)]
    frame = pd.DataFrame(rows, columns=["customer_id", "order_id", "order_date", "amount"])
    frame["order_date"] = pd.to_datetime(frame["order_date"])
    return frame


def test_summary_by_hand(engine):
    s = rfm_summary(to_engine(tiny_lines(), engine), "2024-01-29").set_index("customer_id")
    # a: 3 transaction days (Jan 1 counts once), 2 repeats; t_x = 14 days; T = 28 days; repeat mean (20 + 40) / 2
    assert s.loc["a", "frequency"] == 2
    assert s.loc["a", "recency"] == pytest.approx(2.0)
    assert s.loc["a", "T"] == pytest.approx(4.0)
    assert s.loc["a", "monetary_value"] == pytest.approx(30.0)
    assert s.loc["b", "frequency"] == 0 and s.loc["b", "recency"] == 0
    assert s.loc["b", "T"] == pytest.approx(19 / 7)
    assert s.loc["b", "monetary_value"] == 0  # the February purchase is after the calibration end
    # the days as datetime64 (8 bytes a customer), not Python date objects
    assert s["first_purchase"].dtype.kind == "M" and s["last_purchase"].dtype.kind == "M"
    assert str(s.loc["a", "first_purchase"]) == "2024-01-01 00:00:00"
    assert str(s.loc["a", "last_purchase"]) == "2024-01-15 00:00:00"


# -- the published CDNOW figures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def cdnow(cdnow_sample):
    import customerlens as cl

    return cl.ingest(cdnow_sample).cleaned.transactions.df()


@pytest.fixture(scope="module")
def cdnow_summary(cdnow):
    return rfm_summary(cdnow, CAL)


def _fit(model, s):
    return model.fit(s["frequency"], s["recency"], s["T"])


def test_bgnbd_reproduces_the_published_cdnow_parameters(cdnow_summary):
    """Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4."""
    assert len(cdnow_summary) == 2357
    assert cdnow_summary["frequency"].sum() == 2457  # repeat transactions in weeks 1-39
    m = _fit(BetaGeoModel(), cdnow_summary)
    for name, published in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert m.params_[name] == pytest.approx(published, rel=0.01), name
        assert 0 < m.standard_errors_[name] < m.params_[name]
    assert m.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)


def test_pareto_nbd_reproduces_the_published_cdnow_parameters(cdnow_summary):
    """Published on the same sample: r = 0.55, alpha = 10.58, s = 0.61, beta = 11.67."""
    m = _fit(ParetoNBDModel(), cdnow_summary)
    for name, published in {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}.items():
        assert m.params_[name] == pytest.approx(published, rel=0.01), name
    assert m.log_likelihood_ == pytest.approx(-9595.0, abs=0.1)


def test_gamma_gamma_reproduces_the_published_cdnow_parameters(cdnow_summary):
    """Fader, Hardie & Lee, "RFM and CLV" (2005): p = 6.25, q = 3.74, gamma = 15.44.

    Tolerance 1 % relative: the published values are rounded to two decimals
    (up to 0.13 % of q), and the rest is the optimiser's stopping rule; the
    standard errors are far wider (p +- 1.2), so 1 % is a strict check.
    """
    m = GammaGammaModel().fit(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    assert m.n_customers_ == 946
    for name, published in {"p": 6.25, "q": 3.74, "gamma": 15.44}.items():
        assert m.params_[name] == pytest.approx(published, rel=0.01), name
    assert abs(m.frequency_spend_correlation_) < 0.3  # the model's independence assumption, reported


def test_pareto_quadrature_matches_the_closed_form(cdnow_summary):
    """The dropout integral by quadrature equals the 2F1 closed form of the note (alpha >= beta and <)."""
    x, t_x, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    keep = t_x < T
    x, t_x, T = x[keep], t_x[keep], T[keep]
    for params in ((0.55, 10.58, 0.61, 11.67), (0.8, 30.0, 0.5, 3.0)):
        r, alpha, s, beta = params
        big, diff, second = (alpha, alpha - beta, s + 1) if alpha >= beta else (beta, beta - alpha, r + x)
        rsx = r + s + x
        closed = (hyp2f1(rsx, second, rsx + 1, diff / (big + t_x)) / (big + t_x) ** rsx
                  - hyp2f1(rsx, second, rsx + 1, diff / (big + T)) / (big + T) ** rsx)
        np.testing.assert_allclose(_log_a0(params, x, t_x, T), np.log(closed), atol=1e-4)


def test_pareto_gradient_matches_central_differences(cdnow_summary):
    """The fit's analytic gradient (one quadrature for the likelihood and all four derivatives) equals
    central differences of the likelihood, near the optimum and far from it, on either side of alpha = beta.
    """
    x, t_x, T = (cdnow_summary[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    w = np.ones(len(x))
    model = ParetoNBDModel()
    for params in ((0.55, 10.58, 0.61, 11.67), (0.8, 30.0, 0.5, 3.0), (2.0, 3.0, 0.1, 500.0)):
        params = np.array(params)
        value, grad = model._neg_ll_grad(params, x, t_x, T, w)
        assert value == pytest.approx(-ParetoNBDModel.log_likelihood_each(params, x, t_x, T).sum(), rel=1e-12)
        numeric = np.empty(4)
        for i in range(4):
            h = 1e-6 * params[i]
            up, down = params.copy(), params.copy()
            up[i] += h
            down[i] -= h
            numeric[i] = -(ParetoNBDModel.log_likelihood_each(up, x, t_x, T).sum()
                           - ParetoNBDModel.log_likelihood_each(down, x, t_x, T).sum()) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-3 * np.abs(numeric).max())


def test_holdout_prediction_and_churn_on_cdnow(cdnow, cdnow_sample):
    report = evaluate_holdout(cdnow, CAL, HOLD)
    # actual repeat transactions in weeks 40-78, counted here straight from the raw file
    with gzip.open(cdnow_sample, "rt") as fh:
        raw = pd.read_csv(fh, sep=r"\s+", header=None, names=["master", "sample", "date", "cds", "dollars"])
    raw["date"] = pd.to_datetime(raw["date"].astype(str))
    later = raw[(raw["date"] > CAL) & (raw["date"] <= HOLD)].drop_duplicates(["master", "date"])
    assert report["actual_repeat_transactions"] == len(later)
    bg = report["models"]["bgnbd"]
    assert bg["predicted_repeat_transactions"] == pytest.approx(len(later), rel=0.2)
    assert report["chosen_model"] == "bgnbd"  # higher log-likelihood (-9582.4 against -9595.0)
    by_x = pd.DataFrame(report["by_calibration_frequency"])
    assert by_x["customers"].sum() == 2357
    assert (np.diff(by_x["actual"]) > -0.5).all()  # more calibration purchases, more holdout purchases
    churn = report["churn"]["candidates"]
    # the independent figures of the issue, reproduced
    assert churn["1 - P(alive) (bgnbd)"]["auc"] == pytest.approx(0.32, abs=0.01)
    assert churn["P(no purchase) (bgnbd)"]["auc"] == pytest.approx(0.757, abs=0.003)
    assert churn["recency (days since last purchase)"]["auc"] == pytest.approx(0.771, abs=0.003)
    shipped = churn["churn_risk (shipped)"]
    assert shipped["auc"] >= 0.771
    assert shipped["brier"] <= churn["P(no purchase) (bgnbd)"]["brier"]
    assert report["churn"]["shipped"]["inner_end"] < CAL  # learned inside the calibration period
    tracking = pd.DataFrame(report["tracking"])
    assert tracking["actual"].is_monotonic_increasing
    assert tracking["actual"].iloc[-1] == 2457 + len(later)


# -- simulation: the fit recovers known parameters -----------------------------------------------

@pytest.mark.parametrize("seed", [1, 2])
def test_bgnbd_parameter_recovery(seed):
    true = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 3.0}
    rng = np.random.default_rng(seed)
    sim = simulate_bgnbd(20_000, **true, T=rng.uniform(20, 60, 20_000), spend=(6.0, 4.0, 15.0), random_state=seed)
    m = _fit(BetaGeoModel(), sim)
    for name, value in true.items():
        z = abs(m.params_[name] - value) / m.standard_errors_[name]
        assert z < 3, (name, m.params_[name], m.standard_errors_[name])
    g = GammaGammaModel().fit(sim["frequency"], sim["monetary_value"])
    for name, value in {"p": 6.0, "q": 4.0, "gamma": 15.0}.items():
        assert abs(g.params_[name] - value) / g.standard_errors_[name] < 3, name
    # on a sample (how millions of customers are fitted): still the true values, within its wider errors
    repeaters = int((sim["frequency"] > 0).sum())
    sampled = GammaGammaModel().fit(sim["frequency"], sim["monetary_value"], at_most=repeaters // 3)
    assert sampled.n_customers_ == repeaters // 3 < g.n_customers_ == repeaters
    for name, value in {"p": 6.0, "q": 4.0, "gamma": 15.0}.items():
        assert abs(sampled.params_[name] - value) / sampled.standard_errors_[name] < 3, name
        assert sampled.standard_errors_[name] > g.standard_errors_[name]
    assert sampled.population_mean_ == g.population_mean_  # from every repeat customer


def test_expected_purchases_match_simulation():
    """E[X(t)] of a new customer equals the simulated mean number of repeat purchases."""
    params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    sim = simulate_bgnbd(200_000, **params, T=39.0, random_state=5)
    m = BetaGeoModel()
    m.params_ = params
    expected = float(m.expected_purchases_new(39.0))
    se = sim["frequency"].std() / np.sqrt(len(sim))
    assert abs(sim["frequency"].mean() - expected) < 3 * se


def test_pareto_no_purchase_probability_matches_monte_carlo():
    m = ParetoNBDModel()
    m.params_ = {"r": 0.55, "alpha": 10.58, "s": 0.61, "beta": 11.67}
    x, t_x, T, t = np.array([0.0, 3.0]), np.array([0.0, 20.0]), np.array([30.0, 35.0]), 39.0
    got = m.prob_no_purchase(t, x, t_x, T)
    rng = np.random.default_rng(0)
    alive = m.p_alive(x, t_x, T)
    for i in range(2):
        lam = rng.gamma(0.55 + x[i], 1 / (10.58 + T[i]), 400_000)
        mu = rng.gamma(0.61, 1 / (11.67 + T[i]), 400_000)
        death = rng.exponential(1 / mu)
        first = rng.exponential(1 / lam)
        quiet = (first > np.minimum(death, t)).mean()
        assert got[i] == pytest.approx(1 - alive[i] + alive[i] * quiet, abs=0.003)


def test_models_refuse_to_predict_before_fit():
    for model in (BetaGeoModel(), ParetoNBDModel()):
        with pytest.raises(NotFittedError):
            model.p_alive([1], [1], [2])
    with pytest.raises(NotFittedError):
        GammaGammaModel().conditional_expected_value([1], [10])


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="value.time_unit") as caught:
        ValueConfig(time_unit="fortnight")
    assert caught.value.parameter == "value.time_unit"  # the CLI shows --time-unit for it
    with pytest.raises(ConfigError, match="value.discount_rate"):
        ValueConfig(discount_rate=1.5)
    with pytest.raises(CustomerLensError, match="no purchases"):
        fit_value(tiny_lines(), "2023-01-01")


# -- Online Retail ----------------------------------------------------------------------------------

@pytest.mark.realdata
def test_online_retail_fit_converges_and_p_alive_is_monotone(online_retail):
    import customerlens as cl

    lines = cl.ingest(online_retail).cleaned.transactions
    result = fit_value(lines)
    assert len(result.table) == 4324
    for rec in result.record["models"].values():
        assert rec["converged"]
    model = result.model
    for x in (1.0, 5.0, 20.0):
        t_x = np.linspace(0, 50, 51)
        p = model.p_alive(np.full(51, x), t_x, np.full(51, 50.0))
        assert (np.diff(p) >= -1e-12).all()  # the longer ago the last purchase, the lower P(alive)
    table = result.table
    assert table["p_alive"].between(0, 1).all() and table["churn_risk"].between(0, 1).all()
    assert (table["value_at_risk"] >= 0).all() and (table["clv_12m"] >= 0).all()


# -- the run and the CLI ----------------------------------------------------------------------------

def test_run_writes_value_outputs(tmp_path):
    import duckdb

    from customerlens.io import demo
    from customerlens.pipeline import RunConfig, run

    path, _ = demo.write(demo.generate(400, seed=3), tmp_path / "d.csv")
    result = run(path, tmp_path / "out", RunConfig.from_options(charts=False, top_n=0))
    value = pd.read_csv(tmp_path / "out" / "value.csv", dtype={"customer_id": str})
    assert list(value.columns) == ["customer_id", "frequency", "recency", "T", "p_alive", "expected_purchases_90d",
                                   "expected_avg_value", "clv_12m", "churn_risk", "value_at_risk"]
    assert len(value) == result.customers
    by_segment = pd.read_csv(tmp_path / "out" / "segment_value.csv")
    assert by_segment["customers"].sum() == len(value)
    assert by_segment["clv_12m"].sum() == pytest.approx(value["clv_12m"].sum(), rel=1e-6)
    with duckdb.connect(str(tmp_path / "out" / "customerlens.duckdb"), read_only=True) as con:
        record = json.loads(con.sql("SELECT record FROM run").fetchall()[0][0])
        assert con.sql("SELECT count(*) FROM customer_value").fetchall()[0][0] == len(value)
    assert record["value"]["model"] in ("bgnbd", "pareto_nbd")
    assert result.value.summary is None  # a run keeps the scores, not the models' inputs
    assert record["value"]["model_choice"].startswith("higher log-likelihood")
    assert set(record["value"]["models"]["bgnbd"]) >= {"r", "alpha", "a", "b", "log_likelihood", "standard_errors"}
    # the planted at-risk customers are the riskiest
    types = pd.read_csv(tmp_path / "d.types.csv", dtype={"customer_id": str})
    merged = value.merge(types, on="customer_id")
    risk = merged.groupby(merged.columns[-1])["churn_risk"].mean()
    assert risk["at_risk"] > risk["loyal"] and risk["at_risk"] > risk["high_value"]


def test_value_command_json(cdnow_sample, tmp_path):
    from tests.conftest import cli

    result = cli("value", cdnow_sample, "--calibration-end", CAL, "--holdout-end", HOLD, "--json",
                 "--out", tmp_path / "v")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["bgnbd"]["r"] == pytest.approx(0.243, rel=0.01)
    assert {"p", "q", "gamma"} <= set(payload["gamma_gamma"])
    assert payload["holdout"]["churn"]["candidates"]["churn_risk (shipped)"]["auc"] >= 0.771
    assert (tmp_path / "v" / "value.csv").is_file() and (tmp_path / "v" / "value.json").is_file()
    bad = cli("value", cdnow_sample, "--calibration-end", "1997-13-40")
    assert bad.returncode == 2 and "--calibration-end" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("value", cdnow_sample, "--calibration-end", CAL, "--holdout-end", "1997-01-01")
    assert bad.returncode == 2 and "must come after" in bad.stderr




def test_models_fit_on_a_seeded_sample_of_large_bases(cdnow):
    """Above `fit_sample` customers the models learn from a seeded sample; every customer is still scored,
    and the parameters stay close to the full fit (CDNOW: 1,500 of 2,357 customers).
    """
    full = fit_value(cdnow, CAL, ValueConfig(model="bgnbd"))
    part = fit_value(cdnow, CAL, ValueConfig(model="bgnbd", fit_sample=1500))
    again = fit_value(cdnow, CAL, ValueConfig(model="bgnbd", fit_sample=1500))
    assert full.record["fitted_on_customers"] == 2357 and part.record["fitted_on_customers"] == 1500
    assert len(part.table) == 2357
    assert part.models["bgnbd"].params_ == again.models["bgnbd"].params_  # seeded: a re-run is the same
    assert part.models["bgnbd"].params_ != full.models["bgnbd"].params_
    for name, value in full.models["bgnbd"].params_.items():
        se = full.models["bgnbd"].standard_errors_[name]
        assert abs(part.models["bgnbd"].params_[name] - value) < 4 * se * (2357 / 1500) ** 0.5


def test_fit_without_the_summary_scores_the_same(cdnow):
    from customerlens.errors import CustomerLensError
    from customerlens.models.value.service import tracking

    kept = fit_value(cdnow, CAL, ValueConfig(model="bgnbd"))
    slim = fit_value(cdnow, CAL, ValueConfig(model="bgnbd"), keep_summary=False)
    assert slim.summary is None and len(kept.summary) == 2357
    pd.testing.assert_frame_equal(slim.table, kept.table)
    assert len(tracking(cdnow, kept)) > 0
    with pytest.raises(CustomerLensError, match="keep_summary=True"):
        tracking(cdnow, slim)


def test_value_at_risk_is_stable_when_p_alive_is_near_zero():
    """Value if active is the customer's own pace, not CLV / P(alive): alike customers, alike figures."""
    from customerlens.models.value.service import value_if_active

    # two customers alike in every figure but the last bits of a vanishing P(alive)
    avg, x, T = np.array([25.0, 25.0]), np.array([6.0, 6.0]), np.array([40.0, 40.2])
    worth = value_if_active(avg, x, T, span=52.0, min_age=13.0)
    assert worth[0] == pytest.approx(25.0 * 7 / 40 * 52) and worth[1] == pytest.approx(worth[0], rel=0.01)
    # more orders, more spend: more worth winning back; a customer of three days is not a daily buyer
    assert value_if_active(np.array([25.0]), np.array([12.0]), np.array([40.0]), 52.0, 13.0)[0] > worth[0]
    assert value_if_active(np.array([50.0]), np.array([6.0]), np.array([40.0]), 52.0, 13.0)[0] > worth[0]
    assert value_if_active(np.array([25.0]), np.array([0.0]), np.array([0.4]), 52.0, 13.0)[0] == pytest.approx(
        25.0 / 13.0 * 52)
    assert value_if_active(np.array([-5.0]), np.array([1.0]), np.array([10.0]), 52.0, 13.0)[0] == 0.0


def test_value_at_risk_ranks_what_can_be_saved(cdnow):
    """Among CDNOW customers who are probably gone, value at risk follows their past value, not noise."""
    from scipy.stats import spearmanr

    table = fit_value(cdnow).table
    gone = table[table["p_alive"] < 0.05]
    assert len(gone) > 20
    past = gone["expected_avg_value"] * (gone["frequency"] + 1)
    assert spearmanr(past, gone["value_at_risk"]).statistic > 0.8
    assert np.isfinite(table["value_at_risk"]).all()
