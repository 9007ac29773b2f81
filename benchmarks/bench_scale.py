"""Benchmark: the scale curve, 1M / 10M / 100M lines, customerlens against the pandas notebook.

The data: synthetic Online Retail-shaped Parquet files (benchmarks/gen_large.py,
cached in benchmarks/data/), about ten lines per customer. Each size runs in
fresh processes:

* customerlens, on DuckDB out of core: ingest + clean + features + segmentation
  + value (`run --no-insights --top-n 0 --no-report --no-charts
  --memory-limit 3GB`); stage times from the pipeline's progress callback and
  the process's peak resident memory at the end of each stage;
* the pandas peer: benchmarks/peers/notebook_rfm.py as it is written (read,
  filters, groupby RFM, scaler, K-means k = 1..10 with silhouettes, top
  products), stage by stage.

A watchdog samples each process's resident memory and stops it above
``--memory-cap-gb`` (default 16: what a 16 GB laptop would have), and stops it
after ``--timeout`` seconds; both are recorded as the place the run ended, not
hidden. Peak memory is the most the watchdog or the kernel (ru_maxrss) saw, in
MiB (2**20 bytes; the JSON keys say ``peak_mb``).

    .venv/bin/python benchmarks/bench_scale.py [--sizes 1000000 10000000 100000000]

Prints a Markdown table and writes benchmarks/results/scale.json. Target
(issue 9): 100M lines through customerlens under 8 GB peak on this machine
(6,795 MiB = 7.1 GB measured on 2026-11-29).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
DATA = HERE / "data"


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _mark(stage: str, start: float) -> None:
    print(json.dumps({"stage": stage, "t": round(time.perf_counter() - start, 2),
                      "peak_mb": round(_peak_mb())}), flush=True)


# --------------------------------------------------------------------------- children


def child_customerlens(path: Path, out: Path, memory_limit: str) -> None:
    start = time.perf_counter()
    from customerlens.pipeline import RunConfig, run

    _mark("import", start)
    config = RunConfig.from_options(insights=False, top_n=0, report=False, charts=False, memory_limit=memory_limit)
    last = ["start"]

    def progress(stage: str) -> None:
        _mark(f"end:{last[0]}", start)
        last[0] = stage

    result = run(path, out, config, progress=progress)
    _mark(f"end:{last[0]}", start)
    print(json.dumps({"customers": result.customers, "k": result.segmentation.k,
                      "value_model": (result.value.record.get("model") if result.value is not None else None)}),
          flush=True)


def child_pandas(path: Path) -> None:
    """benchmarks/peers/notebook_rfm.py, stage by stage, on the Parquet file."""
    start = time.perf_counter()
    sys.path.insert(0, str(HERE / "peers"))
    from notebook_rfm import notebook

    _mark("import", start)
    result = notebook(str(path), 4, mark=lambda stage: _mark(stage if stage.startswith("k=") else f"end:{stage}",
                                                             start))
    print(json.dumps({"customers": result["customers"]}), flush=True)


# --------------------------------------------------------------------------- parent


def measure(cmd: list[str], cap_mb: float, timeout: float) -> dict:
    """Run ``cmd``; its stage marks, how it ended and the peak memory seen."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = {"peak_mb": 0.0, "ended": None}

    def watch() -> None:
        while proc.poll() is None:
            rss = _rss_mb(proc.pid)
            state["peak_mb"] = max(state["peak_mb"], rss)
            if rss > cap_mb:
                state["ended"] = f"stopped: over the {cap_mb / 1024:.0f} GB memory cap"
                proc.kill()
            elif time.perf_counter() - start > timeout:
                state["ended"] = f"stopped: over the {timeout:.0f} s time limit"
                proc.kill()
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    watcher.join()
    marks, info = [], {}
    for line in out.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if "stage" in item:
            marks.append(item)
        else:
            info.update(item)
    if state["ended"] is None:
        state["ended"] = "finished" if proc.returncode == 0 else f"failed: {err.strip().splitlines()[-1:]}"
    peak = max([state["peak_mb"], *[m["peak_mb"] for m in marks]] or [0])
    return {"ended": state["ended"], "seconds": round(time.perf_counter() - start, 1), "peak_mb": round(peak),
            "stages": marks, "last_stage": marks[-1]["stage"] if marks else None, **info}


def stage_table(marks: list[dict]) -> dict:
    """Seconds spent in each stage (from the cumulative marks) and the peak memory at its end."""
    out, previous = {}, 0.0
    for mark in marks:
        name = mark["stage"].removeprefix("end:")
        out[name] = {"seconds": round(mark["t"] - previous, 2), "peak_mb": mark["peak_mb"]}
        previous = mark["t"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    parser.add_argument("--memory-cap-gb", type=float, default=16)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per customerlens run")
    parser.add_argument("--peer-timeout", type=float, default=900, help="seconds per pandas notebook run")
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB's memory limit for customerlens")
    parser.add_argument("--skip-peer", action="store_true", help="customerlens only (same as --tools customerlens)")
    parser.add_argument("--tools", nargs="+", choices=["customerlens", "pandas"], default=["customerlens", "pandas"],
                        help="which of the two to run")
    parser.add_argument("--json", default="scale.json", help="results file name in benchmarks/results/")
    parser.add_argument("--child", choices=["customerlens", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "customerlens":
        return child_customerlens(args.data, args.out, args.memory_limit)
    if args.child == "pandas":
        return child_pandas(args.data)

    sys.path.insert(0, str(HERE))
    from gen_large import generate

    RESULTS.mkdir(exist_ok=True)
    cap = args.memory_cap_gb * 1024
    rows = []
    import tempfile

    for size in args.sizes:
        path = DATA / f"lines_{size}.parquet"
        if not path.exists():
            print(f"generating {path} ...", flush=True)
            generate(size, path)
        row = {"lines": size, "file_mb": round(path.stat().st_size / 1e6)}
        if "customerlens" in args.tools:
            with tempfile.TemporaryDirectory(dir=DATA) as tmp:
                ours = measure([sys.executable, __file__, "--child", "customerlens", "--data", str(path),
                                "--out", str(Path(tmp) / "out"), "--memory-limit", args.memory_limit], cap,
                               args.timeout)
            ours["stage_seconds"] = stage_table(ours.pop("stages"))
            row["customerlens"] = ours
            print(f"{size:,} lines, customerlens: {ours['ended']}, {ours['seconds']} s, {ours['peak_mb']:,} MiB",
                  flush=True)
        if "pandas" in args.tools and not args.skip_peer:
            peer = measure([sys.executable, __file__, "--child", "pandas", "--data", str(path)], cap,
                           args.peer_timeout)
            peer["stage_seconds"] = stage_table(peer.pop("stages"))
            row["pandas"] = peer
            print(f"{size:,} lines, pandas notebook: {peer['ended']} (last stage {peer['last_stage']}), "
                  f"{peer['seconds']} s, {peer['peak_mb']:,} MiB", flush=True)
        rows.append(row)
        (RESULTS / args.json).write_text(json.dumps({"memory_cap_gb": args.memory_cap_gb,
                                                        "timeout_s": args.timeout, "peer_timeout_s": args.peer_timeout,
                                                        "duckdb_memory_limit": args.memory_limit, "runs": rows},
                                                       indent=2) + "\n")

    print("\n| lines | tool | ended | wall s | peak MiB | stages (s / peak MiB at the end) |")
    print("|---:|---|---|---:|---:|---|")
    for row in rows:
        for tool in ("customerlens", "pandas"):
            if tool not in row:
                continue
            r = row[tool]
            stages = ", ".join(f"{k} {v['seconds']:g} / {v['peak_mb']:,}" for k, v in r["stage_seconds"].items())
            print(f"| {row['lines']:,} | {tool} | {r['ended']} | {r['seconds']} | {r['peak_mb']:,} | {stages} |")


if __name__ == "__main__":
    main()
