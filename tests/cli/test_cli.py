"""End-to-end: the CLI as a user runs it.

Whole runs and the commands' first contact go through a subprocess; the many option and error
cases go through the same entry point in this process (``cli_in_process``: no interpreter start-up).
"""

import json
import re

import pytest
import typer.main

from customerlens.cli import app
from tests.conftest import REPO, cli, cli_in_process


def commands():
    return sorted(typer.main.get_command(app).commands)


def test_commands_have_help_and_appear_in_the_docs():
    docs = (REPO / "docs" / "cli.md").read_text()
    assert set(commands()) >= {"run", "ingest", "features", "demo"}
    for name in commands():  # a real process for `run`, the entry point in this process for the rest
        result = cli(name, "--help") if name == "run" else cli_in_process(name, "--help")
        assert result.returncode == 0, result.stderr
        assert "Usage" in result.stdout and len(result.stdout.splitlines()) > 5
        assert f"customerlens {name}" in docs, f"docs/cli.md does not show `customerlens {name}`"


def test_run_on_a_file(tiny_csv, tmp_path):
    out = tmp_path / "out"
    result = cli("run", tiny_csv, "--out", out, "--as-of", "2024-02-01")
    assert result.returncode == 0, result.stderr
    assert "all lines accounted for" in result.stdout
    assert str(out) in result.stdout
    assert (out / "customer_features.csv").is_file() and (out / "customerlens.duckdb").is_file()


@pytest.mark.slow  # a whole run or many CLI processes: in make test, not test-fast
def test_run_without_a_file_uses_demo_data(tmp_path):
    out = tmp_path / "out"
    result = cli("run", "--out", out, "--demo-customers", "200", "--no-charts")
    assert result.returncode == 0, result.stderr
    assert (out / "demo" / "demo_transactions.csv").is_file()
    assert (out / "demo" / "demo_transactions.types.csv").is_file()
    assert (out / "customer_features.csv").is_file()


def test_ingest_json(tiny_csv):
    result = cli_in_process("ingest", tiny_csv, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"]["layout"] == "UCI Online Retail"
    assert report["quality"]["input_lines"] == 12 and report["quality"]["lines_accounted_for"]


def test_ingest_human_readable_with_map_and_skip(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("who,when,paid\na,2024-01-01,3\nb,2024-01-02,4\n")
    result = cli_in_process("ingest", path, "--map", "customer_id=who", "--map", "order_date=when",
                 "--map", "amount=paid", "--skip-rule", "returns")
    assert result.returncode == 0, result.stderr
    assert "customer_id" in result.stdout and "who" in result.stdout
    assert "No product column" in result.stdout


def test_features_command(tiny_csv, tmp_path):
    target = tmp_path / "f.csv"
    result = cli_in_process("features", tiny_csv, "--out", target, "--as-of", "2024-02-01")
    assert result.returncode == 0, result.stderr
    assert target.read_text().count("\n") == 3


def test_demo_command(tmp_path):
    target = tmp_path / "d.csv.gz"
    result = cli_in_process("demo", "--customers", "100", "--out", target, "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert target.is_file() and (tmp_path / "d.types.csv").is_file()


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    nocust = tmp_path / "nocust.csv"
    nocust.write_text("InvoiceNo,InvoiceDate,Amount\n1,2024-01-01,3\n")
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("CustomerID,InvoiceDate,Amount\na,hello,1\nb,world,2\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("CustomerID,InvoiceDate,Amount,Description\na,2024-01-01,1,caf\xe9\n".encode("latin-1"))
    folder = tmp_path / "folder"
    folder.mkdir(exist_ok=True)
    (folder / "notes.md").write_text("not transactions\n")
    return {
        "empty file": ([empty], "empty"),
        "no customer column": ([nocust], "customer_id"),
        "garbage dates": ([garbage], "not a date"),
        "non-UTF-8": ([latin], "--encoding"),
        "folder of other files": ([folder], "is read as Parquet or CSV files; it also holds .md files"),
        "missing file": ([tmp_path / "nope.csv"], "no such file"),
        "bad --as-of": ([nocust, "--as-of", "yesterday"], "--as-of"),
        "bad --map": ([nocust, "--map", "date"], "--map"),
        "bad --skip-rule": ([nocust, "--skip-rule", "nonsense"], "unknown cleaning rule"),
    }


@pytest.mark.parametrize("command", ["run", "ingest"])
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, command):
    for label, (args, expected) in _bad_inputs(tmp_path).items():
        extra = ["--out", tmp_path / "o"] if command == "run" else []
        result = cli_in_process(command, *args, *extra)
        assert result.returncode == 2, (label, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, label
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, (label, result.stderr)
        assert lines[0].startswith("error:") and expected in lines[0], (label, lines[0])


def test_segment_command(tiny_csv, tmp_path):
    out = tmp_path / "seg"  # the tiny shop has two customers: k is capped at 2
    result = cli("segment", tiny_csv, "--out", out, "--no-charts", "--as-of", "2024-02-01", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "What to do" in result.stdout
    # --verbose: a line as each stage starts, then every stage's seconds (stderr)
    assert "Seconds and peak memory by stage" in result.stderr
    started = [line.split()[-1] for line in result.stderr.splitlines() if re.match(r"\s*\d+\.\ds\s+\w+$", line)]
    assert [stage for stage in started if stage in ("load", "clean", "features", "segment", "store")] == \
        ["load", "clean", "features", "segment", "store"], result.stderr
    assert (out / "segments.csv").is_file() and (out / "top_products.csv").is_file()
    assert not (out / "charts").exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--method", "dbscan"], "--method"),
    (["--k-range", "5"], "--k-range"),
    (["--k-range", "6,2"], "--k-range"),
    (["--k", "0"], "--k must be"),
    (["--features", "recency_days,nope"], "nope"),
    (["--spark-conf", "spark.executor.memory"], "--spark-conf: 'spark.executor.memory' is not KEY=VALUE"),
    (["--spark-kmeans-above", "-1"], "--spark-kmeans-above"),
])
def test_segment_bad_options(tiny_csv, tmp_path, args, expected):
    result = cli_in_process("segment", tiny_csv, "--out", tmp_path / "o", "--no-charts", *args)
    assert result.returncode == 2, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_run_recommendations_can_exclude_what_was_bought(tmp_path):
    import customerlens as cl
    from customerlens.io import demo as demo_mod

    path, _ = demo_mod.write(demo_mod.generate(300, seed=9), tmp_path / "d.csv")
    result = cli_in_process("run", path, "--out", tmp_path / "o", "--no-charts", "--exclude-bought", "--top-n", "5",
                 "--no-value", "--no-report", "--no-insights")
    assert result.returncode == 0, result.stderr
    import pandas as pd

    recs = pd.read_csv(tmp_path / "o" / "recommendations.csv", dtype=str)
    assert len(recs) > 0 and not recs["reason"].str.startswith("bought").any()
    assert recs.groupby(["customer_id", "list"]).size().max() == 5 and set(recs["list"]) == {"top", "discover"}
    lines = cl.ingest(path).cleaned.transactions.df()
    bought = set(zip(lines["customer_id"], lines["product_id"], strict=True))
    assert not any((c, p) in bought for c, p in zip(recs["customer_id"], recs["product_id"], strict=True))


def test_run_discovery_slots(tmp_path):
    import pandas as pd

    import customerlens as cl
    from customerlens.io import demo as demo_mod

    path, _ = demo_mod.write(demo_mod.generate(300, seed=9), tmp_path / "d.csv")
    bad = cli_in_process("run", path, "--out", tmp_path / "x", "--no-charts", "--top-n", "3", "--discovery-slots", "4")
    assert bad.returncode == 2 and "--discovery-slots" in bad.stderr
    result = cli_in_process("run", path, "--out", tmp_path / "o", "--no-charts", "--top-n", "5", "--discovery-slots", "2",
                 "--no-value", "--no-report", "--no-insights")
    assert result.returncode == 0, result.stderr
    recs = pd.read_csv(tmp_path / "o" / "recommendations.csv", dtype=str)
    lines = cl.ingest(path).cleaned.transactions.df()
    bought = set(zip(lines["customer_id"], lines["product_id"], strict=True))
    recs["new"] = [(c, p) not in bought for c, p in zip(recs["customer_id"], recs["product_id"], strict=True)]
    top, discover = recs[recs["list"] == "top"], recs[recs["list"] == "discover"]
    assert top.groupby("customer_id")["new"].sum().min() >= 2  # the places kept in the top list
    assert discover["new"].all() and discover.groupby("customer_id").size().min() == 5


def test_out_of_memory_under_memory_limit_is_one_line(tmp_path):
    """A --memory-limit too small for the data: DuckDB's out-of-memory error, said in one line."""
    from customerlens.io import demo

    path, _ = demo.write(demo.generate(3000, seed=5), tmp_path / "d.csv")
    result = cli("segment", path, "--out", tmp_path / "o", "--no-charts", "--memory-limit", "2MB")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "out of memory" in lines[0] and "--memory-limit" in lines[0], result.stderr
    assert not (tmp_path / "o" / "customerlens.duckdb").exists()


def test_spark_settings_reach_the_run_config():
    from customerlens.cli.data_commands import spark_flags
    from customerlens.cli.options import build_config

    config = build_config(engine="spark", **spark_flags(["spark.executor.memory=8g", "spark.sql.shuffle.partitions = 64"],
                                                        "s3a://lake/tmp/cp", 0, 5))
    engine = config.engine
    assert engine.spark_conf == (("spark.executor.memory", "8g"), ("spark.sql.shuffle.partitions", "64"))
    assert (engine.spark_checkpoint_dir, engine.spark_kmeans_above, engine.spark_als_above) == ("s3a://lake/tmp/cp", 0, 5)
    from customerlens.pipeline import RunConfig

    assert RunConfig.from_options(spark_conf={"spark.executor.cores": 4}).engine.spark_conf == (
        ("spark.executor.cores", "4"),)


def test_help_lists_the_cleaning_rules_the_library_has():
    from customerlens.cleaning import SWITCHES
    from customerlens.cli.options import SWITCHES as LISTED

    assert LISTED == SWITCHES


def test_a_model_that_would_not_fit_is_one_line(tmp_path, monkeypatch):
    """Under a memory cap EASE's product weights do not fit: one line naming them, exit 2, no traceback."""
    from customerlens.io import demo

    path, _ = demo.write(demo.generate(200, seed=5), tmp_path / "d.csv")
    monkeypatch.setenv("CUSTOMERLENS_MEMORY_LIMIT", "1MB")
    result = cli_in_process("backtest", path, "--as-of", "2024-09-01", "--models", "ease", "--discovery-slots", "0")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "EASE's" in lines[0] and "needs about" in lines[0] and "CUSTOMERLENS_MEMORY_LIMIT" in lines[0]


def test_backtest_before_the_data_starts_is_one_line(tmp_path):
    from customerlens.io import demo

    path, _ = demo.write(demo.generate(100, seed=5), tmp_path / "d.csv")
    result = cli_in_process("backtest", path, "--as-of", "1999-01-01")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "no product purchases before --as-of 1999-01-01" in result.stderr.replace("\n", " ")


def test_version_and_help_start_without_the_libraries():
    """`customerlens version` answers before Typer parses anything, `--help` lists every command; neither
    loads pandas, numpy or rich's progress bars (start-up time: benchmarks/bench_startup.py).
    """
    import subprocess
    import sys

    from customerlens._version import __version__

    probe = ("import sys, runpy; sys.argv = ['customerlens', '{arg}']\n"
             "try:\n    runpy.run_module('customerlens.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('pandas', 'numpy', 'rich.progress') if m in sys.modules))")
    for arg, expected in (("version", __version__), ("--help", "backtest")):
        done = subprocess.run([sys.executable, "-c", probe.format(arg=arg)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout
        assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-300:]


def test_after_run_no_connection_is_open_and_the_exit_skips_the_collection(tmp_path):
    """``run`` closes its analysis's connection when it has printed: the exit finds none open and
    freezes without a full collection (0.085 s after an Online Retail run).
    """
    import subprocess
    import sys

    probe = f"""
import atexit, gc, sys
collections = []
def report():
    from customerlens.core.db import open_connections
    print("open", len(open_connections()), "collections", len(collections), flush=True)
atexit.register(report)  # registered first, runs last: after the entry point's handler
from customerlens.cli.entry import main
sys.argv = ["customerlens", "run", "--out", {str(tmp_path / "out")!r}, "--demo-customers", "300",
            "--no-charts", "--no-report", "--top-n", "0", "--no-value"]
try:
    main()
except SystemExit:
    pass
gc.callbacks.append(lambda phase, info: collections.append(info) if phase == "start" and info["generation"] == 2 else None)
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "open 0 collections 0" in done.stdout.splitlines(), done.stdout[-500:]


def test_open_connections_are_those_alive_and_not_closed():
    from customerlens.core.db import connect, open_connections

    kept, closed = connect(), connect()
    closed.close()
    dropped = connect()
    del dropped
    made = open_connections()
    assert any(con is kept for con in made)
    assert not any(con is closed for con in made)
    assert len([con for con in made if con is not kept]) == len(made) - 1
    kept.close()


def test_a_command_ends_with_its_objects_frozen_and_its_connections_closed(tmp_path):
    """At exit the entry point collects once and freezes the rest (the interpreter's own collections
    walked every library object: 0.3-0.4 s a command); a DuckDB connection held only by a reference
    cycle is still closed then, and its spill folder is gone when the process ends.
    """
    import os
    import subprocess
    import sys

    probe = """
import atexit, gc, os, sys
from customerlens.core.db import connect
con = connect()
con.execute("SET memory_limit = '60MB'; SET threads = 1")
con.execute("CREATE TABLE t AS SELECT range AS a, md5(range::VARCHAR) AS b FROM range(1000000)")
con.execute("CREATE TABLE u AS SELECT * FROM t ORDER BY b")  # beyond the limit: spilled
spill = con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0]
assert os.path.isdir(spill), spill
print(spill)
class Holder:
    pass
holder = Holder()
holder.itself, holder.con = holder, con
del con, holder
def frozen():
    print("frozen", gc.get_freeze_count() > 0, flush=True)
atexit.register(frozen)  # registered first, runs last: after the entry point's handler
from customerlens.cli.entry import main
sys.argv = ["customerlens", "--help"]
try:
    main()
except SystemExit:
    pass
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    spill = next(line for line in lines if "customerlens-spill" in line)
    assert spill.startswith(str(tmp_path))
    assert "frozen True" in lines
    assert not list(tmp_path.glob("customerlens-spill-*")), "the spill folder outlived the process"
