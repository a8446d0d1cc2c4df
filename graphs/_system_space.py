"""Decision spaces of the system's agents and how they act on a pipeline config.

A *composition* is a set of named arms (each a full pipeline config, as the
flat dotted dict of :class:`~agenticrec.tools.pipeline.PipelineConfig`) plus a
routing from user segments to arms. Agents own disjoint slices of an arm's
knobs: each recall channel its quota and pre-ranking weight, the ranking
fusion agent its head weights, the re-ranker its MMR knobs. The structural
grammar decides which channels and heads participate and how they fuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, field_validator

from agenticrec.tools.pipeline import CHANNELS, HEADS, PipelineConfig

__all__ = [
    "ChannelSpace",
    "RankingSpace",
    "RerankSpace",
    "RoutingDecision",
    "StructureProposals",
    "StructureSpace",
    "apply_structure",
    "es_step",
    "normalise",
    "structure_of",
]

Channel = Literal["cf", "item2item", "embedding", "popular", "fresh"]
Head = Literal["cf", "content", "engage", "like", "pop", "recency"]
assert set(Channel.__args__) == set(CHANNELS) and set(Head.__args__) == set(HEADS)


class ChannelSpace(BaseModel):
    """A recall channel's knobs."""

    quota: float = Field(ge=0.0, le=1.0, description="Share of recall slots.")
    prerank_weight: float = Field(ge=0.0, le=5.0, description="Pre-ranking weight.")


class RankingSpace(BaseModel):
    """The ranking fusion's knobs: one weight per score head, and the fusion."""

    fusion: Literal["additive", "multiplicative"] = "additive"
    w_cf: float = Field(1.0, ge=0.0, le=5.0)
    w_content: float = Field(0.2, ge=0.0, le=5.0)
    w_engage: float = Field(0.1, ge=0.0, le=5.0)
    w_like: float = Field(0.1, ge=0.0, le=5.0)
    w_pop: float = Field(0.2, ge=0.0, le=5.0)
    w_recency: float = Field(0.5, ge=0.0, le=5.0)


class RerankSpace(BaseModel):
    """The MMR re-ranker's knobs."""

    mmr_lambda: float = Field(0.9, ge=0.0, le=1.0)
    novelty_weight: float = Field(0.0, ge=0.0, le=1.0)
    max_per_category: int = Field(10, ge=1, le=10)


def _distinct(v: list[str]) -> list[str]:
    if len(set(v)) != len(v):
        raise ValueError(f"duplicate entries in {v}")
    return v


class StructureSpace(BaseModel):
    """The grammar of structures: which channels recall, which heads rank, how
    heads fuse. Only these safe operations exist; nothing is executed."""

    channels: list[Channel] = Field(min_length=2, max_length=5)
    heads: list[Head] = Field(min_length=1, max_length=6)
    fusion: Literal["additive", "multiplicative"]

    @field_validator("channels", "heads")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        return _distinct(v)

    def key(self) -> str:
        return f"{sorted(self.channels)}|{sorted(self.heads)}|{self.fusion}"


class StructureProposals(BaseModel):
    """Structures the structural agent asks to screen (at most 12)."""

    proposals: list[StructureSpace] = Field(min_length=1, max_length=12)
    rationale: str = ""


class RoutingDecision(BaseModel):
    """Which arm serves each user segment."""

    routes: dict[str, str]
    rationale: str = ""


# ------------------------------------------------------------ config algebra
def normalise(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Quotas renormalised to sum to 1 (a zero total falls back to uniform)."""
    out = dict(flat)
    keys = [f"recall.quota.{c}" for c in CHANNELS]
    q = np.array([max(0.0, float(out[k])) for k in keys])
    q = q / q.sum() if q.sum() > 0 else np.full(len(keys), 1.0 / len(keys))
    q = np.round(q, 6)
    q[int(np.argmax(q))] += 1.0 - q.sum()  # exact sum after rounding
    for k, v in zip(keys, q, strict=True):
        out[k] = float(max(0.0, v))
    return out


def structure_of(flat: Mapping[str, Any]) -> StructureSpace:
    """The structure an arm currently has."""
    return StructureSpace(
        channels=[c for c in CHANNELS if flat[f"recall.quota.{c}"] > 0]
        or ["cf", "item2item"],
        heads=[h for h in HEADS if flat[f"ranking.w_{h}"] > 0] or ["cf"],
        fusion=flat["ranking.fusion"],
    )


_DEFAULT = PipelineConfig.default().to_flat()


def apply_structure(flat: Mapping[str, Any], s: StructureSpace) -> dict[str, Any]:
    """Zero the knobs of non-participating channels and heads; give newly
    participating ones their default value (or a small positive one)."""
    out = dict(flat)
    for c in CHANNELS:
        k = f"recall.quota.{c}"
        if c in s.channels:
            out[k] = out[k] if out[k] > 0 else max(_DEFAULT[k], 0.1)
        else:
            out[k] = 0.0
    for h in HEADS:
        k = f"ranking.w_{h}"
        if h in s.heads:
            out[k] = out[k] if out[k] > 0 else max(_DEFAULT[k], 0.1)
        else:
            out[k] = 0.0
    out["ranking.fusion"] = s.fusion
    return normalise(out)


def es_step(
    flat: Mapping[str, Any],
    knobs: list[str],
    sigma: float,
    rng: np.random.Generator,
    n: int,
) -> list[dict[str, Any]]:
    """``n`` Gaussian perturbations of ``knobs`` (relative to each knob's
    range, clipped to bounds), the other knobs unchanged."""
    bounds = PipelineConfig.bounds()
    out = []
    for _ in range(n):
        cand = dict(flat)
        for k in knobs:
            b = bounds[k]
            span = b.high - b.low
            v = float(cand[k]) + rng.normal() * sigma * span
            v = min(b.high, max(b.low, v))
            cand[k] = int(round(v)) if b.kind == "int" else round(v, 4)
        out.append(normalise(cand))
    return out
