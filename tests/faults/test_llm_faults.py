"""Graphs complete through fallbacks when the endpoint misbehaves, and the
trajectory says what happened at which step."""

from __future__ import annotations

import pytest

from agenticrec.graphs import system, teacher
from agenticrec.runner import run
from agenticrec.trajectory import read_trajectories

from .openai_stub import Stub

MODES = [("malformed", 0.0), ("out_of_range", 0.0), ("empty", 0.0), ("slow", 2.0),
         ("error", 0.0), ("die", 0.0)]


def llm(stub: Stub) -> dict:
    return {"llm_base_url": stub.url, "llm_model": "stub", "llm_timeout_s": 0.5,
            "llm_max_retries": 1, "structured_output": "json_mode"}


@pytest.mark.parametrize(("mode", "delay"), MODES)
def test_teacher_completes_through_fallbacks(mode, delay, tmp_path):
    with Stub(mode, delay) as stub:
        ctx = teacher.TeacherContext(trajectories=str(tmp_path / "t.jsonl"),
                                     users=2, **llm(stub))
        report = run("teacher", ctx, thread_id=f"fault-{mode}")
        assert stub.calls >= 4
    assert report["users"] == 2
    assert all(v == {"rule (fallback)": 2} for v in report["policies"].values())
    steps = [s for t in read_trajectories(tmp_path / "t.jsonl").values()
             for s in t.steps if s.role]
    assert steps and all(s.policy == "rule" and s.fallback_reason for s in steps)
    word = {"slow": "timeout", "malformed": "invalid reply", "empty": "empty reply",
            "out_of_range": "invalid reply", "error": "Error",
            "die": "Error"}[mode]
    assert all(word in s.fallback_reason for s in steps), steps[0].fallback_reason


def test_system_cycle_completes_when_the_server_dies(tmp_path):
    with Stub("die") as stub:
        ctx = system.SystemContext(seed=0, shift_round=5, rounds=1,
                                   trajectories=str(tmp_path / "s.jsonl"), **llm(stub))
        report = run("system", ctx, thread_id="fault-system")
    router = report["rounds"][0]["router_policy"]
    assert router["policy"] == "rule" and router["fallback_reason"]
    assert report["policies"]["system.router"] == {"rule (fallback)": 1}
    steps = next(iter(read_trajectories(tmp_path / "s.jsonl").values())).steps
    decided = [s for s in steps if s.role]
    assert decided and all(s.fallback_reason for s in decided)
