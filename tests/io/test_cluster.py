"""The Spark engine on a real standalone cluster: a master and a worker on loopback, as a data engineer runs it.

The master and the worker are started with the ``spark-class`` launcher shipped in the pyspark package and
stopped by PID at the end. ``customerlens run`` is the user's command in a subprocess (its own driver JVM),
given the input as a ``file://`` URI to a Hive-partitioned Parquet folder, with the checkpoint folder and
executor settings on the command line. After each run: no ``customerlens-*`` folder in the temp directory
and nothing under ``--out`` written by an executor.

Slow (a minute or two): run alone with ``-m slow``; CI runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from customerlens.pipeline import analyze
from tests.conftest import CLI, DATA_DIR, SHORT_JVM, spark_missing

pytestmark = pytest.mark.slow


#: what customerlens writes itself; an executor writes part-*, _SUCCESS, .crc files or Parquet folders
EXECUTOR_FILES = ("part-", "_SUCCESS", ".crc", ".parquet")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``spark://127.0.0.1:PORT``: a standalone master and one worker (2 cores, 2 GB), stopped by PID after.

    No Spark session in this process: the drivers are the runs' own processes, so this module need not share a
    pytest-xdist worker with the local-mode tests' session (tests/conftest.py schedules it on its own).
    """
    from customerlens.io.spark import standalone_cluster

    spark_missing()
    with standalone_cluster(tmp_path_factory.mktemp("spark-cluster"), java_options=SHORT_JVM) as master:
        yield master


@pytest.fixture(scope="module")
def partitioned_retail(tmp_path_factory) -> Path:
    """Online Retail's first four months (142,083 lines) as a Hive-partitioned Parquet folder
    (``month=2011-01/data_0.parquet``), as a lake holds it. On a small cluster a run's time is mostly Spark
    scheduling its jobs and starting processes: the whole year took 10 s more.
    """
    import duckdb

    source = DATA_DIR / "online_retail" / "online_retail.csv.gz"
    if not source.exists():
        message = f"shared data {source} is missing (set CUSTOMERLENS_DATA)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    folder = tmp_path_factory.mktemp("lake") / "sales"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT *, strftime(InvoiceDate, '%Y-%m') AS month FROM read_csv('{source}', header = true) "
                f"WHERE InvoiceDate < '2011-04-01') TO '{folder}' (FORMAT parquet, PARTITION_BY (month))")
    con.close()
    return folder


class _Run:
    """``customerlens run DATA --engine spark --spark-master MASTER ...`` started in a subprocess (its own driver)
    whose temp dir is ``tmp``; :meth:`result` waits for it.
    """

    def __init__(self, master: str, data: str, out: Path, tmp: Path, *options: str):
        tmp.mkdir(parents=True, exist_ok=True)
        self.out, self.tmp = out, tmp
        env = {**os.environ, "TMPDIR": str(tmp), "COLUMNS": "160", "NO_COLOR": "1", "PYSPARK_PYTHON": sys.executable,
               "SPARK_LOCAL_IP": "127.0.0.1"}
        # one core each: both applications run on the worker at once (standalone gives an app every free core)
        self.process = subprocess.Popen(
            [*CLI, "run", data, "--engine", "spark", "--spark-master", master, "--out", str(out), "--spark-conf",
             "spark.cores.max=1", "--spark-conf", "spark.executor.memory=900m", "--spark-conf",
             "spark.sql.shuffle.partitions=4", "--spark-conf", f"spark.driver.extraJavaOptions={SHORT_JVM}",
             "--spark-conf", f"spark.executor.extraJavaOptions={SHORT_JVM}", *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)

    def result(self) -> subprocess.CompletedProcess:
        stdout, stderr = self.process.communicate(timeout=900)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def runs(cluster, partitioned_retail, tmp_path_factory):
    """The two runs of this module, started together: on a small cluster most of a run is Spark scheduling
    jobs and starting processes, which two drivers do side by side.

    ``lake``: Online Retail's first months as a ``file://`` URI to the partitioned folder, checkpoint folder set, segments only.
    ``mllib``: demo data with MLlib's K-means and ALS forced on (thresholds 0), ALS checkpointing into a folder
    of the user's (a plain path: on the driver's disk).
    """
    from customerlens.io import demo

    lake, mllib = tmp_path_factory.mktemp("lake_run"), tmp_path_factory.mktemp("mllib_run")
    data = mllib / "demo.csv"
    demo.write(demo.generate(120, seed=11), data)
    (mllib / "checkpoints").mkdir()
    started = {
        "lake": _Run(cluster, partitioned_retail.as_uri(), lake / "out", lake / "tmp", "--spark-checkpoint-dir",
                     (lake / "checkpoints").as_uri(), "--no-value", "--top-n", "0", "--no-charts", "--no-report",
                     "--no-insights"),
        "mllib": _Run(cluster, data.as_uri(), mllib / "out", mllib / "tmp", "--spark-checkpoint-dir",
                      str(mllib / "checkpoints"), "--spark-kmeans-above", "0", "--spark-als-above", "0", "--k", "4",
                      "--top-n", "5", "--no-value", "--no-charts", "--no-report", "--no-insights"),
    }
    yield started
    for run in started.values():
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


def _nothing_left(tmp: Path, out: Path) -> None:
    left = sorted(p.name for p in tmp.iterdir() if p.name.startswith("customerlens-"))
    assert left == [], f"left in the temp dir: {left}"
    written = [p.relative_to(out) for p in out.rglob("*")]
    assert not [p for p in written if any(mark in p.name for mark in EXECUTOR_FILES)], written
    assert not (out / "parquet").exists()


def test_partitioned_lake_folder_on_a_standalone_cluster(runs, partitioned_retail):
    """The issue's check: same customers, frequency and monetary to the cent, ARI >= 0.99 against DuckDB."""
    # the DuckDB engine on the same folder (a folder of partitions reads the same on both engines), while the
    # cluster works
    with analyze(partitioned_retail, value=False, report=False, charts=False, top_n=0, insights=False) as duck:
        local = duck.features.sort_values("customer_id").reset_index(drop=True)
        local_segments = duck.segmentation.assigned.sort_values("customer_id")
        assert duck.ingested.loaded.source.files == 4
        assert duck.ingested.loaded.rows == 142_083
        kept = duck.quality.kept_lines
    run = runs["lake"]
    result = run.result()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    _nothing_left(run.tmp, run.out)
    on_cluster = pd.read_csv(run.out / "customer_features.csv").sort_values("customer_id")
    segments = pd.read_csv(run.out / "segments.csv").sort_values("customer_id")
    quality = json.loads((run.out / "quality_report.json").read_text())
    assert quality["quality"]["kept_lines"] == kept
    assert len(local) > 2000
    assert on_cluster["customer_id"].tolist() == local["customer_id"].astype(on_cluster["customer_id"].dtype).tolist()
    assert (on_cluster["frequency"].to_numpy() == local["frequency"].to_numpy()).all()
    assert (np.round(on_cluster["monetary"].to_numpy(), 2) == np.round(local["monetary"].to_numpy(), 2)).all()
    for column in ("recency_days", "tenure_days", "distinct_products", "return_rate", "spend_90d"):
        np.testing.assert_allclose(on_cluster[column].astype(float), local[column].astype(float), rtol=1e-6,
                                   atol=1e-9, err_msg=column)
    assert adjusted_rand_score(local_segments["segment_id"], segments["segment_id"]) >= 0.99


def test_mllib_kmeans_and_als_forced_on_the_cluster(runs):
    """MLlib's K-means and ALS on the cluster (thresholds 0), the ALS checkpoints in a folder of the user's,
    left as it was given (Spark's own folder inside it removed).
    """
    run = runs["mllib"]
    result = run.result()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    _nothing_left(run.tmp, run.out)
    # a plain folder is on the driver's own disk: on a cluster the user is told (here the worker shares it)
    assert "on the driver's own disk" in result.stderr
    assert list((run.out.parent / "checkpoints").iterdir()) == []  # ALS checkpointed there; Spark's folder went
    recs = pd.read_csv(run.out / "recommendations.csv")
    segments = pd.read_csv(run.out / "segments.csv")
    assert set(recs["list"]) == {"top"} and recs.groupby("customer_id")["rank"].max().max() == 5
    assert recs["product_name"].notna().all()
    assert segments["segment_id"].nunique() == 4
    assert set(recs["customer_id"]) <= set(segments["customer_id"])


def test_the_masters_status_page_is_asked_again_while_it_answers_html():
    """A master's status page answers its HTML view for a moment after it starts: not yet up, not a crash."""
    import http.server
    import threading

    from customerlens.io.spark import alive_workers

    answers = [b"<!DOCTYPE html><html><body>Spark Master</body></html>", json.dumps({"aliveworkers": 1}).encode()]

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server name
            body = answers.pop(0) if len(answers) > 1 else answers[0]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/json/"
        try:
            assert alive_workers(url) is None  # HTML: not up yet
            assert alive_workers(url) == 1
        finally:
            server.shutdown()
    assert alive_workers(url) is None  # nothing there any more
