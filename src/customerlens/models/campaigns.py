"""Stage: models -> campaign analysis. Lift of each treatment arm over control, overall and by segment.

Input is a campaign table with one row per customer and campaign (a file or any
frame narwhals reads): the group (treatment arm or control), one or more numeric
outcomes, and the columns to break the result down by. :func:`campaign_lift`
hands on one tidy DataFrame, one row per campaign x arm x segment column x
segment value x outcome, with lifts, 95% intervals, p-values corrected for
multiple testing and a ``too_small`` flag; :func:`campaign_summary` turns it into
plain sentences and :func:`lift_heterogeneity` says whether a lift differs
across the values of a segment column.

The statistics (docs/campaigns.md):

* binary outcomes (every value 0 or 1): two-proportion Wald interval for the
  difference, two-proportion z-test (pooled) for the p-value;
* other outcomes: Welch interval (t with Welch-Satterthwaite degrees of
  freedom) and Welch's t-test, plus a seeded percentile bootstrap interval of the
  difference of means (for skewed outcomes such as spend);
* relative lift: ratio of means with a log-ratio delta-method interval;
* p_adjusted: Benjamini-Hochberg within each family of rows that share
  campaign, arm, outcome and segment column.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from customerlens.core.frames import as_pandas
from customerlens.errors import DataQualityError, InputError, SchemaError
from customerlens.io.campaign_table import read_campaign_table
from customerlens.io.load import SourceInfo

log = logging.getLogger(__name__)

#: ``segment_by`` and ``segment_value`` of the whole-campaign rows.
ALL = "all"
#: Segment column added when customerlens segments are joined by customer id.
SEGMENT_NAME = "segment_name"
MISSING_LABEL = "(missing)"
UNSEGMENTED_LABEL = "(unsegmented)"

#: Columns of :func:`campaign_lift`'s result, in order.
COLUMNS = (
    "campaign", "arm", "control", "segment_by", "segment_value", "outcome", "outcome_type",
    "n_treatment", "n_control", "mean_treatment", "mean_control",
    "responders_treatment", "responders_control",
    "lift", "lift_se", "lift_ci_low", "lift_ci_high", "lift_boot_ci_low", "lift_boot_ci_high", "df",
    "relative_lift", "relative_lift_ci_low", "relative_lift_ci_high",
    "p_value", "p_adjusted",
    "incremental_value", "incremental_value_ci_low", "incremental_value_ci_high",
    "cost", "roi", "roi_ci_low", "roi_ci_high",
    "too_small", "too_small_reason",
    "design", "naive_lift",
)



# --------------------------------------------------------------------------- preparing


def _check_columns(table: pd.DataFrame, source: SourceInfo, wanted: dict[str, str | None]) -> None:
    for role, column in wanted.items():
        if column is not None and column not in table.columns:
            raise SchemaError(
                f"{source.name}: no column {column!r} (the {role}); columns found: "
                f"{', '.join(map(str, table.columns))}"
            )


def first_bad(table: pd.DataFrame, source: SourceInfo, column: str, bad: np.ndarray, what: str) -> None:
    """Raise a one-line error naming the file, column and first row where ``bad`` holds (and how many do)."""
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        value = table[column].iloc[pos]
        raise DataQualityError(
            f"{source.where(pos + 1, column)}: {what} (value {value!r}); "
            f"{int(bad.sum()):,} row(s) like this"
        )


def _numeric_outcome(table: pd.DataFrame, source: SourceInfo, column: str) -> np.ndarray:
    raw = table[column]
    if pd.api.types.is_bool_dtype(raw):
        raw = raw.astype("float64")
    if pd.api.types.is_numeric_dtype(raw):
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        first_bad(table, source, column, np.isnan(values),
                   "the outcome is empty; fill it (0 when the customer did not respond) or drop the row")
    else:
        coerced = pd.to_numeric(raw, errors="coerce")
        first_bad(table, source, column, (coerced.isna() & raw.notna()).to_numpy(), "not a number")
        values = coerced.to_numpy(dtype="float64", na_value=np.nan)
        first_bad(table, source, column, np.isnan(values),
                   "the outcome is empty; fill it (0 when the customer did not respond) or drop the row")
    first_bad(table, source, column, ~np.isfinite(values), "not a finite number")
    return values


def id_key(series: pd.Series) -> pd.Series:
    """Customer ids as comparable text (17850.0 and 17850 are the same customer)."""
    if pd.api.types.is_float_dtype(series):
        finite = series.dropna()
        if (finite == finite.round()).all():
            series = series.astype("Int64")
    return series.astype("string").str.strip()


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _labels(values: pd.Series) -> pd.Series:
    """Every value as its text label (1.0 -> "1"), computed once per distinct value; NaN stays NaN."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = np.array([_label(u) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(names[codes], index=values.index, dtype=object)


def _segment_labels(values: pd.Series, max_levels: int) -> pd.Categorical:
    """Segment labels in their natural order; numeric columns with many values become quintiles."""
    missing = values.isna()
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values[~missing].nunique() > max_levels:
        binned = pd.qcut(values, 5, duplicates="drop")
        intervals = list(binned.cat.categories)
        names = [f"Q{i + 1} {iv.left:,.4g} to {iv.right:,.4g}" for i, iv in enumerate(intervals)]
        labels = binned.cat.rename_categories(names).astype(object)
        order = names
    else:
        distinct = values[~missing].unique()
        try:
            distinct = sorted(distinct)
        except TypeError:
            distinct = sorted(distinct, key=str)
        order = list(dict.fromkeys(_label(v) for v in distinct))
        labels = _labels(values)
    labels = pd.Series(labels, index=values.index, dtype=object).where(~missing, MISSING_LABEL)
    if missing.any():
        order = [*order, MISSING_LABEL]
    return pd.Categorical(labels, categories=order, ordered=True)


def _join_segments(table: pd.DataFrame, source: SourceInfo, customer_col: str, segments: Any) -> pd.Series:
    if isinstance(segments, Mapping):
        seg = pd.DataFrame({"customer_id": list(segments.keys()), SEGMENT_NAME: list(segments.values())})
    else:
        seg = as_pandas(segments)
        for column in ("customer_id", SEGMENT_NAME):
            if column not in seg.columns:
                raise SchemaError(f"segments: no column {column!r}; columns found: {', '.join(seg.columns)}")
    lookup = pd.Series(seg[SEGMENT_NAME].astype(object).to_numpy(), index=id_key(seg["customer_id"]).to_numpy())
    lookup = lookup[~lookup.index.duplicated(keep="last")]
    joined = id_key(table[customer_col]).map(lookup)
    matched = int(joined.notna().sum())
    if matched == 0:
        raise DataQualityError(
            f"{source.where(None, customer_col)}: no customer id matches the segments' customer_id "
            f"(first id {table[customer_col].iloc[0]!r}, first segmented id {seg['customer_id'].iloc[0]!r})"
        )
    log.info("segments joined for %d of %d rows", matched, len(table))
    return joined.astype(object).where(joined.notna(), UNSEGMENTED_LABEL)


def _prepare(table, source, *, group_col, control, outcomes, segment_by, campaign_col, customer_col, segments,
             max_levels):
    if table.shape[0] == 0:
        raise InputError(f"{source.name}: has a header but no data rows")
    _check_columns(table, source, {"group column": group_col, "campaign column": campaign_col,
                                   "customer id column": customer_col})
    for column in outcomes:
        _check_columns(table, source, {"outcome": column})
    for column in segment_by:
        _check_columns(table, source, {"segment column": column})
    if segments is not None and customer_col is None:
        raise SchemaError(f"{source.name}: joining segments needs the customer id column (customer_col)")
    prepared = pd.DataFrame(index=table.index)
    group = table[group_col]
    first_bad(table, source, group_col, group.isna().to_numpy(), "the group is empty")
    prepared["_group"] = _labels(group).astype(str)
    if campaign_col is not None:
        campaign = table[campaign_col]
        first_bad(table, source, campaign_col, campaign.isna().to_numpy(), "the campaign is empty")
        prepared["_campaign"] = _labels(campaign).astype(str)
    else:
        name = Path(source.name).name.split(".")[0] if source.kind != "frame" else "campaign"
        prepared["_campaign"] = name
    groups = set(prepared["_group"].unique())
    if control not in groups:
        close = [g for g in groups if g.strip().lower() == str(control).strip().lower()]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataQualityError(
            f"{source.where(None, group_col)}: no row has the control arm {control!r}; arms found: "
            f"{', '.join(sorted(groups))}{hint}"
        )
    if len(groups) < 2:
        raise DataQualityError(f"{source.where(None, group_col)}: only the control arm {control!r}; "
                               "nothing to compare it with")
    if campaign_col is not None:
        has_control = prepared.groupby("_campaign", sort=False)["_group"].agg(lambda g: (g == control).any())
        lacking = has_control[~has_control].index.tolist()
        if lacking:
            raise DataQualityError(
                f"{source.where(None, campaign_col)}: campaign {lacking[0]!r} has no control arm {control!r} "
                f"({len(lacking)} campaign(s) like this)"
            )
    if customer_col is not None:
        ids = table[customer_col]
        first_bad(table, source, customer_col, ids.isna().to_numpy(), "the customer id is empty")
        dup = pd.DataFrame({"c": prepared["_campaign"], "id": id_key(ids)}).duplicated().to_numpy()
        first_bad(table, source, customer_col, dup,
                   "this customer appears twice in the same campaign; expected one row per customer and campaign")
    for column in outcomes:
        prepared[column] = _numeric_outcome(table, source, column)
    by_columns = list(segment_by)
    for column in segment_by:
        prepared["_by_" + column] = _segment_labels(table[column], max_levels)
    if segments is not None:
        prepared["_by_" + SEGMENT_NAME] = _segment_labels(_join_segments(table, source, customer_col, segments),
                                                          max_levels=10**9)
        by_columns.append(SEGMENT_NAME)
    return prepared, by_columns


# --------------------------------------------------------------------------- statistics


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values); NaN stays NaN and is not counted."""
    p = np.asarray(p_values, dtype="float64")
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="mergesort")
    scaled = q[order] * m / np.arange(1, m + 1)
    scaled = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.clip(scaled, 0.0, 1.0)
    out[ok] = adjusted
    return out


def lift_statistics(n_t, mean_t, var_t, n_c, mean_c, var_c, *, binary: bool, confidence: float = 0.95) -> dict:
    """Lift (difference of means), its interval, p-value and relative lift, from per-arm summaries.

    Vectorised over segments. ``var_*`` are sample variances (ddof 1); for a
    binary outcome they are ignored and p(1 - p) is used (Wald).

    Returns a dict of arrays: lift, lift_se, df, lift_ci_low, lift_ci_high,
    p_value, relative_lift, relative_lift_ci_low, relative_lift_ci_high.
    """
    n_t, mean_t, var_t, n_c, mean_c, var_c = (np.asarray(a, dtype="float64")
                                              for a in (n_t, mean_t, var_t, n_c, mean_c, var_c))
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = mean_t - mean_c
        if binary:
            var_t = mean_t * (1 - mean_t)
            var_c = mean_c * (1 - mean_c)
        a, b = var_t / n_t, var_c / n_c
        se = np.sqrt(a + b)
        if binary:
            df = np.full(lift.shape, np.inf)
            crit = stats.norm.ppf(0.5 + confidence / 2)
            pooled = (mean_t * n_t + mean_c * n_c) / (n_t + n_c)
            se0 = np.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
            z = lift / se0
            p_value = 2 * stats.norm.sf(np.abs(z))
            p_value = np.where((se0 == 0) & np.isfinite(lift), np.where(lift == 0, 1.0, 0.0), p_value)
        else:
            df = (a + b) ** 2 / (a ** 2 / (n_t - 1) + b ** 2 / (n_c - 1))
            df = np.where((a + b) == 0, n_t + n_c - 2, df)
            crit = stats.t.ppf(0.5 + confidence / 2, df)
            t = lift / se
            p_value = 2 * stats.t.sf(np.abs(t), df)
            p_value = np.where((se == 0) & np.isfinite(lift), np.where(lift == 0, 1.0, 0.0), p_value)
        half = crit * se
        # relative lift: ratio of means - 1, interval from the delta method on log(ratio)
        z_rel = stats.norm.ppf(0.5 + confidence / 2)
        ratio = mean_t / mean_c
        se_log = np.sqrt(a / mean_t ** 2 + b / mean_c ** 2)
        positive = (mean_t > 0) & (mean_c > 0)
        rel = np.where(mean_c != 0, ratio - 1, np.nan)
        rel_low = np.where(positive, np.exp(np.log(np.where(positive, ratio, 1)) - z_rel * se_log) - 1, np.nan)
        rel_high = np.where(positive, np.exp(np.log(np.where(positive, ratio, 1)) + z_rel * se_log) - 1, np.nan)
    return {
        "lift": lift, "lift_se": se, "df": df, "lift_ci_low": lift - half, "lift_ci_high": lift + half,
        "p_value": p_value, "relative_lift": rel, "relative_lift_ci_low": rel_low,
        "relative_lift_ci_high": rel_high,
    }


def bootstrap_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator,
                    chunk: int = 2_000_000) -> np.ndarray:
    """Means of ``n_resamples`` resamples with replacement of ``values`` (vectorised).

    Exact resampling, made cheap for zero-inflated outcomes: the most common
    value (0 for spend) is factored out, the number of other values in each
    resample is drawn as Binomial(n, share of other values), and only those are
    drawn, so the work scales with the responders, not the customers.
    """
    values = np.sort(np.asarray(values, dtype="float64"))  # sorted: the draws do not depend on row order
    n = values.size
    if n == 0:
        return np.full(n_resamples, np.nan)
    uniq, counts = np.unique(values, return_counts=True)
    base = uniq[counts.argmax()]
    rest = values[values != base] - base
    if rest.size == 0:
        return np.full(n_resamples, base)
    drawn = rng.binomial(n, rest.size / n, size=n_resamples)
    out = np.empty(n_resamples)
    step = max(1, chunk // max(int(drawn.max()), 1))
    for start in range(0, n_resamples, step):
        m = drawn[start:start + step]
        width = int(m.max())
        picks = rest[rng.integers(0, rest.size, size=(m.size, width))]
        picks[np.arange(width)[None, :] >= m[:, None]] = 0.0
        out[start:start + m.size] = base + picks.sum(axis=1) / n
    return out


def _cell_rng(random_state: int, key: tuple) -> np.random.Generator:
    """One generator per cell, seeded from its name: a cell's interval does not depend on the others."""
    return np.random.default_rng([random_state, zlib.crc32(repr(key).encode("utf-8"))])


# --------------------------------------------------------------------------- the table


def _summaries(prepared: pd.DataFrame, by: str | None, outcomes: Sequence[str]) -> pd.DataFrame:
    value = prepared["_by_" + by] if by else pd.Series(ALL, index=prepared.index)
    keys = [prepared["_campaign"].rename("campaign"), value.rename("segment_value"), prepared["_group"].rename("group")]
    grouped = prepared[list(outcomes)].groupby(keys, observed=True, sort=False)
    agg = {"n": grouped.size()}
    for outcome in outcomes:
        agg[f"mean|{outcome}"] = grouped[outcome].mean()
        agg[f"var|{outcome}"] = grouped[outcome].var(ddof=1)
        agg[f"nz|{outcome}"] = prepared[outcome].ne(0).groupby(keys, observed=True, sort=False).sum()
        agg[f"ones|{outcome}"] = prepared[outcome].eq(1).groupby(keys, observed=True, sort=False).sum()
    return pd.DataFrame(agg).reset_index()


def too_small_reasons(n_t, n_c, resp_t, resp_c, binary: bool, min_n: int, min_responders: int) -> list[str]:
    """Why each row is too small to judge ("" when it is not): arms, responders, non-responders (binary)."""
    reasons = []
    for i in range(len(n_t)):
        why = []
        if min(n_t[i], n_c[i]) < min_n:
            why.append(f"fewer than {min_n} customers in an arm")
        if min(resp_t[i], resp_c[i]) < min_responders:
            why.append(f"fewer than {min_responders} responders in an arm")
        if binary and min(n_t[i] - resp_t[i], n_c[i] - resp_c[i]) < min_responders:
            why.append(f"fewer than {min_responders} non-responders in an arm")
        reasons.append("; ".join(why))
    return reasons


def campaign_lift(
    data: Any,
    *,
    outcomes: Sequence[str],
    group_col: str = "group",
    control: str = "control",
    segment_by: Sequence[str] = (),
    campaign_col: str | None = None,
    customer_col: str | None = None,
    segments: Any = None,
    cost_per_contact: float | None = None,
    revenue_outcome: str | None = None,
    confidence: float = 0.95,
    bootstrap: int = 2000,
    random_state: int = 0,
    min_n: int = 100,
    min_responders: int = 10,
    max_levels: int = 20,
    sheet: str | int | None = None,
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Lift of every treatment arm over control, overall and per segment value, as one tidy table.

    Parameters
    ----------
    data
        Campaign table (path or frame): one row per customer and campaign.
    outcomes
        Numeric outcome columns. Columns whose values are all 0 or 1 are binary
        (two-proportion statistics); others get Welch statistics and a
        bootstrap interval.
    group_col, control
        The column naming each row's arm, and the name of the control arm.
    segment_by
        Columns to break the lift down by. Numeric columns with more than
        ``max_levels`` distinct values are cut into quintiles.
    campaign_col
        Column naming the campaign (one campaign, named after the file, if absent).
    customer_col
        Customer id column: checked for duplicates, and the key for ``segments``.
    segments
        customerlens segments, a frame with ``customer_id`` and ``segment_name``
        or a mapping id -> name; joined by customer id as one more segment
        column, ``segment_name``.
    cost_per_contact, revenue_outcome
        With a cost per contacted customer, ROI = (incremental revenue - cost) /
        cost on the rows of ``revenue_outcome``; that is the only non-binary
        outcome when not given.
    confidence
        Level of every interval.
    bootstrap
        Resamples of the percentile bootstrap for non-binary outcomes (0: none).
    random_state
        Seed of the bootstrap: the same seed gives the same intervals.
    min_n, min_responders
        A row is ``too_small`` when an arm has fewer than ``min_n`` customers,
        fewer than ``min_responders`` non-zero outcomes or, for a binary
        outcome, fewer than ``min_responders`` zeros.
    """
    outcomes = list(dict.fromkeys(outcomes))
    if not outcomes:
        raise SchemaError("name at least one outcome column")
    if not 0 < confidence < 1:
        raise InputError(f"confidence must be between 0 and 1, got {confidence}")
    if cost_per_contact is not None and cost_per_contact <= 0:
        raise InputError(f"the cost per contact must be positive, got {cost_per_contact}")
    table, source = read_campaign_table(data, sheet=sheet, encoding=encoding)
    prepared, by_columns = _prepare(
        table, source, group_col=group_col, control=str(control), outcomes=outcomes,
        segment_by=list(dict.fromkeys(segment_by)), campaign_col=campaign_col, customer_col=customer_col,
        segments=segments, max_levels=max_levels)
    binary = {o: bool(np.isin(prepared[o].to_numpy(), (0.0, 1.0)).all()) for o in outcomes}
    if cost_per_contact is not None:
        if revenue_outcome is None:
            money = [o for o in outcomes if not binary[o]]
            if len(money) != 1:
                raise InputError("a cost per contact needs the revenue outcome (revenue_outcome / --revenue-outcome)")
            revenue_outcome = money[0]
        if revenue_outcome not in outcomes:
            raise InputError(f"the revenue outcome {revenue_outcome!r} is not one of the outcomes: "
                             f"{', '.join(outcomes)}")
    positions = _cell_positions(prepared, by_columns) if bootstrap > 0 else {}
    parts = []
    for by in [None, *by_columns]:
        summary = _summaries(prepared, by, outcomes)
        control_rows = summary[summary["group"] == str(control)].drop(columns="group")
        treat_rows = summary[summary["group"] != str(control)].rename(columns={"group": "arm"})
        arms = treat_rows[["campaign", "arm"]].drop_duplicates()
        values = summary[["campaign", "segment_value"]].drop_duplicates()
        grid = arms.merge(values, on="campaign")
        merged = grid.merge(treat_rows, on=["campaign", "arm", "segment_value"], how="left").merge(
            control_rows, on=["campaign", "segment_value"], how="left", suffixes=("_t", "_c"))
        for outcome in outcomes:
            parts.append(_outcome_rows(merged, by, outcome, binary[outcome], str(control), confidence,
                                       bootstrap, random_state, positions, prepared, min_n, min_responders))
    frame = pd.concat(parts, ignore_index=True)
    frame = _order(frame, by_columns, outcomes, prepared)
    frame["p_adjusted"] = frame.groupby(["campaign", "arm", "outcome", "segment_by"], sort=False)[
        "p_value"].transform(lambda p: benjamini_hochberg(p.to_numpy()))
    frame["incremental_value"] = frame["lift"] * frame["n_treatment"]
    frame["incremental_value_ci_low"] = frame["lift_ci_low"] * frame["n_treatment"]
    frame["incremental_value_ci_high"] = frame["lift_ci_high"] * frame["n_treatment"]
    for column in ("cost", "roi", "roi_ci_low", "roi_ci_high"):
        frame[column] = np.nan
    if cost_per_contact is not None:
        rows = frame["outcome"] == revenue_outcome
        frame.loc[rows, "cost"] = cost_per_contact * frame.loc[rows, "n_treatment"]
        for suffix in ("", "_ci_low", "_ci_high"):
            frame.loc[rows, "roi" + suffix] = frame.loc[rows, "lift" + suffix] / cost_per_contact - 1
    frame.attrs.update({"confidence": confidence, "revenue_outcome": revenue_outcome,
                        "cost_per_contact": cost_per_contact, "bootstrap": bootstrap,
                        "random_state": random_state, "min_n": min_n, "min_responders": min_responders})
    # a randomised test: the plain difference is the estimate (a send list's rows differ: pipeline.campaigns)
    frame["design"] = "randomised"
    frame["naive_lift"] = frame["lift"]
    return frame[list(COLUMNS)]


def _cell_positions(prepared: pd.DataFrame, by_columns: list[str]) -> dict:
    """Row positions of every (segment column, campaign, value, group) cell, for the bootstrap."""
    positions = {}
    for by in [None, *by_columns]:
        keys = ["_campaign", "_group"] if by is None else ["_campaign", "_by_" + by, "_group"]
        for key, idx in prepared.groupby(keys, observed=True, sort=False).indices.items():
            if by is None:
                campaign, group = key
                positions[(ALL, campaign, ALL, group)] = idx
            else:
                campaign, value, group = key
                positions[(by, campaign, value, group)] = idx
    return positions


def _outcome_rows(merged, by, outcome, binary, control, confidence, bootstrap, random_state, positions,
                  prepared, min_n, min_responders) -> pd.DataFrame:
    n_t = merged["n_t"].fillna(0).to_numpy(dtype="float64")
    n_c = merged["n_c"].fillna(0).to_numpy(dtype="float64")
    resp = "ones" if binary else "nz"
    resp_t = merged[f"{resp}|{outcome}_t"].fillna(0).to_numpy(dtype="float64")
    resp_c = merged[f"{resp}|{outcome}_c"].fillna(0).to_numpy(dtype="float64")
    mean_t = merged[f"mean|{outcome}_t"].to_numpy(dtype="float64", na_value=np.nan)
    mean_c = merged[f"mean|{outcome}_c"].to_numpy(dtype="float64", na_value=np.nan)
    result = lift_statistics(n_t, mean_t, merged[f"var|{outcome}_t"].to_numpy(dtype="float64", na_value=np.nan),
                             n_c, mean_c, merged[f"var|{outcome}_c"].to_numpy(dtype="float64", na_value=np.nan),
                             binary=binary, confidence=confidence)
    by_name = by or ALL
    rows = pd.DataFrame({
        "campaign": merged["campaign"].to_numpy(), "arm": merged["arm"].to_numpy(), "control": control,
        "segment_by": by_name, "segment_value": merged["segment_value"].astype(str).to_numpy(),
        "outcome": outcome, "outcome_type": "binary" if binary else "continuous",
        "n_treatment": n_t.astype("int64"), "n_control": n_c.astype("int64"),
        "mean_treatment": mean_t, "mean_control": mean_c,
        "responders_treatment": resp_t.astype("int64"), "responders_control": resp_c.astype("int64"),
        **result,
    })
    low = np.full(len(rows), np.nan)
    high = np.full(len(rows), np.nan)
    if not binary and bootstrap > 0:
        values = prepared[outcome].to_numpy()
        tail = (1 - confidence) / 2
        for i, row in enumerate(rows[["campaign", "arm", "segment_value"]].itertuples(index=False)):
            idx_t = positions.get((by_name, row.campaign, row.segment_value, row.arm))
            idx_c = positions.get((by_name, row.campaign, row.segment_value, control))
            if idx_t is None or idx_c is None or min(len(idx_t), len(idx_c)) < 2:
                continue
            rng = _cell_rng(random_state, (row.campaign, row.arm, by_name, row.segment_value, outcome))
            diffs = bootstrap_means(values[idx_t], bootstrap, rng) - bootstrap_means(values[idx_c], bootstrap, rng)
            low[i], high[i] = np.quantile(diffs, [tail, 1 - tail])
    rows["lift_boot_ci_low"] = low
    rows["lift_boot_ci_high"] = high
    reasons = too_small_reasons(n_t, n_c, resp_t, resp_c, binary, min_n, min_responders)
    rows["too_small_reason"] = reasons
    rows["too_small"] = [bool(r) for r in reasons]
    return rows


def _natural_sorted(names) -> list[str]:
    """Names in order, numbers by value ("2" before "10")."""
    return sorted(names, key=lambda name: (0, float(name), name) if _is_number(name) else (1, 0.0, name))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _order(frame: pd.DataFrame, by_columns: list[str], outcomes: list[str], prepared: pd.DataFrame) -> pd.DataFrame:
    campaigns = {c: i for i, c in enumerate(_natural_sorted(pd.unique(prepared["_campaign"])))}
    arms = {a: i for i, a in enumerate(sorted(pd.unique(prepared["_group"])))}
    bys = {b: i for i, b in enumerate([ALL, *by_columns])}
    outs = {o: i for i, o in enumerate(outcomes)}
    value_rank = {}
    for by in by_columns:
        for i, v in enumerate(prepared["_by_" + by].cat.categories):
            value_rank[(by, str(v))] = i
    keys = pd.DataFrame({
        "c": frame["campaign"].map(campaigns), "a": frame["arm"].map(arms), "o": frame["outcome"].map(outs),
        "b": frame["segment_by"].map(bys),
        "v": [value_rank.get((b, v), -1) for b, v in zip(frame["segment_by"], frame["segment_value"])],
    })
    order = keys.sort_values(["c", "a", "o", "b", "v"], kind="mergesort").index
    return frame.loc[order].reset_index(drop=True)


# --------------------------------------------------------------------------- in words


def lift_heterogeneity(lift: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Does the lift differ across the values of a segment column? Cochran's Q per family.

    Uses the rows that are not ``too_small``: Q = sum w (lift - pooled)^2 with
    w = 1 / lift_se^2, chi-squared with (values - 1) degrees of freedom.
    """
    rows = []
    usable = lift[(lift["segment_by"] != ALL) & ~lift["too_small"] & (lift["lift_se"] > 0)]
    for (campaign, arm, outcome, by), part in usable.groupby(["campaign", "arm", "outcome", "segment_by"],
                                                              sort=False):
        k = len(part)
        if k < 2:
            continue
        w = 1 / part["lift_se"].to_numpy() ** 2
        lifts = part["lift"].to_numpy()
        pooled = float((w * lifts).sum() / w.sum())
        q = float((w * (lifts - pooled) ** 2).sum())
        rows.append({"campaign": campaign, "arm": arm, "outcome": outcome, "segment_by": by, "segments": k,
                     "pooled_lift": pooled, "q": q, "df": k - 1, "p_value": float(stats.chi2.sf(q, k - 1))})
    columns = ["campaign", "arm", "outcome", "segment_by", "segments", "pooled_lift", "q", "df", "p_value"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["differs"] = frame["p_value"] < alpha
    return frame


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def _num(value: float, points: bool, currency: str, sign: bool = False, digits: int = 2) -> str:
    """A lift or level as text: percentage points for rates, money with its currency otherwise."""
    if not np.isfinite(value):
        return "n/a"
    magnitude = abs(value) * 100 if points else abs(value)
    text = f"{magnitude:,.{digits}f}" if points else f"{currency}{magnitude:,.{digits}f}"
    prefix = "-" if value < 0 else ("+" if sign else "")
    return prefix + text


def _span(low: float, high: float, points: bool, currency: str) -> str:
    return f"{_num(low, points, currency)} to {_num(high, points, currency)}" + (" points" if points else "")


def campaign_summary(lift: pd.DataFrame, *, alpha: float = 0.05, currency: str = "",
                     money_outcomes: Sequence[str] = (), top: int = 3) -> list[str]:
    """Plain-language sentences about :func:`campaign_lift`'s table: what each arm did, and where.

    One group of sentences per campaign, arm and outcome: the overall effect
    with its interval, ROI when a cost was given, the segment values where
    the lift is largest (only rows that are not ``too_small`` and significant
    after Benjamini-Hochberg), whether the lift differs between segment values
    at all (Cochran's Q, :func:`lift_heterogeneity`), and which segment values
    are too small to judge.

    Parameters
    ----------
    lift
        The table from :func:`campaign_lift`.
    alpha
        Significance level for "clear" effects (``p_adjusted`` for segments).
    currency, money_outcomes
        Prefix such as ``"$"`` for the outcomes that are money.
    top
        Segment values named per arm and outcome.
    """
    sentences = []
    ci = f"{lift.attrs.get('confidence', 0.95):.0%} CI"
    het = lift_heterogeneity(lift, alpha=alpha) if not lift.empty else pd.DataFrame()
    overall = lift[lift["segment_by"] == ALL]
    several = overall["campaign"].nunique() > 1
    for row in overall.itertuples(index=False):
        points = row.outcome_type == "binary"
        cur = currency if row.outcome in money_outcomes else ""
        who = f"{row.campaign}: {row.arm}" if several else row.arm
        if row.too_small:  # never a headline: a lift this thin is noise however it reads
            sentences.append(f"{who}: too small to judge {row.outcome} ({row.n_treatment:,} in the arm, "
                             f"{row.n_control:,} in {row.control}: {row.too_small_reason}).")
            continue
        clear = bool(row.p_value < alpha) and not (row.lift_ci_low <= 0 <= row.lift_ci_high)
        verb = ("raised" if row.lift > 0 else "lowered") if clear else "made no clear difference to"
        if points:
            levels = f"{row.mean_treatment:.2%} against {row.mean_control:.2%} with {row.control}"
            what = f"the {row.outcome} rate"
            amount = f"{_num(row.lift, True, cur, sign=not clear)} points"
        else:
            levels = (f"{_num(row.mean_treatment, False, cur)} against {_num(row.mean_control, False, cur)} "
                      f"with {row.control}")
            what = row.outcome
            amount = f"{_num(row.lift, False, cur, sign=not clear)} per customer"
        interval = f"{ci} {_span(row.lift_ci_low, row.lift_ci_high, points, cur)}"
        if np.isfinite(row.lift_boot_ci_low):
            interval += f", bootstrap {_span(row.lift_boot_ci_low, row.lift_boot_ci_high, points, cur)}"
        if clear:
            text = f"{who} {verb} {what} by {amount.lstrip('+-')} ({levels}; {interval}; {_p_text(row.p_value)})"
            if np.isfinite(row.relative_lift):
                text += (f", {row.relative_lift:+.0%} ({ci} {row.relative_lift_ci_low:+.0%} to "
                         f"{row.relative_lift_ci_high:+.0%})")
            if points:
                text += (f": about {abs(row.incremental_value):,.0f} {'more' if row.lift > 0 else 'fewer'} "
                         f"customers with {row.outcome} among the {row.n_treatment:,} in the arm.")
            else:
                text += (f": {_num(row.incremental_value, False, cur, digits=0)} in total over the "
                         f"{row.n_treatment:,} customers in the arm.")
        else:
            text = f"{who} {verb} {what}: {amount} ({levels}; {interval}; {_p_text(row.p_value)})."
        sentences.append(text)
        if np.isfinite(row.roi):
            sentences.append(
                f"At {cur}{lift.attrs.get('cost_per_contact', float('nan')):,.2f} per contact, {who} brought "
                f"{_num(row.incremental_value, False, cur, digits=0)} of extra {row.outcome} for "
                f"{_num(row.cost, False, cur, digits=0)} of cost: ROI {row.roi:.1f} ({ci} {row.roi_ci_low:.1f} "
                f"to {row.roi_ci_high:.1f}; above 0 it pays for itself).")
        segs = lift[(lift["campaign"] == row.campaign) & (lift["arm"] == row.arm) & (lift["outcome"] == row.outcome)
                    & (lift["segment_by"] != ALL)]
        if segs.empty:
            continue
        small = segs[segs["too_small"]]
        reliable = segs[~segs["too_small"]]
        family = het[(het["campaign"] == row.campaign) & (het["arm"] == row.arm)
                     & (het["outcome"] == row.outcome)] if not het.empty else het
        differs = family[family["p_value"] < alpha] if not family.empty else family
        direction = 1 if row.lift >= 0 else -1
        strong = reliable[(reliable["p_adjusted"] < alpha) & (np.sign(reliable["lift"]) == direction)]
        strong = strong.sort_values("lift", ascending=direction < 0).head(top)
        if clear and not strong.empty:
            named = ", ".join(f"{s.segment_by} {s.segment_value} ({_num(s.lift, points, cur, sign=True)}"
                              f"{' points' if points else ''}, {ci} {_span(s.lift_ci_low, s.lift_ci_high, points, cur)})"
                              for s in strong.itertuples(index=False))
            text = f"The {row.outcome} lift of {row.arm} is largest in {named}"
            if not family.empty and differs.empty:
                text += (f"; but no segment column shows a lift that differs clearly between its values "
                         f"(Cochran's Q p >= {alpha:g} for {', '.join(family['segment_by'])}), so read this "
                         "ranking as noise around one common lift")
            sentences.append(text + ".")
        if not differs.empty:
            parts = []
            for d in differs.itertuples(index=False):
                part = reliable[reliable["segment_by"] == d.segment_by].sort_values("lift")
                low, high = part.iloc[0], part.iloc[-1]
                parts.append(f"{d.segment_by} ({_p_text(d.p_value)}; from {low['segment_value']} "
                             f"{_num(low['lift'], points, cur, sign=True)} to {high['segment_value']} "
                             f"{_num(high['lift'], points, cur, sign=True)}{' points' if points else ''})")
            sentences.append(f"The {row.outcome} lift of {row.arm} differs by " + "; ".join(parts) + ".")
        if not small.empty:
            examples = ", ".join(f"{s.segment_by} {s.segment_value}" for s in small.head(top).itertuples(index=False))
            more = f" and {len(small) - top} more" if len(small) > top else ""
            sentences.append(f"Too small to judge {row.arm} on {row.outcome} (flagged, not ranked): "
                             f"{examples}{more}.")
    return sentences


DERIVED_OUTCOMES = ("purchased", "orders", "spend")


def outcomes_from_transactions(table: Any, transactions: Any, *, customer_col: str, send_date: Any = None,
                               send_date_col: str | None = None, window_days: int = 14) -> pd.DataFrame:
    """Add the outcomes of each row from what its customer bought after the send.

    For every row, the clean transactions of its customer in ``[send date,
    send date + window_days)`` give ``purchased`` (0/1), ``orders`` (distinct
    orders) and ``spend`` (net amount); customers without a purchase get 0.
    The send date is ``send_date`` for all rows, or each row's
    ``send_date_col``. Returns a copy of the table with the three columns.
    """
    frame, source = read_campaign_table(table) if not isinstance(table, pd.DataFrame) else (
        table.reset_index(drop=True), SourceInfo(name="campaign table", kind="frame", header_lines=0))
    if window_days < 1:
        raise DataQualityError(f"the outcome window must be at least one day, got {window_days}")
    if (send_date is None) == (send_date_col is None):
        raise SchemaError("give either one send date for every row or the column that holds each row's")
    _check_columns(frame, source, {"customer id": customer_col, "send date": send_date_col})
    clash = [c for c in DERIVED_OUTCOMES if c in frame.columns]
    if clash:
        raise SchemaError(f"{source.name}: already has column(s) {', '.join(clash)}; the outcomes derived from "
                          "the transactions would replace them: rename them first")
    out = frame.copy()
    if send_date_col is not None:
        sent = pd.to_datetime(out[send_date_col].astype("string"), errors="coerce", format="mixed")
        bad = sent.isna().to_numpy()
        if bad.any():
            first_bad(out, source, send_date_col, bad, "not a date")
    else:
        try:
            sent = pd.Series(pd.Timestamp(send_date), index=out.index)
        except (ValueError, TypeError):
            raise DataQualityError(f"--send-date {send_date!r} is not a date; use YYYY-MM-DD") from None
    lines = as_pandas(transactions)[["customer_id", "order_id", "order_date", "amount"]].copy()
    lines["customer_id"] = id_key(lines["customer_id"])
    lines["order_date"] = pd.to_datetime(lines["order_date"])
    keys = pd.DataFrame({"_row": np.arange(len(out)), "customer_id": id_key(out[customer_col]).to_numpy(),
                         "_start": sent.dt.normalize().to_numpy()})
    keys["_end"] = keys["_start"] + pd.Timedelta(days=window_days)
    joined = keys.merge(lines, on="customer_id", how="inner")
    joined = joined[(joined["order_date"] >= joined["_start"]) & (joined["order_date"] < joined["_end"])]
    per_row = joined.groupby("_row").agg(orders=("order_id", "nunique"), spend=("amount", "sum"))
    out["orders"] = per_row["orders"].reindex(range(len(out)), fill_value=0).to_numpy().astype(int)
    out["spend"] = per_row["spend"].reindex(range(len(out)), fill_value=0.0).round(6).to_numpy()
    out["purchased"] = (out["orders"] > 0).astype(int)
    return out
