"""Charts: one function each, data in, Altair chart out.

Every function takes the small tables of :mod:`customerlens.insights` (or the
segmenter's elbow table) and returns an ``altair`` chart; :func:`save_chart`
exports it offline as PNG and SVG with vl-convert (no browser, no network), and
:func:`spec` is the Vega-Lite spec for inline HTML. Segments keep the same colour
in every chart.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from customerlens.core.files import atomic_path
from customerlens.outputs.rasters import write_png

WIDTH = 520
HEIGHT = 300
#: Colours by segment order (1 = most valuable), colour-blind safe (Tableau 10).
PALETTE = ("#4e79a7", "#59a14f", "#f28e2b", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#bab0ac")


class Chart(alt.Chart):
    """``alt.Chart`` whose ``encode`` builds shorthand channels as their typed classes.

    ``"amount:Q"`` becomes ``alt.X("amount:Q")``, a tooltip list of names a list of ``alt.Tooltip``:
    the same specification, without Altair parsing each shorthand against the whole Vega-Lite schema
    (10 ms an ``encode``: 1.6 s of a run's charts and report).
    """

    def encode(self, *args, **channels):
        """As ``alt.Chart.encode``; shorthand strings become typed channels first."""
        return super().encode(*args, **{name: _typed(name, value) for name, value in channels.items()})


def _typed(name: str, value):
    """A shorthand channel as its Altair class: a string, the strings of a list (tooltips), a value or datum."""
    cls = name[0].upper() + name[1:]
    if isinstance(value, str):
        return getattr(alt, cls)(value)
    if isinstance(value, list):
        return [_typed(name, v) for v in value]
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("value", "datum"):
        kind = next(iter(value))  # alt.value(0.5) -> alt.OpacityValue(0.5), alt.datum(0) -> alt.XDatum(0)
        typed = getattr(alt, cls + kind.capitalize(), None)
        return typed(value[kind]) if typed is not None else value
    return value


def _segment_scale(names: list[str]) -> alt.Scale:
    """Each segment's colour, by segment order: the same in every chart."""
    return alt.Scale(domain=names, range=list(PALETTE[: len(names)]))


def _segment_color(names: list[str], title: str = "Segment") -> alt.Color:
    return alt.Color("segment_name:N", title=title, scale=_segment_scale(names), sort=names,
                     legend=alt.Legend(labelLimit=0))  # segment names are short: see _segment_axis


def _segment_axis(names: list[str]) -> alt.Y:
    """Segments down the side, in segment order.

    Their names are short (the segmenter's): Vega need not measure each label to check it against
    a length limit (text measuring is most of a chart's drawing time in vl-convert).
    """
    return alt.Y("segment_name:N", title=None, sort=names, axis=alt.Axis(labelLimit=0))


def _names(frame: pd.DataFrame) -> list[str]:
    ordered = frame.sort_values("segment_id").drop_duplicates("segment_name")
    return ordered["segment_name"].tolist()


def elbow_chart(elbow: pd.DataFrame, k: int, reason: str | None = None) -> alt.Chart:
    """Inertia against k with the chosen k marked; silhouette beside it."""
    data = elbow.copy()
    data["chosen"] = np.where(data["k"] == k, f"chosen k = {k}", "")
    base = Chart(data).encode(x=alt.X("k:O", title="number of segments k"))
    inertia = base.mark_line(point=True, color=PALETTE[0]).encode(
        y=alt.Y("inertia:Q", title="inertia (within-segment sum of squares)"),
        tooltip=["k", alt.Tooltip("inertia:Q", format=",.0f")],
    )
    marked = base.transform_filter(alt.datum.k == k).mark_point(size=220, color=PALETTE[3], filled=True).encode(
        y="inertia:Q")
    label = base.transform_filter(alt.datum.k == k).mark_text(dx=14, dy=-14, color=PALETTE[3], align="left").encode(
        y="inertia:Q", text="chosen:N")
    left = (inertia + marked + label).properties(width=WIDTH // 2 + 60, height=HEIGHT, title="Elbow: inertia")
    sil = base.transform_filter("isValid(datum.silhouette)").mark_line(point=True, color=PALETTE[1]).encode(
        y=alt.Y("silhouette:Q", title="silhouette (higher = better separated)", scale=alt.Scale(zero=False)),
        tooltip=["k", alt.Tooltip("silhouette:Q", format=".3f")],
    )
    sil_marked = base.transform_filter(alt.datum.k == k).transform_filter("isValid(datum.silhouette)").mark_point(
        size=220, color=PALETTE[3], filled=True).encode(y="silhouette:Q")
    right = (sil + sil_marked).properties(width=WIDTH // 2 + 60, height=HEIGHT, title="Silhouette")
    chart = alt.hconcat(left, right)
    return chart.properties(title=alt.Title(f"Choosing k: k = {k}", subtitle=reason or ""))


def distribution_chart(profiles: pd.DataFrame) -> alt.Chart:
    """Share of customers and share of revenue by segment."""
    names = _names(profiles)
    data = profiles[["segment_id", "segment_name", "share_customers", "share_revenue", "customers", "revenue"]].melt(
        id_vars=["segment_id", "segment_name", "customers", "revenue"],
        value_vars=["share_customers", "share_revenue"], var_name="measure", value_name="share")
    data["measure"] = data["measure"].map({"share_customers": "customers", "share_revenue": "revenue"})
    return Chart(data).mark_bar().encode(
        x=alt.X("share:Q", title="share", axis=alt.Axis(format="%")),
        y=alt.Y("measure:N", title=None),
        color=_segment_color(names),
        order=alt.Order("segment_id:Q"),
        tooltip=["segment_name", "measure", alt.Tooltip("share:Q", format=".1%"),
                 alt.Tooltip("customers:Q", format=","), alt.Tooltip("revenue:Q", format=",.0f")],
    ).properties(width=WIDTH, height=120, title="Customers and revenue by segment")


_FEATURE_TITLES = {"recency_days": "recency (days)", "frequency": "orders", "monetary": "net spend",
                   "avg_order_value": "average order value"}


def box_plots(stats: pd.DataFrame, features: tuple[str, ...] = ("recency_days", "frequency", "monetary"),
              log: bool = True) -> alt.Chart:
    """Box plots per segment of each feature (pre-aggregated Tukey boxes), log scale."""
    names = _names(stats)
    charts = []
    for feature in features:
        data = stats[stats["feature"] == feature].copy()
        if data.empty:
            continue
        floor = 0.5 if log else None
        for col in ("q1", "median", "q3", "whisker_low", "whisker_high"):
            if log:
                data[col] = data[col].clip(lower=floor)
        scale = alt.Scale(type="log") if log else alt.Scale(zero=False)
        y = _segment_axis(names)
        base = Chart(data).encode(y=y)
        title = _FEATURE_TITLES.get(feature, feature)
        whisker = base.mark_rule(color="#555").encode(
            x=alt.X("whisker_low:Q", scale=scale, title=title + (" (log scale)" if log else "")),
            x2="whisker_high:Q")
        box = base.mark_bar(size=16).encode(
            x="q1:Q", x2="q3:Q", color=_segment_color(names),
            tooltip=["segment_name", alt.Tooltip("median:Q", format=",.1f"), alt.Tooltip("q1:Q", format=",.1f"),
                     alt.Tooltip("q3:Q", format=",.1f"), alt.Tooltip("n:Q", format=",")])
        median = base.mark_tick(color="white", size=16, thickness=2).encode(x="median:Q")
        charts.append((whisker + box + median).properties(width=WIDTH // 2, height=28 * len(names) + 20,
                                                         title=title))
    return alt.vconcat(*charts).properties(title="Segments compared").resolve_scale(color="shared")


def spending_chart(profiles: pd.DataFrame) -> alt.Chart:
    """Spending behaviour: revenue per customer and average order value by segment."""
    names = _names(profiles)
    data = profiles.melt(id_vars=["segment_id", "segment_name"], value_vars=["revenue_per_customer", "avg_order_value"],
                         var_name="measure", value_name="value")
    data["measure"] = data["measure"].map({"revenue_per_customer": "net spend per customer",
                                           "avg_order_value": "average order value"})
    bars = Chart(data).mark_bar().encode(
        x=alt.X("value:Q", title=None),
        y=_segment_axis(names),
        color=_segment_color(names),
        tooltip=["segment_name", "measure", alt.Tooltip("value:Q", format=",.2f")],
    ).properties(width=WIDTH // 2, height=28 * len(names))
    return bars.facet(column=alt.Column("measure:N", title=None)).resolve_scale(x="independent").properties(
        title="Spending behaviour by segment")


def _whole_months(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of months the data covers in full (a partial first or last month would read as a jump)."""
    if "partial" not in frame.columns:
        return frame
    return frame[~frame["partial"].fillna(False).astype(bool)]


def trend_chart(monthly: pd.DataFrame, show_partial: bool = False) -> alt.Chart:
    """Monthly revenue and active customers by segment.

    Whole months only (see ``partial``); with ``show_partial`` incomplete months are drawn too, as
    hollow points (the dashboard, where a month filter can cut a month).
    """
    names = _names(monthly)
    if show_partial:
        monthly = monthly.assign(month_kind=np.where(monthly["partial"].fillna(False).astype(bool),
                                                     "incomplete month", "whole month"))
    else:
        monthly = _whole_months(monthly)
    # the data once, at the top (the panels and layers inherit it): Altair copies and hashes a
    # layer's data each time it combines charts, a third of this chart's time without drawing it
    base = Chart().encode(x=alt.X("yearmonth(month):T", title="month"), color=_segment_color(names))

    def panel(y, tooltip: list, title: str):
        if not show_partial:
            return base.mark_line(point=True).encode(y=y, tooltip=tooltip).properties(
                width=WIDTH, height=HEIGHT // 1.5, title=title)
        line = base.mark_line().encode(y=y)
        scale = _segment_scale(names)
        points = Chart().mark_point(filled=True, size=45).encode(
            x=alt.X("yearmonth(month):T", title="month"), y=y,
            stroke=alt.Stroke("segment_name:N", scale=scale, sort=names, legend=None),
            fill=alt.condition(alt.datum.month_kind == "incomplete month", alt.value("white"),
                               alt.Fill("segment_name:N", scale=scale, sort=names, legend=None)),
            tooltip=[*tooltip, alt.Tooltip("month_kind:N", title="month")])
        return alt.layer(line, points).properties(width=WIDTH, height=HEIGHT // 1.5, title=title)

    revenue = panel(alt.Y("revenue:Q", title="net revenue"),
                    [alt.Tooltip("yearmonth(month):T", title="month"), "segment_name",
                     alt.Tooltip("revenue:Q", format=",.0f"), alt.Tooltip("active_customers:Q", format=",")],
                    "Revenue by segment")
    active = panel(alt.Y("active_customers:Q", title="active customers"),
                   [alt.Tooltip("yearmonth(month):T", title="month"), "segment_name", "active_customers"],
                   "Active customers by segment")
    return alt.vconcat(revenue, active, data=monthly).properties(title="Trends by segment")


#: the longest product label a chart shows, in characters (the rest is cut to an ellipsis)
LABEL_CHARS = 30


def product_labels(frame: pd.DataFrame, chars: int = LABEL_CHARS) -> pd.Series:
    """Each line's product name (its id where it has none), cut to ``chars`` characters with an ellipsis.

    Unique within each segment: two products of one name (or of one start, once cut), each a bar of
    its own, are told apart by their ids.
    """
    label = frame["product_name"].fillna(frame["product_id"]).astype(str)
    label = label.where(label.str.len() <= chars, label.str.slice(0, chars - 1).str.rstrip() + "\u2026")
    group = frame["segment_name"] if "segment_name" in frame else pd.Series(0, index=frame.index)
    clash = pd.DataFrame({"g": group, "l": label}).duplicated(keep=False).to_numpy()
    return label.where(~clash, label + " (" + frame["product_id"].astype(str) + ")")


def top_products_chart(top: pd.DataFrame, value: str = "revenue", n: int = 10) -> alt.Chart:
    """Bar charts of the top products of each segment (one panel per segment)."""
    names = _names(top)
    data = top[top["rank"] <= n].copy()
    data["label"] = product_labels(data)
    panels = []
    for name in names:
        part = data[data["segment_name"] == name]
        if part.empty:
            continue
        panels.append(Chart(part).mark_bar().encode(
            x=alt.X(f"{value}:Q", title=value),
            # the labels come short enough (product_labels): Vega measuring each one again and again to
            # cut it at its own limit was most of the chart's drawing time
            y=alt.Y("label:N", title=None, sort="-x", axis=alt.Axis(labelLimit=0)),
            color=_segment_color(names),
            tooltip=["segment_name", "product_id", "product_name", alt.Tooltip("revenue:Q", format=",.0f"),
                     alt.Tooltip("buyers:Q", format=","), alt.Tooltip("lift:Q", format=".2f")],
        ).properties(width=WIDTH // 2, height=16 * len(part), title=name))
    if not panels:
        return Chart(pd.DataFrame({"note": ["no product data"]})).mark_text().encode(text="note:N")
    rows = [alt.hconcat(*panels[i: i + 2]) for i in range(0, len(panels), 2)]
    return alt.vconcat(*rows).properties(title=f"Top products by segment ({value})")


def pca_chart(Z: np.ndarray, segment_names: list[str] | np.ndarray, order: list[str] | None = None,
              sample: int = 4000, random_state: int = 42) -> alt.Chart:
    """Customers in two dimensions (PCA of the clustering space), coloured by segment."""
    from sklearn.decomposition import PCA

    names_arr = np.asarray(segment_names)
    rng = np.random.default_rng(random_state)
    idx = np.arange(len(Z)) if len(Z) <= sample else np.sort(rng.choice(len(Z), sample, replace=False))
    pca = PCA(n_components=min(2, Z.shape[1]), random_state=random_state).fit(Z)
    xy = pca.transform(Z[idx])
    if xy.shape[1] == 1:
        xy = np.column_stack([xy[:, 0], np.zeros(len(xy))])
    data = pd.DataFrame({"pc1": xy[:, 0], "pc2": xy[:, 1], "segment_name": names_arr[idx]})
    order = order or list(dict.fromkeys(names_arr))
    var = pca.explained_variance_ratio_
    return Chart(data).mark_circle(size=14, opacity=0.6).encode(
        x=alt.X("pc1:Q", title=f"component 1 ({var[0]:.0%} of variance)"),
        y=alt.Y("pc2:Q", title=f"component 2 ({var[1] if len(var) > 1 else 0:.0%})"),
        color=_segment_color(order), tooltip=["segment_name"],
    ).properties(width=WIDTH, height=HEIGHT + 80, title=f"Customers by segment (PCA, {len(idx):,} shown)")


def spec(chart: alt.TopLevelMixin, validate: bool = False) -> dict:
    """The chart's Vega-Lite spec.

    Not checked against the Vega-Lite schema unless ``validate``: that check is a third of a small
    run's chart time and finds mistakes in this module, not in data, so the tests do it for every
    chart a run draws (tests/pipeline/test_analysis.py, tests/outputs/test_report.py).
    """
    out = chart.to_dict(validate=False)
    # numbers and dates are never too long to show whole: Vega need not measure them against a limit.
    # New dicts: the spec's config may be Altair's theme's own (shared by every chart of the process)
    config = dict(out.get("config", {}))
    for kind in ("axisQuantitative", "axisTemporal"):
        config[kind] = {"labelLimit": 0, **config.get(kind, {})}
    out["config"] = config
    if validate:
        from altair.vegalite.v6.schema.core import Root

        Root.validate(out)
    return out


def save_chart(chart: alt.TopLevelMixin, stem: str | Path, scale: float = 2.0, *,
               png: bool = True) -> dict[str, Path]:
    """Write ``stem.svg`` and ``stem.png`` (offline, atomically); return their paths.

    ``png=False``: the SVG only; :func:`~customerlens.outputs.rasters.rasterize` draws the PNG from it
    later (the returned path).
    """
    return write_chart(spec(chart), stem, scale, png=png)


def write_chart(vega_lite: dict, stem: str | Path, scale: float = 2.0, *, png: bool = True) -> dict[str, Path]:
    """:func:`save_chart` of a chart's Vega-Lite spec (:func:`spec`): ``stem.svg`` and ``stem.png``; their paths."""
    import vl_convert as vlc

    from customerlens.outputs import fonts

    stem = Path(stem)
    fonts.ready()
    svg = vlc.vegalite_to_svg(vega_lite)
    with atomic_path(stem.with_suffix(".svg")) as tmp:
        tmp.write_text(svg, encoding="utf-8")
    if png:
        write_png(svg, stem.with_suffix(".png"), scale)
    return {"svg": stem.with_suffix(".svg"), "png": stem.with_suffix(".png")}


def campaign_lift_chart(lift_frame: pd.DataFrame, outcome: str, arm: str | None = None) -> alt.Chart:
    """A forest plot of one outcome's lifts: each arm over control per segment value, with its interval.

    Takes the table of :func:`customerlens.models.campaigns.campaign_lift` (randomised) or of
    :func:`customerlens.models.observational.send_lift` (a send list): one panel per segment column
    (``all`` first), a point at the lift and a bar over its interval, a dashed rule at zero; for a send
    list a hollow diamond at the naive (unadjusted) lift beside the adjusted one. Rows flagged
    ``too_small`` are drawn in grey so they are seen but not read as a ranking. The report, the output
    folder's charts and the dashboard's campaigns page all draw this one. Columns beyond the outcome,
    segment and lift with its interval are optional (a hand-made table draws too).
    """
    data = lift_frame[lift_frame["outcome"] == outcome]
    if arm is not None and "arm" in data.columns:
        data = data[data["arm"] == arm]
    if data.empty:
        note = f"no rows for outcome {outcome!r}" + (f" and arm {arm!r}" if arm is not None else "")
        return Chart(pd.DataFrame({"note": [note]})).mark_text().encode(text="note:N")
    columns = ["campaign", "arm", "segment_by", "segment_value", "n_treatment", "n_control", "mean_treatment",
               "mean_control", "lift", "lift_ci_low", "lift_ci_high", "naive_lift", "p_adjusted", "too_small",
               "too_small_reason"]
    data = data[[c for c in columns if c in data.columns]].copy()
    defaults = {"campaign": "campaign", "arm": "treatment", "too_small": False, "too_small_reason": ""}
    for column, default in defaults.items():
        data[column] = data[column].fillna(default) if column in data.columns else default
    data["too_small"] = data["too_small"].astype(bool)
    if "naive_lift" in data.columns:  # a randomised row's naive lift is its lift: only a send list's differs
        naive_lift = pd.to_numeric(data["naive_lift"], errors="coerce")
        data["naive_lift"] = naive_lift.where(~np.isclose(naive_lift, data["lift"], rtol=1e-9, atol=0.0))
    naive = "naive_lift" in data.columns and data["naive_lift"].notna().any()
    several_campaigns = data["campaign"].nunique() > 1
    data["series"] = (data["campaign"].astype(str) + ": " + data["arm"].astype(str)) if several_campaigns \
        else data["arm"].astype(str)
    series = list(dict.fromkeys(data["series"]))
    types = lift_frame.loc[lift_frame["outcome"] == outcome, "outcome_type"] if "outcome_type" in lift_frame \
        else pd.Series(dtype=str)
    binary = bool(len(types)) and bool(types.eq("binary").all())
    fmt = "+.2%" if binary else "+,.2f"
    axis_format = ".2~%" if binary else ",.2~f"  # ticks without trailing zeros: -6% ... 14%
    x_title = f"lift in {outcome} rate (percentage points)" if binary else f"lift in mean {outcome} per customer"
    panels = list(dict.fromkeys(data["segment_by"]))
    color = alt.condition("datum.too_small", alt.value("#bab0ac"),
                          alt.Color("series:N", title="arm", sort=series,
                                    scale=alt.Scale(domain=series, range=list(PALETTE[: len(series)]))))
    y = alt.Y("segment_value:N", title=None, sort=None)
    tooltip = ["arm", "segment_by", "segment_value", alt.Tooltip("lift:Q", format=fmt),
               alt.Tooltip("lift_ci_low:Q", format=fmt), alt.Tooltip("lift_ci_high:Q", format=fmt)]
    tooltip += [alt.Tooltip(f"{c}:Q", format=",") for c in ("n_treatment", "n_control") if c in data.columns]
    tooltip += [alt.Tooltip("p_adjusted:Q", format=".3g")] if "p_adjusted" in data.columns else []
    tooltip += ["too_small_reason"]
    offset = {"yOffset": alt.YOffset("series:N", sort=series)} if len(series) > 1 else {}
    zero = Chart().mark_rule(color="#555", strokeDash=[4, 3], aria=False).encode(x=alt.datum(0))  # decoration
    interval = Chart().mark_rule(strokeWidth=2).encode(
        x=alt.X("lift_ci_low:Q", title=x_title, axis=alt.Axis(format=axis_format)), x2="lift_ci_high:Q",
        y=y, color=color, tooltip=tooltip, **offset)
    point = Chart().mark_point(filled=True, size=55, opacity=1).encode(
        x="lift:Q", y=y, color=color, tooltip=tooltip, **offset)
    layers = [zero, interval, point]
    if naive:
        layers.append(Chart().mark_point(filled=False, size=55, color="#52606d", shape="diamond").encode(
            x="naive_lift:Q", y=y, tooltip=["arm", "segment_by", "segment_value",
                                            alt.Tooltip("naive_lift:Q", format=fmt, title="naive lift")],
            **offset))
    layered = alt.layer(*layers, data=data).properties(
        width=WIDTH, height=alt.Step(14 if len(series) > 1 else 18))
    chart = layered.facet(
        row=alt.Row("segment_by:N", sort=panels, title=None,
                    header=alt.Header(labelAngle=0, labelAlign="left", labelFontWeight="bold")),
    ).resolve_scale(y="independent")
    who = arm if arm is not None else " and ".join(dict.fromkeys(data["arm"].astype(str)))
    control = lift_frame["control"].iloc[0] if "control" in lift_frame.columns else "control"
    subtitle = (f"Point: lift; bar: {lift_frame.attrs.get('confidence', 0.95):.0%} interval; dashed line: no "
                "effect. Grey: too small to judge (flagged, not ranked).")
    if naive:
        subtitle += " Hollow diamond: the naive lift, before adjusting for who was sent."
    return chart.properties(title=alt.Title(f"Lift in {outcome}: {who} against {control}, by segment",
                                            subtitle=subtitle))


# -- customer value (customerlens.models.value) ---------------------------------------------------------

def value_by_segment_chart(by_segment: pd.DataFrame, clv_column: str = "clv") -> alt.Chart:
    """Expected value of the next months by segment, and the part at risk of leaving."""
    names = _names(by_segment)
    data = by_segment.melt(id_vars=["segment_id", "segment_name", "customers"], value_vars=[clv_column, "value_at_risk"],
                           var_name="measure", value_name="value")
    data["measure"] = data["measure"].map({clv_column: "expected value (CLV)", "value_at_risk": "value at risk"})
    bars = Chart(data).mark_bar().encode(
        x=alt.X("value:Q", title=None, axis=alt.Axis(format=",.0f")),
        y=_segment_axis(names),
        color=_segment_color(names),
        tooltip=["segment_name", "measure", alt.Tooltip("value:Q", format=",.0f"),
                 alt.Tooltip("customers:Q", format=",")],
    ).properties(width=WIDTH // 2, height=28 * len(names))
    return bars.facet(column=alt.Column("measure:N", title=None)).resolve_scale(x="independent").properties(
        title="Customer value by segment")


def p_alive_chart(stats: pd.DataFrame) -> alt.Chart:
    """P(alive) and churn risk within each segment: box (quartiles), median tick, 5-95 % whiskers.

    ``stats``: one row per segment and measure with ``q05, q1, median, q3, q95, n``.
    """
    names = _names(stats)
    panels = []
    for measure in stats["measure"].drop_duplicates():
        part = stats[stats["measure"] == measure]
        base = Chart(part).encode(y=_segment_axis(names))
        whisker = base.mark_rule(color="#555").encode(
            x=alt.X("q05:Q", scale=alt.Scale(domain=[0, 1]), title=measure), x2="q95:Q")
        box = base.mark_bar(size=16).encode(
            x="q1:Q", x2="q3:Q", color=_segment_color(names),
            tooltip=["segment_name", "measure", alt.Tooltip("median:Q", format=".2f"),
                     alt.Tooltip("q1:Q", format=".2f"), alt.Tooltip("q3:Q", format=".2f"),
                     alt.Tooltip("n:Q", format=",")])
        median = base.mark_tick(color="white", size=16, thickness=2).encode(x="median:Q")
        panels.append((whisker + box + median).properties(width=WIDTH // 2, height=28 * len(names)))
    return alt.hconcat(*panels).properties(title=alt.Title(
        "Who stays: P(alive) and churn risk by segment", subtitle="box: quartiles; line: 5-95 %"))


def tracking_chart(tracking: pd.DataFrame, calibration_end=None) -> alt.Chart:
    """Cumulative repeat transactions by week: actual against each model (the classic tracking plot)."""
    series = [c for c in tracking.columns if c not in ("week_end", "period")]
    data = tracking.melt(id_vars=["week_end"], value_vars=series, var_name="series", value_name="repeat_transactions")
    data["week_end"] = pd.to_datetime(data["week_end"])
    lines = Chart(data).mark_line().encode(
        x=alt.X("week_end:T", title="week"),
        y=alt.Y("repeat_transactions:Q", title="cumulative repeat transactions"),
        color=alt.Color("series:N", title=None, scale=alt.Scale(range=[PALETTE[0], PALETTE[2], PALETTE[1]])),
        strokeDash=alt.condition(alt.datum.series == "actual", alt.value([1, 0]), alt.value([5, 3])),
        tooltip=[alt.Tooltip("week_end:T"), "series", alt.Tooltip("repeat_transactions:Q", format=",.0f")],
    )
    layers = [lines]
    if calibration_end is not None:
        rule = Chart(pd.DataFrame({"end": [pd.Timestamp(calibration_end)]})).mark_rule(
            color="#888", strokeDash=[2, 2]).encode(x="end:T")
        layers.append(rule)
    return alt.layer(*layers).properties(width=WIDTH, height=HEIGHT, title=alt.Title(
        "Tracking: actual and expected repeat transactions",
        subtitle="dashed rule: end of the calibration period" if calibration_end is not None else ""))


def holdout_by_frequency_chart(table: pd.DataFrame) -> alt.Chart:
    """Mean holdout transactions, actual and predicted, by number of calibration repeat transactions."""
    data = table.drop(columns=["customers"]).melt(id_vars=["frequency"], var_name="series", value_name="mean")
    return Chart(data).mark_bar().encode(
        x=alt.X("frequency:N", title="repeat transactions in the calibration period", sort=None),
        xOffset="series:N",
        y=alt.Y("mean:Q", title="mean transactions in the holdout"),
        color=alt.Color("series:N", title=None),
        tooltip=["frequency", "series", alt.Tooltip("mean:Q", format=".3f")],
    ).properties(width=WIDTH, height=HEIGHT, title="Holdout: actual and predicted, by calibration frequency")


def reliability_chart(reliability: pd.DataFrame) -> alt.Chart:
    """Predicted probability against observed rate per bin, one line per churn-risk candidate."""
    diagonal = Chart(pd.DataFrame({"p": [0.0, 1.0]})).mark_line(color="#bbb", strokeDash=[4, 4]).encode(
        x="p:Q", y="p:Q")
    points = Chart(reliability).mark_line(point=True).encode(
        x=alt.X("predicted:Q", title="predicted P(no purchase)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("observed:Q", title="observed share without a purchase", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("candidate:N", title=None),
        tooltip=["candidate", "bin", alt.Tooltip("customers:Q", format=","), alt.Tooltip("predicted:Q", format=".3f"),
                 alt.Tooltip("observed:Q", format=".3f")],
    )
    return (diagonal + points).properties(width=WIDTH // 1.3, height=WIDTH // 1.3,
                                          title="Churn risk calibration (reliability)")


# -- trends and migration ------------------------------------------------------------------------

def cohort_heatmap(cohorts: pd.DataFrame, max_months: int = 24) -> alt.Chart:
    """Retention by first-purchase month (rows) and months since (columns), as a heat map (whole months only)."""
    data = _whole_months(cohorts[cohorts["months_since"] <= max_months]).copy()
    data["cohort"] = pd.to_datetime(data["cohort"]).dt.strftime("%Y-%m")
    data["label"] = np.where(data["months_since"] == 0, data["cohort_size"].map("{:,}".format),
                             (data["retention"] * 100).round(0).astype(int).astype(str))
    base = Chart(data).encode(
        x=alt.X("months_since:O", title="months since the first purchase"),
        y=alt.Y("cohort:O", title="first-purchase month"),
    )
    cells = base.mark_rect().encode(
        color=alt.condition(alt.datum.months_since == 0, alt.value("#e8e8e8"),
                            alt.Color("retention:Q", title="still buying", scale=alt.Scale(scheme="blues"),
                                      legend=alt.Legend(format="%"))),
        tooltip=["cohort", "months_since", alt.Tooltip("cohort_size:Q", format=","),
                 alt.Tooltip("active_customers:Q", format=","), alt.Tooltip("retention:Q", format=".1%"),
                 alt.Tooltip("revenue:Q", format=",.0f")],
    )
    text = base.mark_text(fontSize=9).encode(
        text="label:N",
        color=alt.condition((alt.datum.retention > 0.5) & (alt.datum.months_since > 0), alt.value("white"),
                            alt.value("#333")))
    n = data["months_since"].nunique()
    return (cells + text).properties(
        width=max(240, 26 * n), height=18 * data["cohort"].nunique(),
        title=alt.Title("Cohorts: share of each first-purchase month still buying",
                        subtitle="first column: cohort size; then % of the cohort with an order that month"))


def migration_chart(migration: pd.DataFrame, dates: tuple[str, str] | None = None) -> alt.Chart:
    """Transition matrix of segments between two dates: customers (cells) with revenue in the tooltip."""
    order_from = (migration.sort_values("from_segment_id").drop_duplicates("from_segment")["from_segment"].tolist())
    order_to = (migration.sort_values("to_segment_id").drop_duplicates("to_segment")["to_segment"].tolist())
    data = migration.copy()
    data["share_of_row"] = data["customers"] / data.groupby("from_segment")["customers"].transform("sum")
    base = Chart(data).encode(
        x=alt.X("to_segment:N", title=f"segment on {dates[1]}" if dates else "segment at the end", sort=order_to,
                axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("from_segment:N", title=f"segment on {dates[0]}" if dates else "segment at the start",
                sort=order_from),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share_of_row:Q", title="share of the row", scale=alt.Scale(scheme="oranges"),
                        legend=alt.Legend(format="%")),
        tooltip=["from_segment", "to_segment", alt.Tooltip("customers:Q", format=","),
                 alt.Tooltip("share_of_row:Q", format=".1%"), alt.Tooltip("revenue:Q", format=",.0f")],
    )
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text("customers:Q", format=","),
        color=alt.condition(alt.datum.share_of_row > 0.5, alt.value("white"), alt.value("#333")))
    return (cells + text).properties(
        width=110 * len(order_to), height=40 * len(order_from),
        title=alt.Title("Segment migration", subtitle="customers moving between segments (same fitted model); "
                        "revenue between the dates in the tooltip"))


# -- the dashboard's own views of one segment or one customer ---------------------------------------------

def score_histograms(scores: pd.DataFrame, clv_title: str = "CLV") -> alt.Chart:
    """How churn risk and customer value spread over customers (``churn_risk``, ``clv``)."""
    risk = Chart(scores).mark_bar(color=PALETTE[3]).encode(
        x=alt.X("churn_risk:Q", bin=alt.Bin(extent=[0, 1], step=0.05), title="churn risk",
                axis=alt.Axis(format="%")),
        y=alt.Y("count():Q", title="customers"),
        tooltip=[alt.Tooltip("count():Q", title="customers", format=",")],
    ).properties(width=WIDTH // 2, height=HEIGHT // 1.5)
    value = Chart(scores).mark_bar(color=PALETTE[0]).encode(
        x=alt.X("clv:Q", bin=alt.Bin(maxbins=30), title=clv_title),
        y=alt.Y("count():Q", title="customers"),
        tooltip=[alt.Tooltip("count():Q", title="customers", format=",")],
    ).properties(width=WIDTH // 2, height=HEIGHT // 1.5)
    return alt.hconcat(risk, value).properties(title="Churn risk and customer value")


def purchase_timeline(orders: pd.DataFrame) -> alt.Chart:
    """A customer's orders: net amount by date (``order_id, order_date, amount, lines``)."""
    return Chart(orders).mark_bar(color=PALETTE[0], width=6).encode(
        x=alt.X("order_date:T", title="order date"),
        y=alt.Y("amount:Q", title="net amount"),
        tooltip=["order_id", alt.Tooltip("order_date:T", format="%Y-%m-%d"), alt.Tooltip("amount:Q", format=",.2f"),
                 alt.Tooltip("lines:Q", title="lines")],
    ).properties(width=WIDTH, height=HEIGHT // 1.5, title="Purchases over time")


def outlook_chart(outlook: pd.DataFrame, p_alive: float) -> alt.Chart:
    """Expected purchases in the next 1..12 months (cumulative), with P(alive) in the subtitle."""
    return Chart(outlook).mark_line(point=True, color=PALETTE[1]).encode(
        x=alt.X("months_ahead:O", title="months ahead"),
        y=alt.Y("expected_purchases:Q", title="expected purchases (cumulative)"),
        tooltip=["months_ahead", alt.Tooltip("expected_purchases:Q", format=".2f")],
    ).properties(width=WIDTH, height=HEIGHT // 1.5, title=alt.Title(
        "Expected purchases, next 12 months", subtitle=f"P(still a customer today) = {p_alive:.0%}"))


def changes_chart(changes: pd.DataFrame, dates: tuple[str, str] | None = None) -> alt.Chart:
    """Each segment then and now: customers, value at risk, mean churn risk.

    ``changes``: ``segment_id, segment_name, measure, when, value``; ``when`` is "last run" or "this run".
    """
    names = _names(changes)
    panels = []
    for measure in dict.fromkeys(changes["measure"]):
        part = changes[changes["measure"] == measure]
        fmt = ".0%" if "risk" in measure and "value" not in measure else ",.0f"
        panels.append(Chart(part).mark_bar().encode(
            x=alt.X("value:Q", title=measure, axis=alt.Axis(format=fmt)),
            y=_segment_axis(names),
            yOffset=alt.YOffset("when:N", sort=["last run", "this run"]),
            color=alt.Color("when:N", title=None, sort=["last run", "this run"],
                            scale=alt.Scale(domain=["last run", "this run"], range=["#bab0ac", PALETTE[0]])),
            tooltip=["segment_name", "when", alt.Tooltip("value:Q", format=fmt, title=measure)],
        ).properties(width=WIDTH // 3, height=alt.Step(12)))
    subtitle = f"last run: snapshot {dates[0]}; this run: {dates[1]}" if dates else ""
    return alt.hconcat(*panels).properties(title=alt.Title("What changed since the last run", subtitle=subtitle))
