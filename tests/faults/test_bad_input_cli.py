"""Bad arguments, files and data through the CLI: each a clear one-line
error with exit 2 (or a correct run), never a traceback, never exit 0 on
nonsense."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agenticrec", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def _ratings(path, rows):
    path.mkdir()
    lines = ["userId,movieId,rating,timestamp"]
    lines += [f"{u},{i},4.0,{1000 + n}" for n, (u, i) in enumerate(rows)]
    (path / "ratings.csv").write_text("\n".join(lines) + "\n")
    return str(path)


def _refused(r: subprocess.CompletedProcess, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


@pytest.mark.parametrize("graph", ["teacher", "dualagent", "system"])
def test_a_dataset_where_no_user_is_evaluable_says_why(graph, tmp_path):
    data = _ratings(tmp_path / "one", [(u, u) for u in range(1, 30)])
    _refused(
        _cli("run", graph, "--data", data, "--json"), "no user", "at most 1 interaction"
    )


def test_a_single_item_catalogue_says_why(tmp_path):
    data = _ratings(tmp_path / "item", [(u, 1) for u in range(1, 30)])
    _refused(_cli("run", "teacher", "--data", data, "--json"), "no user")


def test_full_ranking_on_a_catalogue_smaller_than_the_pool_runs(tmp_path):
    rows = [(u, i) for u in range(1, 9) for i in range(1, 6) if (u + i) % 5]
    data = _ratings(tmp_path / "tiny", rows)
    r = _cli(
        "run", "teacher", "--data", data, "--protocol", "full", "--users", "0", "--json"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["users"] == 8


@pytest.mark.parametrize("kind", ["folder", "not_utf8", "bad_json"])
def test_a_bad_constraint_file_is_one_clear_error(kind, tmp_path):
    path = tmp_path / "c.json"
    if kind == "folder":
        path.mkdir()
    elif kind == "not_utf8":
        path.write_bytes(b"\xff\xfe\x00{")
    else:
        path.write_text('{"constraints": [\n  {"kind": \n')
    _refused(
        _cli(
            "run",
            "dualagent",
            "--users",
            "3",
            "--pop",
            "20",
            "--gens",
            "4",
            "--constraints",
            str(path),
            "--json",
        ),
        str(path),
    )


def test_a_dualagent_run_too_large_for_memory_is_refused_up_front():
    _refused(_cli("run", "dualagent", "--k", "500", "--json"), "k=500", "GB")


@pytest.mark.parametrize("command", ["export", "replay"])
def test_a_trajectory_of_an_unknown_graph_is_one_clear_error(command, tmp_path):
    t = tmp_path / "t.jsonl"
    t.write_text(
        json.dumps(
            {
                "type": "run",
                "schema": "agenticrec.trajectory/1",
                "run_id": "r",
                "graph": "nosuch",
                "context": {},
                "dataset": {},
            }
        )
        + "\n"
    )
    extra = ["--out", str(tmp_path / "out")] if command == "export" else []
    _refused(_cli(command, str(t), *extra), "unknown graph 'nosuch'")


def test_a_checkpoint_path_that_is_a_folder_is_one_clear_error(tmp_path):
    _refused(
        _cli("run", "teacher", "--users", "2", "--checkpoint", str(tmp_path)), "folder"
    )
