"""A corpus of broken datasets (tests/corpus): each either fails with an error
naming file, line and field, or loads with the repair counted in the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from agenticrec import data
from agenticrec.errors import DataFormatError, DataValidationError

CORPUS = Path(__file__).parent / "corpus"

ERRORS = {
    # folder: (file, line, field or None, words in the message)
    "truncated": ("ratings.csv", 3, "timestamp", "truncated"),
    "wrongsep": ("ratings.csv", 2, "movieId", "separator"),
    "badenc": ("ratings.csv", 3, "movieId", "utf-8"),
    "empty": ("ratings.csv", 1, None, "empty header"),
    "nanrating": ("ratings.csv", 2, "rating", "finite"),
    "ml100k_badsep": ("u.data", 2, "item_id", "separator"),
    "recbole_badid": ("Scientific.test.inter", 2, "item_id_list", "integer"),
}

REPAIRS = {
    # folder: (report field, count, interactions kept)
    "dupids": ("duplicate_rows", 1, 2),
    "negts": ("negative_timestamps", 1, 2),
    "futurets": ("future_timestamps", 1, 2),
    "unknownitem": ("unknown_items", 1, 1),
}


@pytest.mark.parametrize("folder", sorted(ERRORS))
def test_broken_file_names_file_line_and_field(folder):
    file, line, field, words = ERRORS[folder]
    with pytest.raises(DataFormatError) as err:
        data.load(CORPUS / folder, cache=False)
    e = err.value
    assert Path(e.path).name == file and e.line == line and e.field == field
    assert words in str(e) and file in str(e)


@pytest.mark.parametrize("folder", sorted(REPAIRS))
def test_repairable_file_loads_and_reports_the_repair(folder):
    field, count, kept = REPAIRS[folder]
    ds = data.load(CORPUS / folder, cache=False)
    assert getattr(ds.report, field) == count
    assert ds.n_interactions == kept


def test_header_only_file_is_a_validation_error_naming_the_file():
    with pytest.raises(DataValidationError, match="headeronly/ratings.csv"):
        data.load(CORPUS / "headeronly", cache=False)


def test_one_user_dataset_loads_and_splits_with_that_user():
    ds = data.load(CORPUS / "oneuser", cache=False)
    assert ds.n_users == 1 and ds.n_interactions == 3
    split = data.leave_one_out(ds)
    assert split.test.size == 1 and split.valid.size == 1 and split.train.size == 1
