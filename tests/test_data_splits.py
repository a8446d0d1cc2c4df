"""Filters, leave-one-out and temporal splits, user groups, sampled candidates."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from agenticrec import data
from agenticrec.errors import ConfigError, DataValidationError


def _shared_data() -> Path:
    configured = os.environ.get("AGENTICREC_SHARED_DATA")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


SHARED = _shared_data()
needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason=f"shared datasets not found at {SHARED} (set AGENTICREC_SHARED_DATA)",
)


@pytest.fixture(autouse=True, scope="module")
def _cache_dir(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("AGENTICREC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    patch.undo()


@pytest.fixture(scope="module")
def movies() -> data.Dataset:
    return data.load()


def _random_dataset(seed: int, n_users=40, n_items=30, n=600) -> data.Dataset:
    rng = np.random.default_rng(seed)
    return data.Dataset.from_interactions(
        rng.integers(0, n_users, n),
        rng.integers(0, n_items, n) * 7,
        rng.integers(0, 50, n),
        rng.integers(1, 6, n).astype(np.float32),
    )


def _pairs(ds: data.Dataset, rows: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(ds.users[rows].tolist(), ds.items[rows].tolist(), strict=True))


# ---------------------------------------------------------------- filters
def _k_core_reference(pairs: list[tuple[int, int]], k: int) -> list[tuple[int, int]]:
    while True:
        users = Counter(u for u, _ in pairs)
        items = Counter(i for _, i in pairs)
        kept = [(u, i) for u, i in pairs if users[u] >= k and items[i] >= k]
        if len(kept) == len(pairs):
            return kept
        pairs = kept


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k_core_matches_a_plain_python_reference(seed):
    ds = _random_dataset(seed)
    k = 12
    expected = _k_core_reference(
        list(
            zip(
                ds.user_ids[ds.users].tolist(),
                ds.item_ids[ds.items].tolist(),
                strict=True,
            )
        ),
        k,
    )
    cored = data.k_core(ds, k)
    got = list(
        zip(
            cored.user_ids[cored.users].tolist(),
            cored.item_ids[cored.items].tolist(),
            strict=True,
        )
    )
    assert Counter(got) == Counter(expected)
    assert cored.user_counts().min() >= k
    popularity = cored.item_popularity()
    assert popularity[popularity > 0].min() >= k
    assert 0 < cored.n_interactions < ds.n_interactions, "some rows dropped"
    assert cored.lineage == ("k_core(users>=12,items>=12)",)


def test_k_core_that_empties_the_data_raises():
    with pytest.raises(DataValidationError, match="leaves no interactions"):
        data.k_core(_random_dataset(0, n=50), 40)


def test_implicit_keeps_ratings_at_or_above_threshold(movies):
    positive = data.implicit(movies, 4.0)
    assert positive.ratings.min() == 4.0
    assert positive.n_interactions == int((movies.ratings >= 4.0).sum())
    assert positive.n_items == movies.n_items, "catalog is kept"


def test_dedupe_keeps_first_or_last_occurrence():
    ds = data.Dataset.from_interactions([1, 1, 1, 2], [5, 6, 5, 5], [1, 2, 3, 4])
    first = data.dedupe(ds)
    assert first.timestamps.tolist() == [1, 2, 4]
    last = data.dedupe(ds, keep="last")
    assert last.timestamps.tolist() == [2, 3, 4]
    assert data.dedupe(first) is first


# ------------------------------------------------------------ leave-one-out
def test_leave_one_out_holds_out_the_last_two_by_time(movies):
    split = data.leave_one_out(movies, min_rating=4.0)
    ds = split.dataset
    rows = np.concatenate([split.train, split.valid, split.test])
    assert len(np.unique(rows)) == len(rows) == ds.n_interactions, "a partition"
    test_users, test_items = split.targets("test")
    valid_users, valid_items = split.targets("valid")
    assert (
        len(np.unique(test_users)) == len(test_users) == split.report["evaluated_users"]
    )
    np.testing.assert_array_equal(test_users, valid_users)
    assert np.all(ds.timestamps[split.valid] <= ds.timestamps[split.test])
    assert np.all(split.valid < split.test), "valid row precedes test row"
    indptr, _ = ds.user_histories()
    np.testing.assert_array_equal(split.test, indptr[1:][test_users] - 1)
    train_pairs = _pairs(ds, split.train)
    for user, item in zip(test_users.tolist(), test_items.tolist(), strict=True):
        assert (user, item) not in train_pairs, "test item is in the user's train"
    train_ts = ds.timestamps[split.train]
    last_train = np.full(ds.n_users, -1)
    np.maximum.at(last_train, ds.users[split.train], train_ts)
    assert np.all(last_train[valid_users] <= ds.timestamps[split.valid])


def test_leave_one_out_short_users_train_or_drop():
    ds = data.Dataset.from_interactions(
        ["a"] * 4 + ["b"] * 2 + ["c"], [1, 2, 3, 4, 1, 2, 3], [1, 2, 3, 4, 1, 2, 1]
    )
    kept = data.leave_one_out(ds)
    assert kept.report["short_users"] == 2 and kept.report["evaluated_users"] == 1
    assert len(kept.train) == 2 + 2 + 1 and len(kept.test) == 1
    dropped = data.leave_one_out(ds, short_users="drop")
    assert len(dropped.train) == 2
    assert set(dropped.dataset.users[dropped.train].tolist()) == {0}
    with pytest.raises(ConfigError):
        data.leave_one_out(ds, short_users="keep")  # type: ignore[arg-type]


def test_leave_one_out_dedupe_false_keeps_repeats():
    ds = data.Dataset.from_interactions([1] * 4, [5, 6, 7, 5], [1, 2, 3, 4])
    repeats = data.leave_one_out(ds, dedupe=False)
    assert repeats.dataset.items[repeats.test].tolist() == [int(ds.item_index(5)[0])]
    unique = data.leave_one_out(ds)
    assert unique.dataset.n_interactions == 3
    assert unique.dataset.item_ids[unique.dataset.items[unique.test]].tolist() == [7]


def test_history_sees_only_rows_before_the_part(movies):
    split = data.leave_one_out(movies)
    indptr, indices = split.history("test")
    assert indptr[-1] == len(split.train) + len(split.valid)
    valid_indptr, _ = split.history("valid")
    assert valid_indptr[-1] == len(split.train)
    train = split.part("train")
    assert train.n_users == split.dataset.n_users, "ids are not renumbered"
    assert train.n_interactions == len(split.train)


@needs_shared
def test_leave_one_out_reproduces_unisrec_valid_and_test_targets():
    root = SHARED / "amazon18-scientific-unisrec"
    split = data.leave_one_out(data.load(root), dedupe=False)
    ds = split.dataset
    assert split.report["evaluated_users"] == 8442
    for part in ("valid", "test"):
        users, items = split.targets(part)
        lines = (root / f"Scientific.{part}.inter").read_text().splitlines()[1:]
        user_keys = [
            ln.split("\t")[0]
            for ln in (root / "Scientific.user2index").read_text().splitlines()
        ]
        expected = {
            user_keys[int(ln.split("\t")[0])]: int(ln.split("\t")[2]) for ln in lines
        }
        got = dict(zip(ds.user_ids[users].tolist(), items.tolist(), strict=True))
        assert got == expected, f"{part} targets differ from UniSRec's files"


@needs_shared
def test_leave_one_out_on_order_only_ml1m():
    split = data.leave_one_out(data.load(SHARED / "ml-1m-implicit"))
    assert split.report["evaluated_users"] == 6040
    assert len(split.test) == 6040 and len(split.train) == 1_000_209 - 2 * 6040


# ------------------------------------------------------------------ temporal
def test_temporal_split_orders_parts_by_time(movies):
    split = data.temporal_split(movies, valid=0.1, test=0.1)
    ts = split.dataset.timestamps
    assert ts[split.train].max() < ts[split.valid].min()
    assert ts[split.valid].max() < ts[split.test].min()
    fractions = split.report["fractions"]
    assert fractions == pytest.approx([0.8, 0.1, 0.1], abs=0.01)
    assert 0 < split.report["cold_test_users"] <= split.report["test_users"]


def test_temporal_split_needs_real_time():
    ordered = data.Dataset.from_interactions([1, 1, 2], [1, 2, 1])
    with pytest.raises(DataValidationError, match="no timestamps"):
        data.temporal_split(ordered)
    with pytest.raises(ConfigError):
        data.temporal_split(_random_dataset(0), valid=0.5, test=0.5)


# -------------------------------------------------------------- user groups
def test_split_users_partitions_users_reproducibly(movies):
    groups = data.split_users(movies, seed=3)
    assert [len(g) for g in groups.values()] == [427, 61, 61, 61]
    everyone = np.concatenate(list(groups.values()))
    assert sorted(everyone.tolist()) == list(range(movies.n_users))
    again = data.split_users(movies, seed=3)
    assert all(np.array_equal(groups[k], again[k]) for k in groups)
    other = data.split_users(movies, seed=4)
    assert not np.array_equal(groups["online"], other["online"])
    with pytest.raises(ConfigError, match="sum to 1"):
        data.split_users(movies, {"a": 0.5, "b": 0.4})


# --------------------------------------------------------------- candidates
def test_candidates_never_touched_distinct_and_seeded(movies):
    split = data.leave_one_out(movies, min_rating=4.0)
    cands = data.sample_candidates(split, n_negatives=99, seed=7)
    users, targets = split.targets("test")
    assert cands.items.shape == (len(users), 100) and cands.items.dtype == np.int32
    np.testing.assert_array_equal(cands.items[:, 0], targets)
    negatives = cands.items[:, 1:]
    assert all(len(set(row)) == 99 for row in negatives.tolist())
    # Touched means in the raw data, low ratings included, not only positives.
    raw_user = split.dataset.user_ids[users]
    touched = _pairs(movies, np.arange(movies.n_interactions))
    original_user = movies.user_index(raw_user)
    for user, row in zip(original_user.tolist(), negatives.tolist(), strict=True):
        assert not any((user, item) in touched for item in row)
    popularity = split.dataset.item_popularity()
    assert popularity[negatives].min() > 0, "pool='interacted'"
    again = data.sample_candidates(split, n_negatives=99, seed=7)
    np.testing.assert_array_equal(again.items, cands.items)
    other = data.sample_candidates(split, n_negatives=99, seed=8)
    assert not np.array_equal(other.items, cands.items)


def test_shuffled_candidates_record_the_target_position(movies):
    split = data.leave_one_out(movies)
    cands = data.sample_candidates(split, 20, seed=1, shuffle=True, pool="catalog")
    rows = np.arange(len(cands.users))
    np.testing.assert_array_equal(cands.items[rows, cands.target_pos], cands.targets)
    assert len(np.unique(cands.target_pos)) > 5


def test_negatives_are_uniform_over_untouched_items():
    ds = data.Dataset.from_interactions([0, 0, 1, 2, 3], [0, 1, 2, 3, 4])
    negatives = data.sample_negatives(ds, np.zeros(6000, dtype=int), 2, seed=0)
    assert set(np.unique(negatives).tolist()) == {2, 3, 4}
    counts = np.bincount(negatives.ravel(), minlength=5)[2:]
    expected = 6000 * 2 / 3
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 13.8, f"counts {counts} are not uniform (chi2={chi2:.1f})"
    assert all(a != b for a, b in negatives.tolist())


def test_heavy_users_take_the_exact_path_and_infeasible_raises():
    n_items = 200
    users = [0] * 195 + [1] * 3
    items = list(range(195)) + [0, 1, 2]
    ds = data.Dataset.from_interactions(users, items, item_ids=range(n_items))
    negatives = data.sample_negatives(ds, [0, 1], 5, seed=2, pool="catalog")
    assert set(negatives[0].tolist()) == {195, 196, 197, 198, 199}
    assert not set(negatives[1].tolist()) & {0, 1, 2}
    assert ds.n_items == n_items
    with pytest.raises(DataValidationError, match="only 5 untouched"):
        data.sample_negatives(ds, [0], 6, pool="catalog")
