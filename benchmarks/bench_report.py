"""Benchmark: the Online Retail report's size and the time it takes to open in headless Chromium.

Runs the pipeline on Online Retail (not timed; `--store` reuses a store), writes
report.html from the store (timed), then opens it from file:// in Debian's
chromium driven by Playwright and measures the time until every chart has
rendered (best and median of --repeat loads, each in a fresh page).

    .venv/bin/python benchmarks/bench_report.py [--store out/retail/customerlens.duckdb] [--repeat 5]

Prints the figures and writes benchmarks/results/report.json. Target (issue 8):
under 10 MB, opens in under 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = Path(os.environ.get("CUSTOMERLENS_DATA", REPO.parent / "shared" / "data"))
RESULTS = HERE / "results"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    import customerlens as cl
    from customerlens.outputs.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            cl.run(DATA_DIR / "online_retail" / "online_retail.csv.gz", Path(tmp) / "run",
                   cl.RunConfig.from_options(charts=False, report=False))
            store = Path(tmp) / "run" / "customerlens.duckdb"
        t = time.perf_counter()
        report = write_report(store, Path(tmp) / "report.html")
        build_seconds = time.perf_counter() - t
        size = report.stat().st_size
        loads = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
            for _ in range(args.repeat):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                t = time.perf_counter()
                page.goto(report.as_uri())
                page.wait_for_function("document.querySelectorAll('div.chart').length > 0 && "
                                       "document.querySelectorAll('div.chart').length === "
                                       "document.querySelectorAll('div.chart[data-rendered]').length",
                                       timeout=60_000)
                loads.append(time.perf_counter() - t)
                charts = page.locator("div.chart").count()
                page.close()
            browser.close()
    result = {"store": str(store), "report_bytes": size, "report_mb": round(size / 1e6, 2),
              "build_seconds": round(build_seconds, 2), "charts": charts,
              "open_seconds_best": round(min(loads), 2), "open_seconds_median": round(statistics.median(loads), 2),
              "loads": [round(v, 2) for v in loads],
              "target": "under 10 MB, opens (every chart rendered) in under 3 s"}
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
