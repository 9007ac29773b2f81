"""Models: estimators and statistics, and nothing else (no files, charts, store or pipeline).

:mod:`.segment` (K-means with k by the elbow method, segment names, RFM scores;
MLlib K-means), :mod:`.value` (BG/NBD, Pareto/NBD, Gamma-Gamma, churn risk, CLV),
:mod:`.recommend` (recommenders behind one interface, the backtest metrics;
MLlib ALS) and :mod:`.campaigns` (lift by segment with honest intervals). The four
are independent of each other (an import-linter contract says so).

May import: ``customerlens.core``, ``errors``, ``io``, ``features``.
"""
