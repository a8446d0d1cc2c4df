"""A third-party graph, added the way a tool plugin is: by entry point.

It recommends each user the most popular items they have not seen, through
a one-node LangGraph graph, and reports HR@k on the held-out test item.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from typing_extensions import TypedDict

from agenticrec.context import Context, setting
from agenticrec.graphspec import GraphSpec, Report, RunResult
from agenticrec.workspace import data_workspace


@dataclass(kw_only=True)
class PopularContext(Context):
    data: str = setting("ml-latest-small", "Dataset name or path.")
    users: int = setting(20, "Users to recommend to.", ge=1, le=10_000)
    k: int = setting(10, "List length.", ge=1, le=100)


class PopularInput(TypedDict):
    users: list[int]


class PopularState(PopularInput, total=False):
    hits: Annotated[list[int], operator.add]


def recommend(state: dict, runtime: Runtime[PopularContext]) -> dict:
    ctx = runtime.context
    dw = data_workspace(ctx.data)
    indptr, items = dw.visible()
    seen = set(items[indptr[state["user"]] : indptr[state["user"] + 1]].tolist())
    order = np.argsort(-np.asarray(dw.graph().popularity), kind="stable")
    top = [int(i) for i in order if int(i) not in seen][: ctx.k]
    users, targets = dw.split.targets("test")
    target = int(targets[np.flatnonzero(users == state["user"])[0]])
    return {"hits": [int(target in top)]}


def fan_out(state: PopularState) -> list[Send]:
    return [Send("recommend", {"user": u}) for u in state["users"]]


def build_graph(*, checkpointer=None, store=None):
    b = StateGraph(PopularState, context_schema=PopularContext,
                   input_schema=PopularInput)
    b.add_node("recommend", recommend)
    b.add_conditional_edges(START, fan_out, ["recommend"])
    b.add_edge("recommend", END)
    return b.compile(checkpointer=checkpointer, store=store, name="popular")


graph = build_graph()


class PopularReport(Report):
    users: int
    hit_rate: float

    def summary(self) -> str:
        return f"HR@k {self.hit_rate:.3f} on {self.users} users"


def _input(ctx: PopularContext) -> dict[str, Any]:
    users, _ = data_workspace(ctx.data).split.targets("test")
    return {"users": [int(u) for u in users[: ctx.users]]}


def _report(res: RunResult) -> PopularReport:
    hits = res.state.get("hits", [])
    return PopularReport(graph="popular", status=res.status, seed=res.context.seed,
                         thread_id=res.thread_id, timings=res.timings,
                         users=len(hits), hit_rate=float(np.mean(hits or [0])))


spec = GraphSpec(
    name="popular",
    description="Most popular unseen items (a third-party test graph).",
    module=__name__,
    context=PopularContext,
    make_input=_input,
    report=_report,
    report_type=PopularReport,
    dataset=lambda ctx: {"fingerprint": data_workspace(ctx.data).fingerprint},
)
