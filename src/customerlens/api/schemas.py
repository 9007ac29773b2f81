"""Pydantic schemas of the API edge: what ``POST /api/score`` accepts and what the endpoints return."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from customerlens.api.settings import MAX_SCORE_ROWS

Id = Annotated[str, Field(min_length=1, max_length=1000)]
#: Finite and of a plausible size: NaN, Infinity and 1e400 (read as infinity) are refused with 422,
#: and no sum of 10,000 such values overflows
LIMIT = 1e12
Number = Annotated[float, Field(allow_inf_nan=False, ge=-LIMIT, le=LIMIT)]
Count = Annotated[float, Field(allow_inf_nan=False, ge=0, le=LIMIT)]


class FeatureRow(BaseModel):
    """One customer's features (at least those the saved segmenter uses)."""

    model_config = ConfigDict(extra="forbid")
    customer_id: Id
    recency_days: Count | None = None
    frequency: Count | None = None
    monetary: Number | None = None
    tenure_days: Count | None = None
    avg_order_value: Number | None = None
    distinct_products: Count | None = None
    items_per_order: Number | None = None
    return_rate: Number | None = None
    mean_days_between_orders: Number | None = None
    spend_90d: Number | None = None
    spend_prev_90d: Number | None = None
    spend_trend: Number | None = None


class TransactionRow(BaseModel):
    """One purchase line in canonical columns."""

    model_config = ConfigDict(extra="forbid")
    customer_id: Id
    order_id: Id
    order_date: dt.datetime
    product_id: Annotated[str, Field(max_length=1000)] | None = None
    quantity: Number = 1.0
    amount: Number


class ScoreRequest(BaseModel):
    """New customers to segment: either their ``features`` or their ``transactions`` (not both)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"features": [{"customer_id": "N1", "recency_days": 12, "frequency": 9, "monetary": 1450.0}]},
        {"transactions": [{"customer_id": "N2", "order_id": "A1", "order_date": "2024-11-02T10:00:00",
                           "product_id": "85123A", "quantity": 6, "amount": 15.3}], "as_of": "2024-12-09"},
    ]})
    features: Annotated[list[FeatureRow], Field(min_length=1, max_length=MAX_SCORE_ROWS)] | None = None
    transactions: Annotated[list[TransactionRow], Field(min_length=1, max_length=MAX_SCORE_ROWS)] | None = None
    as_of: dt.date | None = Field(None, description="Snapshot for transactions (default: the store's as-of date, "
                                                   "else the day after the last line).")

    @model_validator(mode="after")
    def _one_kind(self) -> ScoreRequest:
        if (self.features is None) == (self.transactions is None):
            raise ValueError("send either 'features' or 'transactions'")
        return self


class ScoredCustomer(BaseModel):
    """One scored customer: the segment it is assigned to, its strategy and the features used."""

    customer_id: str
    segment_id: int
    segment_name: str
    strategy: str | None = None
    features: dict[str, Any]


class ScoreResponse(BaseModel):
    """The answer of POST /api/score."""

    model: dict[str, Any]
    customers: list[ScoredCustomer]


class Recommendation(BaseModel):
    """One recommended product with its score and reason."""

    rank: int
    product_id: str | None
    product_name: str | None
    score: float | None
    reason: str | None


class RecommendationsResponse(BaseModel):
    """The answer of GET /api/customers/{id}/recommendations."""

    customer_id: str
    list: Literal["top", "discover"]
    n: int
    recommendations: list[Recommendation]


class CustomerPage(BaseModel):
    """A page of a segment's customers."""

    segment_id: int
    q: str
    page: int
    page_size: int
    total: int
    pages: int
    sort: str = ""
    order: str = "desc"
    customers: list[dict[str, Any]]


class Error(BaseModel):
    """An error answer."""

    detail: str
