"""Input: any file or frame in, canonical transactions out.

The canonical columns and the mapping from common source layouts (:mod:`.schema`),
the readers for CSV, Parquet, Excel, DuckDB files and pandas/Polars/DuckDB frames
(:mod:`.load`), the same loading inside Spark (:mod:`.spark`), campaign tables
(:mod:`.campaign_table`) and the synthetic demo data with planted customer types
(:mod:`.demo`).

May import: ``customerlens.core``, ``errors``. Nothing above (no cleaning, no models).
"""
