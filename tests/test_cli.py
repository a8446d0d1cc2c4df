"""The command line: JSON output is the only thing on stdout."""

from __future__ import annotations

import json
import subprocess
import sys


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agenticrec", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=300,
    )


def test_data_info_json_reports_the_embedded_dataset_counts():
    out = run_cli("data", "info", "ml-latest-small", "--json")
    info = json.loads(out.stdout)
    assert info["users"] == 610
    assert info["items"] == 9724
    assert info["catalog_items"] == 9742
    assert info["interactions"] == 100836


def test_data_info_on_a_missing_path_is_one_clear_error():
    out = run_cli("data", "info", "/no/such/dataset", check=False)
    assert out.returncode == 2
    assert "no dataset" in out.stderr and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_data_info_names_the_file_and_line_of_a_malformed_row(tmp_path):
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,x,4.0,964981247\n"
    )
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,Toy Story (1995),A\n")
    out = run_cli("data", "info", str(tmp_path), check=False)
    assert out.returncode == 2
    assert "ratings.csv" in out.stderr and "line 3" in out.stderr


def test_tools_list_json_is_parseable_and_lists_builtins():
    out = run_cli("tools", "list", "--json")
    tools = json.loads(out.stdout)["tools"]
    assert all({"name", "origin", "args", "description"} <= set(t) for t in tools)
