"""Replay: re-execute every recorded tool call and report what changed.

A trajectory step of a tool-executing node carries ``tool_results``: the tool
name, its arguments and the result it returned. Replaying calls each tool
again with the same arguments on data rebuilt from the run header (dataset,
protocol, seed) and compares the JSON results exactly, so a changed kernel,
dataset or tool shows up as the precise run, step and field that differ.
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
    """One tool call whose replayed result differs from the recorded one."""

    run_id: str
    step_id: str
    call_id: str
    tool: str
    fields: list[str]
    recorded: Any
    replayed: Any


@dataclass
class ReplayReport:
    runs: int = 0
    calls: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "calls": self.calls,
            "identical": self.calls - len(self.differences),
            "differences": [
                {
                    "run_id": d.run_id,
                    "step_id": d.step_id,
                    "call_id": d.call_id,
                    "tool": d.tool,
                    "fields": d.fields,
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


def replay_file(
    path: str | Path, *, resolver: ToolResolver = graph_tools
) -> ReplayReport:
    """Re-execute each recorded tool call of every run in ``path``."""
    report = ReplayReport()
    cache: dict[str, Mapping[str, BaseTool]] = {}
    for run_id, traj in read_trajectories(path).items():
        report.runs += 1
        key = json.dumps(
            [traj.header.graph, traj.header.context, traj.header.dataset],
            sort_keys=True,
            default=str,
        )
        if key not in cache:
            cache[key] = resolver(traj.header)
        tools = cache[key]
        for step in traj.steps:
            for call in step.tool_results:
                report.calls += 1
                tool = tools.get(call["name"])
                try:
                    if tool is None:
                        raise KeyError(f"no tool {call['name']!r}")
                    again = _norm(tool.invoke(call["args"]))
                except Exception as exc:  # noqa: BLE001 - a failed replay is a diff
                    again = {"error": f"{type(exc).__name__}: {exc}"}
                recorded = _norm(call.get("result"))
                if again != recorded:
                    report.differences.append(
                        Difference(
                            run_id,
                            step.step_id,
                            call.get("id", ""),
                            call["name"],
                            _diff_fields(recorded, again),
                            recorded,
                            again,
                        )
                    )
    return report
