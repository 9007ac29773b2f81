"""Simulate purchase summaries from known BG/NBD parameters (parameter recovery, benchmarks)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_bgnbd(n_customers: int, r: float, alpha: float, a: float, b: float, T: float | np.ndarray = 52.0,
                   spend: tuple[float, float, float] | None = None, random_state: int = 0) -> pd.DataFrame:
    """Draw ``frequency, recency, T`` (and ``monetary_value`` with Gamma-Gamma ``spend = (p, q, gamma)``).

    Each customer draws ``lambda ~ Gamma(r, rate=alpha)`` and ``p ~ Beta(a, b)``;
    purchases arrive as a Poisson process from time 0 (the first purchase) until
    ``T``; after each repeat purchase the customer drops out with probability
    ``p``. Vectorised over customers: one loop step per purchase number.
    """
    rng = np.random.default_rng(random_state)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n_customers,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    drop = rng.beta(a, b, n_customers)
    now = np.zeros(n_customers)
    x = np.zeros(n_customers, dtype=np.int64)
    t_x = np.zeros(n_customers)
    active = np.ones(n_customers, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        now[idx] += rng.exponential(1.0, len(idx)) / lam[idx]
        buys = now[idx] <= T[idx]
        done = idx[~buys]
        active[done] = False
        bought = idx[buys]
        x[bought] += 1
        t_x[bought] = now[bought]
        dies = rng.random(len(bought)) < drop[bought]
        active[bought[dies]] = False
    out = pd.DataFrame({"customer_id": np.arange(n_customers).astype(str), "frequency": x, "recency": t_x,
                        "T": T})
    if spend is not None:
        p, q, gamma = spend
        nu = rng.gamma(q, 1.0 / gamma, n_customers)
        # the mean of x Gamma(p, nu) values is Gamma(p x, nu x)
        mean = np.where(x > 0, rng.gamma(np.maximum(p * x, 1e-9), 1.0 / (nu * np.maximum(x, 1))), 0.0)
        out["monetary_value"] = mean
    return out
