"""The graph protocol: what a graph module declares so that the one runner,
the CLI, replay, export, ``agents list`` and LangGraph Studio can use it.

A distribution adds a graph the way it adds a tool, by entry point::

    [project.entry-points."agenticrec.graphs"]
    my_graph = "my_package.graph:spec"

The entry point names a :class:`GraphSpec` (or a zero-argument callable
returning one). agenticrec's own four graphs are declared the same way, so
the kernel never names a graph. ``AGENTICREC_DISABLE_PLUGIN_AUTOLOAD=1``
skips third-party entry points (agenticrec's own still load).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict

from agenticrec.context import Context
from agenticrec.errors import ConfigError, PluginError
from agenticrec.plugins import DISABLE_ENV

__all__ = [
    "ENTRY_POINT_GROUP",
    "GraphSpec",
    "Report",
    "ReportPart",
    "RunResult",
    "get_graph",
    "load_graphs",
]

ENTRY_POINT_GROUP = "agenticrec.graphs"


class ReportPart(BaseModel):
    """A typed part of a report; ``part["key"]`` reads a field like the JSON
    object it prints."""

    model_config = ConfigDict(extra="forbid")

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: str) -> bool:
        return key in type(self).model_fields

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


class Report(ReportPart):
    """Base of every graph's typed report; the JSON of ``--json``."""

    graph: str
    status: str = "done"
    """``done``, or ``awaiting_input`` while paused at an ``interrupt``."""
    seed: int
    thread_id: str | None = None
    cached: bool = False
    """True when a finished checkpointed thread returned its stored report."""
    pending: Any = None
    """The pending interrupt's value while ``status == "awaiting_input"``."""
    timings: dict[str, float] = {}
    shards: list[dict[str, Any]] | None = None
    """With ``backend="ray"``: each shard's users, attempts (worker pids),
    tasks its last attempt found finished in its checkpoint (``resumed``),
    node, local JAX devices and seconds (:mod:`agenticrec.distributed`)."""

    def summary(self) -> str:
        """One line of what the run found (``agenticrec demo``)."""
        return f"{self.graph}: {self.status}"


@dataclass(frozen=True)
class RunResult:
    """What the runner hands a spec's ``report`` builder."""

    context: Any
    state: Mapping[str, Any]
    thread_id: str | None
    status: str
    pending: Any
    timings: dict[str, float]


@dataclass(frozen=True)
class GraphSpec:
    """One graph, as the runner and the CLI see it.

    Attributes:
        name: ``agenticrec run <name>``; also the trajectories' ``graph``.
        description: first line of the CLI help.
        module: the module holding ``build_graph`` and a compiled ``graph``
            (what ``langgraph.json`` points at).
        context: the context class; its fields are the CLI options.
        make_input: ``ctx -> input`` of the graph (the users to process, ...).
        report: ``RunResult -> Report`` (typed, JSON-serialisable).
        report_type: the report class (a stored report is re-read with it).
        dataset: ``ctx -> {"name", "fingerprint", ...}`` of the data the run
            reads; part of a thread's binding.
        progress: ``(ctx, input, finished tasks per node, last state) ->
            (done, total)`` for the progress bar.
        recursion_limit: ``(ctx, input) -> int``.
        answers: interrupt answers offered as CLI flags, e.g.
            ``{"approve": {"approve": True}}`` becomes ``--approve``.
        demo: context overrides of the short run of ``agenticrec demo``.
        replay_tools: ``RunRecord -> {name: tool}`` that replay re-executes.
        tool_schemas: ``() -> [OpenAI tool schema]`` for exported data.
        evidence: ``(tool name, result) -> [sentence]``: how the graph turns a
            tool result into the text its agents read; replay re-derives it.
        prepare: ``(ctx, checkpointed) -> None`` run once before the graph
            (compile caches, load a model).
        requires: what a run needs beyond the package and the data (e.g. a
            trained model), in words; ``agenticrec demo`` skips such graphs
            and says why.
        shard_key: the input list a run may split across Ray workers
            (``"users"``); ``None``: the graph cannot be sharded.
        merge: ``(ctx, whole input, final state of each shard in order) ->
            the state of the whole run``, from which ``report`` recomputes
            every metric over the union of the shards' per-user results
            (never an average of the shards' averages).
        item_tasks: each ``shard_key`` item is its own task of one step (a
            ``Send`` per user, as in the teacher); a Ray shard then runs its
            items in checkpointed slices of ``concurrency``.
        collective: the graph's nodes share batch-level values across a Ray
            run's shards through ``ctx.collective``
            (:mod:`agenticrec.collective`); the Ray backend then starts one
            rendezvous actor for the run.
    """

    name: str
    description: str
    module: str
    context: type[Context]
    make_input: Callable[[Any], dict[str, Any]]
    report: Callable[[RunResult], Report]
    report_type: type[Report]
    dataset: Callable[[Any], Mapping[str, Any]]
    progress: Callable[..., tuple[int, int] | None] | None = None
    recursion_limit: Callable[[Any, Mapping[str, Any]], int] | None = None
    answers: Mapping[str, Any] = field(default_factory=dict)
    demo: Mapping[str, Any] = field(default_factory=dict)
    replay_tools: Callable[[Any], Mapping[str, Any]] | None = None
    tool_schemas: Callable[[], list[dict[str, Any]]] | None = None
    evidence: Callable[[str, Any], list[str]] | None = None
    prepare: Callable[[Any, bool], None] | None = None
    requires: str | None = None
    shard_key: str | None = None
    merge: Callable[[Any, Mapping[str, Any], list[Mapping[str, Any]]], dict] | None = (
        None
    )
    item_tasks: bool = False
    collective: bool = False

    def build_graph(self, **kw: Any) -> Any:
        return importlib.import_module(self.module).build_graph(**kw)

    @property
    def graph(self) -> Any:
        """The module-level compiled graph (no checkpointer)."""
        return importlib.import_module(self.module).graph


_GRAPHS: dict[str, GraphSpec] | None = None


def load_graphs(*, plugins: bool | None = None) -> dict[str, GraphSpec]:
    """Every registered graph by name (entry-point group ``agenticrec.graphs``).

    Raises:
        PluginError: an entry point fails to import, names no GraphSpec, or
            reuses another graph's name.
    """
    global _GRAPHS
    if plugins is None and _GRAPHS is not None:
        return _GRAPHS
    third_party = (
        os.environ.get(DISABLE_ENV, "") in ("", "0") if plugins is None else plugins
    )
    out: dict[str, GraphSpec] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        own = ep.value.startswith("agenticrec.")
        if not own and not third_party:
            continue
        origin = f"{ep.name} = {ep.value}"
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, GraphSpec):
                obj = obj()
        except Exception as exc:  # noqa: BLE001 - reported with the plugin name
            raise PluginError(f"import failed: {exc!r}", plugin=origin) from exc
        if not isinstance(obj, GraphSpec):
            raise PluginError(
                f"expected an agenticrec.graphspec.GraphSpec, got {type(obj).__name__}",
                plugin=origin,
            )
        if obj.name in out:
            raise PluginError(
                f"graph name {obj.name!r} is already registered", plugin=origin
            )
        out[obj.name] = obj
    if plugins is None:
        _GRAPHS = out
    return out


def get_graph(name: str) -> GraphSpec:
    """The registered graph ``name``; a clear error listing the known ones."""
    graphs = load_graphs()
    if name not in graphs:
        raise ConfigError(
            f"unknown graph {name!r}: registered graphs are "
            f"{', '.join(sorted(graphs)) or 'none'} (entry-point group "
            f"{ENTRY_POINT_GROUP!r}; reinstall agenticrec if its own are missing)"
        )
    return graphs[name]
