"""The recommendation backtest on a file or frame: load, split by date, score every model."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

import narwhals as nw
import pandas as pd

from customerlens.core.dates import parse_as_of
from customerlens.core.frames import as_pandas as _as_pandas
from customerlens.features.customer import customer_features
from customerlens.insights.segmentation import segment_customers
from customerlens.models.recommend.backtest import make_holdout, paired_bootstrap, run_backtest
from customerlens.models.recommend.models import WithDiscovery
from customerlens.models.recommend.registry import make_model
from customerlens.models.recommend.service import BASELINES, COLLABORATIVE, DEFAULT_MODEL, DISCOVERY_ROW
from customerlens.pipeline.config import RunConfig
from customerlens.pipeline.ingestion import ingest

#: what the holdout reads of the training lines, and of the lines after the date
TRAIN_COLUMNS = ("customer_id", "order_id", "order_date", "product_id", "product_name", "quantity")
TEST_COLUMNS = ("customer_id", "order_date", "product_id", "quantity")


def backtest(data: Any, as_of: Any, k: int = 10, models: tuple[str, ...] | None = None,
             config: RunConfig | None = None, progress=None, discovery: int = DISCOVERY_ROW) -> tuple[pd.DataFrame, dict]:
    """Run the backtest protocol (see :mod:`customerlens.models.recommend.backtest`) on a file or frame.

    Returns the table (one row per model and list: ``top`` and ``discover``) and facts about the
    split, with a paired bootstrap interval of the default's NDCG@k against personal frequency
    (``ndcg_vs_personal_frequency``, when both ran). With
    ``discovery`` > 0 the default model is also scored with that many places of
    each list kept for products new to the customer (row ``two_stage+2_new``).
    """
    as_of = parse_as_of(as_of)
    base = config or RunConfig()
    # only the columns and lines the protocol reads reach pandas, and each engine's
    # connection closes once they have: on a grocery chain's 1.5 million lines this
    # halves what the models start from
    trained = ingest(data, base.replace(as_of=as_of))
    train_lines = _as_pandas(nw.from_native(trained.cleaned.transactions).select(*TRAIN_COLUMNS))
    everything = ingest(data, base.replace(as_of=None))
    later = nw.from_native(everything.cleaned.transactions).filter(nw.col("order_date") >= nw.lit(as_of))
    test_lines = _as_pandas(later.select(*TEST_COLUMNS))
    everything.con.close()
    holdout = make_holdout(train_lines, test_lines, as_of)  # says so when nothing was bought before as_of
    del train_lines, test_lines
    names = models or (DEFAULT_MODEL, "blend", *BASELINES, *COLLABORATIVE)
    # only segment popularity reads the segments: a K-means search is not run for nothing
    segments = _segments_as_of(trained.cleaned.transactions, as_of, base) if "segment_popularity" in names else None
    trained.con.close()
    # factories, not models: each fitted model is dropped once it is scored
    candidates = {name: partial(make_model, name) for name in names}
    if discovery > 0 and DEFAULT_MODEL in names:
        candidates[f"{DEFAULT_MODEL}+{discovery}_new"] = partial(_with_discovery, discovery)
    ndcg: dict = {}
    table = run_backtest(holdout, candidates, k=k, segments=segments, progress=progress, per_customer=ndcg)
    facts = {"as_of": as_of.isoformat(), "k": k, "test_customers": int(len(holdout.test_rows)),
             "training_customers": int(holdout.train.n_customers), "products": int(holdout.train.n_products)}
    reference = "personal_frequency"
    leader = DEFAULT_MODEL if DEFAULT_MODEL in ndcg else next((m for m in ndcg if m != reference), None)
    if leader is not None and reference in ndcg:
        # the same customers under both lists: a paired bootstrap of the mean difference
        facts["ndcg_vs_personal_frequency"] = {"model": leader, **paired_bootstrap(ndcg[leader], ndcg[reference])}
    return table, facts


def _with_discovery(slots: int) -> WithDiscovery:
    return WithDiscovery(make_model(DEFAULT_MODEL), slots)


def _segments_as_of(transactions: Any, as_of: dt.datetime, config: RunConfig) -> dict:
    """Segment names of the customers as of the snapshot (training data only)."""
    features = _as_pandas(customer_features(transactions, as_of=as_of))
    seg = config.segmentation
    seg = segment_customers(features, method=seg.method, k=seg.k, features=seg.features,
                            random_state=config.random_state, k_range=seg.k_range)
    return dict(zip(seg.assigned["customer_id"], seg.assigned["segment_name"], strict=True))
