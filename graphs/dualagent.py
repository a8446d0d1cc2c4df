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
policy layer (LLM or the documented rule); ``finalize`` picks each user's list
among the strictly feasible solutions and scores it.

Paper, and where it is silent (choices made here):

- Two populations per user in one fixed-shape array of ``N`` slots: the
  first ``round(alpha N)`` belong to the exploitation agent, the rest to the
  exploration agent; each agent can hold up to ``N`` (its capacity), and a
  new ``alpha`` moves the boundary without reallocation or recompilation.
- Exploitation: constrained domination (CDP) with the current epsilon,
  DE/pbest/1 adapted to index lists (pbest 10%, crossover 0.9, F 0.5,
  mutation 0.1), repair to ``k`` distinct candidates. Exploration: Pareto
  dominance ignoring constraints, DE/rand/1, mutation 0.2 (doubled).
  Survivors by (front, crowding distance) from parents + offspring, exact
  duplicates last (see :mod:`agenticrec.tools._evolve_select`).
- Knowledge transfer every 5 generations: each agent's elites (front 0,
  largest crowding distance first) are copied over the other agent's worst
  slots, 10% of the smaller agent each way (the paper's crowding-distance
  elite exchange, not the authors' code's cross-population breeding).
- Epsilon: ``eps_0`` = 80th percentile of the initial violations per user,
  ``eps_t = eps_0 * 0.05 ** (t / T_max)``, exactly 0 for the last 10% of
  the generations (at least one).
- Coordinator every ``T = 10`` generations, one decision for the batch; a
  failed or invalid LLM reply keeps the previous alpha (the paper) and the
  step records the fallback reason. Rule:
  :func:`agenticrec.graphs._dualagent_roles.coordinator_rule`. Before the
  first decision the layout uses ``alpha = 0.5``.
- Initial population: slot 0 holds the base top-k, slot 1 its greedy
  constraint repair (the satisfiability certificate), the rest uniform
  random lists; every method of a comparison starts from the same lists.
- Final list: among each user's strictly feasible solutions (both agents),
  the most relevant member of the non-dominated front (ties: diversity, then
  novelty); ``pick="knee"`` takes the front member nearest the ideal point.
- Hypervolume: exact (Pareto core), reference point 0 for the three
  maximised objectives in ``[0, 1]``.

Checkpointing: the state holds each user's population as a compact integer
array (``int16[U, N, k]`` candidate positions) plus alpha, the generation
counter, ``eps_0`` and the per-round records; candidates, embeddings and
attributes live in an in-process workspace rebuilt deterministically from
the context. Randomness comes from explicit keys, ``fold_in(key(seed_u),
generation)`` with ``seed_u`` derived from (seed, raw user id), so a killed
run resumed on the same thread id finishes with the same result.
"""

from __future__ import annotations

import functools
import math
import operator
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

import jax
import numpy as np
import typer
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from agenticrec.context import Context
from agenticrec.errors import ConfigError
from agenticrec.graphs import _dualagent_problem as dp
from agenticrec.graphs import _dualagent_roles as roles
from agenticrec.graphs._runtime import (
    policy_for,
    record,
    stream_thread,
    thread_of,
    who,
)
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
from agenticrec.tools import evolve as ev

__all__ = [
    "METHODS",
    "DualAgentContext",
    "DualAgentInput",
    "DualAgentState",
    "build_graph",
    "default_thread_id",
    "default_users",
    "graph",
    "method_config",
    "run",
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
    :class:`Context`)."""

    data: str = field(default="ml-latest-small", metadata={"description": "Dataset."})
    n_candidates: int = field(
        default=500, metadata={"description": "Candidates per user (M)."}
    )
    k: int = field(default=10, metadata={"description": "List length."})
    pop_size: int = field(
        default=200, metadata={"description": "Population slots per user (N)."}
    )
    generations: int = field(
        default=100, metadata={"description": "Generation budget (T_max)."}
    )
    coordinator_every: int = field(
        default=10, metadata={"description": "Generations between decisions (T)."}
    )
    method: str = field(
        default="dualagent", metadata={"description": f"One of {METHODS}."}
    )
    alpha: float = field(
        default=0.7, metadata={"description": "Exploitation share of 'fixed'."}
    )
    constraints: str | None = field(
        default=None,
        metadata={"description": "JSON constraint file; default: the dataset's."},
    )
    pick: str = field(
        default="relevance", metadata={"description": "relevance | knee."}
    )
    embedding_dim: int = field(
        default=32, metadata={"description": "SVD embedding dimensions."}
    )
    trace_hv: bool = field(
        default=False,
        metadata={"description": "Hypervolume after every generation (plots)."},
    )
    devices: int = field(
        default=0, metadata={"description": "Local devices to shard over (0: all)."}
    )
    trajectories: str | None = field(
        default=None, metadata={"description": "JSONL file to append trajectories to."}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.method not in METHODS:
            raise ConfigError(f"method {self.method!r}: expected one of {METHODS}")
        if self.pick not in ("relevance", "knee"):
            raise ConfigError(f"pick {self.pick!r}: expected 'relevance' or 'knee'")
        for name in ("n_candidates", "k", "pop_size", "generations"):
            if int(getattr(self, name)) < (2 if name != "generations" else 1):
                raise ConfigError(f"{name} must be >= 2 (generations >= 1)")
        if self.coordinator_every < 1:
            raise ConfigError("coordinator_every must be >= 1")
        if self.k > self.n_candidates:
            raise ConfigError(
                f"k={self.k} is larger than the candidate set "
                f"(n_candidates={self.n_candidates})"
            )
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1]; got {self.alpha}")

    def specs(self) -> tuple[dp.ConstraintSpec, ...]:
        if self.constraints:
            return dp.load_constraints(self.constraints)
        return dp.default_constraints(
            dp.workspace(self.data, self.embedding_dim).dataset
        )

    def cfg(self) -> ev.EvolveConfig:
        return method_config(self.method, self.pop_size, trace_hv=self.trace_hv)

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
@dataclass(frozen=True, eq=False)
class Workspace:
    """A run's batch and device layout (rebuilt, never checkpointed)."""

    batch: dp.Batch
    problem: ev.Problem
    """The batch's problem padded to a multiple of the mesh size."""
    seeds: np.ndarray
    mesh: Any
    n_users: int

    def pad(self, x: np.ndarray) -> np.ndarray:
        extra = self.problem.n_users - self.n_users
        if extra == 0:
            return x
        return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)])


@functools.lru_cache(maxsize=8)
def _workspace(key: tuple) -> Workspace:
    (data, dim, m, k, specs, seed, users, n_dev) = key
    ws = dp.workspace(data, dim)
    batch = dp.build_batch(ws, list(users), n_candidates=m, k=k, specs=specs, seed=seed)
    mesh = ev.users_mesh(jax.local_devices()[:n_dev]) if n_dev > 1 else None
    problem, seeds = batch.problem, batch.seeds
    if mesh is not None:
        problem, _ = ev.pad_users(problem, mesh.size)
        seeds, _ = ev.pad_users(seeds, mesh.size)
        problem, seeds = ev.shard((problem, np.asarray(seeds)), mesh)
    return Workspace(batch, problem, np.asarray(seeds), mesh, len(batch.users))


def workspace(ctx: DualAgentContext, users: list[int]) -> Workspace:
    """The batch of ``users`` under ``ctx`` (cached in-process)."""
    mesh = ctx.mesh()
    key = (
        ctx.data,
        int(ctx.embedding_dim),
        int(ctx.n_candidates),
        int(ctx.k),
        ctx.specs(),
        int(ctx.seed),
        tuple(int(u) for u in users),
        1 if mesh is None else mesh.size,
    )
    return _workspace(key)


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
    trace: Annotated[list[dict[str, Any]], operator.add]
    result: dict[str, Any]


def _ctx(runtime: Runtime[DualAgentContext]) -> DualAgentContext:
    return runtime.context if runtime.context is not None else DualAgentContext()


def _n_exploit(alpha: float, n: int, users: int) -> np.ndarray:
    return np.full(users, int(round(alpha * n)), np.int32)


def _compact(lists: Any, m: int) -> np.ndarray:
    return np.asarray(lists).astype(np.int16 if m <= 32767 else np.int32)


def _means(m: ev.RoundMetrics, n: int) -> dict[str, Any]:
    hv = np.asarray(m.hypervolume)[:n]
    feas = np.asarray(m.feasible)[:n]
    fe = np.asarray(m.feasible_exploit)[:n]
    return {
        "hypervolume": round(float(hv.mean()), 6),
        "feasibility_rate": round(float(feas.mean()), 6),
        "exploit_feasibility_rate": None
        if np.all(np.isnan(fe))
        else round(float(np.nanmean(fe)), 6),
        "users_without_feasible": round(float(np.mean(feas == 0)), 6),
        "epsilon": round(float(np.asarray(m.epsilon)[:n].mean()), 6),
    }


def _record(ctx, config, node: str, *, decision=None, **kw) -> None:
    record(
        ctx.trajectories,
        thread_of(config),
        graph=GRAPH_NAME,
        context=ctx.public_dict(),
        dataset={"name": ctx.data},
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
    metrics = _means(m, w.n_users)
    b = w.batch
    _record(
        ctx,
        config,
        "prepare",
        step_id="prepare",
        observation={
            "users": len(b.users),
            "skipped": b.skipped,
            "constraints": [s.label for s in b.specs],
            "satisfiable": {
                s: b.satisfiable.count(s) for s in ("yes", "no", "unknown")
            },
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
        entry.update(alpha=alpha, policy="fixed", reasoning=f"method {ctx.method}")
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
                }
                for r in state.get("rounds", [])[-5:]
            ],
        }
        d = policy_for(ctx).decide(roles.ROLE, obs)
        kept = d.fallback_reason is not None
        alpha = float(state["alpha"]) if kept else float(d.value.exploitation_ratio)
        entry.update(
            alpha=alpha,
            policy=who(d),
            reasoning=d.value.reasoning,
            kept_previous=kept,
            fallback_reason=d.fallback_reason,
        )
        _record(
            ctx,
            config,
            "coordinator",
            decision=d,
            step_id=f"coordinator:{gen}",
            observation=obs,
            extra={"alpha_applied": alpha, "kept_previous": kept},
        )
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
    metrics = _means(m, w.n_users)
    tr = {k: np.asarray(v)[: w.n_users] for k, v in trace.items()}
    rows = [
        {
            "generation": gen + i + 1,
            "alpha": float(state["alpha"]),
            "feasibility_rate": round(float(tr["feasible"][:, i].mean()), 6),
            "hypervolume": None
            if not cfg.trace_hv
            else round(float(tr["hypervolume"][:, i].mean()), 6),
            "epsilon": round(float(tr["epsilon"][:, i].mean()), 6),
        }
        for i in range(n)
    ]
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
    from agenticrec.evals import dualagent_eval as de

    ctx = _ctx(runtime)
    w = workspace(ctx, state["users"])
    u = w.problem.n_users
    ne = _n_exploit(state["alpha"], ctx.pop_size, u)
    pop, _ = ev.assess(
        w.problem,
        w.pad(np.asarray(state["lists"], np.int32)),
        ne,
        np.zeros(u, np.float32),
        mesh=w.mesh,
    )
    slot, _ = ev.pick(pop, ctx.pick)
    hv = np.asarray(ev.final_front(pop))[: w.n_users]
    slot = np.asarray(slot)[: w.n_users]
    chosen = np.asarray(pop.lists)[np.arange(w.n_users), slot]
    result = de.score_lists(w.batch, chosen, hypervolume=hv)
    result["population_feasible_rate"] = round(
        float(np.mean(np.asarray(pop.viol)[: w.n_users] == 0)), 6
    )
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


# --------------------------------------------------------------------- run
def default_users(ctx: DualAgentContext, n_users: int | None) -> list[int]:
    """The first ``n_users`` evaluable users (all when ``None``)."""
    ws = dp.workspace(ctx.data, ctx.embedding_dim)
    return [int(u) for u in ws.users[: n_users or len(ws.users)]]


def default_thread_id(ctx: DualAgentContext, users: list[int]) -> str:
    """A thread id naming the run: method, data, seed, sizes, and a digest of
    everything else that shapes the result (users, constraints, settings), so
    that two different runs never share a checkpointed thread."""
    import zlib

    shape = [
        list(users),
        [s.model_dump() for s in ctx.specs()],
        ctx.n_candidates,
        ctx.k,
        ctx.coordinator_every,
        ctx.alpha,
        ctx.pick,
        ctx.embedding_dim,
    ]
    digest = zlib.crc32(repr(shape).encode()) & 0xFFFFFFFF
    return (
        f"dualagent-{ctx.method}-{ctx.data}-{ctx.seed}-{len(users)}u-"
        f"{ctx.pop_size}x{ctx.generations}-{digest:08x}"
    )


def run(
    ctx: DualAgentContext,
    *,
    n_users: int | None = None,
    users: list[int] | None = None,
    checkpointer=None,
    thread_id: str | None = None,
    progress=None,
    baselines: bool = True,
    plot_dir: str | None = None,
    details: bool = False,
) -> dict[str, Any]:
    """Run DualAgent-Rec (or a baseline method) on ``users`` (default: the
    first ``n_users`` evaluable users) and report.

    With a ``checkpointer`` and an existing ``thread_id``, an interrupted run
    resumes where it stopped. ``baselines`` adds the list baselines (base
    top-k, MMR, greedy repair) on the same users; ``plot_dir`` writes PNGs
    (see :func:`agenticrec.graphs._dualagent_plots.write_plots`);
    ``details`` keeps the per-user results in the report.
    """
    from agenticrec.evals import dualagent_eval as de

    t0 = time.perf_counter()
    if users is None:
        users = default_users(ctx, n_users)
    w = workspace(ctx, users)
    t_setup = time.perf_counter() - t0
    thread_id = thread_id or default_thread_id(ctx, users)
    rounds = math.ceil(ctx.generations / ctx.coordinator_every)
    config = {
        "configurable": {"thread_id": thread_id},
        "recursion_limit": 10 + 3 * rounds,
    }
    cg = build_graph(checkpointer=checkpointer) if checkpointer is not None else graph
    t1 = time.perf_counter()
    final = stream_thread(
        cg,
        {"users": list(users)},
        config,
        ctx,
        checkpointer=checkpointer,
        same_input=lambda v: v.get("users") == list(users) and "result" in v,
        on_chunk=(lambda c: progress(int(c.get("generation", 0)), ctx.generations))
        if progress is not None
        else None,
    )
    elapsed = time.perf_counter() - t1
    result = dict(final["result"])
    b = w.batch
    report: dict[str, Any] = {
        "graph": GRAPH_NAME,
        "data": ctx.data,
        "method": ctx.method,
        "seed": ctx.seed,
        "users": len(b.users),
        "settings": {
            "k": ctx.k,
            "n_candidates": ctx.n_candidates,
            "pop_size": ctx.pop_size,
            "generations": ctx.generations,
            "coordinator_every": ctx.coordinator_every,
            "pick": ctx.pick,
        },
        "constraints": [s.label for s in b.specs],
        "satisfiability": {s: b.satisfiable.count(s) for s in ("yes", "no", "unknown")},
        "unsatisfiable": [
            {"user": int(u), "status": s, "binding": c}
            for u, s, c in zip(b.users, b.satisfiable, b.binding, strict=True)
            if s != "yes"
        ],
        "skipped": b.skipped,
        "metrics": {ctx.method: result["summary"]},
        "alpha_trace": [r["alpha"] for r in final.get("rounds", [])],
        "policies": _policy_counts(final.get("rounds", [])),
        "timings": {
            "setup_s": round(t_setup, 3),
            "graph_s": round(elapsed, 3),
            "users_per_s": round(len(b.users) / max(elapsed, 1e-9), 2),
        },
        "thread_id": thread_id,
    }
    if baselines:
        report["metrics"].update(de.list_baselines(b))
    if details:
        report["result"] = result
        report["rounds"] = final.get("rounds", [])
        report["trace"] = final.get("trace", [])
    if plot_dir is not None:
        from agenticrec.graphs._dualagent_plots import write_plots

        report["plots"] = write_plots(plot_dir, ctx, w, final)
    return report


def _policy_counts(rounds: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rounds:
        key = r["policy"]
        if r.get("kept_previous"):
            key = "kept previous alpha (llm failed)"
        out[key] = out.get(key, 0) + 1
    return out


# --------------------------------------------------------------------- CLI
def enable_compile_cache() -> str | None:
    """Keep compiled XLA kernels on disk between processes (CLI and demo).

    Compiling the evolution kernels costs 10-30 s on a 2-core CPU; the
    steady-state run of the demo takes under a second. The cache lives in
    ``<agenticrec cache dir>/jax``; ``AGENTICREC_JAX_CACHE=0`` turns it off
    and a cache directory already configured for JAX is left alone.
    """
    import os

    from agenticrec.data import cache_dir

    if os.environ.get("AGENTICREC_JAX_CACHE", "1") == "0":
        return None
    current = jax.config.jax_compilation_cache_dir
    if current:
        return str(current)
    path = cache_dir() / "jax"
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return str(path)


def register_cli(run_app) -> None:
    """Add ``agenticrec run dualagent`` to the CLI."""

    @run_app.command("dualagent")
    def run_dualagent(
        data: DataOpt = "ml-latest-small",
        users: int = typer.Option(100, "--users", help="Users to optimise (0: all)."),
        pop: int = typer.Option(200, "--pop", help="Population slots per user (N)."),
        gens: int = typer.Option(100, "--gens", help="Generation budget (T_max)."),
        k: int = typer.Option(10, "--k", help="List length."),
        candidates: int = typer.Option(500, "--candidates", help="Candidates (M)."),
        every: int = typer.Option(10, "--every", help="Generations per decision."),
        method: str = typer.Option("dualagent", "--method", help=" | ".join(METHODS)),
        constraints: str = typer.Option(
            None, "--constraints", help="JSON constraint file (default: dataset's)."
        ),
        pick: str = typer.Option("relevance", "--pick", help="relevance | knee"),
        plot: str = typer.Option(None, "--plot", help="Write PNG plots into DIR."),
        trajectories: TrajectoriesOpt = None,
        seed: SeedOpt = 0,
        checkpoint: CheckpointOpt = None,
        thread_id: ThreadOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """DualAgent-Rec: constrained multi-objective list evolution, many users."""
        enable_compile_cache()
        ctx = DualAgentContext(
            data=data,
            n_candidates=candidates,
            k=k,
            pop_size=pop,
            generations=gens,
            coordinator_every=every,
            method=method,
            constraints=constraints,
            pick=pick,
            trace_hv=plot is not None,
            seed=seed,
            trajectories=str(trajectories) if trajectories else None,
        )
        with (
            open_checkpointer(checkpoint) as saver,
            progress_bar("dualagent generations", disable=False) as bar,
        ):
            report = run(
                ctx,
                n_users=users or None,
                checkpointer=saver,
                thread_id=thread_id,
                progress=bar,
                plot_dir=plot,
            )
        emit_report(report, as_json=as_json, title="dualagent")


def demo(ds, *, seed: int = 0) -> dict[str, Any]:
    """A short run for ``agenticrec demo``: 20 users, population 40, 20
    generations, the coordinator against fixed alpha = 0.7 (same compiled
    kernels, so the comparison costs no extra compilation). The first run on
    a machine compiles the kernels (tens of seconds on 2 cores); later runs
    load them from the on-disk cache (:func:`enable_compile_cache`)."""
    enable_compile_cache()
    name = ds.name if ds.source.startswith("embedded") else ds.source
    small = dict(data=name, pop_size=40, generations=20, seed=seed)
    t0 = time.perf_counter()
    a = run(DualAgentContext(**small), n_users=20, baselines=False)
    b = run(DualAgentContext(method="fixed", **small), n_users=20, baselines=False)
    ma, mb = a["metrics"]["dualagent"], b["metrics"]["fixed"]
    return {
        "summary": (
            f"HV {ma['hypervolume']:.4f} (coordinator) vs {mb['hypervolume']:.4f} "
            f"(fixed alpha 0.7); feasible {ma['feasible']:.0%}; alpha "
            f"{' -> '.join(f'{x:g}' for x in a['alpha_trace'])} ({a['policies']})"
        ),
        "users": a["users"],
        "constraints": a["constraints"],
        "hypervolume": {
            "dualagent": ma["hypervolume"],
            "fixed_alpha_0.7": mb["hypervolume"],
        },
        "feasible": {"dualagent": ma["feasible"], "fixed_alpha_0.7": mb["feasible"]},
        "NDCG@10": {"dualagent": ma["NDCG@10"], "fixed_alpha_0.7": mb["NDCG@10"]},
        "alpha_trace": a["alpha_trace"],
        "policies": a["policies"],
        "seconds": round(time.perf_counter() - t0, 2),
    }
