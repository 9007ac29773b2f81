"""The run's stage clock and the CLI's stage progress: a stage announced twice (the store, written before and
after the recommender's worker process answers) is one stage.
"""

from __future__ import annotations

import time

from rich.progress import Progress

from customerlens.cli.display import staged
from customerlens.pipeline.clock import StageClock


def test_a_resumed_stage_is_one_entry_at_its_end_with_both_parts_seconds():
    heard = []
    clock = StageClock(heard.append)
    clock("charts")
    clock("store")
    time.sleep(0.05)
    clock.annotate(note="first part")
    clock("recommend")
    # while the store is written again, the finished stages do not hold a part of it (the run record is taken then)
    clock("store")
    assert [s["stage"] for s in clock.stages] == ["charts", "recommend"]
    time.sleep(0.05)
    clock("report")
    clock.finish()
    assert [s["stage"] for s in clock.stages] == ["charts", "recommend", "store", "report"]
    store = clock.stages[2]
    assert store["seconds"] >= 0.1 and store["note"] == "first part"
    peaks = [s["peak_memory_mb"] for s in clock.stages]
    assert peaks == sorted(peaks)
    assert heard == ["charts", "store", "recommend", "store", "report"]


def test_the_progress_bar_counts_a_resumed_stage_once():
    bar = Progress(disable=True)
    on_stage = staged(bar, ("charts", "store", "recommend", "report"))
    for stage in ("charts", "store", "recommend", "store"):
        on_stage(stage)
    [task] = bar.tasks
    assert task.completed == 2 and task.description == "store"
    on_stage("report")
    assert task.completed == 3 and task.description == "report"
