"""The HTML report: one self-contained file that tells a run's story (outputs stage).

It reads only the store written by ``customerlens run`` and hands on a single
HTML file that opens offline in any browser: the charts of
:mod:`customerlens.outputs.charts` as inline Vega-Lite specs (rendered by the vega
bundle of vl-convert, inlined once), sortable tables and print styles, no
network request of any kind.

>>> from customerlens.outputs.report import write_report
>>> write_report("out/customerlens.duckdb", "out/report.html")  # doctest: +SKIP
"""

from customerlens.outputs.report.build import REPORT_CHARTS, build_report, write_report

__all__ = ["REPORT_CHARTS", "build_report", "write_report"]
