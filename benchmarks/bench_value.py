"""Benchmark: fitting BG/NBD + Gamma-Gamma (issue 6 target: 1M customers under 10 s on 2 cores).

Cases, each in its own process (peak memory = that process's max RSS):

* CDNOW sample (2,357 customers) and Online Retail (4,324 customers): the whole
  value stage (`fit_value`: summary from the clean lines, BG/NBD, Pareto/NBD,
  Gamma-Gamma, stacked churn model, CLV), lines loaded and cleaned first (not timed);
* 1M simulated customers (``simulate_bgnbd`` with the CDNOW parameters, ages
  uniform over 30-78 weeks, spend from the published Gamma-Gamma parameters):
  BG/NBD + Gamma-Gamma fits on the summary, then scoring (P(alive), expected
  purchases, expected spend) timed separately.

    .venv/bin/python benchmarks/bench_value.py [--customers 1000000]

Prints a table and writes benchmarks/results/value.json.
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


def case_real(name: str) -> dict:
    import customerlens as cl
    from customerlens.models.value import fit_value

    path = {"cdnow_sample": DATA_DIR / "cdnow" / "CDNOW_sample.txt.gz",
            "online_retail": DATA_DIR / "online_retail" / "online_retail.csv.gz"}[name]
    lines = cl.ingest(path).cleaned.transactions
    t = time.perf_counter()
    result = fit_value(lines)
    seconds = time.perf_counter() - t
    return {"case": name, "customers": len(result.table), "fit_value_seconds": round(seconds, 2),
            "model": result.model_name}


def case_synthetic(n: int) -> dict:
    import numpy as np

    from customerlens.models.value import BetaGeoModel, GammaGammaModel, simulate_bgnbd

    rng = np.random.default_rng(0)
    sim = simulate_bgnbd(n, 0.243, 4.414, 0.793, 2.426, T=np.round(rng.uniform(30, 78, n) * 7) / 7,
                         spend=(6.25, 3.74, 15.44), random_state=1)
    sim["recency"] = np.round(sim["recency"] * 7) / 7  # daily resolution, as real data has
    x, t_x, T, m = (sim[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    t = time.perf_counter()
    bg = BetaGeoModel().fit(x, t_x, T)
    t_bg = time.perf_counter() - t
    t = time.perf_counter()
    gg = GammaGammaModel().fit(x, m)
    t_gg = time.perf_counter() - t
    t = time.perf_counter()
    bg.p_alive(x, t_x, T)
    bg.conditional_expected_purchases(90 / 7, x, t_x, T)
    gg.conditional_expected_value(x, m)
    t_score = time.perf_counter() - t
    return {"case": f"synthetic_{n}", "customers": n, "bgnbd_seconds": round(t_bg, 2),
            "gamma_gamma_seconds": round(t_gg, 2), "fit_seconds": round(t_bg + t_gg, 2),
            "score_seconds": round(t_score, 2),
            "bgnbd": {k: round(v, 4) for k, v in bg.params_.items()},
            "gamma_gamma": {k: round(v, 4) for k, v in gg.params_.items()}}


def _child(args) -> None:
    result = case_synthetic(args.customers) if args.case == "synthetic" else case_real(args.case)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        _child(args)
        return
    rows = []
    for case in ("cdnow_sample", "online_retail", "synthetic"):
        cmd = [sys.executable, __file__, "--case", case, "--customers", str(args.customers)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    import platform

    payload = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "results": rows,
               "target": "BG/NBD + Gamma-Gamma on 1M customers under 10 s on 2 cores"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "value.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
