"""The dashboard's charts: the report's chart functions over the store's tables, filtered.

Each figure is a :class:`Figure`: its data (what its CSV download holds), its Vega spec (the
report's Vega-Lite from :mod:`customerlens.outputs.charts`, compiled by vl-convert, so a chart
looks the same in both) and a note; the page fetches the spec and draws it with the bundled Vega
(``/static/vega.js``). :data:`KINDS` says, for each figure, how it is made, its title, the store
tables it needs and the filters it depends on. :class:`Filters` (segment, months, country,
channel) narrow the lines the figures are computed from; figures of per-customer scores (value,
churn risk) follow the segment filter only, since a score belongs to the customer, not to a month.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import pandas as pd

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Filters:
    """What a page shows: one segment, a range of months (``YYYY-MM``, both included), one country, one channel."""

    segment: int | None = None
    start: str | None = None
    end: str | None = None
    country: str | None = None
    #: the ``channel`` column: a store, a sales channel (web, app, shop)
    channel: str | None = None
    #: the customer of a customer's page (not a filter of the lines: the page is about them)
    customer: str | None = None

    def __post_init__(self):
        for name in ("start", "end"):
            value = getattr(self, name)
            if value is not None and not MONTH.match(value):
                raise ValueError(f"{name} must be a month as YYYY-MM, not {value!r}")

    def query(self, **changes: Any) -> str:
        """The filters as a query string (``segment=2&start=2011-01``), with ``changes`` applied."""
        values = {**asdict(self), **changes}
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})

    def lines_sql(self, alias: str = "t") -> tuple[str, list]:
        """``WHERE`` conditions on the lines (months, country, channel) and their parameters."""
        conditions, params = ["TRUE"], []
        if self.start:
            conditions.append(f"{alias}.order_date >= ?")
            params.append(dt.datetime.strptime(self.start, "%Y-%m"))
        if self.end:
            conditions.append(f"{alias}.order_date < ?")
            year, month = (int(p) for p in self.end.split("-"))
            params.append(dt.datetime(year + month // 12, month % 12 + 1, 1))
        for column in ("country", "channel"):
            if getattr(self, column):
                conditions.append(f"{alias}.{column} = ?")
                params.append(getattr(self, column))
        return " AND ".join(conditions), params


@dataclass
class Figure:
    """A chart of a page: its data and spec, with its name (the element id and file name) and title."""

    data: pd.DataFrame
    spec: dict
    note: str = ""
    name: str = ""
    title: str = ""
    _payload: bytes | None = None

    def payload(self) -> bytes:
        """What ``/charts/NAME.json`` answers: name, title, note and spec, serialised once."""
        if self._payload is None:
            import json

            self._payload = json.dumps({"name": self.name, "title": self.title, "note": self.note,
                                        "spec": self.spec}, separators=(",", ":"), allow_nan=False).encode()
        return self._payload


def _frame(cur, sql: str, params: list | None = None) -> pd.DataFrame:
    return cur.execute(sql, params or []).df()


def _spec(chart) -> dict:
    """The chart's Vega spec: the report's Vega-Lite, compiled here by vl-convert.

    Kept with the page's charts, so the browser only draws it (a third less time to the first chart).
    A chart drawn again with other data (other months, another segment) is compiled once: see
    :func:`compiled`.
    """
    from customerlens.outputs.charts import spec

    return compiled(spec(chart))


#: Vega specs compiled from Vega-Lite, as JSON without their data, by the Vega-Lite spec without its data
_COMPILED: OrderedDict[str, str] = OrderedDict()
_COMPILED_KEPT = 256
_COMPILED_LOCK = threading.Lock()


def compiled(vega_lite: dict) -> dict:
    """``vega_lite`` compiled to Vega by vl-convert; the same chart with other data is not compiled again.

    Compiling reads the specification, never the data (16-46 ms a chart on Online Retail): the
    data sets (``datasets``, named by a hash of their rows) are set aside under names of their
    place, the rest is the key, and their rows go into the kept Vega's data sets of those names.
    """
    import json

    vega_lite = dict(vega_lite)
    vega_lite.pop("$schema", None)  # a URL nothing fetches
    datasets = vega_lite.pop("datasets", {})
    places = {name: f"customerlens-data-{i}" for i, name in enumerate(datasets)}
    shape = _renamed_data(vega_lite, places)
    key = json.dumps(shape, sort_keys=True, separators=(",", ":"))
    if any(json.dumps(name) in key for name in datasets):  # read elsewhere than "data": {"name": ...}
        return _vega({**vega_lite, "datasets": datasets})
    with _COMPILED_LOCK:
        kept = _COMPILED.get(key)
        if kept is not None:
            _COMPILED.move_to_end(key)
    if kept is None:
        kept = json.dumps(_vega({**shape, "datasets": {places[n]: [] for n in datasets}}))
        with _COMPILED_LOCK:
            _COMPILED[key] = kept
            while len(_COMPILED) > _COMPILED_KEPT:
                _COMPILED.popitem(last=False)
    drawn = json.loads(kept)
    rows = {places[name]: values for name, values in datasets.items()}
    for entry in drawn.get("data", []):
        if entry.get("name") in rows:
            entry["values"] = rows[entry["name"]]
    return drawn


def _vega(vega_lite: dict) -> dict:
    """``vega_lite`` compiled to Vega by vl-convert, without its ``$schema`` (a URL nothing fetches)."""
    import vl_convert as vlc

    drawn = vlc.vegalite_to_vega(vega_lite)
    drawn.pop("$schema", None)
    return drawn


def _renamed_data(spec: Any, places: dict[str, str]) -> Any:
    """``spec`` with each reference to a named data set (``"data": {"name": ...}``) renamed by ``places``."""
    if isinstance(spec, list):
        return [_renamed_data(item, places) for item in spec]
    if not isinstance(spec, dict):
        return spec
    out = {}
    for key, value in spec.items():
        if key == "data" and isinstance(value, dict) and value.get("name") in places:
            value = {**value, "name": places[value["name"]]}
        out[key] = _renamed_data(value, places)
    return out


# -- lines of the store, filtered --------------------------------------------------------------

def _segment_lines(filters: Filters) -> tuple[str, list]:
    """``WHERE`` conditions on the lines (``t``) joined to their segments (``s``): every filter."""
    where, params = filters.lines_sql("t")
    if filters.segment is not None:
        where += " AND s.segment_id = ?"
        params.append(filters.segment)
    return where, params


def sizes(store, cur, filters: Filters) -> Figure | None:
    """Customers and revenue by segment, from the lines that pass the filters."""
    from customerlens.outputs import charts

    where, params = _segment_lines(filters)
    data = _frame(cur, f"""
        SELECT s.segment_id, s.segment_name, count(DISTINCT t.customer_id) AS customers,
               round(sum(t.amount), 2) AS revenue
        FROM transactions t JOIN segments s USING (customer_id)
        WHERE {where} GROUP BY ALL ORDER BY s.segment_id""", params)
    if data.empty:
        return None
    data["share_customers"] = data["customers"] / data["customers"].sum()
    data["share_revenue"] = data["revenue"] / data["revenue"].sum() if data["revenue"].sum() else 0.0
    return Figure(data, _spec(charts.distribution_chart(data)))


def monthly(cur, filters: Filters) -> pd.DataFrame:
    """Revenue, active customers and orders by month and segment (``partial``: an incomplete month)."""
    from customerlens.insights.trends import partial_months

    where, params = _segment_lines(filters)
    data = _frame(cur, f"""
        SELECT date_trunc('month', t.order_date) AS month, s.segment_id, s.segment_name,
               round(sum(t.amount), 2) AS revenue, count(DISTINCT t.customer_id) AS active_customers,
               count(DISTINCT t.order_id) AS orders
        FROM transactions t JOIN segments s USING (customer_id)
        WHERE {where} GROUP BY ALL ORDER BY month, s.segment_id""", params)
    if data.empty:
        return data
    # incomplete months: from the dates the filters leave (a range that cuts a month marks it)
    bounds = cur.execute(f"""SELECT min(t.order_date), max(t.order_date) FROM transactions t
                             JOIN segments s USING (customer_id) WHERE {where}""", params).fetchall()[0]
    partial = partial_months(pd.Series(list(bounds)))
    data["month"] = pd.to_datetime(data["month"])
    data["partial"] = data["month"].isin(list(partial))
    return data


def trends(store, cur, filters: Filters) -> Figure | None:
    """Revenue and active customers by month per segment; incomplete months drawn hollow."""
    from customerlens.outputs import charts

    data = monthly(cur, filters)
    if data.empty:
        return None
    partial = sorted({m.strftime("%Y-%m") for m in data.loc[data["partial"], "month"]})
    note = f"Incomplete months (hollow points): {', '.join(partial)}." if partial else ""
    return Figure(data,
                  _spec(charts.trend_chart(data, show_partial=True)), note)


def value(store, cur, filters: Filters) -> Figure | None:
    """Expected value (CLV) and value at risk by segment."""
    from customerlens.outputs import charts

    data = _frame(cur, "SELECT * FROM segment_value ORDER BY segment_id")
    if filters.segment is not None:
        data = data[data["segment_id"] == filters.segment]
    clv = next((c for c in data.columns if c.startswith("clv_")), None)
    if data.empty or clv is None:
        return None
    return Figure(data,
                  _spec(charts.value_by_segment_chart(data, clv)),
                  "Scores of the snapshot: the month and country filters do not apply.")


def elbow(store, cur, filters: Filters) -> Figure | None:
    """The choice of k: inertia and silhouette for each k, the chosen k marked."""
    from customerlens.outputs import charts

    data = _frame(cur, "SELECT * FROM segment_elbow ORDER BY k")
    seg = store.record.get("segmentation", {}) or {}
    k = seg.get("k")
    if data.empty or k is None:
        return None
    return Figure(data,
                  _spec(charts.elbow_chart(data, int(k), seg.get("reason"))))


def migration(store, cur, filters: Filters) -> Figure | None:
    """Customers moving between segments since the earlier snapshot."""
    from customerlens.outputs import charts

    data = _frame(cur, "SELECT * FROM segment_migration ORDER BY from_segment_id, to_segment_id")
    if filters.segment is not None:
        data = data[(data["from_segment_id"] == filters.segment) | (data["to_segment_id"] == filters.segment)]
    if data.empty:
        return None
    dates = (store.record.get("segmentation", {}) or {}).get("migration") or {}
    span = (dates["from"], dates["to"]) if {"from", "to"} <= set(dates) else None
    return Figure(data, _spec(charts.migration_chart(data, span)))


def _previous(store, cur) -> tuple[str, str]:
    """The snapshot dates of the last run (the store holds its customers) and of this one."""
    rows = cur.execute("SELECT as_of FROM previous_run").fetchall()
    before = (rows[0][0] or "")[:10] if rows else ""
    now = str((store.record.get("parameters", {}) or {}).get("as_of_used") or "")[:10]
    return before, now


def changes(store, cur, filters: Filters) -> Figure | None:
    """Each segment in the last run and in this one: customers, value at risk, mean churn risk."""
    from customerlens.outputs import charts

    dates = _previous(store, cur)
    value = store.has("customer_value")
    now_sql = ("SELECT s.segment_name, count(*) AS customers, sum(v.value_at_risk) AS value_at_risk, "
               "avg(v.churn_risk) AS churn_risk FROM segments s LEFT JOIN customer_value v USING (customer_id) "
               "GROUP BY 1") if value else \
        "SELECT segment_name, count(*) AS customers, NULL AS value_at_risk, NULL AS churn_risk FROM segments GROUP BY 1"
    data = _frame(cur, f"""
        WITH now AS ({now_sql}),
        before AS (SELECT segment_name, count(*) AS customers, sum(value_at_risk) AS value_at_risk,
                          avg(churn_risk) AS churn_risk FROM previous_customers GROUP BY 1),
        ids AS (SELECT segment_name, min(segment_id) AS segment_id FROM segments GROUP BY 1
                UNION ALL SELECT segment_name, 100 + min(segment_id) FROM previous_customers
                WHERE segment_name NOT IN (SELECT segment_name FROM segments) GROUP BY 1)
        SELECT ids.segment_id, ids.segment_name,
               before.customers AS customers_before, now.customers AS customers_now,
               round(before.value_at_risk, 2) AS value_at_risk_before, round(now.value_at_risk, 2) AS value_at_risk_now,
               before.churn_risk AS churn_risk_before, now.churn_risk AS churn_risk_now
        FROM ids LEFT JOIN now USING (segment_name) LEFT JOIN before USING (segment_name)
        ORDER BY ids.segment_id""")
    if filters.segment is not None:
        data = data[data["segment_id"] == filters.segment]
    if data.empty:
        return None
    long = []
    for measure, column in (("customers", "customers"), ("value at risk", "value_at_risk"),
                            ("mean churn risk", "churn_risk")):
        if data[f"{column}_now"].isna().all() and data[f"{column}_before"].isna().all():
            continue
        for when, suffix in (("last run", "before"), ("this run", "now")):
            long.append(data[["segment_id", "segment_name"]].assign(measure=measure, when=when,
                                                                     value=data[f"{column}_{suffix}"]))
    frame = pd.concat(long, ignore_index=True).fillna({"value": 0.0})
    new, gone, moved = cur.execute("""
        SELECT count(*) FILTER (WHERE p.customer_id IS NULL), count(*) FILTER (WHERE s.customer_id IS NULL),
               count(*) FILTER (WHERE p.segment_name <> s.segment_name)
        FROM segments s FULL JOIN previous_customers p USING (customer_id)""").fetchall()[0]
    return Figure(data, _spec(charts.changes_chart(frame, dates)),
                  f"Since the last run (snapshot {dates[0]}): {new:,} new customers, {gone:,} no longer in the "
                  f"data, {moved:,} in another segment. Segments are matched by name.")


def moves(store, cur, filters: Filters) -> Figure | None:
    """Customers of both runs: their segment in the last run against their segment now."""
    from customerlens.outputs import charts

    if "monetary" not in store.columns["segments"]:
        return None
    data = _frame(cur, """
        SELECT p.segment_id AS from_segment_id, p.segment_name AS from_segment, s.segment_id AS to_segment_id,
               s.segment_name AS to_segment, count(*) AS customers, round(sum(s.monetary), 2) AS revenue
        FROM previous_customers p JOIN segments s USING (customer_id)
        GROUP BY ALL ORDER BY from_segment_id, to_segment_id""")
    if data.empty:
        return None
    if filters.segment is not None:
        data = data[(data["to_segment_id"] == filters.segment)]
    if data.empty:
        return None
    return Figure(data, _spec(charts.migration_chart(data, _previous(store, cur))),
                  "Customers in both runs; revenue in the tooltip: their spend as of this run.")


# -- a segment's page --------------------------------------------------------------------------

def box_plots(store, cur, filters: Filters) -> Figure | None:
    """Recency, orders and spend of every segment, the page's segment among them."""
    from customerlens.outputs import charts

    data = _frame(cur, "SELECT * FROM segment_box_stats ORDER BY segment_id, feature")
    if data.empty:
        return None
    return Figure(data, _spec(charts.box_plots(data)))


def top_products(store, cur, filters: Filters) -> Figure | None:
    """The segment's top products by revenue, with buyers and lift, from the filtered lines."""
    from customerlens.outputs import charts

    segment = filters.segment
    if segment is None:
        return None
    where, params = filters.lines_sql("t")
    data = _frame(cur, f"""
        WITH lines AS (
            SELECT t.customer_id, t.product_id, t.product_name, t.amount, s.segment_id, s.segment_name
            FROM transactions t JOIN segments s USING (customer_id)
            WHERE {where} AND t.product_id IS NOT NULL),
        everyone AS (SELECT count(DISTINCT customer_id) AS n FROM lines),
        members AS (SELECT count(DISTINCT customer_id) AS n FROM lines WHERE segment_id = ?),
        here AS (SELECT segment_id, any_value(segment_name) AS segment_name, product_id,
                        any_value(product_name) AS product_name, round(sum(amount), 2) AS revenue,
                        count(DISTINCT customer_id) AS buyers,
                        row_number() OVER (ORDER BY round(sum(amount), 2) DESC, product_id) AS rank
                 FROM lines WHERE segment_id = ? GROUP BY segment_id, product_id QUALIFY rank <= 10),
        -- everyone's buyers of the ten products only (not of every product: the lift needs no more)
        overall AS (SELECT product_id, count(DISTINCT customer_id) AS buyers_all FROM lines
                    WHERE product_id IN (SELECT product_id FROM here) GROUP BY 1)
        SELECT here.* EXCLUDE (rank), here.buyers / members.n AS share_of_segment,
               (here.buyers / members.n) / (overall.buyers_all / everyone.n) AS lift, here.rank
        FROM here JOIN overall USING (product_id), members, everyone
        ORDER BY rank""", [*params, segment, segment])
    if data.empty:
        return None
    return Figure(data, _spec(charts.top_products_chart(data)),
                  "Buyers: customers of the segment who bought it; lift: how much likelier they were to buy it "
                  "than all customers.")


def distinctive(store, cur, filters: Filters) -> Figure | None:
    """The products the segment buys far more often than everyone (lift, with its support: buyers)."""
    from customerlens.outputs import charts

    if filters.segment is None:
        return None
    data = _frame(cur, "SELECT * FROM distinctive_products WHERE segment_id = ? ORDER BY rank", [filters.segment])
    if data.empty:
        return None
    return Figure(data, _spec(charts.top_products_chart(data, value="lift")),
                  "Lift: how much likelier the segment's customers were to buy it than all customers, over the "
                  "whole period (only products with enough buyers to say so).")


def score_spread(store, cur, filters: Filters) -> Figure | None:
    """How churn risk and 12-month CLV spread over the segment's customers."""
    from customerlens.outputs import charts

    segment = filters.segment
    if segment is None:
        return None
    clv = next((c for c in store.columns["customer_value"] if c.startswith("clv_")), None)
    if clv is None:
        return None
    data = _frame(cur, f"""SELECT v.customer_id, v.churn_risk, v.{clv} AS clv
                           FROM customer_value v JOIN segments s USING (customer_id)
                           WHERE s.segment_id = ? ORDER BY v.customer_id""", [segment])
    if data.empty:
        return None
    drawn = charts.score_histograms(data[["churn_risk", "clv"]], clv_title=clv.replace("_", " ").replace("clv", "CLV"))
    return Figure(data, _spec(drawn),
                  "Scores of the snapshot: the month and country filters do not apply.")


# -- a customer's page -------------------------------------------------------------------------

def timeline(store, cur, filters: Filters) -> Figure | None:
    """The customer's orders over time (net of returns)."""
    from customerlens.outputs import charts

    customer_id = filters.customer
    if customer_id is None:
        return None
    where, params = filters.lines_sql("t")
    data = _frame(cur, f"""
        SELECT coalesce(t.order_id, strftime(t.order_date, '%Y-%m-%d')) AS order_id,
               min(t.order_date) AS order_date, round(sum(t.amount), 2) AS amount, count(*) AS lines
        FROM transactions t WHERE t.customer_id = ? AND {where}
        GROUP BY 1 ORDER BY order_date""", [customer_id, *params])
    if data.empty:
        return None
    return Figure(data, _spec(charts.purchase_timeline(data)))


def outlook(store, cur, filters: Filters) -> Figure | None:
    """Expected purchases over the next twelve months, from the fitted counting model."""
    from customerlens.outputs import charts

    customer_id = filters.customer
    model = store.value_model()
    if customer_id is None or model is None:
        return None
    row = _frame(cur, 'SELECT frequency, recency, "T", p_alive FROM customer_value WHERE customer_id = ?',
                 [customer_id])
    if row.empty:
        return None
    from customerlens.models.value.config import DAYS_PER_MONTH, UNITS

    unit = UNITS[(store.record.get("value", {}) or {}).get("time_unit", "week")]
    months = list(range(1, 13))
    x, t_x, T = (row[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    expected = [float(model.conditional_expected_purchases(m * DAYS_PER_MONTH / unit, x, t_x, T)[0])
                for m in months]
    data = pd.DataFrame({"months_ahead": months, "expected_purchases": expected})
    p_alive = float(row["p_alive"].iloc[0])
    return Figure(data,
                  _spec(charts.outlook_chart(data, p_alive)))


# -- the campaigns page -------------------------------------------------------------------------

def campaigns(store, cur, filters: Filters) -> Figure | None:
    """A forest plot of every campaign's lift per segment, one panel per outcome (the report's chart)."""
    import altair as alt

    from customerlens.outputs import charts

    rows = store.campaign_lift(cur)
    if not rows:
        return None
    data = pd.DataFrame(rows)
    needed = {"outcome", "segment_by", "segment_value", "lift", "lift_ci_low", "lift_ci_high"}
    if not needed <= set(data.columns):
        return None  # an older or hand-made table: the page's table shows it
    if filters.segment is not None and "segment_id" in data.columns:
        data = data[data["segment_id"] == filters.segment]
    panels = [charts.campaign_lift_chart(data, outcome) for outcome in dict.fromkeys(data["outcome"])]
    if not panels:
        return None
    return Figure(data, _spec(alt.vconcat(*panels)))


@dataclass(frozen=True)
class Kind:
    """How a figure is made, its title, the store tables it needs and the filters it depends on.

    ``build(store, cur, filters)`` gives the figure, or None without data. The same figure serves
    every page and filter that agree on ``depends``: its cache key and its CSV link's query.
    """

    build: Callable[..., Figure | None]
    title: str
    needs: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()


_LINES = ("segment", "start", "end", "country", "channel")
_SEGMENTED = ("transactions", "segments")
_PREVIOUS = ("previous_customers", "previous_run", "segments")
#: every figure by name (its element id, file name and routes)
KINDS: dict[str, Kind] = {
    "sizes": Kind(sizes, "Customers and revenue by segment", _SEGMENTED, _LINES),
    "trends": Kind(trends, "Revenue and active customers by month", _SEGMENTED, _LINES),
    "value": Kind(value, "Value and value at risk by segment", ("segment_value",), ("segment",)),
    "elbow": Kind(elbow, "Choosing the number of segments", ("segment_elbow",)),
    "migration": Kind(migration, "Segment migration", ("segment_migration",), ("segment",)),
    "changes": Kind(changes, "What changed since the last run", _PREVIOUS, ("segment",)),
    "moves": Kind(moves, "Moves between segments since the last run", _PREVIOUS, ("segment",)),
    "box_plots": Kind(box_plots, "Recency, orders and spend by segment", ("segment_box_stats",)),
    "top_products": Kind(top_products, "Top products", _SEGMENTED, _LINES),
    "distinctive": Kind(distinctive, "Distinctive products", ("distinctive_products",), ("segment",)),
    "scores": Kind(score_spread, "Churn risk and customer value", ("customer_value", "segments"), ("segment",)),
    "timeline": Kind(timeline, "Purchases over time", ("transactions",),
                     ("customer", "start", "end", "country", "channel")),
    "outlook": Kind(outlook, "Expected purchases, next 12 months", ("customer_value",), ("customer",)),
    # the store's tables or the CSV files beside it: the chart says 404 when there are none
    "campaigns": Kind(campaigns, "Campaign lift by segment"),
}
#: the figures of each page, in the order they are shown
PAGES: dict[str, tuple[str, ...]] = {
    "overview": ("changes", "moves", "sizes", "trends", "value", "migration", "elbow"),
    "segment": ("trends", "top_products", "distinctive", "box_plots", "scores"),
    "customer": ("timeline", "outlook"),
    "campaigns": ("campaigns",),
}


def available(name: str, store) -> bool:
    """Whether the store has the tables figure ``name`` is made from."""
    return all(store.has(table) for table in KINDS[name].needs)


def page_slots(page: str, store, filters: Filters) -> list[dict[str, str]]:
    """The figures a page shows, without drawing them: name, title and the query of their data."""
    return [{"name": name, "title": KINDS[name].title, "query": used(name, filters).query()}
            for name in PAGES[page] if available(name, store)]


def used(name: str, filters: Filters) -> Filters:
    """The part of ``filters`` that figure ``name`` depends on (its cache key)."""
    return Filters(**{k: getattr(filters, k) for k in KINDS[name].depends})


def figure(name: str, store, cur, filters: Filters) -> Figure | None:
    """The figure ``name`` for the part of ``filters`` it depends on; None when the store has no data for it."""
    if not available(name, store):
        return None
    made = KINDS[name].build(store, cur, used(name, filters))
    if made is not None:
        made.name, made.title = name, KINDS[name].title
    return made
