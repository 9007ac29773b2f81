"""Segment names checked against the segments' own numbers, after naming.

K-means names its segments from the centroids (:func:`customerlens.models.segment.segmenter.name_segments`):
standard scores of log features, relative to the whole base. On data unlike the ones it was tuned on
(a grocery chain's weekly shoppers, a subscription business) that can give names that contradict the
figures an analyst reads next to them: an "At-Risk" segment with the lowest churn risk, "Frequent &
Loyal" customers who order less often than "Occasional Buyers". The action plan acts on these names,
so :func:`check_names` tests three promises on the customers themselves and moves a name to the
segment that keeps it, saying why:

1. **High-Value** has the highest mean spend.
2. **At-Risk** is the most at risk of the other three of the brief's four segments: the highest mean
   churn risk (where the value model ran) *or* the longest recency relative to the segment's own rhythm
   (days since the last order divided by the usual gap between its customers' orders, the median per
   segment). Either reading keeps the name: lapsed weekly buyers are at risk even when one-time buyers
   of long ago have a higher churn risk. When neither holds, the name goes to the highest churn risk
   (else the most overdue).
3. **Frequent & Loyal** orders more often than **Occasional Buyers**: the shorter usual gap between
   orders, the segment's median of each customer's mean days between orders. A customer with one
   order has no gap yet, only a lower bound (the days since that order): the median is the
   Kaplan-Meier one, with those customers censored there, so a segment of new one-order customers
   is not taken for frequent because they joined recently (and a segment whose median is never
   reached has an unknown, longer rhythm). Without the gap feature: more orders per customer. On a
   grocery chain's data the weekly shoppers who joined six weeks ago order more often than customers
   with eight baskets a year, though they have fewer orders; on Online Retail the recent customers
   with one or two orders (median gap 98 days) do not order more often than the established ones
   with four (71 days).

The checks run in that order, each among the segments the earlier ones did not settle, so a later
swap never undoes an earlier promise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The names the checks are about (the brief's four).
CHECKED = ("High-Value", "At-Risk", "Frequent & Loyal", "Occasional Buyers")


def segment_stats(assigned: pd.DataFrame, churn_risk: pd.Series | None = None) -> pd.DataFrame:
    """Per segment: mean spend, mean orders, median recency relative to rhythm, and mean churn risk.

    Parameters
    ----------
    assigned
        Every customer with ``segment_id`` and the features ``monetary``, ``frequency``,
        ``recency_days`` (and ``mean_days_between_orders`` for the rhythm, when present).
    churn_risk
        The value model's churn risk per customer, indexed by ``customer_id`` (optional).
    """
    frame = assigned[["customer_id", "segment_id", "monetary", "frequency", "recency_days"]].copy()
    gap = assigned["mean_days_between_orders"] if "mean_days_between_orders" in assigned else None
    if gap is not None:
        # one-order customers have no rhythm of their own: the base's median gap stands in
        usual = pd.to_numeric(gap, errors="coerce")
        usual = usual.fillna(usual.median() if usual.notna().any() else 30.0).clip(lower=1.0)
        frame["overdue"] = frame["recency_days"] / usual.to_numpy()
        since_first = assigned["tenure_days"] if "tenure_days" in assigned else assigned["recency_days"]
        frame["gap"] = pd.to_numeric(gap, errors="coerce").where(assigned["frequency"] > 1).to_numpy()
        frame["since_first"] = pd.to_numeric(since_first, errors="coerce").to_numpy()
    else:
        frame["overdue"] = frame["recency_days"]
    if churn_risk is not None:
        frame["churn_risk"] = frame["customer_id"].map(churn_risk).astype(float)
    grouped = frame.groupby("segment_id")
    stats = pd.DataFrame({
        "monetary": grouped["monetary"].mean(),
        "frequency": grouped["frequency"].mean(),
        "overdue": grouped["overdue"].median(),
    })
    if "gap" in frame:
        stats["gap"] = grouped[["gap", "since_first"]].apply(
            lambda g: kaplan_meier_median(g["gap"].to_numpy(float), g["since_first"].to_numpy(float)))
    if churn_risk is not None and frame["churn_risk"].notna().any():
        stats["churn_risk"] = grouped["churn_risk"].mean()
    return stats


def kaplan_meier_median(gaps: np.ndarray, censored_at: np.ndarray) -> float:
    """Median gap between orders, with customers of one order (``gaps`` NaN) censored at ``censored_at``.

    ``inf`` when fewer than half are seen to order again (the rhythm is longer than the data shows).
    """
    seen = ~np.isnan(gaps)
    times = np.where(seen, gaps, censored_at)
    keep = ~np.isnan(times)
    times, seen = times[keep], seen[keep]
    order = np.lexsort((~seen, times))  # by time, an observed gap before a censored one at the same time
    times, seen = times[order], seen[order]
    at_risk = len(times) - np.arange(len(times))
    survival = np.cumprod(np.where(seen, (at_risk - 1) / at_risk, 1.0))
    reached = np.flatnonzero(seen & (survival <= 0.5))
    return float(times[reached[0]]) if len(reached) else float("inf")


def check_names(names: dict[int, str], stats: pd.DataFrame) -> tuple[dict[int, str], list[str]]:
    """Names that keep their promises (see the module docstring), and one note per name moved.

    Parameters
    ----------
    names
        Segment id -> name, as K-means named them.
    stats
        :func:`segment_stats` of the same segments.

    Returns
    -------
    The checked names (the same dict when every promise held) and the notes, in words for people.
    """
    names = dict(names)
    notes: list[str] = []
    holder = {name: sid for sid, name in names.items()}
    if not all(name in holder for name in CHECKED):
        return names, notes  # fewer than four segments, or RFM's names: nothing to check
    settled: set[int] = set()

    def give(name: str, to: int, why: str) -> None:
        current = holder[name]
        if current != to:
            other = names[to]
            names[current], names[to] = other, name
            holder[name], holder[other] = to, current
            notes.append(f"'{name}' moved from segment {current} to segment {to} ({why}); segment {current} "
                         f"is now '{other}'")
        settled.add(to)

    candidates = [holder[name] for name in CHECKED]
    # 1. the highest spend is High-Value
    best = max(candidates, key=lambda sid: (stats.loc[sid, "monetary"], -sid))
    give("High-Value", best, f"the highest mean spend, {stats.loc[best, 'monetary']:,.0f}")
    # 2. the most at risk of the others is At-Risk: by churn risk, or by recency against its own rhythm
    rest = [sid for sid in candidates if sid not in settled]
    measures = _risk_measures(stats, rest)
    if any(_is_top(stats, rest, holder["At-Risk"], measure) for measure in measures):
        settled.add(holder["At-Risk"])  # the promise holds
    else:
        measure = measures[0]  # the value model's churn risk where it ran
        riskiest = max(rest, key=lambda sid: (stats.loc[sid, measure], -sid))
        why = (f"the highest mean churn risk, {stats.loc[riskiest, measure]:.0%}" if measure == "churn_risk" else
               f"the longest time since the last order relative to its rhythm, {stats.loc[riskiest, measure]:.1f}x")
        give("At-Risk", riskiest, why)
    # 3. of the last two, the one ordering more often is Frequent & Loyal
    rest = [sid for sid in candidates if sid not in settled]
    frequent = min(rest, key=lambda sid: (_rarity(stats, sid), sid))
    if _rarity(stats, holder["Frequent & Loyal"]) > _rarity(stats, frequent):
        gap = _rarity(stats, frequent)[0]
        why = (f"orders every {gap:.0f} days, the shorter gap" if 0 < gap < np.inf else
               f"more orders per customer, {stats.loc[frequent, 'frequency']:.1f}")
        give("Frequent & Loyal", frequent, why)
    settled.update(rest)
    return names, notes


def _risk_measures(stats: pd.DataFrame, segments: list[int]) -> list[str]:
    """How risk is judged: churn risk first where every segment has one, then recency against rhythm."""
    churn = "churn_risk" in stats and stats.loc[segments, "churn_risk"].notna().all()
    return ["churn_risk", "overdue"] if churn else ["overdue"]


def _rarity(stats: pd.DataFrame, segment: int) -> tuple[float, float]:
    """How seldom a segment orders (lower: more often): its usual gap in days, then fewer orders per customer."""
    gap = float(stats.loc[segment, "gap"]) if "gap" in stats and pd.notna(stats.loc[segment, "gap"]) else 0.0
    return gap, -float(stats.loc[segment, "frequency"])


def _is_top(stats: pd.DataFrame, segments: list[int], segment: int, measure: str) -> bool:
    return bool(stats.loc[segment, measure] >= stats.loc[segments, measure].max())


def broken_promises(names: dict[int, str], stats: pd.DataFrame) -> list[str]:
    """The promises of the module docstring that ``names`` break (empty: every one holds)."""
    holder = {name: sid for sid, name in names.items()}
    if not all(name in holder for name in CHECKED):
        return []
    four = [holder[name] for name in CHECKED]
    broken = []
    if stats.loc[holder["High-Value"], "monetary"] < stats.loc[four, "monetary"].max():
        broken.append("High-Value does not have the highest mean spend")
    others = [sid for sid in four if sid != holder["High-Value"]]
    measures = _risk_measures(stats, others)
    if not any(_is_top(stats, others, holder["At-Risk"], measure) for measure in measures):
        broken.append("At-Risk has neither the highest churn risk nor the longest recency against its rhythm")
    if _rarity(stats, holder["Frequent & Loyal"]) > _rarity(stats, holder["Occasional Buyers"]):
        broken.append("Frequent & Loyal orders less often than Occasional Buyers")
    return broken
