"""Benchmark: customerlens, whole, against the usual pandas notebook, on Online Retail.

All run as whole processes under /usr/bin/time (wall time and peak RSS of the
process, imports included), --repeat times each, alternating:

* notebook: benchmarks/peers/notebook_rfm.py (pandas + scikit-learn, k = 1..10
  with n_init=10 and silhouettes, final k = 4, top products per cluster);
* `customerlens segment online_retail.csv.gz --no-charts` (load,
  clean with every rule, 15 features, k search 1..10 with silhouette,
  Calinski-Harabasz and Davies-Bouldin, naming, profiles, top and distinctive
  products, cohorts, migration, the DuckDB store and CSV files);
* `customerlens run online_retail.csv.gz`: every stage (customer value, both
  recommendation lists for every customer, 16 charts as PNG and SVG, the report),
  as users run it (two processes on two cores: the recommender fits in a worker
  process); and `run --workers 1`, everything in one process, for comparison.

    .venv/bin/python benchmarks/bench_peers.py [--repeat 3]

A third process only imports the notebook's libraries (pandas, scikit-learn):
the floor under any tool that uses them. Then the same two jobs warm: one
process each imports everything, runs the job once, and times --repeat more
runs of it (the work without imports or start-up, as in a notebook's second
run or the dashboard's server). Prints Markdown tables and writes
benchmarks/results/peers.json. Targets (issue 22): `run` within 3x the notebook's
wall time (2x the stretch), `segment --no-charts` within 1.0x (0.5x the stretch).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = Path(os.environ.get("CUSTOMERLENS_DATA", REPO.parent / "shared" / "data"))
RESULTS = HERE / "results"


#: a process that only imports what the notebook imports: the floor of any tool built on them
IMPORTS = "imports only (pandas + scikit-learn)"
NOTEBOOK = "notebook (pandas + scikit-learn)"
SEGMENT = "customerlens segment --no-charts"
RUN = "customerlens run (everything)"
RUN_ONE = "customerlens run --workers 1"
NOTEBOOK_IMPORTS = ("import numpy, pandas; from sklearn.cluster import KMeans; "
                    "from sklearn.metrics import silhouette_score; from sklearn.preprocessing import StandardScaler")


def timed(cmd: list[str]) -> dict:
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{done.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", done.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return {"seconds": round(seconds, 2), "peak_mb": round(rss_kb / 1024)}


def warm_child(tool: str, data: Path, repeat: int) -> None:
    """Import everything, run the job once, then print the seconds of ``repeat`` more runs (JSON)."""
    import time

    if tool == "notebook":
        sys.path.insert(0, str(HERE / "peers"))
        from notebook_rfm import notebook

        def job(i: int) -> None:
            notebook(str(data), 4)
    else:
        from customerlens.pipeline import RunConfig, run

        config = RunConfig.from_options(value=False, report=False, top_n=0, charts=False)  # `segment --no-charts`
        tmp = tempfile.mkdtemp()

        def job(i: int) -> None:
            run(data, f"{tmp}/seg{i}", config)
    job(-1)
    seconds = []
    for i in range(repeat):
        start = time.perf_counter()
        job(i)
        seconds.append(round(time.perf_counter() - start, 3))
    print(json.dumps({"seconds": seconds}))


def warm(tool: str, data: Path, repeat: int) -> list[float]:
    done = subprocess.run([sys.executable, __file__, "--warm-child", tool, "--repeat", str(repeat)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"warm {tool} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warm-child", choices=["notebook", "customerlens"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = DATA_DIR / "online_retail" / "online_retail.csv.gz"
    if args.warm_child:
        return warm_child(args.warm_child, data, args.repeat)
    cli = str(Path(sys.executable).with_name("customerlens"))
    # customerlens's modules byte-compiled, as an installed package has them (`make install` does the same):
    # where PYTHONDONTWRITEBYTECODE is set, an edited checkout would otherwise compile them at every start
    import compileall

    compileall.compile_dir(REPO / "src", quiet=1)
    jobs = {
        NOTEBOOK: lambda i: [sys.executable, str(HERE / "peers" / "notebook_rfm.py"), str(data)],
        SEGMENT: lambda i: [cli, "segment", str(data), "--out", f"{tmp}/seg{i}", "--no-charts"],
        RUN: lambda i: [cli, "run", str(data), "--out", f"{tmp}/run{i}"],
        RUN_ONE: lambda i: [cli, "run", str(data), "--out", f"{tmp}/one{i}", "--workers", "1"],
        IMPORTS: lambda i: [sys.executable, "-c", NOTEBOOK_IMPORTS],
    }
    runs = {name: [] for name in jobs}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, command in jobs.items():
                runs[name].append(timed(command(i)))
    rows = []
    for name, values in runs.items():
        rows.append({"approach": name, "seconds_median": statistics.median(v["seconds"] for v in values),
                     "peak_mb_median": statistics.median(v["peak_mb"] for v in values), "runs": values})
    notebook = rows[0]["seconds_median"]
    ratios = {row["approach"]: round(row["seconds_median"] / notebook, 3) for row in rows}
    print("| approach | wall time (s, median) | x notebook | peak memory (MB) |\n| --- | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['approach']} | {row['seconds_median']:.2f} | {ratios[row['approach']]:.2f} "
              f"| {row['peak_mb_median']:.0f} |")
    ratio = ratios[SEGMENT]
    print(f"\nsegment --no-charts / notebook: {ratio:.2f} (target <= 1.0); run / notebook: {ratios[RUN]:.2f} "
          f"(target <= 3, stretch 2); importing the notebook's libraries alone: {ratios[IMPORTS]:.2f}")
    warm_runs = {name: warm(tool, data, args.repeat) for name, tool in
                 ((NOTEBOOK, "notebook"), (SEGMENT, "customerlens"))}
    warm_rows = [{"approach": name, "seconds_median": statistics.median(v), "runs": v} for name, v in warm_runs.items()]
    warm_ratio = warm_rows[1]["seconds_median"] / warm_rows[0]["seconds_median"]
    print("\n| warm (after imports and one run) | seconds (median) |\n| --- | ---: |")
    for row in warm_rows:
        print(f"| {row['approach']} | {row['seconds_median']:.2f} |")
    print(f"\nwarm customerlens / notebook: {warm_ratio:.2f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "peers.json").write_text(json.dumps({"results": rows, "x_notebook": ratios,
                                                    "warm": warm_rows, "warm_ratio": round(warm_ratio, 3),
                                                    "targets": {RUN: "<= 3 (stretch 2)", SEGMENT: "<= 1.0"}},
                                                   indent=2) + "\n")


if __name__ == "__main__":
    main()
