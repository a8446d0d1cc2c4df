"""Tool plugins: discovery by entry point, validation, opt-out."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from agenticrec.errors import PluginError
from agenticrec.plugins import DISABLE_ENV, ToolRegistry, load_tools

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Install plugin distributions into a temp dir on sys.path."""

    def install(kind: str, entry_points: str | None = None) -> Path:
        site = tmp_path / f"site-{kind}"
        shutil.copytree(PLUGINS / kind, site)
        if entry_points is not None:
            (next(site.glob("*.dist-info")) / "entry_points.txt").write_text(
                entry_points
            )
        monkeypatch.syspath_prepend(str(site))
        return site

    yield install
    for mod in ("agenticrec_demo_plugin", "agenticrec_bad_plugin"):
        sys.modules.pop(mod, None)


def test_installed_plugin_is_discovered_and_callable(installed):
    installed("good")
    reg = load_tools(plugins=True)
    tool = reg["count_distinct_items"]
    assert tool.invoke({"items": [1, 2, 2, 3]}) == {"distinct": 3}
    origin = {i.tool.name: i.origin for i in reg.infos()}["count_distinct_items"]
    assert origin.startswith("plugin:demo")


def test_autoload_can_be_switched_off(installed, monkeypatch):
    installed("good")
    monkeypatch.setenv(DISABLE_ENV, "1")
    assert "count_distinct_items" not in load_tools()


def test_name_clash_names_both_plugins(installed):
    installed("good")
    installed("bad", "[agenticrec.tools]\nclash = agenticrec_bad_plugin:CLASH\n")
    with pytest.raises(PluginError, match="count_distinct_items.*clashes") as err:
        load_tools(plugins=True)
    assert "clash = agenticrec_bad_plugin" in str(err.value)
    assert "demo = agenticrec_demo_plugin" in str(err.value)


def test_tool_without_schema_is_rejected_with_plugin_name(installed):
    installed("bad", "[agenticrec.tools]\nnoschema = agenticrec_bad_plugin:NO_SCHEMA\n")
    with pytest.raises(PluginError, match="noschema.*no pydantic args_schema"):
        load_tools(plugins=True)


def test_non_tool_object_is_rejected(installed):
    installed("bad", "[agenticrec.tools]\njunk = agenticrec_bad_plugin:NOT_A_TOOL\n")
    with pytest.raises(PluginError, match="junk.*not a langchain_core BaseTool"):
        load_tools(plugins=True)


def test_unimportable_plugin_is_reported(installed):
    installed("bad", "[agenticrec.tools]\nghost = no_such_module_xyz:TOOLS\n")
    with pytest.raises(PluginError, match="ghost.*cannot load"):
        load_tools(plugins=True)


def test_builtin_tools_all_have_schemas_and_unique_names():
    reg = ToolRegistry()
    reg.load_builtins()
    names = [t.name for t in reg.tools()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    "attr, match",
    [
        ("BAD_WEIGHT", r"bad_weight.*weight=-1: expected a number in \[0, 10\]"),
        ("BAD_SIGNAL_NAME", r"bad_name.*signal='Genre Affinity'.*lowercase"),
        ("UNKNOWN_KEY", r"bad_key.*unknown keys \['wieght'\]"),
    ],
)
def test_bad_signal_declaration_is_rejected_with_plugin_name(installed, attr, match):
    installed("bad", f"[agenticrec.tools]\nsig = agenticrec_bad_plugin:{attr}\n")
    with pytest.raises(PluginError, match=match) as err:
        load_tools(plugins=True)
    assert err.value.plugin == f"plugin:sig = agenticrec_bad_plugin:{attr}"


def test_signal_tool_needs_user_and_candidates_arguments():
    from langchain_core.tools import StructuredTool
    from pydantic import BaseModel

    class Args(BaseModel):
        items: list[int]

    tool = StructuredTool.from_function(
        lambda items: {},
        name="no_candidates",
        description="Scores items, not a user's candidates.",
        args_schema=Args,
        metadata={"agenticrec": {"signal": "age", "weight": 0.1}},
    )
    with pytest.raises(PluginError, match="no_candidates.*candidates, user"):
        ToolRegistry().add(tool, origin="test")


def test_signal_tool_helper_returns_the_teacher_result_shape():
    from agenticrec.plugins import declaration, signal_tool

    @signal_tool("parity", weight=0.2)
    def parity(index, user: int, candidates: list[int], bonus: float = 0.0):
        """Even items score 1."""
        return [float(c % 2 == 0) + bonus for c in candidates]

    assert declaration(parity).signal == "parity"
    assert set(parity.tool_call_schema.model_fields) == {"user", "candidates", "bonus"}
    out = parity.invoke({"user": 3, "candidates": [4, 5], "bonus": 0.5})
    assert out == {"signal": "parity", "user": 3, "scores": [[4, 1.5], [5, 0.5]]}
