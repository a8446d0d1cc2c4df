"""Loaders for data people have: any delimited log by a column mapping, a
RecBole catalog under another prefix, a missing name that says how to get it,
and splits that say how they ordered interactions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agenticrec import data
from agenticrec.errors import ConfigError, DataFormatError


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTICREC_CACHE_DIR", str(tmp_path / "cache"))


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


# ------------------------------------------------------------------ delimited
def test_delimited_log_with_header_maps_named_columns(tmp_path):
    f = _write(
        tmp_path / "clicks.tsv",
        "when\tvisitor\tproduct\tclicks\n"
        "300\tann\tp1\t3\n100\tann\tp2\t1\n200\tbob\tp1\t2.5\n",
    )
    ds = data.load(
        f,
        format="delimited",
        columns={"user": "visitor", "item": "product", "weight": "clicks",
                 "timestamp": "when"},
        sep="\t",
    )
    assert ds.format == "delimited" and ds.time_kind == "unix"
    assert list(ds.user_ids) == ["ann", "bob"]
    ann = ds.users == 0
    # ann's rows sorted by time: p2 (t=100) before p1 (t=300)
    assert list(ds.item_ids[ds.items[ann]]) == ["p2", "p1"]
    assert list(ds.timestamps[ann]) == [100, 300]
    np.testing.assert_allclose(ds.ratings[ann], [1.0, 3.0])


@pytest.mark.parametrize("sep", ["::", "\t", ";", "|", " ", ",", "<>"])
def test_delimited_headerless_positions_with_any_separator(tmp_path, sep):
    rows = [("1", "10", "4", "978300760"), ("1", "11", "5", "978300700"),
            ("2", "10", "3", "978300800")]
    f = _write(tmp_path / "log.dat", "".join(sep.join(r) + "\n" for r in rows))
    ds = data.load(
        f,
        format="delimited",
        columns={"user": 0, "item": 1, "rating": 2, "timestamp": 3},
        sep=sep,
    )
    assert (ds.n_users, ds.n_interactions) == (2, 3)
    assert ds.user_ids.dtype.kind == "i"  # integer ids stay integers
    assert sorted(ds.timestamps.tolist()) == [978300700, 978300760, 978300800]


def test_delimited_positions_in_a_file_with_a_header(tmp_path):
    f = _write(tmp_path / "a.csv", "u,i,extra\n7,x,q\n7,y,q\n8,x,q\n")
    ds = data.load(f, format="delimited", columns={"user": 0, "item": 1},
                   header=True)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    assert ds.ratings is None and ds.time_kind == "order"


def test_delimited_default_mapping_is_first_two_columns_without_header(tmp_path):
    f = _write(tmp_path / "pairs.txt", "a,x\r\na,y\r\nb,x\r\n")  # CRLF
    ds = data.load(f, format="delimited")
    assert (ds.n_users, ds.n_interactions) == (2, 3)


def test_delimited_quoted_csv_fields_hold_the_separator(tmp_path):
    f = _write(tmp_path / "q.csv", 'user,item\n"a,1",x\n"a,1",y\nb,x\n')
    ds = data.load(f, format="delimited", columns={"user": "user", "item": "item"})
    assert "a,1" in set(ds.user_ids.tolist())


def test_delimited_malformed_line_names_file_line_and_field(tmp_path):
    f = _write(tmp_path / "log.dat", "1::10::4\n1::11::5\n2::10\n")
    with pytest.raises(DataFormatError) as info:
        data.load(f, format="delimited",
                  columns={"user": 0, "item": 1, "rating": 2}, sep="::")
    assert "log.dat, line 3" in str(info.value)
    assert "rating" in str(info.value)


def test_delimited_bad_number_names_the_line(tmp_path):
    f = _write(tmp_path / "r.csv", "u,i,r\na,x,4\nb,y,four\n")
    with pytest.raises(DataFormatError) as info:
        data.load(f, format="delimited",
                  columns={"user": "u", "item": "i", "rating": "r"})
    assert info.value.line == 3 and info.value.field == "r"


def test_delimited_missing_header_column_is_named(tmp_path):
    f = _write(tmp_path / "r.csv", "u,i\na,x\n")
    with pytest.raises(DataFormatError, match="'visitor'"):
        data.load(f, format="delimited", columns={"user": "visitor", "item": "i"})


def test_delimited_position_past_the_last_field_is_named(tmp_path):
    f = _write(tmp_path / "r.csv", "a,x\nb,y\n")
    with pytest.raises(DataFormatError, match="position 5"):
        data.load(f, format="delimited", columns={"user": 0, "item": 5})


def test_delimited_binary_file_is_refused(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"a,b\n\x00\x01\x02,c\n")
    with pytest.raises(DataFormatError, match="NUL") as info:
        data.load(f, format="delimited")
    assert info.value.line == 2


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"columns": {"user": 0}}, "'item' column is required"),
        ({"columns": {"user": 0, "item": 1, "score": 2}}, "unknown role 'score'"),
        ({"columns": {"user": 0, "item": 1, "rating": 2, "weight": 3}}, "not both"),
        ({"columns": {"user": 0, "item": 0}}, "both name column 0"),
        ({"columns": {"user": -1, "item": 1}}, "negative"),
        ({"columns": {"user": 1.5, "item": 1}}, "0-based position"),
        ({"columns": {"user": "u", "item": "i"}, "header": False}, "header=False"),
        ({"sep": ""}, "sep"),
        ({"sep": "\n"}, "sep"),
        ({"sep": '"'}, "sep"),
    ],
)
def test_delimited_options_are_validated_naming_the_option(tmp_path, kwargs, needle):
    f = _write(tmp_path / "r.csv", "a,x\n")
    with pytest.raises(ConfigError, match=needle):
        data.load(f, format="delimited", **kwargs)


def test_delimited_options_without_the_format_are_refused(tmp_path):
    f = _write(tmp_path / "ratings.csv", "userId,movieId\n1,1\n")
    with pytest.raises(ConfigError, match='format="delimited"'):
        data.load(f, columns={"user": 0, "item": 1})


def test_delimited_needs_a_file_not_a_folder(tmp_path):
    with pytest.raises(DataFormatError, match="one file"):
        data.load(tmp_path, format="delimited")


def test_delimited_cache_keys_on_the_mapping(tmp_path):
    f = _write(tmp_path / "r.csv", "a,x,p\na,y,q\nb,x,q\n")
    by_first = data.load(f, format="delimited", columns={"user": 0, "item": 1})
    by_third = data.load(f, format="delimited", columns={"user": 0, "item": 2})
    assert by_first.fingerprint != by_third.fingerprint
    assert sorted(by_third.item_ids.tolist()) == ["p", "q"]
    again = data.load(f, format="delimited", columns={"user": 0, "item": 1})
    assert again.fingerprint == by_first.fingerprint


def test_cli_data_info_reads_a_delimited_log(tmp_path):
    f = _write(tmp_path / "log.txt", "u;i;ts\na;x;3\na;y;1\nb;x;2\n")
    out = subprocess.run(
        [sys.executable, "-m", "agenticrec", "data", "info", str(f), "--format",
         "delimited", "--columns", "user=u,item=i,timestamp=ts", "--sep", ";",
         "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["users"], info["interactions"], info["time_kind"]) == (2, 3, "unix")


def test_cli_data_info_tab_escape_and_bad_columns(tmp_path):
    f = _write(tmp_path / "log.tsv", "a\tx\nb\ty\n")
    ok = subprocess.run(
        [sys.executable, "-m", "agenticrec", "data", "info", str(f), "--format",
         "delimited", "--sep", "\\t", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["users"] == 2
    bad = subprocess.run(
        [sys.executable, "-m", "agenticrec", "data", "info", str(f), "--format",
         "delimited", "--columns", "user"],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "--columns" in bad.stderr
    assert "Traceback" not in bad.stderr


# ------------------------------------------------------------------ recbole
INTER = "user_id:token\titem_id:token\trating:float\n1\t10\t4\n1\t11\t3\n2\t10\t5\n"
ITEM = "item_id:token\ttitle:token_seq\n10\tLamp\n11\tDesk\n12\tChair\n"


def test_recbole_only_item_file_is_used_when_its_prefix_differs(tmp_path):
    _write(tmp_path / "foo.inter", INTER)
    _write(tmp_path / "bar.item", ITEM)
    ds = data.load(tmp_path)
    assert ds.n_items == 3 and "Chair" in list(ds.titles)
    assert any("bar.item" in n and "foo.inter" in n for n in ds.report.notes)


def test_recbole_two_foreign_item_files_are_not_guessed(tmp_path):
    _write(tmp_path / "foo.inter", INTER)
    _write(tmp_path / "bar.item", ITEM)
    _write(tmp_path / "baz.item", ITEM)
    ds = data.load(tmp_path)
    assert ds.n_items == 2  # the interacted items only
    named = data.load(tmp_path, item_file="baz.item")
    assert named.n_items == 3


def test_recbole_item_file_absolute_path_and_wrong_format(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    _write(folder / "foo.inter", INTER)
    cat = _write(tmp_path / "elsewhere.item", ITEM)
    assert data.load(folder, item_file=cat).n_items == 3
    with pytest.raises(ConfigError, match="item_file applies to RecBole"):
        data.load(_write(tmp_path / "r.csv", "a,x\n"), format="delimited",
                  item_file=cat)


def test_recbole_missing_item_file_is_named(tmp_path):
    _write(tmp_path / "foo.inter", INTER)
    with pytest.raises(DataFormatError) as info:
        data.load(tmp_path, item_file="nope.item")
    assert "nope.item" in str(info.value)


# -------------------------------------------------------------- missing name
def test_missing_known_dataset_name_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "mine").mkdir(parents=True)
    monkeypatch.setenv("AGENTICREC_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ConfigError) as info:
        data.load("ml-25m")
    text = str(info.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-25m.zip" in text
    assert str(tmp_path / "data") in text and "AGENTICREC_DATA_DIR" in text
    assert "mine" in text and "ml-latest-small" in text  # what is there now


def test_missing_unknown_name_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        data.load("my-shop-logs")
    text = str(info.value)
    assert "folder named 'my-shop-logs'" in text and 'format="delimited"' in text


def test_missing_path_is_not_told_to_download(tmp_path):
    with pytest.raises(ConfigError) as info:
        data.load(tmp_path / "nowhere" / "ml-1m")
    assert "check the path" in str(info.value)
    assert "grouplens" not in str(info.value)


# ------------------------------------------------------------------ ordering
def test_split_without_timestamps_says_it_used_file_order(tmp_path):
    f = _write(tmp_path / "p.csv", "".join(f"u{k % 3},i{k}\n" for k in range(12)))
    ds = data.load(f, format="delimited")
    assert ds.time_kind == "order"
    split = data.leave_one_out(ds)
    assert split.report["ordering"] == ds.ordering
    assert ds.ordering.startswith("no timestamps") and "file" in ds.ordering
    assert ds.info()["ordering"] == ds.ordering
    # "last" is last in the file: u0's rows are i0, i3, i6, i9
    u0 = int(np.flatnonzero(ds.user_ids == "u0")[0])
    test_items = ds.item_ids[ds.items[split.test][ds.users[split.test] == u0]]
    assert list(test_items) == ["i9"]


def test_split_with_timestamps_says_it_used_time():
    split = data.leave_one_out(data.load())
    assert split.report["ordering"].startswith("by timestamp")
    temporal = data.temporal_split(data.load())
    assert temporal.report["ordering"].startswith("by timestamp")


def test_cli_data_info_shows_the_ordering(tmp_path):
    f = _write(tmp_path / "p.csv", "a,x\na,y\nb,x\n")
    out = subprocess.run(
        [sys.executable, "-m", "agenticrec", "data", "info", str(f), "--format",
         "delimited"],
        capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stderr
    assert "ordering" in out.stdout and "no timestamps" in out.stdout
