"""Who stays, who leaves, what each customer is worth: fit, score, and check on a holdout.

:func:`fit_value` fits BG/NBD and Pareto/NBD on the calibration period, keeps
the one with the higher log-likelihood (both have four parameters), fits
Gamma-Gamma on repeat spend and the stacked churn model, and scores every
customer. :func:`evaluate_holdout` compares all of it with what happened next.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from customerlens.errors import ConfigError, CustomerLensError
from customerlens.models.value._fit import sample_rows
from customerlens.models.value.bgnbd import BetaGeoModel
from customerlens.models.value.churn import StackedChurn
from customerlens.models.value.config import (
    COUNTING_MODEL_NAMES,
    DAYS_PER_MONTH,
    MIN_CUSTOMERS,
    ValueConfig,
    ValueResult,
)
from customerlens.models.value.gamma_gamma import GammaGammaModel
from customerlens.models.value.pareto import ParetoNBDModel
from customerlens.models.value.summary import _days, daily_transactions, holdout_counts, rfm_summary

COUNTING_MODELS = dict(zip(COUNTING_MODEL_NAMES, (BetaGeoModel, ParetoNBDModel), strict=True))


def _model_record(model) -> dict:
    return {**{k: round(v, 6) for k, v in model.params_.items()},
            # None where the information matrix is singular (a parameter at its boundary)
            "standard_errors": {k: round(v, 6) if np.isfinite(v) else None
                                for k, v in model.standard_errors_.items()},
            "log_likelihood": round(model.log_likelihood_, 4), "customers": model.n_customers_,
            "converged": model.optimizer_["converged"]}


def fit_value(transactions: Any, calibration_end: Any = None, config: ValueConfig | None = None,
              keep_summary: bool = True) -> ValueResult:
    """Fit the models on purchases up to ``calibration_end`` (the last day included) and score customers.

    Without ``calibration_end`` the last purchase day is used. ``keep_summary=False`` drops the
    per-customer summary from the result once every customer is scored (:func:`tracking` needs it).
    """
    config = config or ValueConfig()
    unit = config.unit_days
    if calibration_end is None:
        from customerlens.features.customer import last_transaction

        calibration_end = last_transaction(transactions).date()
    end = _days(calibration_end).date()
    summary = rfm_summary(transactions, end, unit)
    if summary.empty:
        raise CustomerLensError(f"no purchases on or before {end}: nothing to fit")
    if len(summary) < MIN_CUSTOMERS:
        raise CustomerLensError(f"too few customers for the value models: {len(summary)} "
                                f"(at least {MIN_CUSTOMERS} needed)")
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    names = list(COUNTING_MODELS) if config.model == "auto" else [config.model]
    fit_rows = sample_rows(len(summary), config.fit_sample, config.random_state)
    models = {name: COUNTING_MODELS[name]().fit(x[fit_rows], t_x[fit_rows], T[fit_rows]) for name in names}
    # ties (both reduced to the same NBD when nobody seems to leave) go to BG/NBD, listed first
    best = max(m.log_likelihood_ for m in models.values())
    chosen = next(n for n in names if models[n].log_likelihood_ >= best - 0.01)
    model = models[chosen]

    spend = None
    spend_note = None
    try:
        spend = GammaGammaModel().fit(x, summary["monetary_value"].to_numpy(), config.fit_sample, config.random_state)
    except CustomerLensError as exc:
        spend_note = str(exc)

    span_days = (pd.Timestamp(end) - summary["first_purchase"].min()).days
    inner = config.churn_inner_days or max(1, min(config.horizon_days, span_days // 2))
    factory = COUNTING_MODELS[chosen]
    churn = StackedChurn(inner, config.random_state, config.fit_sample).fit(transactions, end, factory, unit)

    horizon = config.horizon_days / unit
    p_alive = model.p_alive(x, t_x, T)
    expected = model.conditional_expected_purchases(horizon, x, t_x, T)
    avg_value = (spend.conditional_expected_value(x, summary["monetary_value"].to_numpy())
                 if spend is not None else np.zeros(len(x)))
    clv = customer_lifetime_value(model, avg_value, x, t_x, T, config.clv_months, config.discount_rate, unit)
    risk = churn.predict(model, horizon, summary)
    worth = value_if_active(avg_value, x, T, config.clv_months * DAYS_PER_MONTH / unit, horizon)
    table = pd.DataFrame({
        "customer_id": summary["customer_id"],
        "frequency": summary["frequency"],
        "recency": np.round(t_x, 6),
        "T": np.round(T, 6),
        "p_alive": np.round(p_alive, 6),
        f"expected_purchases_{config.horizon_days}d": np.round(expected, 6),
        "expected_avg_value": np.round(avg_value, 6),
        f"clv_{config.clv_months}m": np.round(clv, 6),
        "churn_risk": np.round(risk, 6),
        "value_at_risk": np.round(risk * worth, 6),
    })
    record = {
        "calibration_end": end.isoformat(), "time_unit": config.time_unit, "model": chosen,
        "model_choice": "higher log-likelihood on the calibration period" if config.model == "auto"
        else "set by the user",
        "models": {name: _model_record(m) for name, m in models.items()},
        "gamma_gamma": ({**_model_record(spend), "frequency_spend_correlation":
                         round(spend.frequency_spend_correlation_, 4)} if spend is not None
                        else {"skipped": spend_note}),
        "churn": {"method": "stacked logistic regression" if churn.classifier_ is not None
                  else "counting model P(no purchase)", **churn.inner_},
        "settings": asdict(config),
        "fitted_on_customers": int(len(fit_rows)),
        "totals": {"customers": int(len(table)), f"clv_{config.clv_months}m": round(float(clv.sum()), 2),
                   "value_at_risk": round(float(table["value_at_risk"].sum()), 2),
                   f"expected_purchases_{config.horizon_days}d": round(float(expected.sum()), 2)},
    }
    if _dropout_vanished(model):
        record["note"] = ("the fitted dropout component is near zero: the calibration period shows "
                          "little evidence of customers leaving, so P(alive) stays near 1")
    return ValueResult(table=table, summary=summary if keep_summary else None, models=models,
                       model_name=chosen, spend=spend, churn=churn, calibration_end=end, config=config, record=record)


def _dropout_vanished(model) -> bool:
    p = model.params_
    if "a" in p:
        return p["a"] / (p["a"] + p["b"]) < 1e-4
    return p["s"] / p["beta"] < 1e-5


def value_if_active(avg_value: np.ndarray, x: np.ndarray, T: np.ndarray, span: float,
                    min_age: float) -> np.ndarray:
    """What a customer would spend over ``span`` (model time units) buying at their own past pace.

    Their orders so far (``x`` repeat purchases plus the first) over their age ``T``, floored at
    ``min_age`` so that a customer of a few days does not look like a daily buyer, times their expected
    order value. It is the "value if they stay" of value at risk (churn risk x this): stable when
    P(alive) is near 0, where CLV / P(alive) divides two vanishing numbers (0.002 and 2,280 for similar
    customers), and larger for the customers most worth winning back.
    """
    pace = (np.asarray(x, dtype=float) + 1.0) / np.maximum(np.asarray(T, dtype=float), max(min_age, 1e-9))
    return np.maximum(np.asarray(avg_value, dtype=float), 0.0) * pace * span


def customer_lifetime_value(model, avg_value, x, t_x, T, months: int, discount_rate: float,
                            unit_days: float) -> np.ndarray:
    """Discounted value of the next ``months``: sum over months of E[purchases in the month] x value / (1 + d)^i."""
    monthly = (1 + discount_rate) ** (1 / 12) - 1
    total = np.zeros(len(x))
    previous = np.zeros(len(x))
    for i in range(1, months + 1):
        cumulative = model.conditional_expected_purchases(i * DAYS_PER_MONTH / unit_days, x, t_x, T)
        total += (cumulative - previous) / (1 + monthly) ** i
        previous = cumulative
    return total * np.asarray(avg_value, dtype=float)


# -- holdout evaluation --------------------------------------------------------------------------

def tracking(transactions: Any, result: ValueResult, end: Any | None = None) -> pd.DataFrame:
    """Cumulative repeat transactions by week, actual and each model's expectation (the tracking plot)."""
    unit = result.config.unit_days
    summary = result.summary
    if summary is None:
        raise CustomerLensError("the tracking table needs the value models' summary: fit with keep_summary=True")
    daily = daily_transactions(transactions, end=end or result.calibration_end)
    import narwhals as nw

    from customerlens.core.frames import collect

    days = collect(nw.from_native(daily).select("customer_id", "day")).to_pandas()
    days["customer_id"] = days["customer_id"].astype(str)
    days["day"] = pd.to_datetime(days["day"])
    days = days[days["customer_id"].isin(set(summary["customer_id"]))]
    first = days.groupby("customer_id")["day"].transform("min")
    start = days["day"].min()
    stop = pd.Timestamp(_days(end or result.calibration_end)) + pd.Timedelta(days=1)
    edges = pd.date_range(start, stop + pd.Timedelta(days=6), freq="7D")
    repeat_days = days.loc[days["day"] > first, "day"]
    actual = np.searchsorted(np.sort(repeat_days.to_numpy()), edges[1:].to_numpy(), side="left")
    # customers who first bought on the same day share their expectation: one evaluation per day
    first_days, counts = np.unique(pd.to_datetime(summary["first_purchase"]).to_numpy(), return_counts=True)
    out = {"week_end": edges[1:].date, "actual": actual}
    for name, model in result.models.items():
        values = []
        for edge in edges[1:]:
            age = (edge.to_datetime64() - first_days) / np.timedelta64(1, "D") / unit
            values.append(float(np.dot(counts, model.expected_purchases_new(np.clip(age, 0, None)))))
        out[name] = np.round(values, 3)
    frame = pd.DataFrame(out)
    frame["period"] = np.where(pd.to_datetime(frame["week_end"]) <= pd.Timestamp(result.calibration_end)
                               + pd.Timedelta(days=1), "calibration", "holdout")
    return frame


def evaluate_holdout(transactions: Any, calibration_end: Any, holdout_end: Any,
                     config: ValueConfig | None = None, holdout_transactions: Any = None) -> dict:
    """Fit on purchases up to ``calibration_end``; compare with ``(calibration_end, holdout_end]``.

    Returns the parameters of every model, total predicted vs actual repeat
    transactions, per-customer errors, predicted vs actual by number of
    calibration transactions, the weekly tracking table, and AUC, Brier score
    and a reliability table of every churn candidate for "no purchase in the
    holdout". ``holdout_transactions``: the lines cleaned as of the holdout's end
    (default ``transactions``), so that returns made after the calibration
    period do not change it.
    """
    from sklearn.metrics import brier_score_loss, roc_auc_score

    base = config or ValueConfig()
    cal = _days(calibration_end).date()
    hold = _days(holdout_end).date()
    if hold <= cal:
        raise ConfigError(f"holdout_end ({hold}) must come after calibration_end ({cal})", parameter="holdout_end")
    length_days = (hold - cal).days
    # the churn horizon is the holdout: that is what the candidates are scored on
    config = ValueConfig(**{**asdict(base), "horizon_days": length_days})
    result = fit_value(transactions, cal, config)
    unit = config.unit_days
    t = length_days / unit
    summary = result.summary
    later = transactions if holdout_transactions is None else holdout_transactions
    actual = holdout_counts(later, cal, hold).set_index("customer_id")
    y_count = summary["customer_id"].map(actual["holdout_transactions"]).fillna(0).to_numpy(dtype=float)
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    out: dict = {"calibration_end": cal.isoformat(), "holdout_end": hold.isoformat(), "holdout_units": round(t, 4),
                 "time_unit": config.time_unit, "customers": int(len(summary)),
                 "actual_repeat_transactions": int(y_count.sum()), "models": {}}
    by_x = pd.DataFrame({"frequency": np.minimum(x, 7).astype(int), "actual": y_count})
    for name, model in result.models.items():
        predicted = model.conditional_expected_purchases(t, x, t_x, T)
        out["models"][name] = {
            **_model_record(model),
            "predicted_repeat_transactions": round(float(predicted.sum()), 2),
            "error_percent": round(100 * (predicted.sum() - y_count.sum()) / max(y_count.sum(), 1), 2),
            "mae_per_customer": round(float(np.mean(np.abs(predicted - y_count))), 4),
            "rmse_per_customer": round(float(np.sqrt(np.mean((predicted - y_count) ** 2))), 4),
        }
        by_x[name] = predicted
    out["chosen_model"] = result.model_name
    table = by_x.groupby("frequency").agg(customers=("actual", "size"), actual=("actual", "mean"),
                                          **{n: (n, "mean") for n in result.models}).reset_index()
    table["frequency"] = table["frequency"].map(lambda v: "7+" if v == 7 else str(v))
    out["by_calibration_frequency"] = json_records(table)
    if result.spend is not None:
        out["gamma_gamma"] = result.record["gamma_gamma"]

    no_purchase = (y_count == 0).astype(int)
    candidates = {}
    for name, model in result.models.items():
        candidates[f"1 - P(alive) ({name})"] = 1 - model.p_alive(x, t_x, T)
        candidates[f"P(no purchase) ({name})"] = model.prob_no_purchase(t, x, t_x, T)
    candidates["recency (days since last purchase)"] = (T - t_x) * unit
    candidates["churn_risk (shipped)"] = result.table["churn_risk"].to_numpy()
    churn = {}
    for label, score in candidates.items():
        row = {"auc": round(float(roc_auc_score(no_purchase, score)), 4)} if 0 < no_purchase.sum() < len(
            no_purchase) else {"auc": None}
        if "recency" not in label:
            row["brier"] = round(float(brier_score_loss(no_purchase, np.clip(score, 0, 1))), 4)
            row["reliability"] = reliability(no_purchase, score)
        churn[label] = row
    out["churn"] = {"no_purchase_rate": round(float(no_purchase.mean()), 4), "candidates": churn,
                    "shipped": result.record["churn"]}
    out["tracking"] = json_records(tracking(later, result, hold))
    out["_result"] = result
    return out


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean predicted and observed rate per probability decile bin (the reliability chart's points)."""
    p = np.clip(np.asarray(p, dtype=float), 0, 1)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    rows = []
    for b in range(bins):
        sel = idx == b
        if sel.any():
            rows.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "customers": int(sel.sum()),
                         "predicted": round(float(p[sel].mean()), 4), "observed": round(float(y[sel].mean()), 4)})
    return rows


def json_records(frame: pd.DataFrame) -> list[dict]:
    """``frame`` as a list of JSON-ready records (dates in ISO format)."""
    import json

    return json.loads(frame.to_json(orient="records", date_format="iso"))
