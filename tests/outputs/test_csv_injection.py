"""Formula injection (OWASP "CSV injection"): no CSV the tool writes starts a text cell with a formula."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

import customerlens as cl
from customerlens.io import demo
from customerlens.outputs import files

PAYLOADS = ['=HYPERLINK("http://x","click")', "+cmd|' /C calc'!A0", "@SUM(1)", "-1+1", "\tTAB", "\rCR"]


def test_neutralise_formulas_prefixes_text_and_keeps_numbers():
    frame = pd.DataFrame({"text": [*PAYLOADS, "plain", None], "number": [-1.5, 2, 3, 4, 5, 6, 7, -8],
                          "cat": pd.Categorical(["=x", "y", "y", "y", "y", "y", "y", "y"])})
    safe = files.neutralise_formulas(frame)
    assert list(safe["text"][:6]) == ["'" + p for p in PAYLOADS]
    assert safe["text"][6] == "plain" and pd.isna(safe["text"][7])
    assert safe["number"].tolist() == frame["number"].tolist() and safe["cat"][0] == "'=x"
    assert frame["text"][0] == PAYLOADS[0]  # the caller's frame is untouched
    assert files.neutralise_formulas(frame[["number"]]) is not None


def test_both_csv_writers_neutralise_the_same_bytes(tmp_path, monkeypatch):
    frame = pd.DataFrame({"id": PAYLOADS + ["ok"], "value": [-1.0, 2.5, 3, 4, 5, 6, 7]})
    pandas_path = files.write_csv_atomic(frame, tmp_path / "pandas.csv")
    monkeypatch.setattr(files, "FAST_CSV_ROWS", 2)  # the DuckDB writer of large tables
    duckdb_path = files.write_csv_atomic(frame, tmp_path / "duckdb.csv")
    assert pandas_path.read_bytes() == duckdb_path.read_bytes()
    back = pd.read_csv(pandas_path)
    assert back["value"].dtype.kind == "f" and back["value"].iloc[0] == -1.0  # numbers stay numbers


def _hostile_file(tmp_path: Path) -> Path:
    """The demo shop with hostile customer ids and product names (no carriage return: a line break in a file)."""
    path, _ = demo.write(demo.generate(300, seed=5), tmp_path / "demo.csv")
    lines = pd.read_csv(path, dtype=str, keep_default_na=False)
    customers = sorted(set(lines["CustomerID"]) - {""})
    hostile_ids = {c: p + str(i) for i, (c, p) in enumerate(zip(customers, PAYLOADS[:-1] * 60, strict=False))}
    lines["CustomerID"] = lines["CustomerID"].map(lambda c: hostile_ids.get(c, c))
    codes = lines["StockCode"].value_counts().index[:30]
    names = {code: PAYLOADS[i % 5] + f" product {i}" for i, code in enumerate(codes)}
    lines["Description"] = [names.get(code, d) for code, d in zip(lines["StockCode"], lines["Description"],
                                                                    strict=True)]
    out = tmp_path / "hostile.csv"
    lines.to_csv(out, index=False)
    return out


def _cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


@pytest.mark.slow  # a whole run: in make test, not test-fast
def test_no_csv_of_a_run_starts_a_cell_with_a_formula(tmp_path):
    out = tmp_path / "out"
    cl.run(_hostile_file(tmp_path), out, top_n=5, charts=False, report=False).close()
    written = sorted(out.rglob("*.csv"))
    names = {p.relative_to(out).as_posix() for p in written}
    assert {"segments.csv", "customer_features.csv", "recommendations.csv", "value.csv", "top_products.csv",
            "action_plan.csv"} <= names and any(n.startswith("targets/") for n in names)
    seen_quoted = 0
    for path in written:
        for cell in _cells(path):
            assert not cell.startswith(files.FORMULA_STARTS) or _is_number(cell), (path.name, cell)
            seen_quoted += cell.startswith(("'=", "'+", "'@", "'-1+1", "'\t", "'\r"))
    assert seen_quoted > 100  # the hostile ids and names are there, neutralised
    segments = pd.read_csv(out / "segments.csv", dtype={"customer_id": str})
    assert "'" + PAYLOADS[0] + "0" in set(segments["customer_id"])
    value = pd.read_csv(out / "value.csv")
    assert value["clv_12m"].dtype.kind == "f"  # numeric columns stay numeric


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_row_writer_cells_are_neutralised_too():
    """The API's targets.csv writes rows one by one: the same rule per cell, numbers untouched."""
    assert [files.formula_safe_cell(v) for v in ["=1+1", "ok", -3.5, None, "@x"]] == ["'=1+1", "ok", -3.5, None, "'@x"]
