"""``customerlens run`` in one call: :func:`analyze` every stage, then save the output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from customerlens.pipeline.analysis import Analysis, settings, start_analysis
from customerlens.pipeline.config import RunConfig
from customerlens.pipeline.ingestion import Progress, no_progress


def run(
    data: Any,
    out_dir: str | Path,
    config: RunConfig | None = None,
    *,
    progress: Progress = no_progress,
    **options: Any,
) -> Analysis:
    """Run the whole pipeline on ``data`` and write ``out_dir``: :func:`analyze` then :meth:`Analysis.save`.

    Parameters
    ----------
    data
        A file (CSV, Parquet, Excel, DuckDB) or a pandas, Polars, DuckDB or PySpark frame.
    out_dir
        The output folder (created; files in it are replaced atomically, one by one).
    config
        The settings, or flat keywords in ``options`` (see :meth:`RunConfig.from_options`).
    progress
        Called with each stage's name as it starts.
    **options
        Flat settings, e.g. ``k=5``, ``as_of="2011-09-09"``; and ``campaigns``, ``campaign_options``
        as :func:`analyze` takes them.

    Returns
    -------
    Analysis
        What was found, with ``outputs`` (written paths by name) and ``out_dir`` set.
    """
    from customerlens.outputs.folder import folder_lock
    from customerlens.pipeline.clock import clocked

    out_dir = Path(out_dir)
    progress = clocked(progress)  # one clock for the analysis and the writing: the record times both
    # the folder's lock for the whole run (it also refuses an --out that is a file): a second run into it
    # fails at once, not after its analysis
    with folder_lock(out_dir):
        # the recommender may still be fitting in its worker process: saving draws the charts before it waits
        campaigns, campaign_options = options.pop("campaigns", None), options.pop("campaign_options", None)
        analysis = start_analysis(data, settings(config, options), progress=progress, campaigns=campaigns,
                                  campaign_options=campaign_options, store_to=out_dir)
        try:
            analysis.save(out_dir, progress=progress)
        except BaseException:
            # a failed run leaves nothing behind: its connection, and with it DuckDB's spill folder, goes
            analysis.close()
            raise
    progress.finish()
    return analysis
