"""The deterministic policy: every role's documented rule or search method."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ValidationError

from agenticrec.errors import PolicyError
from agenticrec.policy._decision import Decision
from agenticrec.policy._roles import Observation, Role, get_role

__all__ = ["RulePolicy", "resolve_role", "rule_value"]


def resolve_role(role: str | Role) -> Role:
    return role if isinstance(role, Role) else get_role(role)


def rule_value(role: Role, observation: Observation) -> BaseModel:
    """Run the role's rule and validate its output against the schema.

    A rule that returns an invalid value is a bug in agenticrec, not a model
    failure, so it raises instead of falling back.
    """
    out: Any = role.rule(observation)
    try:
        value = out if isinstance(out, role.schema) else role.schema.model_validate(out)
        if role.check is not None:
            role.check(value, observation)
    except (ValidationError, ValueError) as exc:
        raise PolicyError(
            f"rule policy of role {role.name!r} produced an invalid decision: {exc}"
        ) from exc
    return value


class RulePolicy:
    """Decides every role with its rule. Used when no LLM endpoint is set."""

    name = "rule"

    def decide(self, role: str | Role, observation: Observation) -> Decision:
        r = resolve_role(role)
        start = time.perf_counter()
        value = rule_value(r, observation)
        return Decision(
            role=r.name,
            value=value,
            policy="rule",
            latency_ms=(time.perf_counter() - start) * 1e3,
        )
