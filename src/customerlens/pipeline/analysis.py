"""The notebook-first entry point: every stage in memory, one object to look at, ``save`` to write.

>>> import customerlens as cl
>>> analysis = cl.analyze("sales.csv", as_of="2011-09-09")    # doctest: +SKIP
>>> analysis.segment_profiles                                  # doctest: +SKIP
>>> analysis.charts["elbow"]                                   # doctest: +SKIP
>>> analysis.save("out/run")                                   # doctest: +SKIP

:func:`analyze` writes no file; :meth:`Analysis.save` writes exactly what
``customerlens run`` writes (``run`` is ``analyze`` + ``save``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from customerlens.cleaning.rules import QualityReport
from customerlens.core.frames import as_pandas
from customerlens.errors import ConfigError
from customerlens.insights.segmentation import Segmentation
from customerlens.models.value.config import ValueResult
from customerlens.pipeline import stages
from customerlens.pipeline.config import RunConfig
from customerlens.pipeline.ingestion import Ingested, Progress, ingest, no_progress

if TYPE_CHECKING:
    from customerlens.models.recommend.service import Recommendations
    from customerlens.pipeline.clock import StageClock

#: Stage names reported to the progress callback, in order (``analyze`` to ``recommend``, then ``save``).
STAGES = ("load", "clean", "features", "value", "segment", "insights", "recommend", "charts", "store", "report")


@dataclass
class Analysis:
    """Everything one analysis found, in memory; :meth:`save` writes it as ``customerlens run`` does.

    Attributes
    ----------
    config
        The settings it ran with.
    as_of
        The snapshot: only lines before it count.
    customers
        Customers with features.
    quality
        The data-quality report: what each cleaning rule removed (``.to_frame()``, ``.as_dict()``).
    segmentation
        The segments and their insights (profiles, products, trends, cohorts, migration).
    value
        P(alive), churn risk and CLV per customer (None when switched off or skipped).
    recommendations
        Each customer's top products with reasons (None when switched off or without products).
    action_plan
        One row per segment: who they are, what to do, what is at stake.
    campaigns
        Campaign lift by segment, when a campaign table was given.
    """

    config: RunConfig
    ingested: Ingested
    table: stages.CustomerTable
    segmentation: Segmentation
    value: ValueResult | None
    value_record: dict | None
    recommendations: pd.DataFrame | None
    recommender: Recommendations | None
    action_plan: pd.DataFrame
    campaigns: pd.DataFrame | None = None
    campaign_summary: list[str] | None = None
    campaign_balance: pd.DataFrame | None = None  # a send list's covariate balance (observational campaigns)
    clock: Any = None  # the StageClock that timed the stages (pipeline.clock)
    recommendations_skipped: str | None = None
    out_dir: Path | None = None
    outputs: dict[str, Path] = field(default_factory=dict)
    _charts: dict[str, Any] | None = field(default=None, repr=False)
    #: work still running in a worker process (the recommender), taken by :meth:`complete`
    _pending: Any = field(default=None, repr=False)
    #: the store's first tables being written in a thread (outputs.store.EarlyStore), for :meth:`save` into store_to
    _early_store: Any = field(default=None, repr=False)

    # -- what a notebook looks at
    @property
    def as_of(self) -> dt.datetime:
        """The snapshot date."""
        return self.table.as_of

    @property
    def customers(self) -> int:
        """Customers with features."""
        return self.table.customers

    @property
    def quality(self) -> QualityReport:
        """What each cleaning rule removed, lines and revenue."""
        return self.ingested.cleaned.report

    @property
    def schema(self) -> dict:
        """How the input was read: layout, column mapping, date format."""
        return self.ingested.loaded.schema_report()

    @property
    def features(self) -> pd.DataFrame:
        """One row of behaviour features per customer, by customer id."""
        from customerlens.core.db import to_pandas

        return to_pandas(self.table.features)

    @property
    def segments(self) -> pd.DataFrame:
        """Every customer's segment with its features and RFM scores."""
        return self.segmentation.assigned

    @property
    def segment_profiles(self) -> pd.DataFrame:
        """One row per segment: size, revenue share, medians, strategy."""
        return self.segmentation.profiles

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the clean lines."""
        return self.ingested.con

    @property
    def charts(self) -> dict[str, Any]:
        """Every chart of the analysis as an Altair chart, by file stem (displays inline in Jupyter)."""
        if self._charts is None:
            from customerlens.outputs.figures import segmentation_charts, value_charts

            made = segmentation_charts(self.segmentation)
            if self.value is not None:
                from customerlens.models.value.service import tracking

                weekly = self.value.weekly_tracking
                if weekly is None:
                    weekly = tracking(self.table.transactions, self.value)
                made.update(value_charts(self.value, self.segmentation.assigned, weekly))
            self._charts = made
        return self._charts

    def record(self) -> dict:
        """The run record: input, settings, versions, schema, quality and what each stage decided."""
        paths = self.config.output.record_paths
        report = self.ingested.quality_report(paths)
        return {
            "input": self.ingested.loaded.source.as_dict(paths),
            "parameters": {**self.config.as_dict(), "as_of_used": self.as_of.isoformat()},
            "versions": versions(),
            "schema": report["schema"],
            "quality": report["quality"],
            "customers_with_features": self.customers,
            "segmentation": self.segmentation.record(),
            **({"value": self.value_record} if self.value_record is not None else {}),
            "recommendations": self._recommendations_record(),
            # the stages finished when the record is taken (a run writes it in its store stage)
            **({"stages": list(self.clock.stages)} if self.clock is not None else {}),
        }

    def _recommendations_record(self) -> dict:
        """Which model wrote which lists for how many customers, or why there are none."""
        from customerlens.models.recommend.service import LISTS

        if self.recommendations is None:
            return {"skipped": self.recommendations_skipped or "switched off"}
        recs = self.recommendations
        model = self.recommender.model.name if self.recommender is not None else "als (Spark MLlib)"
        note = getattr(self.recommender, "note", "")
        present = set(recs["list"].unique())
        return {"model": model, "lists": [name for name in LISTS if name in present],
                "customers": int(recs["customer_id"].nunique()), "rows": int(len(recs)),
                **({"note": note} if note else {})}

    # -- writing
    def save(self, out_dir: str | Path, *, progress: Progress = no_progress) -> dict[str, Path]:
        """Write the output folder exactly as ``customerlens run`` does; returns the written paths by name."""
        from customerlens.outputs.layout import write_run

        out_dir = Path(out_dir)
        if self.clock is not None and progress is not self.clock:
            self.clock.progress, progress = progress, self.clock  # the writing's stages are timed too
        self.outputs = write_run(self, out_dir, progress=progress)  # refuses an out_dir that is a file
        self.out_dir = out_dir
        if self.clock is not None:
            self.clock.finish()
        return self.outputs

    def complete(self, rasters: Any = None) -> Analysis:
        """Wait for what still runs in the worker process (the recommender) and take its results; returns self.

        Only an analysis from :func:`start_analysis` can have such work; :func:`analyze`'s is complete.
        ``rasters``: charts' PNGs still to draw (:class:`~customerlens.outputs.rasters.Rasters`), drawn
        here while the worker learns, the rest handed to it once it is free.
        """
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.take(self, rasters)
        return self

    def close(self) -> None:
        """Close the DuckDB connection (and its spill folder)."""
        if self._pending is not None:  # the worker process stops with it
            self._pending.worker.close()
            self._pending = None
        self.discard_early_store()
        self.ingested.con.close()

    def discard_early_store(self) -> None:
        """Wait for the store's first tables if they are still being written, and remove them."""
        if self._early_store is not None:
            early, self._early_store = self._early_store, None
            early.discard()

    def __enter__(self) -> Analysis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        seg = self.segmentation
        parts = [f"customers={self.customers:,}", f"as_of={self.as_of:%Y-%m-%d}", f"segments={seg.k} ({seg.method})",
                 f"value={'yes' if self.value is not None else 'no'}",
                 f"recommendations={len(self.recommendations):,}" if self.recommendations is not None
                 else "recommendations=no"]
        if self.out_dir is not None:
            parts.append(f"saved to {self.out_dir}")
        return f"<Analysis {', '.join(parts)}>"

    def summary(self) -> pd.DataFrame:
        """One line per segment: name, size, revenue share, medians and strategy."""
        return self.segmentation.summary()

    def _repr_html_(self) -> str:
        seg = self.segmentation
        rows = "".join(
            f"<tr><td>{html.escape(str(r.segment_name))}</td><td style='text-align:right'>{r.customers:,}</td>"
            f"<td style='text-align:right'>{r.share_revenue:.0%}</td><td>{html.escape(str(r.strategy))}</td></tr>"
            for r in self.summary().itertuples(index=False))
        facts = [f"{self.customers:,} customers as of {self.as_of:%Y-%m-%d}",
                 f"{self.quality.kept_lines:,} of {self.quality.input_lines:,} lines kept",
                 f"{seg.k} segments ({seg.method}): {html.escape(seg.reason)}"]
        if self.value is not None:
            totals = self.value.record["totals"]
            facts.append(f"value at risk {totals['value_at_risk']:,.0f}")
        if self.recommendations is not None:
            facts.append(f"{len(self.recommendations):,} recommendations")
        items = "".join(f"<li>{fact}</li>" for fact in facts)
        return (f"<div class='customerlens-analysis'><strong>customerlens analysis</strong><ul>{items}</ul>"
                "<table><thead><tr><th>segment</th><th>customers</th><th>revenue</th><th>what to do</th></tr>"
                f"</thead><tbody>{rows}</tbody></table></div>")


def versions() -> dict[str, str]:
    """Versions of customerlens, Python and the data libraries, for the run record.

    Read from the installed packages' metadata: importing polars and pyarrow only to ask them would
    cost a run a fifth of a second.
    """
    from importlib.metadata import PackageNotFoundError, version

    from customerlens._version import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:  # pragma: no cover - every one of them is a dependency
            return "not installed"

    return {"customerlens": __version__, "python": platform.python_version(), "duckdb": duckdb.__version__,
            **{name: installed(name) for name in ("narwhals", "numpy", "pandas", "polars", "pyarrow")}}


def analyze(
    data: Any,
    config: RunConfig | None = None,
    *,
    campaigns: Any = None,
    campaign_options: dict | None = None,
    progress: Progress = no_progress,
    **options: Any,
) -> Analysis:
    """Run every stage on ``data`` in memory and return an :class:`Analysis`; no file is written.

    Parameters
    ----------
    data
        A file (CSV, Parquet, Excel, DuckDB) or a pandas, Polars, DuckDB or PySpark frame.
    config
        The settings; or give them as flat keywords (``options``), see
        :meth:`RunConfig.from_options <customerlens.pipeline.config.RunConfig.from_options>`.
    campaigns
        Optional campaign table (file or frame, one row per customer and campaign);
        its lift is measured per segment of this analysis (``customer_col`` names the
        customer column in ``campaign_options``).
    campaign_options
        Keywords of :func:`customerlens.models.campaigns.campaign_lift` (``outcomes``,
        ``group_col``, ``control``, ``customer_col``, ...).
    progress
        Called with each stage's name as it starts (see :data:`STAGES`).
    **options
        Flat settings, e.g. ``k=5``, ``as_of="2011-09-09"``, ``top_n=0``.
    """
    from customerlens.pipeline.clock import clocked

    progress = clocked(progress)  # each stage's seconds and peak memory, for the run record
    analysis = start_analysis(data, settings(config, options), progress=progress, campaigns=campaigns,
                              campaign_options=campaign_options)
    analysis.complete()
    progress.finish()  # the last stage (recommend, with the plan and campaigns) ends here
    return analysis


def settings(config: RunConfig | None, options: dict) -> RunConfig:
    """``config``, or one from flat ``options`` (:meth:`RunConfig.from_options`); not both."""
    if config is not None and options:
        raise ConfigError(f"give a config or options ({', '.join(sorted(options))}), not both; "
                          "change a config with config.replace(...)", parameter=sorted(options)[0])
    return config if config is not None else RunConfig.from_options(**options)


def start_analysis(data: Any, config: RunConfig, *, progress: StageClock, campaigns: Any = None,
                   campaign_options: dict | None = None, store_to: Path | None = None) -> Analysis:
    """:func:`analyze`'s stages, but the recommender may still be fitting in its worker process when it returns.

    :meth:`Analysis.complete` waits for it: ``customerlens run`` draws the charts first. ``store_to``:
    the output folder the analysis will be saved to (its lock held), for :func:`_early_store`.
    """
    worker = _worker(config)  # started now: its imports overlap loading and cleaning
    importer = _import_beside()
    try:
        analysis = _analyze(data, config, progress, worker, campaigns, campaign_options, importer, store_to)
    except BaseException:
        if worker is not None:
            worker.close()
        raise
    if analysis._pending is None and worker is not None:
        worker.close()  # not needed after all (no products, Spark's ALS)
    return analysis


def _worker(config: RunConfig):
    """A worker process for the recommender: with two processes (``EngineConfig.processes``) on DuckDB."""
    from customerlens.core.worker import Worker

    if config.recommend is None or config.engine.name != "duckdb" or config.engine.processes() < 2:
        return None
    # one thread there and one here (:func:`_one_thread_beside`): two processes of two threads
    # each on two cores stall each other's OpenMP and BLAS (the run took longer than on one)
    return Worker(threads=1, preload=("customerlens.models.recommend.lean_lightgbm",
                                      "customerlens.models.recommend.service", "customerlens.models.recommend.twostage"))


def _one_thread_beside(worker):
    """While a worker process computes beside this one: OpenMP and BLAS here on one thread (threadpoolctl).

    Two processes on two cores with two threads each stall each other's OpenMP barriers (K-means
    took three times as long); K-means and the value models give the same numbers on one thread.
    """
    if worker is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _middle(table, lines, config, ingested, progress, early: Callable[[], None]):
    """Value, segments and their insights: what runs while a worker fits the recommender.

    ``early`` is called once DuckDB has no more work here (:func:`_early_store`).
    """
    progress("value")
    value = stages.value_stage(table.transactions, table.as_of, config)
    progress("segment")
    segmentation = stages.segment_stage(table, config, ingested.con, value.result)
    stages.segment_value(value.result, segmentation)
    if config.insights is not None:
        progress("insights")
        stages.insights_stage(segmentation, lines, table, config, then=early)
    else:
        early()
    return value, segmentation


#: Up to this many clean lines a run writes its store's first tables beside the insights (:func:`_early_store`)
EARLY_STORE_LINES = 2_000_000


def _early_store(ingested: Ingested, table: stages.CustomerTable, config: RunConfig, store_to: Path | None):
    """The store's first tables (the lines, the excluded lines, the features) written in a thread, or None.

    On DuckDB, up to :data:`EARLY_STORE_LINES` clean lines and without a memory limit: the copy of the
    lines into the store file (DuckDB's work) then runs while this thread computes the segment insights
    (pandas'), on the other core. Larger runs write them in turn at the save, holding less memory at once.
    """
    from customerlens.outputs.folder import early_store_path
    from customerlens.outputs.layout import first_store_tables
    from customerlens.outputs.store import EarlyStore

    if (store_to is None or config.engine.name != "duckdb" or config.engine.memory_limit
            or ingested.cleaned.report.kept_lines > EARLY_STORE_LINES):
        return None
    tables, presorted = first_store_tables(ingested, table)
    return EarlyStore(ingested.con, early_store_path(Path(store_to).absolute()), tables, presorted)


#: what the stages after the features import (scikit-learn for K-means, kneed, scipy for the value
#: models): nothing the loading, cleaning and features import
MODELLING = ("sklearn.cluster", "sklearn.metrics", "sklearn.preprocessing", "kneed", "scipy.optimize",
             "scipy.special", "scipy.stats")


def _import_beside():
    """A thread importing :data:`MODELLING` while DuckDB loads and cleans (DuckDB works without Python's lock).

    Half a second of `customerlens segment` on Online Retail (median of 5: 8.73 -> 8.26 s). Joined
    before the stages that use them, so that no two threads import the same module.
    """
    import threading

    def work() -> None:
        import importlib

        for name in MODELLING:
            try:
                importlib.import_module(name)
            except ImportError:  # pragma: no cover - the stage that needs it says so
                pass

    thread = threading.Thread(target=work, name="customerlens-imports", daemon=True)
    thread.start()
    return thread


def _analyze(data, config, progress, worker, campaigns, campaign_options, importer, store_to=None) -> Analysis:
    ingested = ingest(data, config, progress=progress)
    table = None
    early = None
    try:
        progress("features")
        lines = None
        if worker is not None and stages.worker_can_start(ingested, config):
            # the worker learns the recommender from the clean lines: it starts now, beside the features
            lines, as_of = stages.start_recommendations(worker, ingested, config)
            table = stages.features_stage(ingested, as_of)
        else:
            worker = None
            table = stages.features_stage(ingested)
        importer.join()  # before any stage imports one of them itself
        if lines is None:
            lines = stages.insight_lines(table, config)
        def start_early() -> None:
            nonlocal early
            if campaigns is None:  # the campaigns read the lines through DuckDB after the plan
                early = _early_store(ingested, table, config, store_to)

        with _one_thread_beside(worker):
            value, segmentation = _middle(table, lines, config, ingested, progress, start_early)
        if worker is None:
            progress("recommend")
            recs = stages.recommend_stage(table, lines, segmentation, config,
                                          ingested.loaded.mapping.has_products, ingested.con)
        else:
            recs = stages.RecommendStage()
        plan = stages.plan_stage(segmentation, value.result)
        analysis = Analysis(config=config, ingested=ingested, table=table, segmentation=segmentation,
                            value=value.result, value_record=value.record, recommendations=recs.table,
                            recommender=recs.fitted, action_plan=plan, recommendations_skipped=recs.skipped,
                            clock=progress, _early_store=early)
        early = None  # the analysis holds it now
        if worker is not None:
            analysis._pending = _Pending(worker, lines)
        if campaigns is not None:
            _add_campaigns(analysis, campaigns, campaign_options or {})
        return analysis
    except BaseException:
        # a failed analysis leaves nothing behind: its connection, and with it DuckDB's spill folder, goes
        if early is not None:
            early.discard()
        ingested.con.close()
        raise


class _Pending:
    """What a run's worker process still owes: the recommender it learns (the lines stay until it is taken)."""

    def __init__(self, worker: Any, lines: pd.DataFrame):
        self.worker, self.lines = worker, lines

    def take(self, analysis: Analysis, rasters: Any = None) -> None:
        """The recommender's final weights here, its ranker from the worker, then both lists.

        ``rasters`` (PNGs to draw): some here while the worker learns; the worker, free then, takes the
        rest (and ends when they are drawn); else it ends now.
        """
        handed = []

        def freed() -> None:  # the worker has answered: the PNGs left are its to draw, beside the lists
            handed.append(rasters.hand_over(self.worker))

        try:
            analysis.clock("recommend")
            recs = stages.finish_recommendations(self.worker, self.lines, analysis.table, analysis.segmentation,
                                                 analysis.config, meanwhile=rasters.meanwhile if rasters else None,
                                                 freed=freed if rasters else None)
            analysis.clock.annotate(worker=[{"task": "recommender", **recs.worker}])
        finally:
            if not any(handed):
                self.worker.close()
        analysis.recommendations, analysis.recommender = recs.table, recs.fitted


def _add_campaigns(analysis: Analysis, table: Any, options: dict) -> None:
    """Lift of each campaign by this analysis's segments.

    A table with arms (``group_col``, default ``group``) is a randomised test; one without is a
    send list, compared with this analysis's own transactions and segments (observational).
    """
    from customerlens.io.campaign_table import read_campaign_table
    from customerlens.models.campaigns import campaign_lift, campaign_summary

    options = dict(options)
    # a table with outcomes is a randomised test (campaign_lift reads it); without, look for its arms
    frame, source = (None, None) if "outcomes" in options else \
        read_campaign_table(table, sheet=options.get("sheet"), encoding=options.get("encoding", "utf-8"))
    if frame is not None and options.get("group_col", "group") not in frame.columns:
        from customerlens.pipeline.campaigns import send_frame, sends_on_lines

        sends = send_frame(frame, source, {"customer": options.get("customer_col"),
                                           "campaign": options.get("campaign_col"),
                                           "send_date": options.get("send_date_col")})
        lines = as_pandas(analysis.ingested.cleaned.transactions)
        result = sends_on_lines(sends, lines, analysis.segmentation.segmenter,
                                **{k: options[k] for k in ("window_days", "currency", "confidence", "min_n",
                                                           "min_responders") if k in options})
        analysis.campaigns, analysis.campaign_summary = result.lift, result.sentences
        analysis.campaign_balance = result.balance
        return
    segments = analysis.segments[["customer_id", "segment_name"]]
    if options.get("customer_col") is None:
        raise ConfigError("campaign_options needs customer_col: the campaign table's customer column",
                          parameter="campaign_options.customer_col")
    lift = campaign_lift(table, segments=segments, **options)
    money = [lift.attrs["revenue_outcome"]] if lift.attrs.get("revenue_outcome") else []
    analysis.campaigns = lift
    analysis.campaign_summary = campaign_summary(lift, money_outcomes=money)
