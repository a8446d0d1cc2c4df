"""MovieLens loaders: ml-100k (``u.data``), ml-1m (``ratings.dat``), the CSV
releases (``ratings.csv``) and parquet interactions (``ratings.parquet``).

Text files may end their lines with LF, CRLF or, as old Mac exports do, a bare
CR: such a file is read as it is meant (rows split at each CR) rather than
refused, since a CR can only end a line there (quoted fields cannot span
lines). Every malformed or unreadable file raises `DataFormatError` naming the
file and, for text files, the line and field."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from agenticrec.errors import DataFormatError

from ._dataset import UNKNOWN_YEAR, RawData
from ._io import (
    Column,
    Source,
    first_line,
    one_line,
    parse_int,
    read_table,
    text_lines,
)

_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
"""The 19 genre flags of ``u.item`` when ``u.genre`` is absent."""


def year_from_title(title: str) -> int:
    """``1995`` from ``"Toy Story (1995)"``; `UNKNOWN_YEAR` when there is none."""
    match = _YEAR_IN_TITLE.search(title)
    return int(match.group(1)) if match else UNKNOWN_YEAR


def _genres(field: str) -> tuple[str, ...]:
    if not field or field == "(no genres listed)":
        return ()
    return tuple(field.split("|"))


# ------------------------------------------------------------------ ml-100k
def find_ml100k(root: Path) -> dict[str, Path]:
    return _existing(
        root,
        {
            "ratings": "u.data",
            "items": "u.item",
            "genres": "u.genre",
            "users": "u.user",
        },
    )


def parse_ml100k(src: dict[str, Source]) -> RawData:
    """``u.data``: tab-separated user, item, rating, timestamp; ``u.item``:
    ``|``-separated latin-1 with 19 genre flags named by ``u.genre``."""
    table = read_table(
        src["ratings"],
        [
            Column("user_id", "int"),
            Column("item_id", "int"),
            Column("rating", "int"),
            Column("timestamp", "int"),
        ],
        delimiter="\t",
        header=False,
        names=["user_id", "item_id", "rating", "timestamp"],
    )
    raw = RawData(
        users=table["user_id"],
        items=table["item_id"],
        timestamps=table["timestamp"],
        ratings=table["rating"].astype(np.float32),
    )
    if "items" in src:
        genres = _ml100k_genres(src.get("genres"))
        flags = [f"genre:{g}" for g in genres]
        names = [
            "item_id",
            "title",
            "release_date",
            "video_release_date",
            "imdb_url",
            *flags,
        ]
        cat = read_table(
            src["items"],
            [
                Column("item_id", "int"),
                Column("title"),
                Column("release_date"),
                *(Column(f, "int") for f in flags),
            ],
            delimiter="|",
            header=False,
            names=names,
            encoding="latin-1",
            quoting=False,
        )
        marks = np.stack([cat[f] for f in flags], axis=1) != 0
        raw.catalog_ids = cat["item_id"]
        raw.titles = list(cat["title"])
        raw.categories = [
            tuple(g for g, on in zip(genres, row, strict=True) if on) for row in marks
        ]
        raw.release_year = np.array(
            [
                _year_of_date(d, t)
                for d, t in zip(cat["release_date"], raw.titles, strict=True)
            ],
            dtype=np.int16,
        )
    if "users" in src:
        raw.known_users = _first_field(src["users"], "|", "latin-1", "user_id")
    return raw


def _ml100k_genres(src: Source | None) -> tuple[str, ...]:
    if src is None:
        return ML100K_GENRES
    names: dict[int, str] = {}
    for lineno, line in enumerate(text_lines(src, "latin-1"), 1):
        if not line.strip():
            continue
        name, sep, index = line.rpartition("|")
        if not sep:
            raise DataFormatError(
                "expected 'name|index'", path=src.path, line=lineno, field="index"
            )
        names[parse_int(index, src, lineno, "index")] = name
    if sorted(names) != list(range(len(names))):
        raise DataFormatError(
            f"genre indices are not 0..{len(names) - 1}", path=src.path
        )
    return tuple(names[i] for i in range(len(names)))


def _year_of_date(date: str, title: str) -> int:
    if len(date) >= 4 and date[-4:].isdigit():
        return int(date[-4:])
    return year_from_title(title)


# ------------------------------------------------------------------- ml-1m
def find_ml1m(root: Path) -> dict[str, Path]:
    return _existing(
        root, {"ratings": "ratings.dat", "items": "movies.dat", "users": "users.dat"}
    )


def parse_ml1m(src: dict[str, Source]) -> RawData:
    """``ratings.dat``: ``UserID::MovieID::Rating::Timestamp`` (latin-1)."""
    names = ["UserID", "MovieID", "Rating", "Timestamp"]
    table = read_table(
        src["ratings"],
        [Column(n, "int") for n in names],
        delimiter="::",
        header=False,
        names=names,
        encoding="latin-1",
        quoting=False,
    )
    raw = RawData(
        users=table["UserID"],
        items=table["MovieID"],
        timestamps=table["Timestamp"],
        ratings=table["Rating"].astype(np.float32),
    )
    _attach_movies(raw, src)
    return raw


def _attach_movies(raw: RawData, src: dict[str, Source]) -> None:
    """Catalog from ``movies.dat`` (``MovieID::Title::Genres``) or ``movies.csv``,
    and known users from ``users.dat``."""
    if "items" in src:
        if src["items"].path.suffix == ".csv":
            cat = read_table(
                src["items"],
                [Column("movieId", "int"), Column("title"), Column("genres")],
            )
            ids, titles, genres = cat["movieId"], cat["title"], cat["genres"]
        else:
            cat = read_table(
                src["items"],
                [Column("MovieID", "int"), Column("Title"), Column("Genres")],
                delimiter="::",
                header=False,
                names=["MovieID", "Title", "Genres"],
                encoding="latin-1",
                quoting=False,
            )
            ids, titles, genres = cat["MovieID"], cat["Title"], cat["Genres"]
        raw.catalog_ids = ids
        raw.titles = list(titles)
        raw.categories = [_genres(g) for g in genres]
        raw.release_year = np.array(
            [year_from_title(t) for t in titles], dtype=np.int16
        )
    if "users" in src:
        raw.known_users = _first_field(src["users"], "::", "latin-1", "UserID")


# ------------------------------------------------------------- MovieLens CSV
def find_csv(root: Path) -> dict[str, Path]:
    return _existing(
        root, {"ratings": "ratings.csv", "items": "movies.csv", "tags": "tags.csv"}
    )


def parse_csv(src: dict[str, Source]) -> RawData:
    """``ratings.csv`` (``userId,movieId[,rating][,timestamp]``), ``movies.csv``
    (``movieId,title,genres``; year parsed from the title), ``tags.csv`` (free
    text: each movie's distinct tags in file order, joined by ``", "``)."""
    header = _csv_header(src["ratings"])
    columns = [Column("userId", "int"), Column("movieId", "int")]
    if "rating" in header:
        columns.append(Column("rating", "float"))
    if "timestamp" in header:
        columns.append(Column("timestamp", "int"))
    table = read_table(src["ratings"], columns)
    raw = RawData(
        users=table["userId"],
        items=table["movieId"],
        timestamps=table.get("timestamp"),
        ratings=table["rating"].astype(np.float32) if "rating" in table else None,
    )
    _attach_movies(raw, src)
    if "tags" in src and raw.catalog_ids is not None:
        tags = read_table(src["tags"], [Column("movieId", "int"), Column("tag")])
        position = {int(m): k for k, m in enumerate(raw.catalog_ids)}
        per_item: dict[int, dict[str, None]] = {}
        stray = 0
        for movie, tag in zip(tags["movieId"].tolist(), tags["tag"], strict=True):
            k = position.get(movie)
            if k is None:
                stray += 1
                continue
            per_item.setdefault(k, {})[tag.strip()] = None
        raw.text = [""] * len(raw.catalog_ids)
        for k, distinct in per_item.items():
            raw.text[k] = ", ".join(t for t in distinct if t)
        if stray:
            raw.notes.append(f"{stray} tags name movies outside the catalog: ignored")
    return raw


def _csv_header(src: Source) -> list[str]:
    first = first_line(src.data)
    try:
        return next(csv.reader([first.decode("utf-8", errors="replace")]))
    except (csv.Error, StopIteration):
        return []


# ------------------------------------------------------------------ parquet
_USER_COLUMNS = ("userid", "user_id", "user")
_ITEM_COLUMNS = ("movieid", "itemid", "item_id", "item", "parent_asin", "asin")


def find_parquet(root: Path) -> dict[str, Path]:
    found = _existing(root, {"ratings": "ratings.parquet", "users": "users.dat"})
    if "ratings" not in found:
        files = sorted(root.glob("*.parquet"))
        if len(files) == 1:
            found["ratings"] = files[0]
    for name in ("movies.dat", "movies.csv"):
        if (root / name).is_file():
            found["items"] = root / name
            break
    return found


def parse_parquet(src: dict[str, Source]) -> RawData:
    """Parquet interactions: a user column (``userID``/``user_id``/...) and an item
    column (``movieID``/``item_id``/...), optional ``rating`` and ``timestamp``.
    Without a timestamp column the order is the file's row order. The catalog
    comes from ``movies.dat`` or ``movies.csv`` beside it."""
    ratings = src["ratings"]
    if not ratings.data:
        raise DataFormatError("the file is empty (0 bytes)", path=ratings.path)
    try:
        table = pq.read_table(pa.BufferReader(ratings.data))
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(
            f"not a readable parquet file: {one_line(exc)}", path=ratings.path
        ) from exc
    by_lower = {name.lower(): name for name in table.column_names}

    def pick(options: tuple[str, ...]) -> str | None:
        for option in options:
            if option in by_lower:
                return by_lower[option]
        return None

    user_col = pick(_USER_COLUMNS)
    item_col = pick(_ITEM_COLUMNS)
    for col, role in ((user_col, _USER_COLUMNS), (item_col, _ITEM_COLUMNS)):
        if col is None:
            raise DataFormatError(
                f"no column named any of {list(role)}; columns are "
                f"{table.column_names}",
                path=ratings.path,
                field=role[0],
            )
    assert user_col is not None and item_col is not None
    rating_col = pick(("rating",))
    time_col = pick(("timestamp",))
    raw = RawData(
        users=_id_column(table, user_col, ratings),
        items=_id_column(table, item_col, ratings),
    )
    if rating_col is not None:
        raw.ratings = _number_column(table, rating_col, ratings, pa.float32())
    if time_col is not None:
        raw.timestamps = _number_column(table, time_col, ratings, pa.int64())
    else:
        raw.notes.append("no timestamps: order is the file's row order")
    _attach_movies(raw, src)
    return raw


def _first_null(column: pa.ChunkedArray) -> int:
    return int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])


def _id_column(table: pa.Table, name: str, src: Source) -> np.ndarray:
    column = table.column(name)
    if column.null_count:
        row = _first_null(column)
        raise DataFormatError(f"missing id in row {row + 1}", path=src.path, field=name)
    if pa.types.is_integer(column.type):
        values = column.to_numpy()
        if values.dtype == np.uint64 and values.size:
            too_big = np.flatnonzero(values > np.iinfo(np.int64).max)
            if too_big.size:
                raise DataFormatError(
                    f"id {values[too_big[0]]} in row {too_big[0] + 1} does not fit "
                    "in 64-bit signed integers",
                    path=src.path,
                    field=name,
                )
        return values.astype(np.int64)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        try:
            ints = pc.cast(column, pa.int64())
        except pa.ArrowInvalid:
            return column.to_numpy(zero_copy_only=False).astype(str)
        # Integers only when nothing is lost: "007" stays a string id.
        if pc.all(pc.equal(pc.cast(ints, pa.string()), column)).as_py():
            return ints.to_numpy()
        return column.to_numpy(zero_copy_only=False).astype(str)
    raise DataFormatError(
        f"ids must be integers or strings, found {column.type}",
        path=src.path,
        field=name,
    )


def _number_column(
    table: pa.Table, name: str, src: Source, target: pa.DataType
) -> np.ndarray:
    column = table.column(name)
    if column.null_count:
        row = _first_null(column)
        raise DataFormatError(
            f"missing value in row {row + 1}", path=src.path, field=name
        )
    try:
        values = pc.cast(column, target).to_numpy()
    except pa.ArrowException as exc:
        raise DataFormatError(
            f"cannot read as {target}: {one_line(exc)}", path=src.path, field=name
        ) from exc
    if values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        raise DataFormatError(
            f"non-finite value in row {row + 1}", path=src.path, field=name
        )
    return values


# ------------------------------------------------------------------ helpers
def _existing(root: Path, names: dict[str, str]) -> dict[str, Path]:
    # exists(), not is_file(): a folder or unreadable entry in a file's place is
    # then named by read_source ("is a folder; expected a file").
    return {role: root / name for role, name in names.items() if (root / name).exists()}


def _first_field(src: Source, sep: str, encoding: str, field: str) -> np.ndarray:
    """First field of each non-empty line (a user file's ids), as ids."""
    values = []
    for lineno, line in enumerate(text_lines(src, encoding), 1):
        if not line.strip():
            continue
        value = line.split(sep, 1)[0].strip()
        values.append(parse_int(value, src, lineno, field))
    return np.asarray(values, dtype=np.int64)
