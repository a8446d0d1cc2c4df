"""``agenticrec run tune`` on the command line."""

from __future__ import annotations

from tests.test_cli import run_cli


def test_tune_command_is_registered_with_its_options():
    out = run_cli("run", "tune", "--help")
    for opt in (
        "--rounds",
        "--candidates",
        "--skillhub",
        "--task",
        "--objective",
        "--review",
        "--approve",
        "--decline",
        "--no-seeds",
        "--max-launch",
        "--offline-events",
        "--online-events",
        "--online-share",
        "--max-users",
        "--seed",
        "--checkpoint",
        "--thread-id",
        "--trajectories",
        "--json",
    ):
        assert opt in out.stdout, opt


def test_review_without_a_terminal_needs_a_checkpoint():
    out = run_cli("run", "tune", "--review", "--json", check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert "--checkpoint" in out.stderr and "--approve" in out.stderr
    assert "Traceback" not in out.stderr


def test_an_out_of_range_setting_exits_2_naming_it():
    out = run_cli("run", "tune", "--rounds", "0", "--json", check=False)
    assert out.returncode == 2 and out.stdout == ""
    assert "rounds" in out.stderr and "Traceback" not in out.stderr


def test_review_pauses_and_an_answer_resumes_the_thread(tmp_path):
    import json

    args = (
        "run", "tune", "--rounds", "1", "--candidates", "3", "--objective",
        "diversity", "--embedding", "hashing", "--offline-events", "1", "--review",
        "--skillhub", str(tmp_path / "hub"), "--checkpoint",
        str(tmp_path / "ck.sqlite"), "--thread-id", "t", "--json",
    )  # fmt: skip
    first = json.loads(run_cli(*args).stdout)
    assert first["status"] == "awaiting_input"
    assert first["pending"]["plan"]["launches"]
    done = json.loads(run_cli(*args, "--approve").stdout)
    assert done["status"] == "done" and done["ab_tests"] >= 1
