"""The command line (Typer): parse, call the library, print."""

from customerlens.cli.commands import app, main

__all__ = ["app", "main"]
