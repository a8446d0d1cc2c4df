"""Any delimited interaction log, described by a column mapping.

``load(path, format="delimited", columns=..., sep=..., header=...)`` reads one
text file whose rows are interactions, without conversion code:

* ``columns`` maps each role to a column: ``user`` and ``item`` (required),
  ``rating`` (or its alias ``weight``) and ``timestamp`` (optional). A column
  is named by its header name (a ``str``) or by its 0-based position (an
  ``int``); default ``{"user": 0, "item": 1}``.
* ``sep`` is any non-empty string without line breaks or ``"``: ``","``,
  ``"\\t"``, ``";"``, ``"|"``, ``" "``, ``"::"`` (MovieLens-1M style) ...;
  default ``","``. Only with ``","`` do ``"`` quote fields (CSV); with any
  other separator quotes are data.
* ``header``: whether line 1 names the columns; default: ``True`` when some
  column is named by a string, else ``False``. Positions count from 0 either way.

Values: user and item ids are any tokens (integers stay integers unless that
would lose text, e.g. ``"007"``); ratings/weights finite numbers; timestamps
integer unix seconds, optional ``-``, within int64. Without a ``timestamp``
column interactions keep file order (``time_kind="order"``). Lines may end in
LF, CRLF or CR; a file holding NUL bytes (binary) is refused; a malformed line
raises `DataFormatError` naming the file, the
1-based line and the field; a bad mapping raises `ConfigError` naming the
option.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from agenticrec.errors import ConfigError, DataFormatError

from ._dataset import RawData
from ._io import (
    Column,
    Source,
    _split,
    as_ids,
    first_line,
    read_table,
    universal_newlines,
)

ROLES = ("user", "item", "rating", "timestamp")
"""Roles a column can play; ``weight`` is accepted as another name for
``rating``."""

DEFAULT_COLUMNS: Mapping[str, int] = {"user": 0, "item": 1}


def options(
    columns: Mapping[str, str | int] | None,
    sep: str | None,
    header: bool | None,
) -> dict[str, Any]:
    """Validated loader options (JSON-able: they are part of the fingerprint).

    Raises:
        ConfigError: an unknown role, a missing user/item column, a column that
            is neither a name nor a position >= 0, one column in two roles, a
            positional-only file given names, or an unusable separator.
    """
    cols = dict(DEFAULT_COLUMNS if columns is None else columns)
    if "weight" in cols:
        if "rating" in cols:
            raise ConfigError("columns: give rating or weight, not both")
        cols["rating"] = cols.pop("weight")
    unknown = sorted(set(cols) - set(ROLES))
    if unknown:
        raise ConfigError(
            f"columns: unknown role {unknown[0]!r}; roles are user, item, "
            "rating (or weight), timestamp"
        )
    for role in ("user", "item"):
        if role not in cols:
            raise ConfigError(f"columns: the {role!r} column is required")
    for role, col in cols.items():
        if isinstance(col, bool) or not isinstance(col, str | int):
            raise ConfigError(
                f"columns[{role!r}]: expected a header name or a 0-based "
                f"position, got {col!r}"
            )
        if isinstance(col, int) and col < 0:
            raise ConfigError(f"columns[{role!r}]: position {col} is negative")
        if isinstance(col, str) and not col:
            raise ConfigError(f"columns[{role!r}]: empty column name")
    seen: dict[str | int, str] = {}
    for role, col in cols.items():
        if col in seen:
            raise ConfigError(
                f"columns: {seen[col]!r} and {role!r} both name column {col!r}"
            )
        seen[col] = role
    sep = "," if sep is None else sep
    if not isinstance(sep, str) or not sep or any(c in sep for c in '\r\n"'):
        raise ConfigError(
            f"sep: expected a non-empty separator without line breaks or '\"', "
            f"got {sep!r}"
        )
    named = any(isinstance(c, str) for c in cols.values())
    if header is None:
        header = named
    if named and not header:
        raise ConfigError(
            "columns are named but header=False: name columns by 0-based "
            "position in a file without a header line"
        )
    return {
        "columns": {r: cols[r] for r in ROLES if r in cols},
        "sep": sep,
        "header": bool(header),
    }


def find(root: Path, hint: Path | None) -> dict[str, Path]:
    if hint is None:
        raise DataFormatError(
            "format 'delimited' reads one file: pass the interaction file's path, "
            "not its folder",
            path=root,
        )
    return {"ratings": hint}


def parse(
    src: dict[str, Source],
    *,
    columns: Mapping[str, str | int],
    sep: str,
    header: bool,
) -> RawData:
    source = src["ratings"]
    nul = source.data.find(b"\0")
    if nul >= 0:
        raise DataFormatError(
            "holds NUL bytes, so it is not a text table (a parquet, compressed or "
            "binary file?); pass the format it is in",
            path=source.path,
            line=universal_newlines(source.data[:nul]).count(b"\n") + 1,
        )
    quoting = sep == ","
    head = first_line(source.data).decode("utf-8", "replace")
    try:
        fields = _split(head, sep, quoting) if head else []
    except Exception:  # noqa: BLE001 - read_table names the bad quoting
        fields = head.split(sep)
    if header:
        names = fields
    else:
        names = [f"column {i}" for i in range(len(fields))]
        for role, col in columns.items():
            if isinstance(col, int) and col < len(names):
                names[col] = f"{role} (column {col})"
    role_name: dict[str, str] = {}
    for role, col in columns.items():
        if isinstance(col, int):
            if col >= len(names):
                raise DataFormatError(
                    f"columns[{role!r}] is position {col}, but line 1 has "
                    f"{len(names)} {sep!r}-separated fields",
                    path=source.path,
                    line=1,
                )
            role_name[role] = names[col]
        else:
            role_name[role] = col
    if header and len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataFormatError(
            f"header names column {dup!r} twice", path=source.path, line=1
        )
    kinds = {"user": "str", "item": "str", "rating": "float", "timestamp": "int"}
    table = read_table(
        source,
        [Column(role_name[r], kinds[r]) for r in ROLES if r in role_name],  # type: ignore[arg-type]
        delimiter=sep,
        header=header,
        names=None if header else names,
        quoting=quoting,
    )
    ratings = table.get(role_name["rating"]) if "rating" in role_name else None
    times = table.get(role_name["timestamp"]) if "timestamp" in role_name else None
    raw = RawData(
        users=as_ids(table[role_name["user"]]),
        items=as_ids(table[role_name["item"]]),
        ratings=None if ratings is None else np.asarray(ratings, np.float32),
        timestamps=None if times is None else np.asarray(times, np.int64),
    )
    if times is None:
        raw.notes.append("no timestamp column: order is the file's row order")
    return raw
