"""Malformed files raise DataFormatError naming file, line and field; odd but
well-formed rows are counted in the report, never silently dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agenticrec import data
from agenticrec.errors import DataFormatError, DataValidationError

HEADER = "userId,movieId,rating,timestamp\n"
MOVIES = "movieId,title,genres\n1,Heat (1995),Action\n2,Up (2009),Animation\n"


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTICREC_CACHE_DIR", str(tmp_path / "cache"))


def _csv(folder: Path, ratings: bytes | str, movies: bytes | str = MOVIES) -> Path:
    folder.mkdir(exist_ok=True)
    for name, body in (("ratings.csv", ratings), ("movies.csv", movies)):
        path = folder / name
        path.write_bytes(body.encode() if isinstance(body, str) else body)
    return folder


def _error(path: Path, **kwargs) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        data.load(path, cache=False, **kwargs)
    return info.value


# ---------------------------------------------------------- MovieLens CSV
def test_truncated_line_names_line_and_missing_field(tmp_path):
    folder = _csv(tmp_path / "d", HEADER + "1,1,4.0,964982703\n1,2,4.0\n")
    err = _error(folder)
    assert err.path.endswith("ratings.csv")
    assert (err.line, err.field) == (3, "timestamp")
    assert "ratings.csv, line 3, field 'timestamp'" in str(err)


def test_wrong_separator_is_caught_at_the_header(tmp_path):
    folder = _csv(tmp_path / "d", "userId;movieId;rating;timestamp\n1;1;4.0;9\n")
    err = _error(folder)
    assert (err.line, err.field) == (1, "userId")
    assert "','" in str(err)


def test_wrong_separator_in_headerless_u_data(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text("196\t242\t3\t881250949\n186,302,3,891717742\n")
    err = _error(folder)
    assert err.path.endswith("u.data")
    assert (err.line, err.field) == (2, "item_id")
    assert "separator" in str(err)


def test_non_integer_id(tmp_path):
    folder = _csv(tmp_path / "d", HEADER + "1,1,4.0,9\n1,1,4.0,9\n2,abc,3.5,10\n")
    err = _error(folder)
    assert (err.line, err.field) == (4, "movieId")
    assert "'abc'" in str(err)


def test_empty_field_is_not_read_as_missing(tmp_path):
    err = _error(_csv(tmp_path / "d", HEADER + "1,,4.0,9\n"))
    assert (err.line, err.field) == (2, "movieId")


def test_non_finite_rating(tmp_path):
    err = _error(_csv(tmp_path / "d", HEADER + "1,1,4.0,9\n1,2,nan,9\n"))
    assert (err.line, err.field) == (3, "rating")


def test_invalid_utf8_in_a_utf8_csv_names_the_field(tmp_path):
    movies = MOVIES.encode() + b"3,Caf\xe9 Society (2016),Drama\n"
    err = _error(_csv(tmp_path / "d", HEADER + "1,1,4.0,9\n", movies))
    assert err.path.endswith("movies.csv")
    assert (err.line, err.field) == (4, "title")
    assert "utf-8" in str(err)


def test_unbalanced_quote_is_located(tmp_path):
    movies = MOVIES + '3,"Broken (2001),Drama\n'
    err = _error(_csv(tmp_path / "d", HEADER + "1,1,4.0,9\n", movies))
    assert err.path.endswith("movies.csv") and err.line is not None


# ------------------------------------------------------------- ml-1m / ml-100k
def test_ml1m_dat_truncated_line(tmp_path):
    folder = tmp_path / "ml1m"
    folder.mkdir()
    (folder / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3\n")
    err = _error(folder)
    assert (err.line, err.field) == (2, "Timestamp")


def test_ml100k_bad_genre_flag(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t3\t881250949\n")
    flags = "|".join(["0"] * 18)
    (folder / "u.item").write_bytes(
        f"1|Toy Story (1995)|01-Jan-1995||http://x|0|{flags}\n"
        f"2|Caf\xe9 (1995)|01-Jan-1995||http://x|x|{flags}\n".encode("latin-1")
    )
    err = _error(folder)
    assert err.path.endswith("u.item")
    assert (err.line, err.field) == (2, "genre:unknown")


# ------------------------------------------------------------------ parquet
def test_parquet_without_an_item_column(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(pa.table({"userID": ["1"], "film": ["2"]}), folder / "r.parquet")
    err = _error(folder)
    assert err.field == "movieid" and "film" in str(err)


def test_parquet_null_id(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(
        pa.table({"userID": ["1", None], "movieID": ["2", "3"]}),
        folder / "ratings.parquet",
    )
    err = _error(folder)
    assert err.field == "userID" and "row 2" in str(err)


# ------------------------------------------------------------------- RecBole
def _recbole(folder: Path, test: str) -> Path:
    folder.mkdir()
    (folder / "Toy.test.inter").write_text(
        "user_id:token\titem_id_list:token_seq\titem_id:token\n" + test
    )
    return folder


def test_recbole_non_integer_history_token(tmp_path):
    folder = _recbole(tmp_path / "rb", "0\t0 1 2\t3\n1\t4 x\t5\n")
    err = _error(folder)
    assert (err.line, err.field) == (3, "item_id_list")


def test_recbole_missing_column_and_second_test_row(tmp_path):
    folder = _recbole(tmp_path / "rb", "0\t0 1 2\n")
    err = _error(folder)
    assert (err.line, err.field) == (2, "item_id")
    (folder / "Toy.test.inter").write_text(
        "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t1\t2\n0\t1 2\t3\n"
    )
    err = _error(folder)
    assert (err.line, err.field) == (3, "user_id")


def test_recbole_index_outside_item2index(tmp_path):
    folder = _recbole(tmp_path / "rb", "0\t0 1\t7\n")
    (folder / "Toy.item2index").write_text("A\t0\nB\t1\nC\t2\n")
    err = _error(folder)
    assert err.path.endswith("Toy.item2index") and "index 7" in str(err)


# ---------------------------------------------------------------- JSONL
def _jsonl(folder: Path, lines: list[str]) -> Path:
    folder.mkdir()
    (folder / "Toys.jsonl").write_text("\n".join(lines) + "\n")
    return folder


GOOD = json.dumps({"user_id": "A1", "parent_asin": "B1", "timestamp": 1, "rating": 5.0})


def test_jsonl_broken_line(tmp_path):
    err = _error(_jsonl(tmp_path / "j", [GOOD, '{"user_id": "A2", "parent_']))
    assert err.line == 2 and "invalid JSON" in str(err)


def test_jsonl_missing_key_and_wrong_type(tmp_path):
    missing = json.dumps({"user_id": "A2", "timestamp": 2, "rating": 4.0})
    err = _error(_jsonl(tmp_path / "a", [GOOD, GOOD, missing]))
    assert (err.line, err.field) == (3, "parent_asin")
    wrong = json.dumps({"user_id": "A2", "parent_asin": "B", "timestamp": "May 2"})
    err = _error(_jsonl(tmp_path / "b", [GOOD, wrong]))
    assert (err.line, err.field) == (2, "timestamp")


# ------------------------------------------------- counted, never dropped
def test_unknown_items_duplicates_and_empty_users_are_counted(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text(
        "1\t1\t3\t100\n1\t1\t3\t100\n1\t9\t4\t200\n2\t1\t5\t300\n2\t1\t2\t400\n"
    )
    flags = "|".join(["0"] * 19)
    (folder / "u.item").write_text(
        f"1|Heat (1995)|01-Jan-1995||u|{flags}\n2|Up (2009)|||u|{flags}\n"
        f"1|Heat again (1995)|||u|{flags}\n"
    )
    (folder / "u.user").write_text("1|24|M|x|1\n2|53|F|y|2\n3|23|M|z|3\n")
    ds = data.load(folder, cache=False)
    report = ds.report
    assert report.rows == 5 and ds.n_interactions == 4
    assert report.duplicate_rows == 1, "same user, item and time: first kept"
    assert report.repeated_pairs == 1, "same pair at another time: kept"
    assert (report.unknown_items, report.unknown_item_rows) == (1, 1)
    assert report.duplicate_catalog_items == 1 and ds.titles[0] == "Heat (1995)"
    assert report.empty_users == 1 and ds.n_users == 2
    assert report.cold_items == 1
    assert ds.item_ids.tolist() == [1, 2, 9] and ds.titles[2] == ""
    assert ds.info()["report"]["unknown_items"] == 1


def test_implicit_threshold_needs_ratings(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    pq.write_table(
        pa.table({"userID": [1, 1], "movieID": [2, 3]}), folder / "ratings.parquet"
    )
    ds = data.load(folder, cache=False)
    assert ds.report.notes == (
        "no timestamps: order is the file's row order",
        "no catalog file: the catalog is the interacted items",
    )
    with pytest.raises(DataValidationError, match="no ratings"):
        data.implicit(ds, 4.0)


def test_header_only_file_is_unusable(tmp_path):
    with pytest.raises(DataValidationError, match="no interactions"):
        data.load(_csv(tmp_path / "d", HEADER), cache=False)


def test_recbole_header_only_test_file_is_unusable(tmp_path):
    with pytest.raises(DataValidationError, match="no interactions"):
        data.load(_recbole(tmp_path / "rb", ""), cache=False)
