"""The teacher as the runner sees it: input, typed report (the teacher's
metrics beside the baselines on the same rows), replay and export hooks."""

from __future__ import annotations

from typing import Any

import numpy as np

from agenticrec.errors import DataValidationError
from agenticrec.graphs._runtime import policy_counts
from agenticrec.graphs._teacher_workspace import users_after_offset
from agenticrec.graphs.evidence import translate
from agenticrec.graphs.teacher import GRAPH_NAME, TeacherContext, toolset
from agenticrec.graphspec import GraphSpec, Report, RunResult
from agenticrec.tools import baselines
from agenticrec.tools.itemknn import itemknn_scores
from agenticrec.tools.metrics import rank_of_target, summarize
from agenticrec.workspace import data_workspace

__all__ = ["TeacherReport", "spec"]


class TeacherReport(Report):
    """NDCG/HR/MRR of the teacher and of random, popularity and co-occurrence
    ItemKNN on the same users: on the same candidates under ``sampled:N``,
    over the whole catalogue (seen items excluded) under ``full``. The
    validation-tuned EASE^R, cosine ItemKNN and ALS baselines are in
    ``agenticrec eval teacher_eval``."""

    data: str
    protocol: str
    users: int
    metrics: dict[str, dict[str, float]]
    policies: dict[str, dict[str, int]]
    """role -> policy -> decisions (``rule (fallback)`` counted apart)."""
    reflections: int
    shortlist: int | None = None
    """Under ``full``: the multi-channel shortlist size the agents ranked."""
    recall: float | None = None
    """Under ``full``: share of users whose held-out item is in the shortlist."""
    fit: dict[str, Any] = {}
    """What the rule policy learnt on the validation split (never test)."""

    def summary(self) -> str:
        nd = {k: v["NDCG@10"] for k, v in self.metrics.items()}
        others = ", ".join(f"{k} {v:.3f}" for k, v in nd.items() if k != "teacher")
        return (
            f"NDCG@10 {nd['teacher']:.3f} vs {others} on {self.users} users "
            f"({self.protocol})"
        )


def make_input(ctx: TeacherContext) -> dict[str, Any]:
    data_workspace(ctx.data).require_evaluable("teacher")
    ws = ctx.ws()
    if ws.users.size == 0:
        raise DataValidationError(
            f"teacher: no user of {ctx.data} has candidates under {ctx.protocol}"
        )
    return {"users": [int(u) for u in users_after_offset(ws, ctx, "teacher")]}


def report(res: RunResult) -> TeacherReport:
    ctx: TeacherContext = res.context
    ws = ctx.ws()
    results = sorted(res.state.get("results", []), key=lambda r: r["user"])
    rows = np.array([ws.row(r["user"]) for r in results], dtype=np.int64)
    ranks = np.array([r["rank"] for r in results], dtype=np.int64)
    metrics = {"teacher": summarize(ranks)}
    if len(rows):
        cands, targets = ws.cands[rows], ws.targets[rows]
        tpos = np.argmax(cands == targets[:, None], axis=1)
        in_pool = (cands == targets[:, None]).any(axis=1)
        hp, hi = ws.index.hist_ptr, ws.index.hist_items
        metrics["random"] = summarize(
            np.where(
                in_pool,
                rank_of_target(baselines.random_scores(cands, ctx.seed), tpos),
                cands.shape[1] + ws.outside_rank[rows],
            )
        )
        if ws.protocol.strip() == "full":
            metrics.update(_catalogue_baselines(ws, ws.users[rows], targets))
        else:
            base = {
                "popularity": baselines.popularity_scores(ws.index.graph, cands),
                "itemknn-cooccurrence": baselines.itemknn_scores(
                    ws.index.graph, hp, hi, ws.users[rows], cands
                ),
            }
            for name, sc in base.items():
                metrics[name] = summarize(rank_of_target(sc, tpos))
    by_role: dict[str, list[dict]] = {}
    for r in results:
        for role, info in r["policies"].items():
            by_role.setdefault(role, []).append(info)
    graph_s = res.timings.get("graph_s", 0.0)
    return TeacherReport(
        graph=GRAPH_NAME,
        status=res.status,
        seed=ctx.seed,
        thread_id=res.thread_id,
        data=ctx.data,
        protocol=ctx.protocol,
        users=len(results),
        metrics=metrics,
        policies={role: policy_counts(v) for role, v in by_role.items()},
        reflections=int(sum(r["reflections"] for r in results)),
        shortlist=int(ws.cands.shape[1]) if ws.protocol.strip() == "full" else None,
        recall=None
        if ws.recall is None or not len(rows)
        else round(float(np.mean(ws.outside_rank[rows] < 0)), 4),
        fit=ws.fit.model_dump(
            include={
                "fitted",
                "reason",
                "users",
                "params",
                "best_single",
                "threshold",
                "weights",
                "reserve",
                "tau",
                "valid",
                "recall",
            }
        ),
        timings={
            **res.timings,
            "users_per_s": round(len(results) / max(graph_s, 1e-9), 2),
        },
    )


def _catalogue_baselines(ws, users, targets) -> dict[str, dict[str, float]]:
    """Popularity and co-occurrence ItemKNN ranking the whole catalogue."""
    g = ws.index.graph
    pop = np.asarray(g.popularity, np.float64)
    knn = np.asarray(itemknn_scores(g, users, measure="count"), np.float64)
    scores = {
        "popularity": np.broadcast_to(pop, knn.shape).copy(),
        "itemknn-cooccurrence": knn + 1e-6 * pop / max(1.0, pop.max()),
    }
    out = {}
    for name, sc in scores.items():
        for r, u in enumerate(users):
            sc[r, ws.index.history(int(u))] = -np.inf
        out[name] = summarize(rank_of_target(sc, targets))
    return out


def merge(ctx: TeacherContext, inp: dict[str, Any], states: list[dict]) -> dict:
    """The whole run's state from its Ray shards': every user's result (the
    report recomputes each metric from them, as in one process)."""
    return {
        "users": list(inp["users"]),
        "results": [r for s in states for r in s.get("results", [])],
    }


def dataset(ctx: TeacherContext) -> dict[str, Any]:
    ws = ctx.ws()
    return {"name": ws.name, "fingerprint": ws.dataset.fingerprint}


def progress(ctx, inp, counts, state) -> tuple[int, int]:
    """Users finished by this process (one ``user`` task each)."""
    return counts.get("user", 0), len(inp["users"])


def recursion_limit(ctx: TeacherContext, inp: dict[str, Any]) -> int:
    return 20 + 8 * (ctx.max_reflections + 1)


def replay_tools(header) -> dict[str, Any]:
    """The tools a recorded run called, rebuilt from its header's context:
    the built-in ones and the registered teacher tools (plugins), bound to the
    same data. Tools passed only through ``build_graph(tools=...)`` or the
    context are not registered, so their calls replay as differences."""
    c = header.context
    ws = TeacherContext(
        **{
            k: c[k]
            for k in ("data", "protocol", "seed", "shortlist", "fit_users")
            if k in c
        }
    ).ws()
    return toolset(ws).tools


def evidence(tool: str, result: Any) -> list[str]:
    """The text the teacher's ``tools`` node gives its agents for ``result``:
    :func:`~agenticrec.graphs.evidence.translate`, or for a failed call
    (``{"error": ...}``) the failure sentence it records."""
    if isinstance(result, dict) and set(result) == {"error"}:
        return [f"Tool {tool} failed: {result['error']}"]
    return translate(tool, result)


def tool_schemas() -> list[dict[str, Any]]:
    """OpenAI function schemas of the teacher's tools (for exported data): the
    built-in ones, then the registered teacher tools (plugins) by name, as the
    model sees them (injected arguments left out)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    from agenticrec.plugins import default_registry
    from agenticrec.tools.teacher_tools import make_teacher_tools

    plugins = [i.tool for i in default_registry().for_graph(GRAPH_NAME)]
    tools = [*make_teacher_tools(None), *plugins]  # type: ignore[arg-type]
    return [convert_to_openai_tool(t) for t in tools]


spec = GraphSpec(
    name=GRAPH_NAME,
    description="MARS teacher: plan, call graph tools, reflect, rank; vs baselines.",
    module="agenticrec.graphs.teacher",
    context=TeacherContext,
    make_input=make_input,
    report=report,
    report_type=TeacherReport,
    dataset=dataset,
    recursion_limit=recursion_limit,
    progress=progress,
    demo={"users": 30},
    replay_tools=replay_tools,
    tool_schemas=tool_schemas,
    evidence=evidence,
    shard_key="users",
    merge=merge,
    item_tasks=True,
)
