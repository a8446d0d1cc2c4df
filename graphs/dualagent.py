"""DualAgent-Rec (arXiv 2601.19121) as a LangGraph graph: constrained
multi-objective evolution of top-k lists for a whole batch of users.

::

    prepare -> coordinator -> evolve --(generation < T_max)--> coordinator
                                 |
                                 +--(generation = T_max)--> finalize -> END

``prepare`` builds every user's candidates, attributes and initial
populations; ``evolve`` runs ``T`` generations of both agents for all users in
one jitted ``lax.scan`` (:func:`agenticrec.tools.evolve.evolve`); the
``coordinator`` node decides the exploitation share ``alpha`` through the
policy layer (LLM or the rule
:func:`agenticrec.graphs._dualagent_roles.coordinator_rule`; a failed or
invalid LLM reply keeps the previous alpha, as the paper says, and the round
records why); ``finalize`` picks each user's list among the strictly feasible
solutions and scores it (:mod:`agenticrec.graphs._dualagent_scoring`). The
algorithm, and the choices made where the paper is silent, are in
``docs/dualagent.md``.

Checkpointing: the state holds each user's population as a compact integer
array (``int16[U, N, k]`` candidate positions) plus alpha, the generation
counter, ``eps_0`` and the per-round records; candidates, embeddings and
attributes live in an in-process workspace rebuilt deterministically from
the context. Randomness comes from explicit keys, ``fold_in(key(seed_u),
generation)`` with ``seed_u`` derived from (seed, raw user id), so a killed
run resumed on the same thread id finishes with the same result.

On Ray (``--backend ray``) each shard evolves its own users; the
coordinator's signals are exact partial sums all-gathered over the shards
(``ctx.collective``, :mod:`agenticrec.collective`) and shard 0 decides
alpha for all, so a sharded run gives one process's rounds and result.

The runner's view (input, typed report, plots) is
:mod:`agenticrec.graphs._dualagent_spec`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jax
import numpy as np
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from agenticrec import collective as col
from agenticrec.context import Context, setting
from agenticrec.errors import ConfigError
from agenticrec.graphs import _dualagent_problem as dp
from agenticrec.graphs import _dualagent_roles as roles
from agenticrec.graphs._dualagent_scoring import score_lists, served_vs_baselines
from agenticrec.graphs._runtime import policy_info, record, thread_of
from agenticrec.runner import emit_progress
from agenticrec.tools import evolve as ev

__all__ = [
    "LAYOUT_ALPHA",
    "METHODS",
    "DualAgentContext",
    "DualAgentInput",
    "DualAgentState",
    "build_graph",
    "final_result",
    "fixed_alpha",
    "graph",
    "method_config",
    "workspace",
]

GRAPH_NAME = "dualagent"
METHODS = ("dualagent", "fixed", "exploit", "explore", "nsga2")
"""``dualagent``: the coordinator sets alpha; ``fixed``: alpha = the
context's ``alpha`` throughout (the paper's "w/o LLM", 0.7); ``exploit`` /
``explore``: one agent only; ``nsga2``: single-population NSGA-II with strict
CDP (binary tournament, uniform crossover 0.9, mutation 0.1), same budget."""
LAYOUT_ALPHA = 0.5


@dataclass(kw_only=True)
class DualAgentContext(Context):
    """Settings of a DualAgent-Rec run (plus the LLM settings of
    :class:`Context`).

    Ranges are documented per field; on top of them ``k <= n_candidates``,
    and the kernels' estimated memory must fit the device
    (:func:`agenticrec.graphs._dualagent_problem.check_memory`, checked when
    the batch is built, before anything is compiled).
    """

    data: str = setting("ml-latest-small", "Dataset name (ml-latest-small) or path.")
    users: int = setting(
        100, "Users to optimise: the first N evaluable ones (0: all).", ge=0, le=10**8
    )
    n_candidates: int = setting(
        500, "Candidates per user (M).", ge=2, le=100_000, cli="--candidates"
    )
    k: int = setting(10, "List length.", ge=2, le=1000)
    pop_size: int = setting(
        200, "Population slots per user (N).", ge=2, le=100_000, cli="--pop"
    )
    generations: int = setting(
        100, "Generation budget (T_max).", ge=1, le=100_000, cli="--gens"
    )
    coordinator_every: int = setting(
        10,
        "Generations between coordinator decisions (T).",
        ge=1,
        le=100_000,
        cli="--every",
    )
    method: str = setting(
        "dualagent",
        "dualagent (the coordinator sets alpha), fixed, exploit, explore or nsga2.",
        choices=METHODS,
    )
    alpha: float = setting(0.7, "Exploitation share of 'fixed'.", ge=0.0, le=1.0)
    constraints: str | None = setting(
        None, "JSON constraint file; default: the dataset's."
    )
    pick: str = setting(
        "bounded",
        "Served list, from the feasible front: bounded (most diverse + novel "
        "within --max-loss of the best relevance), preference (weights "
        "--preference), knee, or relevance (most relevant).",
        choices=ev.PICK_RULES,
    )
    max_loss: float = setting(
        ev.DEFAULT_MAX_LOSS,
        "Relevance loss the bounded pick may take (share of the best).",
        ge=0.0,
        le=1.0,
    )
    preference: str = setting(
        ",".join(f"{w:g}" for w in ev.DEFAULT_PREFERENCE),
        "Preference pick's weights: relevance,diversity,novelty (each >= 0).",
    )
    eps_decay: float = setting(
        ev.EvolveConfig().gamma,
        "Epsilon decay gamma: eps_t = eps_0 gamma^(t / generations).",
        ge=1e-9,
        le=1.0,
    )
    strict_share: float = setting(
        ev.EvolveConfig().strict_share,
        "Share of the last generations with epsilon exactly 0.",
        ge=0.0,
        le=1.0,
    )
    embedding_dim: int = setting(32, "SVD embedding dimensions.", ge=1, le=1024)
    trace_hv: bool = setting(
        False, "Hypervolume after every generation (plots; on with --plot)."
    )
    baselines: bool = setting(
        True, "Score the list baselines (base top-k, MMR, greedy repair) too."
    )
    details: bool = setting(
        False, "Keep per-user results, rounds and the per-generation trace."
    )
    devices: int = setting(
        0,
        "Local devices to shard users over (0: all).",
        ge=0,
        le=65_536,
        binds=False,
    )
    memory_gb: float = setting(
        0.0,
        "Memory the kernels may use per device, GB (0: the device's own).",
        ge=0.0,
        le=1e6,
        binds=False,
    )
    plot: str | None = setting(
        None, "Write PNG plots into this folder (turns trace_hv on).", binds=False
    )
    trajectories: str | None = setting(
        None, "JSONL file to append trajectories to.", binds=False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.k > self.n_candidates:
            raise ConfigError(
                f"k={self.k} is larger than the candidate set "
                f"(n_candidates={self.n_candidates})"
            )
        if self.plot:
            self.trace_hv = True
        self.weights()

    def weights(self) -> tuple[float, float, float]:
        """The preference weights, checked (three finite values >= 0, not all 0)."""
        parts = [p.strip() for p in str(self.preference).split(",")]
        try:
            w = tuple(float(p) for p in parts)
        except ValueError:
            w = ()
        if (
            len(w) != 3
            or not all(math.isfinite(x) and x >= 0 for x in w)
            or sum(w) <= 0
        ):
            raise ConfigError(
                f"preference={self.preference!r}: expected three comma-separated "
                "weights >= 0 (relevance,diversity,novelty), not all 0"
            )
        return w  # type: ignore[return-value]

    def ws(self) -> dp.DataWorkspace:
        return dp.workspace(self.data, self.embedding_dim)

    def specs(self) -> tuple[dp.ConstraintSpec, ...]:
        if self.constraints:
            return dp.load_constraints(self.constraints)
        return dp.default_constraints(self.ws().dataset)

    def cfg(self) -> ev.EvolveConfig:
        cfg = method_config(self.method, self.pop_size, trace_hv=self.trace_hv)
        return cfg._replace(
            gamma=float(self.eps_decay), strict_share=float(self.strict_share)
        )

    def mesh(self):
        devs = jax.local_devices()
        n = len(devs) if self.devices <= 0 else min(self.devices, len(devs))
        return ev.users_mesh(devs[:n]) if n > 1 else None


def method_config(method: str, pop_size: int, *, trace_hv: bool = False):
    """The engine settings of ``method`` (see :data:`METHODS`)."""
    base = ev.EvolveConfig(pop_size=int(pop_size), trace_hv=bool(trace_hv))
    if method == "nsga2":
        return base._replace(
            ops=ev.Operators(scheme="nsga2", crossover=0.9, mutation=0.1),
            relax=False,
            transfer_every=0,
        )
    if method not in METHODS:
        raise ConfigError(f"method {method!r}: expected one of {METHODS}")
    return base


def fixed_alpha(ctx: DualAgentContext) -> float | None:
    """The method's constant alpha, or ``None`` when the coordinator decides."""
    return {
        "dualagent": None,
        "fixed": ctx.alpha,
        "exploit": 1.0,
        "nsga2": 1.0,
        "explore": 0.0,
    }[ctx.method]


# --------------------------------------------------------------- workspace
def workspace(ctx: DualAgentContext, users: list[int]) -> dp.Layout:
    """The batch of ``users`` under ``ctx`` (cached in-process).

    Raises:
        ConfigError: the kernels would not fit the device's memory.
    """
    mesh = ctx.mesh()
    n_dev = 1 if mesh is None else mesh.size
    specs = ctx.specs()
    if ctx.backend != "ray":  # on Ray each shard checks its own batch
        dp.check_memory(
            ctx.ws(),
            specs,
            users=len(users),
            devices=n_dev,
            k=ctx.k,
            pop_size=ctx.pop_size,
            n_candidates=ctx.n_candidates,
            dim=ctx.embedding_dim,
            limit_gb=ctx.memory_gb,
        )
    return dp.layout(
        ctx.data,
        int(ctx.embedding_dim),
        int(ctx.n_candidates),
        int(ctx.k),
        specs,
        int(ctx.seed),
        tuple(int(u) for u in users),
        n_dev,
    )


# ------------------------------------------------------------------- state
class DualAgentInput(TypedDict):
    """What a caller passes: the users (compact ids of the split) to optimise."""

    users: list[int]


class DualAgentState(DualAgentInput, total=False):
    generation: int
    budget: int
    """``T_max``, copied from the context so that routing reads the state."""
    alpha: float
    lists: np.ndarray
    """``int16[U, N, k]`` candidate positions (int32 past 32,767
    candidates), exploitation slots first, each agent best first."""
    eps0: np.ndarray
    metrics: dict[str, Any]
    """Batch means after the last round (what the coordinator observes)."""
    hv_prev: float | None
    rounds: Annotated[list[dict[str, Any]], operator.add]
    """One entry per coordinator round: alpha, the batch means, and who
    decided (``policy``, ``fallback_reason``, ``kept_previous``)."""
    trace: Annotated[list[dict[str, Any]], operator.add]
    result: dict[str, Any]


def _ctx(runtime: Runtime[DualAgentContext]) -> DualAgentContext:
    return runtime.context if runtime.context is not None else DualAgentContext()


def _n_exploit(alpha: float, n: int, users: int) -> np.ndarray:
    return np.full(users, int(round(alpha * n)), np.int32)


def _compact(lists: Any, m: int) -> np.ndarray:
    return np.asarray(lists).astype(np.int16 if m <= 32767 else np.int32)


def _partials(m: ev.RoundMetrics, n: int) -> dict[str, int]:
    """This batch's exact partial sums of the signals the coordinator reads
    (:mod:`agenticrec.collective`): added over a Ray run's shards they give
    the whole batch's means, bit for bit those of one process."""
    hv = np.asarray(m.hypervolume)[:n]
    feas = np.asarray(m.feasible)[:n]
    fe = np.asarray(m.feasible_exploit)[:n]
    fe = fe[~np.isnan(fe)]
    return {
        "users": n,
        "hypervolume": col.exact_sum(hv),
        "hypervolume_exploit": col.exact_sum(np.asarray(m.hypervolume_exploit)[:n]),
        "feasible": col.exact_sum(feas),
        "feasible_exploit": col.exact_sum(fe),
        "exploit_users": int(fe.size),
        "without_feasible": int(np.sum(feas == 0)),
        "epsilon": col.exact_sum(np.asarray(m.epsilon)[:n]),
    }


def _means(p: dict[str, int]) -> dict[str, Any]:
    """The batch means the coordinator observes, from summed partials."""
    n, hv = p["users"], p["hypervolume"]
    return {
        "hypervolume": round(col.mean(hv, n), 6),
        # what the exploration agent adds to the strictly feasible front
        "explore_contribution": round(
            1.0 - col.ratio(p["hypervolume_exploit"], hv) if hv > 0 else 0.0, 6
        ),
        "feasibility_rate": round(col.mean(p["feasible"], n), 6),
        "exploit_feasibility_rate": None
        if p["exploit_users"] == 0
        else round(col.mean(p["feasible_exploit"], p["exploit_users"]), 6),
        "users_without_feasible": round(p["without_feasible"] / n, 6),
        "epsilon": round(col.mean(p["epsilon"], n), 6),
    }


def _leads(ctx: DualAgentContext) -> bool:
    """Whether this process records the batch's decisions (shard 0 on Ray:
    one record per decision, as in one process)."""
    return ctx.collective is None or ctx.collective.rank == 0


def _record(ctx, config, node: str, *, decision=None, **kw) -> None:
    writer = ctx.services.writer
    if writer is None:
        return
    ws = ctx.ws()
    record(
        writer,
        thread_of(config),
        graph=GRAPH_NAME,
        context=ctx.public_dict(),
        dataset={"name": ws.name, "fingerprint": ws.base.fingerprint},
        node=node,
        decision=decision,
        **kw,
    )


# ------------------------------------------------------------------- nodes
def prepare(
    state: DualAgentState, runtime: Runtime[DualAgentContext], config: RunnableConfig
) -> dict:
    """Candidates, satisfiability certificates and initial populations."""
    ctx = _ctx(runtime)
    emit_progress(0, ctx.generations, "candidates, certificates, populations")
    w = workspace(ctx, state["users"])
    cfg = ctx.cfg()
    alpha = fixed_alpha(ctx)
    alpha = LAYOUT_ALPHA if alpha is None else alpha
    u = w.problem.n_users
    ne = _n_exploit(alpha, cfg.pop_size, u)
    pop, eps0 = ev.init_population(
        w.problem,
        w.seeds,
        ne,
        cfg,
        seed_lists=w.pad(w.batch.certificate),
        mesh=w.mesh,
    )
    _, m = ev.assess(w.problem, pop.lists, ne, eps0, mesh=w.mesh)
    b = w.batch
    counts = {s: b.satisfiable.count(s) for s in ("yes", "no", "unknown")}
    part = {**_partials(m, w.n_users), **counts}
    parts = col.allgather(
        ctx.collective, "prepare", {"sums": part, "skipped": b.skipped}
    )
    whole = col.add([p["sums"] for p in parts])
    metrics = _means(whole)
    if _leads(ctx):
        _record(
            ctx,
            config,
            "prepare",
            step_id="prepare",
            observation={
                "users": whole["users"],
                "skipped": [x for p in parts for x in p["skipped"]],
                "constraints": [s.label for s in b.specs],
                "satisfiable": {s: whole[s] for s in counts},
            },
            metrics=metrics,
        )
    return {
        "generation": 0,
        "budget": int(ctx.generations),
        "alpha": float(alpha),
        "lists": _compact(pop.lists[: w.n_users], ctx.n_candidates),
        "eps0": np.asarray(eps0[: w.n_users], np.float32),
        "metrics": metrics,
        "hv_prev": None,
        "rounds": [],
        "trace": [],
    }


def coordinator(
    state: DualAgentState, runtime: Runtime[DualAgentContext], config: RunnableConfig
) -> dict:
    """Set alpha for the next round (policy for ``dualagent``, else fixed)."""
    ctx = _ctx(runtime)
    gen = int(state["generation"])
    m = state["metrics"]
    prev = state.get("hv_prev")
    improvement = (
        None
        if prev is None
        else round((m["hypervolume"] - prev) / max(abs(prev), 1e-9), 6)
    )
    fixed = fixed_alpha(ctx)
    entry: dict[str, Any] = {"generation": gen, **m, "improvement_rate": improvement}
    if fixed is not None:
        alpha = fixed
        entry.update(
            alpha=alpha,
            policy="fixed",
            fallback_reason=None,
            kept_previous=False,
            reasoning=f"method {ctx.method}",
        )
    else:
        obs = {
            **m,
            "improvement_rate": improvement,
            "alpha": state["alpha"],
            "progress": round(gen / ctx.generations, 4),
            "generation": gen,
            "max_generations": ctx.generations,
            "history": [
                {
                    "generation": r["generation"],
                    "alpha": r["alpha"],
                    "hypervolume": r["hypervolume"],
                    "feasibility_rate": r["feasibility_rate"],
                    "explore_contribution": r.get("explore_contribution"),
                }
                for r in state.get("rounds", [])[-5:]
            ],
        }
        decided = None
        if _leads(ctx):  # on Ray shard 0 decides for the batch; the rest wait
            d = ctx.services.policy.decide(roles.ROLE, obs)
            kept = d.fallback_reason is not None  # a failed reply keeps alpha
            alpha = float(state["alpha"]) if kept else float(d.value.exploitation_ratio)
            decided = {
                "alpha": alpha,
                **policy_info(d),
                "kept_previous": kept,
                "reasoning": d.value.reasoning,
            }
            _record(
                ctx,
                config,
                "coordinator",
                decision=d,
                step_id=f"coordinator:{gen}",
                observation=obs,
                extra={"alpha_applied": alpha, "kept_previous": kept},
            )
        decided = col.allgather(ctx.collective, f"coordinator:{gen}", decided)[0]
        alpha = float(decided["alpha"])
        entry.update(decided)
    return {"alpha": alpha, "rounds": [entry], "hv_prev": m["hypervolume"]}


def evolve(
    state: DualAgentState, runtime: Runtime[DualAgentContext], config: RunnableConfig
) -> dict:
    """Up to ``T`` generations of both agents for every user (one jit call)."""
    ctx = _ctx(runtime)
    w = workspace(ctx, state["users"])
    cfg = ctx.cfg()
    gen = int(state["generation"])
    n = min(ctx.coordinator_every, ctx.generations - gen)
    emit_progress(gen, ctx.generations, f"generations {gen + 1}-{gen + n}")
    ne = _n_exploit(state["alpha"], cfg.pop_size, w.problem.n_users)
    pop, trace, m = ev.evolve(
        w.problem,
        w.pad(np.asarray(state["lists"], np.int32)),
        ne,
        w.pad(state["eps0"]),
        w.seeds,
        start=gen,
        total=ctx.generations,
        n_gens=n,
        cfg=cfg,
        mesh=w.mesh,
    )
    tr = {k: np.asarray(v)[: w.n_users] for k, v in trace.items()}
    part = _partials(m, w.n_users)
    names = ("feasible", "epsilon") + (("hypervolume",) if cfg.trace_hv else ())
    for i in range(n):  # the per-generation batch means, summed the same way
        part.update({f"{k}:{i}": col.exact_sum(tr[k][:, i]) for k in names})
    whole = col.add(col.allgather(ctx.collective, f"evolve:{gen}", part))
    metrics = _means(whole)
    users = whole["users"]

    def at(name: str, i: int) -> float:
        return round(col.mean(whole[f"{name}:{i}"], users), 6)

    rows = [
        {
            "generation": gen + i + 1,
            "alpha": float(state["alpha"]),
            "feasibility_rate": at("feasible", i),
            "hypervolume": at("hypervolume", i) if cfg.trace_hv else None,
            "epsilon": at("epsilon", i),
        }
        for i in range(n)
    ]
    if _leads(ctx):
        _record(
            ctx,
            config,
            "evolve",
            step_id=f"evolve:{gen}",
            observation={"generation": gen, "n_gens": n, "alpha": state["alpha"]},
            metrics=metrics,
        )
    return {
        "generation": gen + n,
        "lists": _compact(pop.lists[: w.n_users], ctx.n_candidates),
        "metrics": metrics,
        "trace": rows,
    }


def finalize(
    state: DualAgentState, runtime: Runtime[DualAgentContext], config: RunnableConfig
) -> dict:
    """Pick each user's list among the strictly feasible solutions; score it."""
    ctx = _ctx(runtime)
    w = workspace(ctx, state["users"])
    ne = _n_exploit(state["alpha"], ctx.pop_size, w.n_users)
    result = final_result(ctx, w, np.asarray(state["lists"], np.int32), ne)
    _record(
        ctx,
        config,
        "finalize",
        step_id="finalize",
        observation={"users": w.n_users, "pick": ctx.pick},
        metrics=result["summary"],
    )
    _record(ctx, config, "__end__", metrics=result["summary"])
    return {"result": result}


def final_result(
    ctx: DualAgentContext, w: dp.Layout, lists: np.ndarray, n_exploit: np.ndarray
) -> dict[str, Any]:
    """Each user's served list, picked among the strictly feasible solutions
    of its final population, and its scores.

    Args:
        lists: ``int[U, N, k]`` the final populations (candidate positions)
            of ``w``'s users.
        n_exploit: ``int[U]`` exploitation slots per user (alpha * N).
    """
    pad = w.problem.n_users - w.n_users
    ne = np.concatenate([n_exploit, np.repeat(n_exploit[-1:], pad)])
    pop, _ = ev.assess(
        w.problem,
        w.pad(lists),
        ne.astype(np.int32),
        np.zeros(w.problem.n_users, np.float32),
        mesh=w.mesh,
    )
    slot, _ = ev.pick(pop, ctx.pick, weights=ctx.weights(), max_loss=ctx.max_loss)
    hv = np.asarray(ev.final_front(pop))[: w.n_users]
    slot = np.asarray(slot)[: w.n_users]
    chosen = np.asarray(pop.lists)[np.arange(w.n_users), slot]
    result = score_lists(w.batch, chosen, hypervolume=hv)
    result["summary"].update(served_vs_baselines(w.batch, chosen))
    result["population_feasible_rate"] = round(
        float(np.mean(np.asarray(pop.viol)[: w.n_users] == 0)), 6
    )
    return result


def after_evolve(state: DualAgentState) -> Literal["coordinator", "finalize"]:
    return "finalize" if state["generation"] >= state["budget"] else "coordinator"


# ------------------------------------------------------------------- graph
def build_graph(*, checkpointer=None, store=None):
    """The compiled DualAgent-Rec graph (context: :class:`DualAgentContext`)."""
    b = StateGraph(
        DualAgentState, context_schema=DualAgentContext, input_schema=DualAgentInput
    )
    b.add_node("prepare", prepare)
    b.add_node("coordinator", coordinator)
    b.add_node("evolve", evolve)
    b.add_node("finalize", finalize)
    b.add_edge(START, "prepare")
    b.add_edge("prepare", "coordinator")
    b.add_edge("coordinator", "evolve")
    b.add_conditional_edges("evolve", after_evolve)
    b.add_edge("finalize", END)
    return b.compile(checkpointer=checkpointer, store=store, name=GRAPH_NAME)


graph = build_graph()
