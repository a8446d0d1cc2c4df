"""Agents as first-class units (AgenticRS): declared, checked, listed.

The AgenticRS paper asks three things of a module before it may call itself
an agent: a **closed loop** (it names what it reads and what it produces), an
**evaluation of its own** (an inner reward computed from its own outputs) and
an **evolvable decision space** (a typed, bounded space of configurations or
structures). :func:`register_agent` refuses a declaration that lacks any of
them and says which is missing.

``kind`` separates *functional* agents (the tune loop, the experiment
orchestrator) from *model-centric* ones (a recall channel, the ranking
fusion, a re-ranker). ``reward`` says which reward drives its updates:
``"inner"`` (its own evaluation) or ``"outer"`` (the system's), the latter for
the few coordinating agents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from agenticrec.errors import ConfigError

__all__ = ["AgentSpec", "agents", "get_agent", "register_agent"]


@dataclass(frozen=True)
class AgentSpec:
    """An agent declaration.

    Attributes:
        name: unique name (``"recall.cf"``).
        kind: ``"functional"`` or ``"model"``.
        inputs: what the agent reads (closed loop, part 1).
        outputs: what it produces (closed loop, part 2).
        evaluate: its inner reward: ``(outputs, context) -> {metric: value}``;
            the first key is the reward.
        decision_space: a pydantic model whose fields, with bounds, are the
            space the agent may evolve in.
        reward: ``"inner"`` or ``"outer"``: what its updates maximise.
        evolution: ``"search"`` (ES / bandit), ``"llm"`` (structural proposals
            validated against a grammar) or ``"compositional"``.
        description: one line for listings.
    """

    name: str
    kind: Literal["functional", "model"]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    evaluate: Callable[..., Mapping[str, float]] | None
    decision_space: type[BaseModel] | None
    reward: Literal["inner", "outer"] = "inner"
    evolution: str = "search"
    description: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def space(self) -> dict[str, Any]:
        """The decision space as JSON schema (bounds included)."""
        assert self.decision_space is not None
        return self.decision_space.model_json_schema()


_AGENTS: dict[str, AgentSpec] = {}


def register_agent(spec: AgentSpec, *, replace: bool = False) -> AgentSpec:
    """Check the three AgenticRS constraints and register ``spec``."""
    missing = []
    if not spec.inputs or not spec.outputs:
        missing.append("inputs and outputs (closed loop)")
    if spec.evaluate is None or not callable(spec.evaluate):
        missing.append("an evaluation (inner reward)")
    space = spec.decision_space
    if not (isinstance(space, type) and issubclass(space, BaseModel)):
        missing.append("a decision space (a pydantic model with bounds)")
    elif not space.model_fields:
        missing.append("a non-empty decision space")
    if missing:
        raise ConfigError(f"agent {spec.name!r} is missing: {', '.join(missing)}")
    if spec.kind not in ("functional", "model"):
        raise ConfigError(f"agent {spec.name!r}: kind must be functional or model")
    if spec.name in _AGENTS and not replace and _AGENTS[spec.name] != spec:
        raise ConfigError(f"agent {spec.name!r} is already registered")
    _AGENTS[spec.name] = spec
    return spec


def get_agent(name: str) -> AgentSpec:
    try:
        return _AGENTS[name]
    except KeyError:
        raise ConfigError(f"unknown agent {name!r}; known: {sorted(_AGENTS)}") from None


def agents() -> dict[str, AgentSpec]:
    """A copy of the registry (filled as graphs register their agents when
    :func:`agenticrec.graphspec.load_graphs` imports them)."""
    return dict(_AGENTS)
