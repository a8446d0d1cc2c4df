"""The `Dataset` type: interactions, catalog and compact ids as columnar arrays."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

TimeKind = Literal["unix", "order"]

UNKNOWN_YEAR = -1
"""``release_year`` of an item whose release year is not known."""


@dataclass(frozen=True)
class LoadReport:
    """What a loader found unusual in its source, with counts.

    No row is dropped silently: a source row that did not become an interaction
    is counted here, and so is every entry the loader had to invent.
    """

    rows: int = 0
    """Interaction rows read from the source (``interactions + duplicate_rows``)."""
    duplicate_rows: int = 0
    """Rows repeating an earlier row's user, item and timestamp: dropped, the first
    kept. Counted only where the source has real timestamps; elsewhere each row is
    its own event."""
    repeated_pairs: int = 0
    """Interactions whose (user, item) pair occurred before at another time: kept
    (repeat consumption); `dedupe` or the splits' ``dedupe=True`` remove them."""
    unknown_items: int = 0
    """Distinct items with interactions but no catalog entry: kept, appended to the
    catalog with empty title, text and categories."""
    unknown_item_rows: int = 0
    """Interactions on those unknown items."""
    duplicate_catalog_items: int = 0
    """Catalog rows repeating an earlier item id: the first is kept."""
    empty_users: int = 0
    """Users listed in the source's user file without any interaction: not indexed
    (every indexed user has at least one interaction)."""
    cold_items: int = 0
    """Catalog items without any interaction: kept (items index the whole catalog)."""
    truncated_users: int = 0
    """Users whose sequence in the source was capped (RecBole histories of 50)."""
    truncated_interactions: int = 0
    """Interactions lost to that cap: the source holds them only in other files."""
    negative_timestamps: int = 0
    """Interactions with a unix time before 1970: kept in time order, counted
    (some exports use negative values for unknown dates)."""
    future_timestamps: int = 0
    """Interactions dated more than a day after the load: kept, counted; a
    temporal split puts them last."""
    notes: tuple[str, ...] = ()
    """Anything else worth knowing, one sentence each."""


@dataclass(frozen=True, eq=False, kw_only=True)
class Dataset:
    """Interactions plus item catalog, with compact integer ids.

    Interaction arrays are sorted by user, then time, then source order, so one
    user's interactions are contiguous and chronological. Items index the whole
    catalog (``n_items`` includes items nobody touched); users index the users with
    interactions. All arrays are read-only: derive new datasets with `select`,
    `subset_users` or the functions in `agenticrec.data` (``implicit``,
    ``k_core``, ``dedupe``).
    """

    users: np.ndarray
    """``int32[n]`` compact user id of each interaction (``0 <= u < n_users``)."""
    items: np.ndarray
    """``int32[n]`` compact item id of each interaction (``0 <= i < n_items``)."""
    timestamps: np.ndarray
    """``int64[n]``: unix seconds if ``time_kind == "unix"``, otherwise an order
    key that only orders one user's interactions (file row or sequence position)."""
    ratings: np.ndarray | None
    """``float32[n]`` explicit ratings, or ``None`` for implicit-only sources."""
    user_ids: np.ndarray
    """``[n_users]`` raw user id of each compact id (``int64`` or ``str``)."""
    item_ids: np.ndarray
    """``[n_items]`` raw item id of each compact id (``int64`` or ``str``)."""
    titles: tuple[str, ...]
    """``[n_items]`` item titles (``""`` when unknown)."""
    categories: tuple[tuple[str, ...], ...]
    """``[n_items]`` categories or genres of each item, coarse to fine."""
    text: tuple[str, ...]
    """``[n_items]`` free text: tags, descriptions or the source's item text."""
    brands: tuple[str, ...]
    """``[n_items]`` brand or store (``""`` when unknown)."""
    release_year: np.ndarray
    """``int16[n_items]``, `UNKNOWN_YEAR` (-1) when not known."""
    time_kind: TimeKind
    """``"unix"`` for real timestamps, ``"order"`` for order-only sources."""
    name: str
    """Short name, e.g. the source folder's name."""
    format: str
    """The loader that read it (``"movielens-csv"``, ``"recbole"``, ...)."""
    source: str
    """Where it came from: a path, or ``embedded:ml-latest-small``."""
    fingerprint: str
    """SHA-256 (hex) of the source content and load options, then of each derivation
    step: equal fingerprints mean equal data."""
    report: LoadReport = dataclasses.field(default_factory=LoadReport)
    """Counts of unusual rows found while loading."""
    lineage: tuple[str, ...] = ()
    """Derivation steps applied since loading, e.g. ``("implicit(rating>=4)",)``."""

    def __post_init__(self) -> None:
        arrays = {
            "users": (self.users, np.int32),
            "items": (self.items, np.int32),
            "timestamps": (self.timestamps, np.int64),
            "release_year": (self.release_year, np.int16),
        }
        if self.ratings is not None:
            arrays["ratings"] = (self.ratings, np.float32)
        for name, (value, dtype) in arrays.items():
            # A read-only view: the caller's own array stays writable.
            arr = np.ascontiguousarray(value, dtype=dtype).view()
            if arr.ndim != 1:
                raise ValueError(f"Dataset.{name} must be 1-D, got shape {arr.shape}")
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        for name in ("user_ids", "item_ids"):
            arr = np.asarray(getattr(self, name))
            if arr.dtype.kind not in "iuU":
                arr = arr.astype(str)
            arr = np.ascontiguousarray(arr).view()
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        for name in ("titles", "text", "brands"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not isinstance(self.categories, tuple):  # derived datasets share it as is
            categories = tuple(tuple(c) for c in self.categories)
            object.__setattr__(self, "categories", categories)
        n = len(self.users)
        for name in ("items", "timestamps", "ratings"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(
                    f"Dataset.{name} has {len(value)} entries, users has {n}"
                )
        for name in ("titles", "categories", "text", "brands", "release_year"):
            if len(getattr(self, name)) != self.n_items:
                raise ValueError(
                    f"Dataset.{name} has {len(getattr(self, name))} entries, "
                    f"item_ids has {self.n_items}"
                )
        if n:
            if self.users.min() < 0 or self.users.max() >= self.n_users:
                raise ValueError(f"Dataset.users must lie in [0, {self.n_users})")
            if self.items.min() < 0 or self.items.max() >= self.n_items:
                raise ValueError(f"Dataset.items must lie in [0, {self.n_items})")
            du = np.diff(self.users)
            dt_ = np.diff(self.timestamps)
            if not np.all((du > 0) | ((du == 0) & (dt_ >= 0))):
                raise ValueError(
                    "Dataset interactions must be sorted by user, then timestamp"
                )
        if self.time_kind not in ("unix", "order"):
            raise ValueError(
                f"Dataset.time_kind must be 'unix' or 'order', got {self.time_kind!r}"
            )

    # ----------------------------------------------------------------- sizes
    @property
    def n_users(self) -> int:
        """Number of compact user ids."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Catalog size: number of compact item ids."""
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        """Number of interactions."""
        return len(self.users)

    def __len__(self) -> int:
        return len(self.users)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, users={self.n_users}, "
            f"items={self.n_items}, interactions={self.n_interactions}, "
            f"time={self.time_kind}, fingerprint={self.fingerprint[:12]})"
        )

    # ------------------------------------------------------------- structure
    @cached_property
    def _indptr(self) -> np.ndarray:
        counts = np.bincount(self.users, minlength=self.n_users)
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        indptr.flags.writeable = False
        return indptr

    def user_histories(self) -> tuple[np.ndarray, np.ndarray]:
        """Each user's items in time order, CSR style.

        Returns:
            ``(indptr: int64[n_users + 1], indices: int32[n])``: user ``u``'s
            history is ``indices[indptr[u]:indptr[u + 1]]``, oldest first.
        """
        return self._indptr, self.items

    def user_counts(self) -> np.ndarray:
        """``int64[n_users]`` interactions per user."""
        return np.diff(self._indptr)

    def item_popularity(self) -> np.ndarray:
        """``int64[n_items]`` interactions per item (0 for cold catalog items)."""
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)

    def interaction_matrix(self, dtype: Any = np.float32) -> sp.csr_matrix:
        """Users x items 0/1 matrix (repeats collapse to 1), ``float32`` by default."""
        indptr, items = self._indptr, self.items.astype(np.int32)
        matrix = sp.csr_matrix(
            (np.ones(len(items), dtype=dtype), items, indptr.copy()),
            shape=(self.n_users, self.n_items),
        )
        matrix.sum_duplicates()
        matrix.data[:] = 1
        return matrix

    @property
    def ordering(self) -> str:
        """How each user's interactions are ordered, in words: what "last" means
        to a split (`Split.report` and ``agenticrec data info`` repeat it)."""
        if self.time_kind == "unix":
            return "by timestamp; equal timestamps keep the source's row order"
        return (
            "no timestamps: each user's interactions keep the source's order "
            "(file row order; sequence position for sequence files), so 'last' "
            "means last in the file"
        )

    @cached_property
    def first_seen(self) -> np.ndarray | None:
        """``int64[n_items]`` first interaction time (unix s), -1 if never; ``None``
        for order-only data."""
        if self.time_kind != "unix":
            return None
        first = np.full(self.n_items, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, self.items, self.timestamps)
        first[first == np.iinfo(np.int64).max] = -1
        first.flags.writeable = False
        return first

    @cached_property
    def n_pairs(self) -> int:
        """Distinct (user, item) pairs."""
        keys = self.users.astype(np.int64) * self.n_items + self.items
        return distinct(keys).size

    @cached_property
    def _item_order(self) -> np.ndarray:
        return np.argsort(self.item_ids, kind="stable")

    @cached_property
    def _user_order(self) -> np.ndarray:
        return np.argsort(self.user_ids, kind="stable")

    def item_index(self, raw_ids: Any) -> np.ndarray:
        """Compact ids of raw item ids: ``int32[k]``, -1 for ids not in the catalog."""
        return _lookup(self.item_ids, raw_ids, self._item_order)

    def user_index(self, raw_ids: Any) -> np.ndarray:
        """Compact ids of raw user ids: ``int32[k]``, -1 for unknown users."""
        return _lookup(self.user_ids, raw_ids, self._user_order)

    # ---------------------------------------------------------------- subsets
    def select(
        self, rows: np.ndarray, *, compact_users: bool = True, step: str = "select"
    ) -> Dataset:
        """A dataset holding only some interactions.

        Args:
            rows: ``int[k]`` row numbers or ``bool[n]`` mask into the interaction
                arrays (order and repeats are ignored: rows stay sorted).
            compact_users: renumber users so that only those with interactions
                remain; ``False`` keeps every user id (some then have none), so
                ids match across a split's parts.
            step: how the lineage records this step.

        The catalog and item ids are kept as they are.
        """
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (self.n_interactions,):
                raise ValueError(
                    f"mask has shape {rows.shape}, expected ({self.n_interactions},)"
                )
            rows = np.flatnonzero(rows)
        else:
            rows = distinct(rows.astype(np.int64))
            if rows.size and (rows[0] < 0 or rows[-1] >= self.n_interactions):
                raise ValueError(
                    f"rows must lie in [0, {self.n_interactions}), got "
                    f"{rows[0]}..{rows[-1]}"
                )
        users = self.users[rows]
        user_ids = self.user_ids
        if compact_users:
            keep = np.flatnonzero(np.bincount(users, minlength=self.n_users))
            remap = np.full(self.n_users, -1, dtype=np.int32)
            remap[keep] = np.arange(keep.size, dtype=np.int32)
            users = remap[users]
            user_ids = self.user_ids[keep]
        digest = hashlib.sha256(self.fingerprint.encode())
        digest.update(step.encode())
        digest.update(np.int8(compact_users).tobytes())
        digest.update(rows.tobytes())
        return dataclasses.replace(
            self,
            users=users,
            items=self.items[rows],
            timestamps=self.timestamps[rows],
            ratings=None if self.ratings is None else self.ratings[rows],
            user_ids=user_ids,
            fingerprint=digest.hexdigest(),
            lineage=(*self.lineage, step),
        )

    def subset_users(
        self, users: Sequence[int] | np.ndarray, *, compact: bool = True
    ) -> Dataset:
        """The interactions of some users (compact ids), catalog unchanged."""
        users = np.asarray(users, dtype=np.int64)
        if users.size and (users.min() < 0 or users.max() >= self.n_users):
            raise ValueError(f"user ids must lie in [0, {self.n_users})")
        wanted = np.zeros(self.n_users, dtype=bool)
        wanted[users] = True
        return self.select(
            wanted[self.users],
            compact_users=compact,
            step=f"subset_users({int(wanted.sum())})",
        )

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """Summary statistics (plain JSON-able values).

        Keys: ``name``, ``format``, ``users`` and ``items`` (with at least one
        interaction), ``interactions``, ``catalog_items``, ``density`` (distinct
        pairs / (users x items)), ``ratings`` (bool), ``time_kind``, ``ordering``
        (`ordering`, in words), ``time_span``
        (``{"first", "last"}`` ISO dates, ``"days"``; ``None`` without timestamps),
        ``popularity_histogram`` (``{"bins", "counts"}``: items whose interaction
        count ``c`` lies in ``[bins[k], bins[k+1])``, powers of two),
        ``fingerprint``, ``lineage`` and ``report`` (`LoadReport` as a dict).
        """
        popularity = self.item_popularity()
        active = popularity[popularity > 0]
        n_users = int(np.count_nonzero(self.user_counts()))
        n_items = int(active.size)
        density = self.n_pairs / (n_users * n_items) if n_users and n_items else 0.0
        top = int(active.max()) if active.size else 1
        bins = 2 ** np.arange(int(np.ceil(np.log2(top + 1))) + 1)
        counts, _ = np.histogram(active, bins=bins)
        span = None
        if self.time_kind == "unix" and self.n_interactions:
            first, last = int(self.timestamps.min()), int(self.timestamps.max())
            span = {
                "first": _iso(first),
                "last": _iso(last),
                "days": round((last - first) / 86400, 1),
            }
        report = dataclasses.asdict(self.report)
        report["notes"] = list(report["notes"])
        return {
            "name": self.name,
            "format": self.format,
            "users": n_users,
            "items": n_items,
            "interactions": self.n_interactions,
            "catalog_items": self.n_items,
            "density": density,
            "ratings": self.ratings is not None,
            "time_kind": self.time_kind,
            "ordering": self.ordering,
            "time_span": span,
            "popularity_histogram": {
                "bins": bins.tolist(),
                "counts": counts.tolist(),
            },
            "fingerprint": self.fingerprint,
            "lineage": list(self.lineage),
            "report": report,
        }

    # ----------------------------------------------------------- construction
    @classmethod
    def from_interactions(
        cls,
        users: Sequence[Any] | np.ndarray,
        items: Sequence[Any] | np.ndarray,
        timestamps: Sequence[int] | np.ndarray | None = None,
        ratings: Sequence[float] | np.ndarray | None = None,
        *,
        item_ids: Sequence[Any] | np.ndarray | None = None,
        titles: Sequence[str] | None = None,
        categories: Sequence[Sequence[str]] | None = None,
        text: Sequence[str] | None = None,
        brands: Sequence[str] | None = None,
        release_year: Sequence[int] | np.ndarray | None = None,
        name: str = "custom",
    ) -> Dataset:
        """Build a dataset from raw ids (any ints or strings), e.g. for tests.

        Args:
            users, items: ``[n]`` raw ids of each interaction.
            timestamps: ``int[n]`` unix seconds; ``None`` means the given order.
            ratings: ``float[n]`` or ``None``.
            item_ids: the catalog's raw ids; ``titles`` ... ``release_year`` are
                aligned with it. Without it, the catalog is the interacted items.

        Rows are processed like a loaded source's (see `LoadReport`).
        """
        raw = RawData(
            users=np.asarray(users),
            items=np.asarray(items),
            timestamps=None if timestamps is None else np.asarray(timestamps),
            ratings=None if ratings is None else np.asarray(ratings, np.float32),
            catalog_ids=None if item_ids is None else np.asarray(item_ids),
            titles=None if titles is None else list(titles),
            categories=None if categories is None else [tuple(c) for c in categories],
            text=None if text is None else list(text),
            brands=None if brands is None else list(brands),
            release_year=None if release_year is None else np.asarray(release_year),
        )
        digest = hashlib.sha256(b"agenticrec-arrays")
        for arr in (raw.users, raw.items, raw.timestamps, raw.ratings, raw.catalog_ids):
            digest.update(b"|" if arr is None else np.ascontiguousarray(arr).tobytes())
        for column in (raw.titles, raw.categories, raw.text, raw.brands):
            digest.update(repr(column).encode())
        return build(
            raw,
            name=name,
            format="arrays",
            source="arrays",
            fingerprint=digest.hexdigest(),
        )


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (sort-based: numpy 2's hashed `np.unique` is slow on
    a million distinct keys)."""
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).date().isoformat()


def _lookup(
    table: np.ndarray, raw_ids: Any, order: np.ndarray | None = None
) -> np.ndarray:
    """Position of each raw id in ``table`` (-1 if absent); ``order`` sorts it."""
    query = np.atleast_1d(np.asarray(raw_ids))
    if (table.dtype.kind in "iu") != (query.dtype.kind in "iu"):
        table, query, order = table.astype(str), query.astype(str), None
    if order is None:
        order = np.argsort(table, kind="stable")
    ordered = table[order]
    pos = np.searchsorted(ordered, query)
    pos = np.minimum(pos, max(len(ordered) - 1, 0))
    out = np.full(query.shape, -1, dtype=np.int32)
    if len(ordered):
        hit = ordered[pos] == query
        out[hit] = order[pos[hit]]
    return out


# --------------------------------------------------------------------- build
@dataclass
class RawData:
    """What a loader parsed: raw ids and catalog, before indexing.

    ``timestamps`` are integers in ``1/time_scale`` seconds (``None``: rows are in
    order); catalog lists are aligned with ``catalog_ids`` (``None``: no catalog
    file, the catalog becomes the interacted items).
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None = None
    ratings: np.ndarray | None = None
    time_scale: int = 1
    order_is_time: bool = False
    catalog_ids: np.ndarray | None = None
    titles: list[str] | None = None
    categories: list[tuple[str, ...]] | None = None
    text: list[str] | None = None
    brands: list[str] | None = None
    release_year: np.ndarray | None = None
    known_users: np.ndarray | None = None
    truncated_users: int = 0
    truncated_interactions: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)


def _same_kind(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if (a.dtype.kind in "iu") == (b.dtype.kind in "iu"):
        return a, b
    return a.astype(str), b.astype(str)


def build(
    raw: RawData, *, name: str, format: str, source: str, fingerprint: str
) -> Dataset:
    """Index raw ids, attach the catalog, drop exact duplicates, sort, count.

    ``raw.timestamps`` set means real time (``time_kind="unix"``) unless
    ``raw.order_is_time`` says they are order keys.
    """
    users_raw = raw.users if raw.users.dtype.kind in "iuU" else raw.users.astype(str)
    items_raw = raw.items if raw.items.dtype.kind in "iuU" else raw.items.astype(str)
    n = len(users_raw)
    notes = list(raw.notes)
    if raw.timestamps is None:
        ts = np.arange(n, dtype=np.int64)
        kind: TimeKind = "order"
    else:
        ts = raw.timestamps.astype(np.int64, copy=False)
        kind = "order" if raw.order_is_time else "unix"

    user_ids, users = np.unique(users_raw, return_inverse=True)

    # Catalog: first entry of each raw id wins; ids only in interactions append.
    if raw.catalog_ids is None:
        catalog_ids = distinct(items_raw)
        meta = _empty_meta(len(catalog_ids))
        notes.append("no catalog file: the catalog is the interacted items")
        duplicate_catalog = 0
    else:
        catalog_ids = raw.catalog_ids
        if catalog_ids.dtype.kind not in "iuU":
            catalog_ids = catalog_ids.astype(str)
        meta = _meta(raw, len(catalog_ids))
        _, first = np.unique(catalog_ids, return_index=True)
        duplicate_catalog = len(catalog_ids) - len(first)
        if duplicate_catalog:
            keep = np.sort(first)
            catalog_ids = catalog_ids[keep]
            meta = {k: _take(v, keep) for k, v in meta.items()}
    catalog_ids, items_raw = _same_kind(catalog_ids, items_raw)
    items = _lookup(catalog_ids, items_raw).astype(np.int64)
    unknown = items < 0
    n_unknown = 0
    if unknown.any():
        extra, inverse = np.unique(items_raw[unknown], return_inverse=True)
        n_unknown = len(extra)
        items[unknown] = len(catalog_ids) + inverse
        catalog_ids = np.concatenate([catalog_ids, extra])
        meta = {k: _concat(v, _empty_meta(n_unknown)[k]) for k, v in meta.items()}
    n_items = len(catalog_ids)

    # Exact duplicates (same user, item and time) only exist with real time.
    pair = users.astype(np.int64) * n_items + items
    keep_rows = np.ones(n, dtype=bool)
    if kind == "unix" and n:
        order = np.lexsort((ts, pair))
        same = (pair[order][1:] == pair[order][:-1]) & (ts[order][1:] == ts[order][:-1])
        keep_rows[order[1:][same]] = False
    n_duplicates = n - int(keep_rows.sum())

    order = np.lexsort((ts, users))
    order = order[keep_rows[order]]
    users, items, ts = users[order], items[order], ts[order]
    ratings = None if raw.ratings is None else raw.ratings[order]
    if kind == "unix" and raw.time_scale != 1:
        ts = ts // raw.time_scale
    # Users whose every row was a duplicate cannot happen: the first copy stays.
    n_pairs = distinct(pair[order]).size
    empty_users = 0
    if raw.known_users is not None:
        known, present = _same_kind(distinct(raw.known_users), user_ids)
        empty_users = int(np.setdiff1d(known, present).size)
        stray = int(np.setdiff1d(present, known).size)
        if stray:
            notes.append(f"{stray} users with interactions are not in the user file")
    n_negative = n_future = 0
    if kind == "unix" and len(ts):
        n_negative = int(np.count_nonzero(ts < 0))
        n_future = int(np.count_nonzero(ts > time.time() + 86400))
        if n_negative:
            notes.append(f"{n_negative} interactions have negative timestamps (kept)")
        if n_future:
            notes.append(f"{n_future} interactions are dated in the future (kept)")
    report = LoadReport(
        rows=n,
        negative_timestamps=n_negative,
        future_timestamps=n_future,
        duplicate_rows=n_duplicates,
        repeated_pairs=len(users) - n_pairs,
        unknown_items=n_unknown,
        unknown_item_rows=int(unknown.sum()),
        duplicate_catalog_items=duplicate_catalog,
        empty_users=empty_users,
        cold_items=n_items
        - int(np.count_nonzero(np.bincount(items, minlength=n_items))),
        truncated_users=raw.truncated_users,
        truncated_interactions=raw.truncated_interactions,
        notes=tuple(notes),
    )
    return Dataset(
        users=users.astype(np.int32),
        items=items.astype(np.int32),
        timestamps=ts,
        ratings=ratings,
        user_ids=user_ids,
        item_ids=catalog_ids,
        titles=meta["titles"],
        categories=meta["categories"],
        text=meta["text"],
        brands=meta["brands"],
        release_year=meta["release_year"],
        time_kind=kind,
        name=name,
        format=format,
        source=source,
        fingerprint=fingerprint,
        report=report,
    )


def _empty_meta(n: int) -> dict[str, Any]:
    return {
        "titles": [""] * n,
        "categories": [()] * n,
        "text": [""] * n,
        "brands": [""] * n,
        "release_year": np.full(n, UNKNOWN_YEAR, dtype=np.int16),
    }


def _meta(raw: RawData, n: int) -> dict[str, Any]:
    meta = _empty_meta(n)
    for key in ("titles", "categories", "text", "brands", "release_year"):
        value = getattr(raw, key)
        if value is not None:
            if len(value) != n:
                raise ValueError(f"catalog {key} has {len(value)} entries, ids {n}")
            meta[key] = value
    meta["release_year"] = np.asarray(meta["release_year"], dtype=np.int16)
    return meta


def _take(value: Any, index: np.ndarray) -> Any:
    if isinstance(value, np.ndarray):
        return value[index]
    return [value[i] for i in index]


def _concat(a: Any, b: Any) -> Any:
    if isinstance(a, np.ndarray):
        return np.concatenate([a, b])
    return list(a) + list(b)
