"""``customerlens campaigns`` as one call: read the campaign table, derive outcomes, measure lift, summarise."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

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
        lines = ingest(transactions, RunConfig())
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
