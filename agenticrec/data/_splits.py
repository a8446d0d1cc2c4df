"""Filters and evaluation protocols over a `Dataset`.

Filters return new datasets (catalog and item ids unchanged, users renumbered):
`implicit`, `dedupe`, `k_core`. Protocols return a `Split` of row indices:
`leave_one_out` (per user, by time) and `temporal_split` (global cut-offs). On
top of a split, `sample_candidates` builds the sampled-candidates protocol
(target + N negatives the user never touched) and `split_users` partitions users
into named groups (train / valid / test / online) for tuning.
`require_evaluable` (or `Split.require_evaluable`) raises `DataValidationError`
with the reason when a split leaves nothing to evaluate; `Split.n_evaluable`
counts the users with a held-out row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from agenticrec.errors import ConfigError, DataValidationError

from ._dataset import Dataset, distinct

Part = Literal["train", "valid", "test"]
Pool = Literal["interacted", "catalog"]


# ------------------------------------------------------------------ filters
def implicit(dataset: Dataset, threshold: float = 4.0) -> Dataset:
    """Keep interactions rated ``>= threshold`` (implicit positive feedback)."""
    if dataset.ratings is None:
        raise DataValidationError(
            f"dataset {dataset.name!r} has no ratings; an implicit-feedback "
            "threshold needs explicit ratings (drop min_rating)"
        )
    out = dataset.select(
        dataset.ratings >= threshold, step=f"implicit(rating>={threshold:g})"
    )
    _require(out, f"implicit(rating>={threshold:g})")
    return out


def dedupe(dataset: Dataset, keep: Literal["first", "last"] = "first") -> Dataset:
    """One interaction per (user, item): the earliest (``"first"``) or latest.

    Returns ``dataset`` itself when there are no repeats.
    """
    if keep not in ("first", "last"):
        raise ConfigError(f"keep must be 'first' or 'last', got {keep!r}")
    keys = dataset.users.astype(np.int64) * dataset.n_items + dataset.items
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    if keep == "first":
        edge = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    else:
        edge = np.concatenate((ordered[1:] != ordered[:-1], [True]))
    if edge.all():
        return dataset
    return dataset.select(order[edge], step=f"dedupe({keep})")


def k_core(dataset: Dataset, k: int = 5, *, item_k: int | None = None) -> Dataset:
    """Iteratively drop users with fewer than ``k`` and items with fewer than
    ``item_k`` (default ``k``) interactions until none is left to drop.

    Counts are interaction rows (repeats count); apply `dedupe` first to count
    distinct items.
    """
    item_k = k if item_k is None else item_k
    if k < 1 or item_k < 1:
        raise ConfigError(f"k-core thresholds must be >= 1, got {k} and {item_k}")
    users, items = dataset.users, dataset.items
    mask = np.ones(len(users), dtype=bool)
    while True:
        user_count = np.bincount(users[mask], minlength=dataset.n_users)
        item_count = np.bincount(items[mask], minlength=dataset.n_items)
        drop = mask & ((user_count[users] < k) | (item_count[items] < item_k))
        if not drop.any():
            break
        mask &= ~drop
    out = dataset.select(mask, step=f"k_core(users>={k},items>={item_k})")
    _require(out, f"k_core({k}, item_k={item_k})")
    return out


def _require(dataset: Dataset, step: str) -> None:
    if dataset.n_interactions == 0:
        raise DataValidationError(f"{step} leaves no interactions in {dataset.name!r}")


def _prepare(
    dataset: Dataset, min_rating: float | None, core: int | None, unique: bool
) -> Dataset:
    out = dataset
    if min_rating is not None:
        out = implicit(out, min_rating)
    if unique:
        out = dedupe(out)
    if core:
        out = k_core(out, core)
    return out


# -------------------------------------------------------------------- splits
@dataclass(frozen=True, eq=False)
class Split:
    """Interactions of one dataset divided into train, validation and test.

    The index arrays are row numbers into ``dataset``'s interaction arrays, so
    ``dataset.items[split.test]`` are the held-out items; users and items keep
    ``dataset``'s compact ids in every part.
    """

    dataset: Dataset
    """The dataset after the protocol's filters; all ids refer to it."""
    train: np.ndarray
    """``int64[k]`` sorted rows used for training."""
    valid: np.ndarray
    """``int64[k]`` sorted rows held out for validation."""
    test: np.ndarray
    """``int64[k]`` sorted rows held out for testing."""
    protocol: str
    """``"leave-one-out"`` or ``"temporal"``."""
    touched: np.ndarray
    """``int64[k]`` sorted keys ``user * n_items + item`` of every pair the user
    touched before any filter (low ratings included): never sampled as negatives."""
    report: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Counts and choices: users evaluated, users too short, cut-offs, filters,
    and ``ordering``: how interactions were ordered (`Dataset.ordering`; on
    data without timestamps, file order)."""

    def __post_init__(self) -> None:
        for name in ("train", "valid", "test", "touched"):
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.int64)
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)

    def rows(self, part: Part) -> np.ndarray:
        """Row indices of ``part``."""
        if part not in ("train", "valid", "test"):
            raise ConfigError(f"part must be train, valid or test, got {part!r}")
        return getattr(self, part)

    def part(self, part: Part) -> Dataset:
        """``part`` as a dataset with the same user and item ids."""
        return self.dataset.select(
            self.rows(part), compact_users=False, step=f"{self.protocol}:{part}"
        )

    def targets(self, part: Part = "test") -> tuple[np.ndarray, np.ndarray]:
        """``(users: int32[k], items: int32[k])`` held out in ``part``."""
        rows = self.rows(part)
        return self.dataset.users[rows], self.dataset.items[rows]

    def n_evaluable(self, part: Part = "test") -> int:
        """Users with a held-out row in ``part``: 0 means nothing can be scored
        (e.g. every user has fewer than 3 interactions under leave-one-out)."""
        return int(distinct(self.dataset.users[self.rows(part)]).size)

    def require_evaluable(
        self,
        part: Part = "test",
        *,
        n_negatives: int | None = None,
        pool: Pool = "interacted",
    ) -> Split:
        """This split, if ``part`` can be evaluated; see `require_evaluable`."""
        return require_evaluable(self, part, n_negatives=n_negatives, pool=pool)

    def history(self, part: Part = "test") -> tuple[np.ndarray, np.ndarray]:
        """What a model may see when predicting ``part``, per user, CSR style.

        For ``"test"`` that is train + valid rows, for ``"valid"`` the train rows,
        for ``"train"`` the train rows too. Returns ``(indptr: int64[n_users + 1],
        indices: int32[k])``, each user's items oldest first.
        """
        rows = self.rows(part)
        if part == "test":
            rows = np.union1d(self.train, self.valid)
        elif part == "valid":
            rows = self.train
        users = self.dataset.users[rows]
        indptr = np.zeros(self.dataset.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=self.dataset.n_users), out=indptr[1:])
        return indptr, self.dataset.items[rows]


def _touched(original: Dataset, dataset: Dataset) -> np.ndarray:
    """Pairs of ``original`` as keys over ``dataset``'s user ids."""
    if original is dataset:
        keys = dataset.users.astype(np.int64) * dataset.n_items + dataset.items
        return distinct(keys)
    remap = np.full(original.n_users, -1, dtype=np.int64)
    remap[original.user_index(dataset.user_ids)] = np.arange(dataset.n_users)
    users = remap[original.users]
    kept = users >= 0
    return distinct(users[kept] * dataset.n_items + original.items[kept])


def leave_one_out(
    dataset: Dataset,
    *,
    min_rating: float | None = None,
    k_core: int | None = None,
    dedupe: bool = True,
    short_users: Literal["train", "drop"] = "train",
) -> Split:
    """Per user by time: last interaction test, second-last validation, rest train.

    Without timestamps (``time_kind="order"``) "last" is last in the source's
    order; ``report["ordering"]`` says which order was used.

    Args:
        dataset: interactions (sorted by user then time, as every Dataset is;
            ties in time keep source order).
        min_rating: keep only ratings ``>= min_rating`` first (`implicit`).
        k_core: apply `k_core` with this ``k`` (users and items) first.
        dedupe: keep each user's first interaction with an item only, so a test
            or validation item never reappears in the user's train rows.
        short_users: users with fewer than 3 interactions cannot give all three
            parts: ``"train"`` puts all their rows in train (they are not
            evaluated), ``"drop"`` leaves their rows out of every part.
    """
    if short_users not in ("train", "drop"):
        raise ConfigError(f"short_users must be 'train' or 'drop', got {short_users!r}")
    data = _prepare(dataset, min_rating, k_core, dedupe)
    indptr, _ = data.user_histories()
    counts = np.diff(indptr)
    long = counts >= 3
    ends = indptr[1:][long]
    test, valid = ends - 1, ends - 2
    in_train = np.ones(data.n_interactions, dtype=bool)
    in_train[test] = False
    in_train[valid] = False
    short = ~long & (counts > 0)
    if short_users == "drop":
        in_train[np.repeat(short, counts)] = False
    return Split(
        dataset=data,
        train=np.flatnonzero(in_train),
        valid=valid,
        test=test,
        protocol="leave-one-out",
        touched=_touched(dataset, data),
        report={
            "users": int(np.count_nonzero(counts)),
            "evaluated_users": int(long.sum()),
            "short_users": int(short.sum()),
            "short_users_handling": short_users,
            "filters": list(data.lineage[len(dataset.lineage) :]),
            "ordering": data.ordering,
        },
    )


def temporal_split(
    dataset: Dataset,
    *,
    valid: float = 0.1,
    test: float = 0.1,
    min_rating: float | None = None,
    k_core: int | None = None,
    dedupe: bool = True,
) -> Split:
    """Global split by time: the latest ``test`` fraction of interactions is test,
    the ``valid`` fraction before it validation, everything earlier train.

    Cut-offs are timestamps at those quantiles: an interaction at a cut-off goes
    to the later part, so fractions are approximate when times tie. Test users
    need not appear in train (``report["cold_test_users"]`` counts them).

    Raises:
        DataValidationError: the dataset has no real timestamps.
    """
    if dataset.time_kind != "unix":
        raise DataValidationError(
            f"dataset {dataset.name!r} has no timestamps (order only), so it cannot "
            "be split by global time; use leave_one_out"
        )
    if not (0 <= valid and 0 < test and valid + test < 1):
        raise ConfigError(
            f"need 0 <= valid, 0 < test, valid + test < 1; got {valid}, {test}"
        )
    data = _prepare(dataset, min_rating, k_core, dedupe)
    ts = data.timestamps
    ordered = np.sort(ts)
    n = len(ordered)
    t_valid = ordered[min(int(round(n * (1 - valid - test))), n - 1)]
    t_test = ordered[min(int(round(n * (1 - test))), n - 1)]
    train = np.flatnonzero(ts < t_valid)
    valid_rows = np.flatnonzero((ts >= t_valid) & (ts < t_test))
    test_rows = np.flatnonzero(ts >= t_test)
    seen = np.zeros(data.n_users, dtype=bool)
    seen[data.users[train]] = True
    test_users = distinct(data.users[test_rows])
    return Split(
        dataset=data,
        train=train,
        valid=valid_rows,
        test=test_rows,
        protocol="temporal",
        touched=_touched(dataset, data),
        report={
            "valid_from": _iso(int(t_valid)),
            "test_from": _iso(int(t_test)),
            "fractions": [len(train) / n, len(valid_rows) / n, len(test_rows) / n],
            "test_users": int(test_users.size),
            "cold_test_users": int((~seen[test_users]).sum()),
            "filters": list(data.lineage[len(dataset.lineage) :]),
            "ordering": data.ordering,
        },
    )


def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat()


def split_users(
    dataset: Dataset,
    fractions: Mapping[str, float] | None = None,
    *,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Partition the users with interactions into named groups at random.

    Args:
        fractions: group name -> share of users, summing to 1; default
            ``{"train": 0.7, "valid": 0.1, "test": 0.1, "online": 0.1}``.
        seed: seed of the `numpy.random.Generator`.

    Returns:
        Group name -> sorted ``int32`` user ids; every user is in exactly one
        group, group sizes are the shares rounded by largest remainder.
    """
    fractions = dict(
        fractions or {"train": 0.7, "valid": 0.1, "test": 0.1, "online": 0.1}
    )
    shares = np.array(list(fractions.values()), dtype=float)
    if (shares < 0).any() or not np.isclose(shares.sum(), 1.0):
        raise ConfigError(f"fractions must be >= 0 and sum to 1, got {fractions}")
    users = np.flatnonzero(dataset.user_counts() > 0)
    exact = shares * len(users)
    sizes = np.floor(exact).astype(np.int64)
    remainder = len(users) - sizes.sum()
    sizes[np.argsort(-(exact - sizes), kind="stable")[:remainder]] += 1
    shuffled = np.random.default_rng(seed).permutation(users)
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    groups = {}
    for name, start, stop in zip(fractions, bounds[:-1], bounds[1:], strict=True):
        group = np.sort(shuffled[start:stop]).astype(np.int32)
        group.flags.writeable = False
        groups[name] = group
    return groups


# ------------------------------------------------------------ candidates
@dataclass(frozen=True, eq=False)
class Candidates:
    """Candidate lists for ranking: each row one held-out target plus negatives."""

    users: np.ndarray
    """``int32[m]`` user of each row."""
    targets: np.ndarray
    """``int32[m]`` held-out item of each row."""
    items: np.ndarray
    """``int32[m, 1 + n]`` candidates; ``items[r, target_pos[r]] == targets[r]``."""
    target_pos: np.ndarray
    """``int32[m]`` column of the target (0 unless shuffled)."""


def sample_candidates(
    split: Split,
    n_negatives: int = 99,
    *,
    part: Part = "test",
    seed: int = 0,
    pool: Pool = "interacted",
    shuffle: bool = False,
) -> Candidates:
    """Sampled-candidates protocol: each held-out target of ``part`` with
    ``n_negatives`` distinct items its user never touched (`Split.touched`).

    Args:
        pool: ``"interacted"`` samples from items with at least one interaction in
            ``split.dataset``, ``"catalog"`` from the whole catalog.
        shuffle: shuffle each row (``target_pos`` says where the target went);
            otherwise the target is column 0.
        seed: seed of the `numpy.random.Generator`; equal inputs and seed give
            equal candidates.
    """
    users, targets = split.targets(part)
    rng = np.random.default_rng(seed)
    negatives = _sample(split.dataset, users, n_negatives, rng, pool, split.touched)
    items = np.concatenate([targets[:, None], negatives], axis=1).astype(np.int32)
    target_pos = np.zeros(len(users), dtype=np.int32)
    if shuffle and len(users):
        items = rng.permuted(items, axis=1)
        target_pos = np.argmax(items == targets[:, None], axis=1).astype(np.int32)
    return Candidates(users=users, targets=targets, items=items, target_pos=target_pos)


def require_evaluable(
    split: Split,
    part: Part = "test",
    *,
    n_negatives: int | None = None,
    pool: Pool = "interacted",
) -> Split:
    """Check that ``part`` of ``split`` can be evaluated, and return ``split``.

    A dataset can load and split cleanly yet leave nothing to evaluate; callers
    (graphs, evals) call this before `sample_candidates` or ranking metrics to
    fail with the reason instead of scoring zero users.

    Args:
        part: the held-out part to be scored.
        n_negatives: when given, also check that every evaluated user has that
            many untouched items in ``pool`` (what `sample_candidates` needs).
        pool: ``"interacted"`` or ``"catalog"``, as in `sample_candidates`.

    Raises:
        DataValidationError: naming the dataset and every reason that applies:
            no interactions, a catalogue (pool) of fewer than 2 items, no user
            with a held-out row (under leave-one-out: every user has fewer than
            3 interactions), too few untouched items for ``n_negatives``.
    """
    if pool not in ("interacted", "catalog"):
        raise ConfigError(f"pool must be 'interacted' or 'catalog', got {pool!r}")
    ds = split.dataset
    after = split.report.get("filters") or []
    after_text = f" after {', '.join(after)}" if after else ""
    reasons: list[str] = []
    if ds.n_interactions == 0:
        reasons.append(f"no interactions{after_text}")
    n_pool = ds.n_items if pool == "catalog" else int((ds.item_popularity() > 0).sum())
    if ds.n_interactions and n_pool < 2:
        where = "" if pool == "catalog" else " with interactions"
        reasons.append(
            f"the catalogue has {n_pool} item{'' if n_pool == 1 else 's'}{where}: "
            "nothing to rank a held-out item against"
        )
    if ds.n_interactions and split.n_evaluable(part) == 0:
        if split.protocol == "leave-one-out":
            users = split.report.get("users", ds.n_users)
            reasons.append(
                f"every user has fewer than 3 interactions{after_text} "
                f"({users} user{'' if users == 1 else 's'}), so none has a "
                f"{part} item"
            )
        else:
            reasons.append(f"the {part} part is empty")
    if n_negatives is not None and not reasons:
        users, _ = split.targets(part)
        users = distinct(users.astype(np.int64))
        available = _available(ds, users, pool, split.touched)
        if available.min() < n_negatives:
            worst = int(np.argmin(available))
            reasons.append(
                f"user {ds.user_ids[users[worst]].item()!r} has only "
                f"{available[worst]} untouched items in the {pool} pool, fewer "
                f"than the {n_negatives} negatives asked for"
            )
    if reasons:
        raise DataValidationError(
            f"dataset {ds.name!r} cannot be evaluated on {part!r}: "
            + "; ".join(reasons)
        )
    return split


def _available(
    dataset: Dataset, users: np.ndarray, pool_kind: Pool, touched: np.ndarray
) -> np.ndarray:
    """``int64[m]``: items in the pool each user never touched."""
    n_items = dataset.n_items
    if pool_kind == "catalog":
        in_pool = np.ones(n_items, dtype=bool)
    else:
        in_pool = dataset.item_popularity() > 0
    key_users, key_items = np.divmod(touched, n_items)
    used = np.bincount(key_users[in_pool[key_items]], minlength=dataset.n_users)
    return int(in_pool.sum()) - used[users.astype(np.int64)]


def sample_negatives(
    dataset: Dataset,
    users: np.ndarray,
    n: int,
    *,
    seed: int = 0,
    pool: Pool = "interacted",
) -> np.ndarray:
    """``int32[m, n]``: for each user (compact id, repeats allowed), ``n`` distinct
    items drawn uniformly from ``pool`` minus everything the user touched in
    ``dataset``."""
    keys = dataset.users.astype(np.int64) * dataset.n_items + dataset.items
    rng = np.random.default_rng(seed)
    return _sample(dataset, np.asarray(users), n, rng, pool, distinct(keys))


_BLOCK = 1 << 22
"""Most candidate draws held at once (rows x width)."""


def _sample(
    dataset: Dataset,
    users: np.ndarray,
    n: int,
    rng: np.random.Generator,
    pool_kind: Pool,
    touched: np.ndarray,
) -> np.ndarray:
    """Rejection sampling, vectorised over rows; rows of users who touched most
    of the pool go to an exact per-row draw."""
    if pool_kind not in ("interacted", "catalog"):
        raise ConfigError(f"pool must be 'interacted' or 'catalog', got {pool_kind!r}")
    if n < 0:
        raise ConfigError(f"number of negatives must be >= 0, got {n}")
    n_items = dataset.n_items
    if pool_kind == "catalog":
        pool = np.arange(n_items, dtype=np.int64)
    else:
        pool = np.flatnonzero(dataset.item_popularity() > 0)
    in_pool = np.zeros(n_items, dtype=bool)
    in_pool[pool] = True
    key_users, key_items = np.divmod(touched, n_items)
    used = np.bincount(key_users[in_pool[key_items]], minlength=dataset.n_users)
    users = users.astype(np.int64)
    available = len(pool) - used[users]
    if len(users) and available.min() < n:
        worst = int(np.argmin(available))
        raw_id = dataset.user_ids[users[worst]].item()
        raise DataValidationError(
            f"user {raw_id!r} (id {users[worst]}) has only "
            f"{available[worst]} untouched items in the {pool_kind} pool; cannot "
            f"sample {n} negatives (lower n or use pool='catalog')"
        )
    out = np.empty((len(users), n), dtype=np.int64)
    if n == 0 or len(users) == 0:
        return out.astype(np.int32)
    share = available / len(pool)
    todo = np.flatnonzero(share >= 0.1)
    exact = list(np.flatnonzero(share < 0.1))
    margin = n + 4 * np.sqrt(n) + 4
    for _ in range(3):
        if todo.size == 0:
            break
        width = int(np.ceil(margin / share[todo].min()))
        rows_per_block = max(1, _BLOCK // width)
        failed = []
        for start in range(0, todo.size, rows_per_block):
            rows = todo[start : start + rows_per_block]
            done = _draw(rows, users, pool, touched, n_items, n, width, rng, out)
            failed.append(rows[~done])
        todo = np.concatenate(failed)
    exact += list(todo)
    for row in sorted(exact):
        user = users[row]
        lo, hi = np.searchsorted(touched, [user * n_items, (user + 1) * n_items])
        allowed = np.setdiff1d(pool, touched[lo:hi] - user * n_items)
        out[row] = rng.choice(allowed, size=n, replace=False)
    return out.astype(np.int32)


def _draw(rows, users, pool, touched, n_items, n, width, rng, out) -> np.ndarray:
    """Fill ``out[rows]`` from ``width`` uniform draws per row; return which rows
    got ``n`` distinct untouched items."""
    cand = pool[rng.integers(0, len(pool), size=(len(rows), width))]
    keys = users[rows, None] * n_items + cand
    pos = np.minimum(np.searchsorted(touched, keys), len(touched) - 1)
    ok = touched[pos] != keys if len(touched) else np.ones_like(keys, dtype=bool)
    order = np.argsort(cand, axis=1, kind="stable")
    ordered = np.take_along_axis(cand, order, axis=1)
    repeat = np.zeros_like(ok)
    repeat[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    later = np.empty_like(ok)
    np.put_along_axis(later, order, repeat, axis=1)
    ok &= ~later
    done = ok.sum(axis=1) >= n
    first = np.argsort(~ok, axis=1, kind="stable")[:, :n]
    out[rows[done]] = np.take_along_axis(cand, first, axis=1)[done]
    return done
