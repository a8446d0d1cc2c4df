"""The tune task's online designs: interleaving and sequential looks."""

from __future__ import annotations

import numpy as np
import pytest

from agenticrec.graphs import tune

CHANGE = {"rerank.mmr_lambda": 0.3, "ranking.w_pop": 4.0}


@pytest.fixture(scope="module")
def task(shared_data):
    ctx = tune.TuneContext(
        data="ml-latest-small", seed=0, online_events=2, max_users=120
    )
    return ctx, ctx.ws()


def test_interleaving_a_config_against_itself_finds_nothing(task):
    ctx, ws = task
    r = ws.ab_test(CHANGE, CHANGE, seed=3, objective=ctx.obj, design="interleave")
    assert r.design == "interleave"
    assert r.n_control == r.n_treatment == len(ws.online_user_ids)
    assert r.metrics["ILD@10"].diff == 0.0
    assert r.decision != "treatment"


def test_interleaving_pairs_list_metrics_with_each_configs_own_list(task):
    ctx, ws = task
    r = ws.ab_test(CHANGE, seed=3, objective=ctx.obj, design="interleave")
    own = ws._per_user("online", CHANGE)["ILD@10"].mean()
    base = ws._per_user("online", {})["ILD@10"].mean()
    assert r.metrics["ILD@10"].diff == pytest.approx(own - base)
    # engagement credit: the two teams share every hit of the merged list
    hr = r.metrics["HR@10"]
    assert 0.0 <= hr.control_mean + hr.treatment_mean <= 1.0


def test_sequential_looks_are_monotone_and_stop_at_the_first_significant(task):
    ctx, ws = task
    r = ws.ab_test(
        CHANGE, seed=5, objective=ctx.obj, design="interleave", sequential=True
    )
    ps = [x["p"] for x in r.looks]
    users = [x["users"] for x in r.looks]
    assert ps == sorted(ps, reverse=True)
    assert users == sorted(users)
    assert all(p >= ctx.alpha for p in ps[:-1])
    assert r.metrics[ctx.obj.north_star].p_value == ps[-1]
    assert r.n_control == users[-1]


def test_an_unknown_design_is_refused(task):
    from agenticrec.errors import ConfigError

    ctx, ws = task
    with pytest.raises(ConfigError, match="design"):
        ws.ab_test(CHANGE, seed=0, objective=ctx.obj, design="bandit")


def test_the_setting_reaches_the_graph_context():
    assert tune.TuneContext().ab_design == "interleave"
    assert np.isin(["welch", "interleave"], list(tune.AB_DESIGNS)).all()


def test_the_offline_lower_bound_is_the_gain_minus_one_paired_standard_error(task):
    from scipy import stats

    ctx, ws = task
    m = ctx.obj.north_star
    t = ws._per_user("offline", CHANGE)[m]
    c = ws._per_user("offline", {})[m]
    want = ((t - c).mean() - stats.sem(t - c)) / c.mean()
    assert ws.gain_lower_bound(CHANGE, m) == pytest.approx(want, rel=1e-9)
    assert ws.gain_lower_bound({}, m) == 0.0
    # more standard errors, a lower bound
    assert ws.gain_lower_bound(CHANGE, m, z=2.0) < ws.gain_lower_bound(CHANGE, m)
