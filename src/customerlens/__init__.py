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

import importlib
from typing import TYPE_CHECKING

from customerlens._version import __version__

#: public name -> the module that defines it; imported on first use, so that
#: ``import customerlens`` and ``customerlens --help`` stay fast (no pandas, scikit-learn or DuckDB yet)
_EXPORTS = {
    "CleaningConfig": "customerlens.cleaning.rules",
    "clean": "customerlens.cleaning.rules",
    "ConfigError": "customerlens.errors",
    "CustomerLensError": "customerlens.errors",
    "DataQualityError": "customerlens.errors",
    "InputError": "customerlens.errors",
    "NotFittedError": "customerlens.errors",
    "SchemaError": "customerlens.errors",
    "customer_features": "customerlens.features.customer",
    "segment_customers": "customerlens.insights.segmentation",
    "load": "customerlens.io.load",
    "make_model": "customerlens.models.recommend.registry",
    "CustomerSegmenter": "customerlens.models.segment.segmenter",
    "rfm_scores": "customerlens.models.segment.segmenter",
    "BetaGeoModel": "customerlens.models.value.bgnbd",
    "GammaGammaModel": "customerlens.models.value.gamma_gamma",
    "ParetoNBDModel": "customerlens.models.value.pareto",
    "ValueConfig": "customerlens.models.value.config",
    "fit_value": "customerlens.models.value.service",
    "Analysis": "customerlens.pipeline.analysis",
    "analyze": "customerlens.pipeline.analysis",
    "EngineConfig": "customerlens.pipeline.config",
    "InputConfig": "customerlens.pipeline.config",
    "InsightsConfig": "customerlens.pipeline.config",
    "OutputConfig": "customerlens.pipeline.config",
    "RecommendConfig": "customerlens.pipeline.config",
    "RunConfig": "customerlens.pipeline.config",
    "SegmentConfig": "customerlens.pipeline.config",
    "ingest": "customerlens.pipeline.ingestion",
    "run": "customerlens.pipeline.runner",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    """Import a public name's module on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'customerlens' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from customerlens.cleaning.rules import CleaningConfig, clean
    from customerlens.errors import (
        ConfigError,
        CustomerLensError,
        DataQualityError,
        InputError,
        NotFittedError,
        SchemaError,
    )
    from customerlens.features.customer import customer_features
    from customerlens.insights.segmentation import segment_customers
    from customerlens.io.load import load
    from customerlens.models.recommend.registry import make_model
    from customerlens.models.segment.segmenter import CustomerSegmenter, rfm_scores
    from customerlens.models.value.bgnbd import BetaGeoModel
    from customerlens.models.value.config import ValueConfig
    from customerlens.models.value.gamma_gamma import GammaGammaModel
    from customerlens.models.value.pareto import ParetoNBDModel
    from customerlens.models.value.service import fit_value
    from customerlens.pipeline.analysis import Analysis, analyze
    from customerlens.pipeline.config import (
        EngineConfig,
        InputConfig,
        InsightsConfig,
        OutputConfig,
        RecommendConfig,
        RunConfig,
        SegmentConfig,
    )
    from customerlens.pipeline.ingestion import ingest
    from customerlens.pipeline.runner import run
