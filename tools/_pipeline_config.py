"""`PipelineConfig`: every knob of the multi-stage recommender, with bounds.

Knobs have stable dotted names (``recall.quota.cf``, ``ranking.w_cf``,
``rerank.mmr_lambda``); the Skillhub seeds and the agents use them. Bounds live
in the pydantic fields (``ge``/``le``), so validation, :meth:`bounds` and
:meth:`from_vector` share one source. A config turns into kernel arguments
with :func:`to_params` (host side, once per evaluation): the knobs become
traced arrays, so a new config never recompiles the kernel.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agenticrec.errors import ConfigError

__all__ = [
    "CHANNELS",
    "HEADS",
    "LIST_SIZE",
    "MAX_KEEP_TOP",
    "MAX_TOTAL",
    "MAX_WINDOW",
    "Params",
    "PipelineConfig",
    "PrerankConfig",
    "RankingConfig",
    "RecallConfig",
    "RecallQuota",
    "RerankConfig",
    "to_params",
]

CHANNELS: tuple[str, ...] = ("cf", "item2item", "embedding", "popular", "fresh")
"""Recall channels, in kernel order (see :mod:`agenticrec.tools.pipeline`)."""
HEADS: tuple[str, ...] = ("cf", "content", "engage", "like", "pop", "recency")
"""Ranking score heads, in kernel order."""

LIST_SIZE = 10
"""Length of the final list (the metrics are @10)."""
MAX_TOTAL = 500
"""Upper bound of ``recall.total``: each channel's ranked list is this deep."""
MAX_KEEP_TOP = 300
"""Upper bound of ``prerank.keep_top`` (a static size of the kernel)."""
MAX_WINDOW = 100
"""Upper bound of ``rerank.window`` (a static size of the kernel)."""
_QUOTA_TOL = 1e-6
_W = {"ge": 0.0, "le": 5.0, "allow_inf_nan": False}


class _Stage(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True
    )


class RecallQuota(_Stage):
    """Share of ``recall.total`` each channel fills; the shares sum to 1."""

    cf: float = Field(0.35, ge=0.0, le=1.0, allow_inf_nan=False)
    """User-based CF: items of the user's nearest neighbours."""
    item2item: float = Field(0.3, ge=0.0, le=1.0, allow_inf_nan=False)
    """Item co-occurrence (cosine) with the user's recency-weighted history."""
    embedding: float = Field(0.1, ge=0.0, le=1.0, allow_inf_nan=False)
    """Content: cosine of item text embeddings with the user's profile."""
    popular: float = Field(0.1, ge=0.0, le=1.0, allow_inf_nan=False)
    """All-time popularity."""
    fresh: float = Field(0.15, ge=0.0, le=1.0, allow_inf_nan=False)
    """Popularity in the weeks before the user's latest interaction."""

    @model_validator(mode="after")
    def _sum_to_one(self) -> RecallQuota:
        shares = self.model_dump()
        total = sum(shares.values())
        if abs(total - 1.0) > _QUOTA_TOL:
            listed = ", ".join(f"{k}={v:g}" for k, v in shares.items())
            raise ValueError(
                f"recall.quota.* are shares of recall.total and must sum to 1, "
                f"got {total:g} ({listed}); move share from one channel to another"
            )
        return self


class RecallConfig(_Stage):
    """Candidate generation: each channel contributes its top slots."""

    total: int = Field(300, ge=50, le=MAX_TOTAL)
    """Candidate budget: slots shared by the channels (union after dedup)."""
    quota: RecallQuota = Field(default_factory=RecallQuota)


class PrerankConfig(_Stage):
    """Light scoring of the candidates: a weighted sum of channel scores."""

    w_cf: float = Field(1.0, **_W)
    """Weight of the user-CF channel score (max-normalised per user)."""
    w_item2item: float = Field(1.0, **_W)
    """Weight of the co-occurrence channel score."""
    w_embedding: float = Field(0.2, **_W)
    """Weight of the content channel score."""
    w_popular: float = Field(0.2, **_W)
    """Weight of the popularity channel score."""
    w_fresh: float = Field(0.5, **_W)
    """Weight of the fresh channel score."""
    keep_top: int = Field(150, ge=20, le=MAX_KEEP_TOP)
    """Candidates passed on to ranking."""


class RankingConfig(_Stage):
    """Ranking: fusion of score heads, each in [0, 1]."""

    fusion: Literal["additive", "multiplicative"] = "additive"
    """``additive``: sum_h w_h head_h; ``multiplicative``: prod_h (head_h +
    0.01) ** w_h (ranked by its logarithm)."""
    w_cf: float = Field(1.0, **_W)
    """Collaborative head: mean of the user-CF and co-occurrence scores."""
    w_content: float = Field(0.2, **_W)
    """Content similarity head."""
    w_engage: float = Field(0.1, **_W)
    """Engagement prior: the item's shrunk mean rating."""
    w_like: float = Field(0.1, **_W)
    """Like prior: the item's shrunk share of ratings >= 4."""
    w_pop: float = Field(0.2, **_W)
    """Popularity prior: log popularity."""
    w_recency: float = Field(0.5, **_W)
    """Recency: the item's popularity just before the user's latest time."""


class RerankConfig(_Stage):
    """Re-ranking of the ranked window into the final list."""

    mmr_lambda: float = Field(0.9, ge=0.0, le=1.0, allow_inf_nan=False)
    """MMR trade-off: 1 keeps the ranking order, lower buys diversity."""
    window: int = Field(50, ge=LIST_SIZE, le=MAX_WINDOW)
    """Ranked candidates MMR may choose from."""
    similarity: Literal["genre_jaccard", "embedding_cosine"] = "genre_jaccard"
    """Item similarity MMR penalises."""
    max_per_category: int = Field(10, ge=1, le=LIST_SIZE)
    """Most items of the final list sharing one category (10: no cap)."""
    novelty_weight: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    """Bonus on normalised novelty added to the normalised relevance."""


class Bound(NamedTuple):
    """Search range of one knob (``kind`` categorical: indices of choices)."""

    low: float
    high: float
    kind: Literal["float", "int", "categorical"]


class PipelineConfig(_Stage):
    """Every knob of the four stages; all have bounds and defaults.

    Construct it from nested dicts (``PipelineConfig(**nested)``), from dotted
    overrides on the defaults (:meth:`from_flat`), or from a search vector
    (:meth:`from_vector`). Validation errors name the knob, e.g.
    ``rerank.mmr_lambda = 1.5: Input should be less than or equal to 1``.

    The default (:meth:`default`) is a hand-set, sensible starting point:
    recall 300 candidates (35% user-CF, 30% co-occurrence, 10% content, 10%
    popular, 15% fresh), pre-rank by CF-heavy channel fusion to 150, rank by
    additive fusion led by the CF head with recency and popularity priors,
    and re-rank the top 50 with a light MMR (lambda 0.9, genre Jaccard), no
    category cap and no novelty bonus.
    """

    recall: RecallConfig = Field(default_factory=RecallConfig)
    prerank: PrerankConfig = Field(default_factory=PrerankConfig)
    ranking: RankingConfig = Field(default_factory=RankingConfig)
    rerank: RerankConfig = Field(default_factory=RerankConfig)

    # ------------------------------------------------------------ building
    @classmethod
    def default(cls) -> PipelineConfig:
        """The documented default configuration (see the class docstring)."""
        return cls()

    @classmethod
    def parse(cls, value: PipelineConfig | Mapping[str, Any] | None) -> PipelineConfig:
        """A config from a config, nested dict, dotted dict or ``None`` (default).

        Raises:
            ConfigError: naming the first offending knob.
        """
        if value is None:
            return cls.default()
        if isinstance(value, PipelineConfig):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"a pipeline config must be a PipelineConfig or a mapping, "
                f"got {type(value).__name__}"
            )
        if any("." in str(k) for k in value):
            return cls.from_flat(value)
        return _validate(lambda: cls.model_validate(dict(value)))

    @classmethod
    def from_flat(
        cls, flat: Mapping[str, Any], base: PipelineConfig | None = None
    ) -> PipelineConfig:
        """Dotted overrides applied to ``base`` (default: :meth:`default`).

        Example: ``PipelineConfig.from_flat({"ranking.w_cf": 2.0})``.

        Raises:
            ConfigError: unknown knob (with close names) or invalid value.
        """
        values = (base or cls.default()).to_flat()
        known = list(values)
        for key, value in flat.items():
            if key not in values:
                close = difflib.get_close_matches(str(key), known, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ConfigError(
                    f"unknown pipeline knob {key!r}{hint} (knobs: {', '.join(known)})"
                )
            values[key] = value
        nested: dict[str, Any] = {}
        for key, value in values.items():
            node = nested
            *parents, leaf = key.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return _validate(lambda: cls.model_validate(nested))

    # ------------------------------------------------------------ flat view
    def to_flat(self) -> dict[str, Any]:
        """``{dotted knob: value}`` in :meth:`knob_names` order."""
        out: dict[str, Any] = {}

        def walk(prefix: str, model: BaseModel) -> None:
            for name in type(model).model_fields:
                value = getattr(model, name)
                if isinstance(value, BaseModel):
                    walk(f"{prefix}{name}.", value)
                else:
                    out[f"{prefix}{name}"] = value

        walk("", self)
        return out

    def diff(self, other: PipelineConfig) -> dict[str, tuple[Any, Any]]:
        """Knobs whose values differ: ``{knob: (self's, other's)}``."""
        a, b = self.to_flat(), other.to_flat()
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}

    @classmethod
    def knob_names(cls) -> tuple[str, ...]:
        """Every knob, in vector order."""
        return tuple(_specs())

    @classmethod
    def bounds(cls) -> dict[str, Bound]:
        """``{knob: (low, high, kind)}``, kind ``"float"``, ``"int"`` or
        ``"categorical"`` (then low/high are the first and last choice index,
        see :meth:`choices`)."""
        return {k: s.bound for k, s in _specs().items()}

    @classmethod
    def choices(cls) -> dict[str, tuple[str, ...]]:
        """Options of the categorical knobs, in index order."""
        return {k: s.choices for k, s in _specs().items() if s.choices}

    @classmethod
    def describe(cls) -> dict[str, dict[str, Any]]:
        """Per knob: bounds, kind, choices, default and meaning (for agents)."""
        default = cls.default().to_flat()
        return {
            k: {
                "low": s.bound.low,
                "high": s.bound.high,
                "kind": s.bound.kind,
                **({"choices": list(s.choices)} if s.choices else {}),
                "default": default[k],
                "doc": s.doc,
            }
            for k, s in _specs().items()
        }

    # ----------------------------------------------------------- vectors
    def to_vector(self) -> np.ndarray:
        """``f64[n_knobs]`` in :meth:`knob_names` order; categorical knobs as
        the index of their choice."""
        flat = self.to_flat()
        out = []
        for k, s in _specs().items():
            v = flat[k]
            out.append(float(s.choices.index(v)) if s.choices else float(v))
        return np.asarray(out, dtype=np.float64)

    @classmethod
    def from_vector(cls, vector: Any) -> PipelineConfig:
        """The config nearest to a point of the search box.

        Values are clipped to their bounds, integers and categorical indices
        rounded, and the recall quotas divided by their sum (equal shares if
        all are 0), so any finite vector maps to a valid config.

        Raises:
            ConfigError: wrong length or non-finite entries.
        """
        v = np.asarray(vector, dtype=np.float64)
        specs = _specs()
        if v.shape != (len(specs),):
            raise ConfigError(
                f"a config vector has {len(specs)} entries ({', '.join(specs)}), "
                f"got shape {v.shape}"
            )
        if not np.isfinite(v).all():
            bad = [k for k, x in zip(specs, v, strict=True) if not np.isfinite(x)]
            raise ConfigError(f"config vector is not finite at {', '.join(bad)}")
        flat: dict[str, Any] = {}
        for (k, s), x in zip(specs.items(), v, strict=True):
            x = float(np.clip(x, s.bound.low, s.bound.high))
            if s.choices:
                flat[k] = s.choices[int(np.floor(x + 0.5))]
            elif s.bound.kind == "int":
                flat[k] = int(np.floor(x + 0.5))
            else:
                flat[k] = x
        quota = [f"recall.quota.{c}" for c in CHANNELS]
        shares = np.array([flat[k] for k in quota])
        if shares.sum() <= 0:
            shares = np.full(len(quota), 1.0 / len(quota))
        elif abs(shares.sum() - 1.0) > _QUOTA_TOL:
            shares = shares / shares.sum()
        for k, x in zip(quota, shares, strict=True):
            flat[k] = float(x)
        return cls.from_flat(flat)


# --------------------------------------------------------------- knob specs
class _Spec(NamedTuple):
    bound: Bound
    choices: tuple[str, ...]
    doc: str


_SPECS: dict[str, _Spec] | None = None


def _specs() -> dict[str, _Spec]:
    global _SPECS
    if _SPECS is None:
        _SPECS = {}
        _collect(PipelineConfig, "", _SPECS)
    return _SPECS


def _collect(model: type[BaseModel], prefix: str, out: dict[str, _Spec]) -> None:
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            _collect(ann, f"{prefix}{name}.", out)
            continue
        doc = " ".join((field.description or "").split())
        if typing.get_origin(ann) is Literal:
            choices = tuple(typing.get_args(ann))
            out[prefix + name] = _Spec(
                Bound(0.0, float(len(choices) - 1), "categorical"), choices, doc
            )
            continue
        low = high = None
        for meta in field.metadata:
            low = getattr(meta, "ge", low)
            high = getattr(meta, "le", high)
        kind = "int" if ann is int else "float"
        out[prefix + name] = _Spec(Bound(float(low), float(high), kind), (), doc)


def _validate(build) -> PipelineConfig:
    try:
        return build()
    except ValidationError as exc:
        err = exc.errors()[0]
        knob = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown pipeline knob {knob!r}"
            raise ConfigError(msg) from None
        shown = (
            ""
            if "input" not in err or isinstance(err["input"], dict)
            else (f" = {err['input']!r}")
        )
        spec = _specs().get(knob)
        hint = ""
        if spec is not None:
            b = spec.bound
            hint = (
                f" (choices: {', '.join(spec.choices)})"
                if spec.choices
                else f" (bounds [{b.low:g}, {b.high:g}], {b.kind})"
            )
        raise ConfigError(f"{knob}{shown}: {msg}{hint}") from None


# ------------------------------------------------------------ kernel params
class Params(NamedTuple):
    """A config as kernel arguments (host numpy; traced inside the kernel)."""

    slots: np.ndarray
    """``i32[c]`` recall slots per channel (largest remainder of quota x total)."""
    w_pre: np.ndarray
    """``f32[c]`` pre-ranking weights per channel."""
    keep_top: np.ndarray
    """``i32[]`` candidates kept by pre-ranking."""
    w_rank: np.ndarray
    """``f32[h]`` ranking weights per head."""
    multiplicative: np.ndarray
    """``bool[]`` multiplicative fusion (sum of weighted log heads)."""
    window: np.ndarray
    """``i32[]`` re-ranking window."""
    mmr_lambda: np.ndarray
    """``f32[]``."""
    embedding_similarity: np.ndarray
    """``bool[]`` MMR on embedding cosine instead of genre Jaccard."""
    cap: np.ndarray
    """``i32[]`` most final items per category."""
    novelty_weight: np.ndarray
    """``f32[]``."""


def apportion(shares: np.ndarray, total: int) -> np.ndarray:
    """Integer slots summing to ``total`` in proportion to ``shares`` (largest
    remainder; ties to the earlier channel)."""
    exact = np.asarray(shares, np.float64) * total
    slots = np.floor(exact + 1e-9).astype(np.int64)
    rest = total - int(slots.sum())
    if rest > 0:
        order = np.argsort(-(exact - slots), kind="stable")
        slots[order[:rest]] += 1
    return slots.astype(np.int32)


def to_params(config: PipelineConfig) -> Params:
    """Kernel arguments of a validated config (computed on the host, so the
    jitted kernel and the numpy reference read identical numbers)."""
    q, p, r, rr = config.recall.quota, config.prerank, config.ranking, config.rerank
    shares = np.array([getattr(q, c) for c in CHANNELS])
    return Params(
        slots=apportion(shares, config.recall.total),
        w_pre=np.array([getattr(p, f"w_{c}") for c in CHANNELS], np.float32),
        keep_top=np.int32(p.keep_top),
        w_rank=np.array([getattr(r, f"w_{h}") for h in HEADS], np.float32),
        multiplicative=np.bool_(r.fusion == "multiplicative"),
        window=np.int32(rr.window),
        mmr_lambda=np.float32(rr.mmr_lambda),
        embedding_similarity=np.bool_(rr.similarity == "embedding_cosine"),
        cap=np.int32(rr.max_per_category),
        novelty_weight=np.float32(rr.novelty_weight),
    )
