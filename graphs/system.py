"""The AgenticRS system graph: agents that evolve individually and in
composition, on a real multi-stage recommender.

::

    START -> individual -> measure --(trigger)--> compositional -> individual ...
                              \\--(rounds left)--> individual
                               \\-(done)--------> END

* **individual** (composition fixed): every model-centric agent of every arm
  in use takes a (1+3)-ES step on its own knobs (recall channels: quota and
  pre-ranking weight, driven by their *inner* reward, recall of the held-out
  item; the ranking fusion and the MMR re-ranker: driven by the *outer*
  reward, being coordinating agents), and the structural agent screens
  grammar proposals (``system.structure``: LLM or rule enumeration).
* **measure**: outer reward of the system on the offline users (what drives
  decisions) and on the held-out online users (what is reported), next to
  the frozen initial composition. A distribution shift (from round
  ``shift_round``, short-history users weigh ``shift_factor`` x) or the first
  round triggers a compositional round.
* **compositional**: for each user segment a specialist arm is evolved on
  that segment alone; the router (``system.router``) assigns segments to arms
  by outer reward; unused arms are dropped.

State holds only JSON (arms as flat pipeline configs), so any round resumes
from a SQLite checkpoint.
"""

from __future__ import annotations

import json
import operator
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

import numpy as np
import typer
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from agenticrec.agents import AgentSpec, register_agent
from agenticrec.context import Context
from agenticrec.graphs import _system_roles  # noqa: F401 - registers roles
from agenticrec.graphs._runtime import (
    policy_for,
    record,
    stream_thread,
    thread_of,
    who,
)
from agenticrec.graphs._system_space import (
    ChannelSpace,
    RankingSpace,
    RerankSpace,
    RoutingDecision,
    StructureSpace,
    apply_structure,
    es_step,
    structure_of,
)
from agenticrec.graphs._system_workspace import SystemWorkspace, workspace
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
)
from agenticrec.tools.pipeline import CHANNELS, HEADS, PipelineConfig

__all__ = ["SystemContext", "SystemState", "build_graph", "graph", "run"]

GRAPH_NAME = "system"
SEGMENTS = ("short", "long")


@dataclass(kw_only=True)
class SystemContext(Context):
    """Settings of a system run."""

    data: str = field(default="ml-latest-small", metadata={"description": "Dataset."})
    shift_round: int = field(
        default=-1,
        metadata={
            "description": "Round at which users re-weight "
            "toward short histories (-1: rounds // 2)."
        },
    )
    shift_factor: float = field(
        default=4.0,
        metadata={"description": "Weight of short-history users after the shift."},
    )
    compositional: bool = field(
        default=True,
        metadata={
            "description": "Allow compositional rounds (False: frozen composition)."
        },
    )
    es_children: int = field(default=3, metadata={"description": "ES offspring."})
    trajectories: str | None = None

    def ws(self) -> SystemWorkspace:
        return workspace(self.data, self.seed)


class SystemInput(TypedDict):
    rounds: int


class SystemState(SystemInput, total=False):
    round: int
    arms: dict[str, dict[str, Any]]
    routing: dict[str, str]
    sigma: dict[str, float]
    shifted: bool
    trigger: str | None
    history: Annotated[list[dict[str, Any]], operator.add]


def _ctx(runtime: Runtime[SystemContext]) -> SystemContext:
    return runtime.context if runtime.context is not None else SystemContext()


def _shift_round(ctx: SystemContext, rounds: int) -> int:
    return ctx.shift_round if ctx.shift_round >= 0 else rounds // 2


def _rng(ctx: SystemContext, *key: int) -> np.random.Generator:
    return np.random.default_rng([ctx.seed, *key])


def _masks(ws: SystemWorkspace, routing: dict[str, str], arm: str) -> np.ndarray:
    segs = ws.segments["offline"]
    return np.any([segs[s] for s, a in routing.items() if a == arm], axis=0)


def _record(ctx, config, node: str, rnd: int, **kw) -> None:
    record(
        ctx.trajectories,
        thread_of(config, "system"),
        graph=GRAPH_NAME,
        context=ctx.public_dict(),
        dataset={"name": ctx.data, "seed": ctx.seed},
        node=node,
        step_id=f"{node}:{rnd}",
        **kw,
    )


# --------------------------------------------------------------- agents
AGENT_KNOBS: dict[str, list[str]] = {
    **{f"recall.{c}": [f"recall.quota.{c}", f"prerank.w_{c}"] for c in CHANNELS},
    "ranking.fusion": [f"ranking.w_{h}" for h in HEADS],
    "rerank.mmr": [
        "rerank.mmr_lambda",
        "rerank.novelty_weight",
        "rerank.max_per_category",
    ],
}
INNER_METRIC = {
    **{f"recall.{c}": "recall_hit" for c in CHANNELS},
    "ranking.fusion": "NDCG@10",
    "rerank.mmr": "satisfaction",
    "ranking.structure": "NDCG@10",
}
USES_OUTER = {"ranking.fusion", "rerank.mmr", "ranking.structure", "system.router"}


ACCEPT_Z = 1.0
"""An evolution step is accepted only when the paired per-user gain over the
current knobs exceeds ``ACCEPT_Z`` standard errors: with a few hundred users,
most raw gains are noise, and accepting them overfits the offline users."""


def significant_gain(new: np.ndarray, old: np.ndarray) -> float:
    """Mean paired gain if it clears ``ACCEPT_Z`` standard errors, else -inf."""
    d = new - old
    if d.size < 2:
        return -np.inf
    se = d.std(ddof=1) / np.sqrt(d.size)
    gain = float(d.mean())
    return gain if gain > ACCEPT_Z * se and gain > 0 else -np.inf


def _evolve_agent(ctx, ws, arms, routing, arm, agent, sigma, rnd, weights):
    """One (1+λ)-ES step of ``agent`` inside ``arm``; 1/5th-rule step size."""
    mask = _masks(ws, routing, arm)
    flat = arms[arm]
    if agent in USES_OUTER:

        def per_user(f):
            return ws.per_user_outer({**arms, arm: f}, routing, weights, mask)
    else:

        def per_user(f):
            return ws.per_user_inner(f, INNER_METRIC[agent], mask)

    base = per_user(flat)
    idx = list(AGENT_KNOBS).index(agent)
    kids = es_step(
        flat, AGENT_KNOBS[agent], sigma, _rng(ctx, rnd, idx, len(arm)), ctx.es_children
    )
    gains = [significant_gain(per_user(k), base) for k in kids]
    best = int(np.argmax(gains))
    improved = bool(np.isfinite(gains[best]))
    new_sigma = min(0.5, sigma * 1.5) if improved else max(0.01, sigma * 0.8)
    chosen = kids[best] if improved else flat
    return (
        chosen,
        new_sigma,
        {
            "inner": ws.inner(chosen, INNER_METRIC[agent], mask),
            "reward_used": "outer" if agent in USES_OUTER else "inner",
            "improved": improved,
        },
    )


def individual(
    state: SystemState, runtime: Runtime[SystemContext], config: RunnableConfig
) -> dict:
    """Every agent of every arm in use evolves with the composition fixed."""
    ctx, rnd = _ctx(runtime), state.get("round", 0) + 1
    ws = ctx.ws()
    arms = {k: dict(v) for k, v in state["arms"].items()}
    routing, sigma = dict(state["routing"]), dict(state.get("sigma", {}))
    weights = ws.weights("offline", state.get("shifted", False), ctx.shift_factor)
    inner: dict[str, dict[str, Any]] = {}
    for arm in sorted(set(routing.values())):
        for agent in AGENT_KNOBS:
            key = f"{arm}/{agent}"
            arms[arm], sigma[key], info = _evolve_agent(
                ctx, ws, arms, routing, arm, agent, sigma.get(key, 0.1), rnd, weights
            )
            inner[key] = info
        # structural evolution: grammar proposals, screened offline (outer reward)
        mask = _masks(ws, routing, arm)
        current = structure_of(arms[arm])
        obs = {
            "current": current.model_dump(),
            "round": rnd,
            "outer": ws.outer("offline", arms, routing, weights, mask)["outer"],
        }
        d = policy_for(ctx).decide("system.structure", obs)
        base = ws.per_user_outer(arms, routing, weights, mask)
        best, best_gain = None, -np.inf
        for s in d.value.proposals:
            cand = apply_structure(arms[arm], s)
            g = significant_gain(
                ws.per_user_outer({**arms, arm: cand}, routing, weights, mask), base
            )
            if g > best_gain:
                best, best_gain = (s, cand), g
        if not np.isfinite(best_gain):
            best = None
        best_score = obs["outer"] + (best_gain if best is not None else 0.0)
        if best is not None:
            arms[arm] = best[1]
        inner[f"{arm}/ranking.structure"] = {
            "inner": ws.inner(arms[arm], "NDCG@10", mask),
            "reward_used": "outer",
            "improved": best is not None,
            "policy": who(d),
            "adopted": best[0].model_dump() if best else None,
            "screened": len(d.value.proposals),
        }
        _record(
            ctx,
            config,
            "individual",
            rnd,
            decision=d,
            observation={"arm": arm, **obs},
            rewards={"structure_outer": best_score},
        )
    return {
        "round": rnd,
        "arms": arms,
        "sigma": sigma,
        "history": [{"round": rnd, "phase": "individual", "inner": inner}],
    }


def measure(
    state: SystemState, runtime: Runtime[SystemContext], config: RunnableConfig
) -> dict:
    """Outer rewards (offline and held-out), shift detection, trigger."""
    ctx, rnd = _ctx(runtime), state["round"]
    ws = ctx.ws()
    shifted = state.get("shifted", False)
    trigger = None
    if not shifted and rnd >= _shift_round(ctx, state["rounds"]):
        before = ws.outer(
            "offline",
            state["arms"],
            state["routing"],
            ws.weights("offline", False, ctx.shift_factor),
        )["outer"]
        after = ws.outer(
            "offline",
            state["arms"],
            state["routing"],
            ws.weights("offline", True, ctx.shift_factor),
        )["outer"]
        shifted = True
        if abs(after - before) / max(before, 1e-12) > 0.02:
            trigger = f"distribution shift: offline outer {before:.4f} -> {after:.4f}"
    if rnd == 1 and trigger is None:
        trigger = "first measurement of the composition"
    row = _measure_row(ctx, ws, state["arms"], state["routing"], shifted, rnd)
    row["trigger"] = trigger if ctx.compositional else None
    _record(
        ctx,
        config,
        "measure",
        rnd,
        observation={"trigger": trigger},
        rewards={
            "outer_offline": row["outer_offline"],
            "outer_heldout": row["outer_heldout"],
        },
    )
    if not row["trigger"] and rnd >= state["rounds"]:  # the run's last node
        _record(ctx, config, "__end__", rnd, metrics=_end_metrics(row))
    return {"shifted": shifted, "trigger": row["trigger"], "history": [row]}


INITIAL = "base"


def _end_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """What a system run's trajectory end record keeps: its last measurement."""
    keys = ("round", "outer_offline", "outer_heldout", "initial_outer_heldout")
    return {k: row[k] for k in keys} | {"routing": row["routing"]}


def _measure_row(ctx, ws, arms, routing, shifted, rnd) -> dict[str, Any]:
    w_off = ws.weights("offline", shifted, ctx.shift_factor)
    w_on = ws.weights("online", shifted, ctx.shift_factor)
    init = {INITIAL: PipelineConfig.default().to_flat()}
    init_routes = dict.fromkeys(SEGMENTS, INITIAL)
    off = ws.outer("offline", arms, routing, w_off)
    on = ws.outer("online", arms, routing, w_on)
    on_init = ws.outer("online", init, init_routes, w_on)
    return {
        "round": rnd,
        "phase": "measure",
        "shifted": shifted,
        "outer_offline": round(off["outer"], 6),
        "outer_heldout": round(on["outer"], 6),
        "ndcg_heldout": round(on["NDCG@10"], 6),
        "satisfaction_heldout": round(on["satisfaction"], 4),
        "initial_outer_heldout": round(on_init["outer"], 6),
        "routing": dict(routing),
        "arms": sorted(set(routing.values())),
    }


def compositional(
    state: SystemState, runtime: Runtime[SystemContext], config: RunnableConfig
) -> dict:
    """Evolve a specialist per segment, then let the router assign segments."""
    ctx, rnd = _ctx(runtime), state["round"]
    ws = ctx.ws()
    arms = {k: dict(v) for k, v in state["arms"].items()}
    routing = dict(state["routing"])
    weights = ws.weights("offline", state.get("shifted", False), ctx.shift_factor)
    sigma = dict(state.get("sigma", {}))
    for seg in SEGMENTS:
        name = f"{seg}-r{rnd}"
        arms[name] = dict(arms[routing[seg]])
        trial = {**routing, seg: name}
        for step in range(2):
            for agent in (
                "ranking.fusion",
                "rerank.mmr",
                *(f"recall.{c}" for c in CHANNELS),
            ):
                key = f"{name}/{agent}"
                arms[name], sigma[key], _ = _evolve_agent(
                    ctx,
                    ws,
                    arms,
                    trial,
                    name,
                    agent if agent in USES_OUTER else agent,
                    sigma.get(key, 0.15),
                    rnd * 10 + step,
                    weights,
                )
    segs = ws.segments["offline"]
    scores = {
        seg: {
            arm: round(
                ws.outer(
                    "offline",
                    {arm: arms[arm]},
                    dict.fromkeys(SEGMENTS, arm),
                    weights,
                    segs[seg],
                )["outer"],
                6,
            )
            for arm in sorted(arms)
        }
        for seg in SEGMENTS
    }
    obs = {"segments": scores, "current": routing, "round": rnd}
    d = policy_for(ctx).decide("system.router", obs)
    new_routing: dict[str, str] = dict(d.value.routes)
    used = set(new_routing.values())
    arms = {k: v for k, v in arms.items() if k in used}
    _record(ctx, config, "compositional", rnd, decision=d, observation=obs)
    if rnd >= state["rounds"]:  # the run's last node
        last = [h for h in state.get("history", []) if h["phase"] == "measure"]
        _record(
            ctx,
            config,
            "__end__",
            rnd,
            metrics={**_end_metrics(last[-1]), "routing": new_routing},
        )
    return {
        "arms": arms,
        "routing": new_routing,
        "sigma": sigma,
        "trigger": None,
        "history": [
            {
                "round": rnd,
                "phase": "compositional",
                "trigger": state.get("trigger"),
                "routing": new_routing,
                "policy": who(d),
                "scores": scores,
            }
        ],
    }


def after_measure(
    state: SystemState,
) -> Literal["compositional", "individual", "__end__"]:
    if state.get("trigger"):
        return "compositional"
    return "individual" if state["round"] < state["rounds"] else END


def after_compositional(state: SystemState) -> Literal["individual", "__end__"]:
    return "individual" if state["round"] < state["rounds"] else END


def init(state: SystemState) -> dict:
    if state.get("arms"):
        return {}
    return {
        "round": 0,
        "arms": {INITIAL: PipelineConfig.default().to_flat()},
        "routing": dict.fromkeys(SEGMENTS, INITIAL),
        "sigma": {},
        "shifted": False,
        "trigger": None,
    }


def build_graph(*, checkpointer=None, store=None):
    b = StateGraph(SystemState, context_schema=SystemContext, input_schema=SystemInput)
    b.add_node("init", init)
    b.add_node("individual", individual)
    b.add_node("measure", measure)
    b.add_node("compositional", compositional)
    b.add_edge(START, "init")
    b.add_edge("init", "individual")
    b.add_edge("individual", "measure")
    b.add_conditional_edges("measure", after_measure)
    b.add_conditional_edges("compositional", after_compositional)
    return b.compile(checkpointer=checkpointer, store=store, name=GRAPH_NAME)


graph = build_graph()


def run(
    ctx: SystemContext,
    *,
    rounds: int = 6,
    checkpointer=None,
    thread_id: str | None = None,
    progress=None,
) -> dict[str, Any]:
    """Run the alternating cycle for ``rounds`` individual rounds."""
    t0 = time.perf_counter()
    ws = ctx.ws()
    setup = time.perf_counter() - t0
    thread_id = thread_id or f"system-{ctx.data}-{ctx.seed}-{int(ctx.compositional)}"
    config = {
        "configurable": {"thread_id": thread_id},
        "recursion_limit": 10 * rounds + 20,
    }
    cg = build_graph(checkpointer=checkpointer) if checkpointer is not None else graph
    t1 = time.perf_counter()
    final = stream_thread(
        cg,
        {"rounds": rounds},
        config,
        ctx,
        checkpointer=checkpointer,
        same_input=lambda v: v.get("rounds") == rounds and v.get("round") == rounds,
        on_chunk=(lambda c: progress(c.get("round", 0), rounds)) if progress else None,
    )
    hist = final.get("history", [])
    measures = [h for h in hist if h["phase"] == "measure"]
    rounds_out = []
    for m in measures:
        ind = next(
            h for h in hist if h["phase"] == "individual" and h["round"] == m["round"]
        )
        comp = next(
            (
                h
                for h in hist
                if h["phase"] == "compositional" and h["round"] == m["round"]
            ),
            None,
        )
        rounds_out.append(
            {
                **{
                    k: m[k]
                    for k in (
                        "round",
                        "shifted",
                        "outer_offline",
                        "outer_heldout",
                        "ndcg_heldout",
                        "satisfaction_heldout",
                        "initial_outer_heldout",
                        "trigger",
                    )
                },
                "inner": {k: round(v["inner"], 5) for k, v in ind["inner"].items()},
                "reward_used": {k: v["reward_used"] for k, v in ind["inner"].items()},
                "routing_after": comp["routing"] if comp else m["routing"],
                "router_policy": comp["policy"] if comp else None,
            }
        )
    last = measures[-1] if measures else {}
    return {
        "graph": GRAPH_NAME,
        "data": ctx.data,
        "seed": ctx.seed,
        "compositional": ctx.compositional,
        "segments_cutoff": ws.cutoff,
        "rounds": rounds_out,
        "final": {
            "outer_heldout": last.get("outer_heldout"),
            "initial_outer_heldout": last.get("initial_outer_heldout"),
            "routing": final.get("routing"),
            "arms": {
                k: PipelineConfig.default().diff(PipelineConfig.from_flat(v))
                if hasattr(PipelineConfig, "diff")
                else v
                for k, v in final.get("arms", {}).items()
            },
        },
        "timings": {
            "setup_s": round(setup, 3),
            "graph_s": round(time.perf_counter() - t1, 3),
        },
        "thread_id": thread_id,
    }


# ----------------------------------------------------------- declarations
def _pipeline_eval(metric: str):
    def evaluate(flat=None, ctx: SystemContext | None = None) -> dict[str, float]:
        ws = (ctx or SystemContext()).ws()
        f = flat or PipelineConfig.default().to_flat()
        mask = np.ones(ws.segments["offline"]["short"].size, bool)
        return {metric: ws.inner(f, metric, mask)}

    return evaluate


for _c in CHANNELS:
    register_agent(
        AgentSpec(
            f"recall.{_c}",
            "model",
            ("user_history",),
            ("candidates",),
            _pipeline_eval("recall_hit"),
            ChannelSpace,
            "inner",
            "search",
            f"recall channel {_c}: quota and pre-ranking weight",
        ),
        replace=True,
    )
register_agent(
    AgentSpec(
        "ranking.fusion",
        "model",
        ("candidates", "score_heads"),
        ("ranked_list",),
        _pipeline_eval("NDCG@10"),
        RankingSpace,
        "outer",
        "search",
        "ranking fusion of the score heads (coordinating)",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "ranking.structure",
        "model",
        ("candidates", "score_heads"),
        ("ranked_list",),
        _pipeline_eval("NDCG@10"),
        StructureSpace,
        "outer",
        "llm",
        "which channels and heads participate, how heads fuse (grammar)",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "rerank.mmr",
        "model",
        ("ranked_list",),
        ("final_list",),
        _pipeline_eval("satisfaction"),
        RerankSpace,
        "outer",
        "search",
        "MMR re-ranker bearing the diversity constraint (coordinating)",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "system.router",
        "functional",
        ("user_segment", "arms"),
        ("routing",),
        lambda routing=None, ctx=None: {"outer": 0.0} if routing is None else routing,
        RoutingDecision,
        "outer",
        "compositional",
        "routes user segments to composition arms",
    ),
    replace=True,
)


class TeacherSpace(BaseModel):
    """The MARS teacher's evolvable settings."""

    k: int = Field(10, ge=1, le=50)
    max_reflections: int = Field(1, ge=0, le=3)
    protocol: Literal["sampled:19", "sampled:99", "full"] = "sampled:19"


def _teacher_eval(space: TeacherSpace | None = None, ctx=None) -> dict[str, float]:
    """NDCG@10 of the teacher on 30 users (its own ranking of its candidates)."""
    from agenticrec.graphs import teacher

    sp = space or TeacherSpace()
    r = teacher.run(
        teacher.TeacherContext(
            k=sp.k, max_reflections=sp.max_reflections, protocol=sp.protocol
        ),
        n_users=30,
    )
    return {"NDCG@10": r["metrics"]["teacher"]["NDCG@10"]}


class OrchestratorSpace(BaseModel):
    """The experiment orchestrator's settings (A/B tests)."""

    alpha: float = Field(0.05, ge=0.001, le=0.2)
    treatment_share: float = Field(0.5, ge=0.1, le=0.9)


def _orchestrator_eval(
    space: OrchestratorSpace | None = None, ctx=None, replicates: int = 20
) -> dict[str, float]:
    """Calibration of its A/B tests: A/A tests (same config both arms) on the
    held-out users, reward ``1 - |false-positive rate - alpha|``."""
    from agenticrec.tools.abtest import ab_test

    sp = space or OrchestratorSpace()
    ws = (ctx or SystemContext()).ws()
    fp = (
        sum(
            ab_test(
                ws.online,
                None,
                None,
                seed=s,
                alpha=sp.alpha,
                treatment_share=sp.treatment_share,
                n_resamples=200,
            )
            .metrics["NDCG@10"]
            .p_value
            < sp.alpha
            for s in range(replicates)
        )
        / replicates
    )
    return {"calibration": 1.0 - abs(fp - sp.alpha), "aa_false_positive_rate": fp}


class DualAgentSpace(BaseModel):
    """DualAgent-Rec's evolvable settings."""

    pop_size: int = Field(40, ge=10, le=1000)
    generations: int = Field(20, ge=10, le=500)
    coordinator_every: int = Field(10, ge=1, le=100)


def _dualagent_eval(space: DualAgentSpace | None = None, ctx=None) -> dict[str, float]:
    """Mean feasible-front hypervolume of DualAgent-Rec on 10 users."""
    from agenticrec.graphs import dualagent

    sp = space or DualAgentSpace()
    r = dualagent.run(
        dualagent.DualAgentContext(
            pop_size=sp.pop_size,
            generations=sp.generations,
            coordinator_every=sp.coordinator_every,
        ),
        n_users=10,
        baselines=False,
    )
    return {"hypervolume": float(r["metrics"]["dualagent"]["hypervolume"])}


class TuneSpace(BaseModel):
    """The tune loop's evolvable settings."""

    rounds: int = Field(3, ge=1, le=50)
    candidates: int = Field(4, ge=1, le=16)


def _tune_eval(space: TuneSpace | None = None, ctx=None) -> dict[str, float]:
    """How many A/B tests the tune loop launched in its rounds (its own output)."""
    import tempfile

    from agenticrec.graphs import tune

    sp = space or TuneSpace()
    with tempfile.TemporaryDirectory() as tmp:
        tctx = tune.TuneContext(
            rounds=sp.rounds, candidates=sp.candidates, skillhub=tmp
        )
        try:
            r = tune.run(tctx)
        finally:
            tune.close_hub(tctx)
    return {"ab_tests": float(r["ab_tests"]), "rounds": float(r["rounds_done"])}


register_agent(
    AgentSpec(
        "dualagent",
        "model",
        ("candidates", "constraints"),
        ("final_lists",),
        _dualagent_eval,
        DualAgentSpace,
        "inner",
        "search",
        "DualAgent-Rec re-ranker (graphs/dualagent.py): constrained list evolution",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "tune.loop",
        "functional",
        ("task", "skills", "experiments"),
        ("config", "skills"),
        _tune_eval,
        TuneSpace,
        "inner",
        "llm",
        "AgenticRecTune loop (graphs/tune.py): actor/critic/online/insight/skill",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "teacher",
        "model",
        ("user_history", "candidates"),
        ("ranked_list", "trajectory"),
        _teacher_eval,
        TeacherSpace,
        "inner",
        "llm",
        "MARS teacher graph (graphs/teacher.py) as one agent",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "experiment.orchestrator",
        "functional",
        ("control", "treatment"),
        ("decision",),
        _orchestrator_eval,
        OrchestratorSpace,
        "inner",
        "search",
        "A/B tests on held-out users (tools/abtest.py)",
    ),
    replace=True,
)


# --------------------------------------------------------------------- CLI
def register_cli(run_app) -> None:
    @run_app.command("system")
    def run_system(
        data: DataOpt = "ml-latest-small",
        rounds: int = typer.Option(6, "--rounds", help="Individual rounds."),
        shift_round: int = typer.Option(-1, "--shift-round"),
        frozen: bool = typer.Option(False, "--frozen", help="No compositional rounds."),
        trajectories: TrajectoriesOpt = None,
        seed: SeedOpt = 0,
        checkpoint: CheckpointOpt = None,
        thread_id: ThreadOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """AgenticRS cycle: individual and compositional evolution, inner vs outer."""
        ctx = SystemContext(
            data=data,
            seed=seed,
            shift_round=shift_round,
            compositional=not frozen,
            trajectories=str(trajectories) if trajectories else None,
        )
        with open_checkpointer(checkpoint) as saver, progress_bar("system") as bar:
            report = run(
                ctx,
                rounds=rounds,
                checkpointer=saver,
                thread_id=thread_id,
                progress=bar,
            )
        emit_report(report, as_json=as_json, title="system")


def demo(ds, *, seed: int = 0) -> dict[str, Any]:
    """Three rounds of the cycle on ml-latest-small."""
    report = run(SystemContext(seed=seed, shift_round=2), rounds=3)
    f = report["final"]
    return {
        "summary": f"held-out outer reward {f['outer_heldout']:.4f} vs initial "
        f"composition {f['initial_outer_heldout']:.4f} after "
        f"{len(report['rounds'])} rounds; routing {f['routing']}",
        "rounds": len(report["rounds"]),
        "outer_heldout": f["outer_heldout"],
        "initial_outer_heldout": f["initial_outer_heldout"],
        "routing": f["routing"],
        "triggers": [r["trigger"] for r in report["rounds"] if r["trigger"]],
    }


def _json(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=str)
