"""A real third-party tool plugin, discovered through its entry_points.txt."""

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field


class _Args(BaseModel):
    items: list[int] = Field(description="Item ids.")


def _count_distinct(items: list[int]) -> dict:
    return {"distinct": len(set(items))}


count_distinct = StructuredTool.from_function(
    _count_distinct,
    name="count_distinct_items",
    description="Count the distinct item ids in a list.",
    args_schema=_Args,
)

TOOLS = [count_distinct]
