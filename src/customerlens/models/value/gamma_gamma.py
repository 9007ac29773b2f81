"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999).

A customer's transaction values are Gamma(p, nu) around their own mean, and
``nu ~ Gamma(q, gamma)`` across customers. Fitted on repeat customers' mean
repeat transaction value; assumes spend is independent of frequency (the fit
reports their correlation so that can be checked).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from customerlens.errors import CustomerLensError
from customerlens.models.value._fit import MaximumLikelihoodModel

PARAMS = ("p", "q", "gamma")


class GammaGammaModel(MaximumLikelihoodModel):
    """``fit(frequency, monetary_value)`` on customers with repeat purchases; expected average value."""

    param_names = PARAMS

    def __init__(self, start: tuple[float, float, float] = (1.0, 1.0, 1.0)):
        self.start = start

    @staticmethod
    def _neg_ll(params, data):
        p, q, g = params
        x, m, w, log_m, log_x, xu, xi = data
        pxu = p * xu
        ll = ((gammaln(pxu + q) - gammaln(pxu))[xi] - gammaln(q) + q * np.log(g) + (p * x - 1) * log_m
              + p * x * log_x - (p * x + q) * np.log(g + m * x))
        log_gmx = np.log(g + m * x)
        psi_pxq = digamma(pxu + q)[xi]
        g_p = x * (psi_pxq - digamma(pxu)[xi] + log_m + log_x - log_gmx)
        g_q = psi_pxq - digamma(q) + np.log(g) - log_gmx
        g_g = q / g - (p * x + q) / (g + m * x)
        grad = np.array([np.dot(w, v) for v in (g_p, g_q, g_g)])
        return -float(np.dot(w, ll)), -grad

    def fit(self, frequency, monetary_value) -> GammaGammaModel:
        """Fit p, q, gamma on the customers with repeat purchases and positive spend; returns self."""
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        keep = (x > 0) & (m > 0) & np.isfinite(m)
        if keep.sum() < 10:
            raise CustomerLensError(f"the spend model needs repeat customers with positive spend; "
                                    f"found {int(keep.sum())} (at least 10 needed)")
        x, m = x[keep], m[keep]
        xu, xi = np.unique(x, return_inverse=True)
        data = (x, m, np.ones(len(x)), np.log(m), np.log(x), xu, xi.ravel())
        self._fit_positive(lambda prm: self._neg_ll(prm, data), keep.sum(), "Gamma-Gamma")
        self.frequency_spend_correlation_ = float(np.corrcoef(x, m)[0, 1]) if len(x) > 2 else float("nan")
        self.population_mean_ = float(m.mean())
        return self

    def conditional_expected_value(self, frequency, monetary_value) -> np.ndarray:
        """E[M | x, m]: expected average transaction value (the population mean for x = 0)."""
        p, q, g = self._p()
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        prior_mean = p * g / (q - 1) if q > 1 else self.population_mean_
        with np.errstate(invalid="ignore", divide="ignore"):
            posterior = (g + m * x) * p / (p * x + q - 1)
        return np.where(x > 0, posterior, prior_mean)
