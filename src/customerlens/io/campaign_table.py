"""Reading a campaign table (CSV, Parquet, Excel or any frame) with the same error rules as the transactions."""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from typing import Any

import pandas as pd

from customerlens.core.frames import as_pandas
from customerlens.errors import InputError
from customerlens.io.load import SourceInfo
from customerlens.io.sources import PARQUET_SUFFIXES

_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}


def read_campaign_table(
    data: Any, *, sheet: str | int | None = None, encoding: str = "utf-8"
) -> tuple[pd.DataFrame, SourceInfo]:
    """The campaign table as pandas, and where it came from (for error messages).

    Parameters
    ----------
    data
        A path (CSV, also ``.gz``, with a comma, semicolon, tab or pipe
        delimiter; Parquet; ``.xlsx``) or a pandas, Polars or DuckDB frame.
    sheet
        Excel sheet name or index (first sheet by default).
    encoding
        Text encoding of CSV input.
    """
    if not isinstance(data, str | os.PathLike):
        try:
            frame = as_pandas(data)
        except TypeError:
            raise InputError(f"cannot read a {type(data).__name__}: pass a file path or a pandas, "
                             "Polars or DuckDB frame") from None
        kind = type(data).__module__.split(".")[0]
        return frame.reset_index(drop=True), SourceInfo(name=f"{kind} frame", kind="frame", header_lines=0)
    path = Path(data)
    name = str(path)
    if not path.exists():
        raise InputError(f"{name}: no such file")
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not a file; pass one campaign table")
    if path.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in (".gz", ".gzip")
    kind_suffix = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    source = SourceInfo(name=name, kind="csv", path=str(path.resolve()))
    try:
        if kind_suffix in PARQUET_SUFFIXES:
            source.kind, source.header_lines = "parquet", 0
            return pd.read_parquet(path), source
        if kind_suffix in _EXCEL_SUFFIXES:
            import fastexcel

            source.kind = "excel"
            reader = fastexcel.read_excel(str(path))
            chosen = reader.sheet_names[0] if sheet is None else sheet
            source.table = str(chosen)
            return reader.load_sheet(chosen).to_pandas(), source
        source.encoding = encoding
        delimiter = _sniff_delimiter(path, compressed, encoding)
        return pd.read_csv(path, sep=delimiter, encoding=encoding, compression="gzip" if compressed else None,
                           skipinitialspace=True), source
    except UnicodeDecodeError:
        raise InputError(f"{name}: is not {encoding} text; pass the right --encoding (e.g. latin-1)") from None
    except InputError:
        raise
    except Exception as exc:  # pandas, pyarrow and fastexcel raise their own types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{name}: cannot be read as {source.kind}: {first}") from None


def _sniff_delimiter(path: Path, compressed: bool, encoding: str) -> str:
    opener = gzip.open if compressed else open
    with opener(path, "rb") as fh:
        head = fh.read(65536)
    try:
        first = io.TextIOWrapper(io.BytesIO(head), encoding=encoding).readline()
    except UnicodeDecodeError:
        raise InputError(f"{path}: is not {encoding} text; pass the right --encoding (e.g. latin-1)") from None
    if not first.strip():
        raise InputError(f"{path}: the first line is empty; expected a header naming the columns")
    counts = {d: len(next(csv.reader([first], delimiter=d))) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: (counts[d], d == ","))
