"""What every graph's ``run`` shares: policies per context, trajectory
writers, and resuming a checkpointed thread.

A graph run is one LangGraph thread. With a checkpointer, re-running the same
thread id either resumes an interrupted run at the node that was executing or,
when the thread already finished with the same input, returns its final state
without recomputing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from agenticrec.context import Context
from agenticrec.policy import Decision, Policy, make_policy
from agenticrec.trajectory import TrajectoryWriter

__all__ = [
    "close_writers",
    "policy_counts",
    "policy_info",
    "policy_for",
    "record",
    "stream_thread",
    "thread_of",
    "who",
    "writer_for",
]

_WRITERS: dict[str, TrajectoryWriter] = {}
_POLICIES: dict[int, tuple[Context, Policy]] = {}


def policy_for(ctx: Context) -> Policy:
    """One policy per context object (an LLM policy keeps its probed method)."""
    hit = _POLICIES.get(id(ctx))
    if hit is None or hit[0] is not ctx:
        if len(_POLICIES) > 16:
            _POLICIES.clear()
        hit = _POLICIES[id(ctx)] = (ctx, make_policy(ctx))
    return hit[1]


def writer_for(path: str | Path | None) -> TrajectoryWriter | None:
    """The process-wide writer of trajectory file ``path`` (``None`` if unset)."""
    if not path:
        return None
    key = str(Path(path).resolve())
    w = _WRITERS.get(key)
    if w is None or w._fh.closed:
        w = _WRITERS[key] = TrajectoryWriter(key)
    return w


def thread_of(config: Mapping[str, Any], default: str = "run") -> str:
    """The LangGraph thread id of a node's ``config``."""
    return str((config.get("configurable") or {}).get("thread_id", default))


def policy_info(d: Decision) -> dict[str, Any]:
    """Who decided, as structured fields: ``{"policy", "fallback_reason"}``."""
    return {"policy": d.policy, "fallback_reason": d.fallback_reason}


def policy_counts(infos) -> dict[str, int]:
    """``policy -> decisions``; fallbacks count as ``"rule (fallback)"``."""
    out: dict[str, int] = {}
    for info in infos:
        key = "rule (fallback)" if info.get("fallback_reason") else info["policy"]
        out[key] = out.get(key, 0) + 1
    return out


def record(
    path: str | Path | TrajectoryWriter | None,
    run_id: str,
    *,
    graph: str,
    context: Mapping[str, Any],
    dataset: Mapping[str, Any],
    node: str,
    step_id: str | None = None,
    decision: Decision | None = None,
    **fields: Any,
) -> None:
    """Append one step of ``run_id`` to the trajectory file ``path``.

    ``node="__end__"`` writes the run's end record (``fields["metrics"]``); a
    ``decision`` becomes a decision step. Stable ``step_id``\\s make a resumed
    node's second write a no-op. Nothing happens without a ``path``.
    """
    w = path if isinstance(path, TrajectoryWriter) else writer_for(path)
    if w is None:
        return
    rec = w.run(run_id, graph=graph, context=context, dataset=dataset)
    if node == "__end__":
        rec.end(metrics=fields.get("metrics", {}))
    elif decision is not None:
        rec.decision_step(decision, node=node, step_id=step_id, **fields)
    else:
        rec.step(step_id, node=node, **fields)


def close_writers() -> None:
    """Flush and fsync every open trajectory file."""
    for w in _WRITERS.values():
        w.close()
    _WRITERS.clear()


def who(d: Decision) -> str:
    """``"rule"``, ``"llm:<model>"`` or ``"rule (fallback: <reason>)"``."""
    return (
        d.policy
        if d.fallback_reason is None
        else f"rule (fallback: {d.fallback_reason})"
    )


def stream_thread(
    compiled,
    inp: Mapping[str, Any],
    config: dict[str, Any],
    context: Any,
    *,
    checkpointer: Any = None,
    same_input: Callable[[Mapping[str, Any]], bool] | None = None,
    on_chunk: Callable[[Mapping[str, Any]], None] | None = None,
) -> Mapping[str, Any]:
    """Run (or resume) one thread to its end and return the final state.

    Args:
        compiled: the compiled graph (with ``checkpointer`` when resuming).
        inp: the thread's input when it starts fresh.
        same_input: tells whether a finished thread's state came from ``inp``;
            then its final state is returned as is.
        on_chunk: called with each intermediate state (progress bars).
    """
    start: Any = dict(inp)
    if checkpointer is not None:
        snap = compiled.get_state(config)
        if snap.next or snap.tasks:
            start = None  # interrupted: resume at the pending node
        elif snap.values and same_input is not None and same_input(snap.values):
            return snap.values
    final: Mapping[str, Any] = {}
    try:
        for chunk in compiled.stream(
            start, config, context=context, stream_mode="values"
        ):
            final = chunk
            if on_chunk is not None:
                on_chunk(chunk)
    finally:
        close_writers()
    return final
