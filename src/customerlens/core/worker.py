"""A Python process of its own that runs customerlens functions beside the caller's (a second core).

:class:`Worker` starts ``python -m customerlens.core.worker`` at once (its imports overlap the
caller's work), then runs the calls it is sent one after another, in order, and answers each
with its result, or the exception it raised, with the seconds the call took and the worker's peak
memory by its end.

Not :mod:`multiprocessing`: its ``spawn`` start re-imports the caller's ``__main__``, which runs a
user's script without a ``__main__`` guard a second time, and ``fork`` after DuckDB's and OpenMP's
threads have started can hang. The worker ignores Ctrl-C (the caller stops it) and dies with its
caller (Linux), so an interrupted or killed run leaves no process behind.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from customerlens.core.memory import peak_rss_bytes
from customerlens.core.process import claim
from customerlens.errors import CustomerLensError

#: the settings that bound the threads of OpenMP (LightGBM, scikit-learn) and of the BLAS libraries
THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


class Worker:
    """A process of its own for calls of module-level functions, answered in order.

    ``preload``: modules the worker imports before its first call, while the caller works on;
    ``threads``: OpenMP and BLAS threads in the worker (default: as in the caller).
    ``submit(fn, *args)`` sends a call and returns at once; ``result()`` waits for the oldest
    unanswered call: its value, or its exception raised here. ``stats`` has the last
    answered call's ``seconds`` and the worker's ``peak_memory_mb``.
    """

    def __init__(self, preload: tuple[str, ...] = (), threads: int | None = None):
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "customerlens.core.worker", str(to_child), str(from_child), *preload],
            pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
            env={**os.environ, **({name: str(threads) for name in THREADS} if threads else {})},
        )
        os.close(to_child)
        os.close(from_child)
        self._send = Connection(from_parent, readable=False)
        self._receive = Connection(to_parent, writable=False)
        self._pending: list[str] = []
        self.stats: dict = {}
        # calls go out through a thread of their own: a pipe takes 64 KB at a time, and a worker busy
        # with the call before would hold the caller until it reads the next one's arguments
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_all, name="customerlens-worker-sender", daemon=True)
        self._sender.start()

    def submit(self, fn: Any, *args: Any) -> None:
        """Send ``fn(*args)`` (``fn`` a module-level function); returns at once (the arguments are pickled now)."""
        self._outbox.put(pickle.dumps((fn.__module__, fn.__qualname__, args), protocol=pickle.HIGHEST_PROTOCOL))
        self._pending.append(fn.__qualname__)

    def _send_all(self) -> None:
        while (payload := self._outbox.get()) is not None:
            try:
                self._send.send_bytes(payload)
            except OSError:  # the worker is gone: result() says so
                return

    def ready(self) -> bool:
        """Whether the oldest unanswered call's answer has come (:meth:`result` would not wait)."""
        try:
            return self._receive.poll()
        except (EOFError, OSError):  # the worker is gone: result() says so at once
            return True

    def result(self) -> Any:
        """The oldest unanswered call's result, or its exception, raised here."""
        name = self._pending.pop(0)
        try:
            ok, value, self.stats = self._receive.recv()
        except (EOFError, OSError) as exc:
            code = self._process.wait()
            raise CustomerLensError(
                f"the worker process running {name} stopped (exit code {code}"
                f"{', killed: out of memory?' if code < 0 else ''}); run again with workers=1 "
                "(--workers 1) to keep every stage in one process") from exc
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Stop the worker (at once, whatever it is doing) and wait for it to end."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._outbox.put(None)
        self._sender.join()  # its write fails at once: the reading end is gone
        for connection in (self._send, self._receive):
            connection.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(module: str) -> None:
    """Import ``module`` here (a call a worker is sent to import ahead what later calls need).

    ``"package.module:function"`` also calls that function of it, with no arguments (a warm-up).
    """
    name, _, function = module.partition(":")
    imported = importlib.import_module(name)
    if function:
        getattr(imported, function)()


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the one that started it ends (no orphan)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the caller, which stops the worker
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover - no glibc
            pass


def _answer(value: Any, exc: BaseException | None, seconds: float) -> tuple:
    stats = {"seconds": round(seconds, 3), "peak_memory_mb": round(peak_rss_bytes() / 1e6, 1)}
    if exc is None:
        return True, value, stats
    if not isinstance(exc, CustomerLensError):  # a bug: where it happened travels with it
        import traceback

        exc.add_note("in customerlens's worker process:\n" + "".join(traceback.format_tb(exc.__traceback__)))
    try:
        pickle.dumps(exc)
    except Exception:  # an exception that cannot travel is sent as its text
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    return False, exc, stats


def main(read_fd: int, write_fd: int, preload: list[str]) -> None:
    """The worker's loop: calls in, answers out, until the caller closes the pipe."""
    _die_with_parent()
    claim()
    for module in preload:
        try:
            importlib.import_module(module)
        except ImportError:  # the call that needs it says so
            pass
    receive, send = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    while True:
        try:
            module, name, args = receive.recv()
        except EOFError:
            return
        start = time.perf_counter()
        try:
            fn = importlib.import_module(module)
            for part in name.split("."):
                fn = getattr(fn, part)
            answer = _answer(fn(*args), None, time.perf_counter() - start)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            answer = _answer(None, exc, time.perf_counter() - start)
        try:
            payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - a result that cannot travel is the call's failure, not the worker's
            payload = pickle.dumps(_answer(None, TypeError(f"{name} returned what cannot be sent back: {exc}"),
                                           time.perf_counter() - start))
        send.send_bytes(payload)


if __name__ == "__main__":
    # the loop runs in the module under its own name (pickled classes of it are the same classes)
    from customerlens.core.worker import main as _main

    _main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
