"""Skill records: what the Skill agent writes and the Actor agent retrieves."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

__all__ = [
    "Evidence",
    "KnobValue",
    "Skill",
    "SkillSource",
    "retrieval_weight",
]

#: A configuration value: a fusion weight, a quota, a switch or a named option.
KnobValue = bool | int | float | str
SkillSource = Literal["seed", "distilled"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return f"skill-{uuid.uuid4().hex[:12]}"


class Evidence(BaseModel):
    """One A/B experiment behind a skill.

    Attributes:
        experiment_id: the experiment's id in :class:`ExperimentMemory`; a
            skill holds each id at most once, which makes recording idempotent.
        knob_changes: knob -> value tested in the treatment arm.
        effects: metric -> measured change versus control (absolute, same unit
            as the metric), plus optional statistics such as ``"p"``, e.g.
            ``{"NDCG@10": 0.012, "p": 0.01}``.
        note: one line of interpretation.
    """

    model_config = ConfigDict(extra="forbid")

    experiment_id: str = Field(min_length=1)
    knob_changes: dict[str, KnobValue] = Field(default_factory=dict)
    effects: dict[str, float] = Field(default_factory=dict)
    note: str = ""


class Skill(BaseModel):
    """A reusable tuning strategy for one kind of task.

    Attributes:
        id: stable id (letters, digits, ``._-``); generated when omitted.
        title: one line naming the strategy.
        task_context: when the skill applies (stage, traffic, model change).
        requirement: the goal and guardrails it was made for.
        north_star: the metric the task optimises, e.g. ``"NDCG@10"``; merging
            only joins skills with the same north star.
        stage: pipeline stage (``recall``, ``pre-ranking``, ``ranking``,
            ``rerank``, ``any``), a metadata filter.
        dataset: dataset or surface the skill was learned on (``any`` for
            general skills), a metadata filter.
        initial_config: knob -> starting value; knob names are generic
            (``ranking.w_cf``) and mapped to a concrete system by the caller.
        domain_knowledge: the mechanism: why and how the knobs move metrics.
        tools: names of the tools the skill uses.
        evidence: experiments that tested it.
        success_count, failure_count: outcomes recorded by the tune graph.
        created_at, updated_at: UTC times.
        source: ``seed`` (shipped, never pruned) or ``distilled`` (written by
            the Skill agent from experiments).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=_new_id)
    title: str = Field(min_length=1)
    task_context: str = ""
    requirement: str = ""
    north_star: str = Field(min_length=1)
    stage: str = "any"
    dataset: str = "any"
    initial_config: dict[str, KnobValue] = Field(default_factory=dict)
    domain_knowledge: str = ""
    tools: list[str] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    success_count: NonNegativeInt = 0
    failure_count: NonNegativeInt = 0
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now)
    source: SkillSource = "distilled"

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(
                f"skill id {value!r} must be 1-128 characters from [A-Za-z0-9._-] "
                "starting with a letter or digit"
            )
        return value

    def embedding_text(self) -> str:
        """Text embedded for retrieval: title, context, requirement, knowledge.

        The MiniLM encoder reads the first 256 tokens, so the fields that say
        what the task is come first.
        """
        parts = (self.title, self.task_context, self.requirement, self.domain_knowledge)
        return "\n".join(p.strip() for p in parts if p.strip())

    def metadata(self) -> dict[str, Any]:
        """Flat Chroma metadata: filter keys plus the whole record as JSON."""
        return {
            "title": self.title,
            "north_star": self.north_star,
            "stage": self.stage,
            "dataset": self.dataset,
            "source": self.source,
            "success_count": self.success_count,
            "failure_count": self.failure_count,
            "n_evidence": len(self.evidence),
            "knobs": ",".join(sorted(self.initial_config)),
            "tools": ",".join(self.tools),
            "created_at": self.created_at.timestamp(),
            "updated_at": self.updated_at.timestamp(),
            "record": self.model_dump_json(),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> Skill:
        return cls.model_validate(json.loads(metadata["record"]))

    @property
    def failure_rate(self) -> float:
        """Failures over recorded outcomes (0 when none were recorded)."""
        n = self.success_count + self.failure_count
        return self.failure_count / n if n else 0.0


def retrieval_weight(skill: Skill) -> float:
    """Multiplier on similarity in search ranking, in ``(0.75, 1.25)``.

    ``0.75 + 0.5 * r`` with ``r = (successes + 1) / (outcomes + 2)``, the
    Laplace-smoothed success rate: a skill without outcomes gets exactly 1, one
    that keeps failing sinks towards 0.75 (this is how seeds, which are never
    pruned, are down-weighted), and one that keeps working rises towards 1.25.
    The band is narrow on purpose: a proven skill for another task should not
    outrank a fresh one for this task.
    """
    s, f = skill.success_count, skill.failure_count
    return 0.75 + 0.5 * (s + 1) / (s + f + 2)
