"""Core helpers every layer shares.

DuckDB (:mod:`.db`), frames (:mod:`.frames`), atomic files (:mod:`.files`), dates
given by users (:mod:`.dates`) and text (:mod:`.text`).

May import: ``customerlens.errors`` only. Knows nothing of transactions, customers or models.
"""
