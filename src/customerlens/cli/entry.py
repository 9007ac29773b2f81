"""The Typer application and the entry point: user errors become one line and exit code 2.

Every :class:`~customerlens.errors.CustomerLensError` becomes one red line on
stderr and exit code 2 (a :class:`~customerlens.errors.ConfigError` names the
flag, not the Python parameter); only bugs show a traceback.
"""

from __future__ import annotations

import atexit
import gc
import signal
import sys
import warnings

import typer
from rich.console import Console

app = typer.Typer(
    name="customerlens",
    help=(
        "Purchase transactions in, customer decisions out.\n\n"
        "Start with `customerlens run` (no file: a synthetic demo data set) or "
        "`customerlens run sales.csv --out out/`. `customerlens ingest FILE` shows how a "
        "file is read and cleaned before you commit to a run."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
#: the CLI's own output (stdout) and its messages and progress (stderr)
out = Console()
err = Console(stderr=True)


_SIGNALLED: list[int] = []  # the signal that ended the command, if any


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM ends the command like Ctrl+C: cleanup runs (staging folder, lock, temporary files).

    Raised as KeyboardInterrupt, which the libraries underneath (DuckDB, pyarrow) already
    stop cleanly on; the exit code is still 128 + SIGTERM.
    """
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A library warning as one yellow line, without the source file and line it came from."""
    err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def _freeze_at_exit() -> None:
    """At the interpreter's exit: every object left frozen (``gc.freeze``), after one collection if needed.

    The interpreter's own collections while it tears its modules down walk every object that
    pandas, scikit-learn, scipy and DuckDB made: 0.3-0.4 s after every command's work on Online
    Retail (0.25 s after only importing them). Where a DuckDB connection is still open (it may be
    held in a cycle), cycles are collected first, so that it closes and removes its spill folder;
    where all are closed (``run`` and ``segment`` close theirs), that collection is saved (0.085 s
    after an Online Retail run).
    """
    db = sys.modules.get("customerlens.core.db")  # not imported: no connection made (and none to import now)
    if db is not None and db.open_connections():
        gc.collect()
    gc.freeze()


def main() -> None:
    """Entry point: user errors become one line and exit code 2."""
    from customerlens.cli.options import flag_message
    from customerlens.core.process import claim
    from customerlens.errors import ConfigError, CustomerLensError

    if sys.argv[1:] == ["version"]:  # before Typer parses anything: its command machinery takes 0.15 s
        from customerlens._version import __version__

        print(__version__)
        return
    claim()  # this process is customerlens's own
    atexit.unregister(_freeze_at_exit)  # once, however often main runs in one process (the tests)
    atexit.register(_freeze_at_exit)
    signal.signal(signal.SIGTERM, _terminate)
    warnings.showwarning = _show_warning
    try:
        app()
    except ConfigError as exc:
        err.print(f"[bold red]error:[/] {flag_message(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except CustomerLensError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except MemoryError:
        # an allocation the checks before it did not foresee: still a clear line, not a traceback
        err.print("[bold red]error:[/] out of memory: this work needs more memory than is free; try fewer "
                  "--models, a shorter period of data, or --engine spark",
                  highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("terminated" if _SIGNALLED else "interrupted")
        sys.exit(128 + (_SIGNALLED[0] if _SIGNALLED else signal.SIGINT))
    except SystemExit as exc:
        if _SIGNALLED and exc.code not in (0, None):  # Typer turned the interrupt into exit 130 (SIGINT's)
            err.print("terminated")
            sys.exit(128 + _SIGNALLED[0])
        raise
    except Exception as exc:
        if "pyspark" in sys.modules:  # a Spark job that failed on the executors: one line, not a JVM stack
            from customerlens.io.spark import spark_failure

            failure = spark_failure(exc)
            if failure:
                err.print(f"[bold red]error:[/] {failure}", highlight=False, soft_wrap=True)
                sys.exit(2)
        duckdb = sys.modules.get("duckdb")  # imported by the work itself; --help never loads it
        if duckdb is None or not isinstance(exc, duckdb.OutOfMemoryException):
            raise
        # under --memory-limit: a limit the user set, not a bug
        first = str(exc).splitlines()[0]
        err.print(f"[bold red]error:[/] out of memory ({first}): raise --memory-limit, or leave it out "
                  "(DuckDB then takes up to 80% of RAM); DuckDB spills the rest to the system temp dir "
                  "(TMPDIR)", highlight=False, soft_wrap=True)
        sys.exit(2)
