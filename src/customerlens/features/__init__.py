"""Features: one row of behaviour features per customer as of a snapshot date (:mod:`.customer`).

Written once against narwhals, so DuckDB, pandas, Polars and PySpark frames are
aggregated by their own engine. The per-customer table is the hand-off to every model.

May import: ``customerlens.core``, ``errors``, ``io``, ``cleaning``.
"""

from customerlens.features.customer import FEATURE_COLUMNS, customer_features, default_as_of, last_transaction

__all__ = ["FEATURE_COLUMNS", "customer_features", "default_as_of", "last_transaction"]
