"""Replay finds tampering at the exact step; exports load as datasets."""

from __future__ import annotations

import json

import pytest

from agenticrec.errors import ConfigError
from agenticrec.evals.rewards import reward
from agenticrec.export import FORMATS, export_file
from agenticrec.graphs import teacher
from agenticrec.replay import replay_file
from agenticrec.runner import run
from agenticrec.trajectory import read_trajectories


@pytest.fixture(scope="module")
def traj_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("traj") / "t.jsonl"
    run("teacher", teacher.TeacherContext(trajectories=str(path), users=20))
    return path


def test_replay_of_unmodified_trajectory_reports_no_difference(traj_file):
    report = replay_file(traj_file)
    assert report.runs == 20 and report.calls >= 60 and report.ok


def test_replay_re_derives_every_recorded_evidence_sentence(traj_file):
    """The teacher's evidence hook gives exactly the text its tools node
    recorded, so replay's evidence check is meaningful on every call."""
    from agenticrec.graphspec import get_graph
    from agenticrec.trajectory import read_trajectories

    hook = get_graph("teacher").evidence
    assert hook is not None
    checked = 0
    for traj in read_trajectories(traj_file).values():
        for step in traj.steps:
            texts = {m.get("tool_call_id"): m["content"] for m in step.messages}
            for call in step.tool_results:
                assert hook(call["name"], call["result"]) == call["evidence"]
                assert texts[call["id"]] == "\n".join(call["evidence"])
                checked += 1
    assert checked >= 60


def test_replay_of_tampered_trajectory_names_the_exact_step(traj_file, tmp_path):
    lines = traj_file.read_text().splitlines()
    for n, line in enumerate(lines):
        rec = json.loads(line)
        if rec["type"] == "step" and rec["tool_results"]:
            call = rec["tool_results"][1]
            call["result"]["scores"][0][1] += 1.0
            lines[n] = json.dumps(rec)
            target = (rec["run_id"], rec["step_id"], call["id"])
            break
    bad = tmp_path / "tampered.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    report = replay_file(bad)
    assert len(report.differences) == 1
    d = report.differences[0]
    assert (d.run_id, d.step_id, d.call_id) == target and d.fields == ["scores"]


def test_exports_load_with_datasets_and_follow_their_schemas(traj_file, tmp_path):
    datasets = pytest.importorskip("datasets")
    for fmt in FORMATS:
        summary = export_file(traj_file, tmp_path, fmt)
        assert summary["rows"] == 20
        ds = datasets.load_dataset("json", data_files=summary["file"], split="train")
        assert len(ds) == 20
        row = json.loads(open(summary["file"]).readline())
        if fmt in ("sft", "openai"):
            roles = [m["role"] for m in row["messages"]]
            assert roles[:3] == ["system", "user", "assistant"] and "tool" in roles
            call = next(m for m in row["messages"] if m.get("tool_calls"))
            args = call["tool_calls"][0]["function"]["arguments"]
            assert isinstance(args, str if fmt == "openai" else dict)
            assert {t["function"]["name"] for t in row["tools"]} >= {"user_profile"}
        elif fmt == "grpo":
            assert [m["role"] for m in row["prompt"]] == ["system", "user"]
            assert row["target"] in row["candidates"]
        elif fmt == "student":
            assert [m["role"] for m in row["prompt"]] == ["system", "user"]
            assert [m["role"] for m in row["completion"]] == ["assistant"]
            assert row["target"] in row["candidates"]
        else:
            c = row["completion"]
            assert c.startswith("<plan>") and "<tool_call>" in c
            assert "<tool_response>" in c and "<reflection>" in c
            assert c.rstrip().endswith("</recommend>")


def test_student_rows_chain_sft_into_grpo_rewards(traj_file, tmp_path):
    """Every student completion parses under the GRPO reward, and the reward
    credits exactly the runs whose teacher ranking held the target in its
    top 10: SFT on these rows teaches the form GRPO scores."""
    summary = export_file(traj_file, tmp_path, "student")
    rows = [json.loads(line) for line in open(summary["file"])]
    got = reward(
        [r["prompt"] for r in rows],
        [r["completion"] for r in rows],
        target=[r["target"] for r in rows],
        candidates=[r["candidates"] for r in rows],
    )
    runs = {t.header.run_id: t for t in read_trajectories(traj_file).values()}
    for r, g in zip(rows, got, strict=True):
        assert g >= 0.2  # well formed
        rank = runs[r["run_id"]].end.metrics["rank"]
        assert (g > 0.2) == (0 <= rank < 10)
        assert r["prompt"][0]["content"].startswith("You are a recommender")


def test_outcome_filter_keeps_only_hits(traj_file, tmp_path):
    s = export_file(traj_file, tmp_path, "star", keep="hit@1")
    assert s["kept"] + s["dropped"] == 20 and 0 < s["kept"] < 20
    with pytest.raises(ConfigError, match="hit@K"):
        export_file(traj_file, tmp_path, "star", keep="top5")


def test_reward_scores_correct_and_incorrect_completions_differently():
    target, cands = [7], [[7, 8, 9]]
    good = "<plan>x</plan>\n<recommend>[7, 8]</recommend>"
    wrong = "<recommend>[8, 9]</recommend>"
    broken = "<recommend>[7, 7]</recommend>"
    outside = "<recommend>[7, 99]</recommend>"
    got = reward(
        [None] * 4,
        [good, wrong, broken, outside],
        target=target * 4,
        candidates=cands * 4,
    )
    assert got == [1.2, 0.2, 0.0, 0.0]
