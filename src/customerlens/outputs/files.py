"""The one CSV and JSON writer of every output: atomic, with one formatting for every file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from customerlens.core.db import connect, run
from customerlens.core.files import atomic_path, write_text_atomic


def write_json_atomic(payload: Any, target: str | os.PathLike) -> Path:
    """``payload`` as indented JSON (dates and other objects as text), atomically."""
    return write_text_atomic(target, json.dumps(payload, indent=2, default=str) + "\n")


#: from this many rows on, CSV files are written by DuckDB (same bytes as pandas, many times faster)
FAST_CSV_ROWS = 200_000


def write_csv_atomic(frame, target: str | os.PathLike, float_format: str = "%.12g") -> Path:
    """Write a pandas frame as CSV (dates as YYYY-MM-DD, floats as ``float_format``), atomically.

    Large frames (per-customer tables of millions of rows) go through DuckDB's
    CSV writer with the same formatting; pandas formats every float in Python.
    """
    with atomic_path(target) as tmp:
        if len(frame) >= FAST_CSV_ROWS:
            _duckdb_csv(frame, tmp, float_format)
        else:
            frame.to_csv(tmp, index=False, float_format=float_format, date_format="%Y-%m-%d")
    return Path(target)


def _duckdb_csv(frame, path: Path, float_format: str) -> None:
    """``frame.to_csv(path, index=False, float_format=..., date_format="%Y-%m-%d")``, by DuckDB."""
    import pandas as pd

    con = connect()
    try:
        con.register("_cl_frame", frame)
        select = []
        for position, (name, dtype) in enumerate(frame.dtypes.items()):
            ref = f"#{position + 1}"  # by position: column names may be anything
            label = '"' + str(name).replace('"', '""') + '"'
            if pd.api.types.is_bool_dtype(dtype):
                expr = f"CASE WHEN {ref} THEN 'True' WHEN NOT {ref} THEN 'False' END"
            elif pd.api.types.is_float_dtype(dtype):
                fmt = float_format.replace("'", "''")
                expr = f"CASE WHEN isinf({ref}) THEN CASE WHEN {ref} > 0 THEN 'inf' ELSE '-inf' END " \
                       f"WHEN NOT isnan({ref}) THEN printf('{fmt}', {ref}) END"
            elif pd.api.types.is_datetime64_any_dtype(dtype):
                expr = f"strftime({ref}, '%Y-%m-%d')"
            elif pd.api.types.is_numeric_dtype(dtype):
                expr = ref
            else:  # text: an empty string is written as nothing, as pandas does (DuckDB would quote it)
                expr = f"NULLIF(CAST({ref} AS VARCHAR), '')"
            select.append(f"{expr} AS {label}")
        target = str(path).replace("'", "''")
        query = f"SELECT {', '.join(select)} FROM _cl_frame"
        run(con, f"COPY ({query}) TO '{target}' (FORMAT csv, HEADER, DELIMITER ',', QUOTE '\"', "
                 f"ESCAPE '\"', NULLSTR '', PRESERVE_ORDER true)")
    finally:
        con.close()
