"""The tune graph end to end on ml-latest-small (rule policies, hashing
embedding for speed; the graph's default is MiniLM)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from agenticrec.errors import ConfigError
from agenticrec.graphs import tune
from agenticrec.graphs._tune_spec import TuneReport
from agenticrec.policy import LLMPolicy, RulePolicy
from agenticrec.runner import run
from agenticrec.skills import ExperimentMemory
from agenticrec.trajectory import read_trajectories

FAST = dict(rounds=2, candidates=3, offline_events=1, embedding="hashing", seed=0)


def ctx_for(tmp_path, **kw) -> tune.TuneContext:
    args = {**FAST, "skillhub": str(tmp_path / "hub"), **kw}
    return tune.TuneContext(**args)


def _strip(report):
    r = report.model_dump(mode="json")
    for k in ("timings", "skillhub", "cached"):
        r.pop(k)
    return r


def test_rounds_run_every_agent_and_every_experiment_is_recorded_once(tmp_path):
    ctx = ctx_for(tmp_path, trajectories=str(tmp_path / "t.jsonl"))
    rep = run("tune", ctx, thread_id="t1")
    assert isinstance(rep, TuneReport)
    assert rep["status"] == "done" and rep["rounds_done"] == 2
    assert rep.summary().startswith("2 rounds, ")
    assert set(rep["policies"]) >= {"actor", "critic", "insight", "skill"}
    assert all(v == {"rule": n} for v in rep["policies"].values() for n in v.values())
    assert rep["evaluations"] == 6 and len(rep["history"]) == 2
    assert [s["source"] for s in rep["skills"]["retrieved"]] == ["seed"] * 4
    ids = [e["id"] for e in rep["experiments"]]
    assert all(i.startswith("t1:") for i in ids) and len(set(ids)) == len(ids)
    mem = ExperimentMemory(
        tmp_path / "hub" / "experiments" / "ml-latest-small-ndcg.jsonl"
    )
    items = mem.items()
    assert [i.id for i in items] == ids and all(i.status == "done" for i in items)
    for it, e in zip(items, rep["experiments"], strict=True):
        assert it.results["ab.NDCG@10.diff"] == pytest.approx(e["diff"], abs=1e-6)
    traj = read_trajectories(tmp_path / "t.jsonl")["t1"]
    assert traj.complete
    roles = {s.role for s in traj.steps if s.role}
    assert {"tune.actor", "tune.critic", "tune.insight", "tune.skill"} <= roles


def test_same_seed_gives_the_same_report(tmp_path):
    a = run("tune", ctx_for(tmp_path / "a"), thread_id="same")
    b = run("tune", ctx_for(tmp_path / "b"), thread_id="same")
    assert _strip(a) == _strip(b)


def test_a_temporary_skillhub_is_removed_at_the_end_of_the_run(tmp_path, monkeypatch):
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    ctx = ctx_for(tmp_path, skillhub=tune.TEMP_HUB, rounds=1)
    hub = ctx.hub_path()  # made on first use, for this run's services
    assert hub.parent == tmp and hub.is_dir()
    rep = run("tune", ctx, thread_id="tmp")
    assert rep["status"] == "done" and rep["skillhub"] == tune.TEMP_HUB
    assert [s["source"] for s in rep["skills"]["retrieved"]] == ["seed"] * 4
    assert not hub.exists()
    with pytest.raises(ConfigError, match="review"):
        tune.TuneContext(skillhub=tune.TEMP_HUB, review=True)


def test_ab_tests_split_only_online_users_by_hashed_ids(tmp_path):
    ctx = ctx_for(tmp_path)
    ws = ctx.ws()
    assert not set(ws.offline_user_ids) & set(ws.online_user_ids)
    res = ws.ab_test({"rerank.mmr_lambda": 0.7}, seed=3, objective=ctx.obj)
    assert res.n_control + res.n_treatment == len(ws.online_user_ids)
    assert {g.metric for g in res.guardrails} == {"ILD@10", "novelty@10"}
    again = ws.ab_test({"rerank.mmr_lambda": 0.7}, seed=3, objective=ctx.obj)
    assert again == res
    # no offline pipeline sees an online-period interaction
    on = ws.online[0]
    on_pairs = set(zip(on.users.tolist(), on.features.target.tolist(), strict=True))
    for p in ws.offline:
        g = p.graph
        edges = zip(
            np.asarray(g.edge_users).tolist(),
            np.asarray(g.user_items).tolist(),
            strict=True,
        )
        assert not on_pairs & set(edges)
    # the online pipeline predicts them, so they are not visible to it either
    assert not on_pairs & set(
        zip(
            np.asarray(on.graph.edge_users).tolist(),
            np.asarray(on.graph.user_items).tolist(),
            strict=True,
        )
    )


def test_offline_estimates_replicate_on_two_disjoint_halves(tmp_path):
    ws = ctx_for(tmp_path).ws()
    est = ws.estimate({})
    n_b = int(ws.half.sum())
    n_a = len(ws.half) - n_b
    assert n_a > 50 and n_b > 50
    all_ = est["all"]["NDCG@10"]
    mix = (est["A"]["NDCG@10"] * n_a + est["B"]["NDCG@10"] * n_b) / (n_a + n_b)
    assert all_ == pytest.approx(mix, abs=1e-5)


class _ActorLLM:
    """LLM for the Actor only (a fake chat model), rules for the rest."""

    name = "mixed"

    def __init__(self, replies):
        self.llm = LLMPolicy(FakeListChatModel(responses=replies))
        self.rule = RulePolicy()

    def decide(self, role, obs):
        pol = self.llm if role == "tune.actor" else self.rule
        return pol.decide(role, obs)


def test_llm_actor_out_of_bounds_proposal_is_rejected_by_the_critic(tmp_path):
    reply = json.dumps(
        {
            "candidates": [
                {"overrides": {"rerank.mmr_lambda": 1.7}, "rationale": "too far"},
                {
                    "overrides": {"ranking.w_content": 1.0, "rerank.mmr_lambda": 0.7},
                    "rationale": "content head, diversity repair",
                },
            ]
        }
    )
    ctx = ctx_for(tmp_path, rounds=1, trajectories=str(tmp_path / "t.jsonl"))
    ctx.services.policy = _ActorLLM([reply] * 10)  # the run's policy
    rep = run("tune", ctx, thread_id="llm")
    assert rep["policies"]["actor"] == {"llm:FakeListChatModel": 1}
    step = next(
        s
        for s in read_trajectories(tmp_path / "t.jsonl")["llm"].steps
        if s.node == "critic"
    )
    invalid = step.extra["invalid"]
    assert invalid[0]["index"] == 0 and "rerank.mmr_lambda" in invalid[0]["reason"]
    assert rep["evaluations"] == 1


@pytest.fixture
def keep_first():
    """A Critic that keeps the first valid candidate, so every round launches."""
    from dataclasses import replace

    from agenticrec.graphs import _tune_roles as r
    from agenticrec.policy import get_role, register_role

    def rule(obs):
        first = next(c["index"] for c in obs["candidates"] if c["valid"])
        return r.CriticDecision(keep=[r.Kept(index=first, reason="test")])

    orig = get_role("tune.critic")
    register_role(replace(orig, rule=rule), replace=True)
    yield
    register_role(orig, replace=True)


def test_review_pauses_with_the_plan_and_resumes_on_approval(tmp_path, keep_first):
    ctx = ctx_for(tmp_path, review=True, rounds=3, candidates=2)
    ck = tmp_path / "ck.sqlite"
    with pytest.raises(ConfigError, match="checkpointer"):
        run("tune", ctx)
    rep = run("tune", ctx, checkpoint=ck, thread_id="rv")
    again = run("tune", ctx, checkpoint=ck, thread_id="rv")  # no answer: still
    assert again["status"] == "awaiting_input"  # paused, at the same plan
    assert again["pending"] == rep["pending"] and again["ab_tests"] == 0
    seen = 0
    while rep["status"] == "awaiting_input":
        launches = rep["pending"]["plan"]["launches"]
        assert launches and all(
            x["id"].startswith(f"rv:{rep['pending']['plan']['round']}:")
            for x in launches
        )
        approve = seen % 2 == 0  # approve, then decline, ...
        before = rep["ab_tests"]
        rep = run(
            "tune", ctx, checkpoint=ck, thread_id="rv", resume={"approve": approve}
        )
        assert (rep["ab_tests"] > before) == approve
        seen += 1
    assert seen == 3 and rep["status"] == "done" and rep["rounds_done"] == 3
    assert rep["pending"] is None
    # a finished thread returns its report without re-running
    again = run("tune", ctx, checkpoint=ck, thread_id="rv")
    assert again["cached"] and _strip(again) == _strip(rep)


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="objective"):
        tune.TuneContext(objective="clicks")  # type: ignore[arg-type]
    for name, bad in (
        ("candidates", 0),
        ("candidates", 17),
        ("rounds", 0),
        ("online_events", 0),
        ("online_share", 1.0),
        ("max_users", -1),
    ):
        with pytest.raises(ConfigError, match=name):
            tune.TuneContext(**{name: bad})


def test_a_task_mentioning_diversity_selects_the_diversity_objective():
    ctx = tune.TuneContext(task="Make the top-10 more diverse.")
    assert ctx.objective == "diversity" and ctx.obj.north_star == "ILD@10"
    assert tune.TuneContext().task_text().endswith("Dataset: ml-latest-small.")


def test_diversity_objective_guards_ndcg(tmp_path):
    ctx = ctx_for(tmp_path, objective="diversity", rounds=1)
    rep = run("tune", ctx, thread_id="div")
    assert rep["north_star"] == "ILD@10"
    for e in rep["experiments"]:
        assert e["decision"] in ("treatment", "control", "inconclusive")
    assert np.isfinite(rep["default_offline"]["ILD@10"])


@pytest.fixture
def ctx(tmp_path):
    c = ctx_for(tmp_path)
    yield c
    c.close_services()  # the Skillhub client a direct node call opened


def test_skill_agent_distils_once_per_experiment_and_counts_outcomes_once(ctx):
    from langgraph.runtime import Runtime

    exp = {
        "id": "t:0:0",
        "round": 0,
        "origin": "skill:seed-rerank-mmr-diversity",
        "overrides": {"ranking.w_content": 1.0, "rerank.mmr_lambda": 0.7},
        "decision": "treatment",
        "diff": 0.02,
        "relative": 0.5,
        "p": 0.01,
        "why": "test",
        "metrics": {
            "NDCG@10": {"diff": 0.02, "p": 0.01},
            "ILD@10": {"diff": 0.001, "p": 0.8},
        },
    }
    state = {
        "task": "raise NDCG@10",
        "round": 0,
        "experiments": [exp],
        "tried": [],
        "proposals": [],
        "kept": [],
        "sigma": 0.1,
        "insight": {},
        "incumbent": {"all": {"NDCG@10": 0.04}},
        "control": {"all": {"NDCG@10": 0.04}},
    }
    rt = Runtime(context=ctx)
    cfg = {"configurable": {"thread_id": "t"}}
    first = tune.skill(state, rt, cfg)
    again = tune.skill(state, rt, cfg)  # a resumed run re-executing the node
    acts = [x["action"] for x in first["skill_log"]]
    assert acts[0] in ("written", "merged") and acts[1] == "outcome"
    assert again["skill_log"] == first["skill_log"]  # same log, nothing re-done
    hub = ctx.hub()
    seed = hub.get("seed-rerank-mmr-diversity")
    assert seed.success_count == 1  # counted once, by outcome or by merge
    assert [e.experiment_id for e in seed.evidence] == ["t:0:0"]
    s = hub.get(first["skill_log"][0]["skill"])
    assert [e.experiment_id for e in s.evidence] == ["t:0:0"]
    assert s.evidence[0].effects["NDCG@10"] == 0.02
    if acts[0] == "written":  # (hashing may merge it into a similar seed)
        assert s.initial_config == exp["overrides"] and s.success_count == 1
    # a second task retrieves it and the Actor seeds a candidate from it
    hits = hub.search(
        "tune the recommender to raise NDCG@10", k=4, where={"north_star": "NDCG@10"}
    )
    assert s.id in [h.skill.id for h in hits]
