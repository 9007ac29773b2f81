"""Every recommender by name: what ``--models`` and ``model=`` accept."""

from __future__ import annotations

from customerlens.errors import CustomerLensError
from customerlens.models.recommend.blend import Blend
from customerlens.models.recommend.models import (
    ALS,
    EASE,
    ItemKNN,
    PersonalFrequency,
    RecentPopularity,
    Recommender,
    SegmentPopularity,
)
from customerlens.models.recommend.twostage import TwoStage

#: model name -> class, in the order the backtest prints them
MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (TwoStage, Blend, RecentPopularity, SegmentPopularity, PersonalFrequency, ItemKNN, EASE, ALS)
}


def make_model(name: str, **params) -> Recommender:
    """A new, unfitted recommender by name; ``params`` go to its constructor."""
    if name not in MODELS:
        raise CustomerLensError(f"unknown model {name!r}; models: {', '.join(MODELS)}")
    return MODELS[name](**params)
