"""Benchmark: BG/NBD fit time of customerlens against lifetimes 0.11.3 on the same summaries.

Datasets (x, t_x, T in weeks, written once to a temporary CSV that both sides read):

* the CDNOW sample (2,357 customers), calibration to 1997-09-30, the classic
  setup of Fader, Hardie & Lee (2005); the summary is computed by customerlens
  (``rfm_summary`` on the cleaned lines);
* simulated customers (``simulate_bgnbd`` with the CDNOW parameters, ages
  uniform over 30-78 weeks, recency at daily resolution, as in bench_value.py),
  100k and 1M by default.

Each side runs in its own process, one per dataset, which reads the CSV and then
fits --repeat times; only the fit call is timed (imports and reading are not):

* customerlens in this project's virtualenv: ``BetaGeoModel().fit(x, t_x, T)``;
* lifetimes in a separate virtualenv, benchmarks/.venv-lifetimes, built by this
  script on first use (lifetimes is not a dependency of customerlens):
  ``BetaGeoFitter(penalizer_coef=0.0).fit(frequency, recency, T)``.

Both fits include what each library computes for standard errors (a Hessian).
Log-likelihoods are full ones on the unscaled data in weeks: customerlens's
``log_likelihood_``, and lifetimes's own likelihood function evaluated at its
parameters on the unscaled data (its reported ``_negative_log_likelihood_`` is
a mean on internally rescaled times, not comparable). A lifetimes fit that fails
or runs past --timeout seconds is recorded as such.

    .venv/bin/python benchmarks/bench_lifetimes.py [--repeat 3] [--timeout 600] [--customers 100000 1000000]

Prints Markdown tables and writes benchmarks/results/lifetimes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_DIR = Path(os.environ.get("CUSTOMERLENS_DATA", REPO.parent / "shared" / "data"))
RESULTS = HERE / "results"
LT_VENV = HERE / ".venv-lifetimes"
LT_PYTHON = LT_VENV / "bin" / "python"
LT_STAMP = LT_VENV / "benchmark-requirements.txt"

# lifetimes 0.11.3 (2020) declares only lower bounds (numpy>=1.10, scipy>=1.0,
# pandas>=0.24, autograd>=1.2, dill>=0.2.6). Tried on Python 3.11: the current
# releases below import and fit (CDNOW, 100k and 1M customers) unchanged, so no
# old numpy/pandas/scipy/autograd is needed. They are pinned to that tried set
# so that the figures are reproducible and a future release cannot break the
# environment silently; pandas in particular must stay < 4, since
# lifetimes/utils.py sets ``pd.options.mode.chained_assignment`` on import, an
# option pandas 3 deprecates (Pandas4Warning) and pandas 4 removes.
LT_REQUIREMENTS = (
    "lifetimes==0.11.3",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "pandas==3.1.1",  # < 4: see above
    "autograd==1.9.1",  # lifetimes's gradients and Hessian
    "dill==0.4.1",
)

CALIBRATION_END = "1997-09-30"
CDNOW_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARAMS = ("r", "alpha", "a", "b")
AGREE_RTOL = 1e-3  # parameters "agree" when every relative difference is below this


# -- child processes: read the summary, fit --repeat times, one JSON line per event ----------------

def _emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def _child(impl: str, data: str, repeat: int) -> None:
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(data)
    x, t_x, T = (frame[c].to_numpy() for c in ("frequency", "recency", "T"))
    if impl == "customerlens":
        from customerlens.models.value import BetaGeoModel

        def fit():
            return BetaGeoModel().fit(x, t_x, T)

        def facts(model) -> dict:
            return {"params": model.params_, "log_likelihood": model.log_likelihood_,
                    "converged": model.optimizer_["converged"]}
        packages = ("customerlens", "numpy", "scipy", "pandas")
    else:
        from lifetimes import BetaGeoFitter

        def fit():
            return BetaGeoFitter(penalizer_coef=0.0).fit(x, t_x, T)

        def facts(model) -> dict:
            params = {k: float(model.params_[k]) for k in PARAMS}
            w = np.ones(len(x))
            nll = BetaGeoFitter._negative_log_likelihood(np.log([params[k] for k in PARAMS]), x.astype(int),
                                                         t_x, T, w, 0.0)
            return {"params": params, "log_likelihood": -float(nll) * len(x), "converged": True}
        packages = ("lifetimes", "numpy", "scipy", "pandas", "autograd")
    from importlib.metadata import version

    _emit({"ready": True, "versions": {p: version(p) for p in packages}})
    model = None
    for _ in range(repeat):
        try:
            t = time.perf_counter()
            model = fit()
            seconds = time.perf_counter() - t
        except Exception as exc:  # recorded, not raised: a failed fit is a result
            _emit({"error": f"{type(exc).__name__}: {str(exc).strip()[:500]}"})
            return
        _emit({"seconds": seconds})
    _emit(facts(model))


# -- the parent: environments, data, timing ------------------------------------------------------

def lifetimes_env() -> str | None:
    """Build benchmarks/.venv-lifetimes when missing or stale; None when ready, else what went wrong."""
    wanted = "\n".join(LT_REQUIREMENTS) + "\n"
    if LT_PYTHON.exists() and LT_STAMP.exists() and LT_STAMP.read_text() == wanted:
        return None
    print(f"building {LT_VENV.relative_to(REPO)} ({' '.join(LT_REQUIREMENTS)})", file=sys.stderr, flush=True)
    steps = [[sys.executable, "-m", "venv", str(LT_VENV)],
             [str(LT_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *LT_REQUIREMENTS]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            return f"`{' '.join(cmd[:4])} ...` failed: {(done.stderr or done.stdout).strip()[-1500:]}"
    LT_STAMP.write_text(wanted)
    return None


def cdnow_summary():
    import customerlens as cl
    from customerlens.models.value import rfm_summary

    lines = cl.ingest(DATA_DIR / "cdnow" / "CDNOW_sample.txt.gz").cleaned.transactions
    return rfm_summary(lines, CALIBRATION_END)[["frequency", "recency", "T"]]


def simulated_summary(n: int):
    import numpy as np

    from customerlens.models.value import simulate_bgnbd

    rng = np.random.default_rng(0)
    p = CDNOW_PUBLISHED
    sim = simulate_bgnbd(n, p["r"], p["alpha"], p["a"], p["b"], T=np.round(rng.uniform(30, 78, n) * 7) / 7,
                         random_state=1)
    sim["recency"] = np.round(sim["recency"] * 7) / 7  # daily resolution, as real data has
    return sim[["frequency", "recency", "T"]]


def run_child(python: str, impl: str, data: Path, repeat: int, timeout: float) -> dict:
    """Run one side on one dataset; --timeout seconds for loading and for each fit."""
    cmd = [python, str(Path(__file__).resolve()), "--child", impl, "--data", str(data), "--repeat", str(repeat)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    err: list[str] = []

    def pump(stream, sink):
        for line in stream:
            sink(line)
        if stream is proc.stdout:
            lines.put(None)

    threading.Thread(target=pump, args=(proc.stdout, lines.put), daemon=True).start()
    threading.Thread(target=pump, args=(proc.stderr, err.append), daemon=True).start()
    out: dict = {"runs_seconds": []}
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            proc.kill()
            proc.wait()
            stage = "loading" if "versions" not in out else f"fit {len(out['runs_seconds']) + 1}"
            out["error"] = f"timeout: no result within {timeout:g} s ({stage}); process killed"
            break
        if line is None:
            proc.wait()
            if "params" not in out and "error" not in out:
                out["error"] = f"exit status {proc.returncode}: {''.join(err).strip()[-1500:]}"
            break
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # lifetimes prints the optimiser's result before a ConvergenceError
        if not isinstance(event, dict):
            continue
        if "seconds" in event:
            out["runs_seconds"].append(round(event["seconds"], 4))
        elif "ready" in event:
            out["versions"] = event["versions"]
        else:
            out.update(event)
    if out["runs_seconds"]:
        out["seconds_median"] = round(statistics.median(out["runs_seconds"]), 4)
    return out


def compare(name: str, frame, tmp: Path, args, lt_error: str | None) -> dict:
    from customerlens.models.value import BetaGeoModel

    path = tmp / f"{name}.csv"
    frame.to_csv(path, index=False, float_format="%.17g")  # round-trips exactly: both sides fit the same numbers
    row: dict = {"dataset": name, "customers": len(frame), "repeat": args.repeat}
    row["customerlens"] = run_child(sys.executable, "customerlens", path, args.repeat, args.timeout)
    if lt_error:
        row["lifetimes"] = {"runs_seconds": [], "error": f"environment: {lt_error}"}
    else:
        row["lifetimes"] = run_child(str(LT_PYTHON), "lifetimes", path, args.repeat, args.timeout)
    cl, lt = row["customerlens"], row["lifetimes"]
    if "params" in lt:
        # lifetimes's optimum under customerlens's likelihood: checks that the two formulas agree
        x, t_x, T = (frame[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
        lt["log_likelihood_customerlens_formula"] = float(
            BetaGeoModel.log_likelihood_each([lt["params"][k] for k in PARAMS], x, t_x, T).sum())
    if "params" in cl and "params" in lt:
        rel = {k: abs(cl["params"][k] - lt["params"][k]) / abs(lt["params"][k]) for k in PARAMS}
        row["param_rel_diff"] = {k: float(f"{v:.3g}") for k, v in rel.items()}
        row["max_param_rel_diff"] = float(f"{max(rel.values()):.3g}")
        row["params_agree"] = bool(max(rel.values()) < AGREE_RTOL)
        row["log_likelihood_diff"] = round(cl["log_likelihood"] - lt["log_likelihood"], 4) + 0.0
    if "seconds_median" in cl and "seconds_median" in lt:
        row["speedup"] = round(lt["seconds_median"] / cl["seconds_median"], 2)
    for side in (cl, lt):
        if "params" in side:
            side["params"] = {k: round(side["params"][k], 6) for k in PARAMS}
            side["log_likelihood"] = round(side["log_likelihood"], 4)
    if "log_likelihood_customerlens_formula" in lt:
        lt["log_likelihood_customerlens_formula"] = round(lt["log_likelihood_customerlens_formula"], 4)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def _fmt_time(side: dict) -> str:
    if "error" in side:
        done = f" after {len(side['runs_seconds'])} fit(s)" if side["runs_seconds"] else ""
        return f"failed{done}: {side['error'].splitlines()[0][:80]}"
    return f"{side['seconds_median']:.3f}"


def _fmt_params(side: dict) -> str:
    if "params" not in side:
        return "-"
    return ", ".join(f"{side['params'][k]:.4f}" for k in PARAMS)


def print_tables(rows: list[dict], repeat: int) -> None:
    print(f"| dataset | customers | customerlens fit (s, median of {repeat}) | lifetimes fit (s, median of {repeat}) "
          "| lifetimes / customerlens |\n| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        speed = f"{row['speedup']:.1f}x" if "speedup" in row else "-"
        print(f"| {row['dataset']} | {row['customers']:,} | {_fmt_time(row['customerlens'])} "
              f"| {_fmt_time(row['lifetimes'])} | {speed} |")
    print("\n| dataset | customerlens r, alpha, a, b | lifetimes r, alpha, a, b | max rel. diff | agree "
          "| log-lik. customerlens | log-lik. lifetimes |\n| --- | --- | --- | ---: | --- | ---: | ---: |")
    for row in rows:
        cl, lt = row["customerlens"], row["lifetimes"]
        diff = f"{row['max_param_rel_diff']:.2e}" if "max_param_rel_diff" in row else "-"
        agree = ("yes" if row["params_agree"] else "no") if "params_agree" in row else "-"
        ll = [f"{s['log_likelihood']:.3f}" if "log_likelihood" in s else "-" for s in (cl, lt)]
        print(f"| {row['dataset']} | {_fmt_params(cl)} | {_fmt_params(lt)} | {diff} | {agree} | {ll[0]} | {ll[1]} |")
    print(f"\nCDNOW published (Fader, Hardie & Lee 2005): {', '.join(str(CDNOW_PUBLISHED[k]) for k in PARAMS)}; "
          f"agree = every relative parameter difference below {AGREE_RTOL:g}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fits per side and dataset (median reported)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per fit (and for loading)")
    parser.add_argument("--customers", type=int, nargs="*", default=[100_000, 1_000_000],
                        help="sizes of the simulated datasets")
    parser.add_argument("--child", choices=("customerlens", "lifetimes"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.data, args.repeat)
        return
    lt_error = lifetimes_env()
    if lt_error:
        print(f"lifetimes environment unavailable: {lt_error}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(compare("cdnow_sample", cdnow_summary(), Path(tmp), args, lt_error))
        for n in args.customers:
            rows.append(compare(f"synthetic_{n}", simulated_summary(n), Path(tmp), args, lt_error))
    print_tables(rows, args.repeat)
    payload = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               "lifetimes_env": {"path": str(LT_VENV.relative_to(REPO)), "requirements": list(LT_REQUIREMENTS),
                                 "error": lt_error},
               "calibration_end": CALIBRATION_END, "time_unit": "weeks", "repeat": args.repeat,
               "timeout_s": args.timeout, "agree_rtol": AGREE_RTOL, "results": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lifetimes.json").write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
