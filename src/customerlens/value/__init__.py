"""Stage: customer value. BG/NBD and Pareto/NBD (who stays), Gamma-Gamma (what they spend),
CLV, churn risk and value at risk, per customer, from clean transactions."""

from .bgnbd import BetaGeoModel
from .gamma_gamma import GammaGammaModel
from .pareto import ParetoNBDModel
from .service import ValueConfig, ValueResult, evaluate_holdout, fit_value
from .simulate import simulate_bgnbd
from .summary import holdout_counts, rfm_summary

__all__ = ["BetaGeoModel", "GammaGammaModel", "ParetoNBDModel", "ValueConfig", "ValueResult", "evaluate_holdout",
           "fit_value", "holdout_counts", "rfm_summary", "simulate_bgnbd"]
