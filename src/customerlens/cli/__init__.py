"""The command line (Typer): parse, call the library, print. Nothing imports this package.

``entry`` (the Typer application ``app`` and the entry point ``main``), ``options`` (the
options the commands share and the config they build), ``display`` (tables and
progress on the terminal), and the commands: ``data_commands`` (run, segment,
ingest, features, demo), ``model_commands`` (backtest, value, campaigns) and
``serve_commands`` (serve, report, version).
"""

from customerlens.cli import data_commands, model_commands, serve_commands  # noqa: F401  (registers the commands)
from customerlens.cli.entry import app, main

__all__ = ["app", "main"]
