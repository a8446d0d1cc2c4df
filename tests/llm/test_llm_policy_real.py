"""The policy layer against a real model server (llama.cpp + SmolLM2-135M).

SmolLM2-135M is a toy: a decision may be a validated model decision or a
recorded fallback to the role's rule. Both are fine; what must hold is that
every decision is one of the two, that a fallback says why, and that the
recorded messages are the ones the server really exchanged.
Each test makes at most a few model calls. A role's prompt is ~450-520
tokens: reading it takes seconds on one thread the first time, a fraction of
a second once the server's prompt cache holds it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time

import httpx
import openai
import pytest
from pydantic import BaseModel

from agenticrec.graphs import _teacher_roles as roles
from agenticrec.policy import Decision, LLMPolicy, get_role, make_policy

from .conftest import capturing_model, spawn

pytestmark = pytest.mark.llm

PLAN_OBS = {
    "user": 42,
    "history_len": 12,
    "recent_titles": ["Toy Story (1995)", "Heat (1995)", "Casino (1995)"],
    "n_candidates": 5,
    "available": list(roles.ANALYSES),
}

RANK_OBS = {
    "k": 3,
    "candidates": [
        {"item": 10, "title": "GoldenEye (1995)", "popularity": 0.4,
         "signals": {"long_term": 0.9, "neighbours": 0.2}},
        {"item": 20, "title": "Jumanji (1995)", "popularity": 0.7,
         "signals": {"long_term": 0.1, "neighbours": 0.8}},
        {"item": 30, "title": "Sabrina (1995)", "popularity": 0.2,
         "signals": {"long_term": 0.0, "neighbours": 0.1}},
        {"item": 40, "title": "Balto (1995)", "popularity": 0.1,
         "signals": {"long_term": 0.3, "neighbours": 0.0}},
    ],
    "evidence": ["GoldenEye co-occurs with Heat in 12 histories."],
}  # fmt: skip


def assert_well_formed(d: Decision, role: str, obs: dict) -> None:
    """A validated model decision, or a rule fallback that says why."""
    r = get_role(role)
    assert isinstance(d.value, r.schema)
    assert d.attempts >= 1
    roles_seen = [m["role"] for m in d.messages]
    assert roles_seen[:2] == ["system", "user"]
    assert "assistant" in roles_seen or d.policy == "rule"
    if d.policy == "rule":
        assert d.fallback_reason and d.fallback_reason.startswith("llm:smol failed")
        assert d.value == r.rule(obs)
    else:
        assert d.policy == "llm:smol" and d.fallback_reason is None
        if r.check is not None:
            r.check(d.value, obs)  # the semantic check passed too
        # the accepted value is what the last recorded reply says
        last = d.messages[-1]
        raw = (
            last["tool_calls"][0]["function"]["arguments"]
            if last.get("tool_calls")
            else last["content"]
        )
        reply = raw if isinstance(raw, dict) else json.loads(raw)
        assert r.schema.model_validate(reply) == d.value


def test_planner_decides_through_the_real_server(llm_server):
    pol = make_policy(llm_server)  # the production path: ChatOpenAI from Context
    assert isinstance(pol, LLMPolicy) and pol.name == "llm:smol"
    d = pol.decide("teacher.planner", PLAN_OBS)
    print(f"planner: {d.policy} attempts={d.attempts} {d.value!r}", d.fallback_reason)
    assert_well_formed(d, "teacher.planner", PLAN_OBS)


def test_ranker_messages_are_the_real_server_replies(llm_server):
    replies: list[str] = []
    pol = LLMPolicy(capturing_model(llm_server, replies), context=llm_server)
    assert pol.method  # probe first, then record the decision's replies only
    replies.clear()
    d = pol.decide("teacher.ranker", RANK_OBS)
    print(f"ranker: {d.policy} attempts={d.attempts} {d.value!r}", d.fallback_reason)
    assert_well_formed(d, "teacher.ranker", RANK_OBS)
    # Every assistant message recorded is a reply the server sent, in order.
    recorded = [m for m in d.messages if m["role"] == "assistant"]
    sent = [json.loads(r)["choices"][0]["message"] for r in replies]
    assert len(recorded) == len(sent) == d.attempts
    for rec, srv in zip(recorded, sent, strict=True):
        assert (rec.get("content") or "") == (srv.get("content") or "")
        assert [_args(c) for c in rec.get("tool_calls") or []] == [
            _args(c) for c in srv.get("tool_calls") or []
        ]
    # and a retry quoted the validation error back to the model
    if d.attempts > 1:
        assert "Your reply was invalid" in d.messages[3]["content"]


def _args(call: dict) -> tuple[str, dict]:
    return call["function"]["name"], json.loads(call["function"]["arguments"])


def test_auto_probe_skips_json_schema_and_picks_a_working_method(llm_server):
    ctx = dataclasses.replace(llm_server, structured_output="auto")
    pol = LLMPolicy(context=ctx)

    class Probe(BaseModel):
        ok: bool

    # the premise: this server rejects response_format json_schema
    with pytest.raises(openai.InternalServerError):
        pol._bind("json_schema", Probe).invoke("ping")
    t = time.perf_counter()
    method = pol.method
    print(f"auto probe picked {method!r} in {time.perf_counter() - t:.1f} s")
    # llama-cpp-python: json_schema -> HTTP 500; the forced tool call works
    # and constrains the reply to the schema, so it is preferred to json_mode.
    assert method == "function_calling"
    assert pol.method == method  # probed once, then remembered


def test_killed_server_mid_run_falls_back_with_reason(tmp_path_factory, llm_server):
    srv = spawn(tmp_path_factory, "llm-killed")  # its own server: this one dies
    try:
        ctx = dataclasses.replace(llm_server, llm_base_url=srv.base_url)
        pol = LLMPolicy(context=ctx)
        assert pol.method == "function_calling"  # the server answered the probe
        os.killpg(srv.pid, signal.SIGKILL)
        srv._proc.wait(timeout=10)
        t = time.perf_counter()
        d = pol.decide("teacher.planner", PLAN_OBS)
    finally:
        srv.stop(grace_s=1.0)
    assert time.perf_counter() - t < 5
    assert d.policy == "rule" and d.attempts == 2  # one retry, then the rule
    assert d.value == roles.plan_rule(PLAN_OBS)
    # APIConnectionError (openai) / OpenAIConnectionError (langchain-openai)
    assert "ConnectionError" in d.fallback_reason, d.fallback_reason
    assert [m["role"] for m in d.messages] == ["system", "user"]


def _forced_tool_call(base_url: str, max_length: int) -> httpx.Response:
    tool = {
        "type": "function",
        "function": {
            "name": "Note",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string", "maxLength": max_length}},
                "required": ["text"],
            },
        },
    }
    return httpx.post(
        f"{base_url}/chat/completions",
        timeout=120,
        json={
            "model": "smol",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "Note: hi"}],
            "tools": [tool],
            "tool_choice": {"type": "function", "function": {"name": "Note"}},
        },
    )


def test_long_string_bounds_do_not_kill_the_server(tmp_path_factory, llm_process):
    # maxLength 2000 (the dualagent coordinator's `reasoning`): llama.cpp
    # rejects the grammar and plain llama-cpp-python 0.3.36 segfaults. The
    # launcher lowers the bound to 512 ...
    r = _forced_tool_call(llm_process.base_url, 2000)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["tool_calls"]
    # ... and without that, the rejected grammar fails the request, not the server
    srv = spawn(tmp_path_factory, "llm-unbounded", grammar_max_length=0)
    try:
        r = _forced_tool_call(srv.base_url, 2000)
        assert r.status_code == 500 and "rejected the grammar" in r.text
        assert srv.healthy()
        assert _forced_tool_call(srv.base_url, 100).status_code == 200
    finally:
        srv.stop(grace_s=1.0)


def test_server_slower_than_timeout_falls_back_with_timeout(llm_server):
    # Last in the file: the abandoned request keeps the server busy a moment.
    ctx = dataclasses.replace(
        llm_server,
        llm_timeout_s=0.05,
        llm_max_retries=0,
        structured_output="function_calling",  # no probe: time the decision
    )
    t = time.perf_counter()
    d = LLMPolicy(context=ctx).decide("teacher.planner", PLAN_OBS)
    print("timeout:", d.fallback_reason)
    assert time.perf_counter() - t < 2
    assert d.policy == "rule" and d.value == roles.plan_rule(PLAN_OBS)
    assert "timeout" in d.fallback_reason, d.fallback_reason
