"""Checkpoints that are safe to load and threads bound to their arguments.

Three guarantees, each a defect of the plain ``SqliteSaver(conn)``:

* **Nothing in a checkpoint runs code.** LangGraph's default serializer still
  rebuilds any importable type named in a checkpoint's msgpack (a crafted file
  can call ``os.system`` on resume; it only warns). :class:`SafeSerializer`
  passes LangGraph's own allow-list mechanism (``allowed_msgpack_modules``)
  and turns every blocked type into a :class:`CheckpointError` before the
  graph runs, so a tampered checkpoint is refused, not half-loaded.
* **A thread is bound to what defines its result.** The first run of a thread
  records its binding (graph, binding settings, input digest, dataset
  fingerprint, package version) in a table of the same SQLite file; a later
  run with a different binding is refused naming each differing field, and a
  finished thread with the same binding returns its stored report.
* **One process per live thread.** An OS file lock (released by the kernel
  when its process dies, SIGKILL included) refuses a second process. Lock
  files live in a per-user folder of the system temp dir (`lock_dir`), named
  by a digest of the checkpoint's resolved path and the thread id, so nothing
  is left beside the checkpoint or a run's outputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from langgraph.checkpoint.serde.event_hooks import register_serde_event_listener
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from agenticrec.errors import ConfigError

__all__ = [
    "ALLOWED_TYPES",
    "CheckpointError",
    "SafeSerializer",
    "ThreadStore",
    "binding_digest",
    "lock_dir",
    "lock_path",
    "open_checkpointer",
]

LOCK_DIR_ENV = "AGENTICREC_LOCK_DIR"


class CheckpointError(ConfigError):
    """A checkpoint file is unsafe or does not match the run asked for."""


ALLOWED_TYPES: tuple[tuple[str, str], ...] = (
    # numpy arrays and scalars in graph state (dualagent's populations)
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
)
"""Types a checkpoint may name beyond LangGraph's own safe list (its messages,
``Send``, ``Interrupt``, ``Command``, datetime, uuid, ...)."""

_blocked = threading.local()


def _on_serde_event(event: Mapping[str, Any]) -> None:
    if event.get("kind") in ("msgpack_blocked", "msgpack_method_blocked"):
        found = getattr(_blocked, "found", None)
        if found is not None:
            name = ".".join(
                str(event.get(k)) for k in ("module", "name", "method") if event.get(k)
            )
            found.append(name)


register_serde_event_listener(_on_serde_event)


class SafeSerializer(JsonPlusSerializer):
    """LangGraph's serializer restricted to an allow-list; a checkpoint naming
    any other type raises :class:`CheckpointError` instead of loading."""

    def __init__(self) -> None:
        super().__init__(allowed_msgpack_modules=ALLOWED_TYPES)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind = data[0]
        if kind == "pickle":
            raise CheckpointError(
                "checkpoint holds a pickled object; agenticrec never unpickles "
                "checkpoints (the file was not written by agenticrec)"
            )
        _blocked.found = []
        try:
            value = super().loads_typed(data)
            found = list(_blocked.found)
        finally:
            _blocked.found = None
        if found:
            raise CheckpointError(
                f"checkpoint names types outside the allow-list ({', '.join(found)}); "
                "refusing to load it. The file was not written by agenticrec or "
                "was tampered with: delete it or pass another --checkpoint"
            )
        return value


def binding_digest(binding: Mapping[str, Any]) -> str:
    """A short stable digest of a thread's binding (default thread ids)."""
    raw = json.dumps(binding, sort_keys=True, default=str).encode()
    return hashlib.blake2b(raw, digest_size=6).hexdigest()


def lock_dir() -> Path:
    """Where thread locks live: ``$AGENTICREC_LOCK_DIR``, else
    ``<temp dir>/agenticrec-locks-<uid>`` (created private to the user)."""
    env = os.environ.get(LOCK_DIR_ENV)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    path = Path(env) if env else Path(tempfile.gettempdir()) / f"agenticrec-locks-{uid}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def lock_path(target: Path | str, key: str = "") -> Path:
    """The lock file guarding ``target`` (and ``key``) inside `lock_dir`: the
    same for every process naming the same resolved path."""
    where = f"{Path(target).resolve()}\0{key}".encode()
    return lock_dir() / f"{hashlib.blake2b(where, digest_size=12).hexdigest()}.lock"


class ThreadStore:
    """Bindings and final reports of threads, in the checkpoint's own file."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        with conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS agenticrec_threads ("
                "thread_id TEXT PRIMARY KEY, binding TEXT NOT NULL, "
                "status TEXT NOT NULL, report TEXT)"
            )

    def get(self, thread_id: str) -> tuple[dict[str, Any], str, str | None] | None:
        row = self.conn.execute(
            "SELECT binding, status, report FROM agenticrec_threads "
            "WHERE thread_id = ?",
            (thread_id,),
        ).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0]), row[1], row[2]
        except ValueError as exc:
            raise CheckpointError(
                f"{self.path}: the binding of thread {thread_id!r} is corrupt"
            ) from exc

    def bind(self, thread_id: str, binding: Mapping[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO agenticrec_threads VALUES (?, ?, 'running', "
                "NULL)",
                (thread_id, json.dumps(binding, sort_keys=True, default=str)),
            )

    def finish(self, thread_id: str, report_json: str) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE agenticrec_threads SET status = 'done', report = ? "
                "WHERE thread_id = ?",
                (report_json, thread_id),
            )

    def forget(self, thread_id: str) -> None:
        with self.conn:
            self.conn.execute(
                "DELETE FROM agenticrec_threads WHERE thread_id = ?", (thread_id,)
            )

    @contextlib.contextmanager
    def lock(self, thread_id: str) -> Iterator[None]:
        """Hold the thread's OS lock for the run; refuse if another holds it.

        The lock file is kept in `lock_dir` (never beside the checkpoint); it
        is not deleted on release, since unlinking a lock file another process
        may be opening would let two processes hold "the" lock at once.
        """
        lock = FileLock(str(lock_path(self.path, thread_id)), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise CheckpointError(
                f"thread {thread_id!r} of {self.path} is being run by another "
                "process; wait for it to finish or use another --thread-id"
            ) from None
        try:
            yield
        finally:
            lock.release()


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``field: old -> new`` for each binding field that differs (dotted)."""
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += [f"{key}.{d}" for d in differences(a, b)]
        elif _norm(a) != _norm(b):
            out.append(f"{key}: {_short(a)} -> {_short(b)}")
    return out


def _norm(x: Any) -> Any:
    return json.loads(json.dumps(x, sort_keys=True, default=str))


def _short(x: Any) -> str:
    s = json.dumps(x, default=str)
    return s if len(s) <= 60 else s[:57] + "..."


class Checkpoint:
    """An open checkpoint file: the LangGraph saver and the thread store."""

    def __init__(self, path: Path) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        if path.exists() and path.is_dir():
            raise CheckpointError(f"--checkpoint {path} is a folder, not a file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self.conn = sqlite3.connect(str(path), check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.saver = SqliteSaver(self.conn, serde=SafeSerializer())
            self.saver.setup()
            self.threads = ThreadStore(self.conn, path)
        except sqlite3.DatabaseError as exc:
            raise CheckpointError(
                f"{path} is not an agenticrec checkpoint (SQLite: {exc})"
            ) from None

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def open_checkpointer(path: Path | str | None) -> Iterator[Checkpoint | None]:
    """The checkpoint at ``path`` (or ``None`` without a path)."""
    if path is None:
        yield None
        return
    ck = Checkpoint(Path(path))
    try:
        yield ck
    finally:
        ck.close()


__all__ += ["Checkpoint", "differences"]
