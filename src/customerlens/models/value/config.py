"""The value stage's settings and result, without the models: what a run imports before it fits them.

:mod:`customerlens.models.value.service` fits the models (scipy); the pipeline's configuration and
the insights only need these two classes, so that importing them does not import scipy (0.26 s of
every command's start, before any work).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from customerlens.errors import ConfigError

if TYPE_CHECKING:
    from customerlens.models.value.churn import StackedChurn
    from customerlens.models.value.gamma_gamma import GammaGammaModel

#: the counting models :func:`~customerlens.models.value.service.fit_value` chooses from
COUNTING_MODEL_NAMES = ("bgnbd", "pareto_nbd")
DAYS_PER_MONTH = 365.25 / 12
UNITS = {"day": 1.0, "week": 7.0, "month": DAYS_PER_MONTH}
#: fewer customers than this cannot pin down four parameters: the stage is skipped
MIN_CUSTOMERS = 20


@dataclass(frozen=True)
class ValueConfig:
    """Settings of the value stage; every horizon in days or months, the model's unit in ``time_unit``.

    Checked when built: a bad value raises :class:`~customerlens.errors.ConfigError`
    naming it (``value.horizon_days``).
    """

    time_unit: str = "week"
    horizon_days: int = 90  # expected purchases and churn risk over this many days
    clv_months: int = 12
    discount_rate: float = 0.10  # a year, for CLV
    model: str = "auto"  # auto (higher log-likelihood) | bgnbd | pareto_nbd
    churn_inner_days: int | None = None  # inner split for the churn model; default min(horizon, half the span)
    random_state: int = 42
    #: the models are fitted on at most this many customers (a seeded random sample; every customer is
    #: scored): four or five parameters are pinned down long before that, and Pareto/NBD's likelihood
    #: costs a quadrature per customer and iteration
    fit_sample: int = 50_000

    def __post_init__(self):
        if self.time_unit not in UNITS:
            raise ConfigError(f"value.time_unit must be one of {', '.join(UNITS)}, not {self.time_unit!r}",
                              parameter="value.time_unit")
        for name, unit in (("horizon_days", "day"), ("clv_months", "month")):
            if getattr(self, name) < 1:
                raise ConfigError(f"value.{name} must be at least one {unit}, got {getattr(self, name)}",
                                  parameter=f"value.{name}")
        if not 0 <= self.discount_rate < 1:
            raise ConfigError(f"value.discount_rate is a yearly fraction in [0, 1), got {self.discount_rate}",
                              parameter="value.discount_rate")
        if self.model not in ("auto", *COUNTING_MODEL_NAMES):
            raise ConfigError(f"value.model must be auto, bgnbd or pareto_nbd, not {self.model!r}",
                              parameter="value.model")

    @property
    def unit_days(self) -> float:
        """Days per unit of the models' time."""
        return UNITS[self.time_unit]


@dataclass
class ValueResult:
    """Scores per customer (``table``), the fitted models and what the run record keeps."""

    table: pd.DataFrame
    #: the models' inputs per customer (rfm_summary); None when fitted with ``keep_summary=False``
    #: (the pipeline's runs: at 10M customers it is 0.6 GB that nothing after the fit reads)
    summary: pd.DataFrame | None
    models: dict
    model_name: str
    spend: GammaGammaModel | None
    churn: StackedChurn
    calibration_end: dt.date
    config: ValueConfig
    record: dict = field(default_factory=dict)
    by_segment: pd.DataFrame | None = None  # set by the run: customerlens.insights.value.value_by_segment
    #: :func:`~customerlens.models.value.service.tracking` of the calibration period, computed by a run that draws charts before it
    #: drops the summary (the chart's table; None otherwise)
    weekly_tracking: pd.DataFrame | None = None

    @property
    def model(self):
        """The counting model the scores come from (``models[model_name]``)."""
        return self.models[self.model_name]
