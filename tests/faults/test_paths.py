"""Paths: an export writes only inside its ``--out`` folder; trajectory and
checkpoint files are created with their folders; a plot stays in its folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agenticrec.errors import ConfigError
from agenticrec.export import export_file
from agenticrec.graphs import teacher
from agenticrec.graphspec import load_graphs
from agenticrec.runner import run
from agenticrec.trajectory import read_trajectories


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agenticrec", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def _tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file bytes, or a link's target."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_file():
            out[key] = p.read_bytes()
    return out


def _files(root: Path) -> list[str]:
    """Regular files under ``root`` (links not followed)."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    )


@pytest.fixture(scope="module")
def trajectory(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("traj") / "t.jsonl"
    run("teacher", teacher.TeacherContext(trajectories=str(path), users=3),
        thread_id="paths")
    return path


def test_export_writes_its_one_file_inside_out(trajectory, tmp_path):
    before = _tree(trajectory.parent)
    out = tmp_path / "a" / "b"
    r = _cli("export", str(trajectory), "--out", str(out), "--format", "sft",
             "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["file"] == str(out / "sft.jsonl")
    assert _files(tmp_path) == ["a/b/sft.jsonl"]
    assert _tree(trajectory.parent) == before


def test_export_refuses_a_symlinked_output_file_that_points_outside(
    trajectory, tmp_path
):
    outside = tmp_path / "outside.jsonl"
    outside.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sft.jsonl").symlink_to(outside)
    before = _tree(tmp_path)
    r = _cli("export", str(trajectory), "--out", str(out), "--json", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "refusing to write outside" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
    assert _tree(tmp_path) == before  # nothing written, the link left as it was


def test_export_replaces_a_symlink_to_a_file_inside_out_not_its_target(
    trajectory, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.jsonl").write_text("keep\n")
    (out / "sft.jsonl").symlink_to(out / "keep.jsonl")
    export_file(trajectory, out, "sft")
    assert (out / "keep.jsonl").read_text() == "keep\n"
    assert not (out / "sft.jsonl").is_symlink()
    assert len((out / "sft.jsonl").read_text().splitlines()) == 3


def test_export_with_dotdot_in_out_writes_into_the_folder_it_names(
    trajectory, tmp_path
):
    (tmp_path / "x").mkdir()
    out = tmp_path / "x" / ".." / "y"
    summary = export_file(trajectory, out, "grpo")
    assert _files(tmp_path) == ["y/grpo.jsonl"] and summary["rows"] == 3


def test_export_into_a_symlinked_out_folder_writes_only_there(trajectory, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    export_file(trajectory, tmp_path / "link", "star")
    assert _files(tmp_path) == ["real/star.jsonl"]


@pytest.mark.parametrize("fmt", ["../sft", "/tmp/sft", "sft/../../x", ""])
def test_export_format_cannot_name_a_path(trajectory, tmp_path, fmt):
    with pytest.raises(ConfigError, match="format"):
        export_file(trajectory, tmp_path / "out", fmt)
    assert not any(tmp_path.rglob("*"))


def test_run_creates_trajectory_and_checkpoint_folders(tmp_path):
    traj = tmp_path / "t" / "u" / "v" / "run.jsonl"
    ck = tmp_path / "c" / "d" / "ck.sqlite"
    r = _cli("run", "teacher", "--users", "2", "--json",
             "--trajectories", "t/u/v/run.jsonl",  # relative: to the cwd
             "--checkpoint", str(ck), "--thread-id", "p", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["users"] == 2
    runs = read_trajectories(traj)
    assert len(runs) == 2 and all(t.complete for t in runs.values())
    assert ck.stat().st_size > 0


DUALAGENT = ("run", "dualagent", "--users", "2", "--pop", "20", "--gens", "10",
             "--candidates", "100", "--json")
needs_dualagent = pytest.mark.skipif(
    "dualagent" not in load_graphs(),
    reason="graph 'dualagent' not registered",
)


@needs_dualagent
def test_dualagent_plot_writes_only_inside_its_folder(tmp_path):
    r = _cli(*DUALAGENT, "--plot", "plots/x/../deep", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path) == [
        "plots/deep/alpha.png", "plots/deep/convergence.png", "plots/deep/front.png"
    ]
    assert sorted(json.loads(r.stdout)["plots"].values()) == [
        str(tmp_path / "plots" / "deep" / n)
        for n in ("alpha.png", "convergence.png", "front.png")
    ]


@needs_dualagent
def test_dualagent_plot_refuses_a_symlinked_plot_that_points_outside(tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"precious")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "front.png").symlink_to(outside)
    before = _tree(tmp_path)
    r = _cli(*DUALAGENT, "--plot", str(plots), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "escapes" in r.stderr and "Traceback" not in r.stderr
    assert _tree(tmp_path) == before
