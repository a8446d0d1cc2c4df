"""``agenticrec eval``: the eval scripts run from an installed package, from
any working directory, with their own arguments passed through."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "agenticrec", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env=env,
    )


def test_eval_list_names_every_script_with_a_main(tmp_path):
    out = run_cli("eval", "list", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    names = {e["name"] for e in json.loads(out.stdout)["evals"]}
    assert {"system_eval", "teacher_eval", "dualagent_eval", "bench_pareto"} <= names
    assert "rewards" not in names  # a library module, no main(argv)
    assert not any(n.startswith("_") for n in names)


def test_eval_list_is_a_table(tmp_path):
    out = run_cli("eval", "list", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "name" in out.stdout and "description" in out.stdout
    assert "system_eval" in out.stdout


def test_eval_help_is_the_scripts_own(tmp_path):
    out = run_cli("eval", "system_eval", "--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "--seeds" in out.stdout and "--rounds" in out.stdout
    assert "agenticrec eval system_eval" in out.stdout  # argparse prog


def test_eval_bad_script_argument_is_a_usage_error(tmp_path):
    out = run_cli("eval", "system_eval", "--no-such-flag", cwd=tmp_path)
    assert out.returncode == 2
    assert "--no-such-flag" in out.stderr and "Traceback" not in out.stderr


def test_unknown_eval_is_a_usage_error(tmp_path):
    out = run_cli("eval", "no_such_eval", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""


@pytest.mark.slow
def test_system_eval_runs_outside_the_repo_with_tiny_arguments(tmp_path):
    out = run_cli("eval", "system_eval", "--seeds", "1", "--rounds", "1",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| seed | initial | frozen | evolved |" in out.stdout
    summary = json.loads(out.stdout[out.stdout.index("{"):])
    assert {"mean_initial", "mean_evolved", "margin_vs_frozen"} <= set(summary)
    assert not list(tmp_path.rglob("*.lock"))
