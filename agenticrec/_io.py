"""File writes that never leave a half-written file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "remove_stale_temps"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temps(path: str | Path, older_than: float) -> list[Path]:
    """Remove the temp files :func:`atomic_write_bytes` left for ``path`` (a
    writer killed before its rename), modified before ``older_than`` (a
    ``time.time()``). Only ``.<name>.*.tmp`` beside ``path`` are touched."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if (
                tmp.is_file()
                and not tmp.is_symlink()
                and (tmp.stat().st_mtime < older_than)
            ):
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync and ``os.replace``.

    Readers see either the old file or the whole new one, even if the process
    is killed mid-write. The file gets the mode a plain ``open`` would give
    (``0o666`` less the umask), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Text form of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode(encoding))
