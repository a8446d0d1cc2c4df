"""The one runner: safe checkpoints, threads bound to their arguments, one
process per live thread, linear checkpoint size, plugin graphs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import ormsgpack
import pytest

from agenticrec.checkpoint import CheckpointError, open_checkpointer
from agenticrec.graphs.teacher import TeacherContext
from agenticrec.graphspec import load_graphs
from agenticrec.runner import run

PLUGIN_SITE = Path(__file__).parent / "plugins" / "graph"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agenticrec", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})},
    )


def _plant_os_system(path: Path, marker: Path) -> None:
    """Rewrite every stored checkpoint so that its ``users`` channel is an
    extension object calling ``os.system`` (what an attacker would write)."""
    evil = ormsgpack.Ext(0, ormsgpack.packb(("os", "system", f"touch {marker}")))
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT rowid, checkpoint FROM checkpoints").fetchall()
    assert rows
    for rowid, blob in rows:
        ck = ormsgpack.unpackb(
            blob, ext_hook=lambda c, d: ormsgpack.Ext(c, d),
            option=ormsgpack.OPT_NON_STR_KEYS,
        )
        ck["channel_values"]["users"] = evil
        conn.execute(
            "UPDATE checkpoints SET checkpoint = ? WHERE rowid = ?",
            (ormsgpack.packb(ck, option=ormsgpack.OPT_NON_STR_KEYS), rowid),
        )
    conn.execute("DELETE FROM agenticrec_threads")
    conn.commit()
    conn.close()


def test_a_checkpoint_that_names_os_system_is_refused_and_runs_nothing(tmp_path):
    ck, marker = tmp_path / "evil.sqlite", tmp_path / "pwned"
    run("teacher", TeacherContext(users=2), checkpoint=ck, thread_id="base")
    _plant_os_system(ck, marker)
    r = _cli("run", "teacher", "--users", "2", "--checkpoint", str(ck),
             "--thread-id", "base", "--json")
    assert r.returncode == 2, r.stderr
    assert "allow-list" in r.stderr and "os.system" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not marker.exists()


def test_resume_with_other_arguments_is_refused_naming_each_field(tmp_path):
    ck = tmp_path / "ck.sqlite"
    run("teacher", TeacherContext(users=3), checkpoint=ck, thread_id="t")
    r = _cli("run", "teacher", "--users", "5", "--seed", "7", "--k", "5",
             "--checkpoint", str(ck), "--thread-id", "t", "--json")
    assert r.returncode == 2 and r.stdout == ""
    for field in ("settings.seed: 0 -> 7", "settings.k: 10 -> 5",
                  "settings.users: 3 -> 5", "input.users"):
        assert field in r.stderr, r.stderr
    assert "--new-thread" in r.stderr


def test_a_finished_thread_returns_its_stored_report_without_running(tmp_path):
    ck, traj = tmp_path / "ck.sqlite", tmp_path / "t.jsonl"
    first = run("teacher", TeacherContext(users=3, trajectories=str(traj)),
                checkpoint=ck)
    lines = traj.read_bytes()
    again = run("teacher", TeacherContext(users=3, trajectories=str(traj)),
                checkpoint=ck)
    assert again.cached and not first.cached
    assert again.thread_id == first.thread_id  # the default id is the binding's
    assert again.model_dump(exclude={"cached"}) == first.model_dump(
        exclude={"cached"}
    )
    assert traj.read_bytes() == lines  # nothing ran, nothing was recorded


def test_a_finished_graph_not_yet_marked_done_is_reported_not_rerun(tmp_path):
    """Killed between the graph's last checkpoint and the thread's ``done``
    mark: the re-run reports the stored state; invoking the graph again would
    append every user's result a second time."""
    ck = tmp_path / "ck.sqlite"
    ctx = TeacherContext(users=3)
    first = run("teacher", ctx, checkpoint=ck)
    with open_checkpointer(ck) as c:  # as if the process died before finish()
        c.threads.bind(first.thread_id, c.threads.get(first.thread_id)[0])
    again = run("teacher", ctx, checkpoint=ck)
    assert not again.cached
    assert again.users == 3 and again.metrics == first.metrics


def test_new_thread_discards_the_stored_run(tmp_path):
    ck = tmp_path / "ck.sqlite"
    run("teacher", TeacherContext(users=3), checkpoint=ck, thread_id="t")
    rep = run("teacher", TeacherContext(users=4, seed=1), checkpoint=ck,
              thread_id="t", new_thread=True)
    assert rep.users == 4 and rep.seed == 1 and not rep.cached


def test_other_arguments_get_another_default_thread(tmp_path):
    ck = tmp_path / "ck.sqlite"
    a = run("teacher", TeacherContext(users=3), checkpoint=ck)
    b = run("teacher", TeacherContext(users=3, k=5), checkpoint=ck)
    c = run("teacher", TeacherContext(users=3, concurrency=2), checkpoint=ck)
    assert a.thread_id != b.thread_id and not b.cached
    assert c.thread_id == a.thread_id and c.cached  # concurrency does not bind


def test_a_second_process_on_a_live_thread_is_refused(tmp_path):
    ck = tmp_path / "ck.sqlite"
    with open_checkpointer(ck) as held, held.threads.lock("live"):
        r = _cli("run", "teacher", "--users", "2", "--checkpoint", str(ck),
                 "--thread-id", "live", "--json")
    assert r.returncode == 2 and "another process" in r.stderr, r.stderr
    with open_checkpointer(ck) as again, again.threads.lock("live"):
        pass  # released with the first holder


def test_a_non_checkpoint_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("not a database\n" * 100)
    with pytest.raises(CheckpointError, match="not an agenticrec checkpoint"):
        run("teacher", TeacherContext(users=2), checkpoint=bad)
    with pytest.raises(CheckpointError, match="folder"):
        run("teacher", TeacherContext(users=2), checkpoint=tmp_path)


def test_checkpoint_size_grows_linearly_in_users(tmp_path):
    sizes = {}
    for n in (100, 200):
        ck = tmp_path / f"ck{n}.sqlite"
        run("teacher", TeacherContext(users=n, concurrency=8), checkpoint=ck)
        with sqlite3.connect(ck) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sizes[n] = ck.stat().st_size
    assert sizes[200] <= 2.3 * sizes[100], sizes


def _plugin_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{PLUGIN_SITE}{os.pathsep}{path}".rstrip(os.pathsep)}


def test_a_plugin_graph_is_listed_and_runs_from_the_cli(tmp_path):
    r = _cli("graphs", "list", "--json", env=_plugin_env())
    assert r.returncode == 0, r.stderr
    names = {g["name"] for g in json.loads(r.stdout)["graphs"]}
    assert {"popular", "teacher"} <= names
    r = _cli("run", "popular", "--users", "15", "--k", "20", "--json",
             "--checkpoint", str(tmp_path / "ck.sqlite"), env=_plugin_env())
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["graph"] == "popular" and rep["users"] == 15
    assert 0.0 <= rep["hit_rate"] <= 1.0
    r = _cli("run", "popular", "--k", "0", env=_plugin_env())
    assert r.returncode == 2 and "k=0" in r.stderr


def test_plugin_graphs_are_skipped_when_autoload_is_off(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_SITE))
    assert "popular" in load_graphs(plugins=True)
    monkeypatch.setenv("AGENTICREC_DISABLE_PLUGIN_AUTOLOAD", "1")
    graphs = load_graphs(plugins=False)
    assert "popular" not in graphs and "teacher" in graphs
    sys.modules.pop("agenticrec_popular_graph", None)
