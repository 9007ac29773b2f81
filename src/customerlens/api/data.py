"""The store as the web layer reads it: the queries behind the pages and the API.

:class:`StoreData` is the one store reader (:class:`customerlens.outputs.store.StoreReader`)
with the web layer's caches; one is opened by the app's lifespan, and every
request works on its own cursor (:meth:`StoreReader.cursor`).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from customerlens.outputs.store import StoreReader, jsonable, query, query_one

#: Customer columns shown as "features" (whatever of them the store has).
FEATURES = ("recency_days", "frequency", "monetary", "tenure_days", "avg_order_value", "distinct_products",
            "items_per_order", "return_rate", "mean_days_between_orders", "spend_90d", "spend_prev_90d",
            "spend_trend", "first_purchase", "last_purchase")
VALUE = ("p_alive", "expected_purchases_90d", "expected_avg_value", "clv_12m", "churn_risk", "value_at_risk")
RFM = ("r_score", "f_score", "m_score", "rfm_score", "rfm_segment")


class StoreData(StoreReader):
    """The open store for the web layer: the reader, the customer ids and the recommendation cache.

    Recommendations are read once and kept in memory as pre-serialised JSON per customer, so a
    lookup is a dict access. The cache fills in a thread of its own, begun when the store opens:
    the dashboard answers its first pages meanwhile (half a second sooner on Online Retail's
    87,000 recommendations), and a lookup before it is full waits for it.
    """

    def __init__(self, path: str | Path):
        super().__init__(path)
        self.customers: frozenset[str] = frozenset()
        #: (customer, list) -> JSON of each item; lists "top" and "discover"
        self._recommendations: dict[tuple[str, str], list[str]] = {}
        self.recommended_customers = 0  # customers with any list
        self._choices: dict[str, list[str]] = {}  # the filters' months, countries, channels (the store never changes)
        self._filled = threading.Event()
        self._failed: BaseException | None = None
        self._filler: threading.Thread | None = None
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | Path) -> StoreData:
        """Open ``path`` read-only and load the caches (the recommendations' in a thread of its own)."""
        return cls(path)

    @property
    def recommendations_ready(self) -> bool:
        """Whether the recommendation cache is full (reading it does not wait)."""
        return self._filled.is_set()

    @property
    def recommendations(self) -> dict[tuple[str, str], list[str]]:
        """(customer, list) -> the JSON of each item, once the cache is full."""
        self._filled.wait()
        if self._failed is not None:
            raise self._failed
        return self._recommendations

    def _load(self) -> None:
        source = "segments" if self.has("segments") else "customer_features" if self.has("customer_features") else None
        if source:
            self.customers = frozenset(r[0] for r in self.con.execute(f"SELECT customer_id FROM {source}").fetchall())
        if not self.has("recommendations"):
            self._filled.set()
            return
        self.recommended_customers = self.con.execute(
            "SELECT count(DISTINCT customer_id) FROM recommendations").fetchall()[0][0]
        self._filler = threading.Thread(target=self._fill, name="customerlens-recommendations", daemon=True)
        self._filler.start()

    def _fill(self) -> None:
        cur = self.cursor()  # a connection is not shared between threads
        try:
            cache: dict[tuple[str, str], list[str]] = {}
            rows = cur.execute(f"SELECT customer_id, {self.recommendation_list()}, rank, product_id, "
                               "product_name, score, reason "
                               "FROM recommendations ORDER BY customer_id, rank").fetchall()
            for customer, kind, rank, product, name, score, reason in rows:
                item = {"rank": rank, "product_id": product, "product_name": name, "score": jsonable(score),
                        "reason": reason}
                cache.setdefault((customer, kind), []).append(json.dumps(item, separators=(",", ":")))
            self._recommendations = cache
        except BaseException as exc:  # raised to the requests that need it
            self._failed = exc
        finally:
            cur.close()
            self._filled.set()

    def close(self) -> None:
        """Close the connection, once the recommendation cache is no longer being read from it."""
        if self._filler is not None:
            self._filler.join()
        super().close()

    # -- queries; every value goes in as a parameter, never into the SQL text
    def segments(self, cur) -> list[dict]:
        """Segment rows for the overview: profile, value and action plan columns the store has."""
        if not self.has("segment_profiles"):
            return []
        cols = ["p.segment_id", "p.segment_name", "p.customers", "p.revenue", "p.share_customers",
                "p.share_revenue", "p.revenue_per_customer", "p.strategy"]
        cols = [c for c in cols if c.split(".")[1] in self.columns["segment_profiles"]]
        joins = ""
        if self.has("segment_value"):
            cols += [f"v.{c}" for c in ("mean_p_alive", "mean_churn_risk", "clv_12m", "value_at_risk", "share_clv",
                                        "share_value_at_risk") if c in self.columns["segment_value"]]
            joins += " LEFT JOIN segment_value v USING (segment_id)"
        if self.has("action_plan"):
            cols += [f"a.{c}" for c in ("traits", "promote") if c in self.columns["action_plan"]]
            joins += " LEFT JOIN action_plan a USING (segment_id)"
        return query(cur, f"SELECT {', '.join(cols)} FROM segment_profiles p{joins} ORDER BY p.segment_id")

    def value_model(self) -> Any:
        """The counting model the run chose (BG/NBD or Pareto/NBD), its parameters from the run record; or None."""
        value = self.record.get("value") or {}
        chosen = value.get("model")
        params = (value.get("models") or {}).get(chosen)
        if not params:
            return None
        from customerlens.models.value.service import COUNTING_MODELS

        model = COUNTING_MODELS[chosen]()
        model.params_ = {name: float(params[name]) for name in model.param_names}
        return model

    def values_of(self, cur, column: str) -> list[str]:
        """The values of ``country`` or ``channel`` in the lines, most lines first (a filter's choices).

        Empty when the column is missing or holds one value only (nothing to choose).
        """
        if column not in self._choices:
            found = [] if column not in self.columns.get("transactions", ()) else [
                r[0] for r in cur.execute(f"SELECT {column} FROM transactions WHERE {column} IS NOT NULL "
                                          "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 200").fetchall()]
            self._choices[column] = found if len(found) > 1 else []
        return self._choices[column]

    def months(self, cur) -> list[str]:
        """Every month of the lines, as YYYY-MM (the month filter's choices)."""
        if "months" not in self._choices:
            self._choices["months"] = [] if not self.has("transactions") else [
                r[0] for r in cur.execute("SELECT DISTINCT strftime(order_date, '%Y-%m') AS m FROM transactions "
                                          "WHERE order_date IS NOT NULL ORDER BY 1").fetchall()]
        return self._choices["months"]

    def segment(self, cur, segment_id: int) -> dict | None:
        """One segment's profile, value, action plan and products; None when unknown."""
        if not self.has("segment_profiles"):
            return None
        profile = query_one(cur, "SELECT * FROM segment_profiles WHERE segment_id = ?", [segment_id])
        if profile is None:
            return None
        out: dict[str, Any] = {"segment_id": segment_id, "segment_name": profile["segment_name"], "profile": profile}
        for table in ("top_products", "distinctive_products"):
            out[table] = (query(cur, f"SELECT rank, product_id, product_name, revenue, buyers, share_of_segment, lift "
                                     f"FROM {table} WHERE segment_id = ? ORDER BY rank", [segment_id])
                          if self.has(table) else [])
        out["value"] = (query_one(cur, "SELECT * EXCLUDE (segment_id, segment_name) FROM segment_value "
                                       "WHERE segment_id = ?", [segment_id]) if self.has("segment_value") else None)
        out["action"] = (query_one(cur, "SELECT * EXCLUDE (segment_id, segment_name) FROM action_plan "
                                        "WHERE segment_id = ?", [segment_id]) if self.has("action_plan") else None)
        out["monthly"] = (query(cur, "SELECT month, revenue, active_customers, orders FROM segment_monthly "
                                     "WHERE segment_id = ? ORDER BY month", [segment_id])
                          if self.has("segment_monthly") else [])
        return out

    def _customer_select(self) -> tuple[str, str]:
        """Columns and joins of a customer row: segment, R/F/M and value when the store has them."""
        seg_cols = self.columns.get("segments", [])
        cols = ["s.customer_id", "s.segment_id", "s.segment_name"]
        cols += [f"s.{c}" for c in ("recency_days", "frequency", "monetary", "last_purchase") if c in seg_cols]
        joins = ""
        if self.has("customer_value"):
            cols += [f"v.{c}" for c in ("p_alive", "clv_12m", "churn_risk", "value_at_risk")
                     if c in self.columns["customer_value"]]
            joins = " LEFT JOIN customer_value v USING (customer_id)"
        return ", ".join(cols), joins

    def sortable(self) -> list[str]:
        """The columns a segment's customer list can be sorted by (those the store has)."""
        cols, _ = self._customer_select()
        return [c.split(".", 1)[1] for c in cols.split(", ") if not c.endswith(("segment_id", "segment_name"))]

    def segment_customers(self, cur, segment_id: int, q: str, page: int, page_size: int, sort: str = "",
                          descending: bool = True) -> dict:
        """A page of a segment's customers, searched by id, with the total count.

        ``sort``: one of :meth:`sortable` (else most value at risk first); blanks last either way.
        """
        where = "s.segment_id = ?"
        params: list[Any] = [segment_id]
        if q:
            where += " AND contains(lower(s.customer_id), lower(?))"
            params.append(q)
        total = cur.execute(f"SELECT count(*) FROM segments s WHERE {where}", params).fetchall()[0][0]
        cols, joins = self._customer_select()
        order = ""
        if sort and sort in self.sortable():  # a known column name only: never user text in the SQL
            column = next(c for c in cols.split(", ") if c.endswith("." + sort))
            order = f"{column} {'DESC' if descending else 'ASC'} NULLS LAST, "
        else:
            sort = ""
        order += "v.value_at_risk DESC NULLS LAST, " if "v.value_at_risk" in cols else ""
        order += "s.monetary DESC, " if "s.monetary" in cols else ""
        rows = query(cur, f"SELECT {cols} FROM segments s{joins} WHERE {where} ORDER BY {order}s.customer_id "
                          f"LIMIT ? OFFSET ?", [*params, page_size, (page - 1) * page_size])
        pages = max(1, -(-total // page_size))
        return {"segment_id": segment_id, "q": q, "page": page, "page_size": page_size, "total": total,
                "pages": pages, "sort": sort, "order": "desc" if descending else "asc", "customers": rows}

    def target_rows(self, cur, segment_id: int) -> tuple[list[str], list[tuple]]:
        """The segment's target list: who to contact, their value and next best product (as targets/*.csv)."""
        cols, joins = self._customer_select()
        if self.has("recommendations"):
            cols += ", r.product_id AS next_product_id, r.product_name AS next_product_name"
            joins += (" LEFT JOIN recommendations r ON r.customer_id = s.customer_id AND r.rank = 1 "
                      f"AND {self.recommendation_list('r')} = 'top'")
        order = "v.value_at_risk DESC NULLS LAST, " if "v.value_at_risk" in cols else ""
        order += "s.monetary DESC, " if "s.monetary" in cols else ""
        result = cur.execute(f"SELECT {cols} FROM segments s{joins} WHERE s.segment_id = ? "
                             f"ORDER BY {order}s.customer_id", [segment_id])
        names = [d[0] for d in result.description]
        return names, result.fetchall()

    def customer(self, cur, customer_id: str) -> dict | None:
        """One customer's features, segment, value and strategy; None when unknown."""
        if customer_id not in self.customers:
            return None
        out: dict[str, Any] = {"customer_id": customer_id, "segment": None, "features": {}, "rfm": None,
                               "value": None}
        if self.has("segments"):
            row = query_one(cur, "SELECT * FROM segments WHERE customer_id = ?", [customer_id])
            if row:
                out["segment"] = {"segment_id": row["segment_id"], "segment_name": row["segment_name"]}
                out["features"] = {c: row[c] for c in FEATURES if c in row}
                if "rfm_score" in row:
                    out["rfm"] = {c: row[c] for c in RFM if c in row}
                if self.has("segment_profiles"):
                    strategy = query_one(cur, "SELECT strategy FROM segment_profiles WHERE segment_id = ?",
                                         [row["segment_id"]])
                    out["segment"]["strategy"] = strategy["strategy"] if strategy else None
        if not out["features"] and self.has("customer_features"):
            row = query_one(cur, "SELECT * FROM customer_features WHERE customer_id = ?", [customer_id]) or {}
            out["features"] = {c: row[c] for c in FEATURES if c in row}
        if self.has("customer_value"):
            row = query_one(cur, "SELECT * FROM customer_value WHERE customer_id = ?", [customer_id])
            if row:
                out["value"] = {c: row[c] for c in VALUE if c in row}
        out["recommendations"] = len(self.recommendations.get((customer_id, "top"), ()))
        return out

    def recommendations_json(self, customer_id: str, n: int, which: str = "top") -> str:
        """A customer's cached ``which`` list (``top`` or ``discover``) as a JSON text (no parsing on the hot path)."""
        items = self.recommendations.get((customer_id, which), [])[:n]
        return (f'{{"customer_id":{json.dumps(customer_id)},"list":"{which}","n":{len(items)},'
                f'"recommendations":[{",".join(items)}]}}')

    def recommendations_for(self, customer_id: str, n: int, which: str = "top") -> list[dict]:
        """A customer's cached ``which`` list as dicts."""
        return [json.loads(item) for item in self.recommendations.get((customer_id, which), [])[:n]]

    def campaign_lift(self, cur) -> list[dict] | None:
        """``campaign_lift`` from the store, else ``campaign_lift.csv`` beside it, else None."""
        return self._campaign_table(cur, "campaign_lift")

    def campaign_balance(self, cur) -> list[dict] | None:
        """A send list's covariate balance (``campaign_balance``), from the store or the CSV beside it."""
        return self._campaign_table(cur, "campaign_balance")

    def _campaign_table(self, cur, name: str) -> list[dict] | None:
        if self.has(name):
            return query(cur, f"SELECT * FROM {name}")  # noqa: S608 - one of two fixed names
        csv = self.path.parent / f"{name}.csv"
        if csv.is_file():
            # numbers, flags and text only: DuckDB's sniffer would read a column of "inf" (a normal
            # approximation's degrees of freedom) as the date 9999-12-31
            return query(cur, "SELECT * FROM read_csv(?, auto_type_candidates = ['BOOLEAN', 'BIGINT', 'DOUBLE', "
                              "'VARCHAR'])", [str(csv)])
        return None
