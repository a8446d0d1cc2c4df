"""What graph nodes share: recording a step, who decided, the thread id.

Dependencies (policy, trajectory writer) are not here: they are the run's
:class:`agenticrec.context.Services`, reached as ``runtime.context.services``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agenticrec.policy import Decision
from agenticrec.trajectory import TrajectoryWriter

__all__ = ["policy_counts", "policy_info", "record", "thread_of"]


def policy_info(d: Decision) -> dict[str, Any]:
    """Who decided, as structured fields: ``{"policy", "fallback_reason"}``."""
    return {"policy": d.policy, "fallback_reason": d.fallback_reason}


def policy_counts(infos: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``policy -> decisions``; fallbacks count as ``"rule (fallback)"``."""
    out: dict[str, int] = {}
    for info in infos:
        key = "rule (fallback)" if info.get("fallback_reason") else info["policy"]
        out[key] = out.get(key, 0) + 1
    return out


def thread_of(config: Mapping[str, Any], default: str = "run") -> str:
    """The LangGraph thread id of a node's ``config``."""
    return str((config.get("configurable") or {}).get("thread_id", default))


def record(
    writer: TrajectoryWriter | None,
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
    """Append one step of ``run_id`` through the run's trajectory ``writer``.

    ``node="__end__"`` writes the run's end record (``fields["metrics"]``); a
    ``decision`` becomes a decision step. Stable ``step_id``\\s make a resumed
    node's second write a no-op. Nothing happens without a writer.
    """
    if writer is None:
        return
    rec = writer.run(run_id, graph=graph, context=context, dataset=dataset)
    if node == "__end__":
        rec.end(metrics=fields.get("metrics", {}))
    elif decision is not None:
        rec.decision_step(decision, node=node, step_id=step_id, **fields)
    else:
        rec.step(step_id, node=node, **fields)
