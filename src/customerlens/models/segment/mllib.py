"""K-means in Spark MLlib for customer tables beyond one machine.

The segmenter is the same :class:`~customerlens.models.segment.segmenter.CustomerSegmenter`
as on one machine: k is chosen by the elbow method on a seeded sample, then the
final K-means runs in MLlib and the segments are ordered and named as usual.
PySpark is imported only when this runs.
"""

from __future__ import annotations

from customerlens.errors import CustomerLensError
from customerlens.models.segment.segmenter import CustomerSegmenter


def kmeans_segmentation(features, *, features_used: tuple[str, ...], k: int | None, k_range: tuple[int, int],
                        random_state: int = 42, search_sample: int = 50_000):
    """Fit a :class:`~customerlens.models.segment.segmenter.CustomerSegmenter` whose final K-means runs in Spark MLlib.

    The scaling (log1p, then standardising) uses means and deviations computed
    in Spark over every customer; k is chosen by the elbow method on a seeded
    sample of ``search_sample`` customers (scikit-learn, as on one machine);
    MLlib's K-means (k-means||, seeded) is then fitted on all customers.
    Returns the segmenter and a Spark frame ``customer_id, segment_id``.
    """
    import numpy as np
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import functions as F
    from sklearn.preprocessing import StandardScaler

    segmenter = CustomerSegmenter(features=tuple(features_used), k=k, random_state=random_state,
                                  k_range=tuple(k_range), search_sample=search_sample)
    logged = features.select(
        "customer_id", F.col("monetary").cast("double").alias("_monetary"),
        *[F.log1p(F.greatest(F.coalesce(F.col(c).cast("double"), F.lit(0.0)), F.lit(0.0))).alias(c)
          for c in features_used])
    stats = logged.select(F.count(F.lit(1)).alias("n"),
                          *[F.avg(c).alias(f"m_{c}") for c in features_used],
                          *[F.stddev_pop(c).alias(f"s_{c}") for c in features_used]).collect()[0]
    n = int(stats["n"])
    if n < 2:
        raise CustomerLensError(f"segmentation needs at least 2 customers, got {n}")
    scaler = StandardScaler()
    scaler.mean_ = np.array([stats[f"m_{c}"] for c in features_used], dtype=float)
    scale = np.array([stats[f"s_{c}"] or 0.0 for c in features_used], dtype=float)
    scaler.var_ = scale**2
    scaler.scale_ = np.where(scale > 0, scale, 1.0)
    scaler.n_features_in_, scaler.n_samples_seen_ = len(features_used), n
    fraction = min(1.0, 1.2 * search_sample / n)
    sample = logged.sample(fraction=fraction, seed=random_state).limit(search_sample).toPandas()
    Z_sample = scaler.transform(sample[list(features_used)].to_numpy(dtype=float))
    segmenter.choose_k(Z_sample, scaler=scaler, n_customers=n)
    chosen = segmenter.k_choice_.k
    scaled = logged.select("customer_id", "_monetary", *[
        ((F.col(c) - float(m)) / float(s)).alias(c)
        for c, m, s in zip(features_used, scaler.mean_, scaler.scale_, strict=True)])
    vectors = VectorAssembler(inputCols=list(features_used), outputCol="_z").transform(scaled)
    model = KMeans(k=chosen, seed=random_state, featuresCol="_z", predictionCol="_label",
                   initMode="k-means||", maxIter=100, tol=1e-6).fit(vectors)
    labelled = model.transform(vectors).select("customer_id", "_monetary", "_label").localCheckpoint()
    means = {r["_label"]: r["m"] for r in labelled.groupBy("_label").agg(F.avg("_monetary").alias("m")).collect()}
    centers = np.array(model.clusterCenters(), dtype=float)
    segmenter.fit_centroids(centers, float(model.summary.trainingCost),
                            np.array([means.get(c, -np.inf) for c in range(chosen)]))
    mapping = F.create_map(*[F.lit(x) for c in range(chosen) for x in (c, int(segmenter.label_to_segment_[c]))])
    return segmenter, labelled.select("customer_id", mapping[F.col("_label")].alias("segment_id"))
