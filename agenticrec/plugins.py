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
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from langchain_core.tools import BaseTool
from pydantic import BaseModel

from agenticrec.errors import PluginError

__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "ToolInfo",
    "ToolRegistry",
    "load_tools",
]

ENTRY_POINT_GROUP = "agenticrec.tools"
DISABLE_ENV = "AGENTICREC_DISABLE_PLUGIN_AUTOLOAD"


@dataclass(frozen=True)
class ToolInfo:
    """A registered tool and where it came from (``builtin:<module>`` or
    ``plugin:<entry point>``)."""

    tool: BaseTool
    origin: str


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
            self._tools[t.name] = ToolInfo(t, origin)

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


def load_tools(*, builtins: bool = True, plugins: bool | None = None) -> ToolRegistry:
    """Build a registry of built-in tools and (unless disabled) plugins.

    ``plugins=None`` follows the ``AGENTICREC_DISABLE_PLUGIN_AUTOLOAD`` variable.
    """
    reg = ToolRegistry()
    if builtins:
        reg.load_builtins()
    if plugins is None:
        plugins = os.environ.get(DISABLE_ENV, "") in ("", "0", "false", "False")
    if plugins:
        reg.load_entry_points()
    return reg
