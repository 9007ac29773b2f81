"""Recommendations from Spark MLlib's implicit ALS, for customer bases beyond one machine."""

from __future__ import annotations

import datetime as dt


def als_recommendations(lines, as_of: dt.datetime, n: int = 10, *, rank: int = 64, reg: float = 0.01,
                        alpha: float = 1.0, max_iter: int = 15, seed: int = 42, exclude_seen: bool = False):
    """Top-``n`` products per customer from Spark: own most-ordered products first, then MLlib's implicit ALS.

    The customer's own most-ordered products come first (personal frequency, as the default ranks repeats), the
    rest of the list from MLlib's implicit ALS.

    ``lines``: clean transactions (Spark frame). Returns a Spark frame
    ``customer_id, rank, product_id, score, reason``. Run it, and use its result, inside
    :class:`customerlens.io.spark.Checkpoints` (ALS needs a checkpoint folder).
    """
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    before = lines.filter((F.col("order_date") < F.lit(as_of)) & F.col("product_id").isNotNull())
    pairs = before.groupBy("customer_id", "product_id").agg(F.countDistinct("order_id").alias("orders"))
    customers = pairs.select("customer_id").distinct().withColumn(
        "_u", F.dense_rank().over(Window.orderBy("customer_id")) - 1)
    products = pairs.select("product_id").distinct().withColumn(
        "_i", F.dense_rank().over(Window.orderBy("product_id")) - 1)
    indexed = (pairs.join(customers, "customer_id").join(products, "product_id")
               .withColumn("orders", F.col("orders").cast("float")).localCheckpoint())
    context = lines.sparkSession.sparkContext
    # ALS cuts its lineage every checkpointInterval iterations, but only with a checkpoint folder (without
    # one the plan grows until the JVM's stack overflows): the caller sets it (customerlens.io.spark.Checkpoints)
    # one block of customers and of products per core Spark has (MLlib's fixed default is 10: on a
    # laptop most of ALS's time is then spent scheduling tasks, on a cluster it leaves cores idle)
    blocks = max(2, min(int(context.defaultParallelism), 200))
    als = ALS(rank=rank, regParam=reg, alpha=alpha, maxIter=max_iter, implicitPrefs=True, seed=seed,
              userCol="_u", itemCol="_i", ratingCol="orders", coldStartStrategy="drop", checkpointInterval=5,
              numUserBlocks=blocks, numItemBlocks=blocks)
    model = als.fit(indexed)
    seen = indexed.select("_u", "_i")
    # enough candidates that n remain after the customer's own products are taken out. With the own
    # products listed first, a customer who bought n or more has a full list without ALS's: 2n candidates
    # serve everyone (n + the largest history instead took 83 of a run's 134 s on four months of Online
    # Retail, one customer having bought 1,000 products)
    most_seen = int(indexed.groupBy("_u").count().agg(F.max("count")).collect()[0][0] or 0)
    collaborative = (model.recommendForAllUsers(n + (most_seen if exclude_seen else min(most_seen, n)))
                     .select("_u", F.explode("recommendations").alias("r"))
                     .select("_u", F.col("r._i").alias("_i"), F.col("r.rating").alias("score"))
                     .join(seen, ["_u", "_i"], "left_anti")
                     .withColumn("reason", F.lit("customers with similar purchases bought this"))
                     .withColumn("_tier", F.lit(1)))
    ranked = collaborative
    if not exclude_seen:
        own = indexed.select(
            "_u", "_i", F.col("orders").cast("double").alias("score"),
            F.concat(F.lit("bought "), F.col("orders").cast("int").cast("string"), F.lit(" times")).alias("reason"),
            F.lit(0).alias("_tier"))
        ranked = own.unionByName(collaborative)
    order = Window.partitionBy("_u").orderBy("_tier", F.desc("score"), "_i")
    top = ranked.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= n)
    return (top.join(customers, "_u").join(products, "_i")
            .select("customer_id", "rank", "product_id", F.col("score").cast("double").alias("score"), "reason"))
