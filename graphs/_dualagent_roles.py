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
    "CONTRIBUTION_FULL",
    "ROLE",
    "CoordinatorDecision",
    "coordinator_rule",
]

ALPHA_MIN, ALPHA_MAX = 0.2, 0.95
ROLE = "dualagent.coordinator"


class CoordinatorDecision(BaseModel):
    """The new exploitation share and why."""

    exploitation_ratio: float = Field(
        ge=ALPHA_MIN,
        le=ALPHA_MAX,
        description="Share of each population given to the exploitation agent.",
    )
    reasoning: str = Field(default="", max_length=2000)


CONTRIBUTION_FULL = 0.2
"""Exploration's share of the feasible front's volume at which the rule
gives it the most of the population (alpha = ALPHA_MIN)."""


def coordinator_rule(obs: Mapping[str, Any]) -> CoordinatorDecision:
    """Give exploration the share of the population its solutions earn on
    the strictly feasible front: with ``c`` the part of the front's volume
    only exploration's solutions hold (``explore_contribution``),
    ``alpha = 0.95 - 0.75 * min(1, c / 0.2)``; +0.1 while fewer than half
    of the solutions are strictly feasible (violations persist); 0.95 once
    80% of the budget is spent (feasible solutions must win at the end);
    clipped to [0.2, 0.95], rounded to 2 decimals.

    Why 0.95, not 0.8 (the cap until 2026-12-07): in the experiment grid
    exploit-only (alpha 1) beat the rule in all 21 cells, so a floor of 20%
    of the population for exploration was budget the feasible front did not
    use whenever exploration contributed nothing; 5% remains so that its
    contribution stays measurable (at alpha 1 it could never earn slots
    back).

    Why contribution, not a progress schedule: on ml-100k (held out from
    the grid) the schedule ``0.3 + 0.5 x progress`` gave exploration slots
    whose lists were never strictly feasible, so they added nothing to the
    hypervolume (which counts feasible lists only) and lost 0.3-0.5% of
    hypervolume to a constant 0.8; the contribution signal measures exactly
    that waste."""
    progress = float(obs["progress"])
    feas = float(obs["feasibility_rate"])
    c = obs.get("explore_contribution")
    c = 0.0 if c is None else max(0.0, float(c))
    alpha = ALPHA_MAX - (ALPHA_MAX - ALPHA_MIN) * min(1.0, c / CONTRIBUTION_FULL)
    why = [f"exploration holds {c:.3f} of the feasible front: {alpha:.2f}"]
    if feas < 0.5:
        alpha += 0.1
        why.append(f"feasibility {feas:.2f} < 0.5: +0.1 toward exploitation")
    if progress >= 0.8:
        alpha = ALPHA_MAX
        why.append(f"progress {progress:.2f} >= 0.8: exploit the rest")
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
