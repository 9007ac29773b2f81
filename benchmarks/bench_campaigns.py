"""Benchmark: a CRM's send list of 20 campaigns over a grocery chain's year, through ``customerlens campaigns``.

The data: the grocery shape (``customerlens.io.shapes.grocery``) with 2,500 households, about 1.5
million lines (cached in benchmarks/data/), and a send list of 20 campaigns, one every two weeks
from the third month, each sent to households chosen by their activity before its date (the
more orders and the more recent, the likelier: as marketers pick), with no control group.

The command runs in a process of its own, as a user runs it; the figures are its wall-clock
seconds and peak resident memory:

    customerlens campaigns sends.csv --transactions grocery.parquet --window-days 14 --out DIR --json

Target (issue 21): within 60 s on 2 cores. Prints the figures and writes benchmarks/results/campaigns.json.

    .venv/bin/python benchmarks/bench_campaigns.py [--households 2500] [--campaigns 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grocery import DATA, RESULTS, grocery_file, measure  # noqa: E402

TARGET_S = 60.0


def send_list(transactions: Path, campaigns: int, seed: int = 0) -> Path:
    """20 campaigns, each sent to households picked by their orders and recency before its date."""
    import numpy as np
    import pandas as pd

    path = DATA / f"sends_{transactions.stem}_{campaigns}_{seed}.csv"
    if path.exists():
        return path
    lines = pd.read_parquet(transactions, columns=["household_id", "basket_id", "transaction_timestamp"])
    orders = lines.drop_duplicates("basket_id")
    day = pd.to_datetime(orders["transaction_timestamp"]).dt.normalize()
    start = day.min() + pd.Timedelta(days=60)
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(campaigns):
        when = start + pd.Timedelta(days=14 * c)
        before = orders[day < when]
        per = before.groupby("household_id").agg(n=("basket_id", "size"))
        per["recency"] = (when - day[day < when].groupby(before["household_id"]).max()).dt.days
        score = -2.5 + 0.5 * np.log1p(per["n"]) - 0.4 * np.log1p(per["recency"])
        chosen = per.index[rng.uniform(size=len(per)) < 1 / (1 + np.exp(-score))]
        rows.append(pd.DataFrame({"household_id": chosen, "campaign_id": f"C{c + 1:02d}",
                                  "start_date": when.strftime("%Y-%m-%d")}))
    pd.concat(rows).to_csv(path, index=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=2500)
    parser.add_argument("--products", type=int, default=68_000)
    parser.add_argument("--campaigns", type=int, default=20)
    args = parser.parse_args()
    data = grocery_file(args.households, args.products)
    sends = send_list(data, args.campaigns)
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(["campaigns", str(sends), "--transactions", str(data), "--window-days", "14",
                          "--out", tmp, "--json"])
    import pyarrow.parquet as pq

    tail = result.pop("output_tail")  # the JSON printed is long: only the figures are kept, or the error
    if result["exit_code"] != 0:
        result["output_tail"] = tail
    figures = {"data": {"file": data.name, "lines": pq.ParquetFile(data).metadata.num_rows,
                        "households": args.households, "campaigns": args.campaigns,
                        "sends": sum(1 for _ in open(sends)) - 1},
               "cpus": os.cpu_count(), **result, "target_s": TARGET_S, "met": result["seconds"] <= TARGET_S}
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "campaigns.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
