"""The DualAgent-Rec coordinator role: decision schema, rule, prompt.

Every ``T`` generations the coordinator sees the optimisation state of the
whole batch of users and sets ``alpha``, the exploitation agent's share of
each user's population (one decision for the batch: one LLM call per round,
not one per user).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from agenticrec.policy import Role, register_role

__all__ = [
    "ALPHA_MAX",
    "ALPHA_MIN",
    "ROLE",
    "CoordinatorDecision",
    "coordinator_rule",
]

ALPHA_MIN, ALPHA_MAX = 0.2, 0.8
ROLE = "dualagent.coordinator"


class CoordinatorDecision(BaseModel):
    """The new exploitation share and why."""

    exploitation_ratio: float = Field(
        ge=ALPHA_MIN,
        le=ALPHA_MAX,
        description="Share of each population given to the exploitation agent.",
    )
    reasoning: str = Field(default="", max_length=2000)


def coordinator_rule(obs: Mapping[str, Any]) -> CoordinatorDecision:
    """``alpha = 0.3 + 0.5 * progress`` (explore early, exploit late), then
    +0.1 while fewer than half of the solutions are strictly feasible
    (violations persist: more constraint-driven search), or -0.1 when the
    hypervolume improved by less than 0.5% over the last round before 80% of
    the budget is spent (stagnation: more exploration); clipped to
    [0.2, 0.8] and rounded to 2 decimals."""
    progress = float(obs["progress"])
    feas = float(obs["feasibility_rate"])
    improvement = obs.get("improvement_rate")
    alpha = 0.3 + 0.5 * progress
    why = [f"schedule 0.3 + 0.5 x progress {progress:.2f} = {alpha:.2f}"]
    if feas < 0.5:
        alpha += 0.1
        why.append(f"feasibility {feas:.2f} < 0.5: +0.1 toward exploitation")
    elif improvement is not None and improvement < 0.005 and progress < 0.8:
        alpha -= 0.1
        why.append(f"hypervolume gain {improvement:.4f} < 0.005: -0.1 to explore")
    alpha = round(min(ALPHA_MAX, max(ALPHA_MIN, alpha)), 2)
    return CoordinatorDecision(exploitation_ratio=alpha, reasoning="; ".join(why))


register_role(
    Role(
        ROLE,
        CoordinatorDecision,
        coordinator_rule,
        "dualagent_coordinator",
        description="DualAgent-Rec coordinator: exploitation share alpha",
    ),
    replace=True,
)
