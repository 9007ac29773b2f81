"""The pipeline: every stage in order, in memory (:func:`analyze`) or into an output folder (:func:`run`).

``config`` (the nested, checked settings), ``ingest`` (load + clean),
``stages`` (one function per later stage, typed in and out), ``analysis``
(:class:`Analysis` and :func:`analyze`), ``run`` (analyze + save) and
``backtest`` (the recommenders on a time-based holdout of a file).

May import every layer below it: ``core``, ``errors``, ``io``, ``cleaning``,
``features``, ``models``, ``insights``, ``outputs``. Never ``api`` or ``cli``.
"""

from customerlens.pipeline.analysis import STAGES, Analysis, analyze
from customerlens.pipeline.config import (
    EngineConfig,
    InputConfig,
    InsightsConfig,
    OutputConfig,
    RecommendConfig,
    RunConfig,
    SegmentConfig,
)
from customerlens.pipeline.ingestion import Ingested, ingest
from customerlens.pipeline.runner import run

__all__ = [
    "STAGES", "Analysis", "EngineConfig", "Ingested", "InputConfig", "InsightsConfig", "OutputConfig",
    "RecommendConfig", "RunConfig", "SegmentConfig", "analyze", "ingest", "run",
]
