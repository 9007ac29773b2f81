"""Segmentation models.

:class:`~.segmenter.CustomerSegmenter` (K-means, k by the elbow method, named
segments with strategies), classic RFM scores, and K-means in Spark MLlib (:mod:`.mllib`).

May import: ``customerlens.core``, ``errors``, ``features``.
"""

from customerlens.models.segment.segmenter import (
    DEFAULT_FEATURES,
    RFM_SEGMENTS,
    CentroidModel,
    CustomerSegmenter,
    find_knee,
    name_segments,
    rfm_scores,
)

__all__ = ["DEFAULT_FEATURES", "RFM_SEGMENTS", "CentroidModel", "CustomerSegmenter", "find_knee", "name_segments",
           "rfm_scores"]
