"""Cleaning: the named rules, each counted in a quality report (:mod:`.rules`).

Input: canonical transactions (:mod:`customerlens.io`) as any narwhals frame.
Output: clean lines, the excluded lines with their rule, and the
:class:`~customerlens.cleaning.rules.QualityReport`.

May import: ``customerlens.core``, ``errors``, ``io``.
"""

from customerlens.cleaning.rules import RULES, SWITCHES, CleaningConfig, CleanResult, QualityReport, clean

__all__ = ["RULES", "SWITCHES", "CleanResult", "CleaningConfig", "QualityReport", "clean"]
