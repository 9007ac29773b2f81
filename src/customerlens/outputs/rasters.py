"""Charts' PNGs drawn from their SVG files: here, or in a run's worker process once it is free.

Only vl-convert's rasteriser (resvg): a worker process drawing PNGs imports neither Altair nor Vega.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from customerlens.core.files import atomic_path
from customerlens.core.worker import load


def rasterize(svg: Path, png: Path, scale: float = 2.0) -> Path:
    """Write ``png`` (atomically) from the chart's SVG file ``svg``, as ``charts.save_chart`` would; returns ``png``."""
    write_png(Path(svg).read_text(encoding="utf-8"), Path(png), scale)
    return Path(png)


def write_png(svg: str, path: Path, scale: float) -> None:
    """Write the SVG text ``svg`` as the PNG ``path`` (atomically), ``scale`` pixels per SVG unit."""
    import vl_convert as vlc

    from customerlens.outputs import fonts

    fonts.ready()
    with atomic_path(path) as tmp:
        # rasterised from the SVG: the same bytes as vegalite_to_png, without laying the chart out twice
        tmp.write_bytes(vlc.svg_to_png(svg, scale=scale))


class Rasters:
    """The charts' PNGs still to draw from their SVGs: by this process while it would wait, and by a worker.

    A run draws its SVGs, then waits for the recommender its worker process learns: meanwhile it
    draws PNGs here (:meth:`draw_one`). Once the worker is free (:meth:`hand_over`), a thread here
    feeds it the PNGs left, one at a time, while this process makes the lists; :meth:`finish` draws
    the rest here from the other end of the queue and waits for the worker's last one. The PNGs are
    the same bytes whoever draws them. The worker then loads what ``preload`` names
    (:func:`customerlens.core.worker.load`) and runs what :meth:`beside` gives it (the report) while
    this process writes the tables; :meth:`close` ends it. When this process has drawn every PNG
    before the worker is free, it loads ``preload`` itself meanwhile (:meth:`meanwhile`), and the
    report is written here.
    """

    def __init__(self, scale: float = 2.0, preload: tuple[str, ...] = ()):
        self.scale = scale
        self.preload = preload  # what the worker loads (core.worker.load) for what it is given after the PNGs
        self._here = list(preload)  # what meanwhile() loads here once the PNGs are drawn
        self._todo: list[tuple[Path, Path]] = []
        self._lock = threading.Lock()
        self._worker: Any = None
        self._fed: Any = None
        self._fonts = False
        self._feeder: threading.Thread | None = None
        self._later: queue.Queue = queue.Queue()  # beside()'s calls, for the feeder once the PNGs are drawn
        self._pngs_done = threading.Event()
        self._failure: BaseException | None = None
        self._closing = False
        self._drawn = 0
        self._seconds = 0.0
        self.worker_stats: dict | None = None  # the worker's PNGs and seconds, once finished (None: it drew none)

    def add(self, svg: Path, png: Path) -> None:
        """A PNG to draw from ``svg``."""
        self._todo.append((Path(svg), Path(png)))

    def _take(self, first: bool) -> tuple[Path, Path] | None:
        with self._lock:
            if not self._todo:
                return None
            return self._todo.pop(0 if first else -1)

    def draw_one(self) -> bool:
        """Draw a PNG here (the last in the queue); False when none is left."""
        job = self._take(first=False)
        if job is None:
            return False
        rasterize(*job, self.scale)
        return True

    def meanwhile(self) -> bool:
        """One piece of work here while the worker is busy: a PNG, else one ``preload`` item; False when none is left."""
        if self.draw_one():
            return True
        if self._here:
            load(self._here.pop(0))
            return True
        return False

    def hand_over(self, worker: Any) -> bool:
        """Let ``worker`` (a :class:`~customerlens.core.worker.Worker`, free now) draw PNGs from the front.

        True when there were PNGs left: it holds the worker then, for them and for :meth:`beside`
        (:meth:`close` ends it); False when none was (the caller keeps the worker).
        """
        if not self._todo:
            return False
        from customerlens.outputs import fonts

        self._fonts = fonts.settle(False)  # the fonts this process drew with (settled by its SVGs)
        self._worker = self._fed = worker  # _fed: the feeder's, still after close() lets the worker go
        self._feeder = threading.Thread(target=self._feed, name="customerlens-rasters", daemon=True)
        self._feeder.start()
        return True

    def _feed(self) -> None:
        try:
            self._feed_pngs()
        finally:
            self._pngs_done.set()
        if self._failure is None and not self._closing:
            for item in self.preload:  # while this process makes the lists and writes the store
                try:
                    self._run(load, item)
                except BaseException:  # noqa: BLE001 - a warm-up: what needs it says what is wrong
                    break
        # beside()'s calls, in order, until close(): each answered, or its failure handed to its caller
        while (job := self._later.get()) is not None:
            fn, args, future = job
            try:
                future.set_result(self._run(fn, *args))
            except BaseException as exc:  # noqa: BLE001 - raised where the caller asks for the result
                future.set_exception(exc)

    def _run(self, fn: Any, *args: Any) -> Any:
        self._fed.submit(fn, *args)
        return self._fed.result()

    def _feed_pngs(self) -> None:
        if not self._todo:
            return
        from customerlens.outputs.fonts import settle

        # the same fonts as this process's: the same PNG bytes whoever draws them
        if not self._call(settle, self._fonts):
            return
        while not self._closing and (job := self._take(first=True)) is not None:
            if not self._call(rasterize, *job, self.scale):
                return
            self._drawn += 1
            self._seconds += self._fed.stats.get("seconds", 0.0)

    def _call(self, fn: Any, *args: Any) -> bool:
        """``fn(*args)`` in the worker, waited for; False (its failure kept for finish()) when it failed."""
        try:
            self._run(fn, *args)
        except BaseException as exc:  # noqa: BLE001 - raised by finish(), unless the run is closing
            self._failure = exc
            return False
        return True

    def finish(self) -> None:
        """Every PNG written: the rest drawn here while the worker draws its own (it stays, for :meth:`beside`).

        A PNG that cannot be drawn, here or there, raises here, and the worker is ended.
        """
        try:
            while self.draw_one():
                pass
            if self._worker is None:
                return
            self._pngs_done.wait()
            if self._failure is not None:
                raise self._failure
        except BaseException:
            self.close()
            raise
        if self._drawn:
            plural = "s" if self._drawn > 1 else ""
            self.worker_stats = {"task": f"charts: {self._drawn} PNG{plural}", "seconds": round(self._seconds, 3),
                                 "peak_memory_mb": self._worker.stats.get("peak_memory_mb")}

    def beside(self, fn: Any, *args: Any) -> Callable[[], Any]:
        """``fn(*args)`` (a module-level function) in the worker from now, when this holds one, else here later.

        Returns a function that gives its result: the worker's (waiting for it; its exception is
        raised there), or ``fn(*args)`` called then. Call after :meth:`finish`.
        """
        if self._worker is None:
            return lambda: fn(*args)
        future: Future = Future()
        self._later.put((fn, args, future))
        return future.result

    def close(self) -> None:
        """End the worker, if it still holds one (at the end of a run, or of one that failed)."""
        if self._worker is not None:
            worker, self._worker = self._worker, None
            self._closing = True
            worker.close()  # a PNG it is drawing stops; the feeder's wait for it ends at once
            self._later.put(None)
            if self._feeder is not None:
                self._feeder.join()
            while not self._later.empty():  # calls never run: their callers are told, not left waiting
                job = self._later.get()
                if job is not None and not job[2].done():
                    job[2].set_exception(RuntimeError("the worker was closed before this call ran"))
