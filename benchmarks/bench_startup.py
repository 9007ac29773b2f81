"""Benchmark: how long the command line and the dashboard take before any work (issue 22).

    .venv/bin/python benchmarks/bench_startup.py [--repeat 10] [--store DIR/customerlens.duckdb]

Runs ``customerlens --help`` and ``customerlens version`` as processes, as a user types them,
``--repeat`` times each (target: within 0.3 s); then starts ``customerlens serve`` on a free
loopback port ``--repeat`` times and times each from the start of the process to the first
complete answer of ``GET /``, the overview page (target: within 2 s), polling every 10 ms. Without
--store it builds one from the demo data first (4,000 customers, not timed). Prints the median and
the slowest, writes benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = Path(sys.executable).with_name("customerlens")
TARGET_S = 0.3
DASHBOARD_TARGET_S = 2.0


def first_page_seconds(store: Path) -> float:
    """Seconds from starting ``customerlens serve`` to the first full answer of its overview page."""
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.perf_counter()
    server = subprocess.Popen([str(CLI), "serve", "--store", str(store), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - start < 60:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as answer:
                    body = answer.read()
                if answer.status == 200 and b"</html>" in body:
                    return time.perf_counter() - start
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.01)
        raise SystemExit("the dashboard did not answer within 60 s")
    finally:
        server.terminate()
        server.wait()


def demo_store() -> Path:
    import tempfile

    out = Path(tempfile.mkdtemp()) / "demo"
    subprocess.run([str(CLI), "run", "--out", str(out)], check=True, capture_output=True)
    return out / "customerlens.duckdb"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--store", type=Path, help="a store written by customerlens run (default: the demo's)")
    args = parser.parse_args()
    result = {"cpus": os.cpu_count(), "target_s": TARGET_S, "commands": {}}
    for command in (["--help"], ["version"]):
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([str(CLI), *command], check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
        name = "customerlens " + " ".join(command)
        result["commands"][name] = {"median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
                                    "met": statistics.median(seconds) <= TARGET_S}
    store = args.store or demo_store()
    seconds = [first_page_seconds(store) for _ in range(args.repeat)]
    result["commands"]["customerlens serve: first page"] = {
        "median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
        "target_s": DASHBOARD_TARGET_S, "met": statistics.median(seconds) <= DASHBOARD_TARGET_S}
    print(json.dumps(result, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "startup.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
