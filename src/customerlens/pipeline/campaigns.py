"""``customerlens campaigns`` as one call: read the campaign table, derive outcomes, measure lift, summarise."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from customerlens.core.db import to_pandas
from customerlens.core.frames import as_pandas
from customerlens.errors import ConfigError
from customerlens.models.campaigns import ALL, campaign_lift, campaign_summary, lift_heterogeneity
from customerlens.pipeline.config import RunConfig


@dataclass
class CampaignAnalysis:
    """The lift table of every campaign, arm, segment and outcome, and what it says in sentences."""

    lift: pd.DataFrame
    sentences: list[str]

    @property
    def overall(self) -> pd.DataFrame:
        """The whole-campaign rows (``segment_by == "all"``)."""
        return self.lift[self.lift["segment_by"] == ALL]

    def payload(self) -> dict:
        """``campaign_summary.json``: settings, sentences, the overall rows and the heterogeneity tests."""
        return {
            "settings": dict(self.lift.attrs),
            "summary": self.sentences,
            "overall": json.loads(self.overall.to_json(orient="records")),
            "heterogeneity": json.loads(lift_heterogeneity(self.lift).to_json(orient="records")),
        }


def analyze_campaigns(
    data: Any,
    *,
    outcomes: list[str] | None = None,
    transactions: Any = None,
    send_date: str | None = None,
    send_date_col: str | None = None,
    window_days: int = 14,
    customer_col: str | None = None,
    segments: Any = None,
    currency: str = "",
    config: RunConfig | None = None,
    **lift_options: Any,
) -> CampaignAnalysis:
    """Lift of each arm over control, overall and by segment, and the plain-language summary.

    Parameters
    ----------
    data
        The campaign table (file or frame), one row per customer and campaign.
    outcomes
        Numeric outcome columns; with ``transactions`` the default is purchased, orders, spend.
    transactions
        Transactions (file or frame) to derive the outcomes from: each customer's
        purchases in the ``window_days`` after the send (``send_date`` or ``send_date_col``).
    customer_col
        The campaign table's customer column (needed with ``transactions``).
    segments
        A table of ``customer_id, segment_name`` joined by ``customer_col``.
    currency
        Currency sign in the sentences.
    config
        How the transactions are loaded, mapped and cleaned (as for ``run``).
    **lift_options
        Further keywords of :func:`customerlens.models.campaigns.campaign_lift`.
    """
    from customerlens.models.campaigns import DERIVED_OUTCOMES, outcomes_from_transactions

    table = data
    if transactions is not None:
        from customerlens.pipeline.ingestion import ingest

        if customer_col is None:
            raise ConfigError("transactions needs customer_col: the column that matches the transactions' "
                              "customers", parameter="customer_col")
        lines = ingest(transactions, config or RunConfig())
        table = outcomes_from_transactions(data, lines.cleaned.transactions, customer_col=customer_col,
                                           send_date=send_date, send_date_col=send_date_col,
                                           window_days=window_days)
        outcomes = outcomes or list(DERIVED_OUTCOMES)
    elif send_date or send_date_col:
        raise ConfigError("send_date and send_date_col need transactions", parameter="send_date")
    if not outcomes:
        raise ConfigError("outcomes is required (or transactions to derive them)", parameter="outcomes")
    lift = campaign_lift(table, outcomes=outcomes, customer_col=customer_col, segments=segments, **lift_options)
    money = [lift.attrs["revenue_outcome"]] if lift.attrs.get("revenue_outcome") else []
    return CampaignAnalysis(lift=lift, sentences=campaign_summary(lift, currency=currency, money_outcomes=money))


@dataclass
class SendsAnalysis(CampaignAnalysis):
    """An observational analysis of a send list: the lift table, its balance table and the refused campaigns."""

    balance: pd.DataFrame | None = None
    refused: list[dict] | None = None

    def payload(self) -> dict:
        """``campaign_summary.json``: settings, sentences, the overall rows, balance and refused campaigns."""
        return {
            "settings": dict(self.lift.attrs),
            "summary": self.sentences,
            "overall": json.loads(self.overall.to_json(orient="records")),
            "balance": json.loads(self.balance.to_json(orient="records")) if self.balance is not None else [],
            "refused": self.refused or [],
        }


def analyze_sends(
    sends: Any,
    transactions: Any,
    *,
    config: RunConfig | None = None,
    window_days: int = 14,
    customer_col: str | None = None,
    campaign_col: str | None = None,
    send_date_col: str | None = None,
    segment: bool = True,
    currency: str = "",
    confidence: float = 0.95,
    min_n: int = 100,
    min_responders: int = 10,
    sheet: str | int | None = None,
    encoding: str = "utf-8",
) -> SendsAnalysis:
    """Observational effects of the campaigns of a send list: who was sent which campaign, and when.

    Parameters
    ----------
    sends
        The send list (file or frame), one row per sent customer and campaign: the customer,
        the campaign, the send (or start) date; an end date and a campaign type may be there too.
        Columns are found by their usual names (:data:`~customerlens.models.observational.SEND_COLUMNS`)
        unless named.
    transactions
        The transactions (file or frame), loaded, mapped and cleaned as ``run`` does (``config``).
    window_days
        Days after the send that count (cut, and flagged, where the data ends first).
    segment
        Break the results down by customerlens segments as of each send date.
    """
    from customerlens.io.campaign_table import read_campaign_table
    from customerlens.pipeline.ingestion import ingest

    _check_window(window_days)  # before the transactions are read
    table, source = read_campaign_table(sends, sheet=sheet, encoding=encoding)
    frame = send_frame(table, source, {"customer": customer_col, "campaign": campaign_col,
                                       "send_date": send_date_col})
    ingested = ingest(transactions, config or RunConfig())
    try:
        lines = to_pandas(ingested.cleaned.transactions)
        segmenter = _segmenter(ingested, config or RunConfig()) if segment else None
    finally:
        ingested.con.close()
    return sends_on_lines(frame, lines, segmenter, window_days=window_days, currency=currency,
                          confidence=confidence, min_n=min_n, min_responders=min_responders)


def sends_on_lines(frame: pd.DataFrame, lines: pd.DataFrame, segmenter=None, *, window_days: int = 14,
                   currency: str = "", confidence: float = 0.95, min_n: int = 100,
                   min_responders: int = 10) -> SendsAnalysis:
    """:func:`analyze_sends` on a send frame (:func:`send_frame`) and clean transaction lines already in hand."""
    from customerlens.models import observational as obs
    from customerlens.models.campaigns import COLUMNS, benjamini_hochberg

    _check_window(window_days)
    history = obs.OrderHistory(lines[["customer_id", "order_id", "order_date", "amount"]])
    result = obs.analyze_sends(frame, history, window_days=window_days, segmenter=segmenter,
                               confidence=confidence, min_n=min_n, min_responders=min_responders)
    lift = pd.DataFrame(result.rows).reindex(columns=[*COLUMNS, *SEND_EXTRA_COLUMNS])
    if not lift.empty:
        lift["p_adjusted"] = lift.groupby(["campaign", "arm", "outcome", "segment_by"], sort=False)[
            "p_value"].transform(lambda p: benjamini_hochberg(p.to_numpy()))
        lift["incremental_value"] = lift["lift"] * lift["n_treatment"]
        lift["incremental_value_ci_low"] = lift["lift_ci_low"] * lift["n_treatment"]
        lift["incremental_value_ci_high"] = lift["lift_ci_high"] * lift["n_treatment"]
    lift.attrs.update({"design": "observational", "confidence": confidence, "window_days": window_days,
                       "min_n": min_n, "min_responders": min_responders, "adjustment": ADJUSTMENT})
    sentences = obs.sends_summary(lift, result.refused, currency=currency)
    return SendsAnalysis(lift=lift, sentences=sentences, balance=result.balance, refused=result.refused)


def _check_window(window_days: int) -> None:
    if window_days < 1:
        raise ConfigError(f"--window-days must be at least 1, got {window_days}", parameter="window_days")


#: what a send list's rows add to campaign_lift.csv's columns
SEND_EXTRA_COLUMNS = ("send_date", "window_days", "window_cut", "sent_without_history",
                      "unmatched", "max_smd_before", "max_smd_after", "placebo_lift", "placebo_ci_low",
                      "placebo_ci_high", "placebo_p_value")


#: how the observational estimates are adjusted, in the summary JSON's settings
ADJUSTMENT = ("doubly robust (odds-weighted unsent customers + outcome regression among them) on log recency, "
              "frequency, monetary value and tenure and the segment, all as of the send date")


def send_frame(table: pd.DataFrame, source, named: dict) -> pd.DataFrame:
    """``customer, campaign, send_date`` from a send list, columns found by name unless given."""
    from customerlens.errors import SchemaError
    from customerlens.models.campaigns import first_bad
    from customerlens.models.observational import SEND_COLUMNS

    found = {str(c).strip().lower(): c for c in table.columns}
    columns = {}
    for role in ("customer", "campaign", "send_date"):
        given = named.get(role)
        if given is not None:
            if given not in table.columns:
                raise SchemaError(f"{source.name}: no column {given!r} (the {role.replace('_', ' ')}); columns "
                                  f"found: {', '.join(map(str, table.columns))}")
            columns[role] = given
            continue
        columns[role] = next((found[n] for n in SEND_COLUMNS[role] if n in found), None)
    for role, flag in (("customer", "--customer-col"), ("send_date", "--send-date-col")):
        if columns[role] is None:
            raise SchemaError(f"{source.name}: no {role.replace('_', ' ')} column (looked for "
                              f"{', '.join(SEND_COLUMNS[role])}); name it with {flag}. Columns found: "
                              f"{', '.join(map(str, table.columns))}")
    sent = pd.to_datetime(table[columns["send_date"]].astype("string"), errors="coerce", format="mixed")
    first_bad(table, source, columns["send_date"], sent.isna().to_numpy(), "not a date")
    customer = table[columns["customer"]]
    first_bad(table, source, columns["customer"], customer.isna().to_numpy(), "the customer is empty")
    campaign = (table[columns["campaign"]].astype("string").fillna("(none)") if columns["campaign"] is not None
                else pd.Series(source.name.rsplit("/", 1)[-1], index=table.index, dtype="string"))
    return pd.DataFrame({"customer": customer.to_numpy(), "campaign": campaign.to_numpy(), "send_date": sent})


def _segmenter(ingested, config: RunConfig):
    """A K-means segmentation of the whole history, to name each customer's segment as of any send date."""
    from customerlens.features.customer import customer_features
    from customerlens.insights.segmentation import segment_customers

    features = as_pandas(customer_features(ingested.cleaned.transactions))
    seg = config.segmentation
    return segment_customers(features, method="kmeans", k=seg.k, features=seg.features,
                             random_state=config.random_state, k_range=seg.k_range).segmenter
