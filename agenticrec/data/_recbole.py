"""RecBole atomic files, including UniSRec's sequential form.

Two shapes of ``.inter`` file are read, told apart by the header:

* sequential (UniSRec): ``{p}.{train,valid,test}.inter`` with columns
  ``user_id:token  item_id_list:token_seq  item_id:token``. Each user's test row
  holds the whole sequence, history then target, so the sequence is that row
  (order = position; no timestamps). Histories there are capped at the last 50
  items: the loader counts what the cap hid from the train rows
  (`LoadReport.truncated_interactions`) and, with ``full_history=True``,
  rebuilds the uncapped sequences from the train rows instead.
* plain: ``{p}.inter`` with ``user_id:token  item_id:token`` and optionally
  ``rating:float``, ``timestamp:float``; catalog titles from ``{p}.item`` when
  it has a ``title`` column. When there is no ``{p}.item`` but the folder holds
  exactly one ``*.item`` file (another prefix), that file is the catalog (a
  note in `LoadReport.notes` says so); ``load(..., item_file=...)`` names it.

Tokens are raw ids, except where ``{p}.item2index`` / ``{p}.user2index`` exist
(UniSRec): then tokens are indices and those files give the raw ids (ASINs).
The catalog follows ``item2index`` order, so item ids equal UniSRec's indices.

``{p}.text`` (UniSRec: ``ASIN<TAB>title. category path. brand.``) becomes
`Dataset.text` verbatim and is split into title, categories and brand: the
category path is the ``". "``-separated segment that starts with the dataset's
root category (the category prefix shared by most items, found from the data,
e.g. ``Industrial & Scientific``); the title is everything before it, the brand
the segment after it. The path's levels are joined by spaces in the source and
cannot be told apart, so ``categories`` is ``(root, rest of the path)``. Texts
without the root fall back to positions: last segment brand, the one before it
categories, the rest title.

Lines may end in LF or CRLF; a file with CRs and no LF at all (old Mac) is read
as CR-terminated. Ids, indices and timestamps must be ASCII integers within
int64, ratings finite numbers; anything else raises `DataFormatError` naming the
file, line and field. A file given explicitly (``load(path, format="recbole")``)
whose name has none of the suffixes above is the interaction file: sequential
when its header has ``item_id_list``, plain otherwise.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from agenticrec.errors import DataFormatError

from ._dataset import RawData
from ._io import Source, as_ids, parse_int, parse_number, text_lines

CAP = 50
"""History cap of UniSRec's atomic files."""


_SUFFIXES = (
    ".train.inter",
    ".valid.inter",
    ".test.inter",
    ".inter",
    ".item2index",
    ".user2index",
    ".text",
    ".item",
)


def find(root: Path, hint: Path | None = None) -> dict[str, Path]:
    if hint is not None and hint.is_file() and not hint.name.endswith(_SUFFIXES):
        # Named explicitly with format="recbole": the file is the interactions.
        # Companion files (.item2index, .text, ...) share its first name part.
        role = "test" if "item_id_list" in _first_line(hint) else "inter"
        found = _companions(root, hint.name.split(".")[0])
        found.pop("test", None)
        found.pop("inter", None)
        found[role] = hint
        return found
    return _companions(root, _prefix(root, hint))


def _companions(root: Path, prefix: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for role, suffix in (
        ("test", ".test.inter"),
        ("valid", ".valid.inter"),
        ("train", ".train.inter"),
        ("inter", ".inter"),
        ("item2index", ".item2index"),
        ("user2index", ".user2index"),
        ("text", ".text"),
        ("item", ".item"),
    ):
        path = root / f"{prefix}{suffix}"
        if path.exists():  # a folder here is named by read_source
            found[role] = path
    if "item" not in found:
        # a catalog exported under another name (foo.inter beside bar.item):
        # used when it is the folder's only one, never guessed among several
        others = sorted(root.glob("*.item"))
        if len(others) == 1:
            found["item"] = others[0]
    return found


def _first_line(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    return head.replace(b"\r", b"\n").split(b"\n", 1)[0].decode("utf-8", "replace")


def _prefix(root: Path, hint: Path | None) -> str:
    if hint is not None and hint.is_file():
        name = hint.name
        for suffix in _SUFFIXES:
            if name.endswith(suffix):
                return name[: -len(suffix)]
    prefixes = sorted({p.name.split(".")[0] for p in root.glob("*.inter")})
    if len(prefixes) != 1:
        raise DataFormatError(
            f"expected the .inter files of one dataset, found prefixes {prefixes}; "
            "pass one of the files instead of the folder",
            path=root,
        )
    return prefixes[0]


def parse(src: dict[str, Source], *, full_history: bool = False) -> RawData:
    item_keys = _index_file(src["item2index"]) if "item2index" in src else None
    user_keys = _index_file(src["user2index"]) if "user2index" in src else None
    if "test" in src:
        raw = _parse_sequences(src, item_keys, full_history)
    elif "inter" in src:
        raw = _parse_plain(src["inter"])
    else:
        raise DataFormatError(
            "no .test.inter or .inter file", path=next(iter(src.values())).path.parent
        )
    raw.users = _map(raw.users, user_keys, src.get("user2index"))
    raw.items = _map(raw.items, item_keys, src.get("item2index"))
    if user_keys is not None:
        raw.known_users = user_keys
    if item_keys is not None:
        raw.catalog_ids = item_keys
        _attach_text(raw, src.get("text"), item_keys)
    elif "item" in src:
        _attach_item_file(raw, src["item"])
        inter = src.get("inter") or src["test"]
        if _stem(src["item"].path) != _stem(inter.path):
            raw.notes.append(
                f"catalog from {src['item'].path.name} (its prefix differs from "
                f"{inter.path.name})"
            )
    return raw


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def _index_file(src: Source) -> np.ndarray:
    """``raw<TAB>index`` lines -> raw ids in index order."""
    keys: list[str] = []
    indices: list[int] = []
    for lineno, line in enumerate(_lines(src), 1):
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataFormatError(
                f"expected 'raw_id<TAB>index', found {len(parts)} field(s)",
                path=src.path,
                line=lineno,
                field="index" if len(parts) < 2 else None,
            )
        keys.append(parts[0])
        indices.append(parse_int(parts[1], src, lineno, "index"))
    if not keys:
        raise DataFormatError(
            "the file is empty (expected 'raw_id<TAB>index' lines)",
            path=src.path,
            line=1,
        )
    order = np.argsort(indices)
    if not np.array_equal(np.asarray(indices)[order], np.arange(len(indices))):
        raise DataFormatError(
            f"indices are not a permutation of 0..{len(indices) - 1}", path=src.path
        )
    return np.asarray(keys, dtype=str)[order]


def _map(tokens: np.ndarray, keys: np.ndarray | None, src: Source | None) -> np.ndarray:
    if keys is None:
        return tokens
    assert src is not None
    if tokens.dtype.kind not in "iu":
        raise DataFormatError(
            f"{src.path.name} exists, so .inter tokens must be integer indices; "
            f"found {str(tokens[0])!r}",
            path=src.path,
        )
    if tokens.size and (tokens.min() < 0 or tokens.max() >= len(keys)):
        bad = int(tokens[(tokens < 0) | (tokens >= len(keys))][0])
        raise DataFormatError(
            f"index {bad} is not in {src.path.name} (0..{len(keys) - 1})",
            path=src.path,
        )
    return keys[tokens]


def _lines(src: Source) -> list[str]:
    return text_lines(src)


def _header(src: Source, lines: list[str], wanted: tuple[str, ...]) -> dict[str, int]:
    if not lines or not lines[0].strip():
        raise DataFormatError(
            "empty header (expected tab-separated 'name:type' columns, e.g. "
            f"{', '.join(f'{w}:token' for w in wanted)})",
            path=src.path,
            line=1,
        )
    names = (
        [h.split(":")[0] for h in lines[0].rstrip("\r").split("\t")] if lines else []
    )
    missing = [w for w in wanted if w not in names]
    if missing:
        raise DataFormatError(
            f"header has no column {missing[0]!r} (found {names}; RecBole headers "
            "are tab-separated 'name:type')",
            path=src.path,
            line=1,
            field=missing[0],
        )
    return {n: k for k, n in enumerate(names)}


def _rows(src: Source, wanted: tuple[str, ...]):
    """Yield ``(lineno, fields)`` of a tab-separated atomic file with a header."""
    lines = _lines(src)
    columns = _header(src, lines, wanted)
    width = len(columns)
    for lineno, line in enumerate(lines[1:], 2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != width:
            names = list(columns)
            raise DataFormatError(
                f"line has {len(fields)} tab-separated field(s), expected {width} "
                f"({', '.join(names)})",
                path=src.path,
                line=lineno,
                field=names[len(fields)] if len(fields) < width else None,
            )
        yield lineno, columns, fields


def _int(value: str, src: Source, line: int, field: str) -> int:
    return parse_int(value, src, line, field)


def _sequence_rows(src: Source) -> dict[int, tuple[int, list[int], int]]:
    """``{user: (lineno, history, target)}`` of a valid/test file."""
    out: dict[int, tuple[int, list[int], int]] = {}
    for lineno, col, f in _rows(src, ("user_id", "item_id_list", "item_id")):
        user = _int(f[col["user_id"]], src, lineno, "user_id")
        history = [
            _int(t, src, lineno, "item_id_list") for t in f[col["item_id_list"]].split()
        ]
        target = _int(f[col["item_id"]], src, lineno, "item_id")
        if user in out:
            raise DataFormatError(
                f"user {user} has a second row (first on line {out[user][0]})",
                path=src.path,
                line=lineno,
                field="user_id",
            )
        out[user] = (lineno, history, target)
    return out


def _parse_sequences(src: dict[str, Source], item_keys, full_history: bool) -> RawData:
    test = _sequence_rows(src["test"])
    train_rows: dict[int, list[tuple[int, list[int], int]]] = {}
    if "train" in src:
        for lineno, col, f in _rows(
            src["train"], ("user_id", "item_id_list", "item_id")
        ):
            user = _int(f[col["user_id"]], src["train"], lineno, "user_id")
            rows = train_rows.setdefault(user, [])
            if full_history:
                history = [
                    _int(t, src["train"], lineno, "item_id_list")
                    for t in f[col["item_id_list"]].split()
                ]
                target = _int(f[col["item_id"]], src["train"], lineno, "item_id")
                rows.append((lineno, history, target))
            else:
                rows.append((lineno, [], 0))
    sequences: dict[int, list[int]] = {}
    truncated_users = truncated = 0
    for user, (_, history, target) in test.items():
        sequences[user] = [*history, target]
        if "train" in src:
            # UniSRec writes one train row per train item after the first, so the
            # uncapped sequence has (train rows + 1) + valid + test items.
            full_length = len(train_rows.get(user, ())) + 3
            if full_length > len(sequences[user]):
                truncated_users += 1
                truncated += full_length - len(sequences[user])
    notes = ["no timestamps: order is the position in each user's sequence"]
    if full_history:
        if "train" not in src or "valid" not in src:
            raise DataFormatError(
                "full_history needs the .train.inter and .valid.inter files",
                path=src["test"].path,
            )
        sequences = _rebuild(src, test, train_rows)
        notes.append("histories rebuilt from train rows (uncapped)")
    elif truncated_users:
        notes.append(
            f"{truncated_users} users' sequences are capped at {CAP + 1} items in "
            f"{src['test'].path.name}; load(..., full_history=True) restores "
            f"{truncated} earlier interactions from the train rows"
        )
    lengths = np.array([len(s) for s in sequences.values()], dtype=np.int64)
    users = np.repeat(
        np.fromiter(sequences, dtype=np.int64, count=len(lengths)), lengths
    )
    items = np.fromiter(
        (i for s in sequences.values() for i in s), dtype=np.int64, count=lengths.sum()
    )
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.arange(lengths.sum(), dtype=np.int64) - starts
    return RawData(
        users=users,
        items=items,
        timestamps=positions,
        order_is_time=True,
        truncated_users=0 if full_history else truncated_users,
        truncated_interactions=0 if full_history else truncated,
        notes=notes,
    )


def _rebuild(src, test, train_rows) -> dict[int, list[int]]:
    """Uncapped sequences: the first train item, the train targets (written last
    first), then the valid and test targets; checked against the capped rows."""
    valid = _sequence_rows(src["valid"])
    sequences: dict[int, list[int]] = {}
    for user, (test_line, test_history, test_target) in test.items():
        rows = train_rows.get(user, [])
        if rows:
            first = min(rows, key=lambda r: len(r[1]))[1][:1]
            train = first + [target for _, _, target in reversed(rows)]
        else:
            train = valid[user][1] if user in valid else []
        if user not in valid:
            raise DataFormatError(
                f"user {user} has no validation row",
                path=src["valid"].path,
                field="user_id",
            )
        valid_line, valid_history, valid_target = valid[user]
        if train[-CAP:] != valid_history:
            raise DataFormatError(
                f"user {user}: the validation history disagrees with the train rows",
                path=src["valid"].path,
                line=valid_line,
                field="item_id_list",
            )
        sequence = [*train, valid_target, test_target]
        if sequence[:-1][-CAP:] != test_history:
            raise DataFormatError(
                f"user {user}: the test history disagrees with the train rows",
                path=src["test"].path,
                line=test_line,
                field="item_id_list",
            )
        sequences[user] = sequence
    return sequences


def _parse_plain(src: Source) -> RawData:
    users: list[str] = []
    items: list[str] = []
    ratings: list[float] = []
    times: list[int] = []
    lines = _lines(src)
    columns = _header(src, lines, ("user_id", "item_id"))
    has_rating, has_time = "rating" in columns, "timestamp" in columns
    for lineno, col, f in _rows(src, ("user_id", "item_id")):
        users.append(f[col["user_id"]])
        items.append(f[col["item_id"]])
        for present, name, out in (
            (has_rating, "rating", ratings),
            (has_time, "timestamp", times),
        ):
            if present:
                value = parse_number(f[col[name]], src, lineno, name)
                if name == "timestamp":
                    if not -(2.0**63) <= value < 2.0**63:
                        raise DataFormatError(
                            f"timestamp {f[col[name]]!r:.40} does not fit in 64 bits",
                            path=src.path,
                            line=lineno,
                            field=name,
                        )
                    value = int(value)
                out.append(value)
    return RawData(
        users=as_ids(users),
        items=as_ids(items),
        ratings=np.asarray(ratings, np.float32) if has_rating else None,
        timestamps=np.asarray(times, np.int64) if has_time else None,
    )


def _attach_item_file(raw: RawData, src: Source) -> None:
    """Catalog from a RecBole ``.item`` file: ``item_id``, optional ``title`` and
    space-separated ``categories``."""
    ids, titles, cats = [], [], []
    for _, col, f in _rows(src, ("item_id",)):
        ids.append(f[col["item_id"]])
        titles.append(f[col["title"]] if "title" in col else "")
        cats.append(tuple(f[col["categories"]].split()) if "categories" in col else ())
    raw.catalog_ids = as_ids(ids)
    raw.titles = titles
    raw.categories = cats


def _attach_text(raw: RawData, src: Source | None, item_keys: np.ndarray) -> None:
    if src is None:
        return
    position = {key: k for k, key in enumerate(item_keys.tolist())}
    texts = [""] * len(item_keys)
    stray = 0
    for _, col, f in _rows(src, ("item_id", "text")):
        k = position.get(f[col["item_id"]])
        if k is None:
            stray += 1
            continue
        texts[k] = f[col["text"]].strip()
    if stray:
        raw.notes.append(f"{stray} text rows name items outside item2index: ignored")
    raw.text = texts
    root = _root_category(texts)
    parts = [_split_text(t, root) for t in texts]
    raw.titles = [p[0] for p in parts]
    raw.categories = [p[1] for p in parts]
    raw.brands = [p[2] for p in parts]


def _segments(text: str) -> list[str]:
    return [s.strip() for s in text.strip().removesuffix(".").split(". ")]


def _root_category(texts: list[str]) -> str | None:
    """The longest word prefix shared by more than half of the category segments
    (the second-to-last segment) of texts with exactly three segments."""
    middles = [s[1].split() for t in texts if len(s := _segments(t)) == 3 and s[1]]
    if not middles:
        return None
    root: list[str] = []
    while True:
        counts = Counter(
            tuple(m[: len(root) + 1])
            for m in middles
            if len(m) > len(root) and m[: len(root)] == root
        )
        if not counts:
            break
        best, n = counts.most_common(1)[0]
        if n * 2 <= len(middles):
            break
        root = list(best)
    return " ".join(root) or None


def _split_text(text: str, root: str | None) -> tuple[str, tuple[str, ...], str]:
    segments = _segments(text)
    if root is not None:
        for k in range(len(segments) - 1, 0, -1):
            segment = segments[k]
            if segment == root or segment.startswith(root + " "):
                rest = segment[len(root) :].strip()
                title = ". ".join(segments[:k])
                brand = ". ".join(segments[k + 1 :])
                return title, (root, rest) if rest else (root,), brand
    if len(segments) >= 3:
        path = segments[-2]
        return ". ".join(segments[:-2]), (path,) if path else (), segments[-1]
    return segments[0], (), segments[1] if len(segments) == 2 else ""
