"""The recommendation backtest on a file or frame: load, split by date, score every model."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from customerlens.core.dates import parse_as_of
from customerlens.core.frames import as_pandas as _as_pandas
from customerlens.features.customer import customer_features
from customerlens.insights.segmentation import segment_customers
from customerlens.models.recommend.backtest import make_holdout, run_backtest
from customerlens.models.recommend.models import WithDiscovery
from customerlens.models.recommend.registry import make_model
from customerlens.models.recommend.service import BASELINES, COLLABORATIVE, DEFAULT_MODEL, DISCOVERY_ROW
from customerlens.pipeline.config import RunConfig
from customerlens.pipeline.ingestion import ingest


def backtest(data: Any, as_of: Any, k: int = 10, models: tuple[str, ...] | None = None,
             config: RunConfig | None = None, progress=None, discovery: int = DISCOVERY_ROW) -> tuple[pd.DataFrame, dict]:
    """Run the backtest protocol (see :mod:`customerlens.models.recommend.backtest`) on a file or frame.

    Returns the table (one row per model) and facts about the split. With
    ``discovery`` > 0 the default model is also scored with that many places of
    each list kept for products new to the customer (row ``blend+2_new``).
    """
    as_of = parse_as_of(as_of)
    base = config or RunConfig()
    train = ingest(data, base.replace(as_of=as_of)).cleaned.transactions
    full = ingest(data, base.replace(as_of=None)).cleaned.transactions
    train_lines = _as_pandas(train)
    holdout = make_holdout(train_lines, _as_pandas(full), as_of)
    segments = _segments_as_of(train, as_of, base)
    names = models or (DEFAULT_MODEL, *BASELINES, *COLLABORATIVE, "two_stage")
    candidates = {name: make_model(name) for name in names}
    if discovery > 0 and DEFAULT_MODEL in names:
        variant = WithDiscovery(make_model(DEFAULT_MODEL), discovery)
        candidates[variant.name] = variant
    table = run_backtest(holdout, candidates, k=k, segments=segments, progress=progress)
    facts = {"as_of": as_of.isoformat(), "k": k, "test_customers": int(len(holdout.test_rows)),
             "training_customers": int(holdout.train.n_customers), "products": int(holdout.train.n_products)}
    return table, facts


def _segments_as_of(transactions: Any, as_of: dt.datetime, config: RunConfig) -> dict:
    """Segment names of the customers as of the snapshot (training data only)."""
    features = _as_pandas(customer_features(transactions, as_of=as_of))
    seg = config.segmentation
    seg = segment_customers(features, method=seg.method, k=seg.k, features=seg.features,
                            random_state=config.random_state, k_range=seg.k_range)
    return dict(zip(seg.assigned["customer_id"], seg.assigned["segment_name"], strict=True))
