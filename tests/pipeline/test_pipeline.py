import json

import duckdb
import pytest

import customerlens as cl
from customerlens.core.db import fetch_all
from customerlens.errors import CustomerLensError
from customerlens.io import demo
from customerlens.outputs.store import read_run_record, table_names

TABLES = ["customer_features", "excluded_lines", "quality_report", "transactions",
          "segments", "segment_profiles", "segment_elbow", "segment_monthly", "segment_box_stats",
          "top_products", "distinctive_products", "cohort_retention", "action_plan"]


def dump(store, table):
    con = duckdb.connect(str(store), read_only=True)
    try:
        return fetch_all(con, f"SELECT * FROM {table}")
    finally:
        con.close()


def test_run_writes_store_and_files(tiny_csv, tmp_path):
    out = tmp_path / "out"
    result = cl.run(tiny_csv, out, cl.RunConfig.from_options(as_of="2024-02-01"))
    assert (out / "customerlens.duckdb").is_file()
    assert table_names(out / "customerlens.duckdb") == sorted(TABLES + ["run", "recommendations"])
    recs = (out / "recommendations.csv").read_text().splitlines()
    assert recs[0] == "customer_id,list,rank,product_id,product_name,score,reason" and len(recs) > 2
    record = read_run_record(out / "customerlens.duckdb")
    assert record["input"]["sha256"] == result.ingested.loaded.source.sha256
    assert record["parameters"]["as_of_used"] == "2024-02-01T00:00:00"
    assert record["versions"]["duckdb"] == duckdb.__version__
    assert record["quality"]["lines_accounted_for"] is True
    assert record["customers_with_features"] == 2
    assert "too few customers" in record["value"]["skipped"]  # two customers cannot fit the value models
    assert len(dump(out / "customerlens.duckdb", "transactions")) == 4
    excluded = dump(out / "customerlens.duckdb", "excluded_lines")
    assert len(excluded) == 8 and excluded[0] == (4, "return_netted")
    csv = (out / "customer_features.csv").read_text().splitlines()
    assert csv[0].startswith("customer_id,recency_days,frequency,monetary")
    assert len(csv) == 3
    report = json.loads((out / "quality_report.json").read_text())
    assert report["quality"]["kept_lines"] == 4 and report["schema"]["layout"] == "UCI Online Retail"
    assert not list(out.glob(".*.tmp"))  # no temporary files left behind


@pytest.mark.slow  # a whole run or many CLI processes: in make test, not test-fast
def test_rerun_gives_identical_tables_and_files(tmp_path, monkeypatch):
    from customerlens.pipeline.analysis import Analysis

    data = demo.generate(300, seed=7)
    path, _ = demo.write(data, tmp_path / "demo.csv")
    a, b = tmp_path / "a", tmp_path / "b"
    # what does not need the recommendations is written while the worker process still learns (issue 22)
    waited_with = []
    complete = Analysis.complete

    def waiting(self, rasters=None):
        waited_with.extend(p.name for p in tmp_path.rglob("*") if p.is_file() and ".staging" in str(p))
        return complete(self, rasters)

    monkeypatch.setattr(Analysis, "complete", waiting)
    result = cl.run(path, a, workers=2)  # the recommender in a worker process, as on two cores by default
    monkeypatch.undo()
    assert {"segments.csv", "customer_features.csv", "value.csv", "quality_report.json"} <= set(waited_with)
    assert not {"recommendations.csv", "action_plan.csv", "report.html"} & set(waited_with)
    # the run's report takes the charts it drew (their specs, in the worker process): the same page, byte for
    # byte, as the report drawn again from the store alone (`customerlens report`)
    from customerlens.outputs.report import write_report

    rebuilt = write_report(a / "customerlens.duckdb", tmp_path / "rebuilt.html")
    assert (a / "report.html").read_bytes() == rebuilt.read_bytes()
    # the second run without charts and report: they take half its time and hold no table compared here
    # (and they must not change one); and in one process: the first (two cores) fitted its recommender
    # in a worker process, and the lists must be the same to the last digit (issue 22)
    cl.run(path, b, cl.RunConfig.from_options(charts=False, report=False, workers=1))
    # the value tracking chart's table is computed before the run drops the value models' summary
    assert result.value.summary is None and list(a.glob("charts/value_tracking.*"))
    weekly = result.value.weekly_tracking
    assert weekly["actual"].is_monotonic_increasing and weekly["actual"].iloc[-1] > 0 and "bgnbd" in weekly
    for table in TABLES:
        assert dump(a / "customerlens.duckdb", table) == dump(b / "customerlens.duckdb", table), table
    assert (a / "customer_features.csv").read_bytes() == (b / "customer_features.csv").read_bytes()
    assert (a / "quality_report.json").read_bytes() == (b / "quality_report.json").read_bytes()
    for name in ("segments.csv", "segment_profiles.csv", "top_products.csv", "recommendations.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    _check_stage_times(result, a)


def _check_stage_times(result, out) -> None:
    """Each stage's seconds and the peak memory by its end (issue 22): in the run's clock, the run record
    (the stages before the store is written) and the report's "about this run".
    """
    from customerlens.pipeline import STAGES

    stages = result.clock.stages
    names = [s["stage"] for s in stages]
    # every stage once; with a worker process the charts are drawn while the recommender fits (issue 22)
    assert sorted(names, key=STAGES.index) == list(STAGES)
    recommend = stages[names.index("recommend")]
    assert names.index("charts") < names.index("recommend")  # the run asked for a worker process
    # the worker learned the ranker: its own seconds and memory, on the recommend stage
    [task] = recommend["worker"]
    assert task["task"] == "recommender" and task["seconds"] > 0 and task["peak_memory_mb"] > 50
    assert all(s["seconds"] >= 0 for s in stages) and stages[-1]["peak_memory_mb"] > 50
    peaks = [s["peak_memory_mb"] for s in stages]
    assert peaks == sorted(peaks)  # the process's peak so far: it never falls
    record = read_run_record(out / "customerlens.duckdb")
    assert [s["stage"] for s in record["stages"]] == [s["stage"] for s in stages[:-2]]  # up to the store
    about = (out / "report.html").read_text()
    about = about[about.index('<section id="about">'):]
    assert "Seconds and peak memory by stage" in about and "recommender, in the worker process" in about


@pytest.mark.slow  # a whole run or many CLI processes: in make test, not test-fast
def test_memory_limit_is_halved_while_pandas_holds_the_customers(tmp_path, monkeypatch):
    """With --memory-limit DuckDB works at the limit through the features and the value summaries, then at
    half of it while pandas holds the customers, the store included; same results.
    """
    from customerlens.pipeline import ingestion, stages
    from customerlens.pipeline.ingestion import half_memory

    assert half_memory("3GB") == "1500MB" and half_memory("2GiB") == "1074MB"
    path, _ = demo.write(demo.generate(300, seed=7), tmp_path / "demo.csv")
    settings = []
    real = ingestion.run_sql
    seen = []

    def recording(con, sql, *args):
        if sql.startswith("SET memory_limit"):
            settings.append((len(seen), sql.split("=")[1].strip(" '")))
        return real(con, sql, *args)

    monkeypatch.setattr(ingestion, "run_sql", recording)
    monkeypatch.setattr(stages, "run_sql", recording)
    lean = {"report": False, "charts": False, "top_n": 0}  # the memory settings are the subject, not the outputs
    cl.run(path, tmp_path / "a", cl.RunConfig.from_options(memory_limit="1GB", **lean), progress=seen.append)
    at = {stage: i + 1 for i, stage in enumerate(seen)}
    assert settings == [(at["clean"] - 1, "1GB"), (at["segment"], "500MB")], (settings, seen)
    assert seen.index("value") < seen.index("segment") < seen.index("store")
    cl.run(path, tmp_path / "b", cl.RunConfig.from_options(**lean))
    assert dump(tmp_path / "a" / "customerlens.duckdb", "segments") == dump(tmp_path / "b" / "customerlens.duckdb",
                                                                             "segments")


def test_store_keeps_the_input_order_without_sorting(tmp_path, monkeypatch):
    """The cleaning keeps the lines in input order, so the store copies them without a sort (at 100M
    lines the sort needed more memory than the run had); the tables must still be in input order.
    """
    from customerlens.outputs import store

    path, _ = demo.write(demo.generate(400, seed=11), tmp_path / "demo.csv")
    statements = []
    real = store.run

    def recording(con, sql, *args):
        statements.append(sql)
        return real(con, sql, *args)

    monkeypatch.setattr(store, "run", recording)
    cl.run(path, tmp_path / "o", cl.RunConfig.from_options(report=False, charts=False, top_n=0))
    copies = {s.split(".")[1].split()[0].strip('"'): s for s in statements if s.startswith("CREATE TABLE _cl_store.")}
    for name in ("transactions", "excluded_lines", "customer_features"):
        assert "ORDER BY" not in copies[name], copies[name]
    assert "ORDER BY" in copies["quality_report"]  # a pandas table: sorted as before
    con = duckdb.connect(str(tmp_path / "o" / "customerlens.duckdb"), read_only=True)
    try:
        for table in ("transactions", "excluded_lines"):
            rows = [r[0] for r in fetch_all(con, f"SELECT source_row FROM {table}")]
            assert len(rows) > 1000 and rows == sorted(set(rows)), table
        ids = [r[0] for r in fetch_all(con, "SELECT customer_id FROM customer_features")]
    finally:
        con.close()
    assert ids == sorted(ids)
    lines = (tmp_path / "o" / "customer_features.csv").read_text().splitlines()[1:]
    assert [ln.split(",")[0] for ln in lines] == [str(i) for i in ids]


def test_failed_run_closes_its_connection_and_spill_folder(tmp_path, monkeypatch):
    """A run that fails after DuckDB spilled leaves no spill folder behind (at 100M lines it held 30 GB)."""
    import tempfile

    from customerlens.outputs import layout
    from customerlens.pipeline import analysis as pipeline

    path, _ = demo.write(demo.generate(400, seed=12), tmp_path / "demo.csv")
    spill_root = tmp_path / "tmp"
    spill_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_root))
    connections = []
    real_ingest = pipeline.ingest

    def ingest(*args, **kwargs):
        result = real_ingest(*args, **kwargs)
        connections.append(result.con)
        # a table larger than a low limit: DuckDB spills it (and keeps it spilled), then works on
        fetch_all(result.con, "SET memory_limit = '64MB'")
        fetch_all(result.con, "CREATE TEMP TABLE _spill AS SELECT i, 'x' || i AS s FROM range(3000000) r(i) "
                              "ORDER BY hash(i)")
        fetch_all(result.con, "SET memory_limit = '1GB'")
        return result

    def broken_store(*args, **kwargs):
        assert list(spill_root.glob("customerlens-spill-*")), "DuckDB was meant to spill for this test"
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline, "ingest", ingest)
    monkeypatch.setattr(layout, "write_store", broken_store)
    with pytest.raises(RuntimeError, match="disk full"):
        cl.run(path, tmp_path / "o", cl.RunConfig.from_options(report=False, charts=False, top_n=0, value=False))
    assert not list(spill_root.glob("customerlens-spill-*"))
    with pytest.raises(duckdb.ConnectionException):
        fetch_all(connections[-1], "SELECT 1")


def test_failed_run_keeps_the_previous_outputs(tiny_csv, tmp_path):
    out = tmp_path / "out"
    cl.run(tiny_csv, out)
    before = (out / "customerlens.duckdb").read_bytes()
    garbage = tmp_path / "bad.csv"
    garbage.write_text("CustomerID,InvoiceDate,Amount\na,never,1\n")
    with pytest.raises(CustomerLensError):
        cl.run(garbage, out)
    assert (out / "customerlens.duckdb").read_bytes() == before


def test_nothing_left_after_cleaning_is_a_clear_error(tmp_path):
    path = tmp_path / "guests.csv"
    path.write_text("CustomerID,InvoiceDate,Amount\n,2024-01-01,1\n,2024-01-02,2\n")
    with pytest.raises(CustomerLensError, match="no line is left after cleaning"):
        cl.run(path, tmp_path / "out")


def test_bank_data_without_products(tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text(
        "account_id,transaction_date,amount\n"
        "A1,2024-01-01,100.00\nA1,2024-01-15,-30.00\nA2,2024-01-10,50.00\nA1,2024-02-01,20.00\n"
    )
    result = cl.run(path, tmp_path / "out")
    features = result.features.set_index("customer_id")
    assert features.loc["A1", "monetary"] == pytest.approx(90.0)  # refund netted by value
    assert features.loc["A1", "frequency"] == 2
    assert features.loc["A1", "return_rate"] == pytest.approx(30 / 120)
    assert features["distinct_products"].isna().all()
    # product-level outputs are skipped, not faked
    assert not (tmp_path / "out" / "recommendations.csv").exists()
    assert result.recommender is None and result.segmentation.top_products.empty


def test_records_name_the_input_file_not_this_machines_folders(tiny_csv, tmp_path):
    """The run record and quality_report.json keep the file's name; record_paths=True keeps its full path."""
    import json

    out = tmp_path / "out"
    cl.run(tiny_csv, out, as_of="2024-02-01", top_n=0, charts=False, report=False, value=False).close()
    for source in (read_run_record(out / "customerlens.duckdb")["input"],
                   json.loads((out / "quality_report.json").read_text())["schema"]["source"]):
        assert source["name"] == "tiny.csv" and "path" not in source
        assert str(tmp_path) not in json.dumps(source)
    kept = tmp_path / "kept"
    cl.run(tiny_csv, kept, as_of="2024-02-01", top_n=0, charts=False, report=False, value=False,
           record_paths=True).close()
    assert read_run_record(kept / "customerlens.duckdb")["input"]["path"] == str(tiny_csv.resolve())
