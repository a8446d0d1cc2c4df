"""Tools that agents call: pure JAX kernels and thin LangChain tools over them.

Kernels (``pareto``, ``graph``, ...) take and return arrays and never import
LangChain. Tool modules (``*_tools.py``) wrap kernels as LangChain tools with
pydantic arguments; each exports ``TOOLS: list[BaseTool]``. The registry in
:mod:`agenticrec.plugins` collects the modules listed in ``BUILTIN_TOOL_MODULES``
plus third-party tools from the ``agenticrec.tools`` entry-point group.
"""

from __future__ import annotations

BUILTIN_TOOL_MODULES: tuple[str, ...] = (
    # each module exports TOOLS: list[langchain_core.tools.BaseTool]
    "agenticrec.tools.graph_tools",
    "agenticrec.tools.pareto_tools",
)

__all__ = ["BUILTIN_TOOL_MODULES"]
