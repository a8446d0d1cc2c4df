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

Nodes take the policy, the trajectory writer and the Skillhub client from
``ctx.services`` (one per run, closed by the runner); run the graph with
``agenticrec.runner.run("tune", ctx)`` (input, report and review answers:
:mod:`agenticrec.graphs._tune_spec`).
"""

from __future__ import annotations

import operator
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from typing_extensions import TypedDict

from agenticrec.context import Context, setting
from agenticrec.errors import ConfigError
from agenticrec.graphs import _tune_roles  # noqa: F401 - registers tune.* roles
from agenticrec.graphs import _tune_sampler as sampling
from agenticrec.graphs import _tune_search as search
from agenticrec.graphs import _tune_skillhub as hubs
from agenticrec.graphs._runtime import policy_info, record, thread_of
from agenticrec.graphs._tune_task import (
    AB_DESIGNS,
    OBJECTIVES,
    Objective,
    TuneTask,
    ab_summary,
    estimate_proposals,
    experiment_seed,
    rel,
    round_summary,
    slug,
    task_workspace,
)
from agenticrec.policy import Decision
from agenticrec.tools.pipeline import PipelineConfig

__all__ = [
    "TEMP_HUB",
    "TuneContext",
    "TuneInput",
    "TuneState",
    "build_graph",
    "graph",
]

GRAPH_NAME = "tune"
TEMP_HUB = hubs.TEMP_HUB


@dataclass(kw_only=True)
class TuneContext(Context):
    """Settings of a tune run (plus the LLM settings of :class:`Context`).

    A ``task`` mentioning diversity (``"divers"``) selects
    ``objective="diversity"``.
    """

    data: str = setting("ml-latest-small", "Dataset name (ml-latest-small) or path.")
    task: str | None = setting(
        None,
        "Task text the Actor reads and the Skillhub is searched with (default: "
        "the objective's); text mentioning diversity selects objective diversity.",
    )
    objective: Literal["ndcg", "diversity"] = setting(
        "ndcg",
        "ndcg: raise NDCG@10, guard ILD@10 and novelty; "
        "diversity: raise ILD@10, guard NDCG@10 (5%).",
        choices=tuple(OBJECTIVES),
    )
    rounds: int = setting(10, "Tuning rounds.", ge=1, le=1000)
    candidates: int = setting(
        6, "Configurations the Actor proposes per round.", ge=1, le=16
    )
    max_launch: int = setting(2, "A/B tests per round at most.", ge=1, le=16)
    sampler: Literal["tpe", "cmaes", "gaussian"] = setting(
        "tpe",
        "Classical sampler steering the Actor: tpe or cmaes (Optuna, told every "
        "estimate), or gaussian (the Actor's own perturbation search only).",
        choices=sampling.SAMPLERS,
    )
    skillhub: str | None = setting(
        None,
        "Skillhub folder (Chroma + experiment memory); default runs/skillhub; "
        f"{TEMP_HUB} for a temporary one removed at the end of the run.",
    )
    seeds: bool = setting(
        True,
        "Load the shipped seed skills into an empty hub.",
        cli="--seeds/--no-seeds",
    )
    transfer: bool = setting(
        True,
        "Warm-start the sampler with the offline estimates earlier runs left in "
        "the Skillhub (other datasets or partitions, same objective).",
    )
    skills_k: int = setting(4, "Skills retrieved for the task.", ge=1, le=32)
    embedding: Literal["minilm", "hashing"] = setting(
        "minilm",
        "Skill embedding; hashing is for unit tests only.",
        choices=("minilm", "hashing"),
    )
    review: bool = setting(
        False,
        "Pause for approval before each launch (needs --checkpoint without a "
        "terminal; answer with --approve or --decline).",
    )
    alpha: float = setting(0.05, "A/B significance level.", ge=1e-6, le=0.5)
    online_share: float = setting(
        0.5, "Share of users in the online (A/B) group.", ge=0.01, le=0.99
    )
    offline_events: int = setting(
        3, "Events per offline user (estimates).", ge=1, le=50
    )
    online_events: int = setting(
        10,
        "Events per online user (A/B period); one event per user leaves too "
        "few hits for any test to see a 10% effect (docs/tune.md).",
        ge=1,
        le=50,
    )
    ab_design: Literal["welch", "cuped", "cuped+strata", "interleave"] = setting(
        "interleave",
        "Online test: interleave (every user sees a team-draft merge of both "
        "lists, paired), cuped, cuped+strata, or welch (a plain 50/50 split).",
        choices=AB_DESIGNS,
    )
    ab_sequential: bool = setting(
        False,
        "Look at the north star after every tenth of the users with always-"
        "valid mSPRT p-values and stop at the first significant look.",
    )
    max_users: int = setting(0, "Cap on users per group (0: all).", ge=0, le=10**8)
    split_seed: int | None = setting(
        None,
        "Seed of the offline/online user partition (default: seed); fix it to "
        "vary only the agents' randomness.",
        ge=0,
        le=2**31 - 1,
    )
    trajectories: str | None = setting(
        None, "JSONL file to append trajectories to.", binds=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.task and self.objective == "ndcg" and "divers" in self.task.lower():
            self.objective = "diversity"
        if self.review and self.skillhub == TEMP_HUB:
            raise ConfigError(
                f"skillhub={TEMP_HUB!r} is removed at the end of each run, so a "
                "review pause could not resume on it: pass a Skillhub folder"
            )

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

    def task_text(self) -> str:
        """``task``, or the objective's text naming the dataset."""
        return self.task or f"{self.obj.text} Dataset: {slug(self.data)}."

    def hub_path(self) -> Path:
        """The Skillhub folder (a temporary one for :data:`TEMP_HUB`)."""
        return hubs.hub_path(self.skillhub, self.services)

    def hub(self):
        """This run's :class:`~agenticrec.skills.ChromaSkillStore` (from
        ``services``: built once, closed by the runner at the end)."""
        path = self.hub_path()
        return hubs.hub_of(
            path, self.services, embedding=self.embedding, seeds=self.seeds
        )

    def memory(self):
        """The task's :class:`~agenticrec.skills.ExperimentMemory`."""
        return hubs.experiment_memory(self.hub_path(), slug(self.data), self.obj)


class TuneInput(TypedDict, total=False):
    """What a caller passes: the task text (default: the context's)."""

    task: str


class TuneState(TuneInput, total=False):
    round: int
    skills: list[dict[str, Any]]
    skills_used: list[str]
    priors: list[dict[str, Any]]
    """Other runs' estimates from the Skillhub (the sampler's warm start)."""
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
    policies: Annotated[list[dict[str, Any]], operator.add]
    """``{"role", "policy", "fallback_reason"}`` per decision."""


# ----------------------------------------------------------------- runtime
def _ctx(runtime: Runtime[TuneContext]) -> TuneContext:
    return runtime.context if runtime.context is not None else TuneContext()


def _decide(ctx: TuneContext, role: str, obs: dict) -> tuple[Decision, list[dict]]:
    d = ctx.services.policy.decide(f"tune.{role}", obs)
    return d, [{"role": role, **policy_info(d)}]


def _record(ctx, config, state, node, *, decision: Decision | None = None, **kw):
    writer = ctx.services.writer
    if writer is None:
        return
    ws = ctx.ws()
    record(
        writer,
        thread_of(config),
        graph=GRAPH_NAME,
        context=ctx.public_dict(),
        dataset={"name": ws.dataset.name, "fingerprint": ws.dataset.fingerprint},
        node=node,
        step_id=f"{node}:{state.get('round', 0)}",
        decision=decision,
        **kw,
    )


# ------------------------------------------------------------------- nodes
def setup(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Retrieve skills for the task; estimate the default offline."""
    ctx = _ctx(runtime)
    ws, o, k = ctx.ws(), ctx.obj, ctx.skills_k
    hub = ctx.hub()
    text = state.get("task") or ctx.task_text()
    hits = hub.search(text, k=k, where={"north_star": o.north_star})
    if len(hits) < k:
        have = {h.skill.id for h in hits}
        more = [h for h in hub.search(text, k=k) if h.skill.id not in have]
        hits += more[: k - len(hits)]
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
    priors, skipped = (
        hubs.load_priors(ctx.hub_path(), o, exclude=f"{thread_of(config)}:")
        if ctx.transfer and ctx.sampler != "gaussian"
        else ([], [])
    )
    _record(
        ctx,
        config,
        state,
        "setup",
        observation={"task": text, "task_info": ws.describe()},
        extra={
            "skills": [(s["id"], s["similarity"]) for s in skills],
            "priors": {
                "n": len(priors),
                "sources": sorted({p["source"] for p in priors}),
                "skipped": skipped[:20],
            },
        },
    )
    return {
        "task": text,
        "round": 0,
        "skills": skills,
        "skills_used": [],
        "priors": priors,
        "control": control,
        "sigma": search.SIGMA0,
        "incumbent": {"id": "default", "overrides": {}, "gain_lcb": 0.0, **control},
        "pareto": [],
        "insight": {},
        "winner": None,
    }


def actor(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Propose ``candidates`` configurations (overrides of the default)."""
    ctx = _ctx(runtime)
    o = ctx.obj
    used = set(state.get("skills_used", []))
    tried = state.get("tried", [])
    inc = state["incumbent"]
    inc_gain = rel(inc["all"][o.north_star], state["control"]["all"][o.north_star])
    insight = state.get("insight", {})
    stats = search.knob_stats(tried, o.north_star, o.guard)
    obs = {
        "task": state["task"],
        "north_star": o.north_star,
        "guard": o.guard,
        "round": state["round"],
        "rounds": ctx.rounds,
        "m": ctx.candidates,
        "seed": ctx.seed,
        "sigma": state["sigma"],
        "incumbent": inc["overrides"],
        "pareto": [
            {k: p[k] for k in ("id", "overrides", "ns", "guard")}
            for p in state.get("pareto", [])
        ],
        "tried_keys": [t["key"] for t in tried],
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
            "summary": insight.get("summary", ""),
            "promising": insight.get("promising", []),
        },
        "near_misses": [
            {k: t[k] for k in ("id", "overrides", "gain", "guard_change")}
            for t in sorted(tried, key=lambda t: -t["gain"])
            if "breaks" in t["reason"]
            and t["gain_lcb"] > 0
            and t["gain"] > inc_gain
        ][:4],
        "guard_knobs": [
            {"knob": e["knob"], "direction": e["direction"], "effect": e["effect"]}
            for e in sorted(stats, key=lambda e: -e["effect"])
            if e["metric"] == o.guard and e["n"] >= 2
        ][:3],
        "knobs": PipelineConfig.describe(),
    }
    frozen = sampling.inert_knobs(stats)
    priors = state.get("priors", []) if len(tried) < sampling.PRIOR_UNTIL else []
    obs["sampler"] = ctx.sampler
    obs["frozen"] = frozen
    obs["ranges"] = sampling.narrowed(priors, guard_tolerance=o.guard_tolerance)
    obs["suggestions"] = sampling.ask(
        tried,
        n=ctx.candidates,
        seed=experiment_seed(ctx.seed, f"sampler:{state['round']}"),
        sampler=ctx.sampler,
        base=inc["overrides"],
        frozen=frozen,
        guard_tolerance=o.guard_tolerance,
        priors=priors,
        ranges=obs["ranges"],
    )
    d, policies = _decide(ctx, "actor", obs)
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
    return {"proposals": proposals, "skills_used": sorted(used), "policies": policies}


def critic(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Validate and estimate every proposal, then let the Critic decide."""
    ctx = _ctx(runtime)
    ws, o = ctx.ws(), ctx.obj
    control, inc, r = state["control"], state["incumbent"], state["round"]
    tested = {e["key"]: e["id"] for e in state.get("experiments", [])}
    cands = estimate_proposals(ws, o, state["proposals"], control, tested)
    evaluated = [c for c in cands if c["valid"]]
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
    d, policies = _decide(ctx, "critic", obs)
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
    tried = [
        {
            "id": f"r{r}c{c['index']}",
            "round": r,
            **{
                k: c[k]
                for k in (
                    "overrides",
                    "key",
                    "origin",
                    "ns",
                    "guard",
                    "gain",
                    "gain_A",
                    "gain_B",
                    "gain_lcb",
                    "guard_change",
                )
            },
            "kept": c["index"] in kept_idx,
            "reason": reasons.get(c["index"], "kept"),
        }
        for c in evaluated
    ]
    invalid = [
        {"index": c["index"], "reason": reasons.get(c["index"], c["error"])}
        for c in cands
        if not c["valid"]
    ]
    _remember_estimates(ctx, thread_of(config), tried)
    # the incumbent is the feasible config with the highest offline lower
    # bound (TuneTask.gain_lower_bound): pessimism against the winner's curse
    # of picking the best of many noisy estimates; 1/5 rule: success = a
    # new incumbent
    wins = [
        c
        for c in evaluated
        if c["gain_lcb"] > inc.get("gain_lcb", 0.0)
        and c["guard_change"] >= -o.guard_tolerance
    ]
    sigma = search.adapt_sigma(state["sigma"], len(wins), len(evaluated))
    update: dict[str, Any] = {
        "kept": kept,
        "tried": tried,
        "sigma": sigma,
        "policies": policies,
    }
    if wins:
        best = max(wins, key=lambda c: (c["gain_lcb"], -c["index"]))
        update["incumbent"] = {
            "id": f"r{r}c{best['index']}",
            "overrides": best["overrides"],
            "gain_lcb": best["gain_lcb"],
            **best["estimate"],
        }
    _record(
        ctx,
        config,
        state,
        "critic",
        decision=d,
        observation=obs,
        extra={"invalid": invalid, "sigma": sigma},
    )
    return update


def _remember_estimates(
    ctx: TuneContext, thread: str, tried: list[dict[str, Any]]
) -> None:
    """Store this round's offline estimates in the Skillhub (ids
    ``{thread}:{id}``, so a re-executed node adds nothing twice): the priors
    of later runs."""
    from agenticrec.skills import ExperimentItem

    o = ctx.obj
    mem = hubs.estimate_memory(ctx.hub_path(), slug(ctx.data), o)
    for t in tried:
        mem.add(
            ExperimentItem(
                id=f"{thread}:{t['id']}",
                config=t["overrides"],
                explanation=t["origin"][:200],
                results={
                    f"offline.{o.north_star}": float(t["ns"]),
                    f"offline.{o.guard}": float(t["guard"]),
                    "offline.gain": float(t["gain"]),
                    "offline.guard_change": float(t["guard_change"]),
                },
            )
        )


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
    d, policies = _decide(ctx, "online", obs)
    thread, r = thread_of(config), state["round"]
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
        "policies": policies,
    }


def review(state: TuneState) -> dict:
    """Pause for approval of the launch plan (``review``); resume with
    ``{"approve": True | False}``."""
    p = state["plan"]
    answer = interrupt(
        {
            "question": "Launch these A/B tests against the default?",
            "plan": {
                **p,
                "launches": [
                    {k: v for k, v in x.items() if k != "key"} for x in p["launches"]
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
    mem = ctx.memory()
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
            design=ctx.ab_design,
            sequential=ctx.ab_sequential,
        )
        main = res.metrics[o.north_star]
        est = ws.estimate(launch["overrides"])["all"]
        results = {f"offline.{m}": float(v) for m, v in est.items()}
        for m, c in res.metrics.items():
            results[f"ab.{m}.diff"] = c.diff
            results[f"ab.{m}.p"] = c.p_value
        results["ab.win"] = float(res.decision == "treatment")
        mem.update(eid, status="done", results=results)
        ab = ab_summary(res, o)
        exp = {
            **launch,
            "round": state["round"],
            **ab,
            "control_mean": round(main.control_mean, 6),
            "n": [res.n_control, res.n_treatment],
            "why": "; ".join(ab["guardrails_failed"])
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


def insight(
    state: TuneState, runtime: Runtime[TuneContext], config: RunnableConfig
) -> dict:
    """Summarise knob effects, the Pareto set and failures."""
    ctx = _ctx(runtime)
    o = ctx.obj
    tried = state.get("tried", [])
    exps = state.get("experiments", [])
    front = search.pareto_front(tried)
    rej: Counter[str] = Counter()
    for t in tried:
        if not t["kept"]:
            rej[next((v for k, v in _REASON_KIND if k in t["reason"]), "other")] += 1
    best = state.get("winner") or (max(exps, key=lambda e: e["diff"]) if exps else None)
    obs = {
        "north_star": o.north_star,
        "guard": o.guard,
        "round": state["round"],
        "n_evaluated": len(tried),
        "knob_stats": search.knob_stats(tried, o.north_star, o.guard),
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
        else {k: best[k] for k in ("id", "diff", "p", "overrides")},
        "pareto": [t["id"] for t in front],
        "rejections": dict(rej),
    }
    d, policies = _decide(ctx, "insight", obs)
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
            {k: t[k] for k in ("id", "overrides", "ns", "guard")} for t in front
        ],
        "policies": policies,
    }


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
    from agenticrec.skills import Skill

    ctx = _ctx(runtime)
    ws, o = ctx.ws(), ctx.obj
    hub = ctx.hub()
    r = state["round"]
    exps = state.get("experiments", [])
    mine = [e for e in exps if e["round"] == r]
    log: list[dict[str, Any]] = []
    before = [e["diff"] for e in exps if e["round"] < r and e["decision"] != "control"]
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
    d, policies = _decide(ctx, "skill", obs)
    if d.value.write and d.value.draft is not None and win is not None:
        new_id = hubs.skill_id(ws.slug, o, list(win["overrides"]))
        entry = {"round": r, "experiment": win["id"]}
        holder = hubs.distilled_holder(hub, win["id"])
        if holder is not None:
            # Recorded already: by this node before a kill (a resumed run
            # re-executes it). Log what that attempt did, or the report would
            # lose the skill it wrote.
            first = holder.evidence[0].experiment_id == win["id"]
            written = holder.id == new_id and first
            log.append(
                {
                    **entry,
                    "action": "written" if written else "merged",
                    "skill": holder.id,
                }
            )
        else:
            draft = d.value.draft
            res = hub.merge(
                Skill(
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
                    evidence=[hubs.evidence(win, "distilled")],
                    success_count=int(win["decision"] == "treatment"),
                    source="distilled",
                )
            )
            log.append(
                {
                    **entry,
                    "action": "merged" if res.merged_into else "written",
                    "skill": res.skill.id,
                }
            )
    log += hubs.record_outcomes(hub, mine, r)
    log += [{"round": r, "action": "pruned", "skill": s} for s in hub.prune().removed]
    _record(
        ctx,
        config,
        state,
        "skill",
        decision=d,
        observation={k: v for k, v in obs.items() if k != "insight_effects"},
        extra={"log": log},
    )
    return {
        "skill_log": log,
        "history": [round_summary(state, o)],
        "round": r + 1,
        "policies": policies,
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
      ``{thread}:confirm``) of the incumbent, the feasible configuration
      with the highest offline lower bound, chosen without online data;
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
            "p_bonferroni": min(1.0, win["p"] * max(n_tests, 1)),
            **{
                k: win[k]
                for k in ("diff", "relative", "p", "ci", "metrics", "guardrails_failed")
            },
        }
    if inc["overrides"]:
        res = ws.ab_test(
            inc["overrides"],
            seed=experiment_seed(ctx.seed, f"{thread_of(config)}:confirm"),
            objective=o,
            alpha=ctx.alpha,
            design=ctx.ab_design,
        )
        final["confirmation"] = {
            "config": inc["id"],
            "knobs": inc["overrides"],
            **ab_summary(res, o),
        }
    target = win["overrides"] if win is not None else inc["overrides"]
    if target:
        final["robustness"] = {
            "config": "winner" if win is not None else "incumbent",
            "design": ctx.ab_design,
            **ws.robustness(target, objective=o, alpha=ctx.alpha, design=ctx.ab_design),
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
    for node in (
        setup,
        actor,
        critic,
        plan,
        review,
        online,
        skip_round,
        insight,
        skill,
        finish,
    ):
        b.add_node(node.__name__, node)
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
