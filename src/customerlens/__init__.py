"""customerlens: purchase transactions in, customer decisions out.

The package follows the pipeline, one subpackage per layer, imports going one
way only (down this list; an import-linter contract in ``pyproject.toml``
enforces it)::

    cli, api      the command line and the dashboard/REST API (nothing imports them)
    pipeline      settings, one function per stage, analyze() and run()
    outputs       the output folder, the CSV/JSON writer, the DuckDB store, charts, the report
    insights      profiles, products, trends, migration, value per segment, action plan
    models        segment, value, recommend, campaigns: estimators and statistics
    features      per-customer features as of a date
    cleaning      the cleaning rules, each counted
    io            schema, readers, Spark loading, demo data
    core          DuckDB, frame, file, date and text helpers

In a notebook::

    import customerlens as cl
    analysis = cl.analyze("sales.csv", as_of="2011-09-09")
    analysis.segment_profiles
    analysis.save("out/run")
"""

from __future__ import annotations

__version__ = "0.1.0"

from customerlens.cleaning.rules import CleaningConfig, clean  # noqa: E402
from customerlens.errors import (  # noqa: E402
    ConfigError,
    CustomerLensError,
    DataQualityError,
    InputError,
    NotFittedError,
    SchemaError,
)
from customerlens.features.customer import customer_features  # noqa: E402
from customerlens.insights.segmentation import segment_customers  # noqa: E402
from customerlens.io.load import load  # noqa: E402
from customerlens.models.recommend import make_model  # noqa: E402
from customerlens.models.segment.segmenter import CustomerSegmenter, rfm_scores  # noqa: E402
from customerlens.models.value import (  # noqa: E402
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    ValueConfig,
    fit_value,
)
from customerlens.pipeline import (  # noqa: E402
    Analysis,
    EngineConfig,
    InputConfig,
    InsightsConfig,
    OutputConfig,
    RecommendConfig,
    RunConfig,
    SegmentConfig,
    analyze,
    ingest,
    run,
)

__all__ = [
    "Analysis",
    "BetaGeoModel",
    "CleaningConfig",
    "ConfigError",
    "CustomerLensError",
    "CustomerSegmenter",
    "DataQualityError",
    "EngineConfig",
    "GammaGammaModel",
    "InputConfig",
    "InputError",
    "InsightsConfig",
    "NotFittedError",
    "OutputConfig",
    "ParetoNBDModel",
    "RecommendConfig",
    "RunConfig",
    "SchemaError",
    "SegmentConfig",
    "ValueConfig",
    "__version__",
    "analyze",
    "clean",
    "customer_features",
    "fit_value",
    "ingest",
    "load",
    "make_model",
    "rfm_scores",
    "run",
    "segment_customers",
]
