"""Tool registry: built-in tools plus third-party plugins by entry point.

A plugin distribution declares, in its packaging metadata::

    [project.entry-points."agenticrec.tools"]
    my_tools = "my_package.tools:TOOLS"

The object an entry point names may be a LangChain ``BaseTool``, a list of
them, or a zero-argument callable returning either. Each tool must carry a
pydantic ``args_schema`` (it is what an LLM reads) and a name no other tool
uses; otherwise :class:`~agenticrec.errors.PluginError` names the plugin.
Set ``AGENTICREC_DISABLE_PLUGIN_AUTOLOAD=1`` to skip entry points (built-ins
still load), as pytest does with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``.

A tool reaches a graph's agents when it says so in its LangChain ``metadata``
under the ``"agenticrec"`` key (see :class:`ToolDeclaration`, and
``docs/plugins.md``)::

    metadata={"agenticrec": {"graphs": ["teacher"], "signal": "genre_affinity",
                             "weight": 0.5}}

``signal`` names the per-candidate score the tool returns (the result shape
of the teacher's own tools: ``{"signal": name, "scores": [[item, score],
...]}``); the teacher's planner then offers it as an analysis and the rule
ranker blends it with ``weight``. :func:`signal_tool` builds such a tool from
a plain function. A malformed declaration raises
:class:`~agenticrec.errors.PluginError` naming the plugin.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Annotated, Any

from langchain_core.tools import BaseTool, InjectedToolArg, StructuredTool
from pydantic import BaseModel, Field, create_model

from agenticrec.errors import PluginError

__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "METADATA_KEY",
    "ToolDeclaration",
    "ToolInfo",
    "ToolRegistry",
    "declaration",
    "default_registry",
    "load_tools",
    "signal_tool",
]

ENTRY_POINT_GROUP = "agenticrec.tools"
DISABLE_ENV = "AGENTICREC_DISABLE_PLUGIN_AUTOLOAD"
METADATA_KEY = "agenticrec"
"""The key of a tool's LangChain ``metadata`` that holds its declaration."""

_SIGNAL_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_WEIGHT = 10.0


@dataclass(frozen=True)
class ToolDeclaration:
    """Where a tool is offered and what it returns, from
    ``tool.metadata["agenticrec"]``.

    Attributes:
        graphs: the graphs whose agents are offered the tool (``"teacher"``).
        signal: the per-candidate signal the tool returns (lowercase
            identifier, at most 40 chars); ``None`` for a tool that returns
            other evidence. The result must then be
            ``{"signal": signal, "scores": [[item, score], ...], ...}`` with
            one pair per candidate, and the tool must take ``user`` and
            ``candidates`` arguments.
        weight: the rule ranker's default blend weight for the signal, in
            ``[0, 10]`` (the built-in signals use 0.05 to 1.0; each signal is
            divided by its maximum over the candidates first).
    """

    graphs: tuple[str, ...]
    signal: str | None = None
    weight: float = 0.0


def declaration(tool: BaseTool) -> ToolDeclaration | None:
    """The tool's validated declaration; ``None`` when it declares none.

    Raises:
        ValueError: the declaration is malformed (the registry re-raises it as
            :class:`PluginError` naming the plugin).
    """
    raw = (tool.metadata or {}).get(METADATA_KEY)
    if raw is None:
        return None
    where = f"tool {tool.name!r}: metadata[{METADATA_KEY!r}]"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a dict, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"graphs", "signal", "weight"})
    if unknown:
        raise ValueError(
            f"{where} has unknown keys {unknown}; expected graphs, signal, weight"
        )
    graphs = raw.get("graphs", ["teacher"] if "signal" in raw else None)
    if (
        not isinstance(graphs, list | tuple)
        or not graphs
        or not all(isinstance(g, str) and g for g in graphs)
    ):
        raise ValueError(f"{where}.graphs must be a non-empty list of graph names")
    signal = raw.get("signal")
    if signal is None:
        if "weight" in raw:
            raise ValueError(f"{where}.weight needs a signal to weigh")
        return ToolDeclaration(tuple(graphs))
    if not isinstance(signal, str) or not _SIGNAL_NAME.fullmatch(signal):
        raise ValueError(
            f"{where}.signal={signal!r}: expected a lowercase identifier of at "
            "most 40 chars, e.g. 'genre_affinity'"
        )
    weight = raw.get("weight")
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or not 0.0 <= weight <= MAX_WEIGHT
    ):
        raise ValueError(
            f"{where}.weight={weight!r}: expected a number in [0, {MAX_WEIGHT:g}] "
            "(the rule ranker's blend weight of the signal)"
        )
    fields = set(tool.tool_call_schema.model_fields)
    missing = sorted({"user", "candidates"} - fields)
    if missing:
        raise ValueError(
            f"tool {tool.name!r} declares signal {signal!r} but takes no "
            f"{', '.join(missing)} argument(s); a signal tool scores a user's "
            "candidates"
        )
    return ToolDeclaration(tuple(graphs), signal, float(weight))


@dataclass(frozen=True)
class ToolInfo:
    """A registered tool and where it came from (``builtin:<module>`` or
    ``plugin:<entry point>``)."""

    tool: BaseTool
    origin: str
    declaration: ToolDeclaration | None = None


def _as_tools(obj: object, origin: str) -> list[BaseTool]:
    if callable(obj) and not isinstance(obj, BaseTool):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001 - reported with the plugin name
            raise PluginError(f"factory raised {exc!r}", plugin=origin) from exc
    items = [obj] if isinstance(obj, BaseTool) else obj
    if not isinstance(items, Iterable) or isinstance(items, str | bytes):
        raise PluginError(
            f"expected a BaseTool or a list of them, got {type(obj).__name__}",
            plugin=origin,
        )
    tools = list(items)
    for t in tools:
        if not isinstance(t, BaseTool):
            raise PluginError(f"{t!r} is not a langchain_core BaseTool", plugin=origin)
        schema = t.args_schema
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise PluginError(
                f"tool {t.name!r} has no pydantic args_schema; declare its "
                "arguments so agents can call it",
                plugin=origin,
            )
        if not (t.description or "").strip():
            raise PluginError(f"tool {t.name!r} has no description", plugin=origin)
        try:
            declaration(t)
        except ValueError as exc:
            raise PluginError(str(exc), plugin=origin) from None
    return tools


class ToolRegistry:
    """Name -> tool, with the origin of each, refusing clashes."""

    def __init__(self) -> None:
        self._tools: dict[str, ToolInfo] = {}

    def add(self, tool: BaseTool | Iterable[BaseTool], *, origin: str) -> None:
        """Register tools from ``origin``; a duplicate name raises."""
        for t in _as_tools(tool, origin):
            if t.name in self._tools:
                other = self._tools[t.name].origin
                raise PluginError(
                    f"tool name {t.name!r} clashes with the tool from {other}",
                    plugin=origin,
                )
            self._tools[t.name] = ToolInfo(t, origin, declaration(t))

    def load_builtins(self) -> None:
        from agenticrec.tools import BUILTIN_TOOL_MODULES

        for mod_name in BUILTIN_TOOL_MODULES:
            mod = importlib.import_module(mod_name)
            self.add(getattr(mod, "TOOLS", []), origin=f"builtin:{mod_name}")

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        eps: Iterable[EntryPoint] = entry_points(group=group)
        for ep in sorted(eps, key=lambda e: e.name):
            origin = f"plugin:{ep.name} = {ep.value}"
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - import errors of any kind
                raise PluginError(f"cannot load: {exc!r}", plugin=origin) from exc
            self.add(obj, origin=origin)

    def __getitem__(self, name: str) -> BaseTool:
        try:
            return self._tools[name].tool
        except KeyError:
            raise KeyError(
                f"no tool named {name!r}; registered: {sorted(self._tools)}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def infos(self) -> list[ToolInfo]:
        return [self._tools[k] for k in sorted(self._tools)]

    def tools(self) -> list[BaseTool]:
        return [i.tool for i in self.infos()]

    def for_graph(self, graph: str) -> list[ToolInfo]:
        """The tools whose declaration offers them to ``graph``, by name."""
        return [
            i for i in self.infos() if i.declaration and graph in i.declaration.graphs
        ]


def load_tools(*, builtins: bool = True, plugins: bool | None = None) -> ToolRegistry:
    """Build a registry of built-in tools and (unless disabled) plugins.

    ``plugins=None`` follows the ``AGENTICREC_DISABLE_PLUGIN_AUTOLOAD`` variable.
    """
    reg = ToolRegistry()
    if builtins:
        reg.load_builtins()
    if plugins is None:
        plugins = _autoload()
    if plugins:
        reg.load_entry_points()
    return reg


def _autoload() -> bool:
    return os.environ.get(DISABLE_ENV, "") in ("", "0", "false", "False")


@functools.lru_cache(maxsize=2)
def _cached(plugins: bool) -> ToolRegistry:
    return load_tools(plugins=plugins)


def default_registry() -> ToolRegistry:
    """The process's registry (built-ins, plus plugins unless
    ``AGENTICREC_DISABLE_PLUGIN_AUTOLOAD`` is set), loaded once per setting of
    that variable. Graphs, replay and export read their tools from it; call
    ``default_registry.cache_clear()`` after installing a plugin in a running
    process."""
    return _cached(_autoload())


default_registry.cache_clear = _cached.cache_clear  # type: ignore[attr-defined]


def signal_tool(
    signal: str, *, weight: float, graphs: Iterable[str] = ("teacher",)
) -> Callable[[Callable[..., Any]], BaseTool]:
    """Make a per-candidate signal tool from ``fn(index, user, candidates,
    **params)``.

    ``fn`` returns one score per candidate (a sequence in candidate order, or
    a mapping ``item -> score``; missing items score 0). ``index`` is the
    graph's :class:`~agenticrec.tools.teacher_tools.EvidenceIndex` (the
    visible interactions, titles and categories), injected by the graph and
    hidden from the model; every other parameter needs a type annotation and
    becomes an argument of the tool's schema. The first docstring paragraph
    is the description the model reads.

    The tool returns the teacher tools' result shape,
    ``{"signal", "user", "scores": [[item, score], ...]}``, scores rounded to
    4 digits, and carries the declaration (see :class:`ToolDeclaration`).
    """

    def wrap(fn: Callable[..., Any]) -> BaseTool:
        params = list(inspect.signature(fn).parameters.values())
        if [p.name for p in params[:3]] != ["index", "user", "candidates"]:
            raise ValueError(
                f"signal tool {fn.__name__!r}: the first parameters must be "
                "(index, user, candidates)"
            )
        spec: dict[str, Any] = {
            "index": (Annotated[Any, InjectedToolArg], None),
            "user": (int, Field(description="Compact user id.")),
            "candidates": (list[int], Field(description="Candidate item ids.")),
        }
        for p in params[3:]:
            if p.annotation is inspect.Parameter.empty:
                raise ValueError(f"signal tool {fn.__name__!r}: annotate {p.name!r}")
            default = ... if p.default is inspect.Parameter.empty else p.default
            spec[p.name] = (p.annotation, default)
        schema = create_model(f"{fn.__name__}_args", **spec)

        def run(index: Any = None, **kw: Any) -> dict[str, Any]:
            user, cands = int(kw["user"]), [int(c) for c in kw["candidates"]]
            if index is not None and hasattr(index, "check_items"):
                index.check_user(user)
                index.check_items(cands)
            extra = {k: v for k, v in kw.items() if k not in ("user", "candidates")}
            out = fn(index, user, cands, **extra)
            if isinstance(out, Mapping):
                scores = [float(out.get(c, 0.0)) for c in cands]
            else:
                scores = [float(v) for v in out]
            if len(scores) != len(cands):
                raise ValueError(
                    f"{fn.__name__} returned {len(scores)} scores for "
                    f"{len(cands)} candidates"
                )
            return {
                "signal": signal,
                "user": user,
                "scores": [
                    [c, round(v, 4)] for c, v in zip(cands, scores, strict=True)
                ],
            }

        doc = inspect.getdoc(fn) or ""
        return StructuredTool(
            name=fn.__name__,
            description=doc.split("\n\n")[0].strip(),
            args_schema=schema,
            func=run,
            metadata={
                METADATA_KEY: {
                    "graphs": list(graphs),
                    "signal": signal,
                    "weight": weight,
                }
            },
        )

    return wrap
