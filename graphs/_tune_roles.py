"""Decision schemas and rule policies of the AgenticRecTune agents.

Every agent decides through the policy layer: the LLM policy reads
``prompts/tune_<agent>.md`` and must return the schema below (bounds live in
the schema, semantic checks in ``*_check``), and the rule policy is the
documented deterministic method:

* **actor** (``tune.actor``): skills first, near-miss repairs, then the
  classical sampler's suggestions (Optuna TPE or CMA-ES steered by the
  run's estimates and the Insight's inert knobs), Gaussian perturbation of
  the Pareto set for the rest (:mod:`._tune_search`, :mod:`._tune_sampler`).
* **critic** (``tune.critic``): reject invalid, already tested, guardrail-
  breaking and inconsistent candidates, drop dominated ones, keep the top
  ``max_keep`` by offline north star (:func:`critic_rule`).
* **online** (``tune.online``): launch every kept candidate at a 50/50 split.
* **insight** (``tune.insight``): report the measured knob effects, the
  promising knobs and the failures (:func:`insight_rule`).
* **skill** (``tune.skill``): distil a skill from each round that produced an
  A/B winner (:func:`skill_rule`). Evidence, knob values and counts are
  attached by the graph from measurements, never taken from the decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from agenticrec.graphs import _tune_search as search
from agenticrec.policy import Role, register_role
from agenticrec.tools.pipeline import PipelineConfig

__all__ = [
    "ActorDecision",
    "Candidate",
    "CriticDecision",
    "InsightDecision",
    "LaunchPlan",
    "SkillDecision",
    "critic_rule",
    "insight_rule",
    "skill_rule",
]

KnobValue = float | int | str
STAGES = ("recall", "pre-ranking", "ranking", "rerank", "any")


def stage_of(knob: str) -> str:
    """``prerank.w_cf`` -> ``pre-ranking``."""
    head = knob.split(".", 1)[0]
    return {"prerank": "pre-ranking"}.get(head, head)


# ------------------------------------------------------------------- actor
class Candidate(BaseModel):
    """One proposed configuration."""

    overrides: dict[str, KnobValue] = Field(
        min_length=1,
        max_length=24,
        description="Dotted knobs that differ from the default, e.g. "
        '{"ranking.w_content": 1.0}; recall.quota.* must sum to 1.',
    )
    rationale: str = Field("", max_length=600)
    origin: str = Field("llm", max_length=120)


class ActorDecision(BaseModel):
    """The Actor's candidates for this round."""

    candidates: list[Candidate] = Field(min_length=1, max_length=16)


def actor_rule(obs: Mapping[str, Any]) -> ActorDecision:
    """See :mod:`agenticrec.graphs._tune_search`."""
    return ActorDecision(
        candidates=[Candidate(**c) for c in search.propose(obs)]
        or [Candidate(overrides={"rerank.mmr_lambda": 0.85}, origin="fallback")]
    )


def actor_check(value: ActorDecision, obs: Mapping[str, Any]) -> None:
    if len(value.candidates) > int(obs["m"]):
        raise ValueError(
            f"{len(value.candidates)} candidates, at most m={obs['m']} allowed"
        )


# ------------------------------------------------------------------ critic
class Kept(BaseModel):
    index: int = Field(ge=0, description="Candidate index in the observation.")
    reason: str = Field("", max_length=400)


class CriticDecision(BaseModel):
    """Candidates to launch (best first) and why the others were dropped."""

    keep: list[Kept] = Field(default_factory=list, max_length=8)
    rejected: list[Kept] = Field(default_factory=list, max_length=16)

    @field_validator("keep")
    @classmethod
    def _distinct(cls, v: list[Kept]) -> list[Kept]:
        idx = [k.index for k in v]
        if len(set(idx)) != len(idx):
            raise ValueError(f"keep repeats a candidate: {idx}")
        return v


def _dominates(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return (
        a["ns"] >= b["ns"]
        and a["guard"] >= b["guard"]
        and (a["ns"] > b["ns"] or a["guard"] > b["guard"])
    )


def critic_rule(obs: Mapping[str, Any]) -> CriticDecision:
    """The filter, in order; the first failed test is the reason:

    1. invalid (outside bounds, unknown knob): rejected;
    2. a configuration already A/B tested: rejected;
    3. offline guard metric drops by more than ``guard_tolerance`` (relative
       to the default): rejected;
    4. the north star's offline gain over the default is not above one
       standard error of its paired per-user difference (``gain_lcb <= 0``,
       :meth:`~agenticrec.graphs._tune_task.TuneTask.gain_lower_bound`: a
       guard against chasing noise): rejected;
    5. dominated on (north star, guard) by another survivor: rejected;
    6. the rest ranked by offline north star; the top ``max_keep`` kept.
    """
    tol = float(obs["guard_tolerance"])
    alive: list[Mapping[str, Any]] = []
    rejected: list[Kept] = []
    for c in obs["candidates"]:
        i = c["index"]
        if not c["valid"]:
            rejected.append(Kept(index=i, reason=f"invalid: {c['error']}"))
        elif c.get("tested_as"):
            rejected.append(Kept(index=i, reason=f"already tested as {c['tested_as']}"))
        elif c["guard_change"] < -tol:
            rejected.append(
                Kept(
                    index=i,
                    reason=f"offline {obs['guard']} {c['guard_change']:+.1%} "
                    f"breaks the {tol:.0%} guardrail",
                )
            )
        elif c["gain_lcb"] <= 0:
            rejected.append(
                Kept(
                    index=i,
                    reason=f"{obs['north_star']} {c['gain']:+.1%} offline is within "
                    f"one standard error of the default (lower bound "
                    f"{c['gain_lcb']:+.1%})",
                )
            )
        else:
            alive.append(c)
    front = []
    for c in alive:
        by = next((o for o in alive if o is not c and _dominates(o, c)), None)
        if by is not None:
            rejected.append(
                Kept(index=c["index"], reason=f"dominated by candidate {by['index']}")
            )
        else:
            front.append(c)
    front.sort(key=lambda c: (-c["ns"], c["index"]))
    keep = [
        Kept(
            index=c["index"],
            reason=f"{obs['north_star']} {c['gain']:+.1%} offline "
            f"(lower bound {c['gain_lcb']:+.1%}; A {c['gain_A']:+.1%}, "
            f"B {c['gain_B']:+.1%}), {obs['guard']} {c['guard_change']:+.1%}",
        )
        for c in front[: int(obs["max_keep"])]
    ]
    rejected += [
        Kept(index=c["index"], reason=f"not in the top {obs['max_keep']}")
        for c in front[int(obs["max_keep"]) :]
    ]
    return CriticDecision(keep=keep, rejected=sorted(rejected, key=lambda k: k.index))


def critic_check(value: CriticDecision, obs: Mapping[str, Any]) -> None:
    valid = {c["index"] for c in obs["candidates"] if c["valid"]}
    bad = [k.index for k in value.keep if k.index not in valid]
    if bad:
        raise ValueError(f"kept candidates {bad} are invalid or unknown")
    if len(value.keep) > int(obs["max_keep"]):
        raise ValueError(f"keep at most {obs['max_keep']} candidates")


# ------------------------------------------------------------------ online
class LaunchPlan(BaseModel):
    """Which kept candidates to A/B test now, and the traffic split."""

    launch: list[int] = Field(
        default_factory=list, max_length=8, description="Indices into 'kept'."
    )
    treatment_share: float = Field(0.5, ge=0.1, le=0.9)
    note: str = Field("", max_length=400)


def online_rule(obs: Mapping[str, Any]) -> LaunchPlan:
    """Launch every kept candidate against the default, 50/50."""
    return LaunchPlan(
        launch=list(range(len(obs["kept"]))),
        treatment_share=0.5,
        note=f"{len(obs['kept'])} A/B test(s) vs the default, 50/50 by hashed user id",
    )


def online_check(value: LaunchPlan, obs: Mapping[str, Any]) -> None:
    n = len(obs["kept"])
    if any(not 0 <= i < n for i in value.launch) or len(set(value.launch)) != len(
        value.launch
    ):
        raise ValueError(f"launch must be distinct indices in [0, {n})")


# ----------------------------------------------------------------- insight
class KnobEffect(BaseModel):
    knob: str
    metric: str
    direction: Literal["up", "down"] = Field(
        description="Moving the knob this way raised the metric."
    )
    effect: float = Field(description="Mean metric change per experiment, relative.")
    n: int = Field(ge=0)


class Promising(BaseModel):
    knob: str
    direction: Literal["up", "down"]


class InsightDecision(BaseModel):
    """History summary for the Actor and the Skill agent."""

    summary: str = Field(min_length=1, max_length=2000)
    effects: list[KnobEffect] = Field(default_factory=list, max_length=16)
    promising: list[Promising] = Field(default_factory=list, max_length=8)
    failures: list[str] = Field(default_factory=list, max_length=12)


def insight_rule(obs: Mapping[str, Any]) -> InsightDecision:
    """Effects with ``n >= 2`` sorted by size; the 4 largest positive north-star
    effects are the promising knobs; failures are lost or guardrail-breaking
    A/B tests and the Critic's rejection counts."""
    ns = obs["north_star"]
    effects = [
        KnobEffect(**e)
        for e in sorted(obs["knob_stats"], key=lambda e: -abs(e["effect"]))
        if e["n"] >= 2
    ][:16]
    promising = [
        Promising(knob=e.knob, direction=e.direction)
        for e in effects
        if e.metric == ns and e.effect > 0
    ][:4]
    failures = [
        f"{x['id']}: {x['decision']} ({x['why']})"
        for x in obs["experiments"]
        if x["decision"] != "treatment"
    ][-8:]
    failures += [f"critic: {n} x {r}" for r, n in obs.get("rejections", {}).items()][
        : 12 - len(failures)
    ]
    best = obs.get("best")
    parts = [
        f"{obs['n_evaluated']} configurations estimated offline, "
        f"{len(obs['experiments'])} A/B tested, "
        f"{sum(x['decision'] == 'treatment' for x in obs['experiments'])} won."
    ]
    if best:
        parts.append(
            f"Best A/B: {best['id']} {ns} {best['diff']:+.4f} (p={best['p']:.3g}) "
            f"changing {', '.join(sorted(best['overrides'])) or 'nothing'}."
        )
    if effects:
        parts.append(
            "Largest effects: "
            + "; ".join(
                f"{e.knob} {e.direction} -> {e.metric} {e.effect:+.1%} (n={e.n})"
                for e in effects[:4]
            )
            + "."
        )
    parts.append(f"Pareto set: {', '.join(obs['pareto']) or 'empty'}.")
    return InsightDecision(
        summary=" ".join(parts),
        effects=effects,
        promising=promising,
        failures=failures,
    )


def insight_check(value: InsightDecision, obs: Mapping[str, Any]) -> None:
    names = set(PipelineConfig.knob_names())
    bad = [e.knob for e in value.effects if e.knob not in names] + [
        p.knob for p in value.promising if p.knob not in names
    ]
    if bad:
        raise ValueError(f"unknown knobs {bad}; knobs: {sorted(names)}")


# ------------------------------------------------------------------- skill
class SkillDraft(BaseModel):
    title: str = Field(min_length=1, max_length=160)
    task_context: str = Field("", max_length=1500)
    requirement: str = Field("", max_length=800)
    domain_knowledge: str = Field("", max_length=3000)
    stage: Literal["recall", "pre-ranking", "ranking", "rerank", "any"] = "any"


class SkillDecision(BaseModel):
    """Whether to distil a skill from this round, and its text."""

    write: bool
    draft: SkillDraft | None = None


def skill_rule(obs: Mapping[str, Any]) -> SkillDecision:
    """Write a skill when the graph offers this round's best A/B result (a
    significant winner, or a new best positive gain): titled by its knobs, its
    knowledge the measured effects (significant or not, with p) plus the
    Insight agent's largest effects; stage of the knobs changed most."""
    win = obs.get("winner")
    if not win:
        return SkillDecision(write=False)
    knobs = sorted(win["overrides"])
    stages = [stage_of(k) for k in knobs]
    stage = max(set(stages), key=lambda s: (stages.count(s), s)) if stages else "any"
    changes = ", ".join(f"{k}={win['overrides'][k]}" for k in knobs)
    effects = "; ".join(
        f"{m} {d:+.4f}" for m, d in sorted(win["effects"].items()) if m != "p"
    )
    lines = [
        f"- On {obs['data']}, setting {changes} "
        + (
            "won an A/B test on"
            if win.get("significant")
            else "raised, without significance, in an A/B test"
        )
        + f" {obs['north_star']} ({effects}; p={win['effects'].get('p', 1):.3g}).",
    ]
    lines += [f"- {e}" for e in obs.get("insight_effects", [])[:4]]
    return SkillDecision(
        write=True,
        draft=SkillDraft(
            title=f"Raise {obs['north_star']} by tuning {', '.join(knobs[:4])}",
            task_context=f"Configuration tuning of the multi-stage recommender on "
            f"{obs['data']}: {obs['task']}",
            requirement=obs["requirement"],
            domain_knowledge="\n".join(lines),
            stage=stage if stage in STAGES else "any",
        ),
    )


for _role in (
    Role(
        "tune.actor",
        ActorDecision,
        actor_rule,
        "tune_actor",
        check=actor_check,
        description="AgenticRecTune Actor: propose candidate configurations",
    ),
    Role(
        "tune.critic",
        CriticDecision,
        critic_rule,
        "tune_critic",
        check=critic_check,
        description="AgenticRecTune Critic: filter and rank candidates offline",
    ),
    Role(
        "tune.online",
        LaunchPlan,
        online_rule,
        "tune_online",
        check=online_check,
        description="AgenticRecTune Online: plan the A/B tests",
    ),
    Role(
        "tune.insight",
        InsightDecision,
        insight_rule,
        "tune_insight",
        check=insight_check,
        description="AgenticRecTune Insight: summarise the experiment history",
    ),
    Role(
        "tune.skill",
        SkillDecision,
        skill_rule,
        "tune_skill",
        description="AgenticRecTune Skill: distil skills from experiments",
    ),
):
    register_role(_role, replace=True)
