"""Shared fixtures: the real data sets, tiny hand-made files, and one engine fixture.

Real data is read from ``$CUSTOMERLENS_DATA`` (default ``../shared/data`` beside
the repository). Missing data skips a test on a developer's machine and fails
it in CI (``CI`` set), where the data is always there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("CUSTOMERLENS_DATA", REPO.parent / "shared" / "data"))


#: the CLI as a user runs it, in a subprocess
CLI = [sys.executable, "-m", "customerlens.cli"]


def cli(*args, cwd=None):
    """Run ``customerlens ARGS`` in a subprocess (wide, uncoloured output)."""
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def cli_in_process(*args):
    """``customerlens ARGS`` through the same entry point, in this process (no interpreter start-up).

    For the many quick error cases: the exit code and the one-line message come from
    ``customerlens.cli.main`` exactly as in a subprocess.
    """
    import contextlib
    import io
    import signal
    import warnings

    from customerlens.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    handler, show = signal.getsignal(signal.SIGTERM), warnings.showwarning
    code = 0
    old_argv = sys.argv
    sys.argv = ["customerlens", *map(str, args)]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
        signal.signal(signal.SIGTERM, handler)
        warnings.showwarning = show
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


def shared_data(relative: str) -> Path:
    """Path of a shared data file; skip (or fail in CI) when it is missing."""
    path = DATA_DIR / relative
    if not path.exists():
        message = f"shared data {path} is missing (set CUSTOMERLENS_DATA)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def online_retail() -> Path:
    return shared_data("online_retail/online_retail.csv.gz")


@pytest.fixture(scope="session")
def cdnow_sample() -> Path:
    return shared_data("cdnow/CDNOW_sample.txt.gz")


@pytest.fixture(scope="session")
def cdnow_master() -> Path:
    return shared_data("cdnow/CDNOW_master.txt.gz")


# A tiny shop, small enough to compute every feature by hand (see test_features).
TINY_CSV = """\
InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
1001,10001,APPLE MUG,2,2024-01-01 10:00:00,5.00,1.0,UK
1001,10002,BLUE BAG,1,2024-01-01 10:00:00,10.00,1.0,UK
1002,10001,APPLE MUG,4,2024-01-11 09:30:00,5.00,1.0,UK
C1003,10001,APPLE MUG,-1,2024-01-12 12:00:00,5.00,1.0,UK
1004,10003,CANDLE,10,2024-01-05 08:00:00,1.50,2.0,France
1004,POST,POSTAGE,1,2024-01-05 08:00:00,18.00,2.0,France
1005,10003,CANDLE,3,2024-01-20 08:00:00,1.50,,UK
1006,10002,BLUE BAG,1,2024-01-25 16:00:00,10.00,3.0,UK
1006,10002,BLUE BAG,1,2024-01-25 16:00:00,10.00,3.0,UK
C1007,10002,BLUE BAG,-1,2024-01-26 16:00:00,10.00,3.0,UK
C1008,10004,DOORMAT,-2,2024-01-27 10:00:00,7.00,3.0,UK
1009,10005,EGG CUP,0,2024-01-28 10:00:00,1.00,3.0,UK
"""


@pytest.fixture
def tiny_csv(tmp_path) -> Path:
    path = tmp_path / "tiny.csv"
    path.write_text(TINY_CSV)
    return path


def to_engine(frame: pd.DataFrame, engine: str, con: duckdb.DuckDBPyConnection | None = None):
    """The same data as a pandas, Polars or DuckDB frame (narwhals' constructor idea)."""
    if engine == "pandas":
        return frame
    if engine == "polars":
        return pl.from_pandas(frame)
    if engine == "duckdb":
        con = con or duckdb.connect()
        return con.from_arrow(pl.from_pandas(frame).to_arrow())
    raise ValueError(engine)


@pytest.fixture(params=["duckdb", "pandas", "polars"])
def engine(request) -> str:
    return request.param


def to_pandas(native) -> pd.DataFrame:
    """Any engine's result as pandas, sorted by its first column."""
    import narwhals as nw

    frame = nw.from_native(native)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    out = frame.to_pandas()
    return out.sort_values(out.columns[0]).reset_index(drop=True)


@pytest.fixture(scope="session")
def hillstrom() -> Path:
    return shared_data("hillstrom/hillstrom.csv.gz")


def spark_missing() -> None:
    """Fail (in CI) or skip (elsewhere) the test when PySpark or Java is missing."""
    problem = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        problem = "PySpark is not installed (pip install -e '.[dev]')"
    if problem is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        problem = "no Java (make java installs OpenJDK 17)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture(scope="module")
def spark():
    """A local Spark session (``local[2]``); fails in CI, skips elsewhere, when PySpark or Java is missing."""
    spark_missing()
    from customerlens.io.spark import session

    return session("local[2]", config={"spark.driver.extraJavaOptions": SHORT_JVM})


#: JVM options for the tests' short Spark runs on a busy 2-core machine: the quick JIT only and one GC thread (a
#: third less CPU for the same run: 103 against 149 CPU-seconds on Online Retail on the cluster, measured; the
#: JVM's compiler threads otherwise compete with the test suite's other worker)
SHORT_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


#: the longest modules start first, so that with ``-n 2 --dist loadscope`` none is left running alone at the end
LONGEST_FIRST = ("test_cluster", "spark", "test_output_folder", "test_pipeline", "test_api", "test_recommend_retail",
                 "test_cli", "test_recommend", "test_report", "test_features", "test_analysis", "test_campaigns",
                 "test_segment", "test_value", "test_clean", "test_demo", "test_decisions")


def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadscope``, every Spark module in one scope: one worker, one JVM warmed up once.

    A module is still one scope otherwise (its module fixtures are computed once).
    """
    if config.getoption("dist", None) != "loadscope":
        return None
    # pytest-xdist >= 3.7 hands out the scopes with the most tests first, not in collection order,
    # which put the longest module (the cluster run, 2 tests) last: 85 s with one worker idle
    config.option.loadscopereorder = False
    from xdist.scheduler import LoadScopeScheduling

    class SparkTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "spark" if "spark" in Path(module).name else super()._split_scope(nodeid)

    return SparkTogether(config, log)


def pytest_collection_modifyitems(config, items):
    """Order the test modules longest first (see :data:`LONGEST_FIRST`), the rest as collected."""

    def rank(item) -> int:
        name = getattr(getattr(item, "module", None), "__name__", "")
        return next((i for i, part in enumerate(LONGEST_FIRST) if part in name), len(LONGEST_FIRST))

    items.sort(key=rank)
