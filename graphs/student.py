"""STAR student graph: one generation pass per user, parsed, validated, scored.

::

    START --Send(user) x N--> user --> END

    user:  prompt -> recommend -> finish

The student (a model folder written by ``agenticrec distill sft|grpo``) reads
the same user task as the teacher (:func:`agenticrec.graphs.teacher.user_task`,
wrapped by :func:`agenticrec.export.student_prompt` exactly as in training) and
answers once. Its answer is untrusted model output: only the ids of its last
``<recommend>[...]</recommend>`` count, and only if they are distinct
candidates (:func:`agenticrec.rewards.parse_recommendation`, the reward's own
parser). An answer that fails is replaced by the **rule policy**: the
candidates by popularity in the visible history, ties to the smaller id,
recorded as ``policy: rule`` with the reason. A valid list shorter than the
candidates is completed in that same rule order. ``finish`` scores the
ranking on the held-out item like the teacher (under ``full``, catalogue items
outside the shortlist rank below it), so student and teacher runs with the
same data, protocol, users and offset are paired.

Generation is greedy and runs under one lock per model: a user's answer does
not depend on which users run beside it.
"""

from __future__ import annotations

import operator
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Send
from pydantic import BaseModel
from typing_extensions import TypedDict

from agenticrec.context import setting
from agenticrec.errors import ConfigError
from agenticrec.export import student_prompt
from agenticrec.graphs._runtime import record, thread_of
from agenticrec.graphs._teacher_workspace import SplitContext
from agenticrec.graphs.teacher import user_task
from agenticrec.policy import Decision
from agenticrec.rewards import parse_recommendation

__all__ = [
    "ANSWER_CAP",
    "StudentContext",
    "StudentState",
    "build_graph",
    "graph",
    "parse_ranking",
    "rule_ranking",
]

GRAPH_NAME = "student"
ANSWER_CAP = 8000
"""Characters of the student's answer kept in a trajectory (the rest is cut,
and the cut is marked)."""


@dataclass(kw_only=True)
class StudentContext(SplitContext):
    """Settings of a student run: the split's (:class:`SplitContext`, the
    teacher's values score the same rows) and the model's. The LLM settings
    are unused: the student is the policy, the rule its fallback."""

    student: str | None = setting(
        None,
        "Folder of a trained student (agenticrec distill sft|grpo).",
        cli="--model",
    )
    max_new_tokens: int = setting(
        1024, "Most tokens the student may generate per user.", ge=8, le=32768
    )
    trajectories: str | None = setting(
        None, "JSONL file to append trajectories to.", binds=False
    )


class StudentInput(TypedDict):
    """The users (compact ids of the split) to process."""

    users: list[int]


class StudentState(StudentInput, total=False):
    results: Annotated[list[dict[str, Any]], operator.add]


class UserInput(TypedDict):
    user: int


class UserOutput(TypedDict):
    results: list[dict[str, Any]]


class UserState(UserInput, total=False):
    candidates: list[int]
    prompt: list[dict[str, str]]
    answer: str
    ranking: list[int]
    policy: dict[str, Any]
    generate_ms: float
    results: Annotated[list[dict[str, Any]], operator.add]


class Ranking(BaseModel):
    """The student's decision: the candidates, best first."""

    ranking: list[int]


# ------------------------------------------------------------------- policy
def parse_ranking(answer: str, candidates: list[int]) -> list[int]:
    """The ids of the answer's last ``<recommend>`` list.

    Raises:
        ValueError: no such list, not a JSON list of ints, repeated ids, or an
            id that is not a candidate (the reason names which).
    """
    ids = parse_recommendation(answer, set(candidates))
    if ids is not None:
        return ids
    if "<recommend>" not in answer or "</recommend>" not in answer:
        raise ValueError("no <recommend>[ids]</recommend> in the answer")
    if parse_recommendation(answer, None) is None:
        raise ValueError("<recommend> does not hold a JSON list of distinct ids")
    raise ValueError("<recommend> names ids that are not candidates")


def rule_ranking(popularity: np.ndarray, candidates: list[int]) -> list[int]:
    """The rule policy: candidates by visible-history popularity, ties to the
    smaller id."""
    pop = np.asarray(popularity)[np.asarray(candidates, np.int64)]
    order = np.lexsort((np.asarray(candidates), -pop))
    return [int(candidates[i]) for i in order]


# ------------------------------------------------------------------- runtime
def _ctx(runtime: Runtime[StudentContext]) -> StudentContext:
    return runtime.context if runtime.context is not None else StudentContext()


def load_model(ctx: StudentContext):
    """``(model, tokenizer, card, lock)``, loaded once per run."""
    if not ctx.student:
        raise ConfigError(
            "student: no model given (--model DIR, a folder written by "
            "agenticrec distill sft|grpo)"
        )

    def load():
        from agenticrec.distill import load_student

        model, tok, card = load_student(ctx.student)
        model.eval()
        return model, tok, card, threading.Lock()

    return ctx.services.get(f"student.model:{ctx.student}", load)


def _record(ctx, config, state, node, **kw) -> None:
    writer = ctx.services.writer
    if writer is None:
        return
    ws = ctx.ws()
    user = int(state["user"])
    record(
        writer,
        f"{thread_of(config)}:{ws.dataset.user_ids[user]}",
        graph=GRAPH_NAME,
        context=ctx.public_dict(),
        dataset={
            "name": ws.name,
            "fingerprint": ws.dataset.fingerprint,
            "protocol": ws.protocol,
        },
        node=node,
        step_id=node,
        **({} if node == "__end__" else {"user": user}),
        **kw,
    )


# ------------------------------------------------------------------- nodes
def prompt(state: UserState, runtime: Runtime[StudentContext]) -> dict:
    """The user's task as the student was trained to read it."""
    ctx = _ctx(runtime)
    cands, task = user_task(ctx.ws(), int(state["user"]), ctx.k)
    return {"candidates": cands, "prompt": student_prompt(task)}


def recommend(
    state: UserState, runtime: Runtime[StudentContext], config: RunnableConfig
) -> dict:
    """One greedy pass of the student; an invalid answer falls back to the rule."""
    from agenticrec.distill import generate

    ctx = _ctx(runtime)
    model, tok, _, lock = load_model(ctx)
    cands = state["candidates"]
    with lock:
        t0 = time.perf_counter()
        answer = generate(model, tok, state["prompt"], ctx.max_new_tokens)
        ms = (time.perf_counter() - t0) * 1e3
    rule = rule_ranking(ctx.ws().index.graph.popularity, cands)
    kept = answer if len(answer) <= ANSWER_CAP else answer[:ANSWER_CAP] + " [cut]"
    messages = [*state["prompt"], {"role": "assistant", "content": kept}]
    try:
        ids = parse_ranking(answer, cands)
        picked = set(ids)
        ranking = ids + [c for c in rule if c not in picked]
        d = Decision(
            "student.recommend", Ranking(ranking=ids), "student", ms, messages=messages
        )
    except ValueError as exc:
        ranking = rule
        d = Decision(
            "student.recommend",
            Ranking(ranking=rule[: ctx.k]),
            "rule",
            ms,
            fallback_reason=str(exc),
            messages=messages,
        )
    _record(
        ctx,
        config,
        state,
        "recommend",
        decision=d,
        observation={"candidates": cands},
    )
    return {
        "answer": kept,
        "ranking": ranking,
        "policy": {"policy": d.policy, "fallback_reason": d.fallback_reason},
        "generate_ms": ms,
    }


def finish(
    state: UserState, runtime: Runtime[StudentContext], config: RunnableConfig
) -> dict:
    """Score the ranking on the held-out item (the student never sees it)."""
    ctx = _ctx(runtime)
    ws = ctx.ws()
    row = ws.row(state["user"])
    ranking = list(state["ranking"])
    target = int(ws.targets[row])
    rank = ws.rank_of_target(row, ranking)
    _record(
        ctx,
        config,
        state,
        "__end__",
        metrics={"rank": rank, "target": target, "ranking": ranking[: ctx.k]},
    )
    return {
        "results": [
            {
                "user": int(state["user"]),
                "raw_user": str(ws.dataset.user_ids[state["user"]]),
                "ranking": ranking[: ctx.k],
                "target": target,
                "rank": rank,
                "policy": state["policy"],
                "generate_ms": round(state["generate_ms"], 2),
            }
        ]
    }


def fan_out(state: StudentState) -> list[Send]:
    """One ``Send`` per user."""
    return [Send("user", {"user": int(u)}) for u in state["users"]]


# ------------------------------------------------------------------- graph
def build_user_graph():
    """The per-user subgraph (no checkpointer: one atomic task per user)."""
    b = StateGraph(
        UserState,
        context_schema=StudentContext,
        input_schema=UserInput,
        output_schema=UserOutput,
    )
    b.add_node("prompt", prompt)
    b.add_node("recommend", recommend)
    b.add_node("finish", finish)
    b.add_edge(START, "prompt")
    b.add_edge("prompt", "recommend")
    b.add_edge("recommend", "finish")
    b.add_edge("finish", END)
    return b.compile(checkpointer=False, name="student_user")


def build_graph(*, checkpointer=None, store=None):
    """The compiled student graph (context: :class:`StudentContext`)."""
    b = StateGraph(
        StudentState, context_schema=StudentContext, input_schema=StudentInput
    )
    b.add_node("user", build_user_graph())
    b.add_conditional_edges(START, fan_out, ["user"])
    b.add_edge("user", END)
    return b.compile(checkpointer=checkpointer, store=store, name=GRAPH_NAME)


graph = build_graph()
