"""Amazon Reviews 2023 JSONL (McAuley Lab): ``{Category}.jsonl`` reviews and
``meta_{Category}.jsonl`` item metadata, optionally gzipped.

Reviews give ``user_id``, ``parent_asin`` (the item), ``timestamp`` (unix
milliseconds) and ``rating``; timestamps are stored as seconds, with ties inside
a second kept in millisecond order. Metadata gives ``title``, ``categories``
(falling back to ``main_category`` when empty), ``store`` (the brand), text from
``features`` and ``description``, and the release year from
``details["Date First Available"]`` when present.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from agenticrec.errors import DataFormatError

from ._dataset import UNKNOWN_YEAR, RawData
from ._io import Source

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
    files = sorted(p for p in root.iterdir() if p.is_file() and ".json" in p.name)
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
    return found


def _text(src: Source) -> bytes:
    if src.path.name.endswith(".gz"):
        try:
            return gzip.decompress(src.data)
        except (OSError, EOFError) as exc:
            raise DataFormatError(
                f"not a readable gzip file: {exc}", path=src.path
            ) from exc
    return src.data


def _read_jsonl(
    src: Source, schema: pa.Schema, types: dict[str, Any], required: tuple[str, ...]
) -> pa.Table:
    data = _text(src)
    try:
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(block_size=1 << 24),
            parse_options=pajson.ParseOptions(
                explicit_schema=schema, unexpected_field_behavior="ignore"
            ),
        )
    except pa.ArrowInvalid as exc:
        _locate(src, data, types, required)
        raise DataFormatError(f"cannot parse: {exc}", path=src.path) from exc
    if any(table.column(c).null_count for c in required):
        _locate(src, data, types, required)
        raise DataFormatError(f"a row lacks one of {list(required)}", path=src.path)
    return table


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
