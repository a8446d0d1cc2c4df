"""Amazon Reviews 2023 JSONL (McAuley Lab): ``{Category}.jsonl`` reviews and
``meta_{Category}.jsonl`` item metadata, optionally gzipped.

Reviews give ``user_id``, ``parent_asin`` (the item), ``timestamp`` (unix
milliseconds) and ``rating``; timestamps are stored as seconds, with ties inside
a second kept in millisecond order. Metadata gives ``title``, ``categories``
(falling back to ``main_category`` when empty), ``store`` (the brand), text from
``features`` and ``description``, and the release year from
``details["Date First Available"]`` when present.

Lines end in LF or CRLF (a file with CRs and no LF is read as CR-terminated).
A malformed line, a timestamp outside int64, a non-finite rating (``NaN``), an
empty or corrupt (gzip) file raises `DataFormatError` naming the file and,
where there is one, the line and key. A reviews file given explicitly
(``load(path, format="amazon2023")``) is read whatever its name.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from agenticrec.errors import DataFormatError

from ._dataset import UNKNOWN_YEAR, RawData
from ._io import Source, one_line

_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")

_REVIEW_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("parent_asin", pa.string()),
        ("timestamp", pa.int64()),
        ("rating", pa.float64()),
    ]
)
_REVIEW_TYPES = {
    "user_id": str,
    "parent_asin": str,
    "timestamp": int,
    "rating": (int, float),
}

_META_SCHEMA = pa.schema(
    [
        ("parent_asin", pa.string()),
        ("title", pa.string()),
        ("main_category", pa.string()),
        ("categories", pa.list_(pa.string())),
        ("store", pa.string()),
        ("features", pa.list_(pa.string())),
        ("description", pa.list_(pa.string())),
        ("details", pa.struct([("Date First Available", pa.string())])),
    ]
)
_META_TYPES = {
    "parent_asin": str,
    "title": (str, type(None)),
    "main_category": (str, type(None)),
    "categories": (list, type(None)),
    "store": (str, type(None)),
    "features": (list, type(None)),
    "description": (list, type(None)),
    "details": (dict, type(None)),
}


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".jsonl.gz", ".jsonl", ".json.gz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def find(root: Path, hint: Path | None = None) -> dict[str, Path]:
    # Folders too: one in a file's place is then named by read_source.
    files = sorted(p for p in root.iterdir() if ".json" in p.name)
    if hint is not None and hint.is_file():
        stem = _stem(hint).removeprefix("meta_")
    else:
        stems = sorted({_stem(p) for p in files if not p.name.startswith("meta_")})
        if len(stems) != 1:
            raise DataFormatError(
                f"expected one reviews file ({{Category}}.jsonl), found {stems}; "
                "pass the reviews file instead of the folder",
                path=root,
            )
        stem = stems[0]
    found: dict[str, Path] = {}
    for p in files:
        if _stem(p) == stem:
            found["ratings"] = p
        elif _stem(p) == f"meta_{stem}":
            found["items"] = p
    if hint is not None and hint.is_file() and hint not in found.values():
        found["ratings"] = hint  # named explicitly, whatever its suffix
    return found


def _text(src: Source) -> bytes:
    if src.path.name.endswith(".gz"):
        try:
            data = gzip.decompress(src.data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(
                f"not a readable gzip file: {one_line(exc)}", path=src.path
            ) from exc
    else:
        data = src.data
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")
    return data.removeprefix(b"\xef\xbb\xbf")


def _read_jsonl(
    src: Source, schema: pa.Schema, types: dict[str, Any], required: tuple[str, ...]
) -> pa.Table:
    data = _text(src)
    if not data.strip():
        raise DataFormatError(
            "the file is empty; expected one JSON object per line",
            path=src.path,
            line=1,
        )
    try:
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(block_size=1 << 24),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowException, ValueError) as exc:
        _locate(src, data, types, required)
        raise DataFormatError(f"cannot parse: {one_line(exc)}", path=src.path) from exc
    if any(table.column(c).null_count for c in required):
        _locate(src, data, types, required)
        raise DataFormatError(f"a row lacks one of {list(required)}", path=src.path)
    floats = [c for c in table.column_names if pa.types.is_floating(table[c].type)]
    if any(not _all_finite(table.column(c)) for c in floats):
        _locate(src, data, types, required)
        raise DataFormatError("a non-finite number (NaN or Infinity)", path=src.path)
    return table


def _all_finite(column: pa.ChunkedArray) -> bool:
    """No NaN or infinity (nulls, absent values, are allowed)."""
    return pc.all(pc.is_finite(column)).as_py() is not False


def _locate(
    src: Source, data: bytes, types: dict[str, Any], required: tuple[str, ...]
) -> None:
    """Find the first malformed line and raise for it."""
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise DataFormatError(
                f"invalid utf-8 byte 0x{raw[exc.start]:02x} at column {exc.start + 1}",
                path=src.path,
                line=lineno,
            ) from None
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"invalid JSON at column {exc.colno}: {exc.msg}",
                path=src.path,
                line=lineno,
            ) from None
        except (RecursionError, ValueError) as exc:  # too deep, 4300+ digit ints
            raise DataFormatError(
                f"unreadable JSON: {one_line(exc)}", path=src.path, line=lineno
            ) from None
        if not isinstance(record, dict):
            raise DataFormatError("expected a JSON object", path=src.path, line=lineno)
        for key in required:
            if record.get(key) is None:
                raise DataFormatError(
                    f"missing {key!r}", path=src.path, line=lineno, field=key
                )
        for key, kind in types.items():
            value = record.get(key)
            if value is not None and (
                not isinstance(value, kind) or isinstance(value, bool)
            ):
                raise DataFormatError(
                    f"unexpected {type(value).__name__} {value!r:.40}",
                    path=src.path,
                    line=lineno,
                    field=key,
                )
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise DataFormatError(
                    f"integer {str(value)[:40]} does not fit in 64 bits",
                    path=src.path,
                    line=lineno,
                    field=key,
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise DataFormatError(
                    f"expected a finite number, found {value!r}",
                    path=src.path,
                    line=lineno,
                    field=key,
                )


def parse(src: dict[str, Source]) -> RawData:
    reviews = _read_jsonl(
        src["ratings"],
        _REVIEW_SCHEMA,
        _REVIEW_TYPES,
        ("user_id", "parent_asin", "timestamp"),
    )
    raw = RawData(
        users=reviews.column("user_id").to_numpy(zero_copy_only=False).astype(str),
        items=reviews.column("parent_asin").to_numpy(zero_copy_only=False).astype(str),
        timestamps=reviews.column("timestamp").to_numpy(),
        time_scale=1000,
    )
    rating = reviews.column("rating")
    if rating.null_count == 0:
        raw.ratings = rating.to_numpy().astype(np.float32)
    elif rating.null_count == len(rating):
        raw.notes.append("no ratings in the reviews")
    else:
        raw.notes.append(
            f"{rating.null_count} reviews without a rating: ratings "
            "dropped for the whole dataset"
        )
    if "items" in src:
        meta = _read_jsonl(src["items"], _META_SCHEMA, _META_TYPES, ("parent_asin",))
        rows = meta.to_pydict()
        raw.catalog_ids = np.asarray(rows["parent_asin"], dtype=str)
        raw.titles = [t or "" for t in rows["title"]]
        raw.categories = [
            tuple(c) if c else ((m,) if m else ())
            for c, m in zip(rows["categories"], rows["main_category"], strict=True)
        ]
        raw.brands = [s or "" for s in rows["store"]]
        raw.text = [
            " ".join([*(f or []), *(d or [])]).strip()
            for f, d in zip(rows["features"], rows["description"], strict=True)
        ]
        raw.release_year = np.array(
            [_year((d or {}).get("Date First Available")) for d in rows["details"]],
            dtype=np.int16,
        )
    return raw


def _year(value: str | None) -> int:
    match = _YEAR.search(value) if value else None
    return int(match.group(1)) if match else UNKNOWN_YEAR
