"""Every graph through the LangGraph API server (`langgraph dev`, in-memory
runtime) on 127.0.0.1: listed as an assistant, with a non-empty input
schema, and run briefly through the server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("langgraph_api", reason="pip install 'langgraph-cli[inmem]'")
sdk = pytest.importorskip("langgraph_sdk")

RUNS = {
    "teacher": ({"users": [0, 1]}, {"users": 2}),
    "dualagent": (
        {"users": [0, 1]},
        {"users": 2, "pop_size": 20, "generations": 4, "coordinator_every": 2},
    ),
    "system": ({"rounds": 1}, {"rounds": 1}),
    # the model folder is added by the test (tiny_student fixture)
    "student": ({"users": [0, 1]}, {"users": 2, "max_new_tokens": 16}),
    "tune": (
        {},
        {
            "rounds": 1,
            "candidates": 2,
            "offline_events": 2,
            "skillhub": ":temp:",
            "embedding": "hashing",
        },
    ),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cli = shutil.which("langgraph", path=os.path.dirname(sys.executable))
    if cli is None:
        pytest.skip("the langgraph CLI is not installed")
    port = _free_port()
    work = tmp_path_factory.mktemp("lg")
    # the config an installed package uses: graphs by their installed files
    subprocess.run(
        [
            sys.executable,
            "-m",
            "agenticrec",
            "graphs",
            "langgraph-json",
            "--out",
            str(work / "langgraph.json"),
        ],
        check=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen(
        [
            cli,
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--config",
            str(work / "langgraph.json"),
        ],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "LANGGRAPH_NO_VERSION_CHECK": "1"},
    )
    client = sdk.get_sync_client(url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while True:
        try:
            if len(client.assistants.search()) >= len(RUNS):
                break
        except Exception:  # noqa: BLE001 - not up yet
            pass
        assert proc.poll() is None, (work / "server.log").read_text()[-3000:]
        assert time.monotonic() < deadline, (work / "server.log").read_text()[-3000:]
        time.sleep(1)
    yield client
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_every_graph_is_an_assistant_with_an_input_schema(server):
    assistants = {a["graph_id"]: a for a in server.assistants.search()}
    assert set(RUNS) <= set(assistants)
    for name in RUNS:
        schemas = server.assistants.get_schemas(assistants[name]["assistant_id"])
        assert (schemas.get("input_schema") or {}).get("properties"), name
        assert (schemas.get("context_schema") or {}).get("properties"), name


@pytest.mark.parametrize("name", list(RUNS))
def test_each_graph_runs_through_the_server(server, name, request):
    inp, context = RUNS[name]
    if name == "student":
        context = {**context, "student": str(request.getfixturevalue("tiny_student"))}
    assistant = next(a for a in server.assistants.search() if a["graph_id"] == name)
    thread = server.threads.create()
    out = server.runs.wait(
        thread["thread_id"], assistant["assistant_id"], input=inp, context=context
    )
    assert isinstance(out, dict) and "__error__" not in out, out
    key = {
        "teacher": "results",
        "dualagent": "result",
        "system": "history",
        "tune": "final",
        "student": "results",
    }[name]
    assert out.get(key), sorted(out)
