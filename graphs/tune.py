"""AgenticRecTune graph: Actor, Critic, Online, Insight and Skill agents tune the
multi-stage pipeline through A/B tests, with a self-evolving Skillhub.

::

    setup -> actor -> critic -> plan -> [review] -> online -> insight -> skill
               ^         |         |        |                              |
               |         +---------+--------+-- nothing to launch --> insight
               +---------------------------- next round ------------------+
                                                            last round -> finish

* **setup** retrieves skills for the task from the Skillhub (Chroma, MiniLM,
  filtered by north star) and estimates the default configuration offline.
* **actor** proposes ``candidates`` configurations from the task, the history
  (Pareto set, Insight summary) and the retrieved skills.
* **critic** validates bounds, estimates each candidate on two halves of the
  offline users, rejects guardrail breaks, inconsistent and dominated ones and
  keeps at most ``max_launch``.
* **plan** (Online agent) decides which kept candidates to launch; **review**
  pauses with a LangGraph ``interrupt`` when ``review`` is set, and resumes on
  ``Command(resume={"approve": True|False})``.
* **online** A/B tests each launch against the default on the online users
  (:mod:`agenticrec.graphs._tune_task`) and records it in the experiment memory.
* **insight** summarises knob effects, the Pareto set and failures.
* **skill** distils a skill from each round's best A/B result (merged into
  near-duplicates), records outcomes of the skills the Actor used and prunes
  failing skills.
* **finish** adds report-only statistics: the winner's Bonferroni p, a
  pre-registered confirmation A/B test of the incumbent and the win share
  over fresh assignments.

Experiment ids are ``{thread}:{round}:{i}`` and skill writes are checked
against the experiment ids already recorded, so a resumed run that re-executes
a node never duplicates a record.
"""

from __future__ import annotations

import operator
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import numpy as np
import typer
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from agenticrec.context import Context
from agenticrec.errors import ConfigError
from agenticrec.graphs import _tune_roles  # noqa: F401 - registers tune.* roles
from agenticrec.graphs import _tune_search as search
from agenticrec.graphs._runtime import close_writers, policy_for, record, who
from agenticrec.graphs._tune_task import (
    OBJECTIVES,
    Objective,
    TuneTask,
    config_key,
    experiment_seed,
    task_workspace,
)
from agenticrec.policy import Decision
from agenticrec.runner import (
    CheckpointOpt,
    DataOpt,
    JsonOpt,
    SeedOpt,
    ThreadOpt,
    TrajectoriesOpt,
    emit_report,
    open_checkpointer,
    progress_bar,
    stderr,
)
from agenticrec.tools.pipeline import PipelineConfig

__all__ = [
    "TuneContext",
    "TuneInput",
    "TuneState",
    "build_graph",
    "graph",
    "close_hub",
    "hub_for",
    "memory_for",
    "run",
]

GRAPH_NAME = "tune"
HUB_PROJECT = "agenticrec"
DEFAULT_HUB = Path("runs/skillhub")


@dataclass(kw_only=True)
class TuneContext(Context):
    """Settings of a tune run (plus the LLM settings of :class:`Context`)."""

    data: str = field(
        default="ml-latest-small", metadata={"description": "Dataset name or path."}
    )
    objective: Literal["ndcg", "diversity"] = field(
        default="ndcg",
        metadata={
            "description": "ndcg: raise NDCG@10, guard ILD@10 and novelty; "
            "diversity: raise ILD@10, guard NDCG@10 (5%)."
        },
    )
    rounds: int = field(default=10, metadata={"description": "Tuning rounds."})
    candidates: int = field(
        default=6,
        metadata={"description": "Configurations the Actor proposes a round."},
    )
    max_launch: int = field(
        default=2, metadata={"description": "A/B tests the Critic allows a round."}
    )
    skillhub: str | None = field(
        default=None,
        metadata={
            "description": "Skillhub folder (Chroma + experiment memory); "
            "default runs/skillhub."
        },
    )
    seeds: bool = field(
        default=True,
        metadata={"description": "Load the shipped seed skills into an empty hub."},
    )
    skills_k: int = field(default=4, metadata={"description": "Skills retrieved."})
    embedding: Literal["minilm", "hashing"] = field(
        default="minilm",
        metadata={"description": "Skill embedding; hashing is for unit tests only."},
    )
    review: bool = field(
        default=False,
        metadata={"description": "Pause before each launch for approval."},
    )
    alpha: float = field(default=0.05, metadata={"description": "A/B significance."})
    online_share: float = field(
        default=0.5, metadata={"description": "Share of users in the online group."}
    )
    offline_events: int = field(
        default=3, metadata={"description": "Events per offline user (estimates)."}
    )
    online_events: int = field(
        default=1, metadata={"description": "Events per online user (A/B period)."}
    )
    max_users: int = field(
        default=0, metadata={"description": "Cap on users per group (0: all)."}
    )
    split_seed: int | None = field(
        default=None,
        metadata={
            "description": "Seed of the offline/online user partition "
            "(default: seed); fix it to vary only the agents' randomness."
        },
    )
    trajectories: str | None = field(
        default=None, metadata={"description": "JSONL file to append trajectories to."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"objective {self.objective!r}: expected {' or '.join(OBJECTIVES)}"
            )
        for name, low in (
            ("rounds", 1),
            ("candidates", 1),
            ("max_launch", 1),
            ("skills_k", 1),
        ):
            if getattr(self, name) < low:
                raise ConfigError(f"TuneContext.{name} must be >= {low}")
        if self.candidates > 16:
            raise ConfigError("TuneContext.candidates must be <= 16")

    @property
    def obj(self) -> Objective:
        return OBJECTIVES[self.objective]

    def ws(self) -> TuneTask:
        return task_workspace(
            self.data,
            self.seed if self.split_seed is None else self.split_seed,
            self.online_share,
            self.offline_events,
            self.online_events,
            self.max_users,
        )

    def hub_path(self) -> Path:
        return Path(self.skillhub) if self.skillhub else DEFAULT_HUB


class TuneInput(TypedDict, total=False):
    """What a caller passes: the task text (default: the objective's)."""

    task: str


class TuneState(TuneInput, total=False):
    round: int
    skills: list[dict[str, Any]]
    skills_used: list[str]
    control: dict[str, Any]
    sigma: float
    incumbent: dict[str, Any]
    proposals: list[dict[str, Any]]
    kept: list[dict[str, Any]]
    plan: dict[str, Any]
    approved: bool
    pareto: list[dict[str, Any]]
    insight: dict[str, Any]
    winner: dict[str, Any] | None
    final: dict[str, Any]
    tried: Annotated[list[dict[str, Any]], operator.add]
    experiments: Annotated[list[dict[str, Any]], operator.add]
    history: Annotated[list[dict[str, Any]], operator.add]
    skill_log: Annotated[list[dict[str, Any]], operator.add]
    policies: Annotated[list[list[str]], operator.add]


# ----------------------------------------------------------------- runtime
_HUBS: dict[tuple[str, str, bool], Any] = {}


def hub_for(ctx: TuneContext):
    """The process-wide :class:`ChromaSkillStore` of the context's Skillhub."""
    from agenticrec.skills import ChromaSkillStore, HashingEmbedding, MiniLMEmbedding

    key = (str(ctx.hub_path().resolve()), ctx.embedding, ctx.seeds)
    hub = _HUBS.get(key)
    if hub is None:
        emb = HashingEmbedding() if ctx.embedding == "hashing" else MiniLMEmbedding()
        hub = _HUBS[key] = ChromaSkillStore(
            ctx.hub_path(), HUB_PROJECT, embedding=emb, seeds=ctx.seeds
        )
    return hub


def close_hub(ctx: TuneContext) -> None:
    """Close and forget the context's Skillhub client (before copying or
    deleting its folder)."""
    hub = _HUBS.pop((str(ctx.hub_path().resolve()), ctx.embedding, ctx.seeds), None)
    if hub is not None:
        hub.close()


def memory_for(ctx: TuneContext):
    """The task's :class:`ExperimentMemory` (``<skillhub>/experiments/``)."""
    from agenticrec.skills import ExperimentMemory, Objective

    ws, o = ctx.ws(), ctx.obj
    return ExperimentMemory(
        ctx.hub_path() / "experiments" / f"{ws.slug}-{o.name}.jsonl",
        objectives=[
            Objective(f"offline.{o.north_star}", "max"),
            Objective(f"offline.{o.guard}", "max"),
        ],
        capacity=100,
    )


def _ctx(runtime: Runtime[TuneContext]) -> TuneContext:
    return runtime.context if runtime.context is not None else TuneContext()


def _thread(config: RunnableConfig) -> str:
    return str((config.get("configurable") or {}).get("thread_id", "run"))


def _record(ctx, config, state, node, *, decision: Decision | None = None, **kw):
    if not ctx.trajectories:
        return
    ws = ctx.ws()
    record(
        ctx.trajectories,
        _thread(config),
        graph=GRAPH_NAME,
        context=ctx.public_dict(),
        dataset={"name": ws.dataset.name, "fingerprint": ws.dataset.fingerprint},
        node=node,
        step_id=f"{node}:{state.get('round', 0)}",
        decision=decision,
        **kw,
    )


def _rel(new: float, old: float) -> float:
    return (new - old) / abs(old) if old else 0.0


def _task_text(state: TuneState, ctx: TuneContext) -> str:
    return state.get("task") or f"{ctx.obj.text} Dataset: {ctx.ws().slug}."


# ------------------------------------------------------------------- nodes
def setup(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Retrieve skills for the task; estimate the default offline."""
    ctx = _ctx(runtime)
    ws, o = ctx.ws(), ctx.obj
    hub = hub_for(ctx)
    text = _task_text(state, ctx)
    hits = hub.search(text, k=ctx.skills_k, where={"north_star": o.north_star})
    if len(hits) < ctx.skills_k:
        have = {h.skill.id for h in hits}
        hits += [h for h in hub.search(text, k=ctx.skills_k) if h.skill.id not in have][
            : ctx.skills_k - len(hits)
        ]
    skills = []
    for h in hits:
        ok, ignored = search.applicable(h.skill.initial_config)
        skills.append(
            {
                "id": h.skill.id,
                "title": h.skill.title,
                "source": h.skill.source,
                "north_star": h.skill.north_star,
                "similarity": round(h.similarity, 4),
                "initial_config": ok,
                "ignored_knobs": ignored,
                "knowledge": h.skill.domain_knowledge[:600],
                "success_count": h.skill.success_count,
                "failure_count": h.skill.failure_count,
            }
        )
    control = ws.estimate({})
    _record(
        ctx,
        config,
        state,
        "setup",
        observation={"task": text, "task_info": ws.describe()},
        extra={"skills": [(s["id"], s["similarity"]) for s in skills]},
    )
    return {
        "task": text,
        "round": 0,
        "skills": skills,
        "skills_used": [],
        "control": control,
        "sigma": search.SIGMA0,
        "incumbent": {"id": "default", "overrides": {}, **control},
        "pareto": [],
        "insight": {},
        "winner": None,
    }


def actor(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    ctx = _ctx(runtime)
    o = ctx.obj
    used = set(state.get("skills_used", []))
    inc = state["incumbent"]
    inc_gain = _rel(inc["all"][o.north_star], state["control"]["all"][o.north_star])
    obs = {
        "task": state["task"],
        "north_star": o.north_star,
        "guard": o.guard,
        "round": state["round"],
        "rounds": ctx.rounds,
        "m": ctx.candidates,
        "seed": ctx.seed,
        "sigma": state["sigma"],
        "incumbent": state["incumbent"]["overrides"],
        "pareto": [
            {
                "id": p["id"],
                "overrides": p["overrides"],
                "ns": p["ns"],
                "guard": p["guard"],
            }
            for p in state.get("pareto", [])
        ],
        "tried_keys": [t["key"] for t in state.get("tried", [])],
        "skills": [
            {
                "id": s["id"],
                "title": s["title"],
                "initial_config": s["initial_config"],
                "knowledge": s["knowledge"],
                "tried": s["id"] in used,
            }
            for s in state.get("skills", [])
        ],
        "insight": {
            "summary": state.get("insight", {}).get("summary", ""),
            "promising": state.get("insight", {}).get("promising", []),
        },
        "near_misses": [
            {
                "id": t["id"],
                "overrides": t["overrides"],
                "gain": t["gain"],
                "guard_change": t["guard_change"],
            }
            for t in sorted(state.get("tried", []), key=lambda t: -t["gain"])
            if "breaks" in t["reason"]
            and min(t["gain_A"], t["gain_B"]) > 0
            and t["gain"] > inc_gain
        ][:4],
        "guard_knobs": [
            {"knob": e["knob"], "direction": e["direction"], "effect": e["effect"]}
            for e in sorted(
                _knob_stats(state.get("tried", []), o), key=lambda e: -e["effect"]
            )
            if e["metric"] == o.guard and e["n"] >= 2
        ][:3],
        "knobs": PipelineConfig.describe(),
    }
    d = policy_for(ctx).decide("tune.actor", obs)
    proposals = [c.model_dump() for c in d.value.candidates]
    used |= {
        p["origin"].split(":", 1)[1]
        for p in proposals
        if p["origin"].startswith("skill:")
    }
    _record(
        ctx,
        config,
        state,
        "actor",
        decision=d,
        observation={k: v for k, v in obs.items() if k not in ("knobs", "tried_keys")},
    )
    return {
        "proposals": proposals,
        "skills_used": sorted(used),
        "policies": [["actor", who(d)]],
    }


def critic(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Validate and estimate every proposal, then let the Critic decide."""
    ctx = _ctx(runtime)
    ws, o = ctx.ws(), ctx.obj
    control, inc = state["control"], state["incumbent"]
    tested = {e["key"]: e["id"] for e in state.get("experiments", [])}
    cands, evaluated = [], []
    for i, p in enumerate(state["proposals"]):
        entry: dict[str, Any] = {"index": i, "origin": p["origin"]}
        try:
            cfg = PipelineConfig.from_flat(p["overrides"])
        except ConfigError as exc:
            cands.append(
                {
                    **entry,
                    "overrides": p["overrides"],
                    "valid": False,
                    "error": str(exc)[:300],
                }
            )
            continue
        over = search.overrides_of(cfg)
        key = config_key(over)
        est = ws.estimate(over)
        ns = {h: est[h][o.north_star] for h in ("all", "A", "B")}
        c = {
            **entry,
            "overrides": over,
            "valid": True,
            "error": None,
            "key": key,
            "tested_as": tested.get(key),
            "ns": ns["all"],
            "guard": est["all"][o.guard],
            "gain": round(_rel(ns["all"], control["all"][o.north_star]), 5),
            "gain_A": round(_rel(ns["A"], control["A"][o.north_star]), 5),
            "gain_B": round(_rel(ns["B"], control["B"][o.north_star]), 5),
            "guard_change": round(
                _rel(est["all"][o.guard], control["all"][o.guard]), 5
            ),
            "estimate": est,
        }
        cands.append(c)
        evaluated.append(c)
    obs = {
        "north_star": o.north_star,
        "guard": o.guard,
        "guard_tolerance": o.guard_tolerance,
        "max_keep": ctx.max_launch,
        "control": control["all"],
        "candidates": [
            {k: v for k, v in c.items() if k not in ("estimate", "key")} for c in cands
        ],
    }
    d = policy_for(ctx).decide("tune.critic", obs)
    by_index = {c["index"]: c for c in cands}
    kept = [
        {
            **by_index[k.index],
            "reason": k.reason,
            "rationale": state["proposals"][k.index]["rationale"],
        }
        for k in d.value.keep
    ]
    reasons = {k.index: k.reason for k in d.value.rejected}
    kept_idx = {k.index for k in d.value.keep}
    r = state["round"]
    tried = [
        {
            "id": f"r{r}c{c['index']}",
            "round": r,
            "overrides": c["overrides"],
            "key": c["key"],
            "origin": c["origin"],
            "ns": c["ns"],
            "guard": c["guard"],
            "gain": c["gain"],
            "gain_A": c["gain_A"],
            "gain_B": c["gain_B"],
            "guard_change": c["guard_change"],
            "kept": c["index"] in kept_idx,
            "reason": reasons.get(c["index"], "kept"),
        }
        for c in evaluated
    ]
    rejected_invalid = [
        {"index": c["index"], "reason": reasons.get(c["index"], c["error"])}
        for c in cands
        if not c["valid"]
    ]
    # 1/5 rule: success = better than the incumbent on both offline halves
    wins = [
        c
        for c in evaluated
        if c["estimate"]["A"][o.north_star] > inc["A"][o.north_star]
        and c["estimate"]["B"][o.north_star] > inc["B"][o.north_star]
        and c["guard_change"] >= -o.guard_tolerance
    ]
    sigma = search.adapt_sigma(state["sigma"], len(wins), len(evaluated))
    update: dict[str, Any] = {
        "kept": kept,
        "tried": tried,
        "sigma": sigma,
        "policies": [["critic", who(d)]],
    }
    if wins:
        best = max(wins, key=lambda c: (c["ns"], -c["index"]))
        update["incumbent"] = {
            "id": f"r{r}c{best['index']}",
            "overrides": best["overrides"],
            **best["estimate"],
        }
    _record(
        ctx,
        config,
        state,
        "critic",
        decision=d,
        observation=obs,
        extra={"invalid": rejected_invalid, "sigma": sigma},
    )
    return update


def plan(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Online agent, first half: the launch plan with experiment ids."""
    ctx = _ctx(runtime)
    o, ws = ctx.obj, ctx.ws()
    obs = {
        "north_star": o.north_star,
        "guardrails": [g.model_dump() for g in o.guardrails],
        "alpha": ctx.alpha,
        "online_users": int(len(ws.online_user_ids)),
        "kept": [
            {"overrides": k["overrides"], "gain": k["gain"], "reason": k["reason"]}
            for k in state["kept"]
        ],
    }
    d = policy_for(ctx).decide("tune.online", obs)
    thread, r = _thread(config), state["round"]
    launches = []
    for n, i in enumerate(d.value.launch):
        k = state["kept"][i]
        launches.append(
            {
                "id": f"{thread}:{r}:{n}",
                "overrides": k["overrides"],
                "key": k["key"],
                "origin": k["origin"],
                "rationale": k["rationale"],
                "offline_gain": k["gain"],
                "offline_guard_change": k["guard_change"],
            }
        )
    _record(ctx, config, state, "plan", decision=d, observation=obs)
    return {
        "plan": {
            "round": r,
            "launches": launches,
            "treatment_share": d.value.treatment_share,
            "note": d.value.note,
        },
        "approved": True,
        "policies": [["online", who(d)]],
    }


def review(state: TuneState) -> dict:
    """Pause for approval of the launch plan (``--review``)."""
    answer = interrupt(
        {
            "question": "Launch these A/B tests against the default?",
            "plan": {
                **state["plan"],
                "launches": [
                    {k: v for k, v in x.items() if k != "key"}
                    for x in state["plan"]["launches"]
                ],
            },
            "resume_with": {"approve": True},
        }
    )
    approve = answer.get("approve") if isinstance(answer, dict) else answer
    return {"approved": bool(approve)}


def online(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Run the planned A/B tests; record each in the experiment memory."""
    from agenticrec.skills import ExperimentItem

    ctx = _ctx(runtime)
    ws, o = ctx.ws(), ctx.obj
    mem = memory_for(ctx)
    p = state["plan"]
    exps, winner = [], state.get("winner")
    for launch in p["launches"]:
        eid = launch["id"]
        mem.add(
            ExperimentItem(
                id=eid,
                config=launch["overrides"],
                explanation=launch["rationale"][:500],
                status="running",
            )
        )
        res = ws.ab_test(
            launch["overrides"],
            seed=experiment_seed(ctx.seed, eid),
            objective=o,
            alpha=ctx.alpha,
            treatment_share=p["treatment_share"],
        )
        main = res.metrics[o.north_star]
        est = ws.estimate(launch["overrides"])["all"]
        results = {f"offline.{m}": float(v) for m, v in est.items()}
        for m, c in res.metrics.items():
            results[f"ab.{m}.diff"] = c.diff
            results[f"ab.{m}.p"] = c.p_value
        results["ab.win"] = float(res.decision == "treatment")
        mem.update(eid, status="done", results=results)
        failed = [g.reason for g in res.guardrails if not g.passed]
        exp = {
            **launch,
            "round": state["round"],
            "decision": res.decision,
            "diff": round(main.diff, 6),
            "relative": round(main.relative_diff or 0.0, 5),
            "p": main.p_value,
            "ci": [round(main.ci_low, 6), round(main.ci_high, 6)],
            "control_mean": round(main.control_mean, 6),
            "n": [res.n_control, res.n_treatment],
            "metrics": {
                m: {"diff": round(c.diff, 6), "p": round(c.p_value, 5)}
                for m, c in res.metrics.items()
            },
            "guardrails_failed": failed,
            "why": "; ".join(failed)
            or f"{o.north_star} {main.diff:+.4f}, p={main.p_value:.3g}",
        }
        exps.append(exp)
        if res.decision == "treatment" and (
            winner is None or exp["diff"] > winner["diff"]
        ):
            winner = exp
    _record(
        ctx, config, state, "online", observation={"plan": p}, extra={"results": exps}
    )
    return {"experiments": exps, "winner": winner}


_REASON_KIND = (
    ("invalid", "invalid"),
    ("already tested", "already tested"),
    ("breaks", "guardrail"),
    ("not better on both", "inconsistent across halves"),
    ("dominated", "dominated"),
    ("not in the top", "not in the top"),
)


def _knob_stats(tried: list[dict], o: Objective) -> list[dict]:
    """Per knob and metric: mean of ``sign(knob change) * relative gain`` over
    estimated configs that changed the knob (a marginal association: several
    knobs usually move together)."""
    default = search.to_unit({})
    rows: dict[tuple[str, str], list[float]] = {}
    names = PipelineConfig.knob_names()
    for t in tried:
        u = search.to_unit(t["overrides"])
        for j, k in enumerate(names):
            delta = u[j] - default[j]
            if abs(delta) < 1e-6:
                continue
            s = 1.0 if delta > 0 else -1.0
            rows.setdefault((k, o.north_star), []).append(s * t["gain"])
            rows.setdefault((k, o.guard), []).append(s * t["guard_change"])
    out = []
    for (k, m), v in rows.items():
        score = float(np.mean(v))
        out.append(
            {
                "knob": k,
                "metric": m,
                "direction": "up" if score > 0 else "down",
                "effect": round(abs(score), 5),
                "n": len(v),
            }
        )
    return out


def _pareto(tried: list[dict]) -> list[dict]:
    """Non-dominated tried configs on (north star, guard), best north star first."""
    pts = [t for t in tried]
    front = [
        t
        for t in pts
        if not any(
            o["ns"] >= t["ns"]
            and o["guard"] >= t["guard"]
            and (o["ns"] > t["ns"] or o["guard"] > t["guard"])
            for o in pts
        )
    ]
    front.sort(key=lambda t: (-t["ns"], t["id"]))
    return front[:8]


def insight(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    ctx = _ctx(runtime)
    o = ctx.obj
    tried = state.get("tried", [])
    exps = state.get("experiments", [])
    front = _pareto(tried)
    rej = Counter()
    for t in tried:
        if not t["kept"]:
            kind = next((v for k, v in _REASON_KIND if k in t["reason"]), "other")
            rej[kind] += 1
    best = state.get("winner") or (max(exps, key=lambda e: e["diff"]) if exps else None)
    obs = {
        "north_star": o.north_star,
        "guard": o.guard,
        "round": state["round"],
        "n_evaluated": len(tried),
        "knob_stats": _knob_stats(tried, o),
        "experiments": [
            {
                "id": e["id"],
                "overrides": e["overrides"],
                "decision": e["decision"],
                "diff": e["diff"],
                "p": round(e["p"], 5),
                "why": e["why"],
            }
            for e in exps
        ],
        "best": None
        if best is None
        else {
            "id": best["id"],
            "diff": best["diff"],
            "p": best["p"],
            "overrides": best["overrides"],
        },
        "pareto": [t["id"] for t in front],
        "rejections": dict(rej),
    }
    d = policy_for(ctx).decide("tune.insight", obs)
    _record(
        ctx,
        config,
        state,
        "insight",
        decision=d,
        observation={k: v for k, v in obs.items() if k != "knob_stats"},
    )
    return {
        "insight": {**d.value.model_dump(), "pareto": obs["pareto"]},
        "pareto": [
            {
                "id": t["id"],
                "overrides": t["overrides"],
                "ns": t["ns"],
                "guard": t["guard"],
            }
            for t in front
        ],
        "policies": [["insight", who(d)]],
    }


def _skill_id(ws: TuneTask, o: Objective, knobs: list[str]) -> str:
    h = zlib.crc32(",".join(sorted(knobs)).encode())
    return f"tune-{ws.slug}-{o.name}-{h:08x}"


def skill(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Distil a skill from this round's best A/B result (a significant winner,
    or else a new best positive gain of the run that broke no guardrail: a
    promising direction, written with no success), then record the outcomes
    of the skills the Actor used, then prune.

    Distillation comes first and its evidence is marked ``distilled``: if it
    merges into the skill that seeded the experiment, the outcome below finds
    the experiment already recorded there and counts nothing twice. A node
    re-executed after a crash finds the ``distilled`` evidence and writes
    nothing again."""
    from agenticrec.skills import Evidence, Skill

    ctx = _ctx(runtime)
    ws, o = ctx.ws(), ctx.obj
    hub = hub_for(ctx)
    r = state["round"]
    mine = [e for e in state.get("experiments", []) if e["round"] == r]
    log: list[dict[str, Any]] = []

    def evidence(e: dict, kind: str = "outcome") -> Evidence:
        eff = {m: v["diff"] for m, v in e["metrics"].items()}
        eff["p"] = e["p"]
        return Evidence(
            experiment_id=e["id"],
            knob_changes=e["overrides"],
            effects=eff,
            note=f"{kind} ({e['decision']}): {e['why']}"[:300],
        )

    before = [
        e["diff"]
        for e in state.get("experiments", [])
        if e["round"] < r and e["decision"] != "control"
    ]
    wins = [
        e
        for e in mine
        if e["decision"] == "treatment"
        or (e["decision"] == "inconclusive" and e["diff"] > max(before, default=0.0))
    ]
    win = (
        max(wins, key=lambda e: (e["decision"] == "treatment", e["diff"]))
        if wins
        else None
    )
    obs = {
        "data": ws.slug,
        "task": state["task"],
        "north_star": o.north_star,
        "requirement": o.text,
        "winner": None
        if win is None
        else {
            "id": win["id"],
            "overrides": win["overrides"],
            "significant": win["decision"] == "treatment",
            "effects": {
                **{m: v["diff"] for m, v in win["metrics"].items()},
                "p": win["p"],
            },
        },
        "insight_effects": [
            f"{e['knob']} {e['direction']} -> {e['metric']} {e['effect']:+.1%} "
            f"(n={e['n']})"
            for e in state.get("insight", {}).get("effects", [])
        ],
    }
    d = policy_for(ctx).decide("tune.skill", obs)
    if d.value.write and d.value.draft is not None and win is not None:
        new_id = _skill_id(ws, o, list(win["overrides"]))
        holder = next(
            (
                s
                for s in hub.all()
                if any(
                    ev.experiment_id == win["id"] and ev.note.startswith("distilled")
                    for ev in s.evidence
                )
            ),
            None,
        )
        if holder is not None:
            # Recorded already: by this node before a kill (a resumed run
            # re-executes it). Log what that attempt did, or the report would
            # lose the skill it wrote.
            first = holder.evidence[0].experiment_id == win["id"]
            log.append(
                {
                    "round": r,
                    "action": "written" if holder.id == new_id and first else "merged",
                    "skill": holder.id,
                    "experiment": win["id"],
                }
            )
        else:
            draft = d.value.draft
            new = Skill(
                id=new_id,
                title=draft.title,
                task_context=draft.task_context,
                requirement=draft.requirement,
                north_star=o.north_star,
                stage=draft.stage,
                dataset=ws.slug,
                initial_config=win["overrides"],
                domain_knowledge=draft.domain_knowledge,
                tools=["evaluate_offline", "ab_test"],
                evidence=[evidence(win, "distilled")],
                success_count=int(win["decision"] == "treatment"),
                source="distilled",
            )
            res = hub.merge(new)
            log.append(
                {
                    "round": r,
                    "action": "merged" if res.merged_into else "written",
                    "skill": res.skill.id,
                    "experiment": win["id"],
                }
            )
    for e in mine:
        if not e["origin"].startswith("skill:"):
            continue
        sid = e["origin"].split(":", 1)[1]
        if e["decision"] == "treatment":
            success = True
        elif e["decision"] == "control" or e["diff"] <= 0:
            success = False
        else:
            continue  # positive but not significant: no verdict
        try:
            hub.record_outcome(sid, success, evidence(e))
        except KeyError:
            continue
        log.append(
            {
                "round": r,
                "action": "outcome",
                "skill": sid,
                "experiment": e["id"],
                "success": success,
            }
        )
    pruned = hub.prune()
    log += [{"round": r, "action": "pruned", "skill": s} for s in pruned.removed]
    _record(
        ctx,
        config,
        state,
        "skill",
        decision=d,
        observation={k: v for k, v in obs.items() if k != "insight_effects"},
        extra={"log": log},
    )
    best_gain = max(
        [
            e["relative"]
            for e in state.get("experiments", [])
            if e["decision"] == "treatment"
        ],
        default=0.0,
    )
    best_offline = max([t["gain"] for t in state.get("tried", [])], default=0.0)
    summary = {
        "round": r,
        "proposed": len(state.get("proposals", [])),
        "kept": len(state.get("kept", [])),
        "launched": [e["id"] for e in mine],
        "results": [
            {
                "id": e["id"],
                "decision": e["decision"],
                "diff": e["diff"],
                "p": round(e["p"], 5),
            }
            for e in mine
        ],
        "best_online_gain": round(best_gain, 5),
        "best_offline_gain": round(best_offline, 5),
        "incumbent_gain": round(
            _rel(
                state["incumbent"]["all"][o.north_star],
                state["control"]["all"][o.north_star],
            ),
            5,
        ),
        "sigma": round(state["sigma"], 4),
    }
    return {
        "skill_log": log,
        "history": [summary],
        "round": r + 1,
        "policies": [["skill", who(d)]],
    }


def skip_round(state: TuneState) -> dict:
    """Clear the plan when the Critic kept nothing or the reviewer declined."""
    return {"plan": {"round": state["round"], "launches": []}}


def finish(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Report-only statistics, computed after the last round:

    * ``winner``: the in-run A/B winner (largest significant gain), with a
      Bonferroni p over every A/B test of the run;
    * ``confirmation``: one pre-registered A/B test (seed from
      ``{thread}:confirm``) of the incumbent, the configuration the Critic
      confirmed on both offline halves, chosen without online data;
    * ``robustness``: for the winner (else the incumbent), the share of 20
      fresh assignments in which it wins, and its mean online metrics over
      all online users.
    """
    ctx = _ctx(runtime)
    ws, o = ctx.ws(), ctx.obj
    win = state.get("winner")
    inc = state.get("incumbent") or {"id": "default", "overrides": {}}
    n_tests = len(state.get("experiments", []))
    final: dict[str, Any] = {"ab_tests": n_tests, "winner": None}
    if win is not None:
        final["winner"] = {
            "experiment": win["id"],
            "knobs": win["overrides"],
            "north_star": o.north_star,
            "diff": win["diff"],
            "relative": win["relative"],
            "p": win["p"],
            "p_bonferroni": min(1.0, win["p"] * max(n_tests, 1)),
            "ci": win["ci"],
            "metrics": win["metrics"],
            "guardrails_failed": win["guardrails_failed"],
        }
    if inc["overrides"]:
        res = ws.ab_test(
            inc["overrides"],
            seed=experiment_seed(ctx.seed, f"{_thread(config)}:confirm"),
            objective=o,
            alpha=ctx.alpha,
        )
        m = res.metrics[o.north_star]
        final["confirmation"] = {
            "config": inc["id"],
            "knobs": inc["overrides"],
            "decision": res.decision,
            "diff": round(m.diff, 6),
            "relative": round(m.relative_diff or 0.0, 5),
            "p": m.p_value,
            "ci": [round(m.ci_low, 6), round(m.ci_high, 6)],
            "metrics": {
                k: {"diff": round(c.diff, 6), "p": round(c.p_value, 5)}
                for k, c in res.metrics.items()
            },
            "guardrails_failed": [g.reason for g in res.guardrails if not g.passed],
        }
    target = win["overrides"] if win is not None else inc["overrides"]
    if target:
        final["robustness"] = {
            "config": "winner" if win is not None else "incumbent",
            **ws.robustness(target, objective=o, alpha=ctx.alpha),
        }
    _record(ctx, config, state, "finish", observation={}, metrics=final)
    _record(ctx, config, state, "__end__", metrics=final)
    return {"final": final}


# ----------------------------------------------------------------- routers
def after_critic(state: TuneState) -> Literal["plan", "skip_round"]:
    return "plan" if state.get("kept") else "skip_round"


def after_plan(
    state: TuneState, runtime: Runtime[TuneContext]
) -> Literal["review", "online", "skip_round"]:
    if not state["plan"]["launches"]:
        return "skip_round"
    return "review" if _ctx(runtime).review else "online"


def after_review(state: TuneState) -> Literal["online", "skip_round"]:
    return "online" if state.get("approved") else "skip_round"


def after_skill(
    state: TuneState, runtime: Runtime[TuneContext]
) -> Literal["actor", "finish"]:
    return "actor" if state["round"] < _ctx(runtime).rounds else "finish"


# ------------------------------------------------------------------- graph
def build_graph(*, checkpointer=None, store=None):
    """The compiled tune graph (context: :class:`TuneContext`)."""
    b = StateGraph(TuneState, context_schema=TuneContext, input_schema=TuneInput)
    b.add_node("setup", setup)
    b.add_node("actor", actor)
    b.add_node("critic", critic)
    b.add_node("plan", plan)
    b.add_node("review", review)
    b.add_node("online", online)
    b.add_node("skip_round", skip_round)
    b.add_node("insight", insight)
    b.add_node("skill", skill)
    b.add_node("finish", finish)
    b.add_edge(START, "setup")
    b.add_edge("setup", "actor")
    b.add_edge("actor", "critic")
    b.add_conditional_edges("critic", after_critic)
    b.add_conditional_edges("plan", after_plan)
    b.add_conditional_edges("review", after_review)
    b.add_edge("online", "insight")
    b.add_edge("skip_round", "insight")
    b.add_edge("insight", "skill")
    b.add_conditional_edges("skill", after_skill)
    b.add_edge("finish", END)
    return b.compile(checkpointer=checkpointer, store=store, name=GRAPH_NAME)


graph = build_graph()


# --------------------------------------------------------------------- run
def _pending_interrupt(compiled, config) -> Any:
    snap = compiled.get_state(config)
    for task in snap.tasks:
        for it in getattr(task, "interrupts", ()) or ():
            return it.value
    return None


def run(
    ctx: TuneContext,
    *,
    task: str | None = None,
    checkpointer=None,
    thread_id: str | None = None,
    resume: Any = None,
    progress=None,
) -> dict[str, Any]:
    """Tune for ``ctx.rounds`` rounds and report the winner.

    With a ``checkpointer`` an existing ``thread_id`` resumes where it stopped
    (a killed process, or a pause for review); a finished thread returns its
    report. ``resume`` answers a pending review, e.g. ``{"approve": True}``.

    Returns:
        The report; ``status`` is ``"done"`` or ``"awaiting_approval"`` (then
        ``pending`` holds the plan).

    Raises:
        ConfigError: ``ctx.review`` without a checkpointer.
    """
    if ctx.review and checkpointer is None:
        raise ConfigError(
            "review needs a checkpointer to pause and resume: pass --checkpoint "
            "(CLI) or checkpointer= (Python)"
        )
    t0 = time.perf_counter()
    ws = ctx.ws()
    hub_for(ctx)
    t_setup = time.perf_counter() - t0
    thread_id = thread_id or f"tune-{ws.slug}-{ctx.objective}-{ctx.seed}"
    config = {
        "configurable": {"thread_id": thread_id},
        "recursion_limit": 20 + 12 * ctx.rounds,
    }
    cg = build_graph(checkpointer=checkpointer) if checkpointer is not None else graph
    start: Any = {"task": task} if task else {}
    if checkpointer is not None:
        snap = cg.get_state(config)
        if resume is not None and _pending_interrupt(cg, config) is not None:
            start = Command(resume=resume)
        elif snap.next or snap.tasks:
            start = None
        elif snap.values.get("final") is not None:
            start = "done"
    t1 = time.perf_counter()
    final: dict[str, Any] = {}
    try:
        if start == "done":
            final = dict(cg.get_state(config).values)
        else:
            for chunk in cg.stream(start, config, context=ctx, stream_mode="values"):
                final = chunk
                if progress is not None:
                    progress(min(chunk.get("round", 0), ctx.rounds), ctx.rounds)
    finally:
        close_writers()
    if checkpointer is not None:
        final = dict(cg.get_state(config).values)
    elapsed = time.perf_counter() - t1
    return _report(
        ctx,
        ws,
        final,
        thread_id,
        cg if checkpointer else None,
        config,
        {"setup_s": round(t_setup, 3), "graph_s": round(elapsed, 3)},
    )


def _report(ctx, ws, st, thread_id, cg, config, timings) -> dict[str, Any]:
    pending = _pending_interrupt(cg, config) if cg is not None else None
    counts: dict[str, dict[str, int]] = {}
    for role, by in st.get("policies", []):
        key = "rule (fallback)" if by.startswith("rule (fallback") else by
        counts.setdefault(role, {}).setdefault(key, 0)
        counts[role][key] += 1
    log = st.get("skill_log", [])
    ctrl = st.get("control", {}).get("all", {})
    report: dict[str, Any] = {
        "graph": GRAPH_NAME,
        "status": "awaiting_approval" if pending is not None else "done",
        "data": ctx.data,
        "objective": ctx.objective,
        "north_star": ctx.obj.north_star,
        "task": st.get("task"),
        "seed": ctx.seed,
        "rounds": ctx.rounds,
        "rounds_done": st.get("round", 0),
        "candidates": ctx.candidates,
        "task_info": ws.describe(),
        "default_offline": ctrl,
        "winner": (st.get("final") or {}).get("winner"),
        "incumbent": {
            "id": (st.get("incumbent") or {}).get("id"),
            "knobs": (st.get("incumbent") or {}).get("overrides", {}),
            "offline_gain": round(
                _rel(
                    (st.get("incumbent") or {})
                    .get("all", ctrl)
                    .get(ctx.obj.north_star, 0.0),
                    ctrl.get(ctx.obj.north_star, 0.0),
                ),
                5,
            ),
        },
        "confirmation": (st.get("final") or {}).get("confirmation"),
        "robustness": (st.get("final") or {}).get("robustness"),
        "ab_tests": len(st.get("experiments", [])),
        "evaluations": len(st.get("tried", [])),
        "history": st.get("history", []),
        "experiments": [
            {
                k: e[k]
                for k in (
                    "id",
                    "overrides",
                    "origin",
                    "decision",
                    "diff",
                    "relative",
                    "p",
                    "guardrails_failed",
                )
            }
            for e in st.get("experiments", [])
        ],
        "skills": {
            "retrieved": [
                {"id": s["id"], "similarity": s["similarity"], "source": s["source"]}
                for s in st.get("skills", [])
            ],
            "used": st.get("skills_used", []),
            "written": list(
                dict.fromkeys(
                    x["skill"] for x in log if x["action"] in ("written", "merged")
                )
            ),
            "outcomes": [x for x in log if x["action"] == "outcome"],
            "pruned": [x["skill"] for x in log if x["action"] == "pruned"],
        },
        "insight": (st.get("insight") or {}).get("summary"),
        "policies": counts,
        "timings": timings,
        "thread_id": thread_id,
        "skillhub": str(ctx.hub_path()),
    }
    if pending is not None:
        report["pending"] = pending
    return report


# --------------------------------------------------------------------- CLI
def register_cli(run_app) -> None:
    """Add ``agenticrec run tune`` to the CLI."""

    @run_app.command("tune")
    def run_tune(
        data: DataOpt = "ml-latest-small",
        rounds: int = typer.Option(10, "--rounds", help="Tuning rounds."),
        candidates: int = typer.Option(
            6, "--candidates", help="Configurations the Actor proposes per round."
        ),
        max_launch: int = typer.Option(
            2, "--max-launch", help="A/B tests per round at most."
        ),
        skillhub: Annotated[
            Path, typer.Option("--skillhub", help="Skillhub folder.")
        ] = DEFAULT_HUB,
        no_seeds: bool = typer.Option(
            False, "--no-seeds", help="Do not load seed skills into an empty hub."
        ),
        task: str | None = typer.Option(None, "--task", help="Task text."),
        objective: str = typer.Option("ndcg", "--objective", help="ndcg | diversity"),
        review: bool = typer.Option(
            False, "--review", help="Pause for approval before each launch."
        ),
        approve: bool = typer.Option(
            False, "--approve", help="Approve the pending launch of this thread."
        ),
        decline: bool = typer.Option(
            False, "--decline", help="Decline the pending launch of this thread."
        ),
        offline_events: int = typer.Option(3, "--offline-events"),
        online_events: int = typer.Option(1, "--online-events"),
        online_share: float = typer.Option(0.5, "--online-share"),
        max_users: int = typer.Option(0, "--max-users", help="Users per group cap."),
        trajectories: TrajectoriesOpt = None,
        seed: SeedOpt = 0,
        checkpoint: CheckpointOpt = None,
        thread_id: ThreadOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """AgenticRecTune: Actor, Critic, Online, Insight, Skill agents tune the
        pipeline through A/B tests with a self-evolving Skillhub."""
        if task and objective == "ndcg" and "divers" in task.lower():
            objective = "diversity"
        ctx = TuneContext(
            data=data,
            objective=objective,  # type: ignore[arg-type]
            rounds=rounds,
            candidates=candidates,
            max_launch=max_launch,
            skillhub=str(skillhub),
            seeds=not no_seeds,
            review=review,
            offline_events=offline_events,
            online_events=online_events,
            online_share=online_share,
            max_users=max_users,
            seed=seed,
            trajectories=str(trajectories) if trajectories else None,
        )
        resume = (
            {"approve": True} if approve else ({"approve": False} if decline else None)
        )
        interactive = review and not as_json and sys.stdin.isatty()
        if review and checkpoint is None and not interactive:
            raise ConfigError(
                "--review without a terminal (or with --json) needs --checkpoint: "
                "the run pauses there; re-run with the same --thread-id and "
                "--approve or --decline"
            )
        import contextlib

        from langgraph.checkpoint.memory import InMemorySaver

        with contextlib.ExitStack() as stack:
            saver = stack.enter_context(open_checkpointer(checkpoint))
            if saver is None and interactive:
                saver = InMemorySaver()
            bar = stack.enter_context(progress_bar("tune", disable=as_json))
            report = run(
                ctx,
                task=task,
                checkpointer=saver,
                thread_id=thread_id,
                resume=resume,
                progress=bar,
            )
            while interactive and report["status"] == "awaiting_approval":
                emit_report(report["pending"], as_json=False, title="launch plan")
                ok = typer.confirm("Launch?", default=True, err=True)
                report = run(
                    ctx,
                    task=task,
                    checkpointer=saver,
                    thread_id=report["thread_id"],
                    resume={"approve": ok},
                    progress=bar,
                )
        if report["status"] == "awaiting_approval" and not as_json:
            stderr.print(
                f"paused for review: re-run with --thread-id {report['thread_id']} "
                "--approve (or --decline) and the same --checkpoint"
            )
        emit_report(report, as_json=as_json, title="tune")


def demo(ds, *, seed: int = 0) -> dict[str, Any]:
    """A short tune run for ``agenticrec demo``: 3 rounds, temporary Skillhub."""
    with tempfile.TemporaryDirectory(prefix="agenticrec-skillhub-") as tmp:
        ctx = TuneContext(
            data=ds.name if ds.source.startswith("embedded") else ds.source,
            seed=seed,
            rounds=3,
            candidates=4,
            offline_events=2,
            skillhub=tmp,
        )
        try:
            report = run(ctx)
        finally:
            close_hub(ctx)
    w = report["winner"]
    c = report["confirmation"]
    best = w or c
    found = (
        "no A/B winner yet"
        if best is None
        else f"{'winner' if w else 'incumbent (confirmation test)'} changes "
        f"{', '.join(best['knobs'])}: NDCG@10 {best['diff']:+.4f} (p={best['p']:.3f})"
    )
    return {
        "summary": f"{report['rounds_done']} rounds, {report['ab_tests']} A/B tests; "
        f"{found}; {len(report['skills']['retrieved'])} skills retrieved",
        "rounds": report["rounds_done"],
        "ab_tests": report["ab_tests"],
        "winner_knobs": w["knobs"] if w else None,
        "online_gain": None
        if best is None
        else {
            "of": "winner" if w else f"incumbent {c['config']} (confirmation test)",
            "knobs": best["knobs"],
            "NDCG@10": best["diff"],
            "p": round(best["p"], 4),
        },
        "skills_retrieved": [s["id"] for s in report["skills"]["retrieved"]],
        "skills_written": report["skills"]["written"],
        "policies": report["policies"],
        "graph_s": report["timings"]["graph_s"],
    }
