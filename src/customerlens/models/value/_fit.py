"""Maximum likelihood on log parameters, with standard errors from the observed information."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from customerlens.errors import CustomerLensError


def fit_positive(neg_ll: Callable[[np.ndarray], tuple[float, np.ndarray]], start: np.ndarray,
                 names: tuple[str, ...], model: str) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Minimise ``neg_ll(params) -> (value, gradient)`` over positive parameters.

    Optimises log-parameters with L-BFGS-B (analytic gradient, chain rule), then
    inverts a central-difference Hessian at the optimum for standard errors.
    Returns parameters, standard errors, log-likelihood and optimiser facts.
    """

    def objective(log_params):
        # the optimiser's trial steps can reach parameters where exp overflows: such a step is
        # refused (an infinite likelihood), not reported to the user as a numpy warning
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            params = np.exp(log_params)
            value, grad = neg_ll(params)
            if not (np.isfinite(value) and np.isfinite(grad).all()):
                return 1e300, np.zeros_like(log_params)
            return value, grad * params

    best = None
    for scale in (1.0, 0.3, 3.0):  # other starts only when one fails: the likelihoods are not convex
        res = minimize(objective, np.log(start * scale), jac=True, method="L-BFGS-B",
                       options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-8})
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun - 1e-9):
            best = res
        if best is not None and best.success:
            break
    if best is None or not np.isfinite(best.fun):
        raise CustomerLensError(f"{model} did not converge: the data give no finite likelihood")
    params = np.exp(best.x)
    # a parameter at its boundary (a spend model on a plan's fixed price) puts a difference step
    # outside the domain: that standard error is not finite (recorded as None), no numpy warning
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        hessian = _hessian(lambda p: neg_ll(p)[1], params)
    try:
        cov = np.linalg.inv(hessian)
        se = np.sqrt(np.clip(np.diag(cov), 0, None))
    except (np.linalg.LinAlgError, ValueError):  # singular, or not finite
        se = np.full(len(params), np.nan)
    facts = {"converged": bool(best.success), "iterations": int(best.nit), "message": str(best.message)}
    return params, se, -float(best.fun), facts


def _hessian(gradient: Callable[[np.ndarray], np.ndarray], params: np.ndarray) -> np.ndarray:
    n = len(params)
    out = np.empty((n, n))
    for i in range(n):
        h = 1e-5 * max(abs(params[i]), 1e-3)
        up, down = params.copy(), params.copy()
        up[i] += h
        down[i] -= h
        out[i] = (gradient(up) - gradient(down)) / (2 * h)
    return (out + out.T) / 2


class MaximumLikelihoodModel:
    """What the value models share: fitted parameters, their standard errors and the fit's facts."""

    name = "model"
    param_names: tuple[str, ...] = ()

    def _fit_positive(self, neg_ll, n_customers: int, label: str):
        params, se, ll, facts = fit_positive(neg_ll, np.array(self.start, dtype=float), self.param_names, label)
        self.params_ = dict(zip(self.param_names, params.tolist(), strict=True))
        self.standard_errors_ = dict(zip(self.param_names, se.tolist(), strict=True))
        self.log_likelihood_ = ll
        self.n_customers_ = int(n_customers)
        self.optimizer_ = facts
        return self

    def _p(self) -> tuple[float, ...]:
        if not hasattr(self, "params_"):
            from customerlens.errors import NotFittedError

            raise NotFittedError(f"{type(self).__name__} is not fitted yet: call fit() first")
        return tuple(self.params_[k] for k in self.param_names)


def sample_rows(n: int, at_most: int, random_state: int) -> np.ndarray:
    """Every row up to ``at_most``, else a seeded random sample of that many (in row order)."""
    if n <= at_most:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, at_most, replace=False))
