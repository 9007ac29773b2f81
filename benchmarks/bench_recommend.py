"""Benchmark: fit + both lists (top and discover, 10 each, with reasons) for every Online Retail
customer, and at scale: 1M synthetic customers x 50k products.

    .venv/bin/python benchmarks/bench_recommend.py [--model blend]
    .venv/bin/python benchmarks/bench_recommend.py --scale [--customers 1000000 --products 50000]

The scale case draws purchase lines directly (about 20 per customer over a
year, products Zipf-popular with exponent 0.9, each customer re-buying from a
personal set), builds the interactions (timed), fits the blend (above
20k products it uses sparse top-K co-purchase neighbours instead of EASE; at this size the default
two-stage ranker gives way to it, as the service does above 2e9 customer x product pairs) and
recommends 10 products to every customer, then its discover list of 10 products each has never
bought (each timed, without the text reasons).

Cleaning is not timed (the interactions are built from clean lines, and that is
timed). Prints seconds and peak memory; writes benchmarks/results/recommend.json.
Target (issue 20): fit + both lists within 15 s on 2 cores for the default model.
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


def scale(customers: int, products: int, seed: int = 0) -> dict:
    import numpy as np
    import pandas as pd

    from customerlens.models.recommend import build_interactions, make_model
    from customerlens.models.recommend.service import DEFAULT_MODEL, TWO_STAGE_CELLS

    rng = np.random.default_rng(seed)
    per = rng.poisson(19, customers) + 1
    n = int(per.sum())
    cust = np.repeat(np.arange(customers, dtype=np.int64), per)
    pop = 1.0 / np.arange(1, products + 1) ** 0.9
    prod = rng.choice(products, n, p=pop / pop.sum())
    repeat = rng.uniform(size=n) < 0.4  # re-buy one of the customer's first products
    first_of = np.r_[0, np.cumsum(per)[:-1]]
    prod[repeat] = prod[first_of[cust[repeat]] + rng.integers(0, 3, repeat.sum()) % per[cust[repeat]]]
    days = rng.integers(0, 365, n)
    lines = pd.DataFrame({"customer_id": cust, "product_id": prod,
                          "order_id": cust * 1000 + days, "order_date": pd.Timestamp("2024-01-01")
                          + pd.to_timedelta(days, unit="D")})
    as_of = dt.datetime(2025, 1, 1)
    t0 = time.perf_counter()
    data = build_interactions(lines, as_of)
    t1 = time.perf_counter()
    # the service's rule: above TWO_STAGE_CELLS customer x product pairs the default gives way to the blend
    name = DEFAULT_MODEL if data.n_customers * data.n_products <= TWO_STAGE_CELLS else "blend"
    model = make_model(name).fit(data)
    t2 = time.perf_counter()
    items, _ = model.recommend(np.arange(data.n_customers), n=10)
    t3 = time.perf_counter()
    new, _ = model._discovery_source().recommend(np.arange(data.n_customers), n=10, exclude_seen=True)
    t4 = time.perf_counter()
    return {"customers": customers, "products": products, "lines": n, "pairs": int(data.orders.nnz),
            "model": name, **({"weight": model.weight_, "co_purchase": type(model.co_).__name__}
                              if name == "blend" else {}),
            "interactions_s": round(t1 - t0, 1), "fit_s": round(t2 - t1, 1), "recommend_s": round(t3 - t2, 1),
            "discover_s": round(t4 - t3, 1), "total_s": round(t4 - t0, 1),
            "lists_filled": float((items >= 0).all(axis=1).mean()),
            "discover_filled": float((new >= 0).all(axis=1).mean()),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a model name (default: the service's default)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", action="store_true", help="the 1M x 50k synthetic case")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=50_000)
    args = parser.parse_args()
    if args.scale:
        result = scale(args.customers, args.products)
        print(json.dumps(result, indent=2))
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "recommend_scale.json").write_text(json.dumps(result, indent=2) + "\n")
        return
    import customerlens as cl
    from customerlens.models.recommend.service import DEFAULT_MODEL, fit_recommendations

    args.model = args.model or DEFAULT_MODEL

    lines = cl.ingest(DATA_DIR / "online_retail" / "online_retail.csv.gz").cleaned.transactions.df()
    as_of = dt.datetime(2011, 12, 10)
    runs = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        recs = fit_recommendations(lines, as_of, model=args.model)
        t1 = time.perf_counter()
        table = recs.lists(n=10)
        t2 = time.perf_counter()
        runs.append({"fit_s": round(t1 - t0, 2), "recommend_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2)})
    best = min(runs, key=lambda r: r["total_s"])
    result = {"model": args.model, "customers": int(table["customer_id"].nunique()), "rows": len(table),
              "lists": sorted(table["list"].unique()),
              "runs": runs, "best": best,
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    print(json.dumps(result, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "recommend.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
