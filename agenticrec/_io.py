"""File writes that never leave a half-written file behind."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

try:  # POSIX: a writer holds a lock on its temp file while it writes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_write_bytes", "atomic_write_text", "remove_stale_temps"]


def _umask() -> int:
    """The process umask, read without changing it where the OS allows
    (``os.umask`` alone must set it to read it, which a thread creating a file
    at that moment would see)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # the narrowest mask while it is being read
    os.umask(mask)
    return mask


def _temp_pattern(path: Path) -> re.Pattern[str]:
    """Names of :func:`atomic_write_bytes`'s temp files for ``path``."""
    return re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{1,64}}\.tmp")


def _held(fd: int) -> bool:
    """True if another process holds the write lock of the open file ``fd``."""
    if fcntl is None:  # pragma: no cover - no locks: only the age counts
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    return False


def remove_stale_temps(path: str | Path, older_than: float) -> list[Path]:
    """Remove the temp files :func:`atomic_write_bytes` left for ``path`` (a
    writer killed before its rename), modified before ``older_than`` (a
    ``time.time()``).

    Only regular files named ``.<name>.<random>.tmp`` beside ``path`` are
    touched, never a link or any other file, and never one whose writer is
    still alive (it holds a lock on it while it writes)."""
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.is_dir():
        return removed
    pattern = _temp_pattern(path)
    for tmp in sorted(path.parent.iterdir()):
        if not pattern.fullmatch(tmp.name):
            continue
        try:
            fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:  # a link (O_NOFOLLOW), gone, unreadable
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= older_than or _held(fd):
                continue
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
        except OSError:
            continue
        finally:
            os.close(fd)
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync and ``os.replace``.

    Readers see either the old file or the whole new one, even if the process
    is killed mid-write (the temp file it leaves is what
    :func:`remove_stale_temps` removes; the writer locks it while it writes).
    The file gets the mode a plain ``open`` would give (``0o666`` less the
    umask), not ``mkstemp``'s 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)  # still locked: no cleaner takes it meanwhile
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
