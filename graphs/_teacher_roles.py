"""Decision schemas and rule policies of the MARS teacher's roles.

The rules make the teacher a real recommender without an LLM: the planner
picks analyses by history length, the analyst maps each analysis to one tool
call, the ranker blends the per-candidate signals the tools returned, and the
reflector sends the graph back for missing analyses when the draft's top item
is weakly supported.

Plugin tools (see :mod:`agenticrec.plugins`) add analyses: an analysis named
after the signal the tool declares, offered in the planner's ``available``
list, answered by one call of that tool, and blended by the rule ranker with
the declared weight (the observation's ``weights``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, field_validator

from agenticrec.graphs._teacher_fit import PRIOR
from agenticrec.graphs._teacher_retrieval import SIGNALS
from agenticrec.policy import Role, register_role

__all__ = [
    "ANALYSES",
    "AnalystDecision",
    "PlanDecision",
    "RankDecision",
    "ReflectDecision",
    "SIGNAL_OF",
    "SIGNAL_WEIGHTS",
    "blend",
]

ANALYSES: tuple[str, ...] = ("profile", *SIGNALS)
"""The profile (evidence only), then every analysis that yields a signal."""

SIGNAL_OF = {
    "cooccurrence": "long_term",
    "recent_cooccurrence": "recent",
    "neighbours": "neighbours",
    "graph_walk": "graph_walk",
    "ease": "ease",
    "recent_ease": "recent_ease",
    "cosine": "cosine",
    "sequence": "sequence",
}
"""Tool result ``signal`` -> analysis it answers."""

SIGNAL_WEIGHTS = dict(PRIOR)
"""Blend weights when the observation carries none (the fit's prior). A run's
ranker gets the weights fitted on the validation split
(:mod:`agenticrec.graphs._teacher_fit`) in its observation. Each signal is
divided by its maximum over the candidates first, so weights compare like
with like."""


def _unique(values: list[str]) -> list[str]:
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate entries in {values}")
    return values


class PlanDecision(BaseModel):
    """Which analyses to run for this user."""

    analyses: list[str] = Field(
        min_length=1,
        max_length=16,
        description="Names from the observation's `available` list.",
    )
    reason: str = ""

    @field_validator("analyses")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique(v)


class ToolCallSpec(BaseModel):
    tool: str = Field(description="Tool name.")
    args: dict[str, Any] = Field(default_factory=dict)


class AnalystDecision(BaseModel):
    """Tool calls that answer the pending analyses."""

    calls: list[ToolCallSpec] = Field(min_length=1, max_length=16)


class RankDecision(BaseModel):
    """The final order of (a prefix of) the candidates, best first."""

    ranking: list[int] = Field(min_length=1)
    rationale: str = ""


class ReflectDecision(BaseModel):
    """Accept the draft, or ask for more analyses."""

    accept: bool
    issues: list[str] = Field(default_factory=list)
    extra_analyses: list[str] = Field(
        default_factory=list,
        description="Analyses to run next: profile, long_term, recent, neighbours, "
        "graph_walk, or one of the observation's `analyses`.",
    )

    @field_validator("extra_analyses")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        return _unique(v)


# ----------------------------------------------------------------- rules
def plan_rule(obs: Mapping[str, Any]) -> PlanDecision:
    """The profile, then the analyses the validation fit gave a weight for
    this user's segment (``fitted_plan``: short or long history; analyses
    that rarely matter are held in reserve for the reflector), then every
    plugin analysis. Without a fit: long-term co-occurrence and neighbours,
    recent interest for histories of >= 20 items, else a random walk."""
    n = int(obs["history_len"])
    plugins = [a for a in obs.get("available", ()) if a not in ANALYSES]
    if "fitted_plan" in obs:
        return PlanDecision(
            analyses=["profile", *obs["fitted_plan"], *plugins],
            reason=f"history of {n} items ({obs['segment']} segment): the analyses "
            "whose signals earned a weight on validation for such users"
            + (f"; held in reserve: {obs['reserve']}" if obs.get("reserve") else ""),
        )
    plan = ["profile", "long_term", "neighbours"]
    plan.append("recent" if n >= 20 else "graph_walk")
    plan += [a for a in obs.get("available", ()) if a not in ANALYSES]
    return PlanDecision(
        analyses=plan,
        reason=f"history of {n} items: "
        + (
            "recent interest can differ from the long-term one"
            if n >= 20
            else "sparse history, add multi-hop evidence"
        ),
    )


ANALYST_CALLS = {
    "profile": ("user_profile", {"recent": 5}),
    "long_term": ("cooccurrence_evidence", {"recent": 0, "top": 3}),
    "recent": ("cooccurrence_evidence", {"recent": 10, "top": 3}),
    "neighbours": ("neighbour_evidence", {"k": 20, "top": 3}),
    "graph_walk": ("graph_walk_evidence", {"top": 3}),
    "ease": ("ease_evidence", {"top": 3}),
    "recent_ease": ("ease_evidence", {"recent": True, "top": 3}),
    "cosine": ("itemknn_evidence", {"top": 3}),
    "sequence": ("sequence_evidence", {"top": 3}),
}
"""The rule analyst's tool call for each analysis (user and candidates added)."""


def plugin_calls(obs: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Plugin analysis -> (tool, default arguments), from the observation's
    ``plugin_tools`` (each ``{"name", "analysis", ...}``)."""
    return {
        t["analysis"]: (t["name"], {})
        for t in obs.get("plugin_tools", ())
        if t.get("analysis")
    }


def analyst_rule(obs: Mapping[str, Any]) -> AnalystDecision:
    """One tool call per pending analysis, arguments from ``ANALYST_CALLS``
    (a plugin analysis: its tool with its default arguments)."""
    calls = []
    table = {**plugin_calls(obs), **ANALYST_CALLS}
    for a in obs["pending"]:
        tool, args = table[a]
        full = {"user": obs["user"], **args}
        if tool != "user_profile":
            full["candidates"] = list(obs["candidates"])
        calls.append(ToolCallSpec(tool=tool, args=full))
    return AnalystDecision(calls=calls)


def blend(
    signals: Mapping[str, list[float]],
    popularity: list[float],
    weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The rule ranker's score per candidate: the observation's ``weights``
    (fitted on validation, plus plugin signals' declared weights), else
    ``SIGNAL_WEIGHTS``."""
    w = dict(weights) if weights else dict(SIGNAL_WEIGHTS)
    total = np.zeros(len(popularity))
    for name, values in {**signals, "popularity": popularity}.items():
        v = np.asarray(values, dtype=np.float64)
        top = v.max(initial=0.0)
        if top > 0:
            total += w.get(name, 0.0) * v / top
    return total


def blend_order(
    cands: list[int],
    popularity: list[float],
    signals: Mapping[str, list[float]],
    weights: Mapping[str, float] | None = None,
) -> list[int]:
    """``cands`` by :func:`blend` score, ties by popularity then smaller id
    (signals given column-wise, one list per signal)."""
    score = blend(signals, popularity, weights)
    order = np.lexsort((np.asarray(cands), -np.asarray(popularity), -score))
    return np.asarray(cands, np.int64)[order].tolist()


def rank_order(obs: Mapping[str, Any]) -> list[int]:
    """Candidates by blended score, ties by popularity then smaller id."""
    rows = obs["candidates"]
    names = {n: None for c in rows for n in c["signals"]}
    sig = {n: [c["signals"].get(n, 0.0) for c in rows] for n in names}
    return blend_order(
        [c["item"] for c in rows],
        [c["popularity"] for c in rows],
        sig,
        obs.get("weights"),
    )


def rank_rule(obs: Mapping[str, Any]) -> RankDecision:
    """Top ``k`` of :func:`rank_order` with the signals that drove the top one."""
    order = rank_order(obs)[: obs["k"]]
    top = next(c for c in obs["candidates"] if c["item"] == order[0])
    drivers = sorted((v, n) for n, v in top["signals"].items() if v > 0)
    why = ", ".join(n for _, n in reversed(drivers)) or "popularity only"
    return RankDecision(
        ranking=order,
        rationale="blend of "
        + ", ".join(
            f"{n} x{v:g}"
            for n, v in (obs.get("weights") or SIGNAL_WEIGHTS).items()
            if v
        )
        + " (each signal normalised by its maximum); "
        f"top item driven by {why}",
    )


def rank_check(value: RankDecision, obs: Mapping[str, Any]) -> None:
    allowed = {c["item"] for c in obs["candidates"]}
    if len(set(value.ranking)) != len(value.ranking):
        raise ValueError("ranking repeats an item")
    unknown = [i for i in value.ranking if i not in allowed]
    if unknown:
        raise ValueError(f"ranking has items that are not candidates: {unknown[:5]}")
    need = min(obs["k"], len(allowed))
    if len(value.ranking) < need:
        raise ValueError(f"ranking has {len(value.ranking)} items, need {need}")


def reflect_rule(obs: Mapping[str, Any]) -> ReflectDecision:
    """With a fit: when the two strongest signals that ran disagree (the
    share of their top 10 in common, ``agreement``, is below the fitted
    ``tau``) and reserve analyses are unused, ask for them; else accept.
    Without a fit: accept when the draft's top item is supported by >= 2
    signals, when every analysis has run, or when the reflection budget is
    spent; otherwise ask for up to two unused analyses."""
    if "reserve" in obs:
        unused = [a for a in obs["reserve"] if a not in obs["done"]]
        agree = obs["agreement"]
        if (
            unused
            and agree < obs["tau"]
            and obs["reflections"] < obs["max_reflections"]
        ):
            return ReflectDecision(
                accept=False,
                issues=[
                    f"the strongest signals share {agree:.0%} of their top 10 "
                    f"(below {obs['tau']:.0%})"
                ],
                extra_analyses=unused,
            )
        return ReflectDecision(accept=True, issues=[])
    unused = [a for a in ("neighbours", "graph_walk", "recent") if a not in obs["done"]]
    support = obs["top_support"]
    if support >= 2 or not unused or obs["reflections"] >= obs["max_reflections"]:
        return ReflectDecision(accept=True, issues=[])
    return ReflectDecision(
        accept=False,
        issues=[f"top item is supported by {support} signal(s)"],
        extra_analyses=unused[:2],
    )


def plan_check(value: PlanDecision, obs: Mapping[str, Any]) -> None:
    known = set(obs.get("available", ANALYSES))
    unknown = [a for a in value.analyses if a not in known]
    if unknown:
        raise ValueError(f"unknown analyses {unknown}; available: {sorted(known)}")


def analyst_check(value: AnalystDecision, obs: Mapping[str, Any]) -> None:
    tools = set(obs["tools"])
    for call in value.calls:
        if call.tool not in tools:
            raise ValueError(f"unknown tool {call.tool!r}; tools: {sorted(tools)}")


def reflect_check(value: ReflectDecision, obs: Mapping[str, Any]) -> None:
    if not value.accept and not value.extra_analyses:
        raise ValueError("a rejected draft must name extra_analyses to run")
    known = {*ANALYSES, *obs.get("analyses", ())}
    unknown = [a for a in value.extra_analyses if a not in known]
    if unknown:
        raise ValueError(f"unknown analyses {unknown}; known: {sorted(known)}")


register_role(
    Role(
        "teacher.planner",
        PlanDecision,
        plan_rule,
        "teacher_planner",
        check=plan_check,
        description="MARS planner: which analyses to run",
    ),
    replace=True,
)
register_role(
    Role(
        "teacher.analyst",
        AnalystDecision,
        analyst_rule,
        "teacher_analyst",
        check=analyst_check,
        description="MARS analyst: tool calls for the analyses",
    ),
    replace=True,
)
register_role(
    Role(
        "teacher.ranker",
        RankDecision,
        rank_rule,
        "teacher_ranker",
        check=rank_check,
        description="MARS ranker: final top-k",
    ),
    replace=True,
)
register_role(
    Role(
        "teacher.reflector",
        ReflectDecision,
        reflect_rule,
        "teacher_reflector",
        check=reflect_check,
        description="MARS reflector: accept or re-analyse",
    ),
    replace=True,
)
