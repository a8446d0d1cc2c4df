"""The Actor's rule search and the Critic's filter, without data."""

from __future__ import annotations

import numpy as np
import pytest

from agenticrec.graphs import _tune_roles as roles
from agenticrec.graphs import _tune_search as search
from agenticrec.graphs._tune_task import config_key
from agenticrec.tools.pipeline import PipelineConfig


def _obs(**kw):
    obs = {
        "m": 6,
        "seed": 0,
        "round": 0,
        "sigma": 0.15,
        "incumbent": {},
        "pareto": [],
        "tried_keys": [],
        "skills": [],
        "insight": {},
    }
    obs.update(kw)
    return obs


def test_any_unit_point_maps_to_a_valid_config_whose_quotas_sum_to_one():
    rng = np.random.default_rng(0)
    for _ in range(200):
        over = search.from_unit(
            rng.uniform(-0.5, 1.5, len(PipelineConfig.knob_names()))
        )
        cfg = PipelineConfig.from_flat(over)  # raises if invalid
        q = cfg.recall.quota
        assert abs(q.cf + q.item2item + q.embedding + q.popular + q.fresh - 1) < 1e-6
        assert search.overrides_of(cfg) == over


def test_default_has_no_overrides_and_unit_roundtrip_is_stable():
    assert search.overrides_of(PipelineConfig.default()) == {}
    over = {"ranking.w_content": 1.0, "rerank.mmr_lambda": 0.7}
    assert search.from_unit(search.to_unit(over)) == over


def test_skill_knobs_outside_the_pipeline_are_ignored_and_values_clipped():
    ok, ignored = search.applicable(
        {
            "coldstart.max_history": 5,
            "ranking.w_cf": 9.0,
            "ranking.fusion": "multiplicative",
            "rerank.similarity": "nonsense",
        }
    )
    assert ok == {"ranking.w_cf": 5.0, "ranking.fusion": "multiplicative"}
    assert sorted(ignored) == ["coldstart.max_history", "rerank.similarity"]


def test_propose_is_deterministic_skill_first_and_never_repeats_a_tried_config():
    skills = [
        {"id": "s1", "initial_config": {"rerank.mmr_lambda": 0.8}, "tried": False},
        {"id": "s2", "initial_config": {"coldstart.x": 1}, "tried": False},
    ]
    tried = [config_key({"rerank.mmr_lambda": 0.8})]
    a = search.propose(_obs(skills=skills))
    assert a == search.propose(_obs(skills=skills))
    assert a[0]["origin"] == "skill:s1" and len(a) == 6
    assert all(not c["origin"].endswith("s2") for c in a)  # nothing applicable
    b = search.propose(_obs(skills=skills, tried_keys=tried))
    assert all(c["origin"] != "skill:s1" for c in b)
    keys = [config_key(c["overrides"]) for c in b]
    assert len(set(keys)) == len(keys) and tried[0] not in keys
    assert search.propose(_obs(round=1)) != search.propose(_obs(round=2))


def test_near_misses_are_repaired_along_the_guard_knob():
    miss = {
        "id": "r0c1",
        "overrides": {"ranking.w_content": 1.0},
        "gain": 0.3,
        "guard_change": -0.04,
    }
    out = search.propose(
        _obs(
            near_misses=[miss],
            guard_knobs=[{"knob": "rerank.mmr_lambda", "direction": "down"}],
        )
    )
    rep = [c for c in out if c["origin"] == "repair:r0c1"]
    assert len(rep) == 1
    assert rep[0]["overrides"]["ranking.w_content"] == 1.0
    assert rep[0]["overrides"]["rerank.mmr_lambda"] < 0.9


@pytest.mark.parametrize(
    ("wins", "n", "up"), [(3, 6, True), (1, 6, False), (0, 6, False)]
)
def test_one_fifth_rule_moves_sigma_and_stays_in_range(wins, n, up):
    s = search.adapt_sigma(0.15, wins, n)
    assert (s > 0.15) == up
    assert search.adapt_sigma(0.5, 6, 6) == 0.5
    assert search.adapt_sigma(0.02, 0, 6) == 0.02
    assert search.adapt_sigma(0.15, 0, 0) == 0.15


def _cand(i, gain_a, gain_b, ns, guard, guard_change=0.0, **kw):
    # a lower bound that is positive exactly when both halves gain
    c = {
        "gain_lcb": min(gain_a, gain_b) / 2,
        "index": i,
        "valid": True,
        "error": None,
        "tested_as": None,
        "gain": (gain_a + gain_b) / 2,
        "gain_A": gain_a,
        "gain_B": gain_b,
        "ns": ns,
        "guard": guard,
        "guard_change": guard_change,
        "overrides": {"ranking.w_cf": 1.0 + i},
    }
    c.update(kw)
    return c


def test_critic_rejects_invalid_tested_guard_inconsistent_dominated_then_keeps_top():
    obs = {
        "north_star": "NDCG@10",
        "guard": "ILD@10",
        "guard_tolerance": 0.01,
        "max_keep": 1,
        "candidates": [
            {"index": 0, "valid": False, "error": "x: out of bounds"},
            _cand(1, 0.1, 0.1, 0.05, 0.8, tested_as="t:0:0"),
            _cand(2, 0.2, 0.2, 0.06, 0.7, guard_change=-0.05),
            _cand(3, 0.3, -0.1, 0.07, 0.8),
            _cand(4, 0.1, 0.1, 0.04, 0.79),
            _cand(5, 0.2, 0.1, 0.05, 0.80),
            _cand(6, 0.05, 0.05, 0.045, 0.81),
        ],
    }
    d = roles.critic_rule(obs)
    assert [k.index for k in d.keep] == [5]
    why = {k.index: k.reason for k in d.rejected}
    assert why[0].startswith("invalid") and "already tested" in why[1]
    assert "guardrail" in why[2] and "within one standard error" in why[3]
    assert "dominated by candidate 5" in why[4] and "not in the top 1" in why[6]
    roles.critic_check(d, obs)
    with pytest.raises(ValueError, match="invalid"):
        roles.critic_check(roles.CriticDecision(keep=[roles.Kept(index=0)]), obs)
