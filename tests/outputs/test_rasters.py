"""The charts' PNGs drawn here and by the run's worker process, from the same queue (customerlens.outputs.rasters)."""

from __future__ import annotations

import os
import threading

import pandas as pd
import pytest

from customerlens.core.worker import Worker
from customerlens.outputs import charts
from customerlens.outputs.rasters import Rasters


def _svgs(folder, n=6):
    """``n`` small charts as SVG files, with the PNG bytes save_chart draws for each."""
    expected = {}
    for i in range(n):
        frame = pd.DataFrame({"x": list(range(i + 3)), "y": [v * (i + 1) for v in range(i + 3)]})
        chart = charts.Chart(frame).mark_line().encode(x="x:Q", y="y:Q").properties(title=f"chart {i}")
        whole = charts.save_chart(chart, folder / "whole" / f"c{i}")
        svg_only = charts.save_chart(chart, folder / "split" / f"c{i}", png=False)
        assert not svg_only["png"].exists()
        expected[svg_only["png"]] = (svg_only["svg"], whole["png"].read_bytes())
    return expected


def _queued(folder, n, **options) -> tuple[Rasters, dict]:
    """A Rasters with ``n`` small charts' PNGs to draw (:func:`_svgs`), and what each PNG must be."""
    expected = _svgs(folder, n=n)
    rasters = Rasters(**options)
    for png, (svg, _) in expected.items():
        rasters.add(svg, png)
    return rasters, expected


def test_the_worker_and_this_process_draw_the_same_pngs_between_them(tmp_path):
    """Some PNGs drawn here while the worker is busy, the rest shared once it is free: every PNG is there,
    byte for byte save_chart's, each drawn once, and the worker ends with the queue.
    """
    expected = _svgs(tmp_path)
    rasters = Rasters()
    for png, (svg, _) in expected.items():
        rasters.add(svg, png)
    assert rasters.draw_one()  # while the worker would still be learning
    worker = Worker()
    assert rasters.hand_over(worker)
    rasters.finish()
    for png, (_, data) in expected.items():
        assert png.read_bytes() == data, png
    drawn = rasters.worker_stats["task"] if rasters.worker_stats else "charts: 0 PNGs"
    assert 0 <= int(drawn.split()[1]) <= len(expected) - 1
    # the worker stays for what the run gives it next (the report), beside this process, until closed
    pid = rasters.beside(os.getpid)
    assert pid() not in (os.getpid(), None)
    rasters.close()
    assert worker._process.poll() is not None  # ended
    assert not [t for t in threading.enumerate() if t.name == "customerlens-rasters"]
    with Worker() as other:
        assert not rasters.draw_one() and not rasters.hand_over(other)  # nothing left: the caller keeps its worker


def test_without_a_worker_every_png_and_the_report_are_done_here(tmp_path):
    expected = _svgs(tmp_path, n=2)
    rasters = Rasters()
    for png, (svg, _) in expected.items():
        rasters.add(svg, png)
    rasters.finish()
    assert all(png.read_bytes() == data for png, (_, data) in expected.items()) and rasters.worker_stats is None
    called = []
    later = rasters.beside(called.append, "report")
    assert called == []  # done when asked for, in its own stage
    assert later() is None and called == ["report"]


def test_a_png_the_worker_cannot_draw_fails_the_run_and_ends_the_worker(tmp_path):
    rasters = Rasters()
    rasters.add(tmp_path / "missing.svg", tmp_path / "missing.png")  # the worker's, or this process's at finish
    worker = Worker()
    assert rasters.hand_over(worker)
    with pytest.raises(FileNotFoundError, match="missing.svg"):
        rasters.finish()
    assert worker._process.poll() is not None and not (tmp_path / "missing.png").exists()


def test_a_run_that_fails_before_the_pngs_are_drawn_ends_the_worker(tmp_path):
    rasters, _ = _queued(tmp_path, 3)
    worker = Worker()
    rasters.hand_over(worker)
    rasters.close()  # what the run does when something fails before finish()
    assert worker._process.poll() is not None
    assert not [t for t in threading.enumerate() if t.name == "customerlens-rasters"]


def test_meanwhile_draws_the_pngs_then_loads_what_the_report_needs_here(tmp_path):
    """While the worker still learns: PNGs first, then what ``preload`` names (the report's modules and template,
    for a report written here once every PNG is drawn); then nothing left.
    """
    from customerlens.outputs.report import build

    rasters, expected = _queued(tmp_path, 2, preload=("customerlens.outputs.report",
                                                      "customerlens.outputs.report.build:warm"))
    build._environment.cache_clear()
    assert rasters.meanwhile() and rasters.meanwhile()
    assert all(png.read_bytes() == data for png, (_, data) in expected.items())
    assert build._environment.cache_info().currsize == 0  # the PNGs came first
    assert rasters.meanwhile() and rasters.meanwhile()
    assert build._environment.cache_info().currsize == 1  # the template compiled here
    assert not rasters.meanwhile()
    with Worker() as worker:
        assert not rasters.hand_over(worker)  # no PNG left: the report is written here


def test_a_call_given_to_a_worker_that_died_is_an_error_not_a_wait(tmp_path):
    from customerlens.errors import CustomerLensError

    rasters, _ = _queued(tmp_path, 1)
    worker = Worker()
    assert rasters.hand_over(worker)
    rasters.finish()
    worker._process.kill()
    worker._process.wait()
    later = rasters.beside(os.getpid)
    with pytest.raises(CustomerLensError, match="stopped"):
        later(timeout=60)  # the caller is told (a Future's result), never left waiting
    rasters.close()
    assert not [t for t in threading.enumerate() if t.name == "customerlens-rasters"]
