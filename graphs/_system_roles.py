"""Roles of the system graph that decide through the policy layer.

* ``system.structure``: LLM-based individual evolution of the ranking
  structure. Proposals must parse as :class:`StructureSpace` (the grammar of
  safe operations: channel subset, head subset, fusion); every valid proposal
  is then screened offline. Rule: enumerate every single-edit neighbour of the
  current structure (add or drop one channel or head, flip the fusion).
* ``system.router``: compositional evolution of routing. Rule: for each user
  segment, the arm with the best offline outer reward on that segment (ties
  keep the current arm).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agenticrec.graphs._system_space import (
    RoutingDecision,
    StructureProposals,
    StructureSpace,
)
from agenticrec.policy import Role, register_role
from agenticrec.tools.pipeline import CHANNELS, HEADS

__all__ = ["neighbours"]


def neighbours(s: StructureSpace) -> list[StructureSpace]:
    """Single-edit neighbours of ``s`` that stay inside the grammar."""
    out = []
    for c in CHANNELS:
        chans = (
            [x for x in s.channels if x != c] if c in s.channels else [*s.channels, c]
        )
        if len(chans) >= 2:
            out.append(StructureSpace(channels=chans, heads=s.heads, fusion=s.fusion))
    for h in HEADS:
        heads = [x for x in s.heads if x != h] if h in s.heads else [*s.heads, h]
        if heads:
            out.append(
                StructureSpace(channels=s.channels, heads=heads, fusion=s.fusion)
            )
    flip = "multiplicative" if s.fusion == "additive" else "additive"
    out.append(StructureSpace(channels=s.channels, heads=s.heads, fusion=flip))
    return out[:12]


def structure_rule(obs: Mapping[str, Any]) -> StructureProposals:
    current = StructureSpace.model_validate(obs["current"])
    return StructureProposals(
        proposals=neighbours(current),
        rationale="all single-edit neighbours of the current structure",
    )


def router_rule(obs: Mapping[str, Any]) -> RoutingDecision:
    routes = {}
    for seg, scores in obs["segments"].items():
        current = obs["current"][seg]
        best = max(scores.items(), key=lambda kv: (kv[1], kv[0] == current))[0]
        routes[seg] = best
    return RoutingDecision(
        routes=routes, rationale="best offline outer reward per segment"
    )


def router_check(value: RoutingDecision, obs: Mapping[str, Any]) -> None:
    if set(value.routes) != set(obs["segments"]):
        raise ValueError(f"route every segment exactly: {sorted(obs['segments'])}")
    for seg, arm in value.routes.items():
        if arm not in obs["segments"][seg]:
            raise ValueError(f"segment {seg!r}: unknown arm {arm!r}")


register_role(
    Role(
        "system.structure",
        StructureProposals,
        structure_rule,
        "system_structure",
        description="propose ranking structures from the grammar",
    ),
    replace=True,
)
register_role(
    Role(
        "system.router",
        RoutingDecision,
        router_rule,
        "system_router",
        check=router_check,
        description="route user segments to composition arms",
    ),
    replace=True,
)
