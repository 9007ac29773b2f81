import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customerlens.cleaning.rules import clean
from customerlens.features.customer import FEATURE_COLUMNS, customer_features, default_as_of
from customerlens.io.load import load
from tests.conftest import to_engine, to_pandas

AS_OF = dt.datetime(2024, 2, 1)
LATE = dt.datetime(2024, 3, 15)  # after every generated line


@pytest.fixture
def tiny_clean(tiny_csv):
    return clean(load(tiny_csv).relation).transactions


def test_hand_computed_features(tiny_clean):
    """The tiny shop, by hand (see tests/conftest.py):

    customer 1: orders 1001 (2 mugs at 5 + 1 bag at 10) and 1002 (4 mugs at 5,
    one returned on C1003) -> net 10 + 10 + 15 = 35, 5 returned of 40 gross,
    6 units, products A and B, first 01-01, last 01-11.
    customer 2: order 1004 (10 candles at 1.50; postage is not a product) -> 15.
    customer 3: bought one bag and returned it: no purchase left, no row.
    """
    got = to_pandas(customer_features(tiny_clean, as_of=AS_OF)).set_index("customer_id")
    assert list(got.index) == ["1", "2"]
    c1, c2 = got.loc["1"], got.loc["2"]
    assert c1["frequency"] == 2 and c1["monetary"] == pytest.approx(35.0)
    assert c1["recency_days"] == 21 and c1["tenure_days"] == 31
    assert c1["avg_order_value"] == pytest.approx(17.5)
    assert c1["distinct_products"] == 2 and c1["items_per_order"] == pytest.approx(3.0)
    assert c1["return_rate"] == pytest.approx(5 / 40)
    assert c1["mean_days_between_orders"] == pytest.approx(10.0)
    assert c1["spend_90d"] == pytest.approx(35.0) and c1["spend_prev_90d"] == 0 and c1["spend_trend"] == 1.0
    assert str(c1["first_purchase"])[:10] == "2024-01-01" and str(c1["last_purchase"])[:10] == "2024-01-11"
    assert c2["frequency"] == 1 and c2["monetary"] == pytest.approx(15.0)
    assert c2["recency_days"] == 27 and c2["tenure_days"] == 27
    assert pd.isna(c2["mean_days_between_orders"])
    assert c2["return_rate"] == 0 and c2["items_per_order"] == pytest.approx(10.0)
    assert list(got.reset_index().columns) == list(FEATURE_COLUMNS)


def test_default_snapshot_is_the_day_after_the_last_line(tiny_clean):
    assert default_as_of(tiny_clean) == dt.datetime(2024, 1, 12)
    got = to_pandas(customer_features(tiny_clean)).set_index("customer_id")
    assert got.loc["1", "recency_days"] == 1  # bought on the last day


def test_as_of_only_counts_earlier_lines(tiny_clean):
    got = to_pandas(customer_features(tiny_clean, as_of="2024-01-06")).set_index("customer_id")
    assert got.loc["1", "frequency"] == 1 and got.loc["1", "monetary"] == pytest.approx(20.0)
    assert got.loc["1", "recency_days"] == 5


def test_spend_trend_windows(tiny_clean):
    # as of 2024-04-05, the last 90 days start on 2024-01-06: 1002 is recent, 1001 before
    got = to_pandas(customer_features(tiny_clean, as_of="2024-04-05")).set_index("customer_id")
    assert got.loc["1", "spend_90d"] == pytest.approx(15.0)
    assert got.loc["1", "spend_prev_90d"] == pytest.approx(20.0)
    assert got.loc["1", "spend_trend"] == pytest.approx((15 - 20) / 35)


def test_same_numbers_on_every_engine(tiny_clean, engine):
    base = tiny_clean.df()
    reference = to_pandas(customer_features(base, as_of=AS_OF))
    got = to_pandas(customer_features(to_engine(base, engine), as_of=AS_OF))
    pd.testing.assert_frame_equal(
        got.drop(columns=["first_purchase", "last_purchase"]),
        reference.drop(columns=["first_purchase", "last_purchase"]),
        check_dtype=False,
    )


def test_no_product_data_has_null_distinct_products():
    lines = pd.DataFrame({
        "customer_id": ["a", "a"], "order_id": ["1", "2"],
        "order_date": pd.to_datetime(["2024-01-01", "2024-01-03"]),
        "product_id": pd.Series([None, None], dtype="object"), "quantity": [1.0, 1.0], "amount": [3.0, 4.0],
    })
    got = to_pandas(customer_features(lines, as_of=AS_OF))
    assert pd.isna(got.loc[0, "distinct_products"]) and got.loc[0, "monetary"] == 7.0


# ------------------------------------------------------------------ properties

line = st.fixed_dictionaries({
    "customer": st.sampled_from(["a", "b", "c", "d"]),
    "order": st.integers(0, 6),
    "day": st.integers(0, 60),
    "product": st.sampled_from(["p1", "p2", "p3"]),
    "quantity": st.integers(1, 20),
    "price_cents": st.integers(1, 5000),
})


def _frame(lines):
    frame = pd.DataFrame(lines)
    return pd.DataFrame({
        "customer_id": frame["customer"],
        "order_id": frame["customer"] + "-" + frame["order"].astype(str),
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["day"], unit="D"),
        "product_id": frame["product"],
        "quantity": frame["quantity"].astype(float),
        "amount": frame["quantity"] * frame["price_cents"] / 100.0,
    })


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_row_order_does_not_matter(lines, random):
    frame = _frame(lines)
    shuffled = frame.sample(frac=1.0, random_state=random.randint(0, 10**6)).reset_index(drop=True)
    a = to_pandas(customer_features(duckdb.from_df(frame), as_of=AS_OF))
    b = to_pandas(customer_features(duckdb.from_df(shuffled), as_of=AS_OF))
    pd.testing.assert_frame_equal(a, b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, min_size=1, max_size=40))
def test_monetary_is_the_sum_of_net_line_values(lines):
    frame = _frame(lines)
    got = to_pandas(customer_features(frame, as_of=LATE)).set_index("customer_id")
    expected = frame.groupby("customer_id")["amount"].sum()
    assert set(got.index) == set(expected.index)  # features never invent a customer
    np.testing.assert_allclose(got["monetary"], expected.loc[got.index], rtol=0, atol=1e-6)
    orders = frame.groupby("customer_id")["order_id"].nunique()
    assert (got["frequency"] == orders.loc[got.index]).all()
