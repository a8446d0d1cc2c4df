"""LangChain tools over the multi-stage pipeline, bound to its pipelines.

:func:`make_pipeline_tools` binds ``pipeline_knobs``, ``evaluate_offline``
and (given the online pipeline) ``ab_test`` to the pipelines of one tuning
task. Configs are written as dotted overrides of the default, e.g.
``{"ranking.w_cf": 1.5, "rerank.mmr_lambda": 0.8}``; an invalid knob becomes
a ``ToolException`` that names it, which the model reads. There are no
module-level tools (they need bound data), so this module is not in
``BUILTIN_TOOL_MODULES``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from agenticrec.errors import ConfigError
from agenticrec.tools.abtest import DEFAULT_GUARDRAILS, ab_test

from .pipeline import PER_USER_METRICS, Pipeline, PipelineConfig

__all__ = ["TOOLS", "AbTestArgs", "EvaluateArgs", "KnobsArgs", "make_pipeline_tools"]

TOOLS: list[BaseTool] = []
"""No module-level tools: pipeline tools are bound by :func:`make_pipeline_tools`."""

Overrides = dict[str, float | int | str]


class KnobsArgs(BaseModel):
    """No arguments."""


class EvaluateArgs(BaseModel):
    overrides: Overrides = Field(
        default_factory=dict,
        description=(
            "Dotted knob overrides of the default config, e.g. "
            '{"ranking.w_cf": 1.5, "rerank.mmr_lambda": 0.8}; {} is the default. '
            "recall.quota.* must still sum to 1."
        ),
    )


class AbTestArgs(BaseModel):
    control: Overrides = Field(
        default_factory=dict, description="Overrides of the control arm's config."
    )
    treatment: Overrides = Field(description="Overrides of the treatment config.")
    seed: int = Field(0, description="Assignment and bootstrap seed.")


def _config(overrides: Overrides) -> PipelineConfig:
    try:
        return PipelineConfig.from_flat(overrides)
    except ConfigError as exc:
        raise ToolException(str(exc)) from None


def _r(x: Any, digits: int = 5) -> Any:
    return round(float(x), digits) if isinstance(x, float) else x


def make_pipeline_tools(
    offline: Pipeline, online: Pipeline | None = None
) -> list[BaseTool]:
    """Tools bound to a tuning task's pipelines.

    Args:
        offline: the pipeline ``evaluate_offline`` scores (offline users).
        online: the pipeline ``ab_test`` runs on; without it there is no
            ``ab_test`` tool.
    """

    def knobs() -> dict[str, Any]:
        return {
            "knobs": PipelineConfig.describe(),
            "metrics": list(PER_USER_METRICS) + ["coverage@10", "share.<channel>"],
            "pipeline": offline.describe(),
        }

    def evaluate(overrides: Overrides | None = None) -> dict[str, Any]:
        cfg = _config(overrides or {})
        ev = offline.evaluate(cfg)
        return {
            "metrics": ev.summary(),
            "changed": {k: v for k, (_, v) in PipelineConfig().diff(cfg).items()},
        }

    tools: list[BaseTool] = [
        StructuredTool.from_function(
            func=knobs,
            name="pipeline_knobs",
            description=(
                "Describe the tunable multi-stage recommender: every knob of "
                "recall, prerank, ranking and rerank with its bounds, kind, "
                "default and meaning, the metrics reported, and pipeline sizes. "
                "Call it before proposing configurations."
            ),
            args_schema=KnobsArgs,
            handle_tool_error=True,
        ),
        StructuredTool.from_function(
            func=evaluate,
            name="evaluate_offline",
            description=(
                "Evaluate one configuration offline on the offline users "
                "(validation items, never the A/B users). Input: overrides, "
                "dotted knob values replacing the default's. Returns JSON "
                "{metrics: {NDCG@10, HR@10, ILD@10, ILD_embedding@10, "
                "novelty@10, coverage@10, recall_hit, "
                "prerank_hit, share.<channel>, users}, changed: {knob: value}}. "
                "Offline differences below ~10% relative are often noise."
            ),
            args_schema=EvaluateArgs,
            handle_tool_error=True,
        ),
    ]
    if online is not None:

        def run_ab(
            treatment: Overrides, control: Overrides | None = None, seed: int = 0
        ) -> dict[str, Any]:
            result = ab_test(
                online, _config(control or {}), _config(treatment), seed=seed
            )
            out = result.model_dump(exclude={"control_config", "treatment_config"})
            for m in out["metrics"].values():
                for k, v in m.items():
                    m[k] = _r(v)
            return out

        tools.append(
            StructuredTool.from_function(
                func=run_ab,
                name="ab_test",
                description=(
                    "Run an online A/B test: online users are split by a seeded "
                    "hash of their ids, control users get the control config and "
                    "treatment users the treatment config (both dotted overrides "
                    "of the default). Returns per-metric means, difference, "
                    "bootstrap CI and Welch p-value, guardrail checks ("
                    f"{', '.join(DEFAULT_GUARDRAILS)} must not drop "
                    "significantly) and decision: treatment, control or "
                    "inconclusive (primary metric NDCG@10, alpha 0.05)."
                ),
                args_schema=AbTestArgs,
                handle_tool_error=True,
            )
        )
    return tools
