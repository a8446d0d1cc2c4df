"""CUPED, stratified assignment and always-valid p-values, each against an
independent reference on fresh random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agenticrec.errors import ConfigError
from agenticrec.tools import abtest_design as d


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cuped_theta_is_the_least_squares_slope(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=300)
    y = 0.7 * x + rng.normal(size=300)
    slope = np.polyfit(x, y, 1)[0]
    assert d.cuped_theta(y, x) == pytest.approx(slope, rel=1e-9)
    adj, theta = d.cuped(y, x)
    assert adj.mean() == pytest.approx(y.mean())  # the mean is kept
    rho = np.corrcoef(x, y)[0, 1]
    assert adj.var() == pytest.approx(y.var() * (1 - rho**2), rel=1e-9)


def test_cuped_with_a_constant_covariate_changes_nothing():
    y = np.arange(5.0)
    adj, theta = d.cuped(y, np.ones(5))
    assert theta == 0.0 and np.array_equal(adj, y)
    with pytest.raises(ConfigError):
        d.cuped(y, np.ones(4))


def test_cuped_keeps_the_effect_and_shrinks_its_spread():
    rng = np.random.default_rng(5)
    est, est_adj = [], []
    for _ in range(400):
        x = rng.normal(size=200)
        arm = rng.random(200) < 0.5
        y = x + rng.normal(size=200) + 0.3 * arm
        adj, _ = d.cuped(y, x)
        est.append(y[arm].mean() - y[~arm].mean())
        est_adj.append(adj[arm].mean() - adj[~arm].mean())
    assert np.mean(est_adj) == pytest.approx(0.3, abs=0.03)
    assert np.var(est_adj) < 0.65 * np.var(est)  # corr^2 = 0.5 removed


def test_strata_are_quantiles_and_arms_are_balanced_in_each():
    rng = np.random.default_rng(3)
    x = rng.normal(size=1001)
    s = d.strata_of(x, 4)
    assert set(s.tolist()) == {0, 1, 2, 3}
    assert all(abs(np.sum(s == k) - 250) <= 1 for k in range(4))
    ids = np.arange(1001) * 7 + 3
    arm = d.assign_stratified(ids, s, seed=11, treatment_share=0.3)
    for k in range(4):
        n = np.sum(s == k)
        assert np.sum(arm[s == k]) in (int(np.floor(0.3 * n)), int(np.ceil(0.3 * n)))
    # the arm of a user depends on its id, stratum and the seed only
    perm = rng.permutation(1001)
    again = d.assign_stratified(ids[perm], s[perm], seed=11, treatment_share=0.3)
    assert np.array_equal(again, arm[perm])
    assert not np.array_equal(d.assign_stratified(ids, s, seed=12), arm)
    with pytest.raises(ConfigError):
        d.assign_stratified(ids, s[:-1], seed=0)
    with pytest.raises(ConfigError):
        d.assign_stratified(ids, s, seed=0, treatment_share=1.0)


def test_msprt_matches_the_normal_mixture_likelihood_ratio():
    rng = np.random.default_rng(0)
    v = rng.uniform(0.01, 1.0, 20)
    diffs = rng.normal(0, 0.5, 20)
    tau = 0.3
    lam = stats.norm.pdf(diffs, 0, np.sqrt(v + tau**2)) / stats.norm.pdf(
        diffs, 0, np.sqrt(v)
    )
    want = np.minimum.accumulate(np.minimum(1.0, 1.0 / lam))
    np.testing.assert_allclose(d.msprt_pvalues(diffs, v, tau=tau), want, rtol=1e-9)


def test_peeking_at_every_look_keeps_the_type_one_error():
    rng = np.random.default_rng(1)
    alpha, looks, per_look, rejected = 0.05, 20, 25, 0
    sims = 1000
    for _ in range(sims):
        c = rng.normal(size=looks * per_look)
        t = rng.normal(size=looks * per_look)
        n = per_look * np.arange(1, looks + 1)
        diffs = np.array([t[:k].mean() - c[:k].mean() for k in n])
        var = np.array([t[:k].var(ddof=1) / k + c[:k].var(ddof=1) / k for k in n])
        rejected += d.msprt_pvalues(diffs, var, tau=0.2)[-1] < alpha
    # binomial slack: 4 standard errors above alpha
    assert rejected / sims <= alpha + 4 * np.sqrt(alpha * (1 - alpha) / sims)


def test_msprt_bad_inputs_are_refused():
    with pytest.raises(ConfigError):
        d.msprt_pvalues([0.1], [0.0], tau=0.1)
    with pytest.raises(ConfigError):
        d.msprt_pvalues([0.1], [0.1], tau=0.0)
    with pytest.raises(ConfigError):
        d.msprt_pvalues([0.1, 0.2], [0.1], tau=0.1)
