"""Commands over a finished run: ``serve`` (dashboard and REST API), ``report`` (HTML) and ``version``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from customerlens._version import __version__
from customerlens.cli.entry import app, err, out


@app.command()
def serve(
    store: Annotated[Path, typer.Option("--store", help="The store written by `customerlens run`: "
                                        "DIR/customerlens.duckdb (opened read-only).", show_default=False)],
    host: Annotated[str, typer.Option("--host", help="Address to listen on. Anything but loopback needs a "
                                      "token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    token: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--token", envvar="CUSTOMERLENS_API_TOKEN", show_envvar=True,
                     help="API token (8+ characters): every request but /api/health then needs "
                     "`Authorization: Bearer TOKEN`; in a browser, sign in once on /login."),
    ] = None,
) -> None:
    """The dashboard and REST API over a store: pages for people, JSON for programs.

    Overview, one page per segment (profile, top products, customers, target list download),
    customer lookup with recommendations and reasons, campaigns; the API and its OpenAPI docs
    under /api and /docs (docs/dashboard.md). Listens on 127.0.0.1 unless told otherwise, and
    refuses any other address without a token.

    Example: `customerlens serve --store out/customerlens.duckdb --port 8000`
    """
    from customerlens.api import Settings
    from customerlens.api import serve as serve_app
    from customerlens.api.server import bind, check_bind

    settings = Settings(store=store, token=token or None).check()
    check_bind(settings, host, port)
    sock = bind(host, port)  # a busy port is one line and exit 2, before anything says "on"
    shown = f"[{host}]" if ":" in host else host
    signin = "; sign in with the token" if settings.token else ""
    err.print(f"customerlens dashboard on http://{shown}:{port}/ (API docs at /docs{signin}); Ctrl+C stops it",
              highlight=False, soft_wrap=True)
    serve_app(settings, host, port, sock=sock)


@app.command()
def report(
    store: Annotated[Path, typer.Option("--store", help="The store written by `customerlens run`: "
                                        "DIR/customerlens.duckdb (opened read-only).", show_default=False)],
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Where to write the HTML file (default: report.html beside the store).",
                     show_default=False),
    ] = None,
) -> None:
    """Rebuild the HTML report of a store: one self-contained file that opens offline in any browser.

    Data quality, the choice of k, the segments (overview, comparisons, spending, trends, cohorts,
    migration, top products), value and churn, recommendation examples, campaign results when the
    store has them, and the action plan, with interactive charts and sortable tables (docs/report.md).

    Example: `customerlens report --store out/customerlens.duckdb --out out/report.html`
    """
    from customerlens.outputs.report import write_report

    target = output if output is not None else store.parent / "report.html"
    written = write_report(store, target)
    out.print(f"Wrote {written} ({written.stat().st_size / 1e6:.1f} MB)", highlight=False, soft_wrap=True)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)

