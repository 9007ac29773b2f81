"""Stage: customer value.

BG/NBD and Pareto/NBD (who stays), Gamma-Gamma (what they spend), CLV, churn risk
and value at risk, per customer, from clean transactions.

The names below load on first use: importing :mod:`customerlens.models.value.config`
(the settings a run reads at its start) does not import the models and scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: each public name and the module that holds it
_HOMES = {
    "BetaGeoModel": "bgnbd", "GammaGammaModel": "gamma_gamma", "ParetoNBDModel": "pareto",
    "ValueConfig": "config", "ValueResult": "config", "evaluate_holdout": "service", "fit_value": "service",
    "simulate_bgnbd": "simulate", "holdout_counts": "summary", "rfm_summary": "summary",
}

__all__ = ["BetaGeoModel", "GammaGammaModel", "ParetoNBDModel", "ValueConfig", "ValueResult", "evaluate_holdout",
           "fit_value", "holdout_counts", "rfm_summary", "simulate_bgnbd"]

if TYPE_CHECKING:
    from customerlens.models.value.bgnbd import BetaGeoModel
    from customerlens.models.value.config import ValueConfig, ValueResult
    from customerlens.models.value.gamma_gamma import GammaGammaModel
    from customerlens.models.value.pareto import ParetoNBDModel
    from customerlens.models.value.service import evaluate_holdout, fit_value
    from customerlens.models.value.simulate import simulate_bgnbd
    from customerlens.models.value.summary import holdout_counts, rfm_summary


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
