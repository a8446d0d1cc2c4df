"""What a policy returns: the validated decision plus how it was reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)

__all__ = ["Decision"]


@dataclass(frozen=True)
class Decision(Generic[T]):
    """One agent decision.

    Attributes:
        role: the role that decided (``"coordinator"``, ``"planner"``, ...).
        value: the decision, an instance of the role's pydantic schema.
        policy: who decided: ``"rule"`` or ``"llm:<model>"``.
        latency_ms: wall time of the whole decision, retries included.
        fallback_reason: why the rule policy decided for an LLM policy (the
            last error), ``None`` when the configured policy decided.
        attempts: model calls made (0 for the rule policy).
        messages: the exchanged chat messages in OpenAI form, failed attempts
            included, so trajectories show what the model really said.
    """

    role: str
    value: T
    policy: str
    latency_ms: float
    fallback_reason: str | None = None
    attempts: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """JSON-ready form for trajectories and reports."""
        return {
            "role": self.role,
            "decision": self.value.model_dump(mode="json"),
            "policy": self.policy,
            "latency_ms": round(self.latency_ms, 3),
            "fallback_reason": self.fallback_reason,
            "attempts": self.attempts,
            "messages": self.messages,
        }
