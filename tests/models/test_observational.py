"""Campaign effects from a send list, without a randomised test (issue 21), checked against known truth.

Two simulators: one per customer (fast: 200 seeded simulations for coverage and bias), one of
whole transaction files (the path `customerlens campaigns SENDS --transactions TX` takes).
"""

import numpy as np
import pandas as pd
import pytest

from customerlens.models import observational as obs


def simulate(seed: int, n: int = 2000, effect: float = 0.3, window: int = 30):
    """Customers with heterogeneous purchase rates, sent with a probability that rises with their activity.

    Each customer orders at ``lam`` orders per 30 days, spends ``aov`` an order. Before the send:
    tenure, orders (frequency), days since the last order (recency) and spend (monetary). The send
    depends on these only (the marketers' rule); the campaign multiplies the sent customers' order
    rate by ``1 + effect`` in the window. The truth, the effect on the sent, is known exactly.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(1.5, 1 / 1.5, n)
    aov = rng.gamma(2.0, 25.0, n)
    tenure = rng.uniform(60, 730, n)
    frequency = 1 + rng.poisson(lam * tenure / 30)
    recency = np.minimum(rng.exponential(30 / lam), tenure)
    monetary = frequency * aov * rng.gamma(20, 1 / 20, n)
    covariates = pd.DataFrame({"recency_days": recency, "frequency": frequency, "monetary": monetary,
                               "tenure_days": tenure})
    score = (-2.0 + 0.9 * np.log1p(frequency) - 0.6 * np.log1p(recency) + 0.3 * np.log1p(monetary)
             - 0.2 * np.log1p(tenure))
    sent = rng.uniform(size=n) < 1 / (1 + np.exp(-score))
    rate = lam * window / 30
    orders = rng.poisson(rate * (1 + effect * sent))
    spend = np.where(orders > 0, rng.gamma(np.maximum(20 * orders, 1), aov / 20), 0.0)
    truth = {"orders": float((rate * effect)[sent].mean()), "spend": float((rate * effect * aov)[sent].mean())}
    return covariates, sent, {"orders": orders, "spend": spend}, truth


def estimates(effect: float, simulations: int = 200) -> dict:
    from threadpoolctl import threadpool_limits

    out = {"orders": [], "spend": []}
    with threadpool_limits(1):  # small matrices: threads only fight the other test worker
        return _estimates(effect, simulations, out)


def _estimates(effect: float, simulations: int, out: dict) -> dict:
    for seed in range(simulations):
        covariates, sent, outcomes, truth = simulate(seed, effect=effect)
        X = obs.design_matrix(covariates)
        e = obs.propensity(X, sent)
        for outcome, y in outcomes.items():
            r = obs.att(y, sent, e, X)
            out[outcome].append((r.lift, r.ci_low, r.ci_high, r.naive_lift, truth[outcome]))
    return {outcome: np.array(rows) for outcome, rows in out.items()}


@pytest.fixture(scope="module")
def with_effect():
    return estimates(0.3)


@pytest.mark.parametrize("outcome", ["orders", "spend"])
def test_adjusted_interval_covers_the_truth_and_the_naive_one_is_biased(with_effect, outcome):
    """Over 200 seeded simulations: 95 % intervals cover the true effect at least 90 % of the time, the mean
    error is under 10 % of it, and the plain difference is several times the truth (docs/campaigns.md).
    """
    rows = with_effect[outcome]
    lift, low, high, naive, truth = rows.T
    coverage = np.mean((low <= truth) & (truth <= high))
    assert coverage >= 0.90, coverage
    assert abs(lift.mean() - truth.mean()) < 0.10 * truth.mean(), (lift.mean(), truth.mean())
    assert naive.mean() > 2 * truth.mean(), (naive.mean(), truth.mean())


def test_no_effect_gives_intervals_around_zero():
    rows = estimates(0.0)
    for outcome, values in rows.items():
        _, low, high, naive, _ = values.T
        assert np.mean((low <= 0) & (0 <= high)) >= 0.90, outcome
        assert naive.mean() > 0  # selection alone makes the plain difference positive


def test_balance_after_weighting_and_overlap_reported():
    covariates, sent, _, _ = simulate(3)
    X = obs.design_matrix(covariates)
    e = obs.propensity(X, sent)
    table = obs.balance(covariates, sent, e)
    assert (table["smd_before"].abs() > obs.SMD_FLAG).any()  # the sent were chosen: unbalanced before
    assert (table["smd_after"].abs() < obs.SMD_FLAG).all() and not table["flagged"].any()
    alone = obs.unmatched(e, sent)
    assert alone.sum() == obs.att(np.zeros(len(sent)), sent, e, X).unmatched
    assert (e[alone] > e[~sent].max()).all()


def test_customer_keys_match_across_file_types():
    keys = obs.customer_key(pd.Series(["00017850", " 17850", "A-1", "0"]))
    assert list(keys) == ["17850", "17850", "A-1", "0"]
    assert obs.customer_key(pd.Series([17850.0, 42.0]))[0] == "17850"
