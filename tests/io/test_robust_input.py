"""Hostile and damaged input: one clear error or counted lines, never a traceback."""

from __future__ import annotations

import gzip
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import customerlens as cl
from customerlens.errors import ConfigError, CustomerLensError, InputError
from tests.conftest import TINY_CSV, cli

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def test_ragged_lines_and_a_stray_quote_are_counted_with_their_line_numbers(tmp_path):
    lines = TINY_CSV.splitlines()
    damaged = [*lines[:4], "1005,10003,CANDLE,3", *lines[4:8],
               '1006,10002,"BLUE BAG,1,2024-01-25 16:00:00,10.00,3.0,UK,a,b,c', *lines[8:]]
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(damaged) + "\n")
    result = cl.ingest(path)
    quality = result.cleaned.report
    assert quality.input_lines == 14 and quality.is_consistent()
    counts = {r.rule: r.lines for r in quality.rules}
    assert counts["unparseable"] == 2
    (tmp_path / "tiny.csv").write_text(TINY_CSV)
    reference = cl.ingest(tmp_path / "tiny.csv")
    assert quality.kept_lines == reference.cleaned.report.kept_lines  # the good lines are all kept
    excluded = result.cleaned.excluded.df()
    rows = sorted(excluded.loc[excluded["rule"] == "unparseable", "source_row"])
    assert [r + 1 for r in rows] == [5, 10]  # file lines 5 and 10 (line 1 is the header)
    assert "line 5, 10" in " ".join(result.loaded.schema_notes)


def test_a_file_mostly_malformed_is_refused_naming_its_first_bad_lines(tmp_path):
    path = tmp_path / "wrong_delimiter.csv"
    path.write_text(HEADER + "\n" + "\n".join("1;2;3" if i % 3 else "1,a,b,1,2024-01-01,1,1,UK"
                                              for i in range(30)) + "\n")
    with pytest.raises(InputError, match=r"most lines are malformed .* e\.g\. line 3, 4, 6"):
        cl.ingest(path)


def test_truncated_gzip_bad_date_format_and_out_inside_a_file_are_clear_errors(tmp_path):
    full = gzip.compress(TINY_CSV.encode() * 50)
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(full[: len(full) // 2])
    (tmp_path / "a_file").write_text("x")
    cases = {
        "truncated gzip": ((truncated,), "cut.csv.gz"),
        "bad --date-format": ((tmp_path / "t.csv", "--date-format", "%Q"), "--date-format '%Q' is not a strptime"),
        "--out inside a file": ((tmp_path / "t.csv", "--out", tmp_path / "a_file" / "out"), "a file stands"),
    }
    (tmp_path / "t.csv").write_text(TINY_CSV)
    for label, (args, expected) in cases.items():
        result = cli("run", *args, "--no-charts", "--no-report", *(["--out", tmp_path / "o"]
                                                                  if "--out" not in args else []))
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert result.returncode == 2 and len(lines) == 1 and expected in lines[0], (label, result.stderr)
    with pytest.raises(ConfigError) as caught:
        cl.ingest(tmp_path / "t.csv", cl.RunConfig.from_options(date_format="%Q"))
    assert caught.value.parameter == "input.date_format"


def test_implausible_dates_and_values_are_counted_not_kept(tmp_path):
    rows = ["a,2024-01-01,2,3.0,P1", "b,9999-12-31,1,2.0,P1", "c,0001-01-01,1,2.0,P2", "d,2099-06-01,1,2.0,P2",
            "e,2024-01-02,1e308,2.0,P3", "f,2024-01-03,2,nan,P3", "g,2024-01-04,2,inf,P1", "h,2024-01-05,3,4.0,P2"]
    path = tmp_path / "odd.csv"
    path.write_text("CustomerID,InvoiceDate,Quantity,UnitPrice,StockCode\n" + "\n".join(rows) + "\n")
    quality = cl.ingest(path).cleaned.report
    counts = {r.rule: r.lines for r in quality.rules}
    assert counts["implausible_date"] == 3 and counts["implausible_value"] == 3 and quality.kept_lines == 2
    payload = json.dumps(quality.as_dict())
    assert "Infinity" not in payload and "NaN" not in payload
    assert all(math.isfinite(r.revenue) for r in quality.rules) and math.isfinite(quality.input_revenue)
    # a run on it: the snapshot comes from the plausible lines, and no figure is inf or nan
    out = tmp_path / "out"
    analysis = cl.run(path, out, charts=False, report=False, top_n=0)
    assert analysis.as_of.year == 2024
    for name in ("customer_features.csv", "segment_profiles.csv"):
        text = (out / name).read_text()
        assert "inf" not in text and "nan" not in text.lower(), name
    analysis.close()
    switched = cl.ingest(path, cl.RunConfig.from_options(cleaning=cl.CleaningConfig().without("implausible_date")))
    assert {r.rule: r.lines for r in switched.cleaned.report.rules}["implausible_date"] == 0


_field = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x00"), max_size=12),
    st.sampled_from(["1e308", "-1e308", "nan", "inf", "-0", "9999-12-31", "0001-01-01", '"', '""', "=1+1", ""]),
    st.integers(-10**12, 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(_field, min_size=0, max_size=11), min_size=1, max_size=25))
def test_random_rows_never_end_in_a_traceback(tmp_path, rows):
    """Random ragged, quoted and extreme rows: a clear CustomerLensError or every line accounted for."""
    path = tmp_path / "random.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER + "\n")
        for row in rows:
            fh.write(",".join(row) + "\n")
    try:
        result = cl.ingest(path)
    except CustomerLensError:
        return
    quality = result.cleaned.report
    assert quality.is_consistent() and quality.input_lines == result.loaded.rows
    assert math.isfinite(quality.input_revenue) and math.isfinite(quality.kept_revenue)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400))
def test_random_bytes_never_end_in_a_traceback(tmp_path, data):
    path = tmp_path / "bytes.csv"
    path.write_bytes(data)
    try:
        result = cl.ingest(path)
    except CustomerLensError:
        return
    assert result.cleaned.report.is_consistent()
