"""The output folder of a run: which file holds what, and writing all of it.

``OUT/`` holds the DuckDB store (every table), ``customer_features.csv``,
``quality_report.json``, the segmentation files (``segments.csv``,
``segment_profiles.csv``, ``top_products.csv``, ``distinctive_products.csv``,
``cohorts.csv``, ``segment_migration.csv``, ``segmenter.joblib``), the decisions
(``action_plan.csv``/``.md``, ``targets/<segment>.csv``), the value and
recommendation tables, ``charts/`` and ``report.html``. Every file is written
atomically. :func:`write_run` takes an
:class:`~customerlens.pipeline.analysis.Analysis` (duck-typed: this layer does
not import the pipeline).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from customerlens.core.db import literal, quote
from customerlens.core.db import run as run_sql
from customerlens.core.files import atomic_path, write_text_atomic
from customerlens.core.text import slug
from customerlens.errors import InputError
from customerlens.insights import action_plan_markdown, target_list
from customerlens.outputs.files import formula_safe_sql, neutralise_formulas, write_csv_atomic, write_json_atomic
from customerlens.outputs.folder import disk_problem, folder_lock, staged_folder
from customerlens.outputs.rasters import Rasters
from customerlens.outputs.store import STORE_NAME, write_store, write_tables

#: store table name of each Segmentation attribute
SEGMENTATION_TABLES = {"profiles": "segment_profiles", "top_products": "top_products",
                       "distinctive_products": "distinctive_products", "monthly": "segment_monthly",
                       "box": "segment_box_stats", "cohorts": "cohort_retention", "migration": "segment_migration"}
#: columns of top_products.csv, in order
TOP_PRODUCT_COLUMNS = ["segment_name", "rank", "product_id", "product_name", "revenue", "buyers", "lift",
                       "lift_low", "segment_id", "share_of_segment"]


def segmentation_tables(segmentation: Any) -> dict[str, pd.DataFrame]:
    """The tables of a segmentation that go to the store, by table name."""
    out = {"segments": segmentation.assigned}
    for attribute, name in SEGMENTATION_TABLES.items():
        value = getattr(segmentation, attribute)
        if value is not None:
            out[name] = value
    if segmentation.segmenter is not None:
        out["segment_elbow"] = segmentation.segmenter.elbow_
    return out


def write_segmentation(segmentation: Any, out_dir: Path) -> dict[str, Path]:
    """``segments.csv``, ``segment_profiles.csv``, the product, cohort and migration tables, and the model."""
    seg = segmentation
    files = {"segments": ("segments.csv", seg.assigned)}
    if seg.profiles is not None:
        files["segment_profiles"] = ("segment_profiles.csv", seg.profiles)
    if seg.top_products is not None:
        files["top_products"] = ("top_products.csv", seg.top_products[TOP_PRODUCT_COLUMNS])
        files["distinctive_products"] = ("distinctive_products.csv", seg.distinctive_products)
    if seg.cohorts is not None:
        files["cohorts"] = ("cohorts.csv", seg.cohorts)
    if seg.migration is not None:
        files["segment_migration"] = ("segment_migration.csv", seg.migration)
    written = {key: write_csv_atomic(frame, out_dir / name) for key, (name, frame) in files.items()}
    if seg.segmenter is not None:
        written["segmenter"] = seg.segmenter.save(out_dir / "segmenter.joblib")
    return written


def write_decisions(out_dir: Path, plan: pd.DataFrame, targets: pd.DataFrame, segmentation: Any) -> dict[str, Path]:
    """``action_plan.csv`` / ``.md`` and ``targets/<segment>.csv`` (+ who moved into At-Risk)."""
    outputs = {"action_plan": write_csv_atomic(plan, out_dir / "action_plan.csv"),
               "action_plan_md": write_text_atomic(out_dir / "action_plan.md", action_plan_markdown(plan))}
    folder = out_dir / "targets"
    # the lists come segment by segment (insights.target_list): each file is a slice, not a copy
    ids = targets["segment_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.array([], dtype=int)
    for start, stop in zip(starts, np.r_[starts[1:], len(ids)], strict=True):
        group = targets.iloc[start:stop]
        name = group["segment_name"].iat[0]
        outputs[f"targets_{slug(name)}"] = write_csv_atomic(group, folder / f"{slug(name)}.csv")
    movers = segmentation.movers
    if movers is not None and not movers.empty:
        into_risk = movers[(movers["to_segment"] == "At-Risk") & (movers["from_segment_id"] > 0)
                           & (movers["from_segment_id"] < movers["to_segment_id"])]
        for source, group in into_risk.groupby("from_segment", sort=False):
            name = f"moved_{slug(source)}_to_at-risk"
            listed = targets[targets["customer_id"].isin(set(group["customer_id"]))]
            outputs[f"targets_{name}"] = write_csv_atomic(listed, folder / f"{name}.csv")
    return outputs


def write_relation_csv(con: Any, relation: Any, path: Path, order_by: str | None = None) -> Path:
    """Write a DuckDB relation as CSV, atomically, in ``order_by`` order.

    When ``order_by`` is None the rows are written as they are (a stored table already in the
    order wanted: DuckDB keeps it).
    """
    # text columns (customer ids) with formulas neutralised, numbers as they are
    select = ", ".join(formula_safe_sql(quote(name)) + f" AS {quote(name)}" if str(kind) == "VARCHAR"
                       else quote(name) for name, kind in zip(relation.columns, relation.types, strict=True))
    with atomic_path(path) as tmp:
        con.register("_cl_csv", relation)
        try:
            order = f" ORDER BY {order_by}" if order_by else ""
            run_sql(con, f"COPY (SELECT {select} FROM _cl_csv{order}) TO {literal(tmp)} (HEADER, DELIMITER ',')")
        finally:
            con.unregister("_cl_csv")
    return path


def quality_rows(report: Any) -> pd.DataFrame:
    """The quality report as the store's ``quality_report`` table (rules in order)."""
    frame = report.to_frame()
    frame.insert(0, "position", range(1, len(frame) + 1))
    return frame


def write_campaigns(out_dir: Path, lift: pd.DataFrame, sentences: list[str], *, payload: dict | None = None,
                    charts: bool = False, balance: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write ``campaign_lift.csv``, ``campaign_summary.txt`` (or ``.json`` with ``payload``) and the charts.

    With ``charts``, the charts are ``charts/campaign_lift_<outcome>.png|svg``; with ``balance``
    (a send list's covariate balance), ``campaign_balance.csv``.
    """
    path = out_dir / "campaign_lift.csv"
    with atomic_path(path) as tmp:
        neutralise_formulas(lift).to_csv(tmp, index=False)
    outputs = {"campaign_lift": path}
    if balance is not None:
        outputs["campaign_balance"] = write_csv_atomic(balance, out_dir / "campaign_balance.csv")
    if payload is not None:
        outputs["campaign_summary"] = write_json_atomic(payload, out_dir / "campaign_summary.json")
    else:
        outputs["campaign_summary"] = write_text_atomic(out_dir / "campaign_summary.txt", "\n".join(sentences) + "\n")
    if charts:
        from customerlens.outputs.charts import campaign_lift_chart, save_chart

        for outcome in dict.fromkeys(lift["outcome"]):
            saved = save_chart(campaign_lift_chart(lift, outcome), out_dir / "charts" / f"campaign_lift_{outcome}")
            outputs[f"chart_{outcome}"] = saved["png"]
    return outputs


def write_value(out_dir: Path, table: pd.DataFrame, payload: dict, holdout: dict | None = None) -> dict[str, Path]:
    """``value.csv``, ``value.json`` and, with a holdout report, its charts (``customerlens value --out``)."""
    from customerlens.outputs.figures import holdout_charts, save_charts

    outputs = {"value": write_csv_atomic(table, out_dir / "value.csv"),
               "value_json": write_json_atomic(payload, out_dir / "value.json")}
    if holdout is not None:
        outputs.update(save_charts(holdout_charts(holdout), out_dir / "charts", key_formats=True))
    return outputs


def write_run(analysis: Any, out_dir: Path, *, progress: Callable[[str], None] = lambda stage: None
              ) -> dict[str, Path]:
    """Write everything ``analysis`` holds into ``out_dir`` as one step; returns the written paths by name.

    The folder is built beside ``out_dir`` and swapped in whole at the end, under
    the folder's lock (:mod:`customerlens.outputs.folder`): a run that stops at any
    moment leaves the previous folder as it was.
    """
    out_dir = Path(out_dir)
    with folder_lock(out_dir), staged_folder(out_dir) as staging:
        previous = out_dir / STORE_NAME
        try:
            written = _write_files(analysis, staging, progress, previous if previous.is_file() else None)
        except Exception as exc:
            problem = disk_problem(exc)
            if problem is None:
                raise
            # a full disk, a quota or a file size limit while writing: the previous folder stays as it was
            raise InputError(f"{out_dir}: the outputs cannot be written ({problem}); the previous "
                             "results are unchanged") from None
    return {name: out_dir / path.relative_to(staging) for name, path in written.items()}


def first_store_tables(ingested: Any, table: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The store's first tables (the lines, the excluded lines, the features, the quality report) and those presorted.

    DuckDB's lines are in input order since the cleaning (Spark's, taken partition by partition, are
    not), the features by customer.
    """
    tables = {
        "transactions": table.transactions,
        "excluded_lines": ingested.cleaned.excluded,
        "customer_features": table.features,
        "quality_report": quality_rows(ingested.cleaned.report),
    }
    presorted = ("customer_features",) + (("transactions", "excluded_lines") if table.spark_lines is None else ())
    return tables, presorted


def _previous_tables(con, previous: Path | None) -> dict[str, Any]:
    """The previous run's customers (segment, spend, churn risk, value) and its date, for "what changed".

    ``previous``: the store the last run into the same folder wrote (about to be replaced). Read
    inside DuckDB (attached read-only, never through pandas: millions of customers at scale). An
    unreadable or older store without segments is skipped: it only feeds a comparison.
    """
    if previous is None:
        return {}
    import duckdb

    try:
        run_sql(con, f"ATTACH {literal(previous)} AS _cl_previous (READ_ONLY)")
    except duckdb.Error:
        return {}
    tables = {r[0]: {c[0] for c in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = '_cl_previous' "
        "AND table_name = ?", [r[0]]).fetchall()} for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = '_cl_previous'").fetchall()}
    if not {"customer_id", "segment_id", "segment_name"} <= tables.get("segments", set()) or "run" not in tables:
        run_sql(con, "DETACH _cl_previous")
        return {}
    value = tables.get("customer_value", set())
    scores = ", ".join(f"v.{c}" if c in value else f"CAST(NULL AS DOUBLE) AS {c}"
                       for c in ("churn_risk", "value_at_risk", "clv_12m"))
    spend = "s.monetary" if "monetary" in tables["segments"] else "CAST(NULL AS DOUBLE) AS monetary"
    joins = " LEFT JOIN _cl_previous.customer_value v USING (customer_id)" if value else ""
    return {
        "previous_customers": con.sql(f"SELECT s.customer_id, s.segment_id, s.segment_name, {spend}, {scores} "
                                      f"FROM _cl_previous.segments s{joins}"),
        "previous_run": con.sql("SELECT created_at, json_extract_string(record, '$.parameters.as_of_used') AS as_of "
                                "FROM _cl_previous.run"),
    }


def _write_files(analysis: Any, out_dir: Path, progress: Callable[[str], None],
                 previous: Path | None = None) -> dict[str, Path]:
    """Every file of the run into ``out_dir`` (the staging folder); ``previous``: the last run's store."""
    out_dir.mkdir(parents=True, exist_ok=True)
    # the store's first tables, written beside the insights (small runs; else None): waited for before
    # anything here uses the connection again
    early = analysis._early_store
    started = early.result() if early is not None else None
    # the charts' PNGs: drawn while the recommender's worker process still learns, the rest by the worker
    # once it is free, beside the lists (Rasters); all here without a worker. The worker then writes the
    # report: it imports the report's modules first
    report_modules = ("customerlens.outputs.report", "customerlens.outputs.charts",
                      "customerlens.outputs.report.build:warm")
    rasters = Rasters(preload=report_modules if analysis.config.output.report else ())
    try:
        # a thread for a file written while DuckDB writes the store (both mostly outside Python's lock)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="customerlens-files") as beside:
            return _write_with(analysis, out_dir, progress, previous, early, started, rasters, beside)
    finally:
        rasters.close()


#: up to this many list rows, ``recommendations.csv`` is written in a thread while the store is written
LISTS_BESIDE_ROWS = 2_000_000


def _write_with(analysis: Any, out_dir: Path, progress: Callable[[str], None], previous: Path | None,
                early: Any, started: Path | None, rasters: Rasters, beside: ThreadPoolExecutor) -> dict[str, Path]:
    """:func:`_write_files` once the early store is waited for; ``rasters``: the charts' PNGs to draw.

    ``beside``: a thread that writes ``recommendations.csv`` while the store's last tables are written.

    What does not need the recommendations (most tables and files) is written before the run waits
    for its recommender's worker process (:meth:`Analysis.complete`), while that still learns: after
    it, only the lists, their tables and files, the run record and the report are left to write.
    """
    from customerlens.outputs.figures import save_charts

    config = analysis.config
    con = analysis.con
    outputs: dict[str, Path] = {}
    specs: dict[str, dict] = {}  # the charts' Vega-Lite specs, by stem: the report draws the same charts
    if config.output.charts:
        from customerlens.outputs import charts, fonts

        progress("charts")
        made = {stem: charts.spec(chart) for stem, chart in analysis.charts.items()}
        fonts.settle_for(made.values())  # every chart's text, before the first is drawn
        value_stems = {"p_alive_by_segment", "value_by_segment", "value_tracking"}
        outputs.update(save_charts({k: v for k, v in made.items() if k not in value_stems}, out_dir / "charts",
                                   rasters=rasters, specs=specs))
        outputs.update(save_charts({k: v for k, v in made.items() if k in value_stems}, out_dir / "charts",
                                   key_formats=True, rasters=rasters, specs=specs))
        if analysis._pending is None:  # no worker learning beside: the PNGs now, in the charts' time
            rasters.finish()
    # the store: DuckDB stays at half its limit (pandas still holds the customer tables)
    progress("store")
    # the first tables are in the early store's file already, when there is one
    first, presorted = first_store_tables(analysis.ingested, analysis.table) if early is None else ({}, ())
    tables = {**first, **_settled_tables(analysis)}
    attached = _previous_tables(con, previous)
    try:
        if started is not None:  # into the early store's file now: the recommendations and the record join it
            write_tables(con, started, {**tables, **attached})
            tables = {}
            attached = _detach_previous(con, attached)
        files = _settled_files(analysis, out_dir)
        if analysis._pending is not None:  # a recommender still learning in its worker process (PNGs drawn meanwhile)
            analysis.complete(rasters)  # the recommend stage
            progress("store")  # resumed
        recommendations = analysis.recommendations
        lists_file = write_lists = None
        if recommendations is not None:
            tables["recommendations"] = recommendations
            write_lists = functools.partial(write_csv_atomic, recommendations, out_dir / "recommendations.csv",
                                            float_format="%.6g")
            if len(recommendations) <= LISTS_BESIDE_ROWS and not config.engine.memory_limit:
                # the same bytes as written after the store, 0.15 s sooner on Online Retail: DuckDB writes
                # the store without Python's lock. Not at scale, or under a memory limit: one at a time
                lists_file = beside.submit(write_lists)
        rasters.finish()  # the worker's PNGs (drawn beside the lists) in before the record, which holds their time
        if rasters.worker_stats is not None:
            analysis.clock.annotate(worker=[rasters.worker_stats])
        outputs["store"] = write_store(out_dir / STORE_NAME, con, {**tables, **attached}, analysis.record(),
                                       presorted=presorted, started=started)
    finally:
        _detach_previous(con, attached)
        analysis.discard_early_store()  # its file is the store now, or the run failed
    report = None
    if config.output.report:  # from the store: by the worker, when it is still there, while the tables are written
        from customerlens.outputs.report import REPORT_CHARTS, write_report

        report = rasters.beside(write_report, outputs["store"], out_dir / "report.html",
                                {stem: specs[stem] for stem in REPORT_CHARTS.values() if stem in specs})
    outputs.update(files)
    # the target lists last, when the store is written: one more customer table at a time, not two
    value = analysis.value
    targets = target_list(analysis.segmentation.assigned, value.table if value is not None else None, recommendations)
    outputs.update(write_decisions(out_dir, analysis.action_plan, targets, analysis.segmentation))
    del targets
    if lists_file is not None:
        outputs["recommendations"] = lists_file.result()  # its exception, if any, is raised here
    elif write_lists is not None:
        outputs["recommendations"] = write_lists()
    if report is not None:
        progress("report")
        outputs["report"] = report()
    return outputs


def _settled_tables(analysis: Any) -> dict[str, Any]:
    """The store's tables of ``analysis`` that do not need the recommendations (beyond the first tables)."""
    value = analysis.value
    return {
        **segmentation_tables(analysis.segmentation),
        **({"customer_value": value.table, "segment_value": value.by_segment} if value is not None else {}),
        "action_plan": analysis.action_plan,
        **({"campaign_lift": analysis.campaigns} if analysis.campaigns is not None else {}),
        **({"campaign_balance": analysis.campaign_balance} if analysis.campaign_balance is not None else {}),
    }


def _settled_files(analysis: Any, out_dir: Path) -> dict[str, Path]:
    """The files of ``analysis`` that do not need the recommendations: features, quality, segments, value, campaigns."""
    con, config, value = analysis.con, analysis.config, analysis.value
    outputs = {"customer_features": write_relation_csv(con, analysis.table.features, out_dir / "customer_features.csv"),
               "quality_report": write_json_atomic(analysis.ingested.quality_report(config.output.record_paths),
                                                   out_dir / "quality_report.json"),
               **write_segmentation(analysis.segmentation, out_dir)}
    if value is not None:
        outputs["value"] = write_csv_atomic(value.table, out_dir / "value.csv")
        outputs["segment_value"] = write_csv_atomic(value.by_segment, out_dir / "segment_value.csv")
    if analysis.campaigns is not None:
        outputs.update(write_campaigns(out_dir, analysis.campaigns, analysis.campaign_summary or [],
                                       balance=analysis.campaign_balance))
    return outputs


def _detach_previous(con: Any, attached: dict[str, Any]) -> dict[str, Any]:
    """Detach the previous run's store (:func:`_previous_tables`) if ``attached`` reads it; returns ``{}``."""
    if attached:
        run_sql(con, "DETACH _cl_previous")
    return {}
