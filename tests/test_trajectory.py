"""Trajectory schema: round trip, idempotent resume, truncation, bad lines."""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from agenticrec.context import Context
from agenticrec.errors import TrajectoryError
from agenticrec.policy import LLMPolicy
from agenticrec.trajectory import SCHEMA, Recorder, read_trajectories

from .test_policy import ROLE  # noqa: F401 - registers the test role


def _write_run(path, run_id="r1", steps=3, end=True):
    with Recorder(
        path,
        graph="demo",
        run_id=run_id,
        context={"seed": 1},
        dataset={"name": "toy", "fingerprint": "abc"},
    ) as rec:
        for i in range(steps):
            rec.step(
                f"s{i}",
                node="rank",
                role="ranker",
                user=i,
                observation={"n": i},
                decision={"items": [i]},
                policy="rule",
                metrics={"hit": i % 2},
                rewards={"inner": 0.5},
            )
        if end:
            rec.end(metrics={"ndcg": 0.25})
    return path


def test_round_trip_keeps_every_field(tmp_path):
    path = _write_run(tmp_path / "t.jsonl")
    traj = read_trajectories(path)["r1"]
    assert traj.header.graph == "demo" and traj.header.dataset["fingerprint"] == "abc"
    assert [s.step_id for s in traj.steps] == ["s0", "s1", "s2"]
    assert traj.steps[1].metrics == {"hit": 1} and traj.steps[2].user == 2
    assert traj.end.metrics == {"ndcg": 0.25} and traj.complete
    first = json.loads(path.read_text().splitlines()[0])
    assert first["schema"] == SCHEMA and first["type"] == "run"


def test_reopening_a_run_appends_without_duplicates(tmp_path):
    path = _write_run(tmp_path / "t.jsonl", steps=2, end=False)
    with Recorder(path, graph="demo", run_id="r1") as rec:
        assert rec.step("s1", node="rank") is None
        rec.step("s2", node="rank")
        rec.end()
    traj = read_trajectories(path)["r1"]
    assert [s.step_id for s in traj.steps] == ["s0", "s1", "s2"]
    assert [s.index for s in traj.steps] == [0, 1, 2]
    assert sum('"type":"run"' in ln for ln in path.read_text().splitlines()) == 1


def test_writing_leaves_only_the_trajectory_next_to_it(tmp_path):
    _write_run(tmp_path / "t.jsonl", steps=2)
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]


def test_truncated_last_line_is_dropped_and_reported(tmp_path):
    path = _write_run(tmp_path / "t.jsonl", end=False)
    with open(path, "a") as fh:
        fh.write('{"type":"step","run_id":"r1","step_id":"s9","ind')
    result = read_trajectories(path)
    assert len(result["r1"].steps) == 3
    assert result.report.truncated_line == 5


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    path = _write_run(tmp_path / "t.jsonl")
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:20]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TrajectoryError, match=r"t\.jsonl, line 3: invalid JSON"):
        read_trajectories(path)


def test_wrong_schema_version_is_refused(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        json.dumps({"type": "run", "schema": "other/9", "run_id": "x", "graph": "g"})
        + "\n"
    )
    with pytest.raises(TrajectoryError, match="schema"):
        read_trajectories(path)


def test_llm_decision_messages_are_recorded_in_openai_form(tmp_path):
    model = FakeListChatModel(responses=["oops", '{"value": 2}'])
    d = LLMPolicy(model, context=Context(llm_max_retries=1)).decide(
        "test_pick", {"n": 1}
    )
    path = tmp_path / "t.jsonl"
    with Recorder(path, graph="demo", run_id="r") as rec:
        rec.decision_step(d, node="pick", step_id="p0")
    step = read_trajectories(path)["r"].steps[0]
    assert step.policy.startswith("llm:") and step.decision == {
        "value": 2,
        "reason": "",
    }
    roles = [m["role"] for m in step.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant"]


def test_two_runs_share_a_file(tmp_path):
    path = tmp_path / "t.jsonl"
    _write_run(path, run_id="a")
    _write_run(path, run_id="b", steps=1)
    runs = read_trajectories(path)
    assert list(runs) == ["a", "b"] and len(runs["b"].steps) == 1


def test_writer_after_a_killed_write_cuts_the_partial_line_then_appends(tmp_path):
    path = _write_run(tmp_path / "t.jsonl", end=False)
    with open(path, "a") as fh:
        fh.write('{"type":"step","run_id":"r1","step_id":"s3","ind')
    with Recorder(path, graph="demo", run_id="r1") as rec:
        rec.step("s3", node="rank")
        rec.end()
    result = read_trajectories(path)
    assert result.report.truncated_line is None
    assert [s.step_id for s in result["r1"].steps] == ["s0", "s1", "s2", "s3"]


def test_two_processes_append_whole_lines(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "t.jsonl"
    code = (
        "import sys\nfrom agenticrec.trajectory import Recorder\n"
        "rid=sys.argv[2]\n"
        "with Recorder(sys.argv[1], graph='g', run_id=rid) as r:\n"
        "    for i in range(300):\n"
        "        r.step(f's{i}', node='n', observation={'x': 'y' * 200})\n"
        "    r.end()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), rid])
        for rid in ("p1", "p2")
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    runs = read_trajectories(path)
    assert sorted(runs) == ["p1", "p2"]
    assert all(len(runs[r].steps) == 300 and runs[r].complete for r in runs)
