"""Benchmark: ingest + clean + features, on Online Retail and on synthetic data.

Each case runs in its own Python process, so its peak memory (max RSS) is its
own. Within a case the pipeline runs once to warm up (imports, file cache),
then ``--repeat`` times; the median is reported, with each stage's time.

    .venv/bin/python benchmarks/bench_foundation.py                 # both cases
    .venv/bin/python benchmarks/bench_foundation.py --lines 1000000 # smaller synthetic case

Prints a table and writes benchmarks/results/foundation.json.
Target (issue 3): Online Retail ingest+clean+features under 2 s warm on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = Path(os.environ.get("CUSTOMERLENS_DATA", REPO.parent / "shared" / "data"))
RESULTS = HERE / "results"
LINES_PER_CUSTOMER = 100  # what the demo model gives on average, dirt included (docs/demo-data.md)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _pipeline_once(path: str) -> dict:
    from customerlens.cleaning.rules import clean
    from customerlens.features.customer import customer_features
    from customerlens.io.load import load

    t0 = time.perf_counter()
    loaded = load(path)
    t1 = time.perf_counter()
    cleaned = clean(loaded.relation, has_products=loaded.mapping.has_products,
                    has_order_ids="order_id" in loaded.mapping.fields)
    t2 = time.perf_counter()
    features = customer_features(cleaned.transactions)
    n_customers = len(features.fetchnumpy()["customer_id"])  # forces the work
    t3 = time.perf_counter()
    loaded.con.close()
    return {"load_s": t1 - t0, "clean_s": t2 - t1, "features_s": t3 - t2, "total_s": t3 - t0,
            "lines": loaded.rows, "customers": n_customers}


def run_case(path: str, repeat: int) -> dict:
    """Inside the child process: warm-up, then ``repeat`` timed runs."""
    _pipeline_once(path)
    runs = [_pipeline_once(path) for _ in range(repeat)]
    summary = {key: statistics.median(r[key] for r in runs) for key in ("load_s", "clean_s", "features_s", "total_s")}
    return {**summary, "runs_total_s": [round(r["total_s"], 3) for r in runs], "lines": runs[0]["lines"],
            "customers": runs[0]["customers"], "peak_rss_mb": round(_peak_rss_mb(), 1)}


def _child(case: str, path: str, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", path, "--repeat", str(repeat)],
        capture_output=True, text=True, check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{case} failed:\n{out.stderr}")
    return {"case": case, "path": path, **json.loads(out.stdout.strip().splitlines()[-1])}


def _synthetic(lines: int, workdir: Path) -> Path:
    from customerlens.io import demo

    customers = max(100, lines // LINES_PER_CUSTOMER)
    path = workdir / f"demo_{customers}.parquet"
    if not path.exists():
        t = time.perf_counter()
        data = demo.generate(customers, seed=1)
        demo.write(data, path)
        print(f"generated {data.lines.num_rows:,} synthetic lines ({customers:,} customers) "
              f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000_000, help="synthetic lines (default 10M)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.repeat)))
        return

    results = []
    retail = DATA_DIR / "online_retail" / "online_retail.csv.gz"
    if retail.exists():
        results.append(_child("online_retail (csv.gz)", str(retail), args.repeat))
    else:
        print(f"skipping Online Retail: {retail} not found", file=sys.stderr)
    if not args.skip_synthetic:
        with tempfile.TemporaryDirectory(prefix="cl-bench-") as tmp:
            path = _synthetic(args.lines, Path(tmp))
            results.append(_child(f"synthetic {args.lines:,} lines (parquet)", str(path), max(1, args.repeat - 2)))

    header = f"{'case':<36} {'lines':>12} {'customers':>10} {'load s':>7} {'clean s':>8} {'feat s':>7} {'total s':>8} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['case']:<36} {r['lines']:>12,} {r['customers']:>10,} {r['load_s']:>7.2f} {r['clean_s']:>8.2f} "
              f"{r['features_s']:>7.2f} {r['total_s']:>8.2f} {r['peak_rss_mb']:>8.0f}")
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": "ingest+clean+features",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "timed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": results,
    }
    (RESULTS / "foundation.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwritten {RESULTS / 'foundation.json'}")


if __name__ == "__main__":
    main()
