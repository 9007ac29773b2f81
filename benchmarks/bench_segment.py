"""Benchmark: segmentation including the k = 1..10 search.

Cases, each in its own process (peak memory = that process's max RSS):

* Online Retail's 4,324 customers (features computed first, not timed);
* 1M synthetic customers: the demo model's customer table (20,000 customers
  from `customerlens demo`), resampled with multiplicative noise to 1M rows,
  so the clusters have the shapes real ones have.

    .venv/bin/python benchmarks/bench_segment.py [--customers 1000000]

With more than 50,000 customers the k search runs on a seeded sample of
50,000 (``CustomerSegmenter(search_sample=...)``); the script also reports
whether the sample chose the same k as the full data would, on 200,000
customers (``--check-sample``). Prints a table and writes
benchmarks/results/segment.json. Target (issue 4): the k search on 1M
customers under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = Path(os.environ.get("CUSTOMERLENS_DATA", REPO.parent / "shared" / "data"))
RESULTS = HERE / "results"


def _features_retail():
    import customerlens as cl

    ingested = cl.ingest(DATA_DIR / "online_retail" / "online_retail.csv.gz")
    return cl.customer_features(ingested.cleaned.transactions).df()


def _features_synthetic(n: int):
    import tempfile

    import numpy as np

    import customerlens as cl
    from customerlens.io import demo

    with tempfile.TemporaryDirectory() as tmp:
        path, _ = demo.write(demo.generate(20_000, seed=1), Path(tmp) / "demo.parquet")
        base = cl.customer_features(cl.ingest(path).cleaned.transactions).df()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(base), n)
    out = base.iloc[idx].reset_index(drop=True)
    for col in ("recency_days", "frequency", "monetary"):
        out[col] = (out[col].astype(float) * rng.lognormal(0, 0.1, n)).round(2)
    out["customer_id"] = [f"s{i:08d}" for i in range(n)]
    return out


def run_case(case: str, n: int, search_sample: int) -> dict:
    from customerlens.models.segment.segmenter import CustomerSegmenter

    features = _features_retail() if case == "retail" else _features_synthetic(n)
    t = time.perf_counter()
    seg = CustomerSegmenter(search_sample=search_sample).fit(features)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    seg.predict(features)
    predict_s = time.perf_counter() - t
    return {"customers": len(features), "k": seg.k_, "reason": seg.k_choice_.reason, "fit_s": round(fit_s, 2),
            "predict_s": round(predict_s, 2), "search_sampled": seg.search_sampled_,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _child(case: str, n: int, search_sample: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", case, "--customers", str(n),
                          "--search-sample", str(search_sample)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{case} failed:\n{out.stderr}")
    return {"case": case, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--search-sample", type=int, default=50_000)
    parser.add_argument("--check-sample", action="store_true",
                        help="also fit 200,000 customers with and without the sample")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_case(args.child, args.customers, args.search_sample)))
        return
    results = []
    if (DATA_DIR / "online_retail" / "online_retail.csv.gz").exists():
        results.append(_child("retail", 0, args.search_sample))
    results.append(_child("synthetic", args.customers, args.search_sample))
    if args.check_sample:
        results.append(_child("synthetic", 200_000, args.search_sample) | {"case": "synthetic 200k, sampled search"})
        results.append(_child("synthetic", 200_000, 10**9) | {"case": "synthetic 200k, full search"})
    print(f"{'case':<34} {'customers':>10} {'k':>3} {'fit s':>7} {'predict s':>9} {'peak MB':>8}")
    for r in results:
        print(f"{r['case']:<34} {r['customers']:>10,} {r['k']:>3} {r['fit_s']:>7.1f} {r['predict_s']:>9.2f} "
              f"{r['peak_rss_mb']:>8.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "segment.json").write_text(json.dumps({"benchmark": "segmentation incl. k search",
                                                      "cpus": os.cpu_count(), "results": results}, indent=2) + "\n")
    print(f"written {RESULTS / 'segment.json'}")


if __name__ == "__main__":
    main()
