"""Benchmark: the dashboard API under a bounded local load (issue 8 target: cached recommendation
lookups with p99 under 20 ms and over 1,000 requests/s on 2 cores).

The server is ``customerlens serve`` (uvicorn, one worker) in its own process on a free loopback
port; the load comes from a second process: an asyncio client with raw keep-alive HTTP/1.1
connections (``--concurrency`` of them, default 16) that sends ``--requests`` (default 10,000)
``GET /api/customers/{id}/recommendations`` for random stored customers, after 500 warm-up
requests, and stops early after ``--max-seconds``. Every answer must be 200. For comparison it
also sends 2,000 ``GET /api/customers/{id}`` (a DuckDB query per request).

    .venv/bin/python benchmarks/bench_api.py [--store DIR/customerlens.duckdb] [--requests 10000]

Without --store it first builds one from the demo data (4,000 customers, ~30 s, not timed).
Prints a table and writes benchmarks/results/api.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


# -- the load generator (runs in its own process: `bench_api.py --client ...`)
async def _worker(host: str, port: int, paths: list[str], deadline: float, latencies: list[float],
                  errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for path in paths:
            if time.perf_counter() > deadline:
                return
            t = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            if status != b"200":
                errors.append(f"{path}: {status.decode()}")
    finally:
        writer.close()


async def _load(host: str, port: int, paths: list[str], concurrency: int, max_seconds: float) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    shares = [paths[i::concurrency] for i in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, share, start + max_seconds, latencies, errors) for share in shares))
    wall = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 3)

    return {"requests": len(latencies), "errors": len(errors), "first_errors": errors[:3],
            "seconds": round(wall, 3), "requests_per_s": round(len(latencies) / wall, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99), "max_ms": round(latencies[-1] * 1000, 3),
            "concurrency": concurrency, "stopped_early": len(latencies) < len(paths)}


def client_main(args) -> None:
    ids = json.loads(Path(args.ids).read_text())
    rng = random.Random(0)
    out = {}
    warm = [f"/api/customers/{rng.choice(ids)}/recommendations?n=10" for _ in range(500)]
    asyncio.run(_load(args.host, args.port, warm, args.concurrency, args.max_seconds))
    recs = [f"/api/customers/{rng.choice(ids)}/recommendations?n=10" for _ in range(args.requests)]
    out["recommendations"] = asyncio.run(_load(args.host, args.port, recs, args.concurrency, args.max_seconds))
    detail = [f"/api/customers/{rng.choice(ids)}" for _ in range(2000)]
    out["customer_detail"] = asyncio.run(_load(args.host, args.port, detail, args.concurrency, args.max_seconds))
    sys.stdout.write(json.dumps(out) + "\n")


# -- the driver
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build_store(folder: Path) -> Path:
    import customerlens
    from customerlens.io import demo

    path, _ = demo.write(demo.generate(4000, seed=42), folder / "demo.csv")
    customerlens.run(path, folder / "out", customerlens.RunConfig.from_options(charts=False))
    return folder / "out" / "customerlens.duckdb"


def _wait_healthy(port: int, server: subprocess.Popen, seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited: {server.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("the server did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests must be 1..100,000 and --concurrency 1..64")

    import duckdb

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = args.store or _build_store(tmp)
        with duckdb.connect(str(store), read_only=True) as con:
            ids = [r[0] for r in con.execute("SELECT DISTINCT customer_id FROM recommendations").fetchall()]
        if not ids:
            raise SystemExit(f"{store}: no recommendations to look up")
        (tmp / "ids.json").write_text(json.dumps(ids))
        port = _free_port()
        server = subprocess.Popen([sys.executable, "-m", "customerlens.cli", "serve", "--store", str(store),
                                   "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_healthy(port, server)
            client = subprocess.run([sys.executable, __file__, "--client", "--ids", str(tmp / "ids.json"),
                                     "--port", str(port), "--requests", str(args.requests),
                                     "--concurrency", str(args.concurrency), "--max-seconds", str(args.max_seconds)],
                                    capture_output=True, text=True, timeout=4 * args.max_seconds + 60)
            if client.returncode:
                raise SystemExit(f"the load generator failed:\n{client.stderr}")
            loads = json.loads(client.stdout)
        finally:
            server.terminate()
            server.wait(timeout=10)
    result = {"benchmark": "api", "store_customers": len(ids), "server": "customerlens serve (uvicorn, 1 worker, h11)",
              "client": "second process, asyncio raw HTTP/1.1 keep-alive", "cpus": os.cpu_count(),
              "python": platform.python_version(), "machine": platform.machine(), **loads,
              "target": {"p99_ms_below": 20, "requests_per_s_above": 1000}}
    rec = loads["recommendations"]
    result["target_met"] = rec["p99_ms"] < 20 and rec["requests_per_s"] > 1000 and rec["errors"] == 0
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'endpoint':<40} {'requests':>9} {'errors':>7} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} "
          f"{'p99 ms':>8} {'max ms':>8}")
    for name, label in (("recommendations", "GET /api/customers/{id}/recommendations"),
                        ("customer_detail", "GET /api/customers/{id}")):
        r = loads[name]
        print(f"{label:<40} {r['requests']:>9,} {r['errors']:>7} {r['requests_per_s']:>9,.0f} {r['p50_ms']:>8.2f} "
              f"{r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f}")
    print(f"target (recommendations: p99 < 20 ms, > 1,000 req/s): {'met' if result['target_met'] else 'NOT met'}; "
          f"wrote {RESULTS / 'api.json'}")


if __name__ == "__main__":
    main()
