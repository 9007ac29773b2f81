"""Stage: customer value.

BG/NBD and Pareto/NBD (who stays), Gamma-Gamma (what they spend), CLV, churn risk
and value at risk, per customer, from clean transactions.
"""

from customerlens.models.value.bgnbd import BetaGeoModel
from customerlens.models.value.gamma_gamma import GammaGammaModel
from customerlens.models.value.pareto import ParetoNBDModel
from customerlens.models.value.service import ValueConfig, ValueResult, evaluate_holdout, fit_value
from customerlens.models.value.simulate import simulate_bgnbd
from customerlens.models.value.summary import holdout_counts, rfm_summary

__all__ = ["BetaGeoModel", "GammaGammaModel", "ParetoNBDModel", "ValueConfig", "ValueResult", "evaluate_holdout",
           "fit_value", "holdout_counts", "rfm_summary", "simulate_bgnbd"]
