"""The reading boundary (issue 12): every malformed, empty or unreadable file
and every explicit format gets a project error naming the file (and the line
and field where there is one), never a raw csv/decode/OS/overflow error."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agenticrec import data
from agenticrec.errors import AgenticRecError, DataFormatError, DataValidationError

HEADER = "userId,movieId,rating,timestamp\n"
ROWS = "1,1,4.0,964982703\n1,2,3.5,964982704\n2,1,5.0,964982705\n"
FLAGS = "|".join(["0"] * 19)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTICREC_CACHE_DIR", str(tmp_path / "cache"))


def _error(path: Path, **kwargs) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        data.load(path, cache=False, **kwargs)
    return info.value


# ------------------------------------------------------------ line endings
@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_every_line_ending_reads_the_same(tmp_path, eol):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_bytes((HEADER + ROWS).replace("\n", eol).encode())
    movies = "movieId,title,genres\n1,Heat (1995),Action\n2,Up (2009),Animation\n"
    (folder / "movies.csv").write_bytes(movies.replace("\n", eol).encode())
    ds = data.load(folder, cache=False)
    assert ds.n_interactions == 3 and ds.ratings.tolist() == [4.0, 3.5, 5.0]
    assert ds.titles == ("Heat (1995)", "Up (2009)")
    assert ds.release_year.tolist() == [1995, 2009]


def test_mixed_line_endings_count_lines_as_the_parser_does(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    body = HEADER + "1,1,4.0,9\r\n1,2,3.5,10\r2,x,5.0,11\n"
    (folder / "ratings.csv").write_bytes(body.encode())
    err = _error(folder)
    assert (err.line, err.field) == (4, "movieId")


@pytest.mark.parametrize("kind", ["recbole", "ml100k", "jsonl"])
def test_cr_only_files_of_other_formats(tmp_path, kind):
    folder = tmp_path / kind
    folder.mkdir()
    if kind == "recbole":
        name = "S.test.inter"
        body = "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0 1\t2\n"
    elif kind == "ml100k":
        name = "u.data"
        body = "1\t1\t3\t881250949\n2\t2\t4\t881250950\n"
        (folder / "u.item").write_bytes(
            f"1|Heat (1995)|01-Jan-1995||u|{FLAGS}\n".replace("\n", "\r").encode()
        )
    else:
        name = "T.jsonl"
        row = {"user_id": "A", "parent_asin": "B", "timestamp": 1000, "rating": 5.0}
        body = json.dumps(row) + "\n" + json.dumps({**row, "user_id": "C"}) + "\n"
    (folder / name).write_bytes(body.replace("\n", "\r").encode())
    ds = data.load(folder, cache=False)
    assert ds.n_interactions == (3 if kind == "recbole" else 2)


# -------------------------------------------------------------- integers
@pytest.mark.parametrize(
    "value",
    ["99999999999999999999", "-9223372036854775809", "1" * 5000, "0x1" + "0" * 20],
)
def test_ids_beyond_int64_name_file_line_and_field(tmp_path, value):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_text(HEADER + f"1,1,4.0,9\n1,{value},3.0,10\n")
    err = _error(folder)
    assert err.path.endswith("ratings.csv")
    assert (err.line, err.field) == (3, "movieId") and "64-bit" in str(err)


@pytest.mark.parametrize("value", ["+1", "1_0", "\u0661", "1.0", "--1"])
def test_ints_python_reads_but_the_parser_refuses_are_located(tmp_path, value):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_text(HEADER + f"1,1,4.0,9\n{value},2,3.0,10\n")
    err = _error(folder)
    assert (err.line, err.field) == (3, "userId")


def test_int64_bounds_and_hex_ids_load(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_text(
        HEADER + "9223372036854775807,1,4.0,9\n-9223372036854775808,0x1F,3.0,10\n"
    )
    ds = data.load(folder, cache=False)
    assert sorted(ds.user_ids.tolist()) == [-(2**63), 2**63 - 1]
    assert 31 in ds.item_ids.tolist()


@pytest.mark.parametrize(
    ("name", "body", "line", "field"),
    [
        (
            "u.user",
            "1|24|M|x|1\n\u0661|24|M|x|1\n",
            2,
            "user_id",
        ),
        ("u.genre", "unknown|0\nAction|\u00b2\n", 2, "index"),
    ],
)
def test_ml100k_side_files_use_strict_integers(tmp_path, name, body, line, field):
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t3\t881250949\n")
    (folder / "u.item").write_text(f"1|Heat (1995)|01-Jan-1995||u|{FLAGS}\n")
    (folder / name).write_bytes(body.encode("latin-1", "replace"))
    if name == "u.user":
        (folder / name).write_bytes(body.encode("utf-8"))
    err = _error(folder)
    assert err.path.endswith(name) and (err.line, err.field) == (line, field)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("1\t2\t3.0\tnan", "timestamp"),
        ("1\t2\t3.0\t1e30", "timestamp"),
        ("1\t2\tinf\t10", "rating"),
        ("1\t2\t3\u00b2\t10", "rating"),
    ],
)
def test_recbole_plain_numbers_are_checked(tmp_path, row, field):
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "P.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        f"1\t2\t3.0\t100\n{row}\n"
    )
    err = _error(folder)
    assert (err.line, err.field) == (3, field)


def test_recbole_index_file_with_unicode_digit(tmp_path):
    folder = tmp_path / "rb"
    folder.mkdir()
    (folder / "S.test.inter").write_text(
        "user_id:token\titem_id_list:token_seq\titem_id:token\n0\t0\t1\n"
    )
    (folder / "S.item2index").write_text("A\t0\nB\t\u00b9\n")
    err = _error(folder)
    assert err.path.endswith("S.item2index") and (err.line, err.field) == (2, "index")


def test_jsonl_timestamp_beyond_int64_is_located(tmp_path):
    folder = tmp_path / "j"
    folder.mkdir()
    good = {"user_id": "A", "parent_asin": "B", "timestamp": 1, "rating": 5.0}
    (folder / "T.jsonl").write_text(
        json.dumps(good) + "\n" + json.dumps({**good, "timestamp": 10**20}) + "\n"
    )
    err = _error(folder)
    assert (err.line, err.field) == (2, "timestamp") and "64 bits" in str(err)


def test_corrupt_gzip_names_the_file(tmp_path):
    folder = tmp_path / "j"
    folder.mkdir()
    packed = gzip.compress(b'{"user_id": "A"}\n' * 50)
    (folder / "T.jsonl.gz").write_bytes(packed[:20] + b"\x00" * 20 + packed[40:])
    err = _error(folder)
    assert err.path.endswith("T.jsonl.gz") and "gzip" in str(err)


def test_parquet_uint64_ids_beyond_int64(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    table = pa.table(
        {"userID": pa.array([1, 2**63 + 5], pa.uint64()), "movieID": [1, 2]}
    )
    pq.write_table(table, folder / "ratings.parquet")
    err = _error(folder)
    assert err.field == "userID" and "row 2" in str(err)


# ---------------------------------------------------------- explicit format
def _write_format(folder: Path, fmt: str) -> Path:
    """One small dataset of ``fmt`` whose interaction file has an odd name."""
    folder.mkdir()
    path = folder / "interactions.txt"
    if fmt == "ml-100k":
        path.write_text("1\t1\t3\t881250949\n1\t2\t4\t881250950\n2\t1\t5\t881250951\n")
    elif fmt == "ml-1m":
        path.write_text("1::1::3::978300760\n1::2::4::978300761\n2::1::5::978300762\n")
    elif fmt == "movielens-csv":
        path.write_text(HEADER + ROWS)
    elif fmt == "parquet":
        path = folder / "interactions.bin"
        pq.write_table(pa.table({"userID": [1, 1, 2], "movieID": [1, 2, 1]}), path)
    elif fmt == "recbole":
        path.write_text(
            "user_id:token\titem_id:token\ttimestamp:float\n1\t1\t1\n1\t2\t2\n2\t1\t3\n"
        )
    elif fmt == "amazon2023":
        rows = [("A", "B1", 1000), ("A", "B2", 2000), ("C", "B1", 3000)]
        path.write_text(
            "".join(
                json.dumps({"user_id": u, "parent_asin": i, "timestamp": t}) + "\n"
                for u, i, t in rows
            )
        )
    elif fmt == "delimited":
        path.write_text("1,1\n1,2\n2,1\n")
    else:  # pragma: no cover - a new format needs a case here
        raise AssertionError(f"no test data for format {fmt!r}")
    return path


@pytest.mark.parametrize("fmt", data.FORMATS)
def test_every_explicit_format_reads_a_file_of_any_name(tmp_path, fmt):
    path = _write_format(tmp_path / "d", fmt)
    with pytest.raises(DataFormatError, match="cannot tell the format"):
        data.load(path, cache=False)
    ds = data.load(path, format=fmt, cache=False)
    assert ds.format == fmt
    assert (ds.n_users, ds.n_interactions) == (2, 3)


@pytest.mark.parametrize("fmt", data.FORMATS)
def test_explicit_format_on_another_formats_file_is_a_format_error(tmp_path, fmt):
    other = "amazon2023" if fmt == "movielens-csv" else "movielens-csv"
    if fmt == "delimited":  # any text table is a delimited log: read a binary one
        other = "parquet"
    path = _write_format(tmp_path / "d", other)
    err = _error(path, format=fmt)
    assert Path(err.path) == path


def test_explicit_format_on_a_folder_skips_detection(tmp_path):
    folder = tmp_path / "both"
    folder.mkdir()
    (folder / "u.data").write_text("1\t1\t3\t881250949\n")
    (folder / "ratings.csv").write_text(HEADER + ROWS)
    assert data.load(folder, cache=False).format == "ml-100k"
    ds = data.load(folder, format="movielens-csv", cache=False)
    assert ds.format == "movielens-csv" and ds.n_interactions == 3


def test_explicit_format_on_one_of_several_parquet_files(tmp_path):
    folder = tmp_path / "pq"
    folder.mkdir()
    for name, users in (("a.parquet", [1, 2]), ("b.parquet", [3, 3, 4])):
        pq.write_table(
            pa.table({"userID": users, "movieID": list(range(len(users)))}),
            folder / name,
        )
    assert data.load(folder / "b.parquet", cache=False).n_interactions == 3
    assert data.load(folder / "a.parquet", format="parquet", cache=False).n_users == 2


# ------------------------------------------------------ unreadable entries
def test_folder_where_a_file_is_expected(tmp_path):
    folder = tmp_path / "d"
    (folder / "ratings.csv").mkdir(parents=True)
    err = _error(folder)
    assert err.path.endswith("ratings.csv") and "is a folder" in str(err)
    err = _error(folder / "ratings.csv")
    assert "is a folder" in str(err)
    err = _error(folder / "ratings.csv", format="movielens-csv")
    assert "no movielens-csv interaction file" in str(err)


def test_folder_in_place_of_a_catalog_file(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_text(HEADER + ROWS)
    (folder / "movies.csv").mkdir()
    err = _error(folder)
    assert err.path.endswith("movies.csv") and "is a folder" in str(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    os.mkfifo(folder / "ratings.csv")
    err = _error(folder)
    assert "not a regular file" in str(err)
    err = _error(folder / "ratings.csv")
    assert "not a regular file" in str(err)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="root reads any file; the folder-instead-of-file case covers this",
)
def test_unreadable_file_names_the_file(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    path = folder / "ratings.csv"
    path.write_text(HEADER + ROWS)
    path.chmod(0)
    try:
        err = _error(folder)
    finally:
        path.chmod(0o644)
    assert err.path.endswith("ratings.csv") and "permission" in str(err).lower()


def test_permission_error_reads_as_a_format_error(tmp_path, monkeypatch):
    """The same path as chmod 000, for runs as root (which reads anything)."""
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_text(HEADER + ROWS)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    err = _error(folder)
    assert err.path.endswith("ratings.csv") and "Permission denied" in str(err)


@pytest.mark.parametrize(
    "exc",
    [
        OverflowError("Python int too large to convert to C long"),
        ValueError("bad\nvalue"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        pa.ArrowInvalid("odd"),
    ],
)
def test_an_unforeseen_parser_failure_still_names_the_file(tmp_path, monkeypatch, exc):
    from agenticrec.data import _loaders

    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ratings.csv").write_text(HEADER + ROWS)

    def fail(*args, **kwargs):
        raise exc

    loader = _loaders._LOADERS["movielens-csv"]
    monkeypatch.setitem(
        _loaders._LOADERS,
        "movielens-csv",
        loader.__class__(loader.find, fail, ("ratings",)),
    )
    err = _error(folder)
    assert err.path.endswith("ratings.csv") and type(exc).__name__ in str(err)
    assert "\n" not in str(err) and err.__cause__ is exc


# ------------------------------------------------------------- evaluable
def test_require_evaluable_passes_and_checks_negatives():
    ds = data.Dataset.from_interactions(
        [1, 1, 1, 2, 2, 2], [1, 2, 3, 1, 2, 4], [1, 2, 3, 1, 2, 3]
    )
    split = data.leave_one_out(ds)
    assert split.n_evaluable() == 2 and split.n_evaluable("valid") == 2
    assert data.require_evaluable(split, n_negatives=1) is split
    with pytest.raises(DataValidationError, match="untouched items"):
        split.require_evaluable(n_negatives=5, pool="catalog")
    assert split.require_evaluable(n_negatives=1, pool="catalog") is split


def test_require_evaluable_on_a_temporal_split():
    ds = data.Dataset.from_interactions([1, 2, 3], [1, 2, 3], [10, 20, 30])
    split = data.temporal_split(ds, valid=0.0, test=0.3)
    assert data.require_evaluable(split) is split


# ------------------------------------------------------------ fuzz guard
SEEDS = {
    "csv": {"ratings.csv": (HEADER + ROWS).encode()},
    "ml100k": {"u.data": b"1\t1\t3\t881250949\n2\t2\t4\t881250950\n"},
    "ml1m": {"ratings.dat": b"1::1193::5::978300760\n1::661::3::978302109\n"},
    "recbole": {
        "S.test.inter": b"user_id:token\titem_id_list:token_seq\titem_id:token\n"
        b"0\t0 1\t2\n1\t1 2\t0\n",
        "S.item2index": b"A\t0\nB\t1\nC\t2\n",
    },
    "amazon": {
        "T.jsonl": b'{"user_id": "A", "parent_asin": "B", "timestamp": 1000}\n' * 2
    },
}
NASTY = [b"\r", b'"', b"\x00", b"\xff", b"9" * 25, b"nan", b"1e400", b",", b"\t"]
NASTY += [b"::", b"|", b"\n", b"\xef\xbb\xbf", "\u0661".encode(), b"+1", b"[", b"{"]


def _mutate(rng: random.Random, body: bytes) -> bytes:
    i = rng.randrange(len(body) + 1)
    choice = rng.randrange(4)
    if choice == 0:
        return body[:i]
    if choice == 1:
        return body[:i] + rng.choice(NASTY) + body[i:]
    if choice == 2:
        return body[:i] + rng.choice(NASTY) + body[i + 1 :]
    return body[:i] + bytes([rng.randrange(256)]) + body[i + 1 :]


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_mutated_files_only_raise_project_errors(tmp_path, kind):
    rng = random.Random(kind)
    for attempt in range(40):
        folder = tmp_path / f"{kind}{attempt}"
        folder.mkdir()
        target = rng.choice(sorted(SEEDS[kind]))
        for name, body in SEEDS[kind].items():
            (folder / name).write_bytes(_mutate(rng, body) if name == target else body)
        try:
            ds = data.load(folder, cache=False)
        except AgenticRecError as exc:
            assert "\n" not in str(exc)
            if isinstance(exc, DataFormatError):
                assert Path(exc.path).is_relative_to(folder)
            continue
        assert ds.n_interactions > 0 and np.all(ds.users >= 0)
