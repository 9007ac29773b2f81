"""Synthetic Online Retail-shaped transactions of any size, as Parquet, written by DuckDB.

    .venv/bin/python benchmarks/gen_large.py --lines 100000000 --out benchmarks/data/lines_100m.parquet

Deterministic (hashes of the row number, no random state): the same ``--lines``
gives the same file. About one customer per ten lines (``--lines-per-customer``),
five lines per order, three years of dates, 50,000 products with a skewed
popularity, and what real files have: about 1 % of lines without a customer,
postage lines, exact duplicates and returns (``C`` invoices, negative quantities,
a few days after the purchase they cancel). Columns as in Online Retail:
InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID,
Country. Written in streaming fashion (DuckDB never holds the whole file).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

LINES_PER_ORDER = 5


def generate(lines: int, out: Path, lines_per_customer: int = 10, memory_limit: str = "4GB") -> Path:
    import duckdb

    out.parent.mkdir(parents=True, exist_ok=True)
    customers = max(1, lines // lines_per_customer)
    # customer ids: a power law over a slightly larger id space, so that a few
    # customers order often and about `customers` distinct ids appear
    space = int(customers * 1.35)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    tmp = out.with_name(out.name + ".tmp")
    sql = f"""
    WITH base AS (
      SELECT i, i // {LINES_PER_ORDER} AS o,
             hash(i // {LINES_PER_ORDER}) AS ho, hash(i * 7919 + 13) AS hl
      FROM range({lines}) t(i)
    ), lines AS (
      SELECT i, o,
        CASE WHEN ho % 100 = 0 THEN NULL
             ELSE 10000 + CAST(floor({space} * pow((ho % 1000000007) / 1000000007.0, 1.6)) AS BIGINT) END AS customer,
        TIMESTAMP '2019-01-01' + to_seconds(CAST((ho // 7) % (1095 * 86400) AS BIGINT)) AS ts,
        CASE WHEN hl % 97 = 0 THEN 'POST'
             ELSE 'P' || lpad(CAST(CAST(floor(50000 * pow((hl % 999983) / 999983.0, 2.0)) AS BIGINT) AS VARCHAR), 5, '0')
        END AS code,
        1 + CAST((hl // 11) % 12 AS BIGINT) AS qty,
        hl
      FROM base
    ), priced AS (
      SELECT *, CASE WHEN code = 'POST' THEN 18.0 ELSE round(0.5 + (hash(code) % 4950) / 100.0, 2) END AS price
      FROM lines
    ), purchases AS (
      SELECT CAST(500000 + o AS VARCHAR) AS InvoiceNo, code AS StockCode, 'PRODUCT ' || code AS Description,
             qty AS Quantity, ts AS InvoiceDate, price AS UnitPrice, CAST(customer AS DOUBLE) AS CustomerID,
             CASE WHEN customer % 10 = 0 THEN 'France' WHEN customer % 10 = 1 THEN 'Germany'
                  ELSE 'United Kingdom' END AS Country, hl
      FROM priced
    )
    SELECT InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country
    FROM purchases
    UNION ALL  -- returns: one line in 200 is partly sent back three days later
    SELECT 'C' || InvoiceNo, StockCode, Description, -1 - (hl // 13) % Quantity, InvoiceDate + INTERVAL 3 DAY,
           UnitPrice, CustomerID, Country
    FROM purchases WHERE hl % 200 = 1
    UNION ALL  -- exact duplicates: one line in 500 appears twice
    SELECT InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country
    FROM purchases WHERE hl % 500 = 2
    """
    target = str(tmp).replace("'", "''")
    con.execute(f"COPY ({sql}) TO '{target}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)")
    tmp.replace(out)
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="purchase lines before returns/duplicates")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lines-per-customer", type=int, default=10)
    parser.add_argument("--memory-limit", default="4GB")
    args = parser.parse_args()
    start = time.perf_counter()
    generate(args.lines, args.out, args.lines_per_customer, args.memory_limit)
    size = args.out.stat().st_size / 1e6
    print(f"{args.out}: {args.lines:,} purchase lines, {size:,.0f} MB, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
