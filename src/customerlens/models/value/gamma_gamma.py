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
from customerlens.models.value._fit import MaximumLikelihoodModel, sample_rows

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

    def fit(self, frequency, monetary_value, at_most: int | None = None, random_state: int = 42) -> GammaGammaModel:
        """Fit p, q, gamma on the customers with repeat purchases and positive spend; returns self.

        ``at_most``: fitted on a seeded sample of that many of them when there are more (three
        parameters are pinned down long before millions of customers); the correlation check and
        the population mean use them all.
        """
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        keep = (x > 0) & (m > 0) & np.isfinite(m)
        if keep.sum() < 10:
            raise CustomerLensError(f"the spend model needs repeat customers with positive spend; "
                                    f"found {int(keep.sum())} (at least 10 needed)")
        x, m = x[keep], m[keep]
        rows = sample_rows(len(x), at_most or len(x), random_state)
        xs, ms = x[rows], m[rows]
        xu, xi = np.unique(xs, return_inverse=True)
        data = (xs, ms, np.ones(len(xs)), np.log(ms), np.log(xs), xu, xi.ravel())
        self._fit_positive(lambda prm: self._neg_ll(prm, data), len(xs), "Gamma-Gamma")
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
