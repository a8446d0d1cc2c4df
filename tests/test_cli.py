"""The command line: JSON output is the only thing on stdout, human output
is rich tables, long runs report progress from the graph run itself."""

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


def test_version_prints_the_installed_version():
    from importlib.metadata import version

    out = run_cli("--version")
    assert out.stdout == f"agenticrec {version('agenticrec')}\n"


def test_no_arguments_is_a_usage_error():
    out = run_cli(check=False)
    assert out.returncode == 2


def test_run_prints_rich_tables_and_leaves_no_lock_beside_the_checkpoint(tmp_path):
    ck = tmp_path / "runs" / "ck.sqlite"
    env_cols = {"COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "agenticrec", "run", "system", "--rounds", "1",
         "--checkpoint", str(ck)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**__import__("os").environ, **env_cols},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # a field | value table, and the per-round records as a table with headers
    assert "┃ field" in out.stdout and "┃ value" in out.stdout
    assert "graph" in out.stdout and "system" in out.stdout
    assert "rounds" in out.stdout and "outer_heldout" in out.stdout
    assert "{'" not in out.stdout  # no Python dict dumps
    assert ck.exists()
    assert not list(tmp_path.rglob("*.lock"))


def test_thread_lock_lives_in_the_lock_dir(tmp_path, monkeypatch):
    from agenticrec.checkpoint import lock_path, open_checkpointer

    monkeypatch.setenv("AGENTICREC_LOCK_DIR", str(tmp_path / "locks"))
    ck = tmp_path / "out" / "ck.sqlite"
    with open_checkpointer(ck) as held, held.threads.lock("t1"):
        assert lock_path(ck, "t1").parent == tmp_path / "locks"
        assert lock_path(ck, "t1").exists()
        assert lock_path(ck, "t1") != lock_path(ck, "t2")
    assert not list((tmp_path / "out").glob("*.lock"))


def test_report_tables_render_replay_and_export_summaries(capsys):
    from agenticrec.runner import emit_report

    emit_report(
        {
            "runs": 2,
            "calls": 5,
            "identical": 4,
            "differences": [
                {"run_id": "r1", "step_id": "s", "call_id": "c", "tool": "t",
                 "kind": "result", "fields": ["x"], "message": "x: 1 -> 2"}
            ],
        },
        as_json=False,
        title="replay runs.jsonl",
    )
    emit_report(
        {"file": "out/sft.jsonl", "rows": 3, "dropped": {"unreplayable": 1}},
        as_json=False,
        title="export",
    )
    out = capsys.readouterr().out
    assert "replay runs.jsonl" in out and "differences" in out
    for header in ("field", "value", "run_id", "tool", "kind", "message"):
        assert header in out
    assert "export" in out and "sft.jsonl" in out and "unreplayable" in out


def test_report_tables_cap_long_record_lists():
    from agenticrec.runner import MAX_ROWS, report_tables

    tables = report_tables({"rows": [{"k": i} for i in range(MAX_ROWS + 5)]})
    (rows,) = tables
    assert rows.row_count == MAX_ROWS and "5 more" in str(rows.caption)


# ------------------------------------------------ progress from the graph run

def _events(graph, ctx):
    from agenticrec.runner import run

    events = []
    run(graph, ctx, progress=lambda d, t, note=None: events.append((d, t, note)))
    return events


def test_dualagent_reports_each_generation_block():
    from agenticrec.graphs.dualagent import DualAgentContext

    ctx = DualAgentContext(users=3, pop_size=20, generations=20, coordinator_every=10)
    events = _events("dualagent", ctx)
    notes = [n for _, _, n in events if n]
    assert notes[0].startswith("candidates")
    assert "generations 1-10" in notes and "generations 11-20" in notes
    assert all(t == 20 for _, t, _ in events)
    done = [d for d, _, _ in events]
    assert done == sorted(done) and done[-1] == 20


def test_system_reports_every_agent_of_every_round():
    from agenticrec.graphs.system import SystemContext

    events = _events("system", SystemContext(rounds=2, shift_round=1))
    notes = [n for _, _, n in events if n]
    assert any(n.startswith("round 1: ") and "/recall." in n for n in notes)
    assert any(n.startswith("round 2: ") for n in notes)
    done = [d for d, _, _ in events]
    assert done == sorted(done) and done[-1] == 2
    assert all(t == 2 for _, t, _ in events)


def test_two_argument_progress_callbacks_still_work():
    from agenticrec.graphs.system import SystemContext
    from agenticrec.runner import run

    seen = []
    run("system", SystemContext(rounds=1), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (1, 1) and len(seen) > 3


def test_emit_progress_outside_a_graph_is_a_no_op():
    from agenticrec.runner import emit_progress

    emit_progress(1, 2, "nothing listens")
