"""The dashboard and REST API: every endpoint against the store's tables, security, and a real browser."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest

from tests.conftest import CLI, cli

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from customerlens.api import Settings, create_app  # noqa: E402
from customerlens.api.app import customer_path  # noqa: E402

TOKEN = "s3cret-token-for-tests"
ARTEFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # git-ignored: screenshots to look at


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    import customerlens
    from customerlens.io import demo

    tmp = tmp_path_factory.mktemp("api")
    path, _ = demo.write(demo.generate(400, seed=7), tmp / "d.csv")
    customerlens.run(path, tmp / "out", customerlens.RunConfig.from_options(charts=False, top_n=5))
    return tmp / "out" / "customerlens.duckdb"


def rows(store, sql, params=None):
    with duckdb.connect(str(store), read_only=True) as con:
        result = con.execute(sql, params or [])
        names = [d[0] for d in result.description]
        return [dict(zip(names, r, strict=True)) for r in result.fetchall()]


@pytest.fixture(scope="module")
def client(store):
    with TestClient(create_app(Settings(store=store))) as c:
        yield c


@pytest.fixture(scope="module")
def customer(store):
    """The customer with the most recommendations and a value row."""
    return rows(store, "SELECT customer_id FROM recommendations GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
                )[0]["customer_id"]


def test_health(client, store):
    body = client.get("/api/health").json()
    n = rows(store, "SELECT count(*) AS n FROM segments")[0]["n"]
    assert body["status"] == "ok" and body["customers"] == n and body["segmenter"] is True
    assert body["recommendations"] == rows(store, "SELECT count(DISTINCT customer_id) AS n FROM recommendations")[0]["n"]


def test_the_first_page_waits_for_neither_the_segmenter_nor_the_recommendation_cache(store):
    """Issue 22: the dashboard's first page within 2 s of `serve`. The segmenter (scikit-learn) loads on first
    use and the recommendation cache fills in a thread of its own; a lookup waits for the full cache.
    """
    from customerlens.api.data import StoreData

    with TestClient(create_app(Settings(store=store))) as c:
        assert c.get("/").status_code == 200 and c.get("/api/health").json()["segmenter"] is True
        state = c.app.state.customerlens
        assert state._segmenter is None  # nothing has scored yet
        customer = rows(store, "SELECT customer_id FROM recommendations ORDER BY 1 LIMIT 1")[0]["customer_id"]
        listed = c.get(f"/api/customers/{customer}/recommendations").json()
        assert len(listed["recommendations"]) == len(rows(store, "SELECT 1 FROM recommendations WHERE customer_id = ? "
                                                      "AND list = 'top'", [customer]))
        assert state.segmenter is state.segmenter is not None  # loaded once, then kept
    opened = StoreData.open(store)
    try:
        assert opened.recommendations  # waited for; the thread then ends
        opened._filler.join(timeout=10)
        assert not opened._filler.is_alive()
    finally:
        opened.close()


def test_segments_match_the_profiles(client, store):
    body = client.get("/api/segments").json()
    profiles = rows(store, "SELECT * FROM segment_profiles ORDER BY segment_id")
    value = {r["segment_id"]: r for r in rows(store, "SELECT * FROM segment_value")}
    assert [s["segment_id"] for s in body] == [p["segment_id"] for p in profiles]
    for s, p in zip(body, profiles, strict=True):
        assert s["segment_name"] == p["segment_name"] and s["customers"] == p["customers"]
        assert s["share_revenue"] == pytest.approx(p["share_revenue"]) and s["strategy"] == p["strategy"]
        assert s["clv_12m"] == pytest.approx(value[s["segment_id"]]["clv_12m"])
    assert sum(s["customers"] for s in body) == rows(store, "SELECT count(*) AS n FROM segments")[0]["n"]


def test_one_segment(client, store):
    body = client.get("/api/segments/1").json()
    top = rows(store, "SELECT product_id, revenue FROM top_products WHERE segment_id = 1 ORDER BY rank")
    assert body["segment_id"] == 1 and body["profile"]["customers"] > 0
    assert [t["product_id"] for t in body["top_products"]] == [t["product_id"] for t in top]
    assert body["value"]["clv_12m"] == pytest.approx(
        rows(store, "SELECT clv_12m FROM segment_value WHERE segment_id = 1")[0]["clv_12m"])
    assert body["action"]["strategy"]
    assert client.get("/api/segments/99").status_code == 404
    assert client.get("/api/segments/0").status_code == 422
    assert client.get("/api/segments/abc").status_code == 422


def test_segment_customers_search_and_paging(client, store):
    n = rows(store, "SELECT count(*) AS n FROM segments WHERE segment_id = 1")[0]["n"]
    first = client.get("/api/segments/1/customers", params={"page_size": 5}).json()
    assert first["total"] == n and len(first["customers"]) == min(5, n) and first["pages"] == -(-n // 5)
    second = client.get("/api/segments/1/customers", params={"page_size": 5, "page": 2}).json()
    assert not {c["customer_id"] for c in first["customers"]} & {c["customer_id"] for c in second["customers"]}
    everyone = client.get("/api/segments/1/customers", params={"page_size": 200}).json()["customers"]
    ids = rows(store, "SELECT customer_id FROM segments WHERE segment_id = 1")
    assert len(everyone) == min(200, n) and {c["customer_id"] for c in everyone} <= {r["customer_id"] for r in ids}
    risk = [c["value_at_risk"] for c in everyone]
    assert risk == sorted(risk, reverse=True)
    wanted = ids[0]["customer_id"]
    found = client.get("/api/segments/1/customers", params={"q": wanted[-3:]}).json()
    assert wanted in {c["customer_id"] for c in found["customers"]}
    assert all(wanted[-3:].lower() in c["customer_id"].lower() for c in found["customers"])
    assert client.get("/api/segments/1/customers", params={"q": "no-such-id"}).json()["total"] == 0
    for bad in ({"page": 0}, {"page": "x"}, {"page_size": 0}, {"page_size": 1001}, {"q": "x" * 101}):
        assert client.get("/api/segments/1/customers", params=bad).status_code == 422, bad
    assert client.get("/api/segments/99/customers").status_code == 404


def test_customer(client, store, customer):
    body = client.get(f"/api/customers/{customer}").json()
    seg = rows(store, "SELECT * FROM segments WHERE customer_id = ?", [customer])[0]
    value = rows(store, "SELECT * FROM customer_value WHERE customer_id = ?", [customer])[0]
    assert body["segment"]["segment_id"] == seg["segment_id"] and body["segment"]["segment_name"] == seg["segment_name"]
    assert body["features"]["monetary"] == pytest.approx(seg["monetary"])
    assert body["features"]["frequency"] == seg["frequency"]
    assert body["value"]["p_alive"] == pytest.approx(value["p_alive"])
    assert body["value"]["clv_12m"] == pytest.approx(value["clv_12m"])
    assert body["value"]["churn_risk"] == pytest.approx(value["churn_risk"])


@pytest.mark.parametrize("unknown", ["nobody", "x' OR '1'='1", "1; DROP TABLE segments; --", "%", "_"])
def test_unknown_customer_is_a_json_404(client, unknown):
    for url in (f"/api/customers/{unknown}", f"/api/customers/{unknown}/recommendations"):
        r = client.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
        assert "no customer" in r.json()["detail"]


@pytest.mark.parametrize("which", ["top", "discover", None])
def test_recommendations(client, store, customer, which):
    """Both lists, each as stored: ``?list=top`` (the default) and ``?list=discover``."""
    stored = rows(store, "SELECT * FROM recommendations WHERE customer_id = ? AND list = ? ORDER BY rank",
                  [customer, which or "top"])
    params = {"list": which} if which else {}
    body = client.get(f"/api/customers/{customer}/recommendations", params=params).json()
    assert body["customer_id"] == customer and body["n"] == len(stored) > 0 and body["list"] == (which or "top")
    assert [(r["rank"], r["product_id"], r["reason"]) for r in body["recommendations"]] == \
        [(r["rank"], r["product_id"], r["reason"]) for r in stored]
    assert body["recommendations"][0]["score"] == pytest.approx(stored[0]["score"])
    assert client.get(f"/api/customers/{customer}/recommendations", params={"list": "other"}).status_code == 422
    two = client.get(f"/api/customers/{customer}/recommendations", params={"n": 2}).json()
    assert [r["rank"] for r in two["recommendations"]] == [1, 2]
    for n in (0, 51, 999, -1, "ten"):
        assert client.get(f"/api/customers/{customer}/recommendations", params={"n": n}).status_code == 422


def _thread_pool_calls(monkeypatch) -> list[str]:
    """The names of the functions run in the thread pool from now on (anyio's, which FastAPI uses)."""
    import anyio.to_thread

    calls: list[str] = []
    real_run_sync = anyio.to_thread.run_sync

    async def counting(func, *args, **kwargs):
        calls.append(getattr(func, "__name__", repr(func)))
        return await real_run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return calls


def test_recommendations_are_served_on_the_event_loop_without_a_cursor(store, customer, monkeypatch):
    """The hot path (issue 8's p99 < 20 ms at > 1,000/s) is a dict access: no DuckDB cursor and no trip through
    the thread pool; an id ending in '%2Frecommendations' still reaches the customer (in the pool, with a cursor).
    """
    with TestClient(create_app(Settings(store=store))) as c:
        state = c.app.state.customerlens
        assert c.get(f"/api/customers/{customer}/recommendations").status_code == 200  # the cache is full
        pooled = _thread_pool_calls(monkeypatch)
        monkeypatch.setattr(state.store, "cursor", lambda: pytest.fail("a cursor was opened"))
        body = c.get(f"/api/customers/{customer}/recommendations", params={"list": "discover", "n": 3}).json()
        assert body["customer_id"] == customer and body["list"] == "discover" and 0 < body["n"] <= 3
        assert c.get("/api/customers/nobody-like-this/recommendations").status_code == 404
        assert pooled == []
        monkeypatch.undo()
        assert c.get(f"/api/customers/{quote(customer, safe='')}%2Frecommendations").status_code == 404


def test_a_list_asked_for_while_the_cache_fills_waits_off_the_event_loop(store, customer, monkeypatch):
    """The recommendations endpoint runs on the event loop; before the cache is full it waits in the thread
    pool, where waiting holds no other request up, then answers the list.
    """
    import threading

    with TestClient(create_app(Settings(store=store))) as c:
        data = c.app.state.customerlens.store
        data.recommendations  # noqa: B018 - full now
        data._filled.clear()  # as if it were still filling: set again in half a second
        threading.Timer(0.5, data._filled.set).start()
        pooled = _thread_pool_calls(monkeypatch)
        answer = c.get(f"/api/customers/{customer}/recommendations")
        assert answer.status_code == 200 and answer.json()["n"] > 0
        assert any("recommendations_json" in name for name in pooled), pooled  # waited in the pool, not the loop


def test_targets_csv(client, store):
    r = client.get("/api/segments/3/targets.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    ids = {x["customer_id"] for x in rows(store, "SELECT customer_id FROM segments WHERE segment_id = 3")}
    assert {t["customer_id"] for t in table} == ids and len(table) == len(ids)
    assert {"p_alive", "churn_risk", "value_at_risk", "next_product_id"} <= set(table[0])
    assert client.get("/api/segments/42/targets.csv").status_code == 404


def test_score_features_gives_the_stored_segment(client, store):
    stored = rows(store, "SELECT customer_id, segment_id, recency_days, frequency, monetary FROM segments "
                         "ORDER BY customer_id LIMIT 60")
    body = {"features": [{k: r[k] for k in ("customer_id", "recency_days", "frequency", "monetary")} for r in stored]}
    r = client.post("/api/score", json=body)
    assert r.status_code == 200, r.text
    got = {c["customer_id"]: c["segment_id"] for c in r.json()["customers"]}
    assert got == {s["customer_id"]: s["segment_id"] for s in stored}
    assert r.json()["model"]["features"] == ["recency_days", "frequency", "monetary"]


def test_score_transactions_gives_the_stored_segment(client, store, customer):
    lines = rows(store, "SELECT customer_id, order_id, order_date, product_id, quantity, amount FROM transactions "
                        "WHERE customer_id = ?", [customer])
    with duckdb.connect(str(store), read_only=True) as con:
        as_of = json.loads(con.execute("SELECT record FROM run").fetchall()[0][0])["parameters"]["as_of_used"]
    payload = {"transactions": [{**x, "order_date": x["order_date"].isoformat()} for x in lines],
               "as_of": str(as_of)[:10]}
    r = client.post("/api/score", json=payload)
    assert r.status_code == 200, r.text
    expected = rows(store, "SELECT segment_id, frequency FROM segments WHERE customer_id = ?", [customer])[0]
    (scored,) = r.json()["customers"]
    assert scored["features"]["frequency"] == expected["frequency"]
    assert scored["segment_id"] == expected["segment_id"]


@pytest.mark.parametrize("body", [
    {},
    {"features": []},
    {"features": [{"customer_id": "a", "recency_days": 1, "frequency": 2}]},  # monetary missing
    {"features": [{"customer_id": "a", "recency_days": -1, "frequency": 2, "monetary": 3}]},
    {"features": [{"customer_id": "a", "recency_days": 1, "frequency": 2, "monetary": 3, "evil": 1}]},
    {"features": [{"customer_id": "a", "recency_days": 1, "frequency": 2, "monetary": 3}], "transactions": [
        {"customer_id": "a", "order_id": "o", "order_date": "2024-01-01", "amount": 1}]},
    {"transactions": [{"customer_id": "a", "order_id": "o", "order_date": "not a date", "amount": 1}]},
    {"features": [{"customer_id": str(i), "recency_days": 1, "frequency": 1, "monetary": 1} for i in range(10_001)]},
])
def test_score_rejects_bad_bodies(store, body):
    # a roomy body limit, so that the 10,001 rows reach the schema's own limit
    with TestClient(create_app(Settings(store=store, max_body_bytes=10_000_000))) as c:
        assert c.post("/api/score", json=body).status_code == 422


@pytest.mark.parametrize("payload", [
    b'{"features": [{"customer_id": "a", "recency_days": NaN, "frequency": 2, "monetary": 3}]}',
    b'{"features": [{"customer_id": "a", "recency_days": 1, "frequency": Infinity, "monetary": 3}]}',
    b'{"features": [{"customer_id": "a", "recency_days": 1, "frequency": 2, "monetary": -Infinity}]}',
    b'{"features": [{"customer_id": "a", "recency_days": 1, "frequency": 2, "monetary": 1e400}]}',
    b'{"transactions": [{"customer_id": "a", "order_id": "o", "order_date": "2024-01-01", "amount": NaN}]}',
    b'{"transactions": [{"customer_id": "a", "order_id": "o", "order_date": "2024-01-01", "amount": 1e400}]}',
    b'{"transactions": [{"customer_id": "a", "order_id": "o", "order_date": "2024-01-01", "quantity": 1e300,'
    b' "amount": 1e300}]}',
])
def test_score_refuses_non_finite_and_absurd_numbers(client, payload):
    """NaN, Infinity and 1e400 (read as infinity) are a 422 naming the field, not a 500 with a traceback."""
    r = client.post("/api/score", content=payload, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    body = r.json()  # valid JSON: the refused value is not echoed (NaN is not JSON)
    assert set(body) == {"detail", "errors"} and "input" not in r.text and "NaN" not in r.text
    assert body["errors"][0]["loc"][0] == "body" and body["detail"].split(":")[0] in {
        f"{kind}.0.{field}" for kind in ("features", "transactions")
        for field in ("recency_days", "frequency", "monetary", "amount", "quantity")}


def test_a_422_does_not_echo_a_large_body(store):
    rows_ = [{"customer_id": f"customer-{i:06d}", "recency_days": 1.25, "frequency": 1, "monetary": 12.5,
              "tenure_days": 30, "avg_order_value": 12.5} for i in range(10_001)]
    payload = json.dumps({"features": rows_}).encode()
    assert len(payload) > 750_000
    with TestClient(create_app(Settings(store=store, max_body_bytes=2_000_000))) as c:
        r = c.post("/api/score", content=payload, headers={"content-type": "application/json"})
        assert r.status_code == 422 and len(r.content) < 1000, len(r.content)
        assert "10000" in r.json()["detail"].replace(",", "") and "customer-000001" not in r.text
        # many bad rows: the first few problems listed, and how many more there are
        bad = {"features": [{"customer_id": "", "recency_days": -1, "frequency": 1, "monetary": 1}] * 500}
        r = c.post("/api/score", json=bad)
        assert r.status_code == 422 and len(r.json()["errors"]) == 10 and "999 more problems" in r.json()["detail"]
    with TestClient(create_app(Settings(store=store, max_score_rows=5))) as c:
        r = c.post("/api/score", json={"features": rows_[:6]})
        assert r.status_code == 422 and "at most 5 rows" in r.json()["detail"]


def test_body_size_limit(client):
    big = {"features": [{"customer_id": f"c{i}", "recency_days": 1, "frequency": 1, "monetary": 1.5}
                        for i in range(20_000)]}
    r = client.post("/api/score", json=big)
    assert r.status_code == 413 and "body" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(40):
            yield b" " * 50_000

    assert client.post("/api/score", content=chunks(), headers={"content-type": "application/json"}).status_code == 413


def test_pages(client, store, customer):
    home = client.get("/")
    assert home.status_code == 200 and "High-Value" in home.text and 'href="/segments/1"' in home.text
    assert "http://" not in home.text and "https://" not in home.text  # nothing from elsewhere
    assert "default-src 'none'" in home.headers["content-security-policy"]
    seg = rows(store, "SELECT segment_id FROM segments WHERE customer_id = ?", [customer])[0]["segment_id"]
    page = client.get(f"/segments/{seg}", params={"q": customer})
    assert page.status_code == 200 and f'href="/customers/{customer}"' in page.text
    assert f"/api/segments/{seg}/targets.csv" in page.text and 'data-chart="top_products"' in page.text
    assert client.get("/segments/99").status_code == 404
    lookup = client.get("/customers", params={"customer_id": customer}, follow_redirects=False)
    assert lookup.status_code == 303 and lookup.headers["location"] == f"/customers/{customer}"
    person = client.get(f"/customers/{customer}")
    reason = rows(store, "SELECT reason FROM recommendations WHERE customer_id = ? AND rank = 1", [customer])[0]
    assert person.status_code == 200 and "P(alive)" in person.text and reason["reason"] in person.text
    assert client.get("/customers/<script>alert(1)</script>").status_code == 404
    assert "<script>alert" not in client.get("/segments/1", params={"q": "<script>alert(1)</script>"}).text
    camp = client.get("/campaigns")
    assert camp.status_code == 200 and "customerlens campaigns" in camp.text
    docs = client.get("/openapi.json").json()
    assert {"/api/segments", "/api/customers/{customer_id}/recommendations", "/api/score"} <= set(docs["paths"])


def test_segment_customers_sort_by_any_column(client, store):
    seg = rows(store, "SELECT segment_id FROM segments GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0]["segment_id"]
    every = rows(store, "SELECT customer_id, v.clv_12m FROM segments JOIN customer_value v USING (customer_id) "
                        "WHERE segment_id = ? ORDER BY v.clv_12m, customer_id", [seg])
    low = client.get(f"/api/segments/{seg}/customers", params={"sort": "clv_12m", "order": "asc", "page_size": 5})
    assert low.json()["sort"] == "clv_12m"
    assert [c["clv_12m"] for c in low.json()["customers"]] == pytest.approx([r["clv_12m"] for r in every[:5]])
    high = client.get(f"/api/segments/{seg}/customers", params={"sort": "clv_12m", "page_size": 5}).json()
    assert [c["clv_12m"] for c in high["customers"]] == pytest.approx(sorted((r["clv_12m"] for r in every),
                                                                            reverse=True)[:5])
    # an unknown column is the default order (never SQL text); a column name that is not a word is a 422
    default = client.get(f"/api/segments/{seg}/customers", params={"sort": "nonsense"}).json()
    assert default["sort"] == "" and default["customers"] == client.get(f"/api/segments/{seg}/customers").json()[
        "customers"]
    assert client.get(f"/api/segments/{seg}/customers", params={"sort": "x; DROP TABLE"}).status_code == 422
    page = client.get(f"/segments/{seg}", params={"sort": "frequency", "order": "asc"}).text
    assert 'aria-sort="ascending"' in page and "sort=frequency&amp;order=desc" in page


def test_chart_data_follows_the_filters(client, store):
    """Each chart's CSV is the data it draws, with the page's filters; bad filters are a 422 that says why."""
    seg = rows(store, "SELECT segment_id FROM segments GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0]["segment_id"]
    months = [r["m"] for r in rows(store, "SELECT DISTINCT strftime(order_date, '%Y-%m') AS m FROM transactions "
                                          "ORDER BY 1")]
    every = list(csv.DictReader(io.StringIO(client.get("/charts/trends.csv").text)))
    some = list(csv.DictReader(io.StringIO(client.get("/charts/trends.csv", params={
        "segment": seg, "start": months[1], "end": months[3]}).text)))
    assert {r["segment_id"] for r in some} == {str(seg)} and len({r["segment_id"] for r in every}) > 1
    assert sorted({r["month"][:7] for r in some}) == months[1:4]
    expected = rows(store, """SELECT date_trunc('month', order_date) AS m, round(sum(amount), 2) AS revenue
                              FROM transactions JOIN segments USING (customer_id)
                              WHERE segment_id = ? GROUP BY 1 ORDER BY 1""", [seg])
    by_month = {r["month"][:7]: float(r["revenue"]) for r in some}
    for row in expected:
        if row["m"].strftime("%Y-%m") in by_month:
            assert by_month[row["m"].strftime("%Y-%m")] == pytest.approx(row["revenue"])
    # the page draws the same numbers its CSV holds
    page = client.get("/", params={"segment": seg, "start": months[1], "end": months[3]}).text
    assert f'<option value="{seg}" selected>' in page and f'<option value="{months[1]}" selected>' in page
    for bad in ({"segment": "x"}, {"start": "2011-13"}, {"start": months[3], "end": months[1]}, {"segment": "0"}):
        answer = client.get("/", params=bad)
        assert answer.status_code == 422 and "detail" in answer.json(), bad
    assert client.get("/charts/nonsense.csv").status_code == 404
    assert client.get("/charts/timeline.csv").status_code == 404  # a customer's chart needs the customer
    assert client.get("/static/vega.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/../app.py").status_code == 404


def test_a_chart_asked_for_twice_at_once_is_made_once(store, monkeypatch):
    """Requests for the same chart wait for the one making it; other charts are made beside it."""
    import threading

    from customerlens.api import app as app_module
    from customerlens.api.figures import Filters

    made, started, elbow_made, beside = [], threading.Event(), threading.Event(), []
    real = app_module.figure

    def slow(name, *args):
        made.append(name)
        if name == "sizes":
            started.set()
            beside.append(elbow_made.wait(timeout=20))  # "elbow" is made while "sizes" is being made
        result = real(name, *args)
        if name == "elbow":
            elbow_made.set()
        return result

    monkeypatch.setattr(app_module, "figure", slow)
    with TestClient(create_app(Settings(store=store))) as c:
        state = c.app.state.customerlens
        got = {}

        def ask(name, i):
            cur = state.store.cursor()
            got[(name, i)] = state.figure(name, cur, Filters(start="2024-02"))
            cur.close()

        threads = [threading.Thread(target=ask, args=("sizes", i)) for i in range(3)]
        threads.append(threading.Thread(target=lambda: (started.wait(timeout=20), ask("elbow", 0))))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert sorted(made) == ["elbow", "sizes"] and beside == [True]
    assert got[("sizes", 0)] is got[("sizes", 1)] is got[("sizes", 2)] is not None


def test_a_chart_is_compiled_once_whatever_its_data():
    """The Vega of a chart drawn again with other data (months, a segment) is the kept compilation with the
    new rows, and the same as vl-convert compiling it afresh.
    """
    import pandas as pd
    import vl_convert as vlc

    from customerlens.api import figures
    from customerlens.outputs import charts

    def monthly(seed):
        months = pd.date_range("2011-01-01", periods=6, freq="MS")
        return pd.DataFrame([{"month": m, "segment_id": s, "segment_name": name, "revenue": 100.0 * (s + i + seed),
                              "active_customers": 10 + s + i * seed, "orders": 20, "partial": i == 5}
                             for i, m in enumerate(months) for s, name in enumerate(["A", "B <b>"])])

    kept = len(figures._COMPILED)
    drawn = []
    for seed in (1, 2, 3):
        vega_lite = charts.spec(charts.trend_chart(monthly(seed), show_partial=True))
        drawn.append(figures.compiled(vega_lite))
        fresh = json.dumps(vlc.vegalite_to_vega(vega_lite))
        for i, name in enumerate(vega_lite["datasets"]):
            fresh = fresh.replace(json.dumps(name), json.dumps(f"customerlens-data-{i}"))
        expected = json.loads(fresh)
        expected.pop("$schema", None)
        assert drawn[-1] == expected
    assert len(figures._COMPILED) == kept + 1  # compiled once
    assert drawn[0]["data"][0]["values"] != drawn[1]["data"][0]["values"]  # each with its own rows


def test_what_changed_since_the_last_run(tmp_path):
    """A second run into the same folder keeps the first one's customers in the store: the overview shows
    each segment then and now and who moved where, with figures that add up.
    """
    import customerlens
    from customerlens.io import demo

    path, _ = demo.write(demo.generate(300, seed=5), tmp_path / "d.csv")
    options = {"charts": False, "report": False, "top_n": 0}
    customerlens.run(path, tmp_path / "out", customerlens.RunConfig.from_options(as_of="2024-08-01", **options))
    first = rows(tmp_path / "out" / "customerlens.duckdb", "SELECT customer_id, segment_name FROM segments")
    customerlens.run(path, tmp_path / "out", customerlens.RunConfig.from_options(**options))
    store = tmp_path / "out" / "customerlens.duckdb"
    kept = rows(store, "SELECT customer_id, segment_name FROM previous_customers ORDER BY customer_id")
    assert kept == sorted(first, key=lambda r: r["customer_id"])
    assert rows(store, "SELECT as_of FROM previous_run")[0]["as_of"].startswith("2024-08-01")
    now = {r["customer_id"]: r["segment_name"] for r in rows(store, "SELECT customer_id, segment_name FROM segments")}
    with TestClient(create_app(Settings(store=store))) as c:
        page = c.get("/").text
        assert 'data-chart="changes"' in page and 'data-chart="moves"' in page
        moves = list(csv.DictReader(io.StringIO(c.get("/charts/moves.csv").text)))
        both = [r for r in first if r["customer_id"] in now]
        assert sum(int(m["customers"]) for m in moves) == len(both)
        moved = sum(1 for r in both if now[r["customer_id"]] != r["segment_name"])
        assert moved == sum(int(m["customers"]) for m in moves if m["from_segment"] != m["to_segment"])
        note = c.get("/charts/changes.json").json()["note"]
        assert f"{len(now) - len(both):,} new customers" in note and f"{moved:,} in another segment" in note
        table = list(csv.DictReader(io.StringIO(c.get("/charts/changes.csv").text)))
        assert sum(int(r["customers_now"] or 0) for r in table) == len(now)
        assert sum(int(r["customers_before"] or 0) for r in table) == len(first)
    # a first run into a fresh folder has nothing to compare with
    customerlens.run(path, tmp_path / "fresh", customerlens.RunConfig.from_options(**options))
    with TestClient(create_app(Settings(store=tmp_path / "fresh" / "customerlens.duckdb"))) as c:
        assert 'data-chart="changes"' not in c.get("/").text


def test_chart_csv_is_injection_safe():
    from customerlens.api.app import csv_response

    body = csv_response(["product_name", "revenue"], [("=HYPERLINK(\"http://x\")", 1.5), ("+SUM(A1)", 2)],
                        "x.csv").body.decode()
    assert body.splitlines()[1].startswith("\"'=HYPERLINK") and "'+SUM(A1)" in body


def _randomised_campaign():
    """A randomised e-mail test's lift table (campaign_lift), overall and by region."""
    import numpy as np
    import pandas as pd

    from customerlens.models.campaigns import campaign_lift

    rng = np.random.default_rng(3)
    n = 1200
    group = rng.choice(["control", "email"], n)
    region = rng.choice(["north", "south", "west"], n)
    converted = (rng.random(n) < np.where(group == "email", 0.18, 0.10)).astype(int)
    return campaign_lift(pd.DataFrame({"group": group, "region": region, "conversion": converted}),
                         outcomes=["conversion"], segment_by=["region"], bootstrap=200)


def test_campaigns_page_draws_a_forest_plot(store, tmp_path):
    """A randomised campaign's lift table beside the store: the campaigns page lists its chart, whose data is
    the table (every row, its interval) and whose spec draws a point and an interval per row.
    """
    table = _randomised_campaign()
    shutil.copy(store, tmp_path / "customerlens.duckdb")
    table.to_csv(tmp_path / "campaign_lift.csv", index=False)
    with TestClient(create_app(Settings(store=tmp_path / "customerlens.duckdb"))) as c:
        page = c.get("/campaigns").text
        assert 'data-chart="campaigns"' in page and 'id="campaign-lift"' in page
        chart = c.get("/charts/campaigns.json").json()
        drawn = [d for d in chart["spec"]["data"] if d.get("values")]
        assert len(drawn[0]["values"]) == len(table) == 4  # all, then three regions
        marks = json.dumps(chart["spec"]["marks"])
        assert '"type": "rule"' in marks and '"type": "symbol"' in marks
        assert "diamond" not in marks  # randomised: the naive lift is the lift, no second mark for it
        # the columns a marketer reads, the rest in the CSV
        assert "<th>lift ci low</th>" in page and "<th>lift boot ci low</th>" not in page
        assert f"Showing 18 of {len(table.columns)} columns" in page
        # the normal approximation's degrees of freedom (inf) stay a number, not DuckDB's date 9999-12-31
        assert "9999" not in page and ">inf<" not in page.lower()
        rows_csv = list(csv.DictReader(io.StringIO(c.get("/charts/campaigns.csv").text)))
        assert [float(r["lift"]) for r in rows_csv] == pytest.approx(table["lift"].tolist())
    import vl_convert as vlc

    assert vlc.vega_to_svg(chart["spec"]).count("<path") >= 4  # Vega draws it: intervals and points
    # a send list's table: the naive lift is drawn beside the adjusted one
    table.assign(naive_lift=table["lift"] * 1.5).to_csv(tmp_path / "campaign_lift.csv", index=False)
    with TestClient(create_app(Settings(store=tmp_path / "customerlens.duckdb"))) as c:
        marks = json.dumps(c.get("/charts/campaigns.json").json()["spec"]["marks"])
        assert "naive_lift" in marks and "diamond" in marks


def test_campaigns_page_shows_campaign_lift(store, tmp_path):
    shutil.copy(store, tmp_path / "customerlens.duckdb")
    (tmp_path / "campaign_lift.csv").write_text("segment,outcome,lift\nAll,conversion,0.0123\n")
    with TestClient(create_app(Settings(store=tmp_path / "customerlens.duckdb"))) as c:
        page = c.get("/campaigns")
        assert page.status_code == 200 and "campaign-lift" in page.text and "0.012" in page.text
        # no segmenter beside this copy: scoring says so
        assert c.post("/api/score", json={"features": [{"customer_id": "a", "recency_days": 1, "frequency": 1,
                                                        "monetary": 1}]}).status_code == 503


def test_token(store, customer):
    from customerlens.api.app import COOKIE

    with TestClient(create_app(Settings(store=store, token=TOKEN))) as c:
        assert c.get("/api/health").status_code == 200
        for url in ("/api/segments", f"/api/customers/{customer}", "/", "/docs", "/docs/assets/swagger-ui.css",
                    "/openapi.json"):
            assert c.get(url).status_code == 401, url
        assert c.get("/api/segments", headers={"Authorization": "Bearer wrong-token-123"}).status_code == 401
        assert c.get("/api/segments", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert c.post("/api/score", content=b"x" * 2_000_000).status_code == 401  # refused before reading
        # never in the query string: it would end up in proxy logs and browser history
        for url in ("/", "/api/segments"):
            refused = c.get(url, params={"token": TOKEN})
            assert refused.status_code == 401 and "set-cookie" not in refused.headers, url
        page = c.get(f"/customers/{customer}")
        assert page.status_code == 401 and 'action="/login"' in page.text and "no-store" in page.headers["cache-control"]
        assert f'value="/customers/{customer}"' in page.text  # back there after signing in
        wrong = c.post("/login", data={"token": "not-the-token", "next": "/"}, follow_redirects=False)
        assert wrong.status_code == 401 and "Wrong token" in wrong.text and "set-cookie" not in wrong.headers
        signed = c.post("/login", data={"token": TOKEN, "next": f"/customers/{customer}"}, follow_redirects=False)
        assert signed.status_code == 303 and signed.headers["location"] == f"/customers/{customer}"
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and TOKEN not in cookie  # an HMAC of the token, not the token
        assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= {part.strip() for part in cookie.split(";")}
        assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would never come back
        assert c.get(f"/customers/{customer}").status_code == 200  # the cookie now
        assert c.get("/docs").status_code == 200
        out = c.get("/logout", follow_redirects=False)
        assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
        c.cookies.clear()
        assert c.get(f"/customers/{customer}").status_code == 401
        # after signing in, only a path on this server: never an open redirect
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            away = c.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
            assert away.headers["location"] == "/", target
    with TestClient(create_app(Settings(store=store, token=TOKEN)), base_url="https://testserver") as c:
        signed = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert "Secure" in {part.strip() for part in signed.headers["set-cookie"].split(";")}  # over https


def test_docs_are_served_from_the_installed_swagger_ui(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert client.get(f"/docs/assets/{asset}").status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN: not offered


def test_settings_refuse_a_missing_store_and_short_tokens(tmp_path, store):
    from customerlens.errors import CustomerLensError

    with pytest.raises(CustomerLensError, match="no customerlens store"):
        create_app(Settings(store=tmp_path / "missing.duckdb"))
    with pytest.raises(CustomerLensError, match="8 characters"):
        create_app(Settings(store=store, token="short"))


def test_serve_refuses_non_loopback_without_a_token(store, tmp_path):
    result = cli("serve", "--store", store, "--host", "0.0.0.0")
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr and "--token" in result.stderr
    assert "Traceback" not in result.stderr
    missing = cli("serve", "--store", tmp_path / "none.duckdb")
    assert missing.returncode == 2 and "no customerlens store" in missing.stderr


#: Customer ids a CRM export may hold that are awkward in a URL
AWKWARD_IDS = ["a/b", "x/recommendations", "..", ".", "100% off?#frag", "ü é/ß", "<i>&amp;'\"", "a%2Fb"]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    """A store whose customers include ids with '/', '%', '?', '#', dot segments and spaces."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    import customerlens
    from customerlens.io import demo

    tmp = tmp_path_factory.mktemp("awkward")
    lines = demo.generate(120, seed=3).lines
    ids = lines.column("CustomerID").to_pylist()
    first = list(dict.fromkeys(i for i in ids if i))[: len(AWKWARD_IDS)]
    renamed = dict(zip(first, AWKWARD_IDS, strict=True))
    lines = lines.set_column(lines.schema.get_field_index("CustomerID"), "CustomerID",
                             pa.array([renamed.get(i, i) for i in ids], pa.string()))
    pacsv.write_csv(lines, tmp / "awkward.csv")
    customerlens.run(tmp / "awkward.csv", tmp / "out",
                     customerlens.RunConfig.from_options(charts=False, report=False, top_n=3))
    return tmp / "out" / "customerlens.duckdb"


def test_every_stored_id_is_reachable_in_pages_and_api(awkward):
    from markupsafe import escape

    from customerlens.api.app import customer_path

    stored = {r["customer_id"]: r["segment_id"] for r in rows(awkward, "SELECT customer_id, segment_id FROM segments")}
    assert set(AWKWARD_IDS) <= set(stored)  # the loader kept them as they are
    with TestClient(create_app(Settings(store=awkward))) as c:
        for cid in AWKWARD_IDS:
            # the segment page links to the customer's page, and the link opens it
            listing = c.get(f"/segments/{stored[cid]}", params={"q": cid, "page_size": 200})
            href = customer_path(cid)
            assert f'href="{escape(href)}"' in listing.text, cid
            page = c.get(href)
            assert page.status_code == 200 and escape(cid) in page.text, cid
            # the API: by path (URL-encoded), by query, and the recommendations
            found = c.get("/api/customers/" + quote(cid, safe=""))
            by_query = c.get("/api/customers", params={"customer_id": cid})
            assert by_query.status_code == 200 and by_query.json()["customer_id"] == cid, cid
            if cid not in (".", ".."):  # clients fold these away as path segments: the query form serves them
                assert found.status_code == 200 and found.json()["customer_id"] == cid, cid
                recs = c.get("/api/customers/" + quote(cid, safe="") + "/recommendations", params={"n": 2})
                assert recs.status_code == 200 and recs.json()["customer_id"] == cid, cid
            # the lookup form finds them too
            looked = c.get("/customers", params={"customer_id": cid})
            assert looked.status_code == 200 and escape(cid) in looked.text, cid
        # an unencoded '/' works as well, and an id ending in '/recommendations' is still a customer
        assert c.get("/api/customers/a/b").json()["customer_id"] == "a/b"
        assert c.get("/api/customers/a/b/recommendations").json()["customer_id"] == "a/b"
        whole = c.get("/api/customers/x%2Frecommendations")
        assert whole.status_code == 200 and whole.json()["customer_id"] == "x/recommendations"


def test_serve_on_a_busy_port_is_one_line_and_exit_2(store):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cli("serve", "--store", store, "--port", port)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0] and "--port" in lines[0], lines
    assert "dashboard on" not in result.stderr and "Traceback" not in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(store: Path, *args: str):
    """``customerlens serve`` in a subprocess (uvicorn, real HTTP); yields its base URL once it answers."""
    import httpx

    port = _free_port()
    server = subprocess.Popen([*CLI, "serve", "--store", str(store), "--port", str(port), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the server did not answer /api/health in 30 s"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_awkward_ids_over_real_http(awkward):
    """Through uvicorn (which decodes paths once, unlike the test client): every link opens its customer."""
    import httpx
    from markupsafe import escape

    from customerlens.api.app import customer_path

    stored = {r["customer_id"]: r["segment_id"] for r in rows(awkward, "SELECT customer_id, segment_id FROM segments")}
    with _serving(awkward) as base, httpx.Client(base_url=base) as http:
        for cid in AWKWARD_IDS:
            listing = http.get(f"/segments/{stored[cid]}", params={"q": cid, "page_size": 200}).text
            assert f'href="{escape(customer_path(cid))}"' in listing, cid
            page = http.get(customer_path(cid))
            assert page.status_code == 200 and f"Customer {escape(cid)}</h1>" in page.text, cid
            if cid not in (".", ".."):
                assert http.get("/api/customers/" + quote(cid, safe="")).json()["customer_id"] == cid, cid
                recs = http.get("/api/customers/" + quote(cid, safe="") + "/recommendations")
                assert recs.json()["customer_id"] == cid, cid
            assert http.get("/api/customers", params={"customer_id": cid}).json()["customer_id"] == cid, cid


def _chromium() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        message = "Debian's chromium is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return chromium


@pytest.mark.slow
def test_dashboard_in_chromium(store, customer):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    ARTEFACTS.mkdir(exist_ok=True)
    with _serving(store) as base:
        seg = rows(store, "SELECT segment_id, segment_name FROM segments WHERE customer_id = ?", [customer])[0]
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                problems, elsewhere = [], []

                def local_only(route):  # the network beyond this server is "down": nothing may need it
                    if route.request.url.startswith(base + "/"):
                        return route.continue_()
                    elsewhere.append(route.request.url)
                    return route.abort()

                page.route("**/*", local_only)
                page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.goto(base + "/")
                assert page.locator("#segments tbody tr").count() >= 4
                page.screenshot(path=str(ARTEFACTS / "dashboard_overview.png"), full_page=True)
                page.click(f"#segments a[href='/segments/{seg['segment_id']}']")
                page.wait_for_url(f"**/segments/{seg['segment_id']}")
                assert page.locator("h1").inner_text() == seg["segment_name"]
                assert page.locator("#top-products tbody tr").count() > 0
                page.screenshot(path=str(ARTEFACTS / "dashboard_segment.png"), full_page=True)
                page.fill("input[name=q]", customer)
                page.click("form[role=search] button")
                page.wait_for_url("**q=*")
                page.click(f"#customers a[href='/customers/{customer}']")
                page.wait_for_url(f"**/customers/{customer}")
                assert page.locator("#segment-name").inner_text() == seg["segment_name"]
                reasons = page.locator("#recommendations td.reason")
                assert reasons.count() > 0 and reasons.first.inner_text().strip()
                assert page.locator("#discover td.reason").count() > 0  # the second list, with its reasons
                page.screenshot(path=str(ARTEFACTS / "dashboard_customer.png"), full_page=True)
                page.goto(base + "/customers")
                page.fill("input[name=customer_id]", customer)
                page.click("form[role=search] button")
                page.wait_for_url(f"**/customers/{customer}")
                # the API docs: Swagger UI from the installed package, drawn with the network blocked
                page.goto(base + "/docs")
                page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
                assert "customerlens" in page.locator(".swagger-ui .info .title").inner_text()
                page.wait_for_selector(".opblock")
                assert page.locator(".opblock").count() >= 8
                page.screenshot(path=str(ARTEFACTS / "dashboard_api_docs.png"), full_page=False)
                assert problems == [] and elsewhere == [], (problems, elsewhere)
            finally:
                browser.close()



CHARTS_DRAWN = """() => {
  const charts = Array.from(document.querySelectorAll('figure:not([hidden]) div.chart[data-chart]'));
  return charts.length > 0 && charts.every(c => c.dataset.rendered === 'true');
}"""


def _charts_drawn(page, at_least: int) -> dict[str, str]:
    """Wait until every chart of the page is drawn as SVG with marks; each chart's SVG by name."""
    page.wait_for_function(CHARTS_DRAWN, timeout=30_000)
    drawn = {}
    for chart in page.locator("figure:not([hidden]) div.chart[data-chart]").all():
        name = chart.get_attribute("data-chart")
        marks = chart.locator("svg [class*='mark-']")
        assert marks.count() > 0, f"chart {name} has no marks"
        drawn[name] = chart.locator("svg").first.inner_html()
    assert len(drawn) >= at_least, sorted(drawn)
    return drawn


def _no_serious_accessibility_problems(page, where: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found
               if v["impact"] in ("serious", "critical")]
    assert serious == [], (where, serious)


@pytest.mark.slow
def test_dashboard_charts_filters_and_downloads_in_chromium(store, customer, tmp_path):
    """Every page's charts drawn by the bundled Vega (offline), a filter that changes them, PNG and CSV
    downloads, axe-core's check, and screenshots at desktop and phone width.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    ARTEFACTS.mkdir(exist_ok=True)
    seg = rows(store, "SELECT segment_id, segment_name FROM segments WHERE customer_id = ?", [customer])[0]
    months = [r["m"] for r in rows(store, "SELECT DISTINCT strftime(order_date, '%Y-%m') AS m FROM transactions "
                                          "ORDER BY 1")]
    # the same store with a campaign's results beside it: the campaigns page draws its forest plot too
    shutil.copy(store, tmp_path / "customerlens.duckdb")
    _randomised_campaign().to_csv(tmp_path / "campaign_lift.csv", index=False)
    store = tmp_path / "customerlens.duckdb"
    with _serving(store) as base, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            problems, elsewhere = [], []

            def local_only(route):
                if route.request.url.startswith(base + "/"):
                    return route.continue_()
                elsewhere.append(route.request.url)
                return route.abort()

            page.route("**/*", local_only)
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            page.goto(base + "/")
            before = _charts_drawn(page, at_least=4)
            assert {"sizes", "trends", "value", "elbow"} <= set(before)
            # each spec asked for once, from the page's head (preloaded, and the page script used that answer)
            specs = page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.includes('/charts/'))"
                                  ".map(e => [new URL(e.name).pathname, e.initiatorType])")
            assert sorted(map(tuple, specs)) == sorted((f"/charts/{name}.json", "link") for name in before), specs
            page.screenshot(path=str(ARTEFACTS / "dashboard_overview_charts.png"), full_page=True)
            _no_serious_accessibility_problems(page, "overview")

            # a filter: one segment and a range of months, applied from the form; the URL carries it
            page.select_option("select[name=segment]", str(seg["segment_id"]))
            page.select_option("select[name=start]", months[2])
            page.select_option("select[name=end]", months[-3])
            page.click("form.filters button[type=submit]")
            page.wait_for_url(f"**segment={seg['segment_id']}*")
            after = _charts_drawn(page, at_least=3)
            assert after["trends"] != before["trends"] and after["sizes"] != before["sizes"]
            source = page.locator("#chart-trends").get_attribute("data-src")
            spec = page.evaluate("url => fetch(url).then(r => r.json())", source)["spec"]
            data = next(d["values"] for d in spec["data"] if d.get("values"))
            assert {d["segment_name"] for d in data} == {seg["segment_name"]}
            assert min(d["month"] for d in data)[:7] == months[2] and max(d["month"] for d in data)[:7] == months[-3]
            shared = page.url
            page.goto(shared)  # the filtered page is a URL to share: the same charts again
            assert _charts_drawn(page, at_least=3)["trends"] == after["trends"]

            # downloads: the chart as PNG and SVG, its data as CSV (with the filters)
            with page.expect_download() as png:
                page.click("button[data-download=png][data-chart=trends]")
            assert png.value.suggested_filename == "trends.png"
            assert Path(png.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            with page.expect_download() as svg:
                page.click("button[data-download=svg][data-chart=trends]")
            assert b"<svg" in Path(svg.value.path()).read_bytes()[:500]
            with page.expect_download() as table:
                page.click("#figure-trends a:text-is('CSV')")
            lines = Path(table.value.path()).read_text(encoding="utf-8").splitlines()
            assert lines[0].startswith("month,segment_id,segment_name,revenue") and len(lines) > 1
            assert all(f",{seg['segment_id']}," in line for line in lines[1:])

            page.goto(f"{base}/segments/{seg['segment_id']}")
            drawn = _charts_drawn(page, at_least=4)
            assert {"trends", "top_products", "distinctive", "box_plots", "scores"} <= set(drawn)
            page.screenshot(path=str(ARTEFACTS / "dashboard_segment_charts.png"), full_page=True)
            _no_serious_accessibility_problems(page, "segment")

            page.goto(base + customer_path(customer))
            assert {"timeline", "outlook"} <= set(_charts_drawn(page, at_least=2))
            page.screenshot(path=str(ARTEFACTS / "dashboard_customer_charts.png"), full_page=True)
            _no_serious_accessibility_problems(page, "customer")

            page.goto(base + "/campaigns")
            assert set(_charts_drawn(page, at_least=1)) == {"campaigns"}
            assert page.locator("#chart-campaigns svg .mark-rule path, #chart-campaigns svg .mark-rule line"
                                ).count() >= 4  # an interval per row
            page.screenshot(path=str(ARTEFACTS / "dashboard_campaigns_charts.png"), full_page=True)
            _no_serious_accessibility_problems(page, "campaigns")
            # at 1280 px the page does not scroll sideways: the lift table scrolls inside its own box
            assert page.viewport_size["width"] == 1280
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280 + 1

            # a phone's width: the charts are still drawn and the page does not scroll sideways
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.route("**/*", local_only)
            phone.goto(base + "/")
            _charts_drawn(phone, at_least=4)
            assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
            phone.screenshot(path=str(ARTEFACTS / "dashboard_overview_phone.png"), full_page=True)
            assert problems == [] and elsewhere == [], (problems, elsewhere)
        finally:
            browser.close()


def test_store_or_channel_filter(tmp_path):
    """A store/channel column (a grocery chain's shops, web against app) is a filter like the country."""
    from customerlens.api.data import StoreData
    from customerlens.api.figures import Filters, figure, page_slots

    path = tmp_path / "customerlens.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("""CREATE TABLE transactions AS SELECT 'c' || (i % 40) AS customer_id, 'o' || i AS order_id,
                       TIMESTAMP '2024-01-03' + INTERVAL (i % 150) DAY AS order_date, 'p' || (i % 7) AS product_id,
                       'product ' || (i % 7) AS product_name, 10.0 + i % 5 AS amount, 'UK' AS country,
                       CASE WHEN i % 3 = 0 THEN 'web' ELSE 'shop 12' END AS channel FROM range(600) t(i)""")
        con.execute("""CREATE TABLE segments AS SELECT DISTINCT customer_id, 1 + hash(customer_id) % 2 AS segment_id,
                       CASE WHEN hash(customer_id) % 2 = 0 THEN 'High-Value' ELSE 'At-Risk' END AS segment_name
                       FROM transactions""")
        con.execute("""CREATE TABLE segment_profiles AS SELECT segment_id, segment_name, count(*) AS customers,
                       0.0 AS revenue, 0.5 AS share_customers, 0.5 AS share_revenue FROM segments GROUP BY ALL""")
    store = StoreData.open(path)
    try:
        cur = store.cursor()
        assert store.values_of(cur, "channel") == ["shop 12", "web"]
        assert store.values_of(cur, "country") == []  # one country: nothing to choose
        web = figure("trends", store, cur, Filters(channel="web"))
        expected = cur.execute("SELECT sum(amount) FROM transactions WHERE channel = 'web'").fetchall()[0][0]
        slots = {slot["name"]: slot for slot in page_slots("overview", store, Filters(channel="web"))}
        assert web.data["revenue"].sum() == pytest.approx(expected) and slots["trends"]["query"] == "channel=web"
        every = figure("trends", store, cur, Filters())
        assert every.data["revenue"].sum() == pytest.approx(6 * 100 * 12.0)
    finally:
        store.close()
    with TestClient(create_app(Settings(store=path))) as c:
        page = c.get("/", params={"channel": "web"}).text
        assert '<select name="channel">' in page and '<option value="web" selected>' in page
        assert 'name="country"' not in page
