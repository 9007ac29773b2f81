"""BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way").

While alive a customer buys at rate ``lambda ~ Gamma(r, alpha)``; after each
purchase they drop out with probability ``p ~ Beta(a, b)``. Fitted by maximum
likelihood on (x, t_x, T); every expression is written in log space.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, log1p

from customerlens.models.value._fit import MaximumLikelihoodModel

PARAMS = ("r", "alpha", "a", "b")


class BetaGeoModel(MaximumLikelihoodModel):
    """BG/NBD: ``fit(frequency, recency, T)`` then P(alive), expected purchases, P(no purchase)."""

    name = "bgnbd"
    param_names = PARAMS

    def __init__(self, start: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)):
        self.start = start

    # -- likelihood
    @staticmethod
    def _terms(params, x, t_x, T):
        r, alpha, a, b = params
        # log L = A + B + log(1 + [x > 0] e^D)
        A = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        B = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            D = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300))
                         + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)), -np.inf)
        return A, B, D

    @classmethod
    def log_likelihood_each(cls, params, x, t_x, T) -> np.ndarray:
        """Log-likelihood of each (x, t_x, T) row under ``params`` (r, alpha, a, b)."""
        A, B, D = cls._terms(params, x, t_x, T)
        return A + B + np.logaddexp(0.0, D)

    @staticmethod
    def _neg_ll(params, data):
        """Negative log-likelihood and its gradient; special functions only on the distinct x."""
        r, alpha, a, b = params
        x, t_x, T, w, xu, xi = data
        A = (gammaln(r + xu) - gammaln(r))[xi] + r * np.log(alpha)
        log_aT = np.log(alpha + T)
        log_atx = np.log(alpha + t_x)
        B = (betaln(a, b + xu) - betaln(a, b))[xi] - (r + x) * log_aT
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.where(xu > 0, np.log(a) - np.log(np.maximum(b + xu - 1, 1e-300)), -np.inf)
            inv = np.where(xu > 0, 1 / np.maximum(b + xu - 1, 1e-300), 0.0)[xi]
        D = log_odds[xi] + (r + x) * (log_aT - log_atx)
        ll = A + B + np.logaddexp(0.0, D)
        s = np.where(x > 0, expit(D), 0.0)  # d softplus(D) / dD, 0 where there is no second term
        g_r = (digamma(r + xu) - digamma(r))[xi] + np.log(alpha) - log_aT + s * (log_aT - log_atx)
        g_alpha = r / alpha - (r + x) / (alpha + T) + s * (r + x) * (1 / (alpha + T) - 1 / (alpha + t_x))
        g_a = (digamma(a + b) - digamma(a + b + xu))[xi] + s / a
        g_b = (digamma(b + xu) - digamma(a + b + xu) - digamma(b) + digamma(a + b))[xi] - s * inv
        grad = np.array([np.dot(w, g) for g in (g_r, g_alpha, g_a, g_b)])
        return -float(np.dot(w, ll)), -grad

    def fit(self, frequency, recency, T, weights=None) -> BetaGeoModel:
        """Fit the model on per-customer frequency, recency and age (``weights``: one per row); returns self."""
        x, t_x, T, w = _compress(frequency, recency, T, weights)
        xu, xi = np.unique(x, return_inverse=True)
        data = (x, t_x, T, w, xu, xi.ravel())
        return self._fit_positive(lambda p: self._neg_ll(p, data), w.sum(), "BG/NBD")

    # -- predictions
    def p_alive(self, frequency, recency, T) -> np.ndarray:
        """P(still active at T | x, t_x, T); 1 for customers without repeat purchases (the model's view)."""
        r, alpha, a, b = self._p()
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        _, _, D = self._terms((r, alpha, a, b), x, t_x, T)
        return expit(-D)

    def expected_purchases_new(self, t) -> np.ndarray:
        """E[X(t)]: purchases in ``t`` units by a newly acquired customer."""
        r, alpha, a, b = self._p()
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z))

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[Y(t) | x, t_x, T]: purchases in the next ``t`` units."""
        r, alpha, a, b = self._p()
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        t = np.asarray(t, dtype=float)
        z = t / (alpha + T + t)
        log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + T + t))
        body = 1 - np.exp(log_ratio) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        return (a + b + x - 1) / (a - 1) * body * self.p_alive(x, t_x, T)

    def prob_no_purchase(self, t, frequency, recency, T) -> np.ndarray:
        """P(no purchase in the next ``t`` units | x, t_x, T).

        Dropped out (1 - P(alive)) or still active with no purchase in ``t``:
        given alive, lambda | data ~ Gamma(r + x, alpha + T).
        """
        r, alpha, _, _ = self._p()
        x, t_x, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        alive = self.p_alive(x, t_x, T)
        quiet = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + np.asarray(t, dtype=float))))
        return 1 - alive + alive * quiet


def _compress(frequency, recency, T, weights=None):
    """Unique (x, t_x, T) rows with their counts: the likelihood only needs those."""
    data = np.column_stack([np.asarray(v, dtype=float) for v in (frequency, recency, T)])
    if data.size == 0:
        from customerlens.errors import CustomerLensError

        raise CustomerLensError("no customers to fit: the calibration period holds no purchases")
    if not np.all(np.isfinite(data)) or (data < 0).any():
        from customerlens.errors import CustomerLensError

        raise CustomerLensError("frequency, recency and T must be finite and non-negative")
    if weights is None and len(data) <= 200_000:
        unique, counts = np.unique(data, axis=0, return_counts=True)
        w = counts.astype(float)
    elif weights is None:  # large bases: sorting costs more than it saves
        unique, w = data, np.ones(len(data))
    else:
        unique, w = data, np.asarray(weights, dtype=float)
    return unique[:, 0], unique[:, 1], unique[:, 2], w


__all__ = ["BetaGeoModel", "log1p"]
