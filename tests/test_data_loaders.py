"""Loaders on the shared real datasets, the Dataset type, and the binary cache."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from agenticrec import data
from agenticrec.data import _loaders
from agenticrec.errors import ConfigError, DataFormatError


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


# ------------------------------------------------------------ shared datasets
def test_embedded_ml_latest_small_counts_match_readme():
    start = time.perf_counter()
    ds = data.load(cache=False)
    elapsed = time.perf_counter() - start
    info = ds.info()
    assert (info["users"], info["items"], info["catalog_items"]) == (610, 9724, 9742)
    assert info["interactions"] == 100_836
    assert ds.source == "embedded:ml-latest-small"
    assert ds.ratings is not None and set(np.unique(ds.ratings)) <= {
        x / 2 for x in range(1, 11)
    }
    assert info["time_span"]["first"] == "1996-03-29"
    assert info["time_span"]["last"] == "2018-09-24"
    assert info["report"]["cold_items"] == 18
    assert elapsed < 3.0, f"cold load took {elapsed:.2f}s"


def test_movielens_csv_titles_with_commas_and_quotes_and_years():
    ds = data.load("ml-latest-small")
    k = int(ds.item_index(11)[0])
    assert ds.titles[k] == "American President, The (1995)"
    assert ds.release_year[k] == 1995
    quoted = [t for t in ds.titles if '"' in t]
    assert quoted, "ml-latest-small has titles with embedded quotes"
    assert ds.categories[int(ds.item_index(1)[0])] == (
        "Adventure",
        "Animation",
        "Children",
        "Comedy",
        "Fantasy",
    )
    assert "funny" in ds.text[int(ds.item_index(60756)[0])]
    no_genre = [c for c in ds.categories if not c]
    assert no_genre, "'(no genres listed)' becomes an empty tuple"
    # 13 titles lack "(yyyy)"; one of them ends in a range "(2006–2007)".
    assert (ds.release_year == data.UNKNOWN_YEAR).sum() == 12
    assert data.year_from_title("Death Note: Desu nôto (2006–2007)") == 2006


@needs_shared
def test_fingerprint_depends_on_content_only():
    embedded = data.load("ml-latest-small")
    shared = data.load(SHARED / "ml-latest-small")
    assert shared.fingerprint == embedded.fingerprint
    assert shared.source != embedded.source


@needs_shared
def test_ml100k_counts_genres_and_release_dates():
    ds = data.load(SHARED / "ml-100k")
    info = ds.info()
    assert (info["users"], info["items"], info["interactions"]) == (943, 1682, 100_000)
    assert ds.n_items == 1682 and ds.format == "ml-100k"
    toy = int(ds.item_index(1)[0])
    assert ds.titles[toy] == "Toy Story (1995)"
    assert ds.categories[toy] == ("Animation", "Children's", "Comedy")
    assert ds.release_year[toy] == 1995
    assert ds.titles[int(ds.item_index(267)[0])] == "unknown"
    assert ds.report.empty_users == 0 and ds.report.duplicate_rows == 0


@needs_shared
def test_ml1m_implicit_parquet_counts_and_file_order():
    ds = data.load(SHARED / "ml-1m-implicit")
    info = ds.info()
    assert (info["users"], info["items"]) == (6040, 3706)
    assert info["interactions"] == 1_000_209
    assert ds.n_items == 3883, "catalog comes from movies.dat"
    assert ds.ratings is None and ds.time_kind == "order"
    assert info["time_span"] is None
    table = pq.read_table(SHARED / "ml-1m-implicit" / "ratings.parquet")
    first_user = table.slice(0, 400).to_pydict()
    expected = [
        int(m)
        for u, m in zip(first_user["userID"], first_user["movieID"], strict=True)
        if u == "1"
    ]
    indptr, indices = ds.user_histories()
    u = int(ds.user_index(1)[0])
    assert ds.item_ids[indices[indptr[u] : indptr[u + 1]]].tolist() == expected


@needs_shared
def test_amazon_unisrec_counts_and_the_capped_histories():
    ds = data.load(SHARED / "amazon18-scientific-unisrec")
    info = ds.info()
    assert (info["users"], info["items"], info["interactions"]) == (8442, 4385, 59_384)
    # 59,384 is the sum of the test rows' lengths; 3 users were capped at 51 items.
    assert (ds.report.truncated_users, ds.report.truncated_interactions) == (3, 43)
    assert ds.report.repeated_pairs == 289
    full = data.load(SHARED / "amazon18-scientific-unisrec", full_history=True)
    assert full.n_interactions == 59_384 + 43 and full.n_users == 8442
    assert full.fingerprint != ds.fingerprint


@needs_shared
def test_amazon_unisrec_ids_sequences_and_text_split():
    root = SHARED / "amazon18-scientific-unisrec"
    ds = data.load(root / "Scientific.test.inter")
    assert ds.item_ids[0] == "B00TNNWMXI", "items follow item2index order"
    user0 = int(ds.user_index("ABW8NXS7SV55K")[0])
    indptr, indices = ds.user_histories()
    assert indices[indptr[user0] : indptr[user0 + 1]].tolist() == list(range(14))
    k = int(ds.item_index("B0000223SI")[0])
    assert ds.titles[k] == (
        "PORTER-CABLE 740000801 4 1/2-Inch x 10yd 80 Grit Adhesive-Backed Sanding Roll"
    )
    assert ds.categories[k] == (
        "Industrial & Scientific",
        "Abrasive & Finishing Products Manual Sanding Products Sanding Rolls",
    )
    assert ds.brands[k] == "PORTER-CABLE"
    assert ds.text[k].startswith("PORTER-CABLE 740000801")
    mr = ds.titles.index(next(t for t in ds.titles if t.startswith("Mr. Heater")))
    assert ds.brands[mr] == "Mr. Heater", "dots inside titles and brands survive"
    share = sum(c[:1] == ("Industrial & Scientific",) for c in ds.categories)
    assert share > 0.95 * ds.n_items


@needs_shared
def test_load_by_name_searches_data_dirs(monkeypatch):
    monkeypatch.setenv("AGENTICREC_DATA_DIR", str(SHARED))
    assert data.load("ml-100k").n_interactions == 100_000
    with pytest.raises(ConfigError, match="no dataset"):
        data.load("no-such-dataset")


# ----------------------------------------------------------- Amazon 2023
def _review(user, asin, ts, rating=5.0):
    return {
        "rating": rating,
        "title": "Great",
        "text": "Works well.",
        "images": [],
        "asin": asin,
        "parent_asin": asin,
        "user_id": user,
        "timestamp": ts,
        "helpful_vote": 0,
        "verified_purchase": True,
    }


def _meta(asin, title, categories, store, date=None):
    details = {"Package Dimensions": "7.1 x 5.5 x 3 inches", "UPC": "617390882781"}
    if date:
        details["Date First Available"] = date
    return {
        "main_category": "All Beauty",
        "title": title,
        "average_rating": 4.8,
        "rating_number": 10,
        "features": ["Gentle"],
        "description": ["A balm."],
        "price": None,
        "images": [
            {"thumb": "t.jpg", "large": "l.jpg", "variant": "MAIN", "hi_res": None}
        ],
        "videos": [],
        "store": store,
        "categories": categories,
        "details": details,
        "parent_asin": asin,
        "bought_together": None,
    }


def write_amazon2023(folder: Path, compress: bool = False) -> Path:
    """Amazon Reviews 2023 files in their published layout."""
    folder.mkdir(parents=True, exist_ok=True)
    reviews = [
        _review("AGKHLEW2SOWHNMFQIJGBECAF7INQ", "B01CUPMQZE", 1588687728923),
        _review("AGKHLEW2SOWHNMFQIJGBECAF7INQ", "B076WQZGPM", 1588615855070, 4.0),
        _review("AE74DYR3QUGVPZJ3P7RFWBGIX7XQ", "B01CUPMQZE", 1589665266052, 1.0),
        _review("AE74DYR3QUGVPZJ3P7RFWBGIX7XQ", "B000UNKNOWN", 1643393630220, 3.0),
        _review("AE74DYR3QUGVPZJ3P7RFWBGIX7XQ", "B01CUPMQZE", 1589665266052, 1.0),
        _review("AFQLNQNQYFWQZPJQZS6V3NZU4QBQ", "B076WQZGPM", 1609322563534),
    ]
    metas = [
        _meta(
            "B01CUPMQZE",
            "Howard LC0008 Leather Conditioner, 8-Ounce (4-Pack)",
            [],
            "Howard Products",
            "March 2, 2016",
        ),
        _meta(
            "B076WQZGPM",
            "Yes to Tomatoes Detoxifying Charcoal Cleanser",
            ["Beauty & Personal Care", "Skin Care", "Face"],
            "Yes To",
        ),
        _meta("B00COLDITEM", "Cold item", ["Beauty & Personal Care"], None),
    ]
    for name, rows in (("All_Beauty", reviews), ("meta_All_Beauty", metas)):
        text = "".join(json.dumps(r) + "\n" for r in rows).encode()
        if compress:
            (folder / f"{name}.jsonl.gz").write_bytes(gzip.compress(text))
        else:
            (folder / f"{name}.jsonl").write_bytes(text)
    return folder


@pytest.mark.parametrize("compress", [False, True])
def test_amazon2023_jsonl_reviews_and_metadata(tmp_path, compress):
    ds = data.load(write_amazon2023(tmp_path / "beauty", compress))
    assert ds.format == "amazon2023" and ds.time_kind == "unix"
    assert (ds.n_users, ds.n_interactions) == (3, 5)
    assert ds.report.duplicate_rows == 1, "same user, item and time"
    assert (ds.report.unknown_items, ds.report.unknown_item_rows) == (1, 1)
    assert ds.report.cold_items == 1
    assert ds.n_items == 4 and ds.item_ids[-1] == "B000UNKNOWN"
    assert ds.titles[-1] == "" and ds.categories[-1] == ()
    u = int(ds.user_index("AGKHLEW2SOWHNMFQIJGBECAF7INQ")[0])
    indptr, indices = ds.user_histories()
    assert ds.item_ids[indices[indptr[u] : indptr[u + 1]]].tolist() == [
        "B076WQZGPM",
        "B01CUPMQZE",
    ], "sorted by time, not file order"
    assert ds.timestamps[indptr[u]] == 1588615855, "milliseconds become seconds"
    k = int(ds.item_index("B01CUPMQZE")[0])
    assert ds.categories[k] == ("All Beauty",), "empty categories: main_category"
    assert ds.brands[k] == "Howard Products" and ds.release_year[k] == 2016
    assert ds.text[k] == "Gentle A balm."
    j = int(ds.item_index("B076WQZGPM")[0])
    assert ds.categories[j] == ("Beauty & Personal Care", "Skin Care", "Face")
    assert ds.ratings is not None and ds.ratings.dtype == np.float32


# ------------------------------------------------------------------ detection
def test_detect_by_folder_and_by_file(tmp_path):
    (tmp_path / "u.data").write_text("1\t2\t3\t4\n")
    assert data.detect(tmp_path)[0] == "ml-100k"
    assert data.detect(tmp_path / "u.data")[0] == "ml-100k"
    other = tmp_path / "x"
    other.mkdir()
    (other / "Foo.test.inter").write_text("")
    assert data.detect(other)[0] == "recbole"
    (other / "ratings.parquet").write_bytes(b"")
    assert data.detect(other / "ratings.parquet")[0] == "parquet"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no known data files"):
        data.detect(empty)
    with pytest.raises(ConfigError, match="unknown format"):
        data.load(tmp_path, format="csv")  # type: ignore[arg-type]


def test_explicit_format_overrides_detection(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3,4\n")
    ds = data.load(tmp_path, format="movielens-csv")
    assert ds.format == "movielens-csv" and ds.n_interactions == 1
    with pytest.raises(ConfigError, match="full_history"):
        data.load(tmp_path, full_history=True)


# --------------------------------------------------------------- Dataset API
def test_dataset_is_immutable_and_arrays_are_read_only():
    ds = data.load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.users = ds.items  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        ds.items[0] = 1
    assert ds.users.dtype == np.int32 and ds.items.dtype == np.int32
    assert ds.timestamps.dtype == np.int64 and ds.ratings.dtype == np.float32


def test_histories_matrix_and_popularity_agree():
    ds = data.load()
    indptr, indices = ds.user_histories()
    assert indptr.shape == (ds.n_users + 1,) and indptr[-1] == ds.n_interactions
    for u in (0, 100, 609):
        times = ds.timestamps[indptr[u] : indptr[u + 1]]
        assert np.all(np.diff(times) >= 0), "histories are in time order"
    matrix = ds.interaction_matrix()
    assert matrix.shape == (ds.n_users, ds.n_items) and matrix.nnz == ds.n_pairs
    assert set(np.unique(matrix.data)) == {1.0}
    popularity = ds.item_popularity()
    np.testing.assert_array_equal(np.asarray(matrix.sum(axis=0)).ravel(), popularity)
    histogram = ds.info()["popularity_histogram"]
    assert sum(histogram["counts"]) == 9724
    assert len(histogram["bins"]) == len(histogram["counts"]) + 1


def test_subset_users_keeps_catalog_and_renumbers_users():
    ds = data.load()
    sub = ds.subset_users([5, 3, 300])
    assert sub.n_users == 3 and sub.n_items == ds.n_items
    np.testing.assert_array_equal(sub.user_ids, ds.user_ids[[3, 5, 300]])
    expected = np.isin(ds.users, [3, 5, 300]).sum()
    assert sub.n_interactions == expected
    assert sub.titles is ds.titles, "catalog is shared, not copied"
    assert sub.fingerprint != ds.fingerprint and sub.lineage == ("subset_users(3)",)
    kept = ds.subset_users([3], compact=False)
    assert kept.n_users == ds.n_users and set(np.unique(kept.users)) == {3}


def test_from_interactions_with_string_ids_counts_everything():
    ds = data.Dataset.from_interactions(
        ["bob", "amy", "bob", "bob", "amy"],
        ["x", "y", "z", "x", "x"],
        [10, 5, 3, 10, 7],
        item_ids=["x", "y", "w"],
        titles=["X", "Y", "W"],
    )
    assert ds.user_ids.tolist() == ["amy", "bob"]
    assert ds.item_ids.tolist() == ["x", "y", "w", "z"]
    assert ds.report.duplicate_rows == 1 and ds.report.unknown_items == 1
    assert ds.report.cold_items == 1 and ds.n_interactions == 4
    bob = int(ds.user_index("bob")[0])
    indptr, indices = ds.user_histories()
    assert ds.item_ids[indices[indptr[bob] : indptr[bob + 1]]].tolist() == ["z", "x"]


# --------------------------------------------------------------------- cache
def _write_csv_dataset(folder: Path, n_users: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        f"{u},{m},4.0,{1000 + u * 10 + m}"
        for u in range(1, n_users + 1)
        for m in (1, 2, 3)
    ]
    (folder / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n"
    )
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,"Heat, The (1995)",Action\n2,"Say ""Hi"" (2001)",'
        "Comedy|Drama\n3,Untitled,(no genres listed)\n"
    )
    return folder


def test_cache_is_used_then_rebuilt_when_the_source_changes(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTICREC_CACHE_DIR", str(cache))
    folder = _write_csv_dataset(tmp_path / "mine")
    first = data.load(folder)
    assert first.titles[:2] == ("Heat, The (1995)", 'Say "Hi" (2001)')
    assert len(list(cache.glob("*.npz"))) == 1

    def broken(*args, **kwargs):
        raise AssertionError("parsed although the cache is valid")

    with monkeypatch.context() as patch:
        loader = _loaders._LOADERS["movielens-csv"]
        patch.setitem(
            _loaders._LOADERS,
            "movielens-csv",
            dataclasses.replace(loader, parse=broken),
        )
        cached = data.load(folder)
    assert cached.fingerprint == first.fingerprint
    np.testing.assert_array_equal(cached.items, first.items)
    assert cached.titles == first.titles and cached.report == first.report

    ratings = folder / "ratings.csv"
    stat = ratings.stat()
    text = ratings.read_text().replace("4.0,1011", "5.0,1011")
    ratings.write_text(text)
    os.utime(ratings, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime
    changed = data.load(folder)
    assert changed.fingerprint != first.fingerprint, "content hash is in the key"
    assert changed.ratings.max() == 5.0

    with ratings.open("a") as handle:
        handle.write("4,1,3.0,2000\n")
    grown = data.load(folder)
    assert grown.n_users == 4 and grown.n_interactions == 10
    assert len(list(cache.glob("*.npz"))) == 1, "stale cache files are removed"
    assert not list(cache.glob("*.tmp"))


def test_corrupt_or_half_written_cache_is_ignored(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTICREC_CACHE_DIR", str(cache))
    folder = _write_csv_dataset(tmp_path / "mine")
    good = data.load(folder)
    (target,) = cache.glob("*.npz")
    target.write_bytes(target.read_bytes()[:100])
    again = data.load(folder)
    assert again.n_interactions == good.n_interactions
    assert target.stat().st_size > 100, "rebuilt and rewritten"


def test_failed_cache_write_leaves_no_file(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("AGENTICREC_CACHE_DIR", str(cache))
    folder = _write_csv_dataset(tmp_path / "mine")

    def fail_midway(handle, **arrays):
        handle.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", fail_midway)
    with pytest.warns(UserWarning, match="cannot write cache"):
        ds = data.load(folder)
    assert ds.n_interactions == 9
    assert list(cache.iterdir()) == []


def test_recbole_plain_inter_and_item_files(tmp_path):
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "toy.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ti9\t4.0\t300\nu1\ti7\t5.0\t100\nu2\ti9\t3.0\t200\n"
    )
    (folder / "toy.item").write_text(
        "item_id:token\ttitle:token_seq\tcategories:token_seq\n"
        "i7\tSeven\tA B\ni9\tNine\tC\n"
    )
    ds = data.load(folder)
    assert ds.format == "recbole" and ds.time_kind == "unix"
    assert ds.item_ids.tolist() == ["i7", "i9"] and ds.titles == ("Seven", "Nine")
    assert ds.categories == (("A", "B"), ("C",))
    indptr, indices = ds.user_histories()
    assert ds.item_ids[indices[indptr[0] : indptr[1]]].tolist() == ["i7", "i9"]
    assert ds.ratings.tolist() == [5.0, 4.0, 3.0]
