"""Benchmark: how fast each dashboard page answers and draws its charts (issue 23).

    .venv/bin/python benchmarks/bench_dashboard.py --store DIR/customerlens.duckdb [--loads 50] [--browser]

Starts ``customerlens serve`` on the store (a run of Online Retail is the yardstick: ``customerlens
run ../shared/data/online_retail/online_retail.csv.gz --out DIR``), asks once for every page to
warm the server, then times ``--loads`` requests of each page, one after another (and of pages
with a month range no one asked for before, which the server computes afresh each time):

* ``server``: from sending the request to the last byte of the HTML (the page: its charts' specs
  are fetched by the page after it);
* with ``--browser``: in headless Chromium, from the start of the navigation to every chart of
  the page drawn as SVG (``performance.now()`` when the last ``data-rendered`` is set), the network
  beyond the server blocked.

Target: the p95 of each page's first render within 500 ms. Prints a table; writes
benchmarks/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = Path(sys.executable).with_name("customerlens")
TARGET_MS = 500


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def pages(store: Path) -> dict[str, str | list[str]]:
    """Each timed page: one path asked ``--loads`` times, or a list of paths asked in turn."""
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        segment = con.execute("SELECT segment_id FROM segments GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
        customer = con.execute("SELECT customer_id FROM customer_value ORDER BY clv_12m DESC LIMIT 1").fetchone()[0]
        months = [r[0] for r in con.execute("SELECT DISTINCT strftime(order_date, '%Y-%m') FROM transactions "
                                            "ORDER BY 1").fetchall()]
        country = con.execute("SELECT country FROM transactions GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    from urllib.parse import quote, urlencode

    # month ranges (and countries) no load has asked for before: nothing of them is kept by the server
    ranges = [(a, b, c) for c in ("", country) for i, a in enumerate(months) for b in months[i + 1:]]
    fresh = ["/?" + urlencode({"start": a, "end": b, "country": c}) for a, b, c in ranges]
    return {
        "overview": "/",
        "overview, filtered": "/?" + urlencode({"segment": segment, "start": months[2], "end": months[-2],
                                                "country": country}),
        "overview, a new month range each load": fresh,
        "segment": f"/segments/{segment}",
        "segment, a new month range each load": [f"/segments/{segment}?" + p[2:] for p in fresh],
        "customer": f"/customers/{quote(str(customer), safe='')}",
        "campaigns": "/campaigns",
    }


def serve(store: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(CLI), "serve", "--store", str(store), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/api/health", timeout=2):
                return server, base
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise SystemExit("the dashboard did not start within 60 s") from None
            time.sleep(0.05)


def _nth(path: str | list[str], i: int) -> str:
    return path if isinstance(path, str) else path[i % len(path)]


def server_ms(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as answer:
        answer.read()
    return (time.perf_counter() - start) * 1000


DRAWN = """() => {
  const charts = Array.from(document.querySelectorAll('figure:not([hidden]) div.chart[data-chart]'));
  return charts.every(c => c.dataset.rendered === 'true') ? performance.now() : null;
}"""


def browser_ms(base: str, paths: dict[str, str], loads: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {name: [] for name in paths}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                   else route.abort())
        for name, path in paths.items():
            page.goto(base + "/")  # warm: the script is cached by the browser as a user's would be
            for i in range(loads):
                page.goto(base + _nth(path, i + loads), wait_until="commit")
                handle = page.wait_for_function(DRAWN, timeout=30_000, polling="raf")
                out[name].append(float(handle.json_value()))
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a store written by `customerlens run`")
    parser.add_argument("--loads", type=int, default=50)
    parser.add_argument("--browser", action="store_true", help="also time the charts drawn in Chromium")
    args = parser.parse_args()
    paths = pages(args.store)
    server, base = serve(args.store)
    results = {}
    try:
        for path in paths.values():
            if isinstance(path, str):
                server_ms(base + path)
        for name, path in paths.items():
            times = [server_ms(base + _nth(path, i)) for i in range(args.loads)]
            results[name] = {"path": _nth(path, 0), "server_p50_ms": round(statistics.median(times), 1),
                             "server_p95_ms": round(percentile(times, 95), 1)}
        if args.browser:
            for name, times in browser_ms(base, paths, args.loads).items():
                results[name].update({"drawn_p50_ms": round(statistics.median(times), 1),
                                      "drawn_p95_ms": round(percentile(times, 95), 1)})
    finally:
        server.terminate()
        server.wait()
    print(f"{args.loads} loads of each page, one after another (target: p95 within {TARGET_MS} ms)\n")
    print("| page | server p50 ms | server p95 ms | charts drawn p50 ms | charts drawn p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['server_p50_ms']} | {r['server_p95_ms']} | {r.get('drawn_p50_ms', '')} | "
              f"{r.get('drawn_p95_ms', '')} |")
    out = HERE / "results" / "dashboard.json"
    out.write_text(json.dumps({"store": args.store.name, "loads": args.loads, "target_ms": TARGET_MS,
                               "pages": results}, indent=2) + "\n")
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
