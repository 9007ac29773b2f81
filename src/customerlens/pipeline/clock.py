"""Each stage's seconds and the process's peak memory, measured where the stages are announced."""

from __future__ import annotations

import time

from customerlens.core.memory import peak_rss_bytes
from customerlens.pipeline.ingestion import Progress, no_progress


class StageClock:
    """A ``progress`` callback that times the stages it is told of, then passes the name on.

    ``stages`` lists the finished ones: ``{"stage", "seconds", "peak_memory_mb"}``, the peak being the
    process's peak resident memory by the end of the stage (so it never falls; Spark's executors are
    other processes and not in it). A stage announced again resumes: its entry leaves the list until
    it ends again, with the seconds of both parts.
    """

    def __init__(self, progress: Progress = no_progress):
        self.progress = progress
        self.stages: list[dict] = []
        self._current: str | None = None
        self._started = 0.0
        self._facts: dict = {}
        self._before = 0.0  # a resumed stage's seconds so far

    def __call__(self, stage: str) -> None:
        """``stage`` starts: the one running ends, and the wrapped callback hears of the new one."""
        self.finish()
        earlier = next((s for s in self.stages if s["stage"] == stage), None)
        if earlier is not None:  # resumed (the store, before and after the recommender): one entry, at its end
            self.stages.remove(earlier)
            self._before = earlier.pop("seconds")
            self._facts = {k: v for k, v in earlier.items() if k not in ("stage", "peak_memory_mb")}
        self._current, self._started = stage, time.perf_counter()
        self.progress(stage)

    def annotate(self, **facts) -> None:
        """Facts the running stage's entry carries too (e.g. ``worker``: the seconds and memory of a worker process)."""
        self._facts.update(facts)

    def finish(self) -> None:
        """Close the running stage (if any): its seconds and the peak so far join :attr:`stages`."""
        if self._current is not None:
            self.stages.append({"stage": self._current,
                                "seconds": round(self._before + time.perf_counter() - self._started, 3),
                                "peak_memory_mb": round(peak_rss_bytes() / 1e6, 1), **self._facts})
            self._current, self._facts, self._before = None, {}, 0.0


def clocked(progress: Progress) -> StageClock:
    """``progress`` itself when it is a :class:`StageClock` already, else one around it."""
    return progress if isinstance(progress, StageClock) else StageClock(progress)
