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
