"""Benchmark: a grocery chain's year of baskets, through ``customerlens run`` and ``customerlens backtest``.

The data: ``customerlens.io.shapes.grocery`` (the ``demo --shape grocery`` generator) with 1,700
households and an 80,000-product catalogue: about 1.5 million lines and 70,000 distinct products,
fuel, deposits and coupons, columns as a grocery export names them (no ``--map``). Cached in
benchmarks/data/.

Each command runs in its own process, as a user runs it; the figures are its wall-clock seconds
and its peak resident memory (the kernel's ``ru_maxrss`` for that process, from ``os.wait4``):

* ``customerlens run FILE --out TMP`` (everything: value, insights, recommendations, 16 charts,
  the report), target 90 s on 2 cores;
* ``customerlens backtest FILE --as-of 2024-10-01`` (every model, and blend with discovery
  places), target 3 GB peak.

    .venv/bin/python benchmarks/bench_grocery.py [--households 1700] [--products 80000]

Prints a Markdown table and writes benchmarks/results/grocery.json (issue 19).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DATA = HERE / "data"
CLI = [sys.executable, "-m", "customerlens.cli"]
TARGETS = {"run": ("seconds", 90.0), "backtest": ("peak_gb", 3.0)}


def grocery_file(households: int, products: int, seed: int = 7) -> Path:
    """The benchmark's Parquet file, generated once."""
    path = DATA / f"grocery_{households}_{products}_{seed}.parquet"
    if not path.exists():
        from customerlens.io import demo
        from customerlens.io.shapes import grocery

        DATA.mkdir(parents=True, exist_ok=True)
        demo.write(grocery(households, products=products, seed=seed), path)
    return path


def measure(args: list[str]) -> dict:
    """Run ``customerlens ARGS`` in a process of its own: seconds, peak memory, exit code, output's tail."""
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen([*CLI, *args], stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        tail = log.read()[-2000:]
    return {"command": "customerlens " + " ".join(args), "exit_code": proc.returncode,
            "seconds": round(seconds, 1), "peak_gb": round(usage.ru_maxrss * 1024 / 1e9, 2), "output_tail": tail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1700)
    parser.add_argument("--products", type=int, default=80_000)
    parser.add_argument("--as-of", default="2024-10-01")
    options = parser.parse_args()

    import duckdb

    path = grocery_file(options.households, options.products)
    lines, products, households = duckdb.connect().execute(
        f"SELECT count(*), count(DISTINCT product_id), count(DISTINCT household_id) FROM '{path}'").fetchone()
    results = {"data": {"file": path.name, "lines": lines, "products": products, "households": households},
               "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as out:
        results["run"] = measure(["run", str(path), "--out", out])
        table = Path(out) / "backtest.json"
        results["backtest"] = measure(["backtest", str(path), "--as-of", options.as_of, "--out", str(table)])
        if table.exists():
            results["backtest"]["results"] = json.loads(table.read_text())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "grocery.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"Grocery shape: {lines:,} lines, {products:,} products, {households:,} households, "
          f"{os.cpu_count()} CPUs\n")
    print("| command | seconds | peak memory | target | met |")
    print("| --- | ---: | ---: | --- | --- |")
    for name, (measure_, limit) in TARGETS.items():
        row = results[name]
        met = row["exit_code"] == 0 and row[measure_] <= limit
        target = f"{limit:.0f} s" if measure_ == "seconds" else f"{limit:.0f} GB peak"
        print(f"| {name} | {row['seconds']} | {row['peak_gb']} GB | {target} | {'yes' if met else 'NO'} |")
    print(f"\nwritten: {RESULTS / 'grocery.json'}")


if __name__ == "__main__":
    main()
