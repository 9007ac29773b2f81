"""Campaign effects without a randomised test: the sent customers against comparable unsent ones.

A CRM's send list names who was sent a campaign, chosen by marketers (usually the most active
customers), not by a coin. Comparing them with everyone else measures the choice as much as the
campaign. This module estimates the effect *on the sent customers* (the ATT) after adjusting for
what drives the choice, all measured as of the send date, never after:

* covariates: recency, frequency, monetary value and tenure (log scale) and the customer's
  segment as of the send date;
* the propensity to be sent, ``e(x)``, by logistic regression on them;
* the effect by *doubly robust* weighting: the unsent customers are weighted by the odds
  ``e / (1 - e)`` (so that, weighted, they look like the sent), and a linear regression of the
  outcome on the covariates among the unsent (``m0(x)``) is subtracted on both sides; the
  estimate is right when either the propensity model or the outcome model is (Robins et al.
  1994; for the ATT, e.g. Imbens & Wooldridge 2009). Its standard error is the sample variance
  of each side's residuals (the propensity and outcome models taken as known), checked by
  simulation (docs/campaigns.md: coverage and bias over 200 seeded simulations).

What it assumes, and what is checked:

* no unmeasured confounding: given the covariates, being sent is as good as random. Not
  testable; the *placebo* estimate (the same comparison, same weights, on the purchases of the
  window before the send, which the campaign cannot have changed) should be near 0: when the
  targeting depends only on the covariates, being sent says nothing more about those purchases
  once the covariates are adjusted for. A clear placebo effect is a warning that the sent differ
  in ways the covariates miss;
* overlap: every sent customer has unsent ones with a similar propensity. Sent customers whose
  propensity is above every unsent customer's are *reported* (``unmatched``): the estimate still
  counts them (leaving them out biased it: -6 % on the simulations, against -2 % with them), but
  it rests on the outcome model's extrapolation for them;
* balance: the standardised mean difference of each covariate between sent and unsent, before
  and after weighting; above 0.1 is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: the covariates of the propensity and outcome models, from the customer features as of the send
COVARIATES = ("recency_days", "frequency", "monetary", "tenure_days")
#: a standardised mean difference above this is flagged (a common rule of thumb)
SMD_FLAG = 0.1


@dataclass
class Effect:
    """One adjusted estimate: the sent customers' mean outcome against what it would have been unsent."""

    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float  # the unsent, weighted to look like the sent, adjusted by the outcome model
    naive_lift: float  # plain difference of means, sent minus every unsent customer
    lift: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    unmatched: int  # sent customers whose propensity is above every unsent customer's (reported, kept)


def design_matrix(covariates: pd.DataFrame, segment: pd.Series | None = None) -> np.ndarray:
    """The models' inputs: log1p of each covariate (clipped at 0), standardised, and segment dummies."""
    columns = _columns(covariates, segment)
    X = np.column_stack([columns[name] for name in COVARIATES])
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    dummies = [values for name, values in columns.items() if name not in COVARIATES][1:]  # all but the first
    return np.column_stack([X, *dummies]) if dummies else X


def _columns(covariates: pd.DataFrame, segment: pd.Series | None) -> dict[str, np.ndarray]:
    """Each covariate on a log scale, then one 0/1 column per segment (``segment = NAME``), in order."""
    columns = {name: np.log1p(np.clip(covariates[name].to_numpy(dtype=float), 0, None)) for name in COVARIATES}
    if segment is not None:
        labels = pd.Series(segment).astype("string").fillna("(none)").to_numpy()
        for level in np.unique(labels):
            columns[f"segment = {level}"] = (labels == level).astype(float)
    return columns


def propensity(X: np.ndarray, sent: np.ndarray) -> np.ndarray:
    """P(sent | x) by logistic regression (lightly regularised, so separable data stay finite)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=100.0, max_iter=1000)
    model.fit(X, sent.astype(int))
    return model.predict_proba(X)[:, 1]


def unmatched(e: np.ndarray, sent: np.ndarray) -> np.ndarray:
    """The sent customers without comparable unsent ones: a propensity above every unsent customer's."""
    return sent & (e > e[~sent].max(initial=-np.inf))


def att(y: np.ndarray, sent: np.ndarray, e: np.ndarray, X: np.ndarray, confidence: float = 0.95,
        keep: np.ndarray | None = None) -> Effect:
    """Doubly robust effect on the sent of ``sent`` on ``y`` (see the module's docstring).

    ``keep`` (default: everyone) says which customers take part, e.g. one segment's.
    """
    y = np.asarray(y, dtype=float)
    sent = np.asarray(sent, dtype=bool)
    keep = np.ones(len(y), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    t, c = sent & keep, ~sent & keep
    n_t, n_c = int(t.sum()), int(c.sum())
    naive = float(y[t].mean() - y[c].mean()) if n_t and n_c else float("nan")
    alone = int((unmatched(e, sent) & keep).sum())
    if n_t < 2 or n_c < 2:
        nan = float("nan")
        return Effect(n_t, n_c, float(y[t].mean()) if n_t else nan, nan, naive, nan, nan, nan, nan, nan, alone)
    # outcome model among the unsent: least squares on [1, X]
    design = np.column_stack([np.ones(len(y)), X])
    coef, *_ = np.linalg.lstsq(design[c], y[c], rcond=None)
    residual = y - design @ coef
    odds = _odds(e)
    w = odds[c] / odds[c].sum()
    treated_part = residual[t].mean()
    control_part = float(w @ residual[c])
    lift = float(treated_part - control_part)
    var = residual[t].var(ddof=1) / n_t + float(w ** 2 @ (residual[c] - control_part) ** 2)
    se = float(np.sqrt(var))
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = float(2 * stats.norm.sf(abs(lift) / se)) if se > 0 else float("nan")
    mean_t = float(y[t].mean())
    return Effect(n_t, n_c, mean_t, mean_t - lift, naive, lift, se, lift - z * se, lift + z * se, p, alone)


def balance(covariates: pd.DataFrame, sent: np.ndarray, e: np.ndarray,
            segment: pd.Series | None = None) -> pd.DataFrame:
    """Standardised mean differences of each covariate (log scale) and segment share, before and after weighting.

    ``smd = (mean sent - mean unsent) / sqrt((var sent + var unsent) / 2)``, the unsent weighted by the
    odds of being sent after adjustment; ``flagged`` when the adjusted one is above :data:`SMD_FLAG`.
    """
    sent = np.asarray(sent, dtype=bool)
    odds = _odds(e)[~sent]
    rows = [{"covariate": name, "smd_before": _smd(x[sent], x[~sent]), "smd_after": _smd(x[sent], x[~sent], odds)}
            for name, x in _columns(covariates, segment).items()]
    out = pd.DataFrame(rows)
    out["flagged"] = out["smd_after"].abs() > SMD_FLAG
    return out


def _odds(e: np.ndarray) -> np.ndarray:
    """The odds of being sent, ``e / (1 - e)``: the weight of an unsent customer for the effect on the sent."""
    return e / np.clip(1.0 - e, 1e-12, None)


def _smd(a: np.ndarray, b: np.ndarray, weights: np.ndarray | None = None) -> float:
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    w = np.ones(len(b)) if weights is None else weights
    mean_b = float(np.average(b, weights=w))
    var_b = float(np.average((b - mean_b) ** 2, weights=w))
    pooled = np.sqrt((a.var(ddof=1) + var_b) / 2)
    return float((a.mean() - mean_b) / pooled) if pooled > 0 else 0.0


# --------------------------------------------------------------------------- send lists

#: how a send list's columns are recognised (lower case, first match wins) when not named
SEND_COLUMNS = {
    "customer": ("customer_id", "customer", "household_id", "household_key", "client_id", "member_id",
                 "account_id", "user_id", "customer_no", "customer_number"),
    "campaign": ("campaign_id", "campaign", "campaign_name", "campaign_key", "campaign_code"),
    "send_date": ("send_date", "sent_date", "sent_at", "date_sent", "start_date", "start_day", "date"),
}
#: the outcomes measured in each campaign's window
OUTCOMES = ("purchased", "orders", "spend")


class OrderHistory:
    """Each order's customer, day and amount as numpy arrays: covariates and outcomes at any date by counting."""

    def __init__(self, lines: pd.DataFrame):
        orders = (lines.assign(day=pd.to_datetime(lines["order_date"]).dt.normalize())
                  .groupby(["customer_id", "order_id"], sort=False)
                  .agg(day=("day", "min"), amount=("amount", "sum")).reset_index())
        keys = customer_key(orders["customer_id"])
        self.customers = np.sort(pd.unique(keys))
        self.code = pd.Index(self.customers).get_indexer(keys)
        self.day = (orders["day"].to_numpy("datetime64[D]").astype(np.int64)).astype(float)
        self.amount = orders["amount"].to_numpy(dtype=float)
        self.first_day = float(self.day.min())
        self.last_day = float(self.day.max())

    def covariates(self, day: float) -> pd.DataFrame:
        """Recency, frequency, monetary and tenure of the customers with an order before ``day``, by customer code."""
        n = len(self.customers)
        before = self.day < day
        code, when = self.code[before], self.day[before]
        frequency = np.bincount(code, minlength=n)
        monetary = np.bincount(code, weights=self.amount[before], minlength=n)
        last = np.full(n, -np.inf)
        first = np.full(n, np.inf)
        np.maximum.at(last, code, when)
        np.minimum.at(first, code, when)
        active = frequency > 0
        return pd.DataFrame({"recency_days": day - last[active], "frequency": frequency[active],
                             "monetary": monetary[active], "tenure_days": day - first[active]},
                            index=pd.Index(np.flatnonzero(active), name="code"))

    def outcomes(self, start: float, end: float) -> pd.DataFrame:
        """Orders, spend and whether they bought, per customer code, over ``[start, end)``."""
        n = len(self.customers)
        inside = (self.day >= start) & (self.day < end)
        orders = np.bincount(self.code[inside], minlength=n)
        spend = np.bincount(self.code[inside], weights=self.amount[inside], minlength=n)
        return pd.DataFrame({"purchased": (orders > 0).astype(float), "orders": orders.astype(float),
                             "spend": np.round(spend, 6)})


def customer_key(values: pd.Series) -> np.ndarray:
    """Customer ids as comparable text: 17850.0, 17850 and 0017850 are one customer (files disagree on types)."""
    from customerlens.models.campaigns import id_key

    text = id_key(values)  # 17850.0 and 17850 as one key, as the randomised path matches them
    digits = text.str.fullmatch(r"\d+").fillna(False)
    return text.where(~digits, text.str.lstrip("0").replace("", "0")).astype(object).to_numpy()


def as_date(day: float) -> str:
    """A day number (days since 1970-01-01) as YYYY-MM-DD."""
    return str(np.datetime64(int(day), "D"))


@dataclass
class SendsResult:
    """Rows of every campaign x segment x outcome, the balance table, and the campaigns refused with why."""

    rows: list[dict]
    balance: pd.DataFrame
    refused: list[dict]


def analyze_sends(sends: pd.DataFrame, history: OrderHistory, *, window_days: int = 14, segmenter=None,
                  confidence: float = 0.95, min_n: int = 100, min_responders: int = 10,
                  placebo: bool = True) -> SendsResult:
    """Adjusted effects of each campaign of a send list (columns ``customer``, ``campaign``, ``send_date``).

    For each campaign: the comparison group is every customer with an order before its send date
    who was not sent it; covariates and segments are as of the send date; outcomes are counted
    over the ``window_days`` from it (cut at the data's end, and flagged). A campaign sent before
    the transactions begin or after they end is refused, with the reason.
    """
    rows, balances, refused = [], [], []
    index = pd.Index(history.customers)
    for campaign, part in sends.groupby("campaign", sort=True):
        start = float(part["send_date"].min().to_datetime64().astype("datetime64[D]").astype(np.int64))
        name = str(campaign)
        if start <= history.first_day:
            refused.append({"campaign": name, "reason": f"sent on {as_date(start)}, before the transactions' "
                            f"first order ({as_date(history.first_day)}): no history to compare the customers on"})
            continue
        if start > history.last_day:
            refused.append({"campaign": name, "reason": f"sent on {as_date(start)}, after the transactions' last "
                            f"order ({as_date(history.last_day)}): nothing to measure"})
            continue
        end = min(start + window_days, history.last_day + 1)
        covariates = history.covariates(start)
        codes = index.get_indexer(pd.unique(customer_key(pd.Series(part["customer"].to_numpy()))))
        sent = np.isin(covariates.index.to_numpy(), codes[codes >= 0])
        no_history = int(len(codes) - sent.sum())
        if sent.sum() < 2 or (~sent).sum() < 2:
            refused.append({"campaign": name, "reason": f"{int(sent.sum())} sent and {int((~sent).sum())} unsent "
                            "customers with orders before the send: too few to compare"})
            continue
        segment = _segments(segmenter, covariates)
        X = design_matrix(covariates, segment)
        e = propensity(X, sent)
        outcomes = history.outcomes(start, end).iloc[covariates.index.to_numpy()].reset_index(drop=True)
        fences = _placebo(history, covariates, sent, e, X, start, end - start, confidence) if placebo else {}
        table = balance(covariates, sent, e, segment=segment)
        balances.append(table.assign(campaign=name))
        common = {"campaign": name, "arm": "sent", "control": "comparable unsent", "design": "observational",
                  "send_date": as_date(start), "window_days": int(end - start),
                  "window_cut": bool(end - start < window_days), "sent_without_history": no_history,
                  "max_smd_before": float(table["smd_before"].abs().max()),
                  "max_smd_after": float(table["smd_after"].abs().max())}
        groups = [("all", "all", np.ones(len(sent), dtype=bool))]
        if segment is not None:
            groups += [("segment_name", value, (segment == value).to_numpy()) for value in sorted(segment.unique())]
        for outcome in OUTCOMES:
            y = outcomes[outcome].to_numpy()
            for by, value, keep in groups:
                effect = att(y, sent, e, X, confidence=confidence, keep=keep)
                row = {**common, "segment_by": by, "segment_value": value, "outcome": outcome,
                       "outcome_type": "binary" if outcome == "purchased" else "continuous",
                       **_effect_columns(effect, y, sent & keep, ~sent & keep, outcome, min_n, min_responders)}
                if by == "all":
                    row.update(fences.get(outcome, {}))
                rows.append(row)
    columns = ["campaign", "covariate", "smd_before", "smd_after", "flagged"]
    balance_table = pd.concat(balances, ignore_index=True)[columns] if balances else pd.DataFrame(columns=columns)
    return SendsResult(rows=rows, balance=balance_table, refused=refused)


def _segments(segmenter, covariates: pd.DataFrame) -> pd.Series | None:
    """Each customer's segment as of the covariates' date, by the fitted segmenter's nearest centre."""
    if segmenter is None:
        return None
    ids = segmenter.predict(covariates.reset_index(drop=True))
    return pd.Series([segmenter.segment_names_[i] for i in ids], dtype="string")


def _placebo(history: OrderHistory, covariates: pd.DataFrame, sent: np.ndarray, e: np.ndarray, X: np.ndarray,
             start: float, days: float, confidence: float) -> dict:
    """The same comparison (same customers, weights and covariates) on the ``days`` before the send.

    The campaign cannot have changed what was bought before it was sent, so the estimate should be
    near 0. If the targeting depended only on the covariates, being sent says nothing more about
    those earlier purchases once they are adjusted for; a clear placebo effect means the sent
    customers differ in ways the covariates miss (e.g. they were picked on a trait the data do not show).
    """
    earlier = history.outcomes(start - days, start).iloc[covariates.index.to_numpy()]
    out = {}
    for outcome in OUTCOMES:
        effect = att(earlier[outcome].to_numpy(), sent, e, X, confidence=confidence)
        out[outcome] = {"placebo_lift": effect.lift, "placebo_ci_low": effect.ci_low,
                        "placebo_ci_high": effect.ci_high, "placebo_p_value": effect.p_value}
    return out


def _effect_columns(effect: Effect, y: np.ndarray, t: np.ndarray, c: np.ndarray, outcome: str, min_n: int,
                    min_responders: int) -> dict:
    from customerlens.models.campaigns import too_small_reasons

    binary = outcome == "purchased"
    resp_t, resp_c = int((y[t] > 0).sum()), int((y[c] > 0).sum())
    why = too_small_reasons([effect.n_treatment], [effect.n_control], [resp_t], [resp_c], binary, min_n,
                            min_responders)[0]
    reasons = [why] if why else []
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = effect.lift / effect.mean_control if effect.mean_control else float("nan")
        rel_low = effect.ci_low / effect.mean_control if effect.mean_control else float("nan")
        rel_high = effect.ci_high / effect.mean_control if effect.mean_control else float("nan")
    return {"n_treatment": effect.n_treatment, "n_control": effect.n_control,
            "mean_treatment": effect.mean_treatment, "mean_control": effect.mean_control,
            "responders_treatment": resp_t, "responders_control": resp_c,
            "lift": effect.lift, "lift_se": effect.se, "lift_ci_low": effect.ci_low, "lift_ci_high": effect.ci_high,
            "naive_lift": effect.naive_lift, "relative_lift": relative, "relative_lift_ci_low": rel_low,
            "relative_lift_ci_high": rel_high, "p_value": effect.p_value, "unmatched": effect.unmatched,
            "too_small": bool(reasons), "too_small_reason": "; ".join(reasons)}


def sends_summary(lift: pd.DataFrame, refused: list[dict], *, currency: str = "", alpha: float = 0.05) -> list[str]:
    """Plain sentences about the observational rows: "associated with", never "caused"; too-small rows are no headline."""
    sentences = []
    level = f"{lift.attrs.get('confidence', 0.95):.0%}"
    overall = lift[(lift["segment_by"] == "all") & (lift["design"] == "observational")]
    for row in overall.itertuples(index=False):
        points = row.outcome_type == "binary"
        money = currency if row.outcome == "spend" else ""

        def amount(value, sign=True, points=points, money=money):
            if not np.isfinite(value):
                return "n/a"
            text = f"{abs(value) * 100:,.1f} points" if points else f"{money}{abs(value):,.2f}"
            return ("-" if value < 0 else "+" if sign else "") + text

        what = "the share who bought" if points else ("orders per customer" if row.outcome == "orders"
                                                       else "spend per customer")
        window = f"the {row.window_days} days after the send ({row.send_date})"
        cut = (f"; the window is cut to {row.window_days} days by the end of the data"
               if row.window_cut and row.outcome == OUTCOMES[0] else "")
        if row.too_small:
            sentences.append(f"{row.campaign}: too small to judge {what} ({row.n_treatment:,} sent, "
                             f"{row.n_control:,} unsent with history: {row.too_small_reason}){cut}.")
            continue
        clear = row.p_value < alpha and not (row.lift_ci_low <= 0 <= row.lift_ci_high)
        interval = f"{level} CI {amount(row.lift_ci_low)} to {amount(row.lift_ci_high)}"
        if clear:
            text = (f"{row.campaign}: being sent is associated with {amount(row.lift)} in {what} over {window}, "
                    f"against comparable customers who were not sent it ({interval})")
        else:
            text = (f"{row.campaign}: no clear difference in {what} over {window} between the sent and comparable "
                    f"unsent customers ({amount(row.lift)}, {interval})")
        text += (f". Not a randomised test: the {row.n_treatment:,} sent customers were chosen, so they are compared "
                 f"with unsent ones weighted to match their recency, frequency, spend, tenure and segment as of the "
                 f"send; the plain difference would have said {amount(row.naive_lift)}.")
        sentences.append(text)
        notes = []
        if row.window_cut:
            notes.append(f"the window is cut to {row.window_days} days by the end of the data")
        if row.unmatched:
            notes.append(f"{row.unmatched:,} sent customers have no comparable unsent ones (the estimate leans "
                         "on the outcome model for them)")
        if row.max_smd_after > SMD_FLAG:
            notes.append(f"after weighting a covariate still differs by {row.max_smd_after:.2f} standard "
                         f"deviations (above {SMD_FLAG}): see campaign_balance.csv")
        low, high = getattr(row, "placebo_ci_low", np.nan), getattr(row, "placebo_ci_high", np.nan)
        if np.isfinite(low) and not (low <= 0 <= high):
            notes.append(f"warning: in the {row.window_days} days before the send the same comparison already "
                         f"shows {amount(row.placebo_lift)} (placebo, {level} CI {amount(low)} to {amount(high)}), "
                         "so the sent differ in ways the adjustment misses: read the estimate with care")
        if notes and row.outcome == OUTCOMES[0]:
            sentences.append(f"{row.campaign}: " + "; ".join(notes) + ".")
        elif notes and any(n.startswith("warning") for n in notes):
            sentences.append(f"{row.campaign} ({row.outcome}): " + notes[-1] + ".")
    for item in refused:
        sentences.append(f"{item['campaign']}: not measured: {item['reason']}.")
    return sentences
