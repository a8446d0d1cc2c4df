"""Each graph runs a small job with ``LLMPolicy`` against the real local server.

SmolLM2-135M is a toy, so a decision may be a validated model decision or a
recorded fallback to the role's rule. What must hold: the run completes and
computes its metrics; every decision step of the trajectory is one of the two
(``llm:smol`` without a fallback reason, or ``rule`` with one); at least one
decision step carries assistant messages; and every recorded assistant
message is a reply the server really sent (the raw HTTP bodies are captured).

Budgets are the smallest that still reach every decision node: ~17 model
calls in all, no retries (``llm_max_retries=0``), forced function calling (no
probe call), 120 s per call. The time goes into reading prompts on one
thread (~60-150 tokens/s, the tune actor's is ~3300 tokens): about 1-2 min
per graph on an idle machine, several on a loaded one. dualagent and tune
are skipped ("graph not present") where their modules are not there yet.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agenticrec.context import Context
from agenticrec.policy import LLMPolicy
from agenticrec.trajectory import read_trajectories

from .conftest import capturing_model

pytestmark = pytest.mark.llm


@pytest.fixture
def llm(llm_server: Context, monkeypatch) -> tuple[dict[str, Any], list[str]]:
    """(LLM settings for a graph's context, the raw replies the server sent).

    Graphs get their policy from the run's services (``ctx.services``), which
    call ``agenticrec.policy.make_policy``; the patched ``make_policy`` builds
    the same ``LLMPolicy`` on a ChatOpenAI that records each HTTP reply.
    """
    import agenticrec.policy as policy_mod

    replies: list[str] = []
    monkeypatch.setattr(
        policy_mod,
        "make_policy",
        lambda ctx: LLMPolicy(capturing_model(ctx, replies), context=ctx),
    )
    base = {f.name: getattr(llm_server, f.name) for f in dataclasses.fields(Context)}
    base.update(
        llm_timeout_s=120.0,
        llm_max_retries=0,
        llm_temperature=0.0,
        structured_output="function_calling",
    )
    return base, replies


def _args(raw: Any) -> Any:
    """Tool-call arguments as data: langchain parses them with strict=False
    (raw newlines in strings pass) and re-serialises what it could parse."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw, strict=False)
    except ValueError:
        return raw


def _assistant_key(msg: dict[str, Any]) -> str:
    calls = [
        (c["function"]["name"], _args(c["function"]["arguments"]))
        for c in msg.get("tool_calls") or []
    ]
    return json.dumps([msg.get("content") or "", calls], sort_keys=True)


def check_trajectories(path: Path, graph: str, replies: list[str]) -> list:
    """The assertions every graph shares; returns the decision steps."""
    runs = read_trajectories(path)
    assert runs and runs.report.truncated_line is None
    for run_id, t in runs.items():
        assert t.header.graph == graph
        assert t.complete, f"{run_id}: no end record"
    decisions = [s for t in runs.values() for s in t.steps if s.role is not None]
    assert decisions, f"no decision step in {path}"
    said = []
    for s in decisions:
        where = f"{s.run_id} {s.step_id} ({s.role})"
        if s.policy == "rule":
            assert s.fallback_reason, f"{where}: rule decision without a reason"
            assert s.fallback_reason.startswith("llm:smol failed"), where
        else:
            assert s.policy == "llm:smol", f"{where}: policy {s.policy!r}"
            assert s.fallback_reason is None, where
        assert [m["role"] for m in s.messages[:2]] == ["system", "user"], where
        said += [
            m
            for m in s.messages
            if m["role"] == "assistant" and (m.get("content") or m.get("tool_calls"))
        ]
    assert said, "no decision step carries a model reply"
    # every recorded reply is one the server sent (retries included)
    sent = Counter(
        _assistant_key(json.loads(r)["choices"][0]["message"]) for r in replies
    )
    recorded = Counter(_assistant_key(m) for m in said)
    assert not recorded - sent, "recorded assistant messages the server never sent"
    by = Counter(
        "llm" if s.policy != "rule" else f"fallback: {s.fallback_reason[:60]}"
        for s in decisions
    )
    ms = sum(s.latency_ms or 0.0 for s in decisions) / 1e3
    print(
        f"\n{graph}: {len(decisions)} decisions ({ms:.0f} s in the policy), "
        f"{len(replies)} replies, {dict(by)}"
    )
    return decisions


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


# ---------------------------------------------------------------- graphs
def run_teacher(llm: dict[str, Any], tmp: Path) -> tuple[dict, Path]:
    from agenticrec.graphs import teacher

    path = tmp / "teacher.jsonl"
    ctx = teacher.TeacherContext(
        **llm,
        trajectories=str(path),
        protocol="sampled:9",  # 10 candidates: the ranker reads ~1000 tokens
        k=5,
        max_reflections=0,  # planner, analyst, ranker, reflector once per user
        users=2,
    )
    from agenticrec.runner import run

    report = run("teacher", ctx, thread_id="llm-teacher")
    assert report["users"] == 2
    m = report["metrics"]["teacher"]
    assert m["users"] == 2 and _finite(m["NDCG@10"]) and _finite(m["MRR"])
    assert set(report["metrics"]) >= {"random", "popularity", "itemknn-cooccurrence"}
    return report, path


def run_system(llm: dict[str, Any], tmp: Path) -> tuple[dict, Path]:
    from agenticrec.graphs import system
    from agenticrec.runner import run

    path = tmp / "system.jsonl"
    ctx = system.SystemContext(**llm, trajectories=str(path), shift_round=5, rounds=1)
    report = run("system", ctx, thread_id="llm-system")
    (r,) = report["rounds"]
    assert _finite(r["outer_offline"]) and _finite(r["outer_heldout"])
    assert r["router_policy"] is not None  # round 1 always re-composes
    assert _finite(report["final"]["outer_heldout"])
    return report, path


def run_dualagent(llm: dict[str, Any], tmp: Path) -> tuple[dict, Path]:
    from agenticrec.graphs import dualagent
    from agenticrec.runner import run

    path = tmp / "dualagent.jsonl"
    ctx = dualagent.DualAgentContext(
        **llm,
        trajectories=str(path),
        users=3,
        n_candidates=50,
        pop_size=8,
        generations=2,
        coordinator_every=1,  # two coordinator decisions
        devices=1,
        baselines=False,
    )
    report = run("dualagent", ctx, thread_id="llm-dualagent")
    assert len(report["alpha_trace"]) == 2
    assert all(0.0 <= a <= 1.0 for a in report["alpha_trace"])
    assert report["metrics"]["dualagent"]
    return report, path


def run_tune(llm: dict[str, Any], tmp: Path) -> tuple[dict, Path]:
    from agenticrec.graphs import tune
    from agenticrec.runner import run

    path = tmp / "tune.jsonl"
    ctx = tune.TuneContext(
        **llm,
        trajectories=str(path),
        rounds=1,
        candidates=2,
        max_launch=1,
        skillhub=str(tmp / "hub"),
        embedding="hashing",
        max_users=200,
    )
    report = run("tune", ctx, thread_id="llm-tune")  # closes the Skillhub
    assert report["status"] == "done" and report["rounds_done"] == 1
    assert _finite(report["default_offline"][report["north_star"]])
    return report, path


GRAPHS = {
    "teacher": run_teacher,
    "system": run_system,
    "dualagent": run_dualagent,
    "tune": run_tune,
}


def _graph(name: str):
    absent = importlib.util.find_spec(f"agenticrec.graphs.{name}") is None
    return pytest.param(
        name, marks=pytest.mark.skipif(absent, reason="graph not present")
    )


@pytest.mark.parametrize("name", [_graph(n) for n in GRAPHS])
def test_graph_runs_with_the_real_model(name, llm, tmp_path):
    settings, replies = llm
    report, path = GRAPHS[name](settings, tmp_path)
    assert report["graph"] == name
    check_trajectories(path, name, replies)
