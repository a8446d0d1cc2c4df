"""AgenticRS layer: agent declarations, grammar, routing, the evolution cycle."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel, Field, ValidationError

from agenticrec.agents import AgentSpec, register_agent
from agenticrec.context import Context
from agenticrec.errors import ConfigError
from agenticrec.graphs import system
from agenticrec.graphs._system_roles import neighbours
from agenticrec.graphs._system_space import StructureSpace, apply_structure, normalise
from agenticrec.policy import LLMPolicy
from agenticrec.runner import run
from agenticrec.tools.pipeline import PipelineConfig


class Space(BaseModel):
    x: float = Field(0.5, ge=0, le=1)


def test_registration_names_what_an_agent_lacks():
    with pytest.raises(ConfigError, match="missing: an evaluation"):
        register_agent(AgentSpec("a1", "model", ("in",), ("out",), None, Space))
    with pytest.raises(ConfigError, match="missing: a decision space"):
        register_agent(AgentSpec("a2", "model", ("in",), ("out",), lambda: {}, None))
    with pytest.raises(ConfigError, match=r"closed loop.*evaluation.*decision space"):
        register_agent(AgentSpec("a3", "model", (), ("out",), None, None))


def test_agents_list_shows_model_and_functional_agents():
    out = subprocess.run(
        [sys.executable, "-m", "agenticrec", "agents", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    rows = {r["name"]: r for r in json.loads(out.stdout)["agents"]}
    assert {
        "recall.cf",
        "ranking.fusion",
        "rerank.mmr",
        "system.router",
        "teacher",
        "experiment.orchestrator",
        "dualagent",
        "tune.loop",
    } <= set(rows)
    assert rows["ranking.fusion"]["reward"] == "outer"
    assert rows["recall.cf"]["reward"] == "inner"
    assert {r["kind"] for r in rows.values()} == {"model", "functional"}


def test_grammar_rejects_unsafe_structures():
    for bad in (
        {"channels": ["cf"], "heads": ["cf"], "fusion": "additive"},
        {"channels": ["cf", "cf"], "heads": ["cf"], "fusion": "additive"},
        {"channels": ["cf", "exec"], "heads": ["cf"], "fusion": "additive"},
        {"channels": ["cf", "fresh"], "heads": [], "fusion": "additive"},
        {"channels": ["cf", "fresh"], "heads": ["cf"], "fusion": "eval"},
    ):
        with pytest.raises(ValidationError):
            StructureSpace.model_validate(bad)


def test_rule_structure_agent_enumerates_single_edits_inside_the_grammar():
    s = StructureSpace(channels=["cf", "item2item"], heads=["cf"], fusion="additive")
    ns = neighbours(s)
    assert len({n.key() for n in ns}) == len(ns)
    assert all(len(n.channels) >= 2 and n.heads for n in ns)
    flat = apply_structure(PipelineConfig.default().to_flat(), ns[0])
    assert (
        abs(
            sum(
                flat[f"recall.quota.{c}"]
                for c in ("cf", "item2item", "embedding", "popular", "fresh")
            )
            - 1
        )
        < 1e-9
    )
    PipelineConfig.from_flat(flat)  # valid config


def test_invalid_llm_structure_falls_back_to_the_rule_with_reason():
    model = FakeListChatModel(
        responses=[
            '{"proposals": [{"channels": ["cf"], "heads": ["cf"], "fusion": "x"}]}'
        ]
        * 3
    )
    obs = {
        "current": {
            "channels": ["cf", "item2item"],
            "heads": ["cf"],
            "fusion": "additive",
        }
    }
    d = LLMPolicy(model, context=Context(llm_max_retries=1)).decide(
        "system.structure", obs
    )
    assert d.policy == "rule" and "invalid reply" in d.fallback_reason
    assert len(d.value.proposals) >= 5


def test_router_llm_reply_naming_an_unknown_arm_is_rejected():
    model = FakeListChatModel(
        responses=['{"routes": {"short": "ghost", "long": "base"}}']
    )
    obs = {
        "segments": {
            "short": {"base": 0.1, "s1": 0.2},
            "long": {"base": 0.1, "s1": 0.05},
        },
        "current": {"short": "base", "long": "base"},
    }
    d = LLMPolicy(model, context=Context(llm_max_retries=0)).decide(
        "system.router", obs
    )
    assert d.policy == "rule" and "unknown arm" in d.fallback_reason
    assert d.value.routes == {"short": "s1", "long": "base"}


def test_significant_gain_ignores_noise_and_accepts_clear_gains():
    rng = np.random.default_rng(0)
    old = rng.random(300)
    noise = rng.normal(0, 0.05, 300)
    assert system.significant_gain(old + noise - noise.mean(), old) == -np.inf
    assert system.significant_gain(old, old) == -np.inf
    assert system.significant_gain(old + 0.05, old) == pytest.approx(0.05)


def test_normalise_keeps_quotas_a_distribution():
    flat = PipelineConfig.default().to_flat()
    flat["recall.quota.cf"] = 0.9
    out = normalise(flat)
    assert (
        abs(sum(v for k, v in out.items() if k.startswith("recall.quota")) - 1) < 1e-9
    )


@pytest.fixture(scope="module")
def short_run():
    return run("system", system.SystemContext(seed=0, shift_round=2, rounds=2))


def test_cycle_reports_inner_and_outer_rewards_and_routing(short_run):
    rounds = short_run["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    r1 = rounds[0]
    assert r1["trigger"] and r1["router_policy"] == {
        "policy": "rule",
        "fallback_reason": None,
    }
    assert set(r1["routing_after"]) == {"short", "long"}
    assert any(k.endswith("/recall.cf") for k in r1["inner"])
    assert (
        r1["reward_used"][next(k for k in r1["inner"] if k.endswith("/ranking.fusion"))]
        == "outer"
    )
    assert rounds[1]["shifted"] and rounds[1]["trigger"].startswith("distribution")
    assert all(isinstance(r["outer_heldout"], float) for r in rounds)
    # one structure decision per arm and round, one router decision per trigger
    assert short_run["policies"]["system.router"] == {"rule": 2}
    assert sum(short_run["policies"]["system.structure"].values()) >= 2
    assert "held-out outer reward" in short_run.summary()


def test_same_seed_same_report(short_run):
    again = run(
        "system",
        system.SystemContext(seed=0, shift_round=2, rounds=2),
        thread_id="again",
    )
    drop = {"timings", "thread_id"}
    assert again.model_dump(exclude=drop) == short_run.model_dump(exclude=drop)


def test_interrupted_cycle_resumes_to_the_same_result(tmp_path, short_run):
    ctx = system.SystemContext(seed=0, shift_round=2, rounds=2)
    conn = sqlite3.connect(str(tmp_path / "ck.sqlite"), check_same_thread=False)
    saver = SqliteSaver(conn)
    g = system.build_graph(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "cut"}, "recursion_limit": 100}
    for n, _ in enumerate(g.stream({"rounds": 2}, cfg, context=ctx)):
        if n == 2:
            break
    resumed = run("system", ctx, checkpoint=saver, thread_id="cut")
    conn.close()
    assert resumed["rounds"] == short_run["rounds"]
    assert resumed["final"] == short_run["final"]


@pytest.mark.parametrize("value", ["0", "-1"])
def test_rounds_out_of_range_exit_2_naming_the_setting(value, monkeypatch, capsys):
    from agenticrec import cli

    monkeypatch.setattr(sys, "argv", ["agenticrec", "run", "system", "--rounds", value])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 2
    assert f"rounds={value}" in capsys.readouterr().err


def test_cli_flags_build_the_context(monkeypatch):
    """Today's flags (--data --rounds --shift-round --frozen --trajectories
    --seed) map onto the context; --frozen is compositional=False."""
    import typer
    from typer.testing import CliRunner

    from agenticrec import runner
    from agenticrec.graphspec import Report, get_graph

    seen = []

    def fake_run(spec, ctx, **kw):
        seen.append(ctx)
        return Report(graph="system", seed=ctx.seed)

    monkeypatch.setattr(runner, "run", fake_run)
    app = typer.Typer()
    app.command("system")(runner.make_command(get_graph("system")))
    app.command("other")(lambda: None)
    args = ["system", "--data", "ml-latest-small", "--rounds", "3",
            "--shift-round", "2", "--seed", "7", "--trajectories", "t.jsonl",
            "--json"]  # fmt: skip
    for extra, compositional in (([], True), (["--frozen"], False)):
        res = CliRunner().invoke(app, [*args, *extra])
        assert res.exit_code == 0, res.output
        ctx = seen[-1]
        assert (ctx.rounds, ctx.shift_round, ctx.seed) == (3, 2, 7)
        assert ctx.trajectories == "t.jsonl" and ctx.compositional is compositional
