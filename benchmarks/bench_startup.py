"""Benchmark: how long the command line takes before any work (issue 22: within 0.3 s).

    .venv/bin/python benchmarks/bench_startup.py [--repeat 10]

Runs ``customerlens --help`` and ``customerlens version`` as processes, as a user types them,
``--repeat`` times each; prints the median and the slowest, writes benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = Path(sys.executable).with_name("customerlens")
TARGET_S = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    result = {"cpus": os.cpu_count(), "target_s": TARGET_S, "commands": {}}
    for command in (["--help"], ["version"]):
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([str(CLI), *command], check=True, capture_output=True)
            seconds.append(time.perf_counter() - start)
        name = "customerlens " + " ".join(command)
        result["commands"][name] = {"median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
                                    "met": statistics.median(seconds) <= TARGET_S}
    print(json.dumps(result, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "startup.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
