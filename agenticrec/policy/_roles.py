"""Role registry: each agent role names its decision schema, prompt and rule.

A role is registered once, by the graph module that owns it, so the policy
layer can serve any role without knowing the graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from agenticrec.errors import ConfigError

__all__ = ["Role", "get_role", "register_role", "roles"]

Observation = Mapping[str, Any]


@dataclass(frozen=True)
class Role:
    """An agent role.

    Attributes:
        name: unique role name, used in trajectories and CLI output.
        schema: pydantic model of the decision; bounds live here, so an
            out-of-range LLM value fails validation like malformed JSON does.
        rule: the deterministic non-LLM policy: ``observation -> schema``.
            It is what runs with no endpoint and whenever the LLM fails.
        prompt: name of the system prompt in ``agenticrec.prompts``.
        check: optional semantic validation ``(value, observation) -> None``
            raising ``ValueError`` (e.g. "ranked item not among candidates").
        description: one line for ``agenticrec`` listings.
    """

    name: str
    schema: type[BaseModel]
    rule: Callable[[Observation], BaseModel]
    prompt: str
    check: Callable[[BaseModel, Observation], None] | None = None
    description: str = ""


_ROLES: dict[str, Role] = {}


def register_role(role: Role, *, replace: bool = False) -> Role:
    """Add ``role`` to the registry; a second role with the same name raises."""
    if not (isinstance(role.schema, type) and issubclass(role.schema, BaseModel)):
        raise ConfigError(f"role {role.name!r}: schema must be a pydantic model")
    if not callable(role.rule):
        raise ConfigError(f"role {role.name!r}: rule policy must be callable")
    existing = _ROLES.get(role.name)
    if existing is not None and existing != role and not replace:
        raise ConfigError(f"role {role.name!r} is already registered")
    _ROLES[role.name] = role
    return role


def get_role(name: str) -> Role:
    """The registered role ``name``; the error lists the known roles."""
    try:
        return _ROLES[name]
    except KeyError:
        raise ConfigError(
            f"unknown role {name!r}; registered roles: {sorted(_ROLES)}"
        ) from None


def roles() -> dict[str, Role]:
    """A copy of the registry."""
    return dict(_ROLES)
