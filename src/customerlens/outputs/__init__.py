"""Outputs: everything a person or another program reads from an analysis.

The output folder's layout and writing it (:mod:`.layout`), the one CSV/JSON
writer (:mod:`.files`), the DuckDB store's writer and its one reader
(:mod:`.store`), every chart (:mod:`.charts`, chosen per analysis in
:mod:`.figures`) and the self-contained HTML report (:mod:`.report`).

May import: ``customerlens.core``, ``errors``, ``io``, ``cleaning``, ``features``,
``models``, ``insights``. Never ``pipeline``, ``api`` or ``cli``: :func:`.layout.write_run`
takes the analysis it writes as an argument.
"""
