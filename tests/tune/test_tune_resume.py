"""Restart safety: a killed tune process resumes from its SQLite checkpoint
without losing or duplicating an experiment or a skill record."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

from agenticrec.graphs import tune
from agenticrec.runner import run
from agenticrec.skills import ExperimentMemory

from .test_tune_graph import _strip, keep_first  # noqa: F401 - fixture

SETTINGS = dict(rounds=5, candidates=2, offline_events=1, embedding="hashing", seed=0)

SCRIPT = textwrap.dedent(
    """
    import sys
    from dataclasses import replace
    from agenticrec.graphs import tune, _tune_roles as r
    from agenticrec.policy import get_role, register_role
    from agenticrec.runner import run

    def rule(obs):
        first = next(c["index"] for c in obs["candidates"] if c["valid"])
        return r.CriticDecision(keep=[r.Kept(index=first, reason="test")])

    register_role(replace(get_role("tune.critic"), rule=rule), replace=True)
    ctx = tune.TuneContext(skillhub=sys.argv[1], **{settings!r})
    ctx.ws()
    print("ready", flush=True)
    run("tune", ctx, checkpoint=sys.argv[2], thread_id="cut")
    """
).format(settings=SETTINGS)


def _memory(hub) -> ExperimentMemory:
    return ExperimentMemory(hub / "experiments" / "ml-latest-small-ndcg.jsonl")


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, keep_first):  # noqa: F811
    hub, ck = tmp_path / "hub", tmp_path / "ck.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(hub), str(ck)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    mem_file = hub / "experiments" / "ml-latest-small-ndcg.jsonl"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if mem_file.exists() and mem_file.read_text().count("\n") >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    killed_at = len(_memory(hub).items())
    assert 1 <= killed_at < SETTINGS["rounds"]

    ctx = tune.TuneContext(skillhub=str(hub), **SETTINGS)
    resumed = run("tune", ctx, checkpoint=ck, thread_id="cut")
    ref_ctx = tune.TuneContext(skillhub=str(tmp_path / "ref"), **SETTINGS)
    ref = run("tune", ref_ctx, thread_id="cut")
    try:
        ref_skills = ref_ctx.hub().all()
    finally:
        ref_ctx.close_services()
    assert _strip(resumed) == _strip(ref)
    assert resumed["ab_tests"] == SETTINGS["rounds"]

    items = _memory(hub).items()
    assert [i.id for i in items] == [e["id"] for e in ref["experiments"]]
    assert all(i.status == "done" for i in items)
    ids = [i.id for i in items]
    assert len(set(ids)) == len(ids)

    ctx = tune.TuneContext(skillhub=str(hub), **SETTINGS)
    try:
        skills = ctx.hub().all()
    finally:
        ctx.close_services()
    assert [s.id for s in skills] == [s.id for s in ref_skills]
    for got, want in zip(skills, ref_skills, strict=True):
        ev = Counter(e.experiment_id for e in got.evidence)
        assert all(n == 1 for n in ev.values()), got.id
        assert (got.success_count, got.failure_count) == (
            want.success_count,
            want.failure_count,
        ), got.id
        assert [e.experiment_id for e in got.evidence] == [
            e.experiment_id for e in want.evidence
        ]
