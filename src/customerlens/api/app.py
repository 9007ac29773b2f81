"""The FastAPI app: JSON API under ``/api``, server-rendered pages elsewhere.

``create_app(settings)`` builds it; its lifespan opens the store read-only, reads the
recommendations into memory and loads the saved segmenter when there is one.
Endpoints get them through ``Depends``. Two pure-ASGI middlewares guard every
request: the token check (when a token is set) and the request-body size limit.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from customerlens._version import __version__
from customerlens.api.data import StoreData
from customerlens.api.schemas import CustomerPage, Error, RecommendationsResponse, ScoreRequest, ScoreResponse
from customerlens.api.settings import Settings
from customerlens.outputs.files import formula_safe_cell

COOKIE = "customerlens_token"
#: Pages use no script and nothing from elsewhere: the policy says so to the browser.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
NOT_FOUND = {404: {"model": Error, "description": "Not in the store"}}


@dataclass
class State:
    """What the lifespan opens, shared by all requests."""

    settings: Settings
    store: StoreData
    segmenter: Any = None


# -- dependencies
def get_state(request: Request) -> State:
    """The app's state (store, settings, segmenter), injected with Depends."""
    return request.app.state.customerlens


def get_cursor(state: Annotated[State, Depends(get_state)]) -> Iterator[Any]:
    """One DuckDB cursor per request: a connection is not safe to share between threads."""
    cur = state.store.cursor()
    try:
        yield cur
    finally:
        cur.close()


StateDep = Annotated[State, Depends(get_state)]
CursorDep = Annotated[Any, Depends(get_cursor)]
SegmentId = Annotated[int, Path(ge=1, le=1000, description="Segment id (1 = most valuable)")]
CustomerId = Annotated[str, Path(min_length=1, max_length=100)]
Q = Annotated[str, Query(max_length=100, description="Part of a customer id (case-insensitive)")]
PageNo = Annotated[int, Query(ge=1, le=1_000_000)]


def _page_size(state: StateDep, page_size: Annotated[int, Query(ge=1, le=1000)] = 50) -> int:
    if page_size > state.settings.max_page_size:
        raise HTTPException(422, f"page_size must be at most {state.settings.max_page_size}")
    return page_size


PageSize = Annotated[int, Depends(_page_size)]


# -- middlewares (pure ASGI: no per-request task overhead on the hot path)
async def _send_json(send, status: int, detail: str, headers: list | None = None) -> None:
    body = JSONResponse({"detail": detail}).body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """413 for a request body over ``limit`` bytes (declared or streamed)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        """Refuse request bodies over the limit before they are read (413)."""
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_json(send, 400, "bad Content-Length")
                if declared > self.limit:
                    return await _send_json(send, 413, f"request body over {self.limit:,} bytes")
        seen = 0
        started = replied = False

        async def counted():
            # FastAPI turns errors while reading the body into 400: answer 413 here, then drop its reply
            nonlocal seen, started, replied
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    if not started:
                        started = replied = True
                        await _send_json(send, 413, f"request body over {self.limit:,} bytes")
                    raise _TooLarge
            return message

        async def watched(message):
            nonlocal started
            if replied:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            pass


class TokenAuth:
    """Every request but ``GET /api/health`` needs the token: Bearer header, ``?token=`` or the cookie."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token.encode()

    def _ok(self, candidate: str | bytes | None) -> bool:
        if not candidate:
            return False
        if isinstance(candidate, str):
            candidate = candidate.encode()
        return secrets.compare_digest(candidate, self.token)

    async def __call__(self, scope, receive, send):
        """Let a request through only with the token (header or cookie); /api/health is open."""
        if scope["type"] != "http" or scope["path"] == "/api/health":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and self._ok(auth[7:].strip()):
            return await self.app(scope, receive, send)
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no cookie
            cookie = SimpleCookie()
        if COOKIE in cookie and self._ok(cookie[COOKIE].value):
            return await self.app(scope, receive, send)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if self._ok((query.get("token") or [None])[0]):
            set_cookie = (f"{COOKIE}={self.token.decode()}; HttpOnly; SameSite=Strict; Path=/").encode()

            async def with_cookie(message):
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", set_cookie)]}
                await send(message)

            return await self.app(scope, receive, with_cookie)
        if scope["path"].startswith(("/api", "/docs", "/openapi.json", "/redoc")):
            return await _send_json(send, 401, "missing or wrong API token (Authorization: Bearer <token>)",
                                    [(b"www-authenticate", b"Bearer")])
        body = (b"<!doctype html><title>customerlens: token needed</title><h1>Token needed</h1>"
                b"<p>Open this page with <code>?token=&lt;your token&gt;</code> once; a cookie keeps you signed in.")
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# -- the app
def create_app(settings: Settings) -> FastAPI:
    """The dashboard and API over the store in ``settings`` (opened when the app starts)."""
    settings = settings.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = StoreData.open(settings.store)
        segmenter = None
        if settings.segmenter_path.is_file():
            from customerlens.models.segment.segmenter import CustomerSegmenter

            segmenter = CustomerSegmenter.load(settings.segmenter_path)
        app.state.customerlens = State(settings, store, segmenter)
        try:
            yield
        finally:
            store.close()

    app = FastAPI(
        title="customerlens",
        version=__version__,
        summary="Segments, customer value and recommendations from a customerlens store.",
        description="Read-only API over `customerlens.duckdb`. With a token set, send `Authorization: Bearer "
                    "<token>` (or `?token=` once in a browser). See docs/dashboard.md.",
        lifespan=lifespan,
    )
    _api_routes(app)
    _page_routes(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.token:
        app.add_middleware(TokenAuth, token=settings.token)
    return app


def _segment_or_404(state: State, cur, segment_id: int) -> dict:
    segment = state.store.segment(cur, segment_id)
    if segment is None:
        raise HTTPException(404, f"no segment {segment_id} in the store")
    return segment


def _api_routes(app: FastAPI) -> None:
    @app.get("/api/health", tags=["meta"])
    def health(state: StateDep) -> dict:
        """Liveness and what the store holds (no token needed)."""
        store = state.store
        return {"status": "ok", "version": __version__, "store": store.path.name, "customers": len(store.customers),
                "segments": store.has("segments"), "value": store.has("customer_value"),
                "recommendations": len(store.recommendations), "segmenter": state.segmenter is not None}

    @app.get("/api/segments", tags=["segments"])
    def segments(state: StateDep, cur: CursorDep) -> list[dict[str, Any]]:
        """Every segment: size, revenue share, strategy, and value (CLV, value at risk) when present."""
        return state.store.segments(cur)

    @app.get("/api/segments/{segment_id}", tags=["segments"], responses=NOT_FOUND)
    def segment(segment_id: SegmentId, state: StateDep, cur: CursorDep) -> dict[str, Any]:
        """A segment's profile, top and distinctive products, value summary, action and monthly trend."""
        return _segment_or_404(state, cur, segment_id)

    @app.get("/api/segments/{segment_id}/customers", tags=["segments"], responses=NOT_FOUND)
    def segment_customers(segment_id: SegmentId, state: StateDep, cur: CursorDep, page_size: PageSize,
                          q: Q = "", page: PageNo = 1) -> CustomerPage:
        """The segment's customers, most value at risk first; ``q`` searches customer ids."""
        _segment_or_404(state, cur, segment_id)
        return CustomerPage(**state.store.segment_customers(cur, segment_id, q.strip(), page, page_size))

    @app.get("/api/segments/{segment_id}/targets.csv", tags=["segments"], responses=NOT_FOUND,
             response_class=Response)
    def targets(segment_id: SegmentId, state: StateDep, cur: CursorDep) -> Response:
        """The segment's target list as CSV: customers, value, churn risk and the next best product."""
        segment = _segment_or_404(state, cur, segment_id)
        names, rows = state.store.target_rows(cur, segment_id)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([formula_safe_cell(name) for name in names])
        writer.writerows([formula_safe_cell(value) for value in row] for row in rows)  # injection-safe
        from customerlens.core.text import slug

        filename = f"{slug(segment['segment_name'])}.csv"
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})

    @app.get("/api/customers/{customer_id}", tags=["customers"], responses=NOT_FOUND)
    def customer(customer_id: CustomerId, state: StateDep, cur: CursorDep) -> dict[str, Any]:
        """A customer's features, segment, R/F/M scores and P(alive), CLV and churn risk when present."""
        found = state.store.customer(cur, customer_id)
        if found is None:
            raise HTTPException(404, f"no customer {customer_id!r} in the store")
        return found

    @app.get("/api/customers/{customer_id}/recommendations", tags=["customers"], responses=NOT_FOUND,
             response_model=RecommendationsResponse)
    async def recommendations(customer_id: CustomerId, request: Request,
                              n: Annotated[int, Query(ge=1, le=50, description="How many (1-50)")] = 10) -> Response:
        """The customer's precomputed recommendations with their reasons (served from memory)."""
        store = request.app.state.customerlens.store
        if customer_id not in store.customers:
            raise HTTPException(404, f"no customer {customer_id!r} in the store")
        return Response(store.recommendations_json(customer_id, n), media_type="application/json")

    @app.post("/api/score", tags=["scoring"], responses={413: {"model": Error}, 503: {"model": Error}})
    def score(body: ScoreRequest, state: StateDep) -> ScoreResponse:
        """Segment new customers with the saved segmenter, from their features or their transactions."""
        return ScoreResponse(**_score(state, body))


def _score(state: State, body: ScoreRequest) -> dict:
    import pandas as pd

    seg = state.segmenter
    if seg is None:
        raise HTTPException(503, "no saved segmenter beside the store (segmenter.joblib): re-run `customerlens run`")
    rows = body.features if body.features is not None else body.transactions
    if len(rows) > state.settings.max_score_rows:
        raise HTTPException(413, f"at most {state.settings.max_score_rows:,} rows per request")
    needed = list(seg.features)
    if body.features is not None:
        frame = pd.DataFrame([r.model_dump() for r in body.features])
        missing = sorted({f for f in needed if f not in frame.columns or frame[f].isna().any()})
        if missing:
            raise HTTPException(422, f"every customer needs the segmenter's features: {', '.join(missing)}")
        frame = frame[["customer_id", *needed]]
    else:
        from customerlens.features.customer import customer_features

        lines = pd.DataFrame([r.model_dump() for r in body.transactions])
        dates = pd.to_datetime(lines["order_date"], utc=True).dt.tz_localize(None)
        lines["order_date"] = dates.astype("datetime64[us]")
        lines["product_id"] = lines["product_id"].astype("string")
        as_of = body.as_of.isoformat() if body.as_of else None
        frame = customer_features(lines, as_of=as_of)
        if len(frame) == 0:
            raise HTTPException(422, "no transaction before as_of")
        frame = frame[["customer_id", *needed]]
    assigned = seg.assign(frame)
    strategies = getattr(seg, "strategies_", {})
    customers = [{"customer_id": str(r["customer_id"]), "segment_id": int(r["segment_id"]),
                  "segment_name": r["segment_name"], "strategy": strategies.get(int(r["segment_id"])),
                  "features": {f: float(r[f]) for f in needed}} for r in assigned.to_dict(orient="records")]
    return {"model": {"features": needed, "k": int(getattr(seg, "k_", 0))}, "customers": customers}


# -- pages
def _templates():
    import jinja2
    from fastapi.templating import Jinja2Templates

    env = jinja2.Environment(loader=jinja2.PackageLoader("customerlens.api", "templates"),
                             autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)
    env.filters.update(
        money=lambda v: "–" if v is None else f"{v:,.0f}",
        num=lambda v, d=1: "–" if v is None else (f"{v:,.{d}f}" if isinstance(v, float) else f"{v:,}"),
        pct=lambda v, d=0: "–" if v is None else f"{v:.{d}%}",
        urlpart=lambda v: quote(str(v), safe=""),
        show=lambda v: "–" if v is None else str(v).removesuffix("T00:00:00"),
        basename=lambda v: str(v).replace("\\", "/").rsplit("/", 1)[-1],
    )
    return Jinja2Templates(env=env)


def _page_routes(app: FastAPI) -> None:
    templates = _templates()

    def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status, headers=PAGE_HEADERS)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request, state: StateDep, cur: CursorDep):
        rows = state.store.segments(cur)
        total = {"customers": sum(r.get("customers") or 0 for r in rows),
                 "revenue": sum(r.get("revenue") or 0 for r in rows),
                 "clv_12m": sum(r.get("clv_12m") or 0 for r in rows) if state.store.has("segment_value") else None,
                 "value_at_risk": (sum(r.get("value_at_risk") or 0 for r in rows)
                                   if state.store.has("segment_value") else None)}
        return render(request, "overview.html", segments=rows, total=total, record=state.store.record)

    @app.get("/segments/{segment_id}", response_class=HTMLResponse, include_in_schema=False)
    def segment_page(request: Request, segment_id: SegmentId, state: StateDep, cur: CursorDep,
                     page_size: PageSize, q: Q = "", page: PageNo = 1):
        segment = state.store.segment(cur, segment_id)
        if segment is None:
            return render(request, "missing.html", 404, what=f"segment {segment_id}")
        listing = state.store.segment_customers(cur, segment_id, q.strip(), page, page_size)
        return render(request, "segment.html", s=segment, listing=listing)

    @app.get("/customers", response_class=HTMLResponse, include_in_schema=False)
    def lookup(request: Request, customer_id: Annotated[str, Query(max_length=100)] = ""):
        if customer_id.strip():
            return RedirectResponse(f"/customers/{quote(customer_id.strip(), safe='')}", status_code=303)
        return render(request, "lookup.html")

    @app.get("/customers/{customer_id}", response_class=HTMLResponse, include_in_schema=False)
    def customer_page(request: Request, customer_id: CustomerId, state: StateDep, cur: CursorDep):
        found = state.store.customer(cur, customer_id)
        if found is None:
            return render(request, "missing.html", 404, what=f"customer {customer_id}")
        recs = state.store.recommendations_for(customer_id, 50)
        return render(request, "customer.html", c=found, recs=recs, has_recs=state.store.has("recommendations"))

    @app.get("/campaigns", response_class=HTMLResponse, include_in_schema=False)
    def campaigns(request: Request, state: StateDep, cur: CursorDep):
        rows = state.store.campaign_lift(cur)
        return render(request, "campaigns.html", rows=rows, columns=list(rows[0]) if rows else [])
