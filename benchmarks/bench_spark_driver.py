"""The Spark engine's driver memory per million customers, on a real standalone cluster (issue 24).

    .venv/bin/python benchmarks/bench_spark_driver.py --customers 100000 300000

For each size: synthetic Online Retail-shaped lines (``gen_large.py``, ten lines a customer, cached
under benchmarks/data/), a standalone master and one worker on loopback
(``customerlens.io.spark.standalone_cluster``), and ``customerlens run DATA --engine spark
--spark-master spark://... --no-insights --top-n 0 --no-report --no-charts`` in a subprocess: the
driver. Its Python process and its JVM (the driver's; the executors run in the worker's JVMs) are
sampled every 0.2 s; the peak resident memory of each, and of both together, is printed and written
to benchmarks/results/bench_spark_driver.json with a straight line through the sizes (MB per million
customers, and the fixed part).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scale import _rss_mb  # noqa: E402
from gen_large import generate  # noqa: E402


def _children(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _is_java(pid: int) -> bool:
    try:
        return b"java" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return False


def measure(data: Path, master: str, out: Path, tmp: Path) -> dict:
    cmd = [sys.executable, "-m", "customerlens.cli", "run", str(data), "--engine", "spark", "--spark-master", master,
           "--no-insights", "--top-n", "0", "--no-report", "--no-charts", "--out", str(out),
           "--spark-conf", "spark.executor.memory=3g"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp), "PYSPARK_PYTHON": sys.executable})
    peaks = {"python_mb": 0.0, "jvm_mb": 0.0, "both_mb": 0.0}

    def watch() -> None:
        while proc.poll() is None:
            python = _rss_mb(proc.pid)
            jvm = sum(_rss_mb(p) for p in _children(proc.pid) if _is_java(p))
            peaks["python_mb"] = max(peaks["python_mb"], python)
            peaks["jvm_mb"] = max(peaks["jvm_mb"], jvm)
            peaks["both_mb"] = max(peaks["both_mb"], python + jvm)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"customerlens failed on {data}:\n{stderr[-3000:]}")
    customers = int(next(line for line in stdout.splitlines() if "Customers with features" in line)
                    .split(":")[1].split()[0].replace(",", ""))
    return {"customers": customers, "seconds": round(time.perf_counter() - start, 1),
            **{key: round(value) for key, value in peaks.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 300_000])
    parser.add_argument("--lines-per-customer", type=int, default=10)
    args = parser.parse_args()
    from customerlens.io.spark import standalone_cluster

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as folder, \
            standalone_cluster(Path(folder) / "cluster", cores=2, memory="4g") as master:
        for customers in args.customers:
            lines = customers * args.lines_per_customer
            data = HERE / "data" / f"lines_{lines}.parquet"
            if not data.exists():
                generate(lines, data, lines_per_customer=args.lines_per_customer)
            tmp = Path(folder) / f"tmp_{customers}"
            tmp.mkdir()
            row = {"lines": lines, **measure(data, master, Path(folder) / f"out_{customers}", tmp)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{'customers':>10} {'lines':>11} {'seconds':>8} {'python MB':>10} {'driver JVM MB':>14} {'both MB':>8}")
    for row in rows:
        print(f"{row['customers']:>10,} {row['lines']:>11,} {row['seconds']:>8} {row['python_mb']:>10,} "
              f"{row['jvm_mb']:>14,} {row['both_mb']:>8,}")
    fit = None
    if len(rows) >= 2:
        import numpy as np

        x = np.array([r["customers"] for r in rows]) / 1e6
        for key in ("python_mb", "jvm_mb", "both_mb"):
            slope, intercept = np.polyfit(x, [r[key] for r in rows], 1)
            fit = fit or {}
            fit[key] = {"mb_per_million_customers": round(float(slope)), "fixed_mb": round(float(intercept))}
        print("\nper million customers (a straight line through the sizes):")
        for key, line in fit.items():
            print(f"  {key}: {line['mb_per_million_customers']:,} MB per million + {line['fixed_mb']:,} MB")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "bench_spark_driver.json").write_text(json.dumps({"runs": rows, "fit": fit}, indent=2) + "\n")


if __name__ == "__main__":
    main()
