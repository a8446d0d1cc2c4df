"""Run context: the settings every graph and the CLI share.

A context is the one declaration of each setting: its type, default,
description, documented range (``ge``/``le``/``choices`` in the field
metadata) and environment variable. The CLI options of ``agenticrec run``
are generated from these fields, and every entry point (CLI, Python,
``langgraph dev``) builds a context, so the ranges are enforced in one place:
:meth:`Context.__post_init__`.

Fields fall back to environment variables so that the same code runs from
Python, the CLI and LangGraph Studio. No LLM is configured unless
``AGENTICREC_LLM_BASE_URL`` or ``AGENTICREC_LLM_MODEL`` is set: an ambient
``OPENAI_API_KEY`` alone never makes a run call a paid endpoint.

Run-scoped dependencies (the policy, the trajectory writer, a graph's
Skillhub client) are not settings: they live in :class:`Services`, built once
per run by the runner (or lazily on first use when a graph is invoked
directly) and reached by nodes through ``runtime.context.services``. What a
caller hands in from Python (a LangChain chat model, a policy per role) is a
:func:`service` field of the context: never a CLI option, never recorded,
never part of a checkpoint's binding::

    ctx = TeacherContext(users=5, model=ChatOpenAI(model="gpt-4o-mini"))
    ctx = TeacherContext(policies={"teacher.ranker": MyPolicy()})
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic.json_schema import SkipJsonSchema

from agenticrec.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from agenticrec.policy import Policy
    from agenticrec.trajectory import TrajectoryWriter

__all__ = ["Context", "Services", "StructuredMethod", "service", "setting"]

StructuredMethod = Literal["json_mode", "function_calling", "json_schema", "auto"]


def _env(name: str, default: Any = None) -> Any:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def setting(
    default: Any,
    description: str,
    *,
    ge: float | None = None,
    le: float | None = None,
    choices: tuple[str, ...] | None = None,
    env: str | None = None,
    cli: tuple[str, ...] | str | None = None,
    binds: bool = True,
    hidden: bool = False,
) -> Any:
    """A context field with its documented range.

    Args:
        ge, le: inclusive bounds of a numeric setting.
        choices: the allowed values of a string setting.
        env: environment variable read when the field keeps its default.
        cli: the CLI flag(s) (default ``--field-name``); ``"--a/--b"`` for a
            boolean pair.
        binds: whether the setting defines a run's result; a checkpointed
            thread refuses to resume under different binding settings.
            Output locations and timeouts do not bind.
        hidden: not offered as a CLI option.
    """
    meta: dict[str, Any] = {"description": description, "binds": binds}
    for key, value in (
        ("ge", ge),
        ("le", le),
        ("choices", choices),
        ("env", env),
        ("cli", cli),
    ):
        if value is not None:
            meta[key] = value
    if hidden:
        meta["hidden"] = True
    return field(default=default, metadata=meta)


def service(default: Any, description: str) -> Any:
    """A context field holding a Python object given by the caller (a chat
    model, policies, tools): hidden from the CLI, left out of
    :meth:`Context.settings` (so of reports, trajectories and checkpoint
    bindings), not compared or printed. ``default`` may be a zero-argument
    factory (``dict``). Annotate the field ``SkipJsonSchema[...]`` so that
    LangGraph Studio's context form leaves it out."""
    meta = {"description": description, "service": True, "binds": False}
    meta["hidden"] = True
    if callable(default):
        return field(default_factory=default, metadata=meta, repr=False, compare=False)
    return field(default=default, metadata=meta, repr=False, compare=False)


class Services:
    """Dependencies of one run, shared by its nodes and closed at its end.

    ``policy`` decides for every role; ``writer`` appends trajectories
    (``None`` without a trajectory file); ``extra`` holds what a graph adds
    (tune's Skillhub client), built by the graph spec's ``services`` hook.
    Thread-safe: per-user fan-out calls these from several threads.
    """

    def __init__(self, ctx: Context) -> None:
        from agenticrec.policy import make_policy

        self.policy: Policy = make_policy(ctx)
        self.writer: TrajectoryWriter | None = None
        trajectories = getattr(ctx, "trajectories", None)
        if trajectories:
            from agenticrec.trajectory import TrajectoryWriter

            self.writer = TrajectoryWriter(trajectories)
        self.extra: dict[str, Any] = {}
        self._closers: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def get(self, name: str, build: Callable[[], Any], close: str | None = None):
        """The run's ``name`` dependency, built once by ``build``."""
        with self._lock:
            if name not in self.extra:
                obj = self.extra[name] = build()
                if close is not None:
                    self._closers.append(getattr(obj, close))
            return self.extra[name]

    def close(self) -> None:
        """Flush and fsync the trajectory file; close what the graph added."""
        if self.writer is not None:
            self.writer.close()
        for c in reversed(self._closers):
            c()
        self._closers.clear()
        self.extra.clear()


@dataclass(kw_only=True)
class Context:
    """Settings of one run (graph invocation or CLI command).

    Every field can be given explicitly; otherwise its ``env`` variable (named
    in the field metadata) is read when the context is created. Out-of-range
    values raise :class:`~agenticrec.errors.ConfigError` naming the setting.
    """

    llm_base_url: str | None = setting(
        None,
        "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8011/v1.",
        env="AGENTICREC_LLM_BASE_URL",
        hidden=True,
    )
    llm_model: str | None = setting(
        None, "Model name.", env="AGENTICREC_LLM_MODEL", hidden=True
    )
    llm_api_key: str | None = field(
        default=None,
        metadata={
            "env": "AGENTICREC_LLM_API_KEY",
            "description": "API key; local servers accept any string.",
            "binds": False,
            "hidden": True,
        },
        repr=False,
    )
    llm_timeout_s: float = setting(
        30.0,
        "Wall-clock limit of one model call, seconds.",
        ge=0.001,
        le=3600,
        env="AGENTICREC_LLM_TIMEOUT_S",
        binds=False,
        hidden=True,
    )
    llm_max_retries: int = setting(
        2,
        "Extra attempts after an invalid/late/failed reply before the rule "
        "policy decides.",
        ge=0,
        le=10,
        env="AGENTICREC_LLM_MAX_RETRIES",
        binds=False,
        hidden=True,
    )
    llm_temperature: float = setting(
        0.1, "Sampling.", ge=0.0, le=2.0, env="AGENTICREC_LLM_TEMPERATURE", hidden=True
    )
    structured_output: StructuredMethod = setting(
        "json_mode",
        "How replies are constrained: json_mode (response_format json_object), "
        "function_calling (forced tool call), json_schema, or auto (probe the "
        "endpoint once and pick what works).",
        choices=("json_mode", "function_calling", "json_schema", "auto"),
        env="AGENTICREC_LLM_STRUCTURED_OUTPUT",
        hidden=True,
    )
    seed: int = setting(
        0, "Seed; same seed, same report.", ge=0, le=2**31 - 1, env="AGENTICREC_SEED"
    )
    concurrency: int = setting(
        0,
        "Tasks (users) in flight at once; 0: 16 with an LLM endpoint, 4 without. "
        "Same seed, same report, whatever the concurrency.",
        ge=0,
        le=256,
        env="AGENTICREC_CONCURRENCY",
        binds=False,
    )
    backend: str = setting(
        "local",
        "Where the run's users are processed: local (this process) or ray "
        "(shards of the users on a Ray cluster; pip install 'agenticrec[ray]', "
        "see docs/ray.md). Same seed, same report, whatever the backend.",
        choices=("local", "ray"),
        env="AGENTICREC_BACKEND",
        binds=False,
    )
    workers: int = setting(
        0,
        "With --backend ray: shards (Ray tasks) the users are split into, at "
        "most one per user; 0: one per CPU of the cluster.",
        ge=0,
        le=4096,
        env="AGENTICREC_WORKERS",
        binds=False,
    )
    address: str | None = setting(
        None,
        "With --backend ray: the cluster to join (host:6379, ray://host:10001 or "
        "auto); default: start a local Ray for this run.",
        env="AGENTICREC_RAY_ADDRESS",
        binds=False,
    )
    model: SkipJsonSchema[BaseChatModel | None] = service(
        None,
        "LangChain chat model every role decides with (any provider), wrapped in "
        "LLMPolicy: validated replies, retries, the rule as fallback. Overrides "
        "llm_base_url/llm_model; the llm_* limits still apply.",
    )
    policies: SkipJsonSchema[Mapping[str, Any]] = service(
        dict,
        "Role name (e.g. 'teacher.ranker') -> a policy object (with .name and "
        ".decide(role, observation) -> Decision) or a BaseChatModel, deciding "
        "that role instead of the default policy.",
    )
    collective: SkipJsonSchema[Any] = service(
        None,
        "The shards of a Ray run (agenticrec.collective.Group), set by the Ray "
        "backend for each shard; None in one process.",
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
                    f"{type(f.default).__name__} for {f.name}"
                ) from exc
            setattr(self, f.name, value)
        check_ranges(self)

    @property
    def llm_configured(self) -> bool:
        """True when an endpoint or model was named explicitly."""
        return bool(self.llm_base_url or self.llm_model)

    @property
    def services(self) -> Services:
        """This run's dependencies (built on first use, then shared)."""
        svc = self.__dict__.get("_services")
        if svc is None:
            lock = self.__dict__.setdefault("_services_lock", threading.Lock())
            with lock:
                svc = self.__dict__.get("_services")
                if svc is None:
                    svc = self.__dict__["_services"] = Services(self)
        return svc

    def close_services(self) -> None:
        """Close this context's services (a later use builds new ones)."""
        svc = self.__dict__.pop("_services", None)
        if svc is not None:
            svc.close()

    def settings(self, *, binding_only: bool = False) -> dict[str, Any]:
        """The settings as plain values, without secrets."""
        out = {}
        for f in fields(self):
            if f.name == "llm_api_key" or f.metadata.get("service"):
                continue
            if binding_only and not f.metadata.get("binds", True):
                continue
            out[f.name] = getattr(self, f.name)
        return out

    def public_dict(self) -> dict[str, Any]:
        """The context without secrets, for reports and trajectories."""
        return self.settings()


def check_ranges(ctx: Any) -> None:
    """Enforce every field's documented type and range; name the offender."""
    for f in fields(ctx):
        value = getattr(ctx, f.name)
        meta = f.metadata
        if value is None:
            continue
        numeric = isinstance(f.default, int | float) and not isinstance(
            f.default, bool
        )
        if isinstance(f.default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{f.name}={value!r}: expected true or false")
        if numeric:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(
                    f"{f.name}={value!r}: expected a number "
                    f"({meta.get('description', '')})"
                )
            if isinstance(f.default, int) and not isinstance(value, int):
                if float(value).is_integer():
                    value = int(value)
                    setattr(ctx, f.name, value)
                else:
                    raise ConfigError(f"{f.name}={value!r}: expected an integer")
            if value != value:  # NaN
                raise ConfigError(f"{f.name}=nan: expected a number")
        lo, hi = meta.get("ge"), meta.get("le")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise ConfigError(
                f"{f.name}={value!r} is out of range: expected "
                f"{_range_text(lo, hi)} ({meta.get('description', '')})"
            )
        choices = meta.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(
                f"{f.name}={value!r}: expected one of {', '.join(map(str, choices))}"
            )


def _range_text(lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"{lo} <= value <= {hi}"
    return f">= {lo}" if lo is not None else f"<= {hi}"
