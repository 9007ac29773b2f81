"""``python -m customerlens.cli``: the same as the ``customerlens`` command."""

from customerlens.cli import main

main()
