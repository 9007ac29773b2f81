"""The usual public notebook for RFM + K-means on Online Retail, written out faithfully.

pandas read_csv, boolean filters (no customer id, cancellations, non-positive
quantity or price), TotalPrice, a groupby RFM table as of the day after the
last invoice, log1p + StandardScaler, scikit-learn KMeans for k = 1..10
(inertia for the elbow, silhouette for k >= 2), the final k, and the top 10
products per cluster. Run as its own process by benchmarks/bench_peers.py:

    python benchmarks/peers/notebook_rfm.py online_retail.csv.gz [--k 4]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler


def notebook(path: str, k: int = 4, mark=lambda stage: None) -> dict:
    """The notebook's steps; ``mark(stage)`` is called after each (benchmarks/bench_scale.py times them).
    Reads the CSV as the notebook does, or the same columns from Parquet.
    """
    if str(path).endswith(".parquet"):
        df = pd.read_parquet(path)
        df["CustomerID"] = df["CustomerID"].astype("string")
    else:
        df = pd.read_csv(path, encoding="ISO-8859-1", dtype={"CustomerID": str, "InvoiceNo": str,
                                                             "StockCode": str})
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    mark("load")
    df = df.dropna(subset=["CustomerID"])
    df = df[~df["InvoiceNo"].str.startswith("C")]
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    df = df.drop_duplicates()
    df["TotalPrice"] = df["Quantity"] * df["UnitPrice"]
    mark("clean")
    snapshot = df["InvoiceDate"].max() + pd.Timedelta(days=1)
    rfm = df.groupby("CustomerID").agg(
        Recency=("InvoiceDate", lambda d: (snapshot - d.max()).days),
        Frequency=("InvoiceNo", "nunique"),
        Monetary=("TotalPrice", "sum"),
    )
    mark("features")
    X = StandardScaler().fit_transform(np.log1p(rfm[["Recency", "Frequency", "Monetary"]]))
    inertia, silhouette = {}, {}
    for n_clusters in range(1, 11):
        model = KMeans(n_clusters=n_clusters, init="k-means++", n_init=10, random_state=42).fit(X)
        inertia[n_clusters] = float(model.inertia_)
        if n_clusters >= 2:
            silhouette[n_clusters] = float(silhouette_score(X, model.labels_))
        mark(f"k={n_clusters}")
    final = KMeans(n_clusters=k, init="k-means++", n_init=10, random_state=42).fit(X)
    rfm["Cluster"] = final.labels_
    mark("segment")
    lines = df.merge(rfm[["Cluster"]], left_on="CustomerID", right_index=True)
    top = (lines.groupby(["Cluster", "Description"])["TotalPrice"].sum().reset_index()
           .sort_values(["Cluster", "TotalPrice"], ascending=[True, False]).groupby("Cluster").head(10))
    mark("top_products")
    return {"customers": len(rfm), "clusters": rfm["Cluster"].value_counts().sort_index().tolist(),
            "top_rows": len(top)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = notebook(args.path, args.k)
    print(json.dumps({**result, "seconds_inside": round(time.perf_counter() - t0, 2)}))


if __name__ == "__main__":
    main()
