import gzip

import duckdb
import pandas as pd
import polars as pl
import pytest

from customerlens.core.db import fetch_all
from customerlens.errors import DataQualityError, InputError, SchemaError
from customerlens.io.load import load
from tests.conftest import TINY_CSV


def rows(result, sql="SELECT * FROM {t} ORDER BY source_row"):
    return result.relation.query("t", sql.format(t="t")).df()


def test_csv_is_parsed_into_canonical_columns(tiny_csv):
    result = load(tiny_csv)
    assert result.mapping.layout == "UCI Online Retail"
    assert result.rows == 12
    frame = rows(result)
    assert list(frame["source_row"]) == list(range(1, 13))
    first = frame.iloc[0]
    assert first["customer_id"] == "1"  # '1.0' float ids become '1'
    assert first["order_id"] == "1001"
    assert str(first["order_date"]) == "2024-01-01 10:00:00"
    assert first["quantity"] == 2 and first["unit_price"] == 5.0 and first["amount"] == 10.0
    assert pd.isna(frame.iloc[6]["customer_id"])  # empty customer stays missing
    assert frame["parse_error"].isna().all()
    assert result.source.sha256 and len(result.source.sha256) == 64


def test_input_file_is_not_modified(tiny_csv):
    before = tiny_csv.read_bytes()
    load(tiny_csv)
    assert tiny_csv.read_bytes() == before


def test_gzip_semicolon_and_day_first_dates(tmp_path):
    text = "Kunde;Datum;Betrag\nk1;13/01/2024;10.5\nk2;02/02/2024;3\nk1;05/02/2024;1\n"
    path = tmp_path / "bank.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(text)
    result = load(path, mapping=["customer_id=Kunde", "order_date=Datum", "amount=Betrag"])
    frame = rows(result)
    assert result.date_format == "%d/%m/%Y"
    assert [str(d.date()) for d in frame["order_date"]] == ["2024-01-13", "2024-02-02", "2024-02-05"]
    assert list(frame["amount"]) == [10.5, 3.0, 1.0]
    assert list(frame["order_id"]) == ["k1@2024-01-13", "k2@2024-02-02", "k1@2024-02-05"]


def test_unparseable_values_are_flagged_with_their_field(tmp_path):
    path = tmp_path / "dirty.csv"
    path.write_text(
        "customer_id,order_date,amount\n"
        "a,2024-01-01,1\nb,2024-01-02,oops\nc,not a date,3\nd,2024-01-04,4\ne,,5\n"
    )
    frame = rows(load(path))
    assert list(frame["parse_error"].fillna("")) == ["", "amount", "order_date", "", "order_date (empty)"]


def test_whitespace_headerless_cdnow_sample(cdnow_sample):
    result = load(cdnow_sample)
    assert result.mapping.layout == "CDNOW sample (headerless)"
    assert result.rows == 6919
    (customers, total), = fetch_all(result.con, f"SELECT count(DISTINCT customer_id), round(sum(amount), 2) FROM {result.table}")
    assert customers == 2357
    assert total == pytest.approx(244091.94)


def test_cdnow_master_totals(cdnow_master):
    result = load(cdnow_master)
    (n, customers, total), = fetch_all(
        result.con, f"SELECT count(*), count(DISTINCT customer_id), round(sum(amount), 2) FROM {result.table}"
    )
    assert (n, customers) == (69659, 23570)
    assert total == pytest.approx(2500315.63)


def test_parquet_excel_and_duckdb_inputs(tmp_path, tiny_csv):
    expected = rows(load(tiny_csv)).drop(columns=["source_row"])
    raw = pd.read_csv(tiny_csv, dtype=str)
    pq_path = tmp_path / "tiny.parquet"
    raw.to_parquet(pq_path)
    xlsx_path = tmp_path / "tiny.xlsx"
    raw.to_excel(xlsx_path, index=False, engine="xlsxwriter")
    db_path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(db_path))
    con.register("raw", raw)
    con.execute("CREATE TABLE sales AS SELECT * FROM raw").fetchall()
    con.close()
    for path, kwargs in [(pq_path, {}), (xlsx_path, {}), (db_path, {"table": "sales"})]:
        got = rows(load(path, **kwargs)).drop(columns=["source_row"])
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_typed_parquet_columns_are_used_as_they_are(tmp_path, tiny_csv):
    raw = pd.read_csv(tiny_csv, parse_dates=["InvoiceDate"])
    path = tmp_path / "typed.parquet"
    raw.to_parquet(path)
    result = load(path)
    assert result.date_format == "native"
    frame = rows(result)
    assert frame.loc[0, "customer_id"] == "1"
    assert frame["quantity"].tolist()[:3] == [2, 1, 4]


def test_text_is_trimmed_as_duckdbs_trim_does():
    """The parse trims only the values that may need it; every value comes out as NULLIF(trim(v), '') would."""
    from customerlens.io.load import DUCKDB

    spaces = [" ", "\u00a0", "\u2007", "\u202f", "\u3000", "\u1680", "\t"]  # a tab is not trimmed
    values = ["", " ", "   ", "abc", " abc", "abc ", " a b ", "caf\u00e9", " caf\u00e9 ", "\u00e9", None]
    values += [f"{space}x{space}" for space in spaces] + [f"x{space}" for space in spaces] + [f"{space}" for space in spaces]
    con = duckdb.connect()
    con.execute("CREATE TABLE v (x VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?)", [[value] for value in values])
    pairs = fetch_all(con, f"SELECT x, {DUCKDB.trimmed('x')}, NULLIF(trim(x), '') FROM v")
    assert [got for _, got, _ in pairs] == [want for _, _, want in pairs]
    pairs = fetch_all(con, f"SELECT x, {DUCKDB.stripped('x')}, trim(x) FROM v")
    assert [got for _, got, _ in pairs] == [want for _, _, want in pairs]
    assert {got for _, got, _ in pairs} >= {"abc", "a b", "caf\u00e9", "x", "\tx\t", None}


@pytest.mark.parametrize("kind", ["pandas", "polars", "duckdb"])
def test_frames_are_accepted(tiny_csv, kind):
    raw = pd.read_csv(tiny_csv, dtype=str)
    frame = {"pandas": raw, "polars": pl.from_pandas(raw), "duckdb": duckdb.from_df(raw)}[kind]
    result = load(frame)
    assert result.rows == 12
    assert rows(result)["customer_id"].tolist()[:2] == ["1", "1"]


# ---------------------------------------------------------------- bad input


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match="empty"):
        load(path)


def test_header_only(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("CustomerID,InvoiceDate,Amount\n")
    with pytest.raises(InputError, match="no data rows"):
        load(path)


def test_no_customer_column(tmp_path):
    path = tmp_path / "nocust.csv"
    path.write_text("InvoiceNo,InvoiceDate,Amount\n1,2024-01-01,3\n")
    with pytest.raises(SchemaError, match="customer_id.*Columns found: InvoiceNo, InvoiceDate, Amount"):
        load(path)


def test_garbage_dates_name_file_column_and_row(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_text("CustomerID,InvoiceDate,Amount\na,hello,1\nb,world,2\nc,2024-01-01,3\n")
    with pytest.raises(DataQualityError) as info:
        load(path)
    text = str(info.value)
    assert "garbage.csv" in text and "'InvoiceDate'" in text and "row 1 (line 2)" in text and "hello" in text


def test_non_utf8_file_names_the_line_and_the_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("CustomerID,InvoiceDate,Amount,Description\na,2024-01-01,1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"line 2 is not valid utf-8.*--encoding latin-1"):
        load(path)
    result = load(path, encoding="latin-1")
    assert result.rows == 1


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="the folder holds no data file"):
        load(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "nope.csv")


def test_unknown_object():
    with pytest.raises(InputError, match="cannot read a int"):
        load(42)


def test_source_rows_follow_the_file(online_retail):
    """source_row N is the N-th data line of the file (checked on a sample)."""
    result = load(online_retail)
    raw = pd.read_csv(online_retail, dtype=str, keep_default_na=False)
    picks = [1, 2, 1000, 123_456, 541_909]
    got = result.relation.query(
        "t", f"SELECT source_row, order_id, product_id FROM t WHERE source_row IN ({','.join(map(str, picks))}) ORDER BY 1"
    ).fetchall()
    for source_row, order_id, product_id in got:
        assert raw.iloc[source_row - 1]["InvoiceNo"] == order_id
        assert raw.iloc[source_row - 1]["StockCode"] == product_id


def test_tiny_csv_constant_is_well_formed():
    assert TINY_CSV.count("\n") == 13


def test_online_retail_ii_layout_with_us_dates(tmp_path):
    path = tmp_path / "online_retail_II.csv"
    path.write_text(
        "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country\n"
        "489434,85048,15CM CHRISTMAS GLASS BALL 20 LIGHTS,12,12/1/2009 7:45,6.95,13085.0,United Kingdom\n"
        "489435,22350,CAT BOWL ,12,12/13/2009 10:05,2.55,13086.0,United Kingdom\n"
    )
    result = load(path)
    assert result.mapping.layout == "Online Retail II"
    assert result.date_format == "%m/%d/%Y %H:%M"
    frame = rows(result)
    assert [str(d) for d in frame["order_date"]] == ["2009-12-01 07:45:00", "2009-12-13 10:05:00"]
    assert frame["customer_id"].tolist() == ["13085", "13086"]
    assert frame["product_name"].tolist()[1] == "CAT BOWL"  # trailing space trimmed


#: A store's export with the day and the time of day apart (TRANS_TIME as 1631, 0905 or 16:31:05)
DAY_AND_TIME_CSV = """household_key,BASKET_ID,DAY,TRANS_TIME,PRODUCT_ID,QUANTITY,SALES_VALUE
1,b1,2024-01-05,1631,p1,1,2.5
1,b2,2024-01-06,0905,p2,2,3.0
2,b3,2024-01-06,16:31:05,p1,1,2.5
2,b4,2024-01-07,,p1,1,2.5
2,b5,2024-01-08,later,p1,1,2.5
"""
DAY_AND_TIME = ["2024-01-05 16:31:00", "2024-01-06 09:05:00", "2024-01-06 16:31:05", "2024-01-07 00:00:00",
                "2024-01-08 00:00:00"]


def test_a_date_and_a_time_column_make_one_order_date(tmp_path):
    """The time of day is added to the date; an empty or unreadable time leaves the date as it is."""
    path = tmp_path / "day_time.csv"
    path.write_text(DAY_AND_TIME_CSV)
    loaded = load(path)
    lines = loaded.relation.df().sort_values("source_row")
    assert [str(t) for t in lines["order_date"]] == DAY_AND_TIME
    assert lines["parse_error"].isna().all() and loaded.mapping.time_of_day == "TRANS_TIME"
    # a date column with hours of its own keeps them: nothing is added
    path.write_text(DAY_AND_TIME_CSV.replace("2024-01-05,", "2024-01-05 08:00,").replace("2024-01-06,", "2024-01-06 08:00,")
                    .replace("2024-01-07,", "2024-01-07 08:00,").replace("2024-01-08,", "2024-01-08 08:00,"))
    assert {str(t)[11:] for t in load(path).relation.df()["order_date"]} == {"08:00:00"}


# --------------------------------------------------------------------------- folders, globs, partitions


def _partitioned(tmp_path, kind: str):
    """TINY_CSV as a Hive-partitioned folder ``sales/day=.../data_0.EXT`` written by DuckDB, as a lake holds it."""
    source = tmp_path / "tiny.csv"
    source.write_text(TINY_CSV)
    folder = tmp_path / f"sales_{kind}"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT *, left(InvoiceDate, 10) AS day FROM read_csv('{source}', "
                f"all_varchar = true)) TO '{folder}' (FORMAT {kind}, PARTITION_BY (day))")
    con.close()
    (folder / "_SUCCESS").write_text("")  # a marker a Spark job leaves: not data
    return source, folder


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_hive_partitioned_folder_reads_as_one_table(tmp_path, kind):
    source, folder = _partitioned(tmp_path, kind)
    single, together = load(source), load(folder)
    assert together.rows == single.rows == 12 and together.source.files == 9  # days
    columns = ["customer_id", "order_id", "order_date", "product_id", "quantity", "unit_price", "amount"]
    key = ["order_date", "order_id", "product_id", "quantity"]
    a = rows(single)[columns].sort_values(key).reset_index(drop=True)
    b = rows(together)[columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    frame = rows(together)
    # rows numbered across the files in path order, each file's rows in file order
    assert frame["source_row"].tolist() == list(range(1, 13))
    assert "day" in together.mapping.as_dict()["columns_found"]  # the partition folder is a column
    # a row is named by its file and its row in that file
    last = together.source.where(11, "quantity")
    assert "day=2024-01-27" in last and "column 'quantity'" in last
    assert "row 1" in last
    assert together.source.as_dict(paths=False)["name"] == folder.name


def test_a_glob_and_a_file_uri_name_the_same_files(tmp_path):
    _, folder = _partitioned(tmp_path, "parquet")
    january_tail = load(f"{folder.as_uri()}/day=2024-01-2*/*.parquet")
    assert january_tail.rows == 6 and january_tail.source.files == 5
    assert january_tail.source.as_dict(paths=False)["name"] == f"{folder.name}/day=2024-01-2*/*.parquet"
    assert sorted(rows(january_tail)["order_id"]) == ["1005", "1006", "1006", "1009", "C1007", "C1008"]


def test_folders_and_uris_that_cannot_be_read_say_why(tmp_path):
    _, folder = _partitioned(tmp_path, "parquet")
    (folder / "notes.txt").write_text("order_id\n1\n")
    with pytest.raises(InputError, match="both Parquet and CSV files; name one kind with a glob"):
        load(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: the folder holds no data file"):
        load(tmp_path / "empty")
    with pytest.raises(InputError, match="no file matches"):
        load(str(tmp_path / "nothing" / "*.parquet"))
    with pytest.raises(InputError, match=r"s3a:// storage run with --engine spark"):
        load("s3a://lake/sales/")
