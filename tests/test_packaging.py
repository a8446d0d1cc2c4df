"""A non-editable install imports every subpackage and finds its data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, agenticrec
from importlib import resources
import agenticrec.data, agenticrec.graphs, agenticrec.tools, agenticrec.skills
import agenticrec.prompts, agenticrec.evals, agenticrec.policy, agenticrec.cli
import importlib
from agenticrec.graphspec import load_graphs
prompts = agenticrec.prompts.available()
data_dir = resources.files("agenticrec.data") / "ml-latest-small"
mods = {n: g.module for n, g in load_graphs().items()}
print(json.dumps({
    "file": agenticrec.__file__,
    "prompts": prompts,
    "data": sorted(p.name for p in data_dir.iterdir()),
    "graphs": {n: importlib.import_module(m).__file__ for n, m in mods.items()},
}))
"""


@pytest.mark.slow
def test_wheel_install_imports_subpackages_and_finds_package_data(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    found = json.loads(out.stdout)
    assert found["file"].startswith(str(target))
    assert {"ratings.csv", "movies.csv", "README.txt"} <= set(found["data"])
    assert found["prompts"], "no prompt files were packaged"
    # the graph registry works from an installed wheel (entry points)
    assert set(found["graphs"]) == {"teacher", "dualagent", "system", "tune", "student"}
    assert all(f.startswith(str(target)) for f in found["graphs"].values())
    # every graph's data ships in the wheel: tune embeds skills with the
    # packaged MiniLM tokenizer, from an empty cache, outside the checkout
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu",
           "AGENTICREC_CACHE_DIR": str(tmp_path / "cache")}
    run_tune = subprocess.run(
        [sys.executable, "-c", "from agenticrec.cli import main; main()", "run",
         "tune", "--rounds", "1", "--skillhub", ":temp:", "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900,
    )
    assert run_tune.returncode == 0, run_tune.stderr[-3000:]
    assert json.loads(run_tune.stdout)["rounds"] == 1
