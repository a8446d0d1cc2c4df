"""Replay: re-execute every recorded tool call and report what changed.

A trajectory step of a tool-executing node carries ``tool_results``: the tool
name, its arguments, the result it returned and the evidence text the graph
derived from it. Replaying first checks that the data rebuilt from the run
header (dataset, protocol, seed) has the fingerprint the run recorded (a
mismatch is reported once, as the run's difference, before any call), then
calls each tool again with the same arguments and compares the JSON results
exactly, then re-derives the evidence from the replayed result with the
graph's own translation (``GraphSpec.evidence``) and compares it with the
recorded evidence and with the tool message the agents read. A changed
kernel, dataset, tool or edited evidence sentence shows up as the precise
run, step and field that differ; :func:`agenticrec.export.export_file`
refuses runs that do not replay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool

from agenticrec.errors import TrajectoryError
from agenticrec.trajectory import RunRecord, read_trajectories

__all__ = ["Difference", "ReplayReport", "replay_file"]

ToolResolver = Callable[[RunRecord], Mapping[str, BaseTool]]


@dataclass(frozen=True)
class Difference:
    """One tool call whose replay differs from the record, or one run recorded
    on other data than its tools are rebuilt on."""

    run_id: str
    step_id: str
    call_id: str
    tool: str
    fields: list[str]
    recorded: Any
    replayed: Any
    kind: str = "result"
    """``result``, ``evidence``, ``message`` (the tool message text) or
    ``dataset`` (the fingerprint; ``step_id``/``call_id`` are empty)."""

    @property
    def message(self) -> str:
        """The difference as one line."""
        if self.kind == "dataset":
            return (
                f"run {self.run_id}: recorded on data with fingerprint "
                f"{self.recorded}, but the data its tools are rebuilt on now has "
                f"fingerprint {self.replayed} (another dataset or changed files); "
                "nothing was re-executed"
            )
        return (
            f"run {self.run_id}, step {self.step_id}, call {self.call_id} "
            f"({self.tool}): {self.kind} differs at {', '.join(self.fields)}"
        )


@dataclass
class ReplayReport:
    runs: int = 0
    calls: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    @property
    def failed_runs(self) -> set[str]:
        """Runs with at least one difference."""
        return {d.run_id for d in self.differences}

    def as_dict(self) -> dict[str, Any]:
        differing = {
            (d.run_id, d.step_id, d.call_id)
            for d in self.differences
            if d.kind != "dataset"
        }
        return {
            "runs": self.runs,
            "calls": self.calls,
            "identical": self.calls - len(differing),
            "differences": [
                {
                    "run_id": d.run_id,
                    "step_id": d.step_id,
                    "call_id": d.call_id,
                    "tool": d.tool,
                    "kind": d.kind,
                    "fields": d.fields,
                    "message": d.message,
                    **(
                        {"recorded": d.recorded, "replayed": d.replayed}
                        if d.kind == "dataset"
                        else {}
                    ),
                }
                for d in self.differences
            ],
        }


def _norm(x: Any) -> Any:
    return json.loads(json.dumps(x, sort_keys=True, default=str))


def _diff_fields(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_fields(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
        return out
    return [] if a == b else [prefix or "<root>"]


def graph_tools(header: RunRecord) -> Mapping[str, BaseTool]:
    """Tools of the graph that wrote ``header`` (its ``replay_tools`` hook)."""
    from agenticrec.graphspec import load_graphs

    spec = load_graphs().get(header.graph)
    if spec is None:
        raise TrajectoryError(
            f"run {header.run_id}: unknown graph {header.graph!r} (registered: "
            f"{', '.join(sorted(load_graphs()))})"
        )
    hook = spec.replay_tools
    if hook is None:
        raise TrajectoryError(f"graph {header.graph!r} records no replayable tools")
    return hook(header)


def _spec(header: RunRecord):
    from agenticrec.graphspec import load_graphs

    return load_graphs().get(header.graph)


def current_fingerprint(header: RunRecord) -> str | None:
    """The fingerprint of the data the run's tools are rebuilt on now
    (``None`` when the graph is unknown or has no dataclass context)."""
    from dataclasses import fields as dc_fields
    from dataclasses import is_dataclass

    spec = _spec(header)
    if spec is None or not is_dataclass(spec.context):
        return None
    names = {f.name for f in dc_fields(spec.context)}
    ctx = spec.context(**{k: v for k, v in header.context.items() if k in names})
    fp = spec.dataset(ctx).get("fingerprint")
    return None if fp is None else str(fp)


def _is_error(result: Any) -> bool:
    """A failed call as graphs record it: ``{"error": "<Type>: <message>"}``."""
    return isinstance(result, dict) and set(result) == {"error"}


def _tool_texts(step) -> dict[str, tuple[int, str]]:
    """``tool_call_id -> (index in messages, text)`` of the step's tool messages."""
    return {
        m.get("tool_call_id", ""): (k, m.get("content", ""))
        for k, m in enumerate(step.messages)
        if m.get("role") == "tool"
    }


def replay_file(
    path: str | Path, *, resolver: ToolResolver = graph_tools
) -> ReplayReport:
    """Re-execute each recorded tool call of every run in ``path``."""
    report = ReplayReport()
    cache: dict[str, Any] = {}
    for run_id, traj in read_trajectories(path).items():
        report.runs += 1
        key = json.dumps(
            [traj.header.graph, traj.header.context, traj.header.dataset],
            sort_keys=True,
            default=str,
        )
        if key not in cache:
            spec = _spec(traj.header)
            recorded_fp = traj.header.dataset.get("fingerprint")
            now_fp = current_fingerprint(traj.header) if recorded_fp else None
            cache[key] = (
                None
                if now_fp is not None and now_fp != recorded_fp
                else resolver(traj.header),
                (recorded_fp, now_fp),
                spec.evidence if spec is not None else None,
            )
        tools, (recorded_fp, now_fp), evidence = cache[key]
        if tools is None:
            report.differences.append(
                Difference(
                    run_id,
                    "",
                    "",
                    "",
                    ["dataset.fingerprint"],
                    recorded_fp,
                    now_fp,
                    kind="dataset",
                )
            )
            continue
        for step in traj.steps:
            texts = _tool_texts(step)
            for i, call in enumerate(step.tool_results):
                report.calls += 1
                tool = tools.get(call["name"])
                try:
                    if tool is None:
                        raise KeyError(f"no tool {call['name']!r}")
                    again = _norm(tool.invoke(call["args"]))
                except Exception as exc:  # noqa: BLE001 - a failed replay is a diff
                    again = {"error": f"{type(exc).__name__}: {exc}"}
                recorded = _norm(call.get("result"))
                cid = call.get("id", "")
                where = (run_id, step.step_id, cid, call["name"])
                add = report.differences.append
                if again != recorded:
                    add(
                        Difference(
                            *where, _diff_fields(recorded, again), recorded, again
                        )
                    )
                    continue
                if evidence is None:
                    continue
                try:
                    derived = [str(x) for x in evidence(call["name"], again)]
                except Exception as exc:  # noqa: BLE001 - underivable is a diff
                    if _is_error(again):
                        continue  # the hook has no text for a failed call
                    derived = [f"<evidence failed: {type(exc).__name__}: {exc}>"]
                had = list(call.get("evidence", []))
                if had != derived:
                    bad = [
                        f"tool_results[{i}].evidence[{j}]"
                        for j in range(max(len(had), len(derived)))
                        if j >= len(had) or j >= len(derived) or had[j] != derived[j]
                    ]
                    add(Difference(*where, bad, had, derived, kind="evidence"))
                elif cid in texts and texts[cid][1] != "\n".join(derived):
                    k, text = texts[cid]
                    field = [f"messages[{k}].content"]
                    add(
                        Difference(
                            *where, field, text, "\n".join(derived), kind="message"
                        )
                    )
    return report
