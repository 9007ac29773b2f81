"""Stage 1: files and engines in, canonical typed transactions out.

Reads CSV (plain or gzip; comma, semicolon, tab, pipe or whitespace separated),
Parquet, Excel ``.xlsx``, a DuckDB table, or any pandas / Polars / DuckDB /
PySpark frame, and turns it into one DuckDB table in canonical columns
(:mod:`customerlens.io.schema`) with two extra columns:

``source_row``
    1-based position of the line in the input (data rows, header excluded),
    so every problem can be traced back to the row it came from.
``parse_error``
    the canonical fields whose non-empty value could not be read (e.g.
    ``"order_date"``), ``NULL`` when the row parsed cleanly. The cleaning stage
    counts and removes these rows under the rule ``unparseable``.

The input itself is never modified.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from customerlens.core.db import connect, fetch_all, fetch_one, literal, run
from customerlens.core.db import quote as _q
from customerlens.core.files import sha256_file
from customerlens.errors import ConfigError, DataQualityError, InputError, SchemaError
from customerlens.io.schema import HEADERLESS_NAMES, ColumnMapping, resolve_mapping
from customerlens.io.sources import PARQUET_SUFFIXES, TEXT_SUFFIXES

log = logging.getLogger(__name__)

TABLE = "transactions_raw"
_RAW = "_cl_raw"

#: Date formats tried on text dates, in order of preference when several read
#: the same share of values (month-first before day-first, as in the UCI files).
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%Y%m%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y",
    "%m/%d/%y %H:%M",
    "%d/%m/%y %H:%M",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
)
_ISO = "ISO 8601"
_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}
_DUCKDB_SUFFIXES = {".duckdb", ".db", ".ddb"}
_SAMPLE_ROWS = 2_000
_MONEY_SIGNS = r"[£$€\s]"  # taken out of numbers such as "£ 12.50" before a second try


@dataclass
class SourceInfo:
    """Where the data came from, for error messages and the run record."""

    name: str
    kind: str  # csv, whitespace, parquet, excel, duckdb, frame
    path: str | None = None
    sha256: str | None = None
    encoding: str | None = None
    header_lines: int = 1
    table: str | None = None
    malformed_lines: int | None = None  # lines that could not be split into the header's fields
    malformed_examples: list[int] | None = None  # their first few line numbers in the file
    files: int | None = None  # a folder or glob: how many files it stood for
    #: a folder or glob: each file (named from the folder given) and the number of its first row
    #: (rows are numbered across the files, in path order)
    parts: list[tuple[str, int]] | None = field(default=None, repr=False)
    label: str | None = field(default=None, repr=False)  # a folder or glob named from the folder's own name on

    def where(self, source_row: int | None = None, column: str | None = None) -> str:
        """Human description of a place in the input: file, column, row."""
        parts = [self.name]
        if source_row is not None and self.parts:
            import bisect

            at = max(0, bisect.bisect_right([start for _, start in self.parts], source_row) - 1)
            part, start = self.parts[at]
            parts = [f"{self.name} ({part})"]
            source_row = source_row - start + 1
        if column:
            parts.append(f"column {column!r}")
        if source_row is not None:
            if self.kind in ("csv", "whitespace"):
                parts.append(f"row {source_row} (line {source_row + self.header_lines})")
            else:
                parts.append(f"row {source_row}")
        return ", ".join(parts)

    def as_dict(self, paths: bool = True) -> dict:
        """The source's facts that are known (None fields left out), for the schema report.

        With ``paths=False`` (what files written for others keep) the input is named
        by its file name alone: no folder of the user's machine.
        """
        facts = {k: v for k, v in self.__dict__.items() if v is not None and k not in ("parts", "label")}
        if not paths:
            facts.pop("path", None)
            if self.kind != "frame":
                facts["name"] = self.label or Path(self.name).name
        return facts


@dataclass
class LoadResult:
    """Canonical transactions in a DuckDB connection, with where they came from."""

    con: duckdb.DuckDBPyConnection
    table: str
    mapping: ColumnMapping
    source: SourceInfo
    date_format: str
    rows: int
    schema_notes: list[str] = field(default_factory=list)

    @property
    def relation(self) -> duckdb.DuckDBPyRelation:
        """The canonical transactions table as a DuckDB relation."""
        return self.con.table(self.table)

    def schema_report(self, paths: bool = True) -> dict:
        """What was detected: layout, mapping, date format, rows (``paths=False``: the file's name only)."""
        return {
            "source": self.source.as_dict(paths),
            **self.mapping.as_dict(),
            "date_format": self.date_format,
            "rows": self.rows,
            "notes": list(self.schema_notes),
        }


def load(
    data: Any,
    *,
    mapping: Sequence[str] | dict[str, str] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    encoding: str = "utf-8",
    sheet: str | int | None = None,
    table: str | None = None,
    date_format: str | None = None,
) -> LoadResult:
    """Read ``data`` into canonical transactions.

    Parameters
    ----------
    data
        A path (CSV/``.gz``, Parquet, ``.xlsx``, DuckDB file with ``table``) or a
        pandas, Polars, DuckDB or PySpark frame.
    mapping
        Overrides such as ``["order_date=Date"]`` or ``{"order_date": "Date"}``.
    con
        DuckDB connection to hold the result (a new in-memory one by default).
    encoding
        Text encoding of CSV input (``utf-8`` by default; e.g. ``latin-1``).
    sheet
        Excel sheet name or index (first sheet by default).
    table
        Table to read from a DuckDB database file.
    date_format
        A ``strptime`` format for the date column; detected when omitted.
    """
    # no terminal progress bar from inside a library: the CLI shows its own
    if con is None:
        con = connect()
    raw, source = _read_raw(data, con, encoding=encoding, sheet=sheet, table=table)
    columns = [c for c in raw.columns if c != "source_row"]
    colmap = resolve_mapping(columns, mapping, source=source.name)
    types = dict(zip(raw.columns, (str(t) for t in raw.dtypes), strict=True))
    # The canonical table is a view over the source: the parse runs as part of
    # the first query that reads it (cleaning materialises its result once), so
    # the wide text columns are copied once, not twice, and a Parquet source
    # is streamed rather than loaded.
    con.register(_RAW, raw)
    rows = fetch_one(con, f"SELECT count(*) FROM {_RAW}")[0]
    if rows == 0:
        raise InputError(f"{source.name}: has a header but no data rows")
    if date_format is not None:
        _check_date_format(con, date_format)
    fmt = date_format or _detect_date_format(con, colmap, types, source)
    run(con, f"CREATE OR REPLACE TEMP VIEW {TABLE} AS {canonical_sql(colmap, types, fmt, _RAW)}")
    result = LoadResult(
        con=con, table=TABLE, mapping=colmap, source=source, date_format=fmt, rows=rows
    )
    if source.malformed_lines:
        result.schema_notes.append(
            f"{source.malformed_lines:,} malformed lines (not the header's number of fields, or a stray quote) "
            f"are counted as unparseable, e.g. line {', '.join(map(str, source.malformed_examples))}")
    return result


# --------------------------------------------------------------------------- reading


def _read_raw(
    data: Any, con: duckdb.DuckDBPyConnection, *, encoding: str, sheet, table
) -> tuple[duckdb.DuckDBPyRelation, SourceInfo]:
    if isinstance(data, str | os.PathLike):
        from customerlens.io.sources import file_set, local_path

        files = file_set(data)
        if files is not None:
            return _read_file_set(files, con, encoding=encoding)
        return _read_path(local_path(data), con, encoding=encoding, sheet=sheet, table=table)
    return _read_frame(data, con)


def _read_file_set(files, con: duckdb.DuckDBPyConnection, *, encoding: str):
    """The lines of every file of a folder or glob (:class:`customerlens.io.sources.FileSet`), numbered across them.

    Hive partition folders (``month=2011-01``) become columns. Parquet files are streamed by DuckDB (rows counted
    from the files' metadata); CSV files are read one by one as a single file is, and put together.
    """
    names = [str(f.relative_to(files.base)) for f in files.files]
    source = SourceInfo(name=files.name, kind=files.kind, path=str(files.base.resolve()),
                        header_lines=0 if files.kind == "parquet" else 1, files=len(files.files),
                        label=files.label)
    hive = any(files.partitions(f) for f in files.files)
    try:
        if files.kind == "parquet":
            listed = "[" + ", ".join(literal(str(f)) for f in files.files) + "]"
            counts = dict(fetch_all(con, f"SELECT file_name, num_rows FROM parquet_file_metadata({listed})"))
            starts, total = [], 0
            for f in files.files:
                starts.append(total + 1)
                total += int(counts.get(str(f), 0))
            source.parts = list(zip(names, starts, strict=True))
            con.execute("CREATE OR REPLACE TEMP TABLE _cl_file_starts (filename VARCHAR, start BIGINT)")
            con.executemany("INSERT INTO _cl_file_starts VALUES (?, ?)",
                            [(str(f), s) for f, s in zip(files.files, starts, strict=True)])
            run(con, f"CREATE OR REPLACE TEMP VIEW _cl_parquet_files AS SELECT * FROM read_parquet({listed}, "
                     f"hive_partitioning = {str(hive).lower()}, union_by_name = true, filename = true, "
                     "file_row_number = true)")
            cols = ", ".join(f"r.{_q(c)}" for c in con.table("_cl_parquet_files").columns
                             if c not in ("filename", "file_row_number"))
            return con.sql(f"SELECT s.start + r.file_row_number AS source_row, {cols} FROM _cl_parquet_files r "
                           "JOIN _cl_file_starts s USING (filename)"), source
    except duckdb.Error as exc:
        raise InputError(f"{files.name}: cannot be read as Parquet: {_first_line(exc)}") from None
    import pyarrow as pa

    tables, starts, total, malformed = [], [], 0, []
    for f in files.files:
        rel, one = _read_path(f, con, encoding=encoding, sheet=None, table=None)
        table = rel.to_arrow_table()
        starts.append(total + 1)
        table = table.set_column(0, "source_row", pa.compute.add(table.column(0), total))
        for key, value in files.partitions(f).items():
            if key not in table.column_names:
                table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
        malformed += [total + row for row in one.malformed_examples or []]
        source.malformed_lines = (source.malformed_lines or 0) + (one.malformed_lines or 0) or None
        total += table.num_rows
        tables.append(table)
    source.parts = list(zip(names, starts, strict=True))
    source.malformed_examples = malformed[:5] or None
    source.encoding = encoding
    return con.from_arrow(pa.concat_tables(tables, promote_options="permissive")), source


def _numbered(rel: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    # An empty OVER () numbers rows in scan order; scans keep insertion order.
    return rel.project("row_number() OVER () AS source_row, *")


def _read_frame(data: Any, con: duckdb.DuckDBPyConnection):
    if isinstance(data, duckdb.DuckDBPyRelation):
        rel = data
        try:
            rel.columns  # noqa: B018 - touch it: a relation of a closed connection fails here
            arrow = rel.to_arrow_table()
        except duckdb.Error as exc:
            raise InputError(f"DuckDB relation cannot be read: {exc}") from None
        kind_name = "DuckDB relation"
    else:
        import narwhals as nw

        try:
            frame = nw.from_native(data)
        except TypeError:
            raise InputError(
                f"cannot read a {type(data).__name__}: pass a file path or a pandas, Polars, "
                "DuckDB or PySpark frame"
            ) from None
        if isinstance(frame, nw.LazyFrame):
            frame = frame.collect(backend="pyarrow")
        arrow = frame.to_arrow()
        kind_name = f"{type(data).__module__.split('.')[0]} frame"
    return _numbered_arrow(con, arrow), SourceInfo(name=kind_name, kind="frame", header_lines=0)


def _read_path(path: Path, con, *, encoding: str, sheet, table):
    name = str(path)
    if not path.exists():
        raise InputError(f"{name}: no such file")
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not a file; pass one transactions file")
    if path.stat().st_size == 0:
        raise InputError(f"{name}: the file is empty")
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] in (".gz", ".gzip")
    kind_suffix = suffixes[-2] if compressed and len(suffixes) > 1 else (suffixes[-1] if suffixes else "")
    source = SourceInfo(name=name, kind="csv", path=str(path.resolve()), sha256=sha256_file(path))
    try:
        if kind_suffix in PARQUET_SUFFIXES:
            source.kind = "parquet"
            source.header_lines = 0
            rel = con.read_parquet(str(path), file_row_number=True)
            cols = ", ".join(_q(c) for c in rel.columns if c != "file_row_number")
            return rel.project(f"file_row_number + 1 AS source_row, {cols}"), source
        if kind_suffix in _EXCEL_SUFFIXES:
            source.kind = "excel"
            return _read_excel(path, con, sheet, source), source
        if kind_suffix in _DUCKDB_SUFFIXES:
            source.kind = "duckdb"
            source.header_lines = 0
            return _read_duckdb(path, con, table, source), source
        if kind_suffix not in TEXT_SUFFIXES and kind_suffix != "":
            log.info("unknown suffix %s: reading %s as delimited text", kind_suffix, name)
        source.encoding = encoding
        return _read_text(path, con, encoding, compressed, source), source
    except duckdb.Error as exc:
        raise InputError(f"{name}: cannot be read as {source.kind}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _head_text(path: Path, compressed: bool, encoding: str, nbytes: int = 65536) -> list[str]:
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(nbytes)
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot be read: {exc}") from None
    if head.startswith(b"PK\x03\x04"):
        raise InputError(f"{path}: looks like an Excel/zip file; give it an .xlsx suffix")
    if head.startswith(b"PAR1"):
        raise InputError(f"{path}: looks like a Parquet file; give it a .parquet suffix")
    if b"\x00" in head and not encoding.lower().startswith("utf-16"):
        raise InputError(f"{path}: is a binary file, not delimited text")
    try:
        text = head.decode(encoding)
    except UnicodeDecodeError as exc:
        # The cut at nbytes may split a multi-byte character: only complain
        # when the bad byte is not in the last few bytes of the sample.
        if exc.start < len(head) - 4 or len(head) < nbytes:
            line = head[: exc.start].count(b"\n") + 1
            raise InputError(
                f"{path}: line {line} is not valid {encoding} (byte 0x{head[exc.start]:02x}); "
                "pass the file's encoding, e.g. --encoding latin-1 or --encoding cp1252"
            ) from None
        text = head[: exc.start].decode(encoding)
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(head) == nbytes and len(lines) > 1:
        lines = lines[:-1]  # possibly cut short
    if not lines:
        raise InputError(f"{path}: the file is empty")
    return lines


def _looks_like_data(fields: list[str]) -> bool:
    def numeric(v: str) -> bool:
        try:
            float(v.replace("$", ""))
            return True
        except ValueError:
            return False

    return all(numeric(f) for f in fields if f)


def _read_text(path: Path, con, encoding: str, compressed: bool, source: SourceInfo):
    lines = _head_text(path, compressed, encoding)
    first = lines[0]
    delim = next((d for d in (",", ";", "\t", "|") if d in first), None)
    if delim is None and len(first.split()) > 1:
        return _read_whitespace(path, con, encoding, lines, source)
    fields = [f.strip().strip('"') for f in first.split(delim)] if delim else [first.strip()]
    header = not _looks_like_data(fields)
    source.header_lines = 1 if header else 0
    if not header:
        raise SchemaError(
            f"{path}: the first line looks like data, not column names ({first[:80]!r}); "
            "add a header line naming the columns"
        )
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = _split_header(first, delim)
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delim or ","),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        message = _first_line(exc)
        if "UTF8" in message or isinstance(exc, UnicodeDecodeError):
            raise _not_text(path, encoding, message) from None
        if "CSV parse error" in message:  # ragged lines or a stray quote: read them as unparseable rows
            return _read_text_tolerant(path, con, encoding, compressed, delim, names, source)
        raise InputError(f"{path}: cannot be read as delimited text: {message}") from None
    return _numbered_arrow(con, table)


def _read_text_tolerant(path: Path, con, encoding: str, compressed: bool, delim: str | None, names: list[str],
                        source: SourceInfo):
    """Read a CSV that has malformed lines, line by line.

    A line whose fields do not match the header (3 or 12 fields in an 8-field file,
    a stray quote) becomes an empty row at its own row number, which the cleaning
    counts as ``unparseable``; the rest is read as usual.

    Each line is parsed on its own, so a stray quote cannot swallow the lines after it (the price:
    a quoted value spanning lines is malformed here). Refuses a file in which most lines are malformed.
    """
    import csv

    import pyarrow as pa

    width = len(names)
    columns: list[list[str]] = [[] for _ in range(width)]
    rows: list[int] = []
    bad: list[int] = []
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding=encoding, newline="") as fh:
            next(fh, None)  # the header
            for number, line in enumerate(fh, start=1):
                text = line.rstrip("\r\n")
                if not text.strip():
                    continue
                try:
                    fields = next(csv.reader([text], delimiter=delim or ",", strict=True))
                except csv.Error:
                    fields = None
                if fields is None or len(fields) != width:
                    bad.append(number)
                    fields = [""] * width
                for column, value in zip(columns, fields, strict=True):
                    column.append(value)
                rows.append(number)
    except UnicodeDecodeError as exc:
        raise _not_text(path, encoding, _first_line(exc)) from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot be read: {_first_line(exc)}") from None
    lines = [n + source.header_lines for n in bad[:5]]
    example = ", ".join(map(str, lines))
    if len(bad) * 2 > len(rows):
        raise InputError(f"{path}: most lines are malformed ({len(bad):,} of {len(rows):,} do not have the "
                         f"header's {width} fields), e.g. line {example}; check the delimiter and quoting")
    source.malformed_lines = len(bad)
    source.malformed_examples = lines
    table = pa.table({name: pa.array(column, type=pa.string()) for name, column in zip(names, columns, strict=True)})
    return con.from_arrow(table.add_column(0, "source_row", pa.array(rows, type=pa.int64())))


def _not_text(path: Path, encoding: str, message: str) -> InputError:
    """The error for a file that is not text in ``encoding``, with the encodings to try."""
    return InputError(f"{path}: is not valid {encoding} text ({message}); pass the file's encoding, "
                      "e.g. --encoding latin-1 or --encoding cp1252")


def _split_header(first: str, delim: str | None) -> list[str]:
    import csv

    return next(csv.reader([first], delimiter=delim or ","))


def _numbered_arrow(con, table) -> duckdb.DuckDBPyRelation:
    import numpy as np
    import pyarrow as pa

    rows = pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64))
    return con.from_arrow(table.add_column(0, "source_row", rows))


def _arrow_from_pandas(frame):
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def _read_whitespace(path: Path, con, encoding: str, lines: list[str], source: SourceInfo):
    import pandas as pd

    first = lines[0].split()
    header = not _looks_like_data(first)
    names = None
    if not header:
        names = HEADERLESS_NAMES.get(len(first))
        if names is None:
            raise SchemaError(
                f"{path}: whitespace-separated with no header and {len(first)} columns; "
                "add a header line naming the columns"
            )
    source.kind = "whitespace"
    source.header_lines = 1 if header else 0
    try:
        frame = pd.read_csv(
            path,
            sep=r"\s+",
            header=0 if header else None,
            names=list(names) if names else None,
            dtype=str,
            keep_default_na=False,
            encoding=encoding,
            compression="infer",
        )
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot be read as whitespace-separated text: {exc}") from None
    return _numbered_arrow(con, _arrow_from_pandas(frame))


def _read_excel(path: Path, con, sheet, source: SourceInfo):
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
        chosen = reader.sheet_names[0] if sheet is None else sheet
        table = reader.load_sheet(chosen).to_arrow()
    except Exception as exc:  # fastexcel raises its own error types
        raise InputError(f"{path}: cannot be read as Excel: {_first_line(exc)}") from None
    source.table = str(chosen)
    return _numbered_arrow(con, table)


def _read_duckdb(path: Path, con, table, source: SourceInfo):
    run(con, f"ATTACH {literal(path)} AS _cl_src (READ_ONLY)")
    tables = [r[0] for r in fetch_all(
        con, "SELECT table_name FROM information_schema.tables WHERE table_catalog = '_cl_src'"
    )]
    if table is None:
        if len(tables) != 1:
            raise InputError(
                f"{path}: name the table to read with --table; tables found: {', '.join(tables)}"
            )
        table = tables[0]
    if table not in tables:
        raise InputError(f"{path}: no table {table!r}; tables found: {', '.join(tables)}")
    source.table = table
    return _numbered(con.sql(f'SELECT * FROM _cl_src.main."{table}"'))


# --------------------------------------------------------------------------- parsing


def _is_text(dtype: str) -> bool:
    return dtype.upper() in ("VARCHAR", "STRING", "TEXT") or dtype.upper().startswith("VARCHAR")


@dataclass(frozen=True)
class Dialect:
    """Where DuckDB's SQL and Spark SQL differ, for :func:`canonical_sql`.

    With it one statement of the canonical columns serves both engines.
    """

    name: str
    timestamp: str  # a timestamp without time zone
    quote: Any  # identifier quoting

    def literal(self, text: str) -> str:
        """A string literal (Spark SQL reads backslash escapes inside quotes, DuckDB does not)."""
        if self.name == "spark":
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "''") + "'"

    def parse_date(self, expr: str, fmt: str) -> str:
        """Text to timestamp with a ``strptime`` format; null when it does not parse."""
        if self.name == "spark":
            return f"CAST(try_to_timestamp({expr}, {self.literal(java_date_pattern(fmt))}) AS {self.timestamp})"
        return f"try_strptime({expr}, {self.literal(fmt)})"

    def trimmed(self, expr: str) -> str:
        """``expr`` without the spaces around it (as ``trim``), null when nothing is left."""
        return f"NULLIF({self.stripped(expr)}, '')"

    def stripped(self, expr: str) -> str:
        """``expr`` without the spaces around it: ``trim``, run only on the values that may need it.

        DuckDB's ``trim`` writes a new string for every value; most values have nothing to trim, so
        it runs only on those that may: a space at either end, or any character beyond ASCII (``trim``
        also takes Unicode's other spaces, U+00A0 and the like). The same values: at 10M lines a text
        column's parse took 0.30 s instead of 0.46-0.49 s, and Online Retail's dates 0.03 s instead of 0.07 s.
        """
        if self.name == "spark":
            return f"trim({expr})"
        return (f"CASE WHEN starts_with({expr}, ' ') OR ends_with({expr}, ' ') OR strlen({expr}) <> length({expr}) "
                f"THEN trim({expr}) ELSE {expr} END")

    def replace_all(self, expr: str, pattern: str, replacement: str) -> str:
        """Replace every match of the regular expression ``pattern`` in ``expr`` (DuckDB needs the ``'g'`` flag)."""
        flags = "" if self.name == "spark" else ", 'g'"
        return f"regexp_replace({expr}, {self.literal(pattern)}, {self.literal(replacement)}{flags})"

    def plus_seconds(self, expr: str, seconds: str) -> str:
        """A timestamp plus a number of seconds (null seconds: the timestamp itself)."""
        if self.name == "spark":
            return f"({expr} + make_dt_interval(0, 0, 0, CAST(coalesce({seconds}, 0) AS DECIMAL(8, 0))))"
        return f"({expr} + to_seconds(CAST(coalesce({seconds}, 0) AS BIGINT)))"

    def day_text(self, expr: str) -> str:
        """A timestamp's date as ``YYYY-MM-DD`` text."""
        if self.name == "spark":
            return f"date_format({expr}, 'yyyy-MM-dd')"
        return f"strftime({expr}, '%Y-%m-%d')"


DUCKDB = Dialect("duckdb", "TIMESTAMP", _q)
SPARK = Dialect("spark", "TIMESTAMP_NTZ", lambda name: "`" + str(name).replace("`", "``") + "`")

#: strptime codes of DATE_FORMATS in Java's (Spark's) date patterns
_JAVA_CODES = {"%Y": "yyyy", "%y": "yy", "%m": "M", "%d": "d", "%H": "H", "%I": "h", "%M": "mm",
               "%S": "ss", "%f": "SSSSSS", "%p": "a", "%b": "MMM", "%B": "MMMM", "%%": "%"}


def java_date_pattern(fmt: str) -> str:
    """A ``strptime`` format as a Java date pattern (Spark's), e.g. ``%d/%m/%Y %H:%M`` -> ``d/M/yyyy H:mm``."""
    import re

    def piece(match: re.Match) -> str:
        code = match.group(0)
        if code.startswith("%"):
            if code not in _JAVA_CODES:
                raise InputError(f"--date-format {fmt!r}: {code} has no Spark equivalent")
            return _JAVA_CODES[code]
        return "'" + code + "'" if code.strip() and code.isalpha() else code

    return re.sub(r"%.|[A-Za-z]+|[^%A-Za-z]+", piece, fmt)


def _date_expr(col: str, dtype: str, fmt: str, dialect: Dialect = DUCKDB) -> str:
    up = dtype.upper()
    if up.startswith("TIMESTAMP") or up == "DATE":
        return f"CAST({col} AS {dialect.timestamp})"
    if not _is_text(dtype):  # numbers such as 19970101
        col = f"CAST(CAST({col} AS BIGINT) AS STRING)"
    if fmt == _ISO:
        return f"TRY_CAST({dialect.stripped(col)} AS {dialect.timestamp})"
    return dialect.parse_date(dialect.stripped(col), fmt)


def _date_only(dtype: str, fmt: str) -> bool:
    """Whether dates read this way carry no time of day (a DATE column, or a format without hours)."""
    up = dtype.upper()
    if up == "DATE":
        return True
    if up.startswith("TIMESTAMP") or fmt in ("native", _ISO):
        return False
    return "%H" not in fmt and "%I" not in fmt


def _seconds_of_day(col: str, dialect: Dialect) -> str:
    """Seconds since midnight of a time of day written ``16:31``, ``16:31:05`` or ``1631`` (null otherwise)."""
    text = f"trim(CAST({col} AS STRING))"
    clock = dialect.literal(r"^(\d{1,2}):(\d{2})(:(\d{2}))?")
    compact = dialect.literal(r"^(\d{1,2})(\d{2})$")

    def part(pattern: str, group: int) -> str:
        return f"CAST(NULLIF(regexp_extract({text}, {pattern}, {group}), '') AS INT)"

    return (f"coalesce({part(clock, 1)} * 3600 + {part(clock, 2)} * 60 + coalesce({part(clock, 4)}, 0), "
            f"{part(compact, 1)} * 3600 + {part(compact, 2)} * 60)")


def _check_date_format(con, date_format: str) -> None:
    """A strptime format DuckDB can use, or a clear error naming it (not DuckDB's traceback)."""
    try:
        fetch_all(con, "SELECT try_strptime('2024-01-31 10:00:00', ?)", [date_format])
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0].split("Error: ", 1)[-1]
        raise ConfigError(f"input.date_format {date_format!r} is not a strptime format ({first}); e.g. "
                          "'%d/%m/%Y %H:%M'", parameter="input.date_format") from None


def _detect_date_format(con, colmap: ColumnMapping, types: dict, source: SourceInfo) -> str:
    src = colmap.fields["order_date"]
    dtype = types[src]
    up = dtype.upper()
    if up.startswith("TIMESTAMP") or up == "DATE":
        return "native"
    col = _q(src)
    if not _is_text(dtype):
        col = f"CAST(CAST({col} AS BIGINT) AS VARCHAR)"
    sample = (
        f"SELECT trim({col}) AS v FROM _cl_raw WHERE {col} IS NOT NULL AND trim({col}) <> '' "
        f"LIMIT {_SAMPLE_ROWS}"
    )
    exprs = [f"count(try_strptime(v, '{fmt}'))" for fmt in DATE_FORMATS] + [
        "count(TRY_CAST(v AS TIMESTAMP))"
    ]
    counts = fetch_one(con, f"SELECT count(*), {', '.join(exprs)} FROM ({sample})")
    total, *rest = counts
    if total == 0:
        raise DataQualityError(f"{source.where(column=src)}: the date column is empty")
    # max keeps the first of equals: the preference order above, then any
    # other ISO 8601 form (a fixed format parses about twice as fast)
    best_n, best = max(zip(rest, (*DATE_FORMATS, _ISO), strict=True), key=lambda t: t[0])
    if best_n < 0.5 * total:
        example = fetch_one(
            con,
            f"SELECT source_row, {col} FROM _cl_raw WHERE {col} IS NOT NULL AND trim({col}) <> '' "
            f"AND TRY_CAST(trim({col}) AS TIMESTAMP) IS NULL ORDER BY source_row LIMIT 1",
        )
        row, value = example if example else (None, None)
        raise DataQualityError(
            f"{source.where(row, src)}: {value!r} is not a date, and only {best_n:,} of the "
            f"first {total:,} values read as dates; expected dates such as 2011-12-09 08:26 or "
            "12/09/2011; name the right column with --map order_date=COLUMN or give "
            "--date-format (strptime codes, e.g. '%d/%m/%Y')"
        )
    return best


def canonical_sql(colmap: ColumnMapping, types: dict, fmt: str, source: str, dialect: Dialect = DUCKDB) -> str:
    """SQL turning the source columns into canonical ones, in DuckDB's or Spark's dialect.

    Two steps: the inner query reads every source value once; the outer one
    derives what is missing (amount, unit price, order id) and names the
    fields that could not be read, from the parsed values.
    """
    f = colmap.fields
    _q = dialect.quote
    null_text = "CAST(NULL AS STRING)"

    def text(field_: str) -> str:
        if field_ not in f:
            return null_text
        col, dtype = _q(f[field_]), types[f[field_]]
        if _is_text(dtype):
            return dialect.trimmed(col)
        if dtype.upper() in ("DOUBLE", "FLOAT", "REAL") or dtype.upper().startswith("DECIMAL"):
            # ids stored as floats (17850.0) become '17850'
            return (
                f"CASE WHEN {col} = floor({col}) THEN CAST(CAST({col} AS BIGINT) AS STRING) "
                f"ELSE CAST({col} AS STRING) END"
            )
        return f"CAST({col} AS STRING)"

    def number(field_: str) -> str:
        if field_ not in f:
            return "CAST(NULL AS DOUBLE)"
        col, dtype = _q(f[field_]), types[f[field_]]
        if _is_text(dtype):
            # the regex (currency signs, spaces) only runs where the plain cast fails
            plain = dialect.stripped(col)
            stripped = dialect.replace_all(plain, _MONEY_SIGNS, "")
            return f"COALESCE(TRY_CAST({plain} AS DOUBLE), TRY_CAST({stripped} AS DOUBLE))"
        return f"CAST({col} AS DOUBLE)"

    def nonempty(field_: str) -> str:
        col, dtype = _q(f[field_]), types[f[field_]]
        if _is_text(dtype):
            return f"({dialect.trimmed(col)} IS NOT NULL)"
        return f"({col} IS NOT NULL)"

    customer = text("customer_id")
    if "customer_id" in f and _is_text(types[f["customer_id"]]):
        customer = dialect.replace_all(customer, "[.]0+$", "")  # '17850.0' -> '17850'
    date_src = f["order_date"]
    checked = [k for k in ("order_date", "quantity", "unit_price", "amount") if k in f]
    order_date = _date_expr(_q(date_src), types[date_src], fmt if fmt != "native" else _ISO, dialect)
    if colmap.time_of_day and _date_only(types[date_src], fmt):
        order_date = dialect.plus_seconds(order_date, _seconds_of_day(_q(colmap.time_of_day), dialect))
    inner = {
        "customer_id": customer,
        "_order": text("order_id"),
        "order_date": order_date,
        "product_id": text("product_id"),
        "product_name": text("product_name"),
        "_qty": number("quantity"),
        "_price": number("unit_price"),
        "_amount": number("amount"),
        "country": text("country"),
        "channel": text("channel"),
        "category": text("category"),
        **{f"_has_{k}": nonempty(k) for k in checked},
    }
    # no quantity: one unit per line, minus one for a negative amount (a
    # refund), so refunds are netted like returns instead of read as bad prices
    qty = "_qty" if "quantity" in f else "CASE WHEN _amount < 0 THEN -1.0 ELSE 1.0 END"
    price = "_price" if "unit_price" in f else f"_amount / NULLIF({qty}, 0)"
    amount = "_amount" if "amount" in f else f"({qty}) * ({price})"
    order = "_order" if "order_id" in f else f"customer_id || '@' || {dialect.day_text('order_date')}"
    parsed = {"order_date": "order_date", "quantity": "_qty", "unit_price": "_price", "amount": "_amount"}
    errors = ", ".join(
        f"CASE WHEN NOT _has_{k} THEN '{k} (empty)' WHEN {parsed[k]} IS NULL THEN '{k}' END"
        for k in checked
    )
    outer = {
        "customer_id": "customer_id",
        "order_id": order,
        "order_date": "order_date",
        "product_id": "product_id",
        "product_name": "product_name",
        "quantity": qty,
        "unit_price": price,
        "amount": amount,
        "country": "country",
        "channel": "channel",
        "category": "category",
        "parse_error": f"NULLIF(concat_ws(', ', {errors}), '')",
    }
    inner_sql = ",\n    ".join(f"{expr} AS {name}" for name, expr in inner.items())
    outer_sql = ",\n  ".join(f"{expr} AS {name}" for name, expr in outer.items())
    return (
        f"SELECT\n  source_row,\n  {outer_sql}\nFROM (\n  SELECT\n    source_row,\n    {inner_sql}\n"
        f"  FROM {source}\n)"
    )
