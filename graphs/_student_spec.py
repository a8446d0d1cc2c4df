"""The student as the runner sees it: input (users after the offset), typed
report (the student beside its rule fallback on the same rows)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from agenticrec.distill import CARD
from agenticrec.graphs._runtime import policy_counts
from agenticrec.graphs._teacher_workspace import users_after_offset
from agenticrec.graphs.student import (
    GRAPH_NAME,
    StudentContext,
    load_model,
    rule_ranking,
)
from agenticrec.graphspec import GraphSpec, Report, RunResult
from agenticrec.tools.metrics import summarize
from agenticrec.workspace import data_workspace

__all__ = ["StudentReport", "spec"]


class StudentReport(Report):
    """NDCG/HR/MRR of the student and of its rule policy (popularity among
    the same candidates) on the same users; the teacher and the strong
    baselines on the same users are in ``agenticrec eval student_eval``."""

    data: str
    protocol: str
    users: int
    offset: int
    metrics: dict[str, dict[str, float]]
    policies: dict[str, int]
    """policy -> users (``rule (fallback)``: the answer was invalid)."""
    fallback_reasons: dict[str, int]
    ms_per_user: float
    """Mean wall time of the student's one generation pass."""
    card: dict[str, Any]
    """The student's ``student.json`` (base, stage, steps, data, metrics)."""

    def summary(self) -> str:
        s, r = self.metrics["student"]["NDCG@10"], self.metrics["rule"]["NDCG@10"]
        ok = self.policies.get("student", 0)
        return (
            f"NDCG@10 {s:.3f} vs rule {r:.3f} on {self.users} users "
            f"({self.protocol}); {ok}/{self.users} answers valid, "
            f"{self.ms_per_user:.0f} ms/user"
        )


def make_input(ctx: StudentContext) -> dict[str, Any]:
    """The users after the offset (``prepare`` has loaded the model, so a
    missing or bad ``--model`` already failed)."""
    data_workspace(ctx.data).require_evaluable("student")
    ws = ctx.ws()
    return {"users": [int(u) for u in users_after_offset(ws, ctx, "student")]}


def prepare(ctx: StudentContext, checkpointed: bool) -> None:
    """Load the model once before the graph (a bad folder fails at once)."""
    load_model(ctx)


def report(res: RunResult) -> StudentReport:
    ctx: StudentContext = res.context
    ws = ctx.ws()
    results = sorted(res.state.get("results", []), key=lambda r: r["user"])
    ranks = np.array([r["rank"] for r in results], dtype=np.int64)
    pop = ws.index.graph.popularity
    rule_ranks = []
    for r in results:
        row = ws.row(r["user"])
        order = rule_ranking(pop, [int(c) for c in ws.cands[row]])
        rule_ranks.append(ws.rank_of_target(row, order))
    reasons: dict[str, int] = {}
    for r in results:
        if why := r["policy"].get("fallback_reason"):
            reasons[why] = reasons.get(why, 0) + 1
    _, _, card, _ = load_model(ctx)
    ms = [r["generate_ms"] for r in results]
    return StudentReport(
        graph=GRAPH_NAME,
        status=res.status,
        seed=ctx.seed,
        thread_id=res.thread_id,
        data=ctx.data,
        protocol=ctx.protocol,
        users=len(results),
        offset=ctx.offset,
        metrics={
            "student": summarize(ranks),
            "rule": summarize(np.array(rule_ranks, dtype=np.int64)),
        },
        policies=policy_counts(r["policy"] for r in results),
        fallback_reasons=reasons,
        ms_per_user=round(float(np.mean(ms)) if ms else 0.0, 2),
        card=card.model_dump() if card is not None else {},
        timings=res.timings,
    )


def dataset(ctx: StudentContext) -> dict[str, Any]:
    """The data and the model's card digest: a checkpointed thread refuses to
    resume once the folder holds another student."""
    ws = ctx.ws()
    card = Path(ctx.student or "") / CARD
    digest = hashlib.sha256(card.read_bytes()).hexdigest() if card.is_file() else None
    return {"name": ws.name, "fingerprint": ws.dataset.fingerprint, "student": digest}


def progress(ctx, inp, counts, state) -> tuple[int, int]:
    return counts.get("user", 0), len(inp["users"])


spec = GraphSpec(
    name=GRAPH_NAME,
    description="STAR student: one generation pass per user, validated, scored.",
    module="agenticrec.graphs.student",
    context=StudentContext,
    make_input=make_input,
    report=report,
    report_type=StudentReport,
    dataset=dataset,
    progress=progress,
    prepare=prepare,
    requires="a trained student: agenticrec distill sft (docs/student.md)",
    recursion_limit=lambda ctx, inp: 20,
)
