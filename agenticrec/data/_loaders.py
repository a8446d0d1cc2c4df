"""`load`: find a dataset by name or path, detect its format, parse or use the cache."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import pyarrow as pa

from agenticrec.errors import (
    AgenticRecError,
    ConfigError,
    DataFormatError,
    DataValidationError,
)

from . import _amazon, _cache, _delimited, _movielens, _recbole
from ._dataset import Dataset, RawData, build
from ._io import Source, one_line, read_source

Format = Literal[
    "ml-100k",
    "ml-1m",
    "movielens-csv",
    "parquet",
    "recbole",
    "amazon2023",
    "delimited",
]
FORMATS: tuple[str, ...] = get_args(Format)

EMBEDDED = "ml-latest-small"
"""The dataset shipped inside the package (MovieLens latest-small, 2018-09)."""

DATA_DIR_ENV = "AGENTICREC_DATA_DIR"
SHARED_DATA_ENV = "AGENTICREC_SHARED_DATA"

LOADER_VERSION = 2
"""Bump when parsing changes, so caches written by older code are rebuilt."""


@dataclass(frozen=True)
class _Loader:
    find: Callable[[Path, Path | None], dict[str, Path]]
    parse: Callable[..., RawData]
    required: tuple[str, ...]
    """Roles of which at least one must be found."""


def _named(find: Callable[[Path], dict[str, Path]]):
    """A finder by fixed file names that also takes the file the caller named:
    when that file is none of the ones found (another name, or one of several
    ``*.parquet``), it is the ratings file."""

    def found(root: Path, hint: Path | None) -> dict[str, Path]:
        files = find(root)
        if hint is not None and hint not in files.values():
            files["ratings"] = hint
        return files

    return found


_LOADERS: dict[str, _Loader] = {
    "ml-100k": _Loader(
        _named(_movielens.find_ml100k), _movielens.parse_ml100k, ("ratings",)
    ),
    "ml-1m": _Loader(_named(_movielens.find_ml1m), _movielens.parse_ml1m, ("ratings",)),
    "movielens-csv": _Loader(
        _named(_movielens.find_csv), _movielens.parse_csv, ("ratings",)
    ),
    "parquet": _Loader(
        _named(_movielens.find_parquet), _movielens.parse_parquet, ("ratings",)
    ),
    "recbole": _Loader(_recbole.find, _recbole.parse, ("test", "inter")),
    "amazon2023": _Loader(_amazon.find, _amazon.parse, ("ratings",)),
    "delimited": _Loader(_delimited.find, _delimited.parse, ("ratings",)),
}

KNOWN_DATASETS: dict[str, str] = {
    "ml-100k": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
    "ml-1m": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
    "ml-latest-small": "shipped inside the package (no download)",
    "ml-latest": "https://files.grouplens.org/datasets/movielens/ml-latest.zip",
    "ml-25m": "https://files.grouplens.org/datasets/movielens/ml-25m.zip",
    "ml-32m": "https://files.grouplens.org/datasets/movielens/ml-32m.zip",
    "ml-1m-implicit": "a folder holding ratings.parquet (user, item, no "
    "timestamps), e.g. the implicit ml-1m of the shared data folder",
    "amazon18-scientific-unisrec": "UniSRec's processed Amazon 2018 Scientific "
    "atomic files (Scientific.train/valid/test.inter, .item2index, .text) from "
    "https://github.com/RUCAIBox/UniSRec",
}
"""Dataset names people ask for, and where each comes from: what the error
for a name that is not found says."""

_BY_FILE_NAME = {
    "u.data": "ml-100k",
    "u.item": "ml-100k",
    "u.genre": "ml-100k",
    "u.user": "ml-100k",
    "ratings.dat": "ml-1m",
    "users.dat": "ml-1m",
    "ratings.csv": "movielens-csv",
    "movies.csv": "movielens-csv",
    "tags.csv": "movielens-csv",
    "links.csv": "movielens-csv",
}
_BY_SUFFIX = {
    ".parquet": "parquet",
    ".inter": "recbole",
    ".item2index": "recbole",
    ".user2index": "recbole",
    ".text": "recbole",
    ".jsonl": "amazon2023",
    ".jsonl.gz": "amazon2023",
    ".json.gz": "amazon2023",
}


def search_dirs() -> list[Path]:
    """Folders searched for a dataset given by name, in order.

    ``$AGENTICREC_DATA_DIR`` (``os.pathsep``-separated), ``$AGENTICREC_SHARED_DATA``,
    ``./data``, ``../shared/data`` (from the working directory), and the
    ``shared/data`` folder beside a source checkout of this package.
    """
    dirs = [Path(p) for p in os.environ.get(DATA_DIR_ENV, "").split(os.pathsep) if p]
    if os.environ.get(SHARED_DATA_ENV):
        dirs.append(Path(os.environ[SHARED_DATA_ENV]))
    cwd = Path.cwd()
    dirs += [cwd / "data", cwd.parent / "shared" / "data"]
    dirs.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    return dirs


def load(
    name_or_path: str | os.PathLike[str] = EMBEDDED,
    format: Format | None = None,
    *,
    cache: bool = True,
    full_history: bool = False,
    columns: Mapping[str, str | int] | None = None,
    sep: str | None = None,
    header: bool | None = None,
    item_file: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Load a dataset by name or path.

    Args:
        name_or_path: ``"ml-latest-small"`` (the copy shipped in the package),
            another dataset folder's name (searched in `search_dirs`: e.g.
            ``"ml-100k"``, ``"ml-1m-implicit"``, ``"amazon18-scientific-unisrec"``),
            or a path to a dataset folder or to one of its files.
        format: one of `FORMATS`; detected from the file names when ``None``:
            ``u.data`` ml-100k, ``ratings.dat`` ml-1m, ``ratings.csv``
            movielens-csv, ``*.parquet`` parquet, ``*.inter`` recbole,
            ``*.jsonl[.gz]`` amazon2023. A format given wins over detection:
            no detection runs, and a file path given with it is read as that
            format's interaction file whatever its name (``load("my.txt",
            format="movielens-csv")``); with a folder, that format's usual file
            names are looked up in it.
        cache: read and write the binary cache (see `cache_dir`).
        full_history: RecBole sequences only: rebuild histories capped at 50 items
            from the train rows (by default the test rows are taken as they are,
            which matches the published counts).
        columns: ``format="delimited"`` only: ``{"user": ..., "item": ...,
            "rating"/"weight": ..., "timestamp": ...}``, each a header name or a
            0-based position (default ``{"user": 0, "item": 1}``); see
            :mod:`agenticrec.data._delimited`.
        sep: ``format="delimited"`` only: the field separator, any string
            without line breaks or ``"`` (``","``, ``"\\t"``, ``"::"``, ...);
            default ``","``.
        header: ``format="delimited"`` only: whether line 1 names the columns
            (default: when ``columns`` names any column by string).
        item_file: RecBole only: the ``.item`` catalog file to use (absolute,
            or relative to the dataset folder). Without it ``{prefix}.item`` is
            used, or else the folder's only ``*.item`` file whatever its prefix.

    Raises:
        ConfigError: unknown name or format.
        DataFormatError: a file is malformed, empty, a folder or unreadable
            (names the file and, where known, the line and field). Text files
            may end lines with LF, CRLF or CR (old Mac exports): see each
            loader module. No ``csv.Error``, ``UnicodeDecodeError``,
            ``OSError`` or ``ValueError`` from reading escapes as such.
        DataValidationError: the source parses but holds no interactions.
    """
    if format is not None and format not in _LOADERS:
        raise ConfigError(f"unknown format {format!r}; expected one of {list(FORMATS)}")
    delimited = {"columns": columns, "sep": sep, "header": header}
    given = [k for k, v in delimited.items() if v is not None]
    if given and format != "delimited":
        raise ConfigError(
            f"{', '.join(given)} describe(s) a delimited file: pass "
            'format="delimited" with them'
        )
    extra: dict[str, Any] = {}
    if format == "delimited":
        extra = _delimited.options(columns, sep, header)
    if item_file is not None:
        extra["item_file"] = item_file
    if str(name_or_path) == EMBEDDED:
        with resources.as_file(resources.files(__package__) / EMBEDDED) as path:
            return _load_path(
                path,
                format,
                cache,
                full_history,
                source=f"embedded:{EMBEDDED}",
                extra=extra,
            )
    return _load_path(
        _resolve(name_or_path), format, cache, full_history, source=None, extra=extra
    )


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as exc:  # e.g. a parent folder that cannot be searched
        raise DataFormatError(
            f"cannot look up: {exc.strerror or one_line(exc)}", path=path
        ) from exc


def _resolve(name_or_path: str | os.PathLike[str]) -> Path:
    path = Path(name_or_path).expanduser()
    if _exists(path):
        return path
    if not path.is_absolute() and len(path.parts) == 1:
        for directory in search_dirs():
            if _exists(directory / path):
                return directory / path
    raise ConfigError(_not_found(str(name_or_path), path))


def _not_found(name: str, path: Path) -> str:
    """What to do about a dataset that is not there: where it comes from (for a
    known name), where to put it, and what is there now."""
    dirs = list(dict.fromkeys(search_dirs()))
    text = f"no dataset at {name!r}: not a path"
    if path.is_absolute() or len(path.parts) != 1:
        return text + " (check the path, or give a dataset name)"
    text += f", and no folder of that name in {[str(d) for d in dirs]}"
    if name in KNOWN_DATASETS:
        text += (
            f". Get {name}: {KNOWN_DATASETS[name]}; unpack it as a folder named "
            f"{name!r} in one of those folders, or point ${DATA_DIR_ENV} at the "
            "folder holding it"
        )
    else:
        text += (
            f". Put the dataset in a folder named {name!r} in one of those folders "
            f"(or set ${DATA_DIR_ENV}), or pass its path; a plain interaction "
            'log loads with format="delimited"'
        )
    present = sorted(
        {p.name for d in dirs if _is_dir(d) for p in _children(d)} | {EMBEDDED}
    )
    return text + f". Available now: {', '.join(present)}"


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _children(folder: Path) -> list[Path]:
    try:
        found = folder.iterdir()
        return [p for p in found if _is_dir(p) and not p.name.startswith(".")]
    except OSError:
        return []


def detect(path: Path) -> tuple[Format, Path, Path | None]:
    """``(format, folder, file or None)`` for a dataset folder or one of its files."""
    if path.is_file():
        name = path.name
        fmt = _BY_FILE_NAME.get(name)
        if fmt is None:
            fmt = next((f for s, f in _BY_SUFFIX.items() if name.endswith(s)), None)
        if name == "movies.dat":
            fmt = "ml-1m" if (path.parent / "ratings.dat").is_file() else "parquet"
        if fmt is None:
            raise DataFormatError(
                "cannot tell the format from the file name; pass format= one of "
                f"{list(FORMATS)}",
                path=path,
            )
        return fmt, path.parent, path  # type: ignore[return-value]
    if not path.is_dir():
        raise DataFormatError("not a regular file or folder", path=path)
    # exists(), not is_file(): a folder in a data file's place is then reported
    # by the reader as such, not as "no known data files".
    checks: list[tuple[Format, Callable[[], bool]]] = [
        ("ml-100k", lambda: (path / "u.data").exists()),
        ("movielens-csv", lambda: (path / "ratings.csv").exists()),
        ("ml-1m", lambda: (path / "ratings.dat").exists()),
        ("parquet", lambda: any(path.glob("*.parquet"))),
        ("recbole", lambda: any(path.glob("*.inter"))),
        (
            "amazon2023",
            lambda: any(path.glob("*.jsonl*")) or any(path.glob("*.json.gz")),
        ),
    ]
    for fmt, present in checks:
        if present():
            return fmt, path, None
    if path.name in _BY_FILE_NAME or path.name.endswith(tuple(_BY_SUFFIX)):
        raise DataFormatError(
            "is a folder, but its name is a data file's; expected that file here",
            path=path,
        )
    raise DataFormatError(
        "no known data files here: expected u.data, ratings.csv, ratings.dat, "
        "*.parquet, *.inter or *.jsonl",
        path=path,
    )


def _load_path(
    path: Path,
    format: Format | None,
    cache: bool,
    full_history: bool,
    *,
    source: str | None,
    extra: dict[str, Any] | None = None,
) -> Dataset:
    extra = dict(extra or {})
    item_file = extra.pop("item_file", None)
    try:
        fmt, root, hint = _where(path, format)
        if full_history and fmt != "recbole":
            raise ConfigError(
                f"full_history applies to RecBole sequences only, not to format {fmt!r}"
            )
        if item_file is not None and fmt != "recbole":
            raise ConfigError(
                f"item_file applies to RecBole atomic files only, not to format {fmt!r}"
            )
        loader = _LOADERS[fmt]
        files = loader.find(root, hint)
        if item_file is not None:
            item = Path(item_file).expanduser()
            files["item"] = item if item.is_absolute() else root / item
    except OSError as exc:  # a folder that cannot be listed, a file that vanished
        raise DataFormatError(
            f"cannot read: {exc.strerror or one_line(exc)}",
            path=exc.filename or path,
        ) from exc
    if not any(role in files for role in loader.required):
        raise DataFormatError(
            f"no {fmt} interaction file found (looked for {list(loader.required)})",
            path=path,
        )
    sources = {role: read_source(p) for role, p in files.items()}
    options: dict[str, Any] = dict(extra)
    if fmt == "recbole":
        options["full_history"] = full_history
    fingerprint = _fingerprint(fmt, sources, options)
    key = hashlib.sha256(
        f"{fingerprint}|v{LOADER_VERSION}|".encode()
        + repr(sorted((r, s.size, s.mtime_ns) for r, s in sources.items())).encode()
    ).hexdigest()
    name = root.name
    where = source or str(root.resolve())
    target = _cache.cache_dir() / _cache_name(fmt, name, where, key)
    if cache:
        hit = _cache.read(target, key)
        if hit is not None:
            return hit
    main = sources[_interaction_role(sources, loader)].path
    try:
        raw = loader.parse(sources, **options)
        dataset = build(
            raw,
            name=name,
            format=fmt,
            source=source or str(root),
            fingerprint=fingerprint,
        )
    except AgenticRecError:
        raise
    except _READ_ERRORS as exc:
        # The one net under every parser: a failure no parser anticipated still
        # names the file (the interaction file: the parsers name any other).
        raise DataFormatError(
            f"cannot read as {fmt}: {type(exc).__name__}: {one_line(exc)}",
            path=getattr(exc, "filename", None) or main,
        ) from exc
    if dataset.n_interactions == 0:
        raise DataValidationError(
            f"{sources[_interaction_role(sources, loader)].path}: no interactions; the "
            "file holds no data rows"
        )
    if cache:
        _cache.write(target, dataset, key)
    return dataset


_READ_ERRORS = (
    csv.Error,
    UnicodeError,
    ValueError,
    OverflowError,
    OSError,
    EOFError,
    zlib.error,
    RecursionError,
    pa.ArrowException,
)
"""What a malformed or unreadable file can raise from third-party parsing."""


def _where(path: Path, format: Format | None) -> tuple[Format, Path, Path | None]:
    """``(format, folder, file or None)``: detected, or as given (no detection)."""
    if format is None:
        return detect(path)
    if path.is_file():
        return format, path.parent, path
    if path.is_dir():
        return format, path, None
    raise DataFormatError("not a regular file or folder", path=path)


def _interaction_role(sources: dict[str, Source], loader: _Loader) -> str:
    return next(role for role in loader.required if role in sources)


def _fingerprint(fmt: str, sources: dict[str, Source], options: dict) -> str:
    digest = hashlib.sha256(f"agenticrec-data|{fmt}|{sorted(options.items())}".encode())
    for role in sorted(sources):
        digest.update(f"|{role}:{sources[role].digest}".encode())
    return digest.hexdigest()


def _cache_name(fmt: str, name: str, where: str, key: str) -> str:
    """``{format}-{name}-{hash of where it lives}-{key}.npz``: one file per source
    folder, so a rebuild can remove that folder's stale file."""
    place = hashlib.sha256(where.encode()).hexdigest()[:8]
    slug = re.sub(r"[^A-Za-z0-9_.]+", "_", name)
    return f"{fmt}-{slug}-{place}-{key[:24]}.npz"
