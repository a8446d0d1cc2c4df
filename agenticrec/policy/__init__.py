"""Every agent decision, with or without an LLM.

``policy.decide(role, observation) -> Decision``. :class:`RulePolicy` runs each
role's documented deterministic rule; :class:`LLMPolicy` asks a chat model,
validates the reply against the role's pydantic schema, retries with the
validation error, and falls back to the rule, recording why.
"""

from __future__ import annotations

from typing import Protocol

from agenticrec.context import Context
from agenticrec.policy._decision import Decision
from agenticrec.policy._llm import LLMPolicy, parse_json_reply
from agenticrec.policy._roles import Observation, Role, get_role, register_role, roles
from agenticrec.policy._rule import RulePolicy

__all__ = [
    "Decision",
    "LLMPolicy",
    "Policy",
    "Role",
    "RulePolicy",
    "get_role",
    "make_policy",
    "parse_json_reply",
    "register_role",
    "roles",
]


class Policy(Protocol):
    """Anything that decides for a role."""

    name: str

    def decide(self, role: str | Role, observation: Observation) -> Decision: ...


def make_policy(context: Context | None = None) -> Policy:
    """``LLMPolicy`` when the context names an endpoint, else ``RulePolicy``."""
    ctx = context or Context()
    return LLMPolicy(context=ctx) if ctx.llm_configured else RulePolicy()
