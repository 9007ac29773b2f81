"""LightGBM imported without scikit-learn: for a run's worker process, which uses its own API only.

Importing LightGBM imports scikit-learn when it is installed (for its ``LGBMRanker`` and friends),
0.4-0.8 s of a worker that starts while the run loads and cleans its data on the same two cores. The
two-stage ranker learns through ``lightgbm.train`` (:mod:`customerlens.models.recommend.twostage`),
so a worker imports this module first: LightGBM then finds no scikit-learn, and scikit-learn imports
as usual afterwards for anything that needs it. Only where neither is imported yet, and only on
import, in a process without other threads importing (a worker's main thread).
"""

from __future__ import annotations

import sys

if "lightgbm" not in sys.modules and "sklearn" not in sys.modules:
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # import sklearn raises ImportError meanwhile
    try:
        import lightgbm  # noqa: F401
    finally:
        del sys.modules["sklearn"]
