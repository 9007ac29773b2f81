"""Build the HTML report from a store: read the tables, draw the charts, render the template.

Everything the report shows comes from the store written by ``customerlens run``
(tables that a run did not produce are simply left out, with their section);
the charts are those of :mod:`customerlens.outputs.charts`, embedded as Vega-Lite specs
and drawn in the browser by the vega bundle of vl-convert, inlined once.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from customerlens.core.files import write_text_atomic
from customerlens.core.text import slug
from customerlens.errors import CustomerLensError
from customerlens.outputs.store import StoreReader

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"

#: Section id to heading, in the order of the report. Sections whose tables are
#: not in the store (value, recommendations, campaigns, ...) are left out.
SECTION_TITLES = {
    "glance": "At a glance",
    "quality": "Data quality: what was cleaned and why",
    "choosing-k": "How many segments: choosing k",
    "overview": "Segment overview",
    "distribution": "Customers and revenue by segment",
    "compared": "Segments compared",
    "spending": "Spending behaviour",
    "trends": "Trends over time",
    "cohorts": "Cohorts: who keeps buying",
    "migration": "Segment migration",
    "products": "Top products by segment",
    "value": "Customer value and churn",
    "recommendations": "Recommendation examples",
    "campaigns": "Campaign results",
    "action-plan": "Action plan",
    "about": "About this run",
}

#: Caps that keep the file small whatever the size of the data.
MAX_EXAMPLE_CUSTOMERS = 5
MAX_RECOMMENDATIONS_SHOWN = 5
MAX_CAMPAIGN_ROWS = 60
MAX_CAMPAIGN_CHARTS = 4
MAX_TARGET_FILES = 20


# -- small value types the template renders ------------------------------------------------------

@dataclass
class Cell:
    """One table cell: the text shown and, for numbers, the value it sorts by."""

    text: str
    value: float | None = None
    numeric: bool = False


@dataclass
class Table:
    """A sortable table: headings (numeric ones right-aligned and sorted as numbers) and rows of cells."""

    columns: list[tuple[str, bool]]
    rows: list[list[Cell]]
    caption: str = ""
    swatches: list[str] = field(default_factory=list)
    wide_last: bool = False


@dataclass
class ChartSpec:
    """A chart to draw: the id of its div and its Vega-Lite spec as safe inline JSON."""

    id: str
    spec: Markup
    title: str


# -- formatting ----------------------------------------------------------------------------------

def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _num(value: Any, digits: int = 0) -> Cell:
    if _missing(value):
        return Cell("–", None, True)
    number = float(value)
    return Cell(f"{number:,.{digits}f}", number, True)


def _pct(value: Any, digits: int = 0) -> Cell:
    if _missing(value):
        return Cell("–", None, True)
    number = float(value)
    return Cell(f"{number:.{digits}%}", number, True)


def _text(value: Any) -> Cell:
    return Cell("" if _missing(value) else str(value))


def fmt_num(value: Any, digits: int = 0) -> str:
    """``1,234`` style (``–`` when missing)."""
    return _num(value, digits).text


def fmt_pct(value: Any, digits: int = 0) -> str:
    """``12%`` style (``–`` when missing)."""
    return _pct(value, digits).text


def script_json(obj: Any) -> Markup:
    """JSON that is safe inside ``<script type="application/json">`` (no ``<``, ``>`` or ``&`` left)."""
    text = json.dumps(obj, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


# -- reading the store ---------------------------------------------------------------------------

# -- charts --------------------------------------------------------------------------------------

#: the report's charts that a run draws too, and their stems there (``charts/<stem>.svg``): the same
#: function of the same table, before the store (in memory) and after it (read back)
REPORT_CHARTS = {"elbow": "elbow", "distribution": "distribution", "box-plots": "box_plots", "spending": "spending",
                 "trends": "trends", "cohorts": "cohorts", "migration": "segment_migration",
                 "top-products": "top_products", "distinctive-products": "distinctive_products",
                 "value-by-segment": "value_by_segment", "p-alive": "p_alive_by_segment"}


class _Charts:
    def __init__(self, drawn: Mapping[str, dict] | None = None) -> None:
        self.made: list[ChartSpec] = []
        self.drawn = drawn or {}

    def add(self, key: str, title: str, build: Callable[[], Any]) -> ChartSpec | None:
        """Draw one chart (or take the run's spec of it); a chart that cannot be drawn is logged and left out."""
        from customerlens.outputs.charts import spec as vega_lite

        try:
            drawn = self.drawn.get(REPORT_CHARTS.get(key, ""))
            spec = dict(drawn) if drawn is not None else vega_lite(build())
        except Exception as exc:  # noqa: BLE001 - one odd table must not cost the whole report
            logger.warning("report: chart %s left out: %s", key, exc)
            return None
        spec.pop("$schema", None)
        chart = ChartSpec(id=f"chart-{key}", spec=script_json(spec), title=title)
        self.made.append(chart)
        return chart


# -- the sections --------------------------------------------------------------------------------

def _glance(store: StoreReader, record: dict) -> dict:
    quality = record.get("quality", {})
    cards = []
    customers = record.get("customers_with_features")
    if customers is None and store.has("customer_features"):
        customers = store.sql("SELECT count(*) AS n FROM customer_features")["n"].iloc[0]
    if customers is not None:
        cards.append(("customers", fmt_num(customers)))
    if store.has("transactions"):
        facts = store.sql("SELECT count(DISTINCT order_id) AS orders, min(order_date) AS first, "
                          "max(order_date) AS last, sum(amount) AS revenue FROM transactions").iloc[0]
        cards.append(("orders", fmt_num(facts["orders"])))
        if not _missing(facts["first"]):
            cards.append(("period", f"{pd.Timestamp(facts['first']):%d %b %Y} – {pd.Timestamp(facts['last']):%d %b %Y}"))
    revenue = quality.get("kept_revenue")
    if revenue is not None:
        cards.append(("net revenue", fmt_num(revenue)))
    seg = record.get("segmentation", {})
    if seg.get("k"):
        cards.append(("segments", str(seg["k"])))
    totals = record.get("value", {}).get("totals", {})
    clv_key = next((key for key in totals if key.startswith("clv_")), None)
    if clv_key:
        months = clv_key.removeprefix("clv_")
        cards.append((f"expected value, next {months}", fmt_num(totals[clv_key])))
    if totals.get("value_at_risk") is not None:
        cards.append(("value at risk of leaving", fmt_num(totals["value_at_risk"])))
    return {"cards": cards}


def _quality(store: StoreReader, record: dict) -> dict | None:
    frame = store.table("quality_report")
    quality = record.get("quality", {})
    if frame is None and not quality.get("rules"):
        return None
    if frame is None:
        frame = pd.DataFrame(quality["rules"])
    input_lines = quality.get("input_lines")
    rows = []
    for row in frame.to_dict(orient="records"):
        lines = row.get("lines", 0)
        share = (lines / input_lines) if input_lines else None
        rows.append([_text(row.get("rule")), _text(row.get("description")),
                     _text("on" if row.get("enabled", True) else "off"), _num(lines), _pct(share, 1),
                     _num(row.get("revenue"), 2), _text(row.get("note"))])
    columns = [("rule", False), ("what it removes", False), ("switch", False), ("lines", True),
               ("share of lines", True), ("revenue", True), ("note", False)]
    if all(not row[-1].text for row in rows):  # no rule has a note: leave the column out
        columns, rows = columns[:-1], [row[:-1] for row in rows]
    table = Table(columns=columns, rows=rows)
    summary = None
    if input_lines:
        summary = {
            "input_lines": fmt_num(input_lines), "kept_lines": fmt_num(quality.get("kept_lines")),
            "kept_share": fmt_pct((quality.get("kept_lines") or 0) / input_lines, 1),
            "removed_lines": fmt_num(quality.get("removed_lines")),
            "input_revenue": fmt_num(quality.get("input_revenue")),
            "kept_revenue": fmt_num(quality.get("kept_revenue")),
            "input_customers": fmt_num(quality.get("input_customers")),
            "kept_customers": fmt_num(quality.get("kept_customers")),
            "accounted": bool(quality.get("lines_accounted_for")),
            "partially_returned": fmt_num(quality.get("partially_returned_lines")),
            "returned_netted": fmt_num(quality.get("returned_value_netted")),
        }
    return {"table": table, "summary": summary}


def _choosing_k(store: StoreReader, record: dict, charts: _Charts) -> dict | None:
    from customerlens.outputs import charts as ch

    seg = record.get("segmentation", {})
    elbow = store.table("segment_elbow")
    if not seg and elbow is None:
        return None
    k = seg.get("k")
    chart = None
    if elbow is not None and not elbow.empty and k:
        chart = charts.add("elbow", "Elbow and silhouette", lambda: ch.elbow_chart(elbow, int(k), seg.get("reason")))
    return {"method": seg.get("method", "kmeans"), "k": k, "reason": seg.get("reason"), "knee": seg.get("knee"),
            "features": seg.get("features") or [], "chart": chart}


def _segment_order(store: StoreReader) -> pd.DataFrame | None:
    profiles = store.table("segment_profiles")
    if profiles is not None and not profiles.empty:
        return profiles.sort_values("segment_id").reset_index(drop=True)
    segments = store.table("segments")
    if segments is None or segments.empty:
        return None
    out = segments.groupby(["segment_id", "segment_name"], as_index=False).agg(
        customers=("customer_id", "size"), revenue=("monetary", "sum"))
    out["share_customers"] = out["customers"] / out["customers"].sum()
    total = out["revenue"].sum()
    out["share_revenue"] = out["revenue"] / total if total else 0.0
    out["revenue_per_customer"] = out["revenue"] / out["customers"]
    return out.sort_values("segment_id").reset_index(drop=True)


def _overview(profiles: pd.DataFrame | None, charts: _Charts) -> tuple[dict | None, dict | None]:
    from customerlens.outputs import charts as ch

    if profiles is None:
        return None, None
    rows, swatches = [], []
    for i, row in enumerate(profiles.to_dict(orient="records")):
        swatches.append(ch.PALETTE[i % len(ch.PALETTE)])
        rows.append([_num(row["segment_id"]), _text(row["segment_name"]), _num(row.get("customers")),
                     _pct(row.get("share_customers"), 1), _pct(row.get("share_revenue"), 1),
                     _num(row.get("revenue_per_customer")), _num(row.get("median_recency_days")),
                     _text(row.get("strategy"))])
    table = Table(columns=[("#", True), ("segment", False), ("customers", True), ("share of customers", True),
                           ("share of revenue", True), ("spend per customer", True),
                           ("days since last order, median", True), ("strategy", False)],
                  rows=rows, swatches=swatches, wide_last=True)
    top = profiles.sort_values("share_revenue", ascending=False).iloc[0]
    headline = {"name": top["segment_name"], "share_customers": fmt_pct(top["share_customers"]),
                "share_revenue": fmt_pct(top["share_revenue"])}
    overview = {"table": table, "headline": headline, "count": len(profiles)}
    distribution = None
    if {"share_customers", "share_revenue", "customers", "revenue"} <= set(profiles.columns):
        chart = charts.add("distribution", "Customers and revenue by segment", lambda: ch.distribution_chart(profiles))
        distribution = {"chart": chart} if chart else None
    return overview, distribution


def _simple_chart(charts: _Charts, key: str, title: str, frame: pd.DataFrame | None, build) -> dict | None:
    if frame is None or frame.empty:
        return None
    chart = charts.add(key, title, lambda: build(frame))
    return {"chart": chart} if chart else None


def _partial_note(frame: pd.DataFrame | None, column: str) -> str | None:
    """Words for the months a chart leaves out because the data covers them only in part."""
    if frame is None or frame.empty or "partial" not in frame.columns:
        return None
    partial = frame.loc[frame["partial"].fillna(False).astype(bool), column]
    months = sorted({pd.Timestamp(m).strftime("%B %Y") for m in partial}, key=lambda m: pd.Timestamp(m))
    if not months:
        return None
    return (f"{' and '.join(months)} {'is' if len(months) == 1 else 'are'} only partly in the data (less than "
            "90% of the month's days), so the chart leaves "
            f"{'it' if len(months) == 1 else 'them'} out: a part month would read as a collapse. The tables keep "
            "every month, marked partial.")


def _with_partial_note(section: dict | None, frame: pd.DataFrame | None, column: str) -> dict | None:
    if section is not None:
        section["partial_note"] = _partial_note(frame, column)
    return section


def _products(store: StoreReader, charts: _Charts) -> dict | None:
    from customerlens.outputs import charts as ch

    top = store.table("top_products")
    distinctive = store.table("distinctive_products")
    if top is None or top.empty:
        return None
    out = {"top": charts.add("top-products", "Best-sellers by segment", lambda: ch.top_products_chart(top)),
           "distinctive": None}
    if distinctive is not None and not distinctive.empty:
        out["distinctive"] = charts.add("distinctive-products", "Distinctive products by segment",
                                        lambda: ch.top_products_chart(distinctive, value="lift"))
    return out


def _value(store: StoreReader, record: dict, charts: _Charts) -> dict | None:
    from customerlens.outputs import charts as ch

    by_segment = store.table("segment_value")
    if by_segment is None or by_segment.empty:
        return None
    clv = next((c for c in by_segment.columns if c.startswith("clv_")), None)
    rows = []
    for row in by_segment.sort_values("segment_id").to_dict(orient="records"):
        rows.append([_text(row["segment_name"]), _num(row.get("customers")), _pct(row.get("mean_p_alive"), 0),
                     _pct(row.get("mean_churn_risk"), 0), _num(row.get(clv) if clv else None),
                     _pct(row.get("share_clv"), 1), _num(row.get("value_at_risk")),
                     _pct(row.get("share_value_at_risk"), 1)])
    months = clv.removeprefix("clv_") if clv else ""
    table = Table(columns=[("segment", False), ("customers", True), ("mean P(alive)", True),
                           ("mean churn risk", True), (f"expected value ({months})", True), ("share of value", True),
                           ("value at risk", True), ("share of value at risk", True)], rows=rows)
    out = {"table": table, "months": months, "value_chart": None, "alive_chart": None}
    if clv:
        out["value_chart"] = charts.add("value-by-segment", "Customer value by segment",
                                        lambda: ch.value_by_segment_chart(by_segment, clv))
    if store.has("customer_value") and store.has("segments"):
        from customerlens.insights.value import probability_stats

        scores = store.sql("SELECT s.segment_id, s.segment_name, v.p_alive, v.churn_risk FROM customer_value v "
                           "JOIN segments s USING (customer_id)")
        if not scores.empty:
            out["alive_chart"] = charts.add("p-alive", "P(alive) and churn risk by segment",
                                            lambda: ch.p_alive_chart(probability_stats(scores)))
    value = record.get("value", {})
    totals = value.get("totals", {})
    out["model"] = value.get("model")
    out["model_choice"] = value.get("model_choice")
    out["totals"] = {"customers": fmt_num(totals.get("customers")),
                     "clv": fmt_num(totals.get(clv)) if clv and clv in totals else None,
                     "expected_purchases": fmt_num(totals.get("expected_purchases_90d")),
                     "value_at_risk": fmt_num(totals.get("value_at_risk"))} if totals else None
    return out


def _recommendations(store: StoreReader) -> dict | None:
    if not store.has("recommendations"):
        return None
    if store.has("segments"):
        picks = store.sql(
            "WITH recs AS (SELECT DISTINCT customer_id FROM recommendations), "
            "ranked AS (SELECT s.customer_id, s.segment_id, s.segment_name, s.recency_days, s.frequency, "
            "s.monetary, row_number() OVER (PARTITION BY s.segment_id ORDER BY abs(s.monetary - m.median_monetary), "
            "s.customer_id) AS pick FROM segments s JOIN recs USING (customer_id) "
            "JOIN (SELECT segment_id, median(monetary) AS median_monetary FROM segments GROUP BY segment_id) m "
            "USING (segment_id)) "
            "SELECT * FROM ranked WHERE pick = 1 ORDER BY segment_id LIMIT ?", [MAX_EXAMPLE_CUSTOMERS])
    else:
        picks = store.sql("SELECT DISTINCT customer_id FROM recommendations ORDER BY customer_id LIMIT ?",
                          [MAX_EXAMPLE_CUSTOMERS])
    if picks.empty:
        return None
    ids = picks["customer_id"].tolist()
    marks = ", ".join("?" for _ in ids)
    recs = store.sql(f"SELECT customer_id, {store.recommendation_list()} AS list, rank, product_id, product_name, score, reason "
                     f"FROM recommendations WHERE customer_id IN ({marks}) AND rank <= ? "
                     f"ORDER BY customer_id, list DESC, rank", [*ids, MAX_RECOMMENDATIONS_SHOWN])
    customers = []
    for row in picks.to_dict(orient="records"):
        mine = recs[recs["customer_id"] == row["customer_id"]]

        def items(kind: str, mine=mine) -> list[dict]:
            return [{"rank": int(r["rank"]), "product": r["product_name"] if not _missing(r["product_name"])
                     else r["product_id"], "product_id": r["product_id"],
                     "reason": "" if _missing(r["reason"]) else r["reason"]}
                    for r in mine[mine["list"] == kind].to_dict(orient="records")]

        customers.append({
            "customer_id": row["customer_id"], "segment_name": row.get("segment_name"),
            "recency_days": fmt_num(row.get("recency_days")), "frequency": fmt_num(row.get("frequency")),
            "monetary": fmt_num(row.get("monetary")), "items": items("top"), "discover": items("discover"),
        })
    return {"customers": customers, "shown": MAX_RECOMMENDATIONS_SHOWN}


def _campaigns(store: StoreReader, charts: _Charts) -> dict | None:
    from customerlens.outputs import charts as ch

    lift = store.table("campaign_lift")
    if lift is None or lift.empty:
        return None
    overall = lift[lift["segment_by"] == "all"] if "segment_by" in lift.columns else lift
    observational = "design" in lift.columns and (lift["design"] == "observational").any()
    rows = []
    for row in overall.head(MAX_CAMPAIGN_ROWS).to_dict(orient="records"):
        binary = row.get("outcome_type") == "binary"
        fmt = (lambda v: _pct(v, 2)) if binary else (lambda v: _num(v, 2))
        if observational:  # sent against comparable unsent: the plain difference beside the adjusted one
            rows.append([_text(row.get("campaign")), _text(row.get("outcome")), _text(row.get("design")),
                         _num(row.get("n_treatment")), _num(row.get("n_control")), fmt(row.get("naive_lift")),
                         fmt(row.get("lift")), fmt(row.get("lift_ci_low")), fmt(row.get("lift_ci_high")),
                         fmt(row.get("placebo_lift")), _num(row.get("max_smd_after"), 2),
                         _text("too small" if row.get("too_small") else "")])
            continue
        rows.append([_text(row.get("campaign")), _text(row.get("arm")), _text(row.get("outcome")),
                     _num(row.get("n_treatment")), _num(row.get("n_control")), fmt(row.get("mean_treatment")),
                     fmt(row.get("mean_control")), fmt(row.get("lift")), fmt(row.get("lift_ci_low")),
                     fmt(row.get("lift_ci_high")), _num(row.get("p_adjusted"), 3), _num(row.get("roi"), 2)])
    if observational:
        table = Table(columns=[("campaign", False), ("outcome", False), ("design", False), ("sent", True),
                               ("unsent", True), ("plain difference", True), ("adjusted lift", True),
                               ("lift, low", True), ("lift, high", True), ("placebo", True),
                               ("largest SMD after", True), ("", False)], rows=rows)
    else:
        table = Table(columns=[("campaign", False), ("arm", False), ("outcome", False), ("treated", True),
                               ("control", True), ("mean (arm)", True), ("mean (control)", True), ("lift", True),
                               ("lift, low", True), ("lift, high", True), ("adjusted p", True), ("ROI", True)],
                      rows=rows)
    balance = store.table("campaign_balance") if observational else None
    balance_table = None
    if balance is not None and not balance.empty:
        balance_table = Table(columns=[("campaign", False), ("covariate", False), ("SMD before", True),
                                       ("SMD after", True), ("above 0.1", False)],
                              rows=[[_text(r["campaign"]), _text(r["covariate"]), _num(r["smd_before"], 2),
                                     _num(r["smd_after"], 2), _text("yes" if r["flagged"] else "")]
                                    for r in balance.head(MAX_CAMPAIGN_ROWS).to_dict(orient="records")])
    made = []
    if "outcome" in lift.columns:
        for i, outcome in enumerate(list(dict.fromkeys(lift["outcome"]))[:MAX_CAMPAIGN_CHARTS]):
            chart = charts.add(f"campaign-lift-{i}", f"Lift in {outcome}",
                               lambda outcome=outcome: ch.campaign_lift_chart(lift, str(outcome)))
            if chart:
                made.append(chart)
    sentences: list[str] = []
    try:
        if observational:
            from customerlens.models.observational import sends_summary

            sentences = sends_summary(lift, [])
        else:
            from customerlens.models.campaigns import campaign_summary

            sentences = campaign_summary(lift)
    except Exception as exc:  # noqa: BLE001 - the table and charts still tell the story
        logger.warning("report: campaign summary left out: %s", exc)
    return {"table": table, "charts": made, "sentences": sentences, "truncated": len(overall) > MAX_CAMPAIGN_ROWS,
            "observational": observational, "balance": balance_table}


def _action_plan(store: StoreReader) -> dict | None:
    plan = store.table("action_plan")
    if plan is None or plan.empty:
        return None
    targets = store.path.parent / "targets"
    entries = []
    for row in plan.sort_values("segment_id").to_dict(orient="records"):
        entry = {"segment_id": int(row["segment_id"]), "name": row["segment_name"],
                 "size": f"{fmt_num(row.get('customers'))} customers ({fmt_pct(row.get('share_customers'))}), "
                         f"{fmt_pct(row.get('share_revenue'))} of revenue",
                 "traits": "" if _missing(row.get("traits")) else row["traits"],
                 "strategy": "" if _missing(row.get("strategy")) else row["strategy"],
                 "promote": [] if _missing(row.get("promote")) else [p.strip() for p in str(row["promote"]).split(";")
                                                                    if p.strip()],
                 "value": None, "target": f"targets/{slug(row['segment_name'])}.csv"}
        if not _missing(row.get("expected_value")):
            entry["value"] = (f"expected value {fmt_num(row['expected_value'])}; at risk of leaving "
                              f"{fmt_num(row.get('value_at_risk'))} (mean churn risk {fmt_pct(row.get('mean_churn_risk'))})")
        entries.append(entry)
    moved = sorted(p.name for p in targets.glob("moved_*.csv"))[:MAX_TARGET_FILES] if targets.is_dir() else []
    return {"entries": entries, "targets_exist": targets.is_dir(), "moved": moved}


def _about(record: dict, created: Any, store_path: Path) -> dict:
    source = record.get("input", {})
    params = record.get("parameters", {})
    seg = record.get("segmentation", {})
    items = [("store", store_path.name)]
    if source.get("name"):
        items.append(("input file", Path(str(source["name"])).name))
    if source.get("sha256"):
        items.append(("input SHA-256", str(source["sha256"])[:16] + "…"))
    if params.get("as_of_used"):
        items.append(("snapshot (as of)", str(params["as_of_used"])[:10]))
    if seg.get("method"):
        items.append(("segmentation", f"{seg['method']}, k = {seg.get('k')}"))
    if seg.get("features"):
        items.append(("segmentation features", ", ".join(seg["features"])))
    recs = record.get("recommendations") or {}
    recommender = recs.get("model") or (params.get("recommend") or {}).get("model")
    if recommender:
        items.append(("recommender", str(recommender) + (f" ({recs['note']})" if recs.get("note") else "")))
    if created is not None:
        items.append(("run at", str(created)[:19]))
    version = record.get("versions", {}).get("customerlens")
    if version:
        items.append(("customerlens", str(version)))
    stages = record.get("stages") or []
    timing = None
    if stages:
        total = sum(float(s["seconds"]) for s in stages)
        rows = [[_text(s["stage"]), _num(s["seconds"], 2), _pct(float(s["seconds"]) / total if total else None),
                 _num(s.get("peak_memory_mb"), 0)] for s in stages]
        beside = [task for s in stages for task in s.get("worker") or ()]
        rows += [[_text(f"{task['task']}, in the worker process"), _num(task["seconds"], 2), _text("beside"),
                  _num(task.get("peak_memory_mb"), 0)] for task in beside]
        timing = Table(columns=[("stage", False), ("seconds", True), ("share", True), ("peak memory (MB)", True)],
                       rows=rows,
                       caption="Each stage's seconds and the process's peak memory by its end; the store and the "
                               "files (written while the recommender learns, and once its lists are made) and "
                               "the report are not in this record."
                               + (" The recommender learned in a worker process of its own while the stages "
                                  "above ran: its seconds and memory are the last row (not in the shares; the "
                                  "recommend stage's seconds here include the wait for it)." if beside else ""))
    return {"items": items, "timing": timing}


# -- rendering -----------------------------------------------------------------------------------

@functools.cache
def _environment() -> Environment:
    """The template's environment, made once per process (Jinja compiles the template once, and again if it changes)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = fmt_num
    env.filters["pct"] = fmt_pct
    return env


def warm() -> None:
    """Compile the report's template now (a run does while it waits for its worker, before the store is ready)."""
    _environment().get_template("report.html.j2")


def _vega_bundle() -> Markup:
    from customerlens.outputs.vega import bundle as vega_bundle

    bundle = vega_bundle()
    # never let the bundle close its own <script> element early
    return Markup(bundle.replace("</script", "<\\/script").replace("<!--", "<\\!--"))


def build_report(store_path: str | Path, charts: Mapping[str, dict] | None = None) -> str:
    """The HTML report of a store, as one self-contained string (no external resources).

    Parameters
    ----------
    store_path
        ``DIR/customerlens.duckdb``, written by ``customerlens run``; opened read-only.
    charts
        The run's Vega-Lite specs of its charts, by stem (:data:`REPORT_CHARTS`), when it wrote this
        store just now: the report takes them instead of drawing them again from the store's tables
        (the same specs, tested; 0.35 s of a run's 0.5 s report on Online Retail).
    """
    from customerlens.outputs import charts as ch

    path = Path(store_path)
    if not path.is_file():
        raise CustomerLensError(f"no store at {path}: expected the customerlens.duckdb written by "
                                "`customerlens run DATA --out DIR`")
    try:
        store = StoreReader(path)
    except duckdb.Error as exc:
        raise CustomerLensError(f"{path} is not a readable customerlens store: {exc}") from None
    try:
        record, created = store.record, store.created_at
        charts = _Charts(charts)  # the run's specs in, the report's charts out
        profiles = _segment_order(store)
        overview, distribution = _overview(profiles, charts)
        monthly, cohorts = store.table("segment_monthly"), store.table("cohort_retention")
        cohorts_calendar = None
        if cohorts is not None and not cohorts.empty and "partial" in cohorts.columns:
            # the calendar month of each cell: the cohort's month plus the months since
            cohorts_calendar = cohorts.assign(month=[pd.Timestamp(c) + pd.DateOffset(months=int(k)) for c, k in
                                                     zip(cohorts["cohort"], cohorts["months_since"], strict=True)])
        sections: dict[str, Any] = {
            "glance": _glance(store, record),
            "quality": _quality(store, record),
            "choosing-k": _choosing_k(store, record, charts),
            "overview": overview,
            "distribution": distribution,
            "compared": _simple_chart(charts, "box-plots", "Segments compared", store.table("segment_box_stats"),
                                      ch.box_plots),
            "spending": _simple_chart(charts, "spending", "Spending behaviour", profiles
                                      if profiles is not None and "avg_order_value" in profiles.columns else None,
                                      ch.spending_chart),
            "trends": _with_partial_note(
                _simple_chart(charts, "trends", "Trends by segment", monthly, ch.trend_chart), monthly, "month"),
            "cohorts": _with_partial_note(
                _simple_chart(charts, "cohorts", "Cohorts", cohorts, ch.cohort_heatmap), cohorts_calendar, "month"),
        }
        migration_dates = record.get("segmentation", {}).get("migration")
        dates = (migration_dates["from"], migration_dates["to"]) if migration_dates else None
        sections["migration"] = _simple_chart(charts, "migration", "Segment migration",
                                              store.table("segment_migration"),
                                              lambda frame: ch.migration_chart(frame, dates))
        if sections["migration"]:
            sections["migration"]["dates"] = dates
        sections["products"] = _products(store, charts)
        sections["value"] = _value(store, record, charts)
        sections["recommendations"] = _recommendations(store)
        sections["campaigns"] = _campaigns(store, charts)
        sections["action-plan"] = _action_plan(store)
        sections["about"] = _about(record, created, path)
    finally:
        store.close()
    present = {key: value for key, value in sections.items() if value}
    toc = [(key, SECTION_TITLES[key]) for key in SECTION_TITLES if key in present]
    source = record.get("input", {}).get("name")
    context = {
        "title": "Customer report" + (f": {Path(str(source)).name}" if source else ""),
        "created": str(created)[:16] if created is not None else None,
        "toc": toc, "s": present, "titles": SECTION_TITLES, "charts": charts.made,
        "css": Markup((HERE / "templates" / "report.css").read_text(encoding="utf-8")),
        "script": Markup((HERE / "templates" / "report.js").read_text(encoding="utf-8")),
        "vega": _vega_bundle(),
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_report(store_path: str | Path, out_path: str | Path, charts: Mapping[str, dict] | None = None) -> Path:
    """Build the report of ``store_path`` and write it to ``out_path`` atomically; return ``out_path``.

    ``charts``: the run's chart specs, as :func:`build_report` takes them.
    """
    html = build_report(store_path, charts)
    return write_text_atomic(out_path, html)


__all__ = ["build_report", "write_report", "REPORT_CHARTS", "SECTION_TITLES"]
