"""A corpus of broken datasets (tests/corpus): each either fails with an error
naming file, line and field, or loads with the repair counted in the report."""

from __future__ import annotations

import os
import subprocess
import sys
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
    # issue 12: every bad file gets a clear answer
    "crtruncated": ("ratings.csv", 4, "timestamp", "truncated"),  # CR-only lines
    "badquoteheader": ("ratings.csv", 1, None, "quoting"),
    "bigid": ("ratings.csv", 3, "userId", "64-bit"),
    "ml100k_empty": ("u.data", 1, None, "empty"),
    "recbole_bigid": ("Scientific.test.inter", 3, "item_id_list", "64-bit"),
    "amazon_nanrating": ("Toys.jsonl", 2, "rating", "finite"),
    "folderfile": ("ratings.csv", None, None, "is a folder"),
}

NEW_ERRORS = (
    "crtruncated",
    "badquoteheader",
    "bigid",
    "ml100k_empty",
    "recbole_bigid",
    "amazon_nanrating",
    "folderfile",
)

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


# ------------------------------------------------------------ issue 12 cases
def test_cr_only_line_endings_are_read_as_lines():
    """Old Mac exports end lines with a bare CR: read, not refused."""
    ds = data.load(CORPUS / "cronly", cache=False)
    assert (ds.n_users, ds.n_interactions) == (2, 3)
    assert ds.ratings.tolist() == [4.0, 3.5, 5.0]
    assert ds.timestamps.tolist() == [964982703, 964982704, 964982705]
    assert ds.titles[:3] == ("Toy Story (1995)", "Heat (1995)", "Casino (1995)")
    assert ds.categories[0] == ("Animation", "Comedy")


def test_explicit_format_wins_over_detection():
    path = CORPUS / "oddname" / "interactions.txt"
    with pytest.raises(DataFormatError, match="cannot tell the format"):
        data.load(path, cache=False)
    ds = data.load(path, format="movielens-csv", cache=False)
    assert ds.format == "movielens-csv" and ds.n_interactions == 3


def test_no_evaluable_user_loads_but_the_split_says_why():
    ds = data.load(CORPUS / "oneinteraction", cache=False)
    assert ds.n_users == 3 and ds.n_interactions == 3
    split = data.leave_one_out(ds)
    assert split.n_evaluable() == 0 and split.report["evaluated_users"] == 0
    with pytest.raises(DataValidationError) as err:
        data.require_evaluable(split)
    assert "every user has fewer than 3 interactions" in str(err.value)
    assert "oneinteraction" in str(err.value)


def test_single_item_catalogue_loads_but_the_split_says_why():
    ds = data.load(CORPUS / "oneitem", cache=False)
    assert ds.n_items == 1 and ds.n_interactions == 6
    deduped = data.leave_one_out(ds)
    assert deduped.n_evaluable() == 0
    with pytest.raises(DataValidationError) as err:
        deduped.require_evaluable()
    message = str(err.value)
    assert "the catalogue has 1 item" in message
    assert "fewer than 3 interactions" in message
    repeats = data.leave_one_out(ds, dedupe=False)
    assert repeats.n_evaluable() == 2, "repeat consumption gives test rows"
    with pytest.raises(DataValidationError, match="the catalogue has 1 item"):
        repeats.require_evaluable(n_negatives=1)


# --------------------------------------------------- the same through the CLI
CLI_CASES = {
    **{folder: ([], ERRORS[folder][0]) for folder in NEW_ERRORS},
    "oneinteraction/ratings.csv": (["--format", "ml-100k"], "ratings.csv"),
}


@pytest.fixture(scope="module")
def cli_results() -> dict[str, subprocess.CompletedProcess]:
    """Every case's ``agenticrec data info`` run, started all at once."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    procs = {
        case: subprocess.Popen(
            [sys.executable, "-m", "agenticrec", "data", "info", str(CORPUS / case)]
            + options,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for case, (options, _) in CLI_CASES.items()
    }
    results = {}
    for case, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        results[case] = subprocess.CompletedProcess(
            proc.args, proc.returncode, out, err
        )
    return results


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_gives_one_line_and_exit_2(cli_results, case):
    result = cli_results[case]
    file = CLI_CASES[case][1]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and file in lines[0]
    folder = case.split("/")[0]
    if folder in ERRORS and ERRORS[folder][1] is not None:
        assert f"line {ERRORS[folder][1]}" in lines[0]
    if folder in ERRORS and ERRORS[folder][2] is not None:
        assert f"field {ERRORS[folder][2]!r}" in lines[0]
    assert result.stdout == ""


def test_corpus_cases_are_small_folders():
    for case in CORPUS.iterdir():
        assert case.is_dir()
        sizes = [p.stat().st_size for p in case.rglob("*") if p.is_file()]
        assert sizes and max(sizes) < 4096 and sum(sizes) < 8192, case
