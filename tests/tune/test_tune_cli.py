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
