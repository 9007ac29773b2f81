"""Thread limits of the numerical libraries underneath (threadpoolctl)."""

from __future__ import annotations

from typing import Any


def one_blas_thread() -> Any:
    """A context in which BLAS runs on one thread (every BLAS library loaded, scipy's own included).

    Two uses: the recommenders' weights (EASE's inverse) come out the same to the last digit in any
    process and on any machine (two threads sum in another order); and K-means, whose Lloyd
    iterations run on OpenMP threads while k-means++ and the silhouettes call BLAS in between, no
    longer has the two thread pools stall each other on two cores (Online Retail's k search: 1.04-1.36
    s with both at two threads, 0.65-0.68 s with BLAS on one; the same inertias).

    threadpoolctl limits the libraries loaded when the limit starts, so scipy's BLAS is loaded first
    (in a fresh process it was not, and the first fit's weights differed by 1e-7).
    """
    import scipy.linalg  # noqa: F401 - loads scipy's BLAS before the limit
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")
