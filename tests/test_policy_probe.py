"""Structured-output probe order and the retry turn after a tool call.

Fake-model tests of behaviour first seen against the real llama.cpp server
(tests/llm/): it rejects ``json_schema``, rambles in JSON mode, answers forced
tool calls well, and rejects an assistant message with ``content: null``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from pydantic import BaseModel, Field

from agenticrec.context import Context
from agenticrec.policy import LLMPolicy, Role, register_role


class Scripted(FakeListChatModel):
    """Replies from ``script`` (an exception is raised); records every input."""

    script: list[Any] = Field(default_factory=list)
    seen: list[list] = Field(default_factory=list)

    def bind_tools(self, tools, **kw):
        return self

    def invoke(self, input, *a, **k):
        self.seen.append(list(input))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def call(name: str, args: dict, id_: str = "c1") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": id_}])


class Pick(BaseModel):
    value: int = Field(ge=0, le=10)


register_role(
    Role(
        name="probe_pick", schema=Pick, rule=lambda o: Pick(value=0), prompt="test_role"
    ),
    replace=True,
)


def policy(model: Scripted, method: str = "auto", retries: int = 1) -> LLMPolicy:
    ctx = Context(llm_timeout_s=5, llm_max_retries=retries, structured_output=method)
    return LLMPolicy(model, context=ctx)


def test_probe_prefers_forced_tool_call_over_json_mode_when_json_schema_fails():
    model = Scripted(responses=["x"], script=[
        RuntimeError("HTTP 500: response_format.type json_schema"),
        call("_Probe", {"ok": True}),
    ])  # fmt: skip
    assert policy(model).method == "function_calling"
    assert model.script == []  # json_mode was never tried


def test_probe_needs_a_real_tool_call_for_function_calling():
    # A server that ignores `tools` answers in text: that is not function calling.
    model = Scripted(responses=["x"], script=[
        RuntimeError("HTTP 500"),
        AIMessage(content='{"ok": true}'),
        AIMessage(content='{"ok": true}'),
    ])  # fmt: skip
    assert policy(model).method == "json_mode"


def test_invalid_tool_call_is_answered_by_a_tool_message_then_retried():
    model = Scripted(responses=["x"], script=[
        call("Pick", {"value": 99}, "c1"),
        call("Pick", {"value": 3}, "c2"),
    ])  # fmt: skip
    d = policy(model, "function_calling").decide("probe_pick", {})
    assert d.value.value == 3 and d.attempts == 2 and d.fallback_reason is None
    retry = model.seen[1]
    sent_reply, answer = retry[2], retry[3]
    # sent back with its arguments as content (never content: null) ...
    assert sent_reply.tool_calls[0]["id"] == "c1"
    assert sent_reply.content == '{"value": 99}'
    # ... and answered by a tool message for that call, not a user turn
    assert isinstance(answer, ToolMessage) and answer.tool_call_id == "c1"
    assert "Your reply was invalid" in answer.content
    # the transcript keeps the reply exactly as the model sent it
    roles = [m["role"] for m in d.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert not d.messages[2].get("content")
    assert d.messages[3]["tool_call_id"] == "c1"


def test_invalid_text_reply_is_still_answered_by_a_user_turn():
    model = Scripted(responses=["x"], script=[
        AIMessage(content='{"value": 99}'), AIMessage(content='{"value": 2}'),
    ])  # fmt: skip
    d = policy(model, "json_mode").decide("probe_pick", {})
    assert d.value.value == 2
    assert [m["role"] for m in d.messages] == [
        "system", "user", "assistant", "user", "assistant",
    ]  # fmt: skip


def test_http_client_timeout_is_reported_as_timeout():
    class ReadTimeout(Exception):  # how httpx / openai name theirs
        pass

    model = Scripted(responses=["x"], script=[ReadTimeout("read timed out")])
    d = policy(model, "json_mode", retries=0).decide("probe_pick", {})
    assert d.policy == "rule"
    assert "attempt 1: timeout (ReadTimeout: read timed out)" in d.fallback_reason
