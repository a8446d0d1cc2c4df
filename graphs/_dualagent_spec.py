"""DualAgent-Rec as the runner sees it: input, typed report (the method's
metrics beside the list baselines on the same users), plots, compile cache."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from agenticrec.errors import ConfigError
from agenticrec.graphs._dualagent_scoring import list_baselines
from agenticrec.graphs._runtime import policy_counts
from agenticrec.graphs.dualagent import (
    GRAPH_NAME,
    DualAgentContext,
    final_result,
    workspace,
)
from agenticrec.graphspec import GraphSpec, Report, RunResult
from agenticrec.workspace import data_workspace

__all__ = ["DualAgentReport", "enable_compile_cache", "spec"]


class DualAgentReport(Report):
    """What one DualAgent-Rec run found, and how.

    ``metrics`` maps the run's method (and, with ``baselines``, ``base_topk``,
    ``mmr`` and ``greedy_repair``) to the summary of
    :func:`agenticrec.graphs._dualagent_scoring.score_lists`.
    """

    data: str
    method: str
    users: int
    settings: dict[str, Any]
    constraints: list[str]
    satisfiability: dict[str, int]
    """``yes`` / ``no`` / ``unknown``: users whose constraints are proven
    satisfiable (greedy certificate), proven not, or neither."""
    unsatisfiable: list[dict[str, Any]]
    """Each user not proven satisfiable, with the binding constraint."""
    skipped: list[dict[str, Any]]
    """Users not optimised (fewer than ``k`` candidates), with the reason."""
    metrics: dict[str, dict[str, Any]]
    alpha_trace: list[float]
    """The exploitation share of each round."""
    policies: dict[str, int]
    """Coordinator decisions by policy (``rule``, ``llm:<model>``, ``fixed``;
    failed LLM replies counted as ``rule (fallback)``)."""
    kept_previous: int = 0
    """Rounds that kept the previous alpha because the LLM reply failed."""
    plots: dict[str, str] | None = None
    result: dict[str, Any] | None = None
    """With ``details``: per-user results of the chosen lists."""
    rounds: list[dict[str, Any]] | None = None
    """With ``details``: every coordinator round."""
    trace: list[dict[str, Any]] | None = None
    """With ``details``: batch means after every generation."""

    def summary(self) -> str:
        m = self.metrics[self.method]
        line = (
            f"HV {m['hypervolume']:.4f}, feasible {m['feasible']:.0%}, "
            f"NDCG@10 {m['NDCG@10']:.3f} on {self.users} users ({self.method})"
        )
        if "greedy_repair" in self.metrics:
            base = self.metrics["greedy_repair"]["hypervolume"]
            line += f" vs HV {base:.4f} (greedy repair)"
        alphas = " -> ".join(f"{a:g}" for a in self.alpha_trace)
        return f"{line}; alpha {alphas} ({self.policies})"


def enable_compile_cache() -> str | None:
    """Keep compiled XLA kernels on disk between processes.

    Compiling the evolution kernels costs 10-30 s on a 2-core CPU; the
    steady-state run of the demo takes under a second. The cache lives in
    ``<agenticrec cache dir>/jax``; ``AGENTICREC_JAX_CACHE=0`` turns it off
    and a cache directory already configured for JAX is left alone.
    """
    import jax

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


def prepare(ctx: DualAgentContext, checkpointed: bool = False) -> None:
    if ctx.backend == "ray" and ctx.plot:
        raise ConfigError(
            "plot: the per-generation plots need one batch; run with --backend "
            "local to plot, or leave --plot out with --backend ray"
        )
    enable_compile_cache()


def make_input(ctx: DualAgentContext) -> dict[str, Any]:
    """The first ``ctx.users`` evaluable users (all for 0); their batch is
    built here, so bad constraints or a batch too large for the device's
    memory fail before the graph starts."""
    data_workspace(ctx.data).require_evaluable("dualagent")
    ws = ctx.ws()
    users = [int(u) for u in ws.users[: ctx.users or len(ws.users)]]
    workspace(ctx, users)
    return {"users": users}


def report(res: RunResult) -> DualAgentReport:
    ctx: DualAgentContext = res.context
    state = res.state
    w = workspace(ctx, list(state["users"]))
    b = w.batch
    result = dict(state["result"])
    rounds = list(state.get("rounds", []))
    metrics: dict[str, dict[str, Any]] = {ctx.method: result["summary"]}
    if ctx.baselines:
        metrics.update(list_baselines(b))
    plots = None
    if ctx.plot:
        from agenticrec.graphs._dualagent_plots import write_plots

        plots = write_plots(ctx.plot, ctx, w, state)
    graph_s = res.timings.get("graph_s", 0.0)
    return DualAgentReport(
        graph=GRAPH_NAME,
        status=res.status,
        seed=ctx.seed,
        thread_id=res.thread_id,
        data=ctx.data,
        method=ctx.method,
        users=len(b.users),
        settings={
            "k": ctx.k,
            "n_candidates": ctx.n_candidates,
            "pop_size": ctx.pop_size,
            "generations": ctx.generations,
            "coordinator_every": ctx.coordinator_every,
            "pick": ctx.pick,
            "max_loss": ctx.max_loss,
            "preference": ctx.preference,
            "eps_decay": ctx.eps_decay,
            "strict_share": ctx.strict_share,
        },
        constraints=[s.label for s in b.specs],
        satisfiability={s: b.satisfiable.count(s) for s in ("yes", "no", "unknown")},
        unsatisfiable=[
            {"user": int(u), "status": s, "binding": c}
            for u, s, c in zip(b.users, b.satisfiable, b.binding, strict=True)
            if s != "yes"
        ],
        skipped=b.skipped,
        metrics=metrics,
        alpha_trace=[r["alpha"] for r in rounds],
        policies=policy_counts(rounds),
        kept_previous=sum(bool(r.get("kept_previous")) for r in rounds),
        plots=plots,
        result=result if ctx.details else None,
        rounds=rounds if ctx.details else None,
        trace=list(state.get("trace", [])) if ctx.details else None,
        timings={
            **res.timings,
            "users_per_s": round(len(b.users) / max(graph_s, 1e-9), 2),
        },
    )


def merge(ctx: DualAgentContext, inp: dict[str, Any], states: list[dict]) -> dict:
    """The whole batch's state from its Ray shards': their final populations,
    in user order, scored together by
    :func:`~agenticrec.graphs.dualagent.final_result` exactly as one process
    scores its batch (each user's evolution is independent of its batch: its
    own seed, candidates and constraints).

    The shards shared every batch-level signal while they ran
    (``ctx.collective``: exact sums of the coordinator's signals, shard 0's
    decision), so their rounds and traces are the whole batch's and agree;
    shards that disagree mean a bug, and the merge refuses them.
    """
    users = list(inp["users"])
    w = workspace(ctx, users)
    lists = np.concatenate([np.asarray(s["lists"], np.int32) for s in states])
    if lists.shape[0] != w.n_users:
        raise ConfigError(
            f"dualagent merge: the shards hold {lists.shape[0]} populations for a "
            f"batch of {w.n_users} users"
        )
    first = states[0]
    for i, s in enumerate(states[1:], 1):
        if s.get("rounds") != first.get("rounds") or s["alpha"] != first["alpha"]:
            raise RuntimeError(
                f"dualagent merge: shard {i}'s coordinator rounds differ from "
                "shard 0's; the shards did not share their signals"
            )
    ne = np.full(w.n_users, round(first["alpha"] * ctx.pop_size), np.int32)
    return {
        "users": users,
        "generation": first["generation"],
        "budget": first["budget"],
        "alpha": first["alpha"],
        "rounds": list(first.get("rounds", [])),
        "trace": list(first.get("trace", [])),
        "result": final_result(ctx, w, lists, ne),
    }


def dataset(ctx: DualAgentContext) -> dict[str, Any]:
    ws = ctx.ws()
    return {"name": ws.name, "fingerprint": ws.base.fingerprint}


def progress(ctx, inp, counts, state) -> tuple[int, int]:
    """Generations done of the budget."""
    return int(state.get("generation", 0) or 0), ctx.generations


def recursion_limit(ctx: DualAgentContext, inp: dict[str, Any]) -> int:
    return 10 + 3 * math.ceil(ctx.generations / ctx.coordinator_every)


spec = GraphSpec(
    name=GRAPH_NAME,
    description=(
        "DualAgent-Rec: constrained multi-objective list evolution, many users."
    ),
    module="agenticrec.graphs.dualagent",
    context=DualAgentContext,
    make_input=make_input,
    report=report,
    report_type=DualAgentReport,
    dataset=dataset,
    progress=progress,
    recursion_limit=recursion_limit,
    demo={"users": 20, "pop_size": 40, "generations": 20},
    prepare=prepare,
    shard_key="users",
    merge=merge,
    collective=True,
)
