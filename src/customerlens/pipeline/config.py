"""The settings of an analysis: nested, frozen, checked once when built.

:class:`RunConfig` gathers one section per stage. Every section checks its
values in ``__post_init__`` and raises :class:`~customerlens.errors.ConfigError`
naming the parameter as the Python API spells it (``segmentation.k``); the CLI
shows its own flag for it (``--k``). Optional stages are switched off by
setting their section to ``None`` (``value=None``, ``recommend=None``,
``insights=None``).

In a notebook the flat keywords of :meth:`RunConfig.from_options` are shorter::

    RunConfig.from_options(k=5, as_of="2011-09-09", top_n=0, charts=False)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from customerlens.cleaning.rules import CleaningConfig
from customerlens.core.dates import parse_as_of
from customerlens.errors import ConfigError
from customerlens.models.segment.segmenter import DEFAULT_FEATURES
from customerlens.models.value.config import ValueConfig

#: engines for loading, cleaning and features
ENGINES = ("duckdb", "spark")
#: segmentation methods
METHODS = ("kmeans", "rfm")
#: Above this many customers the final K-means runs in Spark MLlib (below, scikit-learn).
KMEANS_ABOVE = 2_000_000
#: Above this many customers the collaborative recommendations come from MLlib ALS.
ALS_ABOVE = 1_000_000
_MEMORY = re.compile(r"\d+(\.\d+)?(KB|MB|GB|TB|KIB|MIB|GIB|TIB)")


def memory_setting(value: str, name: str = "engine.memory_limit") -> str:
    """Normalise a DuckDB memory size such as ``3GB`` or ``500 MiB``; a ConfigError otherwise."""
    text = str(value).strip().upper().replace(" ", "")
    if not _MEMORY.fullmatch(text):
        raise ConfigError(f"{name} {value!r}: give a size such as 3GB or 500MB", parameter=name)
    return text


@dataclass(frozen=True)
class InputConfig:
    """How the transactions are read (:func:`customerlens.io.load.load`)."""

    #: canonical=SourceColumn pairs, or a dict canonical -> source column
    mapping: tuple[str, ...] | Mapping[str, str] = ()
    encoding: str = "utf-8"
    sheet: str | int | None = None  # Excel sheet name or position (default: the first)
    table: str | None = None  # table of a DuckDB file
    date_format: str | None = None  # strptime format of the date column (default: detected)

    def __post_init__(self):
        mapping = self.mapping
        if mapping is None:
            object.__setattr__(self, "mapping", ())
        elif not isinstance(mapping, Mapping):
            if isinstance(mapping, str) or not isinstance(mapping, Sequence):
                raise ConfigError("input.mapping takes canonical=SourceColumn strings or a dict",
                                  parameter="input.mapping")
            object.__setattr__(self, "mapping", tuple(mapping))
        if isinstance(self.sheet, str) and self.sheet.isdigit():
            object.__setattr__(self, "sheet", int(self.sheet))


#: the environment variable that sets ``engine.workers`` when a run does not
WORKERS_ENV = "CUSTOMERLENS_WORKERS"


@dataclass(frozen=True)
class EngineConfig:
    """Where loading, cleaning and features run, and DuckDB's memory."""

    name: str = "duckdb"  # "duckdb" (one machine, out of core) or "spark"
    spark_master: str | None = None  # e.g. "local[2]" or "spark://host:7077"; default: active session or local[*]
    spark_kmeans_above: int = KMEANS_ABOVE  # MLlib K-means above this many customers
    spark_als_above: int = ALS_ABOVE  # MLlib ALS recommendations above this many customers
    #: where MLlib's ALS checkpoints (storage every executor reaches on a cluster: hdfs://, s3a://); default:
    #: Spark's ``spark.checkpoint.dir`` when set, else a temporary folder removed after the run
    spark_checkpoint_dir: str | None = None
    #: Spark settings for a session customerlens starts, e.g. {"spark.executor.memory": "8g"}
    spark_conf: tuple[tuple[str, str], ...] = ()
    #: DuckDB's memory limit (e.g. "3GB"); beyond it DuckDB spills to disk (half of it from the
    #: segmentation on, while pandas holds the customers). Default: DuckDB's (80 % of RAM)
    memory_limit: str | None = None
    #: processes a run may use: 2 fits the recommender in a process of its own while the other stages
    #: run (same results, a second core); 1 keeps everything in this one. None: $CUSTOMERLENS_WORKERS
    #: when set, else 2 when two cores are free (:meth:`processes`)
    workers: int | None = None

    def __post_init__(self):
        if self.workers is not None and self.workers not in (1, 2):
            raise ConfigError(f"engine.workers must be 1 or 2, got {self.workers!r}", parameter="engine.workers")
        if self.name not in ENGINES:
            raise ConfigError(f"engine.name must be one of {', '.join(ENGINES)}, not {self.name!r}",
                              parameter="engine.name")
        if self.memory_limit is not None:
            object.__setattr__(self, "memory_limit", memory_setting(self.memory_limit))
        conf = self.spark_conf
        if isinstance(conf, Mapping):
            conf = tuple(conf.items())
        elif isinstance(conf, str) or not isinstance(conf, Sequence):
            raise ConfigError("engine.spark_conf takes KEY=VALUE strings or a dict", parameter="engine.spark_conf")
        pairs = []
        for item in conf:
            key, value = item.split("=", 1) if isinstance(item, str) and "=" in item else (
                item if isinstance(item, tuple | list) and len(item) == 2 else (None, None))
            if not key or not str(key).strip():
                raise ConfigError(f"engine.spark_conf: {item!r} is not KEY=VALUE, e.g. spark.executor.memory=8g",
                                  parameter="engine.spark_conf")
            pairs.append((str(key).strip(), str(value).strip()))
        object.__setattr__(self, "spark_conf", tuple(pairs))
        for name in ("spark_kmeans_above", "spark_als_above"):
            if getattr(self, name) < 0:
                raise ConfigError(f"engine.{name} must be 0 or more, got {getattr(self, name)}",
                                  parameter=f"engine.{name}")

    def processes(self) -> int:
        """The processes a run uses: ``workers``, else ``$CUSTOMERLENS_WORKERS``, else 2 on two free cores or more."""
        import os

        from customerlens.core.worker import usable_cores

        if self.workers is not None:
            return self.workers
        setting = os.environ.get(WORKERS_ENV, "").strip()
        if setting:
            if setting not in ("1", "2"):
                raise ConfigError(f"{WORKERS_ENV} must be 1 or 2, got {setting!r}", parameter="engine.workers")
            return int(setting)
        return 2 if usable_cores() >= 2 else 1


@dataclass(frozen=True)
class SegmentConfig:
    """The segmentation: K-means with k by the elbow method, or classic RFM."""

    method: str = "kmeans"  # "kmeans" (elbow method, named segments) or "rfm" (quintile scores)
    k: int | None = None  # number of K-means segments; None: chosen by the elbow method
    k_range: tuple[int, int] = (1, 10)  # smallest and largest k of the elbow search
    features: tuple[str, ...] = DEFAULT_FEATURES  # feature columns K-means clusters on

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"segmentation.method must be one of {', '.join(METHODS)}, not {self.method!r}",
                              parameter="segmentation.method")
        if self.k is not None and self.k < 1:
            raise ConfigError(f"segmentation.k must be at least 1, got {self.k}", parameter="segmentation.k")
        try:
            low, high = (int(x) for x in self.k_range)
        except (TypeError, ValueError):
            raise ConfigError(f"segmentation.k_range takes two numbers like (1, 10), got {self.k_range!r}",
                              parameter="segmentation.k_range") from None
        if not 1 <= low <= high:
            raise ConfigError(f"segmentation.k_range needs 1 <= low <= high, got {self.k_range!r}",
                              parameter="segmentation.k_range")
        object.__setattr__(self, "k_range", (low, high))
        features = (self.features,) if isinstance(self.features, str) else tuple(self.features)
        if not features:
            raise ConfigError("segmentation.features names at least one feature", parameter="segmentation.features")
        object.__setattr__(self, "features", features)


@dataclass(frozen=True)
class InsightsConfig:
    """The line-level insights: top products, trends, cohorts, migration."""

    top_products: int = 10  # products listed per segment
    migration_from: str | dt.date | None = None  # migration from this date (default: six months before)

    def __post_init__(self):
        if self.top_products < 1:
            raise ConfigError(f"insights.top_products must be at least 1, got {self.top_products}",
                              parameter="insights.top_products")
        parse_as_of(self.migration_from, "insights.migration_from")


@dataclass(frozen=True)
class RecommendConfig:
    """Product recommendations per customer."""

    top_n: int = 10  # products per customer
    model: str = "auto"  # two_stage, or the blend on large catalogues (service.AUTO); or any of registry.MODELS
    exclude_bought: bool = False  # recommend only products the customer has not bought
    discovery_slots: int = 0  # places of each list kept for products new to the customer

    def __post_init__(self):
        from customerlens.models.recommend.registry import MODELS

        if self.top_n < 1:
            raise ConfigError(f"recommend.top_n must be at least 1 (recommend=None switches them off), "
                              f"got {self.top_n}", parameter="recommend.top_n")
        if self.model != "auto" and self.model not in MODELS:
            raise ConfigError(f"recommend.model must be auto or one of {', '.join(MODELS)}, not {self.model!r}",
                              parameter="recommend.model")
        if not 0 <= self.discovery_slots <= self.top_n:
            raise ConfigError(f"recommend.discovery_slots must be between 0 and recommend.top_n ({self.top_n}), "
                              f"got {self.discovery_slots}", parameter="recommend.discovery_slots")


@dataclass(frozen=True)
class OutputConfig:
    """What :meth:`Analysis.save <customerlens.pipeline.analysis.Analysis.save>` writes beside the tables."""

    charts: bool = True  # every chart as PNG and SVG under charts/
    report: bool = True  # report.html, the self-contained HTML report
    #: the run record and quality_report.json name the input by its file name; True keeps its full path
    record_paths: bool = False


@dataclass(frozen=True)
class RunConfig:
    """Everything that shapes an analysis; stored in the run record."""

    as_of: str | dt.date | dt.datetime | None = None  # snapshot: only lines before it (default: day after the last)
    random_state: int = 42  # seed of every random step: the same input gives the same results
    input: InputConfig = field(default_factory=InputConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    segmentation: SegmentConfig = field(default_factory=SegmentConfig)
    insights: InsightsConfig | None = field(default_factory=InsightsConfig)
    value: ValueConfig | None = field(default_factory=ValueConfig)
    recommend: RecommendConfig | None = field(default_factory=RecommendConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self):
        parse_as_of(self.as_of, "as_of")
        sections = {"input": InputConfig, "cleaning": CleaningConfig, "engine": EngineConfig,
                    "segmentation": SegmentConfig, "insights": InsightsConfig, "value": ValueConfig,
                    "recommend": RecommendConfig, "output": OutputConfig}
        for name, kind in sections.items():
            value = getattr(self, name)
            optional = name in ("insights", "value", "recommend")
            if value is None and optional:
                continue
            if not isinstance(value, kind):
                raise ConfigError(f"{name} takes a {kind.__name__}{' or None' if optional else ''}, "
                                  f"not {type(value).__name__}", parameter=name)

    @property
    def as_of_date(self) -> dt.datetime | None:
        """The snapshot as a datetime (None: the day after the last transaction)."""
        return parse_as_of(self.as_of)

    def as_dict(self) -> dict:
        """The settings as JSON-ready nested dicts (the run record's ``parameters``)."""
        out = dataclasses.asdict(self)
        out["as_of"] = str(self.as_of) if self.as_of is not None else None
        mapping = self.input.mapping
        out["input"]["mapping"] = dict(mapping) if isinstance(mapping, Mapping) else list(mapping)
        if self.insights is not None and self.insights.migration_from is not None:
            out["insights"]["migration_from"] = str(self.insights.migration_from)
        return out

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_options(cls, **options: Any) -> RunConfig:
        """Build a config from flat keywords, as ``customerlens.analyze(data, **options)`` takes them.

        Parameters
        ----------
        **options
            Any of :data:`OPTIONS` (e.g. ``k=5``, ``as_of="2011-09-09"``,
            ``top_n=0``, ``charts=False``); ``value=False``,
            ``insights=False`` and ``top_n=0`` switch a stage off, ``cleaning``
            takes a :class:`CleaningConfig`.
        """
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                              f"options: {', '.join(sorted(OPTIONS))}", parameter=unknown[0])
        sections: dict[str, dict[str, Any]] = {}
        top: dict[str, Any] = {}
        for name, value in options.items():
            section, key = OPTIONS[name]
            if section is None:
                top[key] = value
            else:
                sections.setdefault(section, {})[key] = value
        enabled: dict[str, Any] = {}
        for name in ("value", "insights"):  # True/False, None (off) or the section itself
            choice = top.pop(name, True)
            if isinstance(choice, ValueConfig | InsightsConfig):
                if name in sections:
                    raise ConfigError(f"give {name} as a section or its options ({', '.join(sections[name])}), "
                                      "not both", parameter=name)
                choice = sections.setdefault(name, dataclasses.asdict(choice)) is not None
            enabled[name] = bool(choice)
        top_n = sections.get("recommend", {}).get("top_n", 10)
        if top_n is not None and top_n < 0:
            raise ConfigError(f"recommend.top_n must be 0 (no recommendations) or more, got {top_n}",
                              parameter="recommend.top_n")
        if top_n == 0:
            enabled["recommend"] = False
            sections.pop("recommend")
        built: dict[str, Any] = {}
        kinds = {"input": InputConfig, "engine": EngineConfig, "segmentation": SegmentConfig,
                 "insights": InsightsConfig, "value": ValueConfig, "recommend": RecommendConfig,
                 "output": OutputConfig}
        for name, kind in kinds.items():
            if enabled.get(name, True) is False:
                built[name] = None
            elif name in sections:
                built[name] = kind(**sections[name])
        return cls(**top, **built)


#: flat option name -> (section, field); section None: a field of RunConfig itself
OPTIONS: dict[str, tuple[str | None, str]] = {
    "as_of": (None, "as_of"),
    "random_state": (None, "random_state"),
    "cleaning": (None, "cleaning"),
    "value": (None, "value"),
    "insights": (None, "insights"),
    "mapping": ("input", "mapping"),
    "encoding": ("input", "encoding"),
    "sheet": ("input", "sheet"),
    "table": ("input", "table"),
    "date_format": ("input", "date_format"),
    "engine": ("engine", "name"),
    "spark_master": ("engine", "spark_master"),
    "spark_kmeans_above": ("engine", "spark_kmeans_above"),
    "spark_als_above": ("engine", "spark_als_above"),
    "spark_checkpoint_dir": ("engine", "spark_checkpoint_dir"),
    "spark_conf": ("engine", "spark_conf"),
    "memory_limit": ("engine", "memory_limit"),
    "workers": ("engine", "workers"),
    "method": ("segmentation", "method"),
    "k": ("segmentation", "k"),
    "k_range": ("segmentation", "k_range"),
    "segment_features": ("segmentation", "features"),
    "top_products": ("insights", "top_products"),
    "migration_from": ("insights", "migration_from"),
    "top_n": ("recommend", "top_n"),
    "recommender": ("recommend", "model"),
    "exclude_bought": ("recommend", "exclude_bought"),
    "discovery_slots": ("recommend", "discovery_slots"),
    "horizon_days": ("value", "horizon_days"),
    "clv_months": ("value", "clv_months"),
    "discount_rate": ("value", "discount_rate"),
    "value_model": ("value", "model"),
    "charts": ("output", "charts"),
    "report": ("output", "report"),
    "record_paths": ("output", "record_paths"),
}
