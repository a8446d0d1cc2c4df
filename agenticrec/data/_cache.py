"""Binary cache of loaded datasets (``.npz``, no pickles).

A cache file is named after the dataset and a key hashed from the loader version
and each source file's size, mtime and content hash, so a changed source gets a
new file and the old one is removed. Files are written to a temporary name,
fsynced, then renamed over the target (`os.replace` is atomic), so a reader sees
either a whole file or none; a file that fails to read is ignored and rebuilt.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ._dataset import Dataset, LoadReport

CACHE_ENV = "AGENTICREC_CACHE_DIR"


def cache_dir() -> Path:
    """``$AGENTICREC_CACHE_DIR``, else ``~/.cache/agenticrec``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "agenticrec"


def read(path: Path, key: str) -> Dataset | None:
    """The cached dataset at ``path`` if it exists, is whole and matches ``key``."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode("utf-8"))
            if meta.get("key") != key:
                return None
            arrays = {name: npz[name] for name in npz.files if name != "meta"}
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt
        return None
    report = meta["report"]
    report["notes"] = tuple(report["notes"])
    return Dataset(
        users=arrays["users"],
        items=arrays["items"],
        timestamps=arrays["timestamps"],
        ratings=arrays.get("ratings"),
        user_ids=arrays["user_ids"],
        item_ids=arrays["item_ids"],
        release_year=arrays["release_year"],
        titles=meta["titles"],
        categories=meta["categories"],
        text=meta["text"],
        brands=meta["brands"],
        time_kind=meta["time_kind"],
        name=meta["name"],
        format=meta["format"],
        source=meta["source"],
        fingerprint=meta["fingerprint"],
        report=LoadReport(**report),
        lineage=tuple(meta["lineage"]),
    )


def write(path: Path, dataset: Dataset, key: str) -> None:
    """Store ``dataset`` at ``path`` atomically; on failure warn and go on."""
    meta = {
        "key": key,
        "titles": dataset.titles,
        "categories": dataset.categories,
        "text": dataset.text,
        "brands": dataset.brands,
        "time_kind": dataset.time_kind,
        "name": dataset.name,
        "format": dataset.format,
        "source": dataset.source,
        "fingerprint": dataset.fingerprint,
        "report": {
            **{f: getattr(dataset.report, f) for f in LoadReport.__dataclass_fields__},
            "notes": list(dataset.report.notes),
        },
        "lineage": dataset.lineage,
    }
    arrays = {
        "users": dataset.users,
        "items": dataset.items,
        "timestamps": dataset.timestamps,
        "user_ids": dataset.user_ids,
        "item_ids": dataset.item_ids,
        "release_year": dataset.release_year,
        "meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
    }
    if dataset.ratings is not None:
        arrays["ratings"] = dataset.ratings
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f"{path.stem}-", suffix=".npz.tmp"
        )
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        warnings.warn(f"agenticrec: cannot write cache {path}: {exc}", stacklevel=3)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    for stale in path.parent.glob(f"{path.stem.rsplit('-', 1)[0]}-*.npz"):
        if stale != path:
            stale.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
