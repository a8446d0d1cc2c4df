"""Run context: the settings every graph and the CLI share.

Fields fall back to environment variables so that the same code runs from
Python, the CLI and LangGraph Studio. No LLM is configured unless
``AGENTICREC_LLM_BASE_URL`` or ``AGENTICREC_LLM_MODEL`` is set: an ambient
``OPENAI_API_KEY`` alone never makes a run call a paid endpoint.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from agenticrec.errors import ConfigError

__all__ = ["Context", "StructuredMethod"]

StructuredMethod = Literal["json_mode", "function_calling", "json_schema", "auto"]


def _env(name: str, default: Any = None) -> Any:
    value = os.environ.get(name)
    return default if value in (None, "") else value


@dataclass(kw_only=True)
class Context:
    """Settings of one run (graph invocation or CLI command).

    Every field can be given explicitly; otherwise its ``env`` variable (named
    in the field metadata) is read when the context is created.
    """

    llm_base_url: str | None = field(
        default=None,
        metadata={
            "env": "AGENTICREC_LLM_BASE_URL",
            "description": "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8011/v1.",
        },
    )
    llm_model: str | None = field(
        default=None,
        metadata={"env": "AGENTICREC_LLM_MODEL", "description": "Model name."},
    )
    llm_api_key: str | None = field(
        default=None,
        metadata={
            "env": "AGENTICREC_LLM_API_KEY",
            "description": "API key; local servers accept any string.",
        },
        repr=False,
    )
    llm_timeout_s: float = field(
        default=30.0,
        metadata={
            "env": "AGENTICREC_LLM_TIMEOUT_S",
            "description": "Wall-clock limit of one model call, seconds.",
        },
    )
    llm_max_retries: int = field(
        default=2,
        metadata={
            "env": "AGENTICREC_LLM_MAX_RETRIES",
            "description": "Extra attempts after an invalid/late/failed reply "
            "before the rule policy decides.",
        },
    )
    llm_temperature: float = field(
        default=0.1,
        metadata={"env": "AGENTICREC_LLM_TEMPERATURE", "description": "Sampling."},
    )
    structured_output: StructuredMethod = field(
        default="json_mode",
        metadata={
            "env": "AGENTICREC_LLM_STRUCTURED_OUTPUT",
            "description": "How replies are constrained: json_mode (response_format "
            "json_object), function_calling (forced tool call), json_schema, or "
            "auto (probe the endpoint once and pick what works).",
        },
    )
    seed: int = field(
        default=0, metadata={"env": "AGENTICREC_SEED", "description": "Seed."}
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            env = f.metadata.get("env")
            if env is None or getattr(self, f.name) != f.default:
                continue
            raw = _env(env)
            if raw is None:
                continue
            try:
                kind = type(f.default) if f.default is not None else str
                value = kind(raw) if kind in (int, float) else raw
            except ValueError as exc:
                raise ConfigError(
                    f"environment variable {env}={raw!r} is not a valid "
                    f"{type(f.default).__name__} for Context.{f.name}"
                ) from exc
            setattr(self, f.name, value)
        if self.structured_output not in (
            "json_mode",
            "function_calling",
            "json_schema",
            "auto",
        ):
            raise ConfigError(
                f"Context.structured_output={self.structured_output!r}: expected "
                "json_mode, function_calling, json_schema or auto"
            )
        if self.llm_timeout_s <= 0:
            raise ConfigError("Context.llm_timeout_s must be > 0")
        if self.llm_max_retries < 0:
            raise ConfigError("Context.llm_max_retries must be >= 0")

    @property
    def llm_configured(self) -> bool:
        """True when an endpoint or model was named explicitly."""
        return bool(self.llm_base_url or self.llm_model)

    def public_dict(self) -> dict[str, Any]:
        """The context without secrets, for reports and trajectories."""
        d = asdict(self)
        d.pop("llm_api_key", None)
        return d
