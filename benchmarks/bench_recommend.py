"""Benchmark: fit + recommend (10 each, with reasons) for every Online Retail customer.

    .venv/bin/python benchmarks/bench_recommend.py [--model blend]

Cleaning is not timed (the interactions are built from clean lines, and that is
timed). Prints seconds and peak memory; writes benchmarks/results/recommend.json.
Target (issue 5): under 5 s on 2 cores for the default model.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("CUSTOMERLENS_DATA", HERE.parent.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="blend")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import customerlens as cl
    from customerlens.recommend.service import fit_recommendations

    lines = cl.ingest(DATA_DIR / "online_retail" / "online_retail.csv.gz").cleaned.transactions.df()
    as_of = dt.datetime(2011, 12, 10)
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        recs = fit_recommendations(lines, as_of, model=args.model)
        t1 = time.perf_counter()
        table = recs.for_customers(n=10)
        t2 = time.perf_counter()
        runs.append({"fit_s": round(t1 - t0, 2), "recommend_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2)})
    best = min(runs, key=lambda r: r["total_s"])
    result = {"model": args.model, "customers": int(table["customer_id"].nunique()), "rows": len(table),
              "runs": runs, "best": best,
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    print(json.dumps(result, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "recommend.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
