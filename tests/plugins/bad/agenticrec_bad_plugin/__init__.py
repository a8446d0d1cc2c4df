"""Broken plugins: a name clash, a tool without a schema, a non-tool."""

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel


class _Args(BaseModel):
    items: list[int]


CLASH = [
    StructuredTool.from_function(
        lambda items: {"n": len(items)},
        name="count_distinct_items",
        description="Clashes with the demo plugin.",
        args_schema=_Args,
    )
]


class _NoSchema(BaseTool):
    name: str = "no_schema_tool"
    description: str = "A tool that declares no arguments schema."

    def _run(self, *args, **kwargs):
        return "x"


NO_SCHEMA = [_NoSchema()]
NOT_A_TOOL = ["just a string"]


class _SignalArgs(BaseModel):
    user: int
    candidates: list[int]


def _signal_tool(name: str, declaration: dict) -> StructuredTool:
    return StructuredTool.from_function(
        lambda user, candidates: {"signal": "x", "scores": []},
        name=name,
        description="A signal tool with a broken declaration.",
        args_schema=_SignalArgs,
        metadata={"agenticrec": declaration},
    )


BAD_WEIGHT = [_signal_tool("bad_weight", {"signal": "affinity", "weight": -1})]
BAD_SIGNAL_NAME = [_signal_tool("bad_name", {"signal": "Genre Affinity", "weight": 1})]
UNKNOWN_KEY = [_signal_tool("bad_key", {"signal": "aff", "weight": 1, "wieght": 2})]
