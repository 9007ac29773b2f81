"""customerlens: purchase transactions in, customer decisions out.

The pipeline, one module per stage: :mod:`~customerlens.schema` and
:mod:`~customerlens.load` (any file or frame to canonical transactions),
:mod:`~customerlens.clean` (named, counted cleaning rules),
:mod:`~customerlens.features` (one row per customer), :mod:`~customerlens.store`
(the DuckDB store) and :mod:`~customerlens.pipeline` (all of it in one call).
"""

from __future__ import annotations

__version__ = "0.1.0"

from customerlens.cleaning.rules import CleaningConfig, clean  # noqa: E402
from customerlens.errors import CustomerLensError, DataQualityError, InputError, SchemaError  # noqa: E402
from customerlens.features.customer import customer_features  # noqa: E402
from customerlens.io.load import load  # noqa: E402
from customerlens.pipeline.run import RunConfig, ingest, run  # noqa: E402

__all__ = [
    "CleaningConfig",
    "CustomerLensError",
    "DataQualityError",
    "InputError",
    "RunConfig",
    "SchemaError",
    "__version__",
    "clean",
    "customer_features",
    "ingest",
    "load",
    "run",
]
