"""One Chroma client per Skillhub folder per process, kept current across processes.

Chroma's local ``PersistentClient`` keeps its vector index in memory and does
not see rows another process committed until it is reopened: queries miss
them and ``get`` can fail with "Error finding id". Every Skillhub operation
therefore runs in :meth:`Folder.session`, which holds ``<path>/skillhub.lock``
(a ``filelock`` shared by all processes) and reopens the client if
``<path>/skillhub.version`` changed since this process last wrote or read it;
each write then stamps a new version. Reopening costs tens of milliseconds and
happens only after another process wrote.

All stores of one folder in a process share one :class:`Folder`, so they see
each other's writes at once. Other Chroma clients on a Skillhub folder in the
same process are not supported: close them before using the store.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction
from filelock import FileLock

from agenticrec._io import atomic_write_text

__all__ = ["Folder", "folder"]

_FOLDERS: dict[Path, Folder] = {}
_FOLDERS_LOCK = threading.Lock()


def folder(path: Path) -> Folder:
    """The process's :class:`Folder` for ``path`` (created on first use)."""
    key = path.resolve()
    with _FOLDERS_LOCK:
        if key not in _FOLDERS:
            _FOLDERS[key] = Folder(key)
        return _FOLDERS[key]


class Folder:
    """A Skillhub folder: Chroma client, cross-process lock and version stamp."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.lock = FileLock(str(path / "skillhub.lock"))
        self._version_file = path / "skillhub.version"
        self._client: ClientAPI | None = None
        self._seen: str | None = None
        self._collections: dict[str, Collection] = {}

    def _read_version(self) -> str:
        try:
            return self._version_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    @contextmanager
    def session(self, timeout: float) -> Iterator[ClientAPI]:
        """Hold the folder lock with a client that has every committed write."""
        with self.lock.acquire(timeout=timeout, poll_interval=0.01):
            version = self._read_version()
            if self._client is None or version != self._seen:
                if self._client is not None:
                    self._client.close()
                self._collections.clear()
                self._client = chromadb.PersistentClient(str(self.path))
                self._seen = version
            yield self._client

    def close(self) -> None:
        """Release the Chroma client; the next :meth:`session` reopens it."""
        with self.lock.acquire(poll_interval=0.01):
            if self._client is not None:
                self._client.close()
            self._client = None
            self._collections.clear()

    def touch(self) -> None:
        """Stamp a new version after a write; call inside :meth:`session`."""
        token = uuid.uuid4().hex
        atomic_write_text(self._version_file, token)
        self._seen = token

    def collection(
        self, name: str, embedding: EmbeddingFunction[Documents]
    ) -> Collection:
        """Handle on an existing collection; call inside :meth:`session`."""
        col = self._collections.get(name)
        if col is None:
            assert self._client is not None
            col = self._client.get_collection(name, embedding_function=embedding)
            self._collections[name] = col
        return col
