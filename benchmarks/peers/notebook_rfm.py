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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--k", type=int, default=4)
    args = parser.parse_args()
    t0 = time.perf_counter()
    df = pd.read_csv(args.path, encoding="ISO-8859-1", dtype={"CustomerID": str, "InvoiceNo": str,
                                                              "StockCode": str})
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    df = df.dropna(subset=["CustomerID"])
    df = df[~df["InvoiceNo"].str.startswith("C")]
    df = df[(df["Quantity"] > 0) & (df["UnitPrice"] > 0)]
    df = df.drop_duplicates()
    df["TotalPrice"] = df["Quantity"] * df["UnitPrice"]
    snapshot = df["InvoiceDate"].max() + pd.Timedelta(days=1)
    rfm = df.groupby("CustomerID").agg(
        Recency=("InvoiceDate", lambda d: (snapshot - d.max()).days),
        Frequency=("InvoiceNo", "nunique"),
        Monetary=("TotalPrice", "sum"),
    )
    X = StandardScaler().fit_transform(np.log1p(rfm[["Recency", "Frequency", "Monetary"]]))
    inertia, silhouette = {}, {}
    for k in range(1, 11):
        model = KMeans(n_clusters=k, init="k-means++", n_init=10, random_state=42).fit(X)
        inertia[k] = float(model.inertia_)
        if k >= 2:
            silhouette[k] = float(silhouette_score(X, model.labels_))
    final = KMeans(n_clusters=args.k, init="k-means++", n_init=10, random_state=42).fit(X)
    rfm["Cluster"] = final.labels_
    lines = df.merge(rfm[["Cluster"]], left_on="CustomerID", right_index=True)
    top = (lines.groupby(["Cluster", "Description"])["TotalPrice"].sum().reset_index()
           .sort_values(["Cluster", "TotalPrice"], ascending=[True, False]).groupby("Cluster").head(10))
    print(json.dumps({"customers": len(rfm), "clusters": rfm["Cluster"].value_counts().sort_index().tolist(),
                      "top_rows": len(top), "seconds_inside": round(time.perf_counter() - t0, 2)}))


if __name__ == "__main__":
    main()
