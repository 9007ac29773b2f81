"""The output folder as a whole: wholly old or wholly new after a kill at any moment, one run at a time."""

from __future__ import annotations

import html
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from customerlens.core.text import slug
from customerlens.io import demo
from customerlens.outputs import folder
from tests.conftest import CLI


def test_a_failed_block_leaves_the_old_folder_and_no_staging(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "segments.csv").write_text("old\n")
    with pytest.raises(RuntimeError), folder.folder_lock(out), folder.staged_folder(out) as staging:
        (staging / "segments.csv").write_text("new\n")
        raise RuntimeError("disk full")
    assert (out / "segments.csv").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder, no lock


def test_the_new_folder_replaces_run_files_and_keeps_the_users(tmp_path):
    out = tmp_path / "out"
    (out / "targets").mkdir(parents=True)
    (out / "targets" / "champions.csv").write_text("stale\n")
    (out / "notes.txt").write_text("mine\n")
    with folder.folder_lock(out), folder.staged_folder(out) as staging:
        (staging / "targets").mkdir()
        (staging / "targets" / "at-risk.csv").write_text("new\n")
    assert sorted(p.name for p in (out / "targets").iterdir()) == ["at-risk.csv"]
    assert (out / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_live_lock_is_refused_and_a_dead_one_taken_over(tmp_path):
    out = tmp_path / "out"
    live = subprocess.Popen(["sleep", "30"])
    try:
        folder.lock_path(out).write_text(f'{{"pid": {live.pid}}}')
        with pytest.raises(folder.FolderBusyError, match=f"process {live.pid}"), folder.folder_lock(out):
            pass
    finally:
        live.kill()
        live.wait()
    # the holder is gone: its lock, its staging folder and its store's first tables are cleaned up, the run goes on
    folder.staging_path(out, live.pid).mkdir(parents=True)
    (folder.staging_path(out, live.pid) / "half.csv").write_text("x")
    folder.early_store_path(out, live.pid).mkdir()
    (folder.early_store_path(out, live.pid) / "store.duckdb.wal").write_text("x")
    with folder.folder_lock(out):
        assert not folder.staging_path(out, live.pid).exists()
        assert not folder.early_store_path(out, live.pid).exists()
    assert not folder.lock_path(out).exists()


def test_a_swap_killed_between_two_renames_is_repaired(tmp_path):
    """Where renameat2 is missing the swap is two renames; a kill between them leaves the old folder aside."""
    out = tmp_path / "out"
    dead = subprocess.Popen(["true"])
    dead.wait()
    aside = tmp_path / f".out.previous-{dead.pid}"
    aside.mkdir()
    (aside / "segments.csv").write_text("old\n")
    with folder.folder_lock(out):
        assert (out / "segments.csv").read_text() == "old\n" and not aside.exists()


def _store_tables(path: Path) -> dict[str, tuple]:
    """Each table of a store but the run record: its rows and a hash of them all."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {name: con.execute(f'SELECT count(*), sum(hash(t)) FROM "{name}" t').fetchone()
                for name in sorted(names) if name != "run"}
    finally:
        con.close()


def test_the_store_written_early_is_the_store_written_at_the_end(tmp_path, monkeypatch):
    """A small run writes its store's first tables beside the insights: the same store, nothing left beside it."""
    import customerlens as cl
    from customerlens.outputs import store
    from customerlens.pipeline import analysis

    data, _ = demo.write(demo.generate(300, seed=5), tmp_path / "d.csv")
    started = []
    real = store.EarlyStore.__init__
    monkeypatch.setattr(store.EarlyStore, "__init__", lambda self, *a, **k: (started.append(1), real(self, *a, **k))[1])
    options = {"charts": False, "report": False, "top_n": 2}
    cl.run(data, tmp_path / "early", **options)
    assert started == [1]
    monkeypatch.setattr(analysis, "EARLY_STORE_LINES", 0)  # every line over it: written at the end, in turn
    cl.run(data, tmp_path / "late", **options)
    assert started == [1]
    early, late = (_store_tables(tmp_path / name / "customerlens.duckdb") for name in ("early", "late"))
    assert early == late and {"transactions", "excluded_lines", "customer_features", "segments"} <= set(early)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "d.types.csv", "early", "late"]


@pytest.mark.parametrize("where", ["insights", "save", "after the store"])
def test_a_run_that_fails_after_its_early_store_leaves_nothing_beside_the_folder(tmp_path, monkeypatch, where):
    import customerlens as cl
    from customerlens.insights.segmentation import Segmentation
    from customerlens.outputs import layout

    data, _ = demo.write(demo.generate(200, seed=6), tmp_path / "d.csv")

    def fail(*args, **kwargs):
        raise RuntimeError("no room")

    # while the first tables are written (the insights), before the store is completed, after it
    owner, name = {"insights": (Segmentation, "add_insights"), "save": (layout, "_previous_tables"),
                   "after the store": (layout, "write_segmentation")}[where]
    monkeypatch.setattr(owner, name, fail)
    with pytest.raises(RuntimeError, match="no room"):
        cl.run(data, tmp_path / "out", charts=False, report=False, top_n=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "d.types.csv"]  # no store, staging or lock


@pytest.mark.parametrize("failing", [None, "recommendations.csv", "the store"])
def test_the_lists_file_written_beside_the_store(tmp_path, monkeypatch, failing):
    """``recommendations.csv`` is written in a thread while the store's last tables are: the same bytes as
    written after them (above LISTS_BESIDE_ROWS), its failure the run's, and a failed store waits for it.
    """
    import threading

    import customerlens as cl
    from customerlens.outputs import layout

    data, _ = demo.write(demo.generate(200, seed=7), tmp_path / "d.csv")
    options = {"charts": False, "report": False, "top_n": 3}
    threads = []
    real_csv, real_store = layout.write_csv_atomic, layout.write_store

    def csv(frame, target, *args, **kwargs):
        if Path(target).name == "recommendations.csv":
            threads.append(threading.current_thread().name)
            if failing == "recommendations.csv":
                raise OSError("no room for the lists")
        return real_csv(frame, target, *args, **kwargs)

    def store(*args, **kwargs):
        if failing == "the store":
            raise RuntimeError("no room for the store")
        return real_store(*args, **kwargs)

    monkeypatch.setattr(layout, "write_csv_atomic", csv)
    monkeypatch.setattr(layout, "write_store", store)
    if failing is not None:
        with pytest.raises((OSError, RuntimeError), match="no room"):
            cl.run(data, tmp_path / "out", **options)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "d.types.csv"]  # no staging, no lock
        assert not [t for t in threading.enumerate() if t.name.startswith("customerlens-files")]
        return
    cl.run(data, tmp_path / "beside", **options)
    monkeypatch.setattr(layout, "LISTS_BESIDE_ROWS", 0)  # written after the store, in this thread
    cl.run(data, tmp_path / "after", **options)
    assert threads[0].startswith("customerlens-files") and threads[1] == threading.current_thread().name
    beside, after = ((tmp_path / name / "recommendations.csv").read_bytes() for name in ("beside", "after"))
    assert beside == after and beside.count(b"\n") > 100


def _folder_state(out: Path, report: bool = True) -> tuple[str, int]:
    """Check that the folder is one complete run; return its segmentation method and customer count."""
    con = duckdb.connect(str(out / "customerlens.duckdb"), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT DISTINCT segment_name FROM segments").fetchall()}
        customers = con.execute("SELECT count(*) FROM segments").fetchone()[0]
        method = con.execute("SELECT record->>'$.segmentation.method' FROM run").fetchone()[0]
    finally:
        con.close()
    segments = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert set(segments["segment_name"]) == names and len(segments) == customers
    listed = {p.stem for p in (out / "targets").glob("*.csv") if not p.stem.startswith("moved_")}
    assert listed == {slug(name) for name in names}
    if report:
        page = (out / "report.html").read_text()
        # every segment in the report (as text, or inside a chart's JSON where & is written \u0026)
        assert all(html.escape(name) in page or name.replace("&", "\\u0026") in page for name in names), names
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".wal"))]
    return method, customers


def _start(data: Path, out: Path, *options: str) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    return subprocess.Popen([*CLI, "run", str(data), "--out", str(out), "--top-n", "3", *options],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_stage(run: subprocess.Popen, stage: str) -> bool:
    """Read the run's ``--verbose`` lines until ``stage`` starts; False when the run ended first."""
    for line in run.stderr:
        if line.split()[-1:] == [stage]:
            return True
    return False


#: SIGKILL as each of these stages runs (``--verbose`` says when one starts), then SIGTERM during one
KILL_STAGES = ("load", "value", "charts", "store", "report")


@pytest.mark.slow  # real runs killed at seeded moments: in make test, not test-fast
def test_killed_runs_leave_the_old_folder_or_the_new_one(tmp_path):
    data, _ = demo.write(demo.generate(150, seed=8), tmp_path / "demo.csv")
    out = tmp_path / "out"
    # charts are half of a small run's time: only the run killed while drawing them draws them
    first = _start(data, out, "--no-charts")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert _folder_state(out)[0] == "kmeans"
    rng = random.Random(18)
    outcomes = []
    # SIGKILL during loading, the value stage, the charts, the store and the report (at a seeded moment
    # within the stage's first quarter second), then SIGTERM during the segmentation
    plan = [(signal.SIGKILL, stage) for stage in KILL_STAGES] + [(signal.SIGTERM, "segment")]
    for attempt, (sig, stage) in enumerate(plan):
        method = ["--method", "rfm"] if attempt % 2 == 0 else []
        charts = [] if stage == "charts" else ["--no-charts"]
        run = _start(data, out, *method, *charts, "--verbose")
        reached = _wait_for_stage(run, stage)
        time.sleep(rng.uniform(0.0, 0.25))
        run.send_signal(sig)
        code = run.wait(timeout=120)
        run.stderr.read()
        state = _folder_state(out)  # wholly the old run or wholly the new one, whichever it is
        outcomes.append((sig.name, stage, reached, code, state[0]))
        if sig == signal.SIGTERM:
            assert code in (0, 128 + signal.SIGTERM), outcomes  # finished, or stopped as a terminated process
        if sig == signal.SIGTERM and code != 0:
            # a terminated run cleans up after itself: no staging folder, no lock
            assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.csv", "demo.types.csv", "out"], outcomes
    # the next run takes over whatever a killed run left beside the folder, and finishes
    last = _start(data, out, "--method", "rfm", "--no-charts", "--verbose")
    assert last.wait(timeout=300) == 0
    assert "Seconds and peak memory by stage" in last.stderr.read()  # --verbose ends with the stages' times
    assert _folder_state(out)[0] == "rfm"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.csv", "demo.types.csv", "out"]
    assert all(reached for _, _, reached, _, _ in outcomes), outcomes  # every stage was reached, then the kill
    assert sum(code != 0 for *_, code, _ in outcomes) >= 5, outcomes  # and the kills landed mid-run


def _wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _wait_for_holder(out: Path, pid: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while folder._holder(folder.lock_path(out)) != pid and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.slow
def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    data, _ = demo.write(demo.generate(150, seed=8), tmp_path / "demo.csv")
    out = tmp_path / "out"
    first = _start(data, out, "--no-charts", "--no-value")  # the lock is the subject: a lighter run holds it
    _wait_for(folder.lock_path(out))
    second = _start(data, out, "--method", "rfm", "--no-charts", "--no-value")
    assert second.wait(timeout=120) == 2
    lines = [ln for ln in second.stderr.read().splitlines() if ln.strip()]
    assert len(lines) == 1 and "another customerlens run" in lines[0], lines
    assert first.wait(timeout=300) == 0
    assert _folder_state(out)[0] == "kmeans"  # the first run finished intact


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder that takes no files")
def test_a_folder_that_takes_no_files_is_one_line(tmp_path):
    """Even as root (CI), /proc takes no new files: the same path as a read-only or forbidden folder."""
    from tests.conftest import cli_in_process

    data, _ = demo.write(demo.generate(40, seed=8), tmp_path / "demo.csv")
    result = cli_in_process("run", data, "--out", "/proc/customerlens-out", "--top-n", "0", "--no-charts",
                            "--no-report", "--no-value")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: /proc: cannot be written ("), lines


def _limited_file_size(limit: int):
    """For a subprocess: files larger than ``limit`` bytes cannot be written (EFBIG), like a full disk."""
    import resource

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_the_old_folder(tmp_path):
    """The first file over the limit is a chart (Python's write) or the store (DuckDB's): either way one line."""
    data, _ = demo.write(demo.generate(60, seed=8), tmp_path / "demo.csv")
    out = tmp_path / "out"
    light = ["--top-n", "0", "--no-report", "--no-value"]
    first = _start(data, out, *light, "--no-charts")
    assert first.wait(timeout=300) == 0, first.stderr.read()
    before = _folder_state(out, report=False)
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
    for options in ([], ["--no-charts"]):  # a PNG is the first file over the limit, then the store
        full = subprocess.run([*CLI, "run", str(data), "--out", str(out), "--method", "rfm", *light, *options],
                              capture_output=True, text=True, env=env, timeout=300,
                              preexec_fn=_limited_file_size(40_000))
        assert full.returncode == 2, full.stderr[-3000:]
        lines = [line for line in full.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "cannot be written (file too large)" in lines[0], lines
        assert "previous results are unchanged" in lines[0]
        assert _folder_state(out, report=False) == before  # still the first run, whole
        assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.csv", "demo.types.csv", "out"]
