"""The AgenticRS system graph: agents that evolve individually and in
composition, on a real multi-stage recommender.

::

    START -> init -> individual -> measure --(trigger)--> compositional
                         ^            |                        |
                         +------------+ (rounds left)          |
                         +-------------------------------------+ (rounds left)
                     measure / compositional --(done)--> END

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
from a SQLite checkpoint. The runner, the typed report and the CLI command
live in :mod:`agenticrec.graphs._system_spec`; the agent declarations in
:mod:`agenticrec.graphs._system_agents`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from agenticrec.context import Context, setting
from agenticrec.graphs import _system_roles  # noqa: F401 - registers roles
from agenticrec.graphs._runtime import policy_info, record, thread_of
from agenticrec.graphs._system_space import apply_structure, es_step, structure_of
from agenticrec.graphs._system_workspace import SystemWorkspace, workspace
from agenticrec.runner import emit_progress
from agenticrec.tools.pipeline import CHANNELS, HEADS, PipelineConfig

__all__ = [
    "SystemContext",
    "SystemInput",
    "SystemState",
    "build_graph",
    "graph",
    "significant_gain",
]

GRAPH_NAME = "system"
SEGMENTS = ("short", "long")


@dataclass(kw_only=True)
class SystemContext(Context):
    """Settings of a system run (plus the LLM settings of :class:`Context`)."""

    data: str = setting("ml-latest-small", "Dataset name (ml-latest-small) or path.")
    rounds: int = setting(6, "Individual rounds.", ge=1, le=1000)
    shift_round: int = setting(
        -1,
        "Round at which users re-weight toward short histories (-1: rounds // 2).",
        ge=-1,
        le=1000,
    )
    shift_factor: float = setting(
        4.0, "Weight of short-history users after the shift.", ge=0.01, le=100.0
    )
    compositional: bool = setting(
        True,
        "Allow compositional rounds (--frozen: the composition stays fixed).",
        cli="--compositional/--frozen",
    )
    es_children: int = setting(3, "ES offspring per evolution step.", ge=1, le=64)
    trajectories: str | None = setting(
        None, "JSONL file to append trajectories to.", binds=False
    )

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


def _record(ctx: SystemContext, config, node: str, rnd: int, **kw) -> None:
    writer = ctx.services.writer
    if writer is None:
        return
    ws = ctx.ws()
    record(
        writer,
        thread_of(config, GRAPH_NAME),
        graph=GRAPH_NAME,
        context=ctx.public_dict(),
        dataset={"name": ws.data, "fingerprint": ws.fingerprint},
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
            emit_progress(rnd - 1, state["rounds"], f"round {rnd}: {key}")
            arms[arm], sigma[key], info = _evolve_agent(
                ctx, ws, arms, routing, arm, agent, sigma.get(key, 0.1), rnd, weights
            )
            inner[key] = info
        # structural evolution: grammar proposals, screened offline (outer reward)
        emit_progress(rnd - 1, state["rounds"], f"round {rnd}: {arm} structure")
        mask = _masks(ws, routing, arm)
        current = structure_of(arms[arm])
        obs = {
            "current": current.model_dump(),
            "round": rnd,
            "outer": ws.outer("offline", arms, routing, weights, mask)["outer"],
        }
        d = ctx.services.policy.decide("system.structure", obs)
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
            "policy": policy_info(d),
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
    emit_progress(rnd, state["rounds"], f"round {rnd}: compositional")
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
                    agent,
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
    d = ctx.services.policy.decide("system.router", obs)
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
                "policy": policy_info(d),
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
    """The compiled system graph (context: :class:`SystemContext`)."""
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
