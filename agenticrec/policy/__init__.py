"""Every agent decision, with or without an LLM.

``policy.decide(role, observation) -> Decision``. :class:`RulePolicy` runs each
role's documented deterministic rule; :class:`LLMPolicy` asks a chat model,
validates the reply against the role's pydantic schema, retries with the
validation error, and falls back to the rule, recording why.

From Python, a run's context takes any LangChain chat model (``model=``) or a
policy per role (``policies={"teacher.ranker": ...}``); :func:`make_policy`
turns them into the run's policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from agenticrec.context import Context
from agenticrec.errors import ConfigError
from agenticrec.policy._decision import Decision
from agenticrec.policy._llm import LLMPolicy, parse_json_reply
from agenticrec.policy._roles import Observation, Role, get_role, register_role, roles
from agenticrec.policy._rule import RulePolicy

__all__ = [
    "Decision",
    "LLMPolicy",
    "Policy",
    "Role",
    "RoutedPolicy",
    "RulePolicy",
    "as_policy",
    "get_role",
    "make_policy",
    "parse_json_reply",
    "register_role",
    "roles",
]


class Policy(Protocol):
    """Anything that decides for a role."""

    name: str

    def decide(self, role: str | Role, observation: Observation) -> Decision: ...


def as_policy(obj: Any, context: Context, *, what: str = "policy") -> Policy:
    """``obj`` as a policy: a ``BaseChatModel`` becomes an :class:`LLMPolicy`
    (rule fallback), a policy object is kept.

    Raises:
        ConfigError: ``obj`` is neither (``what`` names the setting).
    """
    if isinstance(obj, BaseChatModel):
        return LLMPolicy(obj, context=context)
    if callable(getattr(obj, "decide", None)) and isinstance(
        getattr(obj, "name", None), str
    ):
        return obj
    raise ConfigError(
        f"{what}: expected a LangChain BaseChatModel or a policy with a `name` "
        f"and `decide(role, observation) -> Decision`, got {type(obj).__name__}"
    )


class RoutedPolicy:
    """The ``default`` policy, except for the roles ``by_role`` names.

    Each decision records the policy that made it (``Decision.policy``).
    """

    def __init__(self, default: Policy, by_role: Mapping[str, Policy]) -> None:
        self.default, self.by_role = default, dict(by_role)
        self.name = default.name

    def decide(self, role: str | Role, observation: Observation) -> Decision:
        name = role.name if isinstance(role, Role) else role
        return self.by_role.get(name, self.default).decide(role, observation)


def make_policy(context: Context | None = None) -> Policy:
    """The run's policy: ``context.model`` (wrapped in ``LLMPolicy``), else
    ``LLMPolicy`` when the context names an endpoint, else ``RulePolicy``;
    roles in ``context.policies`` decide with their own policy.

    Raises:
        ConfigError: a ``policies`` key is not a registered role, or a value
            is neither a chat model nor a policy.
    """
    ctx = context or Context()
    if ctx.model is not None:
        default = as_policy(ctx.model, ctx, what="model")
    else:
        default = LLMPolicy(context=ctx) if ctx.llm_configured else RulePolicy()
    if not ctx.policies:
        return default
    known = roles()
    by_role = {}
    for name, obj in ctx.policies.items():
        if name not in known:
            raise ConfigError(
                f"policies[{name!r}]: no such role; registered roles: {sorted(known)}"
            )
        by_role[name] = as_policy(obj, ctx, what=f"policies[{name!r}]")
    return RoutedPolicy(default, by_role)
