import datetime as dt

import narwhals as nw
import pandas as pd
import pytest

from customerlens.cleaning.rules import RULES, CleaningConfig, clean
from customerlens.io.load import load
from tests.conftest import to_engine, to_pandas


def rule_counts(report):
    return {r.rule: r.lines for r in report.rules}


def test_every_rule_on_the_tiny_shop(tiny_csv):
    result = clean(load(tiny_csv).relation)
    report = result.report
    assert rule_counts(report) == {
        "unparseable": 0,
        "implausible_date": 0,
        "implausible_value": 0,
        "after_as_of": 0,
        "missing_customer": 1,      # line 7
        "exact_duplicate": 1,       # line 9 repeats line 8
        "non_product": 1,           # POSTAGE
        "non_merchandise": 0,
        "quantity_outlier": 0,
        "non_positive_price": 1,    # zero quantity
        "return_netted": 2,         # C1003 and C1007
        "return_unmatched": 1,      # C1008: door mat never bought
        "cancelled_by_return": 1,   # line 8, returned in full by C1007
    }
    assert report.input_lines == 12 and report.kept_lines == 4
    assert report.is_consistent()
    assert report.input_revenue == pytest.approx(68.5)
    assert report.kept_revenue == pytest.approx(50.0)
    assert report.returned_value_netted == pytest.approx(5.0)
    assert report.partially_returned_lines == 1
    assert (report.input_customers, report.kept_customers) == (3, 2)
    kept = to_pandas(result.transactions).set_index("source_row")
    assert sorted(kept.index) == [1, 2, 3, 5]
    # C1003 returned one APPLE MUG: netted against the latest earlier purchase (line 3)
    assert kept.loc[3, "quantity"] == 3 and kept.loc[3, "returned_quantity"] == 1
    assert kept.loc[3, "amount"] == pytest.approx(15.0)
    assert kept.loc[1, "quantity"] == 2 and kept.loc[1, "returned_quantity"] == 0
    excluded = to_pandas(result.excluded).set_index("source_row")["rule"].to_dict()
    assert excluded == {4: "return_netted", 6: "non_product", 7: "missing_customer", 8: "cancelled_by_return",
                        9: "exact_duplicate", 10: "return_netted", 11: "return_unmatched", 12: "non_positive_price"}


def test_rules_can_be_switched_off(tiny_csv):
    loaded = load(tiny_csv)
    report = clean(loaded.relation, CleaningConfig().without("non_product", "non_merchandise", "returns")).report
    counts = rule_counts(report)
    assert counts["non_product"] == 0 and counts["return_netted"] == 0 and counts["return_unmatched"] == 0
    assert not {r.rule: r.enabled for r in report.rules}["non_product"]
    assert report.kept_lines == 12 - 3 and report.is_consistent()
    with pytest.raises(ValueError, match="unknown cleaning rule"):
        CleaningConfig().without("nonsense")


def test_each_result_keeps_its_own_lines(tiny_csv):
    """Cleaning computes its labelled lines once into a DuckDB table; a second call on the same
    connection must not overwrite what the first returned.
    """
    loaded = load(tiny_csv)
    everything = clean(loaded.relation)
    lenient = clean(loaded.relation, CleaningConfig().without("non_product", "non_merchandise", "returns"))
    assert len(everything.transactions.df()) == everything.report.kept_lines == 4
    assert len(lenient.transactions.df()) == lenient.report.kept_lines == 9
    assert len(everything.excluded.df()) == 12 - 4


def test_spill_folder_is_in_the_system_temp_dir(tiny_csv, tmp_path, monkeypatch):
    """DuckDB's default spill folder is .tmp in the working directory; a run's goes to the temp dir."""
    import tempfile

    from customerlens.core.db import fetch_one

    monkeypatch.chdir(tmp_path)
    con = load(tiny_csv).con
    folder = fetch_one(con, "SELECT current_setting('temp_directory')")[0]
    assert folder.startswith(tempfile.gettempdir()) and "customerlens-spill-" in folder
    assert fetch_one(load(tiny_csv).con, "SELECT current_setting('temp_directory')")[0] != folder


def test_custom_non_product_codes(tiny_csv):
    report = clean(load(tiny_csv).relation, CleaningConfig(non_product_codes=("10003",), non_product_prefixes=())).report
    # the CANDLE line of the known customer goes (the guest's is counted as missing_customer); POSTAGE stays
    assert rule_counts(report)["non_product"] == 1


def test_as_of_removes_later_lines_before_netting(tiny_csv):
    # as of 2024-01-12: the return of line 4 (12:00 that day) is after the snapshot
    result = clean(load(tiny_csv).relation, as_of=dt.datetime(2024, 1, 12))
    counts = rule_counts(result.report)
    assert counts["after_as_of"] == 7
    assert counts["return_netted"] == 0
    kept = to_pandas(result.transactions).set_index("source_row")
    assert kept.loc[3, "quantity"] == 4  # not netted with a future return


def test_lifo_netting_across_several_purchases():
    lines = pd.DataFrame({
        "source_row": [1, 2, 3, 4, 5],
        "customer_id": ["a"] * 5,
        "order_id": ["o1", "o2", "o3", "c1", "o4"],
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]),
        "product_id": ["p"] * 5,
        "product_name": ["P"] * 5,
        "quantity": [5.0, 2.0, 3.0, -6.0, 7.0],
        "unit_price": [1.0] * 5,
        "amount": [5.0, 2.0, 3.0, -6.0, 7.0],
        "country": [None] * 5, "channel": [None] * 5, "category": [None] * 5, "parse_error": [None] * 5,
    })
    result = clean(lines, has_products=True, has_order_ids=True)
    kept = to_pandas(result.transactions).set_index("source_row")
    # six returned: three from o3, two from o2 (both gone), one from o1; o4 is later
    assert sorted(kept.index) == [1, 5]
    assert kept.loc[1, "quantity"] == 4 and kept.loc[5, "quantity"] == 7
    assert rule_counts(result.report)["cancelled_by_return"] == 2


def test_returns_beyond_purchases_are_reported_as_excess():
    lines = pd.DataFrame({
        "source_row": [1, 2], "customer_id": ["a", "a"], "order_id": ["o1", "c1"],
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        "product_id": ["p", "p"], "product_name": ["P", "P"],
        "quantity": [2.0, -5.0], "unit_price": [3.0, 3.0], "amount": [6.0, -15.0],
        "country": [None] * 2, "channel": [None] * 2, "category": [None] * 2, "parse_error": [None] * 2,
    })
    report = clean(lines, has_products=True, has_order_ids=True).report
    assert report.excess_return_value == pytest.approx(9.0)
    assert report.kept_lines == 0


def test_refunds_without_products_net_by_value():
    lines = pd.DataFrame({
        "source_row": [1, 2, 3], "customer_id": ["a", "a", "b"], "order_id": ["x", "y", "z"],
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-02"]),
        "product_id": [None] * 3, "product_name": [None] * 3,
        "quantity": [1.0, -1.0, -1.0], "unit_price": [100.0, 30.0, 20.0], "amount": [100.0, -30.0, -20.0],
        "country": [None] * 3, "channel": [None] * 3, "category": [None] * 3, "parse_error": [None] * 3,
    })
    result = clean(lines, has_products=False, has_order_ids=False)
    kept = to_pandas(result.transactions)
    assert kept["amount"].tolist() == [70.0]
    assert rule_counts(result.report)["return_unmatched"] == 1  # b never bought


def test_same_rules_on_every_engine(tiny_csv, engine):
    base = load(tiny_csv).relation.df()
    native = to_engine(base, engine)
    result = clean(native, has_products=True, has_order_ids=True)
    assert type(nw.from_native(result.transactions).to_native()) is type(nw.from_native(native).to_native()) or engine == "duckdb"
    reference = clean(load(tiny_csv).relation)
    assert rule_counts(result.report) == rule_counts(reference.report)
    pd.testing.assert_frame_equal(
        to_pandas(result.transactions)[["source_row", "quantity", "amount", "returned_quantity"]],
        to_pandas(reference.transactions)[["source_row", "quantity", "amount", "returned_quantity"]],
        check_dtype=False,
    )


def test_rule_names_are_documented():
    from customerlens.cleaning import rules as module

    for rule in RULES:
        assert f"``{rule}``" in module.__doc__ or rule in module.__doc__


#: Product names of a grocery chain: lines that are not goods, and goods whose names look close
NOT_GOODS = ["GASOLINE-REG UNLEADED", "FUEL", "BOTTLE DEPOSIT", "MFR COUPON", "BAG FEE", "GIFT CARD $25",
             "SHIPPING", "SERVICE CHARGE", "TIP", "SALES TAX", "GIFT VOUCHER 10"]
GOODS = ["FELT TIP PENS", "JUMBO BAG RED", "TAXI TOY CAR", "DEPOSITORY BOX", "FUELLED MUG", "GIFT WRAP",
         "TIPSY CAKE", "COUPE GLASS"]


def test_non_merchandise_by_name_on_every_engine(tmp_path, engine):
    names = NOT_GOODS + GOODS
    rows = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID"]
    rows += [f"{100 + i},P{i},{name},2,2024-01-{1 + i:02d} 10:00:00,3.5,{i % 3 + 1}" for i, name in enumerate(names)]
    path = tmp_path / "grocery.csv"
    path.write_text("\n".join(rows) + "\n")
    native = to_engine(load(path).relation.df(), engine)
    result = clean(native, has_products=True, has_order_ids=True)
    assert rule_counts(result.report)["non_merchandise"] == len(NOT_GOODS)
    kept = set(to_pandas(result.transactions)["product_name"])
    assert kept == set(GOODS)  # every good kept: no false alarm on FELT TIP, JUMBO BAG, TAXI, DEPOSITORY ...
    listed = result.report.as_dict()["excluded_products"]
    assert {row["product_name"] for row in listed} == set(NOT_GOODS) and {row["lines"] for row in listed} == {1}
    # switchable
    lenient = clean(native, CleaningConfig().without("non_merchandise"), has_products=True, has_order_ids=True)
    assert rule_counts(lenient.report)["non_merchandise"] == 0 and lenient.report.kept_lines == len(names)


def test_products_sold_by_measure_are_quantity_outliers_on_every_engine(tmp_path, engine):
    """A pump named only by its number (litres in thousandths) and a weighed cheese (grams): caught by
    their usual quantity, every line of them; a one-off big order of a normal product is kept.
    """
    rows = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID"]
    n = 0
    for day in range(1, 25):
        for code, name, qty, price in (("P1", "MUG", 2, 3.5), ("P2", "TEA", 1, 2.0), ("P3", "PLATE", 4, 1.5),
                                       ("PUMP4", "PUMP 04", 30_000 + 500 * day, 0.0015),
                                       ("C9", "CHEESE BY WEIGHT", 1_200 + day, 0.01)):
            n += 1
            rows.append(f"{n},{code},{name},{qty},2024-01-{day:02d} 10:00:00,{price},{day % 4 + 1}")
    rows.append(f"{n + 1},P1,MUG,1300,2024-01-25 10:00:00,3.0,9")  # a wholesaler's single big order
    path = tmp_path / "pumps.csv"
    path.write_text("\n".join(rows) + "\n")
    native = to_engine(load(path).relation.df(), engine)
    result = clean(native, has_products=True, has_order_ids=True)
    assert rule_counts(result.report)["quantity_outlier"] == 48
    kept = to_pandas(result.transactions)
    assert set(kept["product_id"]) == {"P1", "P2", "P3"} and kept["quantity"].max() == 1300
    listed = result.report.as_dict()["excluded_products"]
    assert {(row["rule"], row["product_id"], row["lines"]) for row in listed} == {
        ("quantity_outlier", "PUMP4", 24), ("quantity_outlier", "C9", 24)}
    lenient = clean(native, CleaningConfig().without("quantity_outlier"), has_products=True, has_order_ids=True)
    assert rule_counts(lenient.report)["quantity_outlier"] == 0 and lenient.report.kept_lines == n + 1


def test_a_line_that_breaks_several_rules_gets_the_first():
    """Rules on one line are worked out with the input copy, the joined ones (duplicates) in
    between: the order of RULES still decides.
    """
    lines = pd.DataFrame({
        "customer_id": [None, "A", "A", "B", "B"],
        "order_id": ["1", "2", "2", "3", "4"],
        "order_date": pd.to_datetime(["2024-01-02"] * 5),
        "product_id": ["POST", "POST", "POST", "POST", "X1"],
        "product_name": ["postage"] * 4 + ["mug"],
        "quantity": [1.0, 1.0, 1.0, 0.0, 2.0],
        "unit_price": [5.0] * 5,
        "amount": [5.0, 5.0, 5.0, 0.0, 10.0],
        "country": ["UK"] * 5,
    })
    result = clean(load(lines).relation)
    excluded = to_pandas(result.excluded).set_index("source_row")["rule"].to_dict()
    # missing customer before non-product; duplicate before non-product; non-product before zero quantity
    assert excluded == {1: "missing_customer", 2: "non_product", 3: "exact_duplicate", 4: "non_product"}
    assert list(to_pandas(result.transactions)["source_row"]) == [5]


def test_repeats_found_by_hash_are_the_repeats_of_the_exact_grouping():
    """With the relation's connection, repeats are found by a hash of the eight columns, then checked
    exactly: the same lines as the engine-neutral group-by, nulls, signed zeros and near-twins included.
    """
    base = {"customer_id": "A", "order_id": "1", "order_date": pd.Timestamp("2024-01-02 10:00"), "product_id": "X1",
            "product_name": "mug", "quantity": 2.0, "unit_price": 5.0, "amount": 10.0, "country": "UK"}
    variants = [{}, {}, {"product_name": None}, {"product_name": None}, {"customer_id": None}, {"customer_id": None},
                {"quantity": 2.0000001}, {"unit_price": 0.0, "amount": 0.0}, {"unit_price": -0.0, "amount": -0.0},
                {"order_date": pd.Timestamp("2024-01-02 10:01")}, {"product_id": "X2"}, {}, {"order_id": "2"}]
    lines = pd.DataFrame([{**base, **variant} for variant in variants])
    loaded = load(lines)
    by_hash = clean(loaded.relation, con=loaded.con)
    by_group = clean(to_pandas(load(lines).relation))
    repeats = [to_pandas(result.excluded).query("rule == 'exact_duplicate'")["source_row"].tolist()
               for result in (by_hash, by_group)]
    # 6 repeats 5 but has no customer (that rule comes first); -0.0 equals 0.0 (9 repeats 8)
    assert repeats[0] == repeats[1] == [2, 4, 9, 12]


@pytest.mark.parametrize("sorted_in_memory", [True, False])
def test_clean_lines_stay_in_input_order(sorted_in_memory, monkeypatch):
    """The store writes the clean lines as they come (no sort of 100M lines): after the joins
    of duplicates, outliers and returns, on a file large enough for several DuckDB threads;
    sorted in memory (small data) or copied on one thread (large data).
    """
    from customerlens.cleaning import rules
    from customerlens.io import demo

    monkeypatch.setattr(rules, "SORT_IN_MEMORY", 10**9 if sorted_in_memory else 0)

    data = demo.generate(customers=4000, seed=3).lines
    assert data.num_rows > 250_000
    result = clean(load(data).relation)
    rows = result.transactions.df()["source_row"].to_numpy()
    assert len(rows) > 200_000 and (rows[1:] > rows[:-1]).all()
    excluded = result.excluded.df()
    assert {"exact_duplicate", "return_netted"} <= set(excluded["rule"])
    assert (excluded["source_row"].to_numpy()[1:] > excluded["source_row"].to_numpy()[:-1]).all()


def test_a_copy_that_comes_out_of_order_is_sorted():
    import duckdb

    from customerlens.cleaning.rules import _materialize

    con = duckdb.connect()
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    backwards = con.sql("SELECT i AS source_row, i * 2 AS x FROM range(1, 300001) t(i) ORDER BY i DESC")
    for joined in (False, True):
        table = _materialize(nw.from_native(backwards), f"_t_{joined}", in_input_order=True, joined=joined)
        rows = table.to_native().df()["source_row"].to_numpy()
        assert (rows[1:] > rows[:-1]).all() and len(rows) == 300_000
    assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == threads


def test_the_relations_connection_gives_the_same_cleaning_with_less_binding(tmp_path, monkeypatch):
    """``clean(..., con=)`` reads the steps it computes once back as the connection's tables: the same lines,
    exclusions and report, and the later steps no longer bind every step before them again.
    """
    import importlib.util

    from customerlens.io import demo

    path, _ = demo.write(demo.generate(300, seed=3), tmp_path / "d.csv")
    binds = []
    # this DuckDB binds its relations in Python (duckdb._relation): count the binds where it does
    counted = importlib.util.find_spec("duckdb._relation") is not None
    if counted:
        from duckdb import _relation

        real = _relation._ask
        monkeypatch.setattr(_relation, "_ask", lambda node: (binds.append(1), real(node))[1])
    results, counts = [], []
    for con in (False, True):
        loaded = load(path)
        binds.clear()
        result = clean(loaded.relation, as_of=dt.datetime(2024, 6, 1), con=loaded.con if con else None)
        counts.append(len(binds))
        results.append((to_pandas(result.transactions).sort_values("source_row").reset_index(drop=True),
                        to_pandas(result.excluded).sort_values("source_row").reset_index(drop=True),
                        result.report))
    (kept_a, excluded_a, report_a), (kept_b, excluded_b, report_b) = results
    pd.testing.assert_frame_equal(kept_a, kept_b)
    pd.testing.assert_frame_equal(excluded_a, excluded_b)
    assert report_a == report_b and report_a.kept_lines > 0 and rule_counts(report_a)["after_as_of"] > 0
    assert counts[1] < counts[0] / 2 or not counted, counts
    # with con, the steps that built the labelled lines are gone: one copy of the lines, not two
    tables = {row[0] for row in loaded.con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    assert tables == {name for name in tables if name.startswith("_cl_labelled_")} and tables, tables
