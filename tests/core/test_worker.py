"""The worker process a run fits its recommender in (customerlens.core.worker)."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from customerlens.core.worker import Worker, load, usable_cores
from customerlens.errors import ConfigError, CustomerLensError


def test_calls_answer_in_order():
    with Worker(preload=("json",)) as worker:
        worker.submit(os.getpid)
        worker.submit(sorted, {"b": 1, "a": 2})
        pid, keys = worker.result(), worker.result()
        assert pid != os.getpid() and keys == ["a", "b"]
        assert worker.stats["seconds"] >= 0 and worker.stats["peak_memory_mb"] > 5
    assert usable_cores() >= 1


def test_customerlens_own_processes_collect_young_objects_less_often():
    """The CLI's process and a run's worker process tune Python's collector; a user's process (these tests' own,
    until the CLI runs in it) keeps Python's default.
    """
    import gc

    from customerlens.core.collector import YOUNG_THRESHOLD

    with Worker() as worker:
        worker.submit(gc.get_threshold)
        assert worker.result() == (YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    code = ("import gc, sys; import customerlens.pipeline; before = gc.get_threshold()[0]\n"
            "from customerlens.cli.entry import main; sys.argv = ['customerlens', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(before, gc.get_threshold()[0], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.split()[-2:] == ["700", str(YOUNG_THRESHOLD)], done.stderr[-2000:]


def test_exceptions_come_back_as_raised_and_bugs_say_where():
    with Worker() as worker:
        worker.submit(_raise_config)  # module-level: importable in the worker
        with pytest.raises(ConfigError, match="k must be"):
            worker.result()
        worker.submit(int, "not a number")  # a bug's exception keeps the worker's traceback as a note
        with pytest.raises(ValueError) as info:
            worker.result()
        assert "in customerlens's worker process" in "".join(info.value.__notes__)
        worker.submit(abs, 3)  # the worker goes on after a failed call
        assert worker.result() == 3
        worker.submit(importlib.import_module, "json")  # a module cannot be sent back: that call fails, not the worker
        with pytest.raises(TypeError, match="import_module returned what cannot be sent back"):
            worker.result()
        worker.submit(load, "json")  # imports ahead what a later call needs
        worker.submit(abs, -4)
        assert worker.result() is None and worker.result() == 4


def test_a_worker_that_dies_is_a_clear_error():
    worker = Worker()
    worker.submit(os.getpid)
    pid = worker.result()
    os.kill(pid, signal.SIGKILL)
    worker.submit(abs, 1)
    with pytest.raises(CustomerLensError, match=r"worker process running abs stopped .*killed.*--workers 1"):
        worker.result()
    worker.close()


def test_the_worker_ignores_ctrl_c_and_dies_with_its_caller(tmp_path):
    """A caller killed outright (no clean-up) leaves no worker behind (Linux: PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    script = tmp_path / "caller.py"
    script.write_text(textwrap.dedent("""
        import os, signal, time
        from customerlens.core.worker import Worker
        worker = Worker()
        worker.submit(os.getpid)
        pid = worker.result()
        os.kill(pid, signal.SIGINT)  # ignored: the caller decides when the worker stops
        time.sleep(0.3)
        worker.submit(abs, -2)
        print(pid, worker.result(), flush=True)
        time.sleep(60)
    """))
    caller = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pid, answer = caller.stdout.readline().split()
    assert answer == "2"
    caller.kill()
    caller.wait()
    deadline = time.monotonic() + 10
    while _alive(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(int(pid))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _raise_config():
    raise ConfigError("k must be at least 1", parameter="k")


def test_how_many_processes_a_run_uses(monkeypatch):
    """``engine.workers``, else $CUSTOMERLENS_WORKERS, else two on two free cores; anything else is refused."""
    from customerlens.pipeline.config import EngineConfig

    monkeypatch.delenv("CUSTOMERLENS_WORKERS", raising=False)
    assert EngineConfig().processes() == (2 if usable_cores() >= 2 else 1)
    monkeypatch.setenv("CUSTOMERLENS_WORKERS", "1")
    assert EngineConfig().processes() == 1 and EngineConfig(workers=2).processes() == 2
    monkeypatch.setenv("CUSTOMERLENS_WORKERS", "4")
    with pytest.raises(ConfigError, match="CUSTOMERLENS_WORKERS must be 1 or 2, got '4'"):
        EngineConfig().processes()
    with pytest.raises(ConfigError, match="engine.workers must be 1 or 2, got 3"):
        EngineConfig(workers=3)


def test_load_imports_a_module_and_calls_a_function_of_it(monkeypatch):
    """A worker is sent ``load`` calls to prepare what later calls need: a module, or a module's warm-up function."""
    import sys

    from customerlens.outputs.report import build

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    load("colorsys")
    assert "colorsys" in sys.modules
    build._environment.cache_clear()
    load("customerlens.outputs.report.build:warm")
    assert build._environment.cache_info().currsize == 1
    with pytest.raises(AttributeError):
        load("customerlens.outputs.report.build:no_such_function")
