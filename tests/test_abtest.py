"""A/B test statistics: hashed assignment, Welch, bootstrap, guardrails, and
A/B tests on the online pipeline."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from agenticrec.errors import ConfigError
from agenticrec.tools.abtest import (
    ABTestResult,
    Guardrail,
    ab_test,
    analyse,
    assign,
    bootstrap_ci,
    compare,
    welch,
)
from tests.test_pipeline import pipelines


def _normal(seed: int, n: int, mean: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 1.0, n)


def test_assignment_is_the_documented_hash():
    digest = hashlib.blake2b(b"7:42", digest_size=8).digest()
    expected = int.from_bytes(digest, "big") / 2**64 < 0.5
    assert assign([42], seed=7)[0] == expected
    assert assign(np.array([42], np.int64), seed=7)[0] == expected


def test_assignment_is_stable_and_independent_of_order():
    ids = np.arange(1000, 1500)
    arms = assign(ids, seed=3)
    np.testing.assert_array_equal(arms, assign(ids, seed=3))
    perm = np.random.default_rng(0).permutation(ids.size)
    np.testing.assert_array_equal(assign(ids[perm], seed=3), arms[perm])
    assert (assign(ids, seed=4) != arms).mean() > 0.3
    strings = assign([str(i) for i in ids], seed=3)
    np.testing.assert_array_equal(strings, arms)


@pytest.mark.parametrize("share", [0.5, 0.2])
def test_assignment_is_balanced(share):
    arms = assign(np.arange(20_000), seed=11, treatment_share=share)
    sd = np.sqrt(share * (1 - share) / arms.size)
    assert abs(arms.mean() - share) < 4 * sd


def test_assignment_rejects_a_degenerate_share():
    with pytest.raises(ConfigError, match="treatment_share"):
        assign([1, 2], seed=0, treatment_share=1.0)


def test_known_effect_is_detected():
    c, t = _normal(1, 800), _normal(2, 800, mean=0.25)
    res = compare("m", c, t, seed=0)
    assert res.significant and res.p_value < 1e-4
    assert 0 < res.ci_low < 0.25 < res.ci_high
    result = analyse({"m": c}, {"m": t}, primary="m")
    assert result.decision == "treatment" and result.ship


def test_null_effect_is_significant_at_about_the_nominal_rate():
    rejections = [
        welch(_normal(2 * s, 200), _normal(2 * s + 1, 200))[1] < 0.05
        for s in range(400)
    ]
    assert 0.02 <= np.mean(rejections) <= 0.09


def test_welch_matches_its_formula_and_handles_zero_variance():
    c, t = _normal(5, 50), _normal(6, 80, mean=0.3)
    vc, vt = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    t_stat, _ = welch(c, t)
    assert t_stat == pytest.approx((t.mean() - c.mean()) / np.sqrt(vc + vt))
    assert welch(np.zeros(5), np.zeros(7)) == (0.0, 1.0)
    assert welch(np.zeros(5), np.ones(7)) == (np.inf, 0.0)


def test_bootstrap_ci_is_seeded_and_brackets_the_difference():
    c, t = _normal(7, 300), _normal(8, 300, mean=0.1)
    a = bootstrap_ci(c, t, seed=1)
    assert a == bootstrap_ci(c, t, seed=1)
    assert a != bootstrap_ci(c, t, seed=2)
    assert a[0] < t.mean() - c.mean() < a[1]


def test_guardrail_fails_on_a_significant_drop_only():
    base = _normal(9, 1000, mean=1.0)
    primary_c, primary_t = _normal(10, 1000), _normal(11, 1000, mean=0.3)
    drop = _normal(12, 1000, mean=0.8)
    res = analyse(
        {"p": primary_c, "g": base},
        {"p": primary_t, "g": drop},
        primary="p",
        guardrails=["g"],
    )
    assert not res.guardrails[0].passed
    assert res.decision == "control" and not res.ship
    tolerant = analyse(
        {"p": primary_c, "g": base},
        {"p": primary_t, "g": drop},
        primary="p",
        guardrails=[Guardrail(metric="g", max_relative_drop=0.5)],
    )
    assert tolerant.guardrails[0].passed and tolerant.decision == "treatment"


def test_analyse_validates_metric_names():
    with pytest.raises(ConfigError, match="primary metric 'x'"):
        analyse({"m": np.ones(3)}, {"m": np.ones(3)}, primary="x")
    with pytest.raises(ConfigError, match="guardrail metric 'g'"):
        analyse({"m": np.ones(3)}, {"m": np.ones(3)}, primary="m", guardrails=["g"])


@pytest.fixture(scope="module")
def online():
    return pipelines().online


def test_aa_test_on_real_metrics_finds_nothing(online):
    res = ab_test(online, {}, {}, seed=0)
    assert res.decision == "inconclusive"
    assert res.metrics["NDCG@10"].p_value > 0.05
    assert all(check.passed for check in res.guardrails)
    assert abs(res.n_control - res.n_treatment) < 0.2 * online.n_users
    assert res.n_control + res.n_treatment == online.n_users


def test_aa_splits_of_real_metrics_reject_at_about_alpha(online):
    ndcg = online.evaluate()["NDCG@10"]
    rejections = []
    for seed in range(300):
        arm = assign(online.user_ids, seed=seed)
        rejections.append(welch(ndcg[~arm], ndcg[arm])[1] < 0.05)
    assert 0.01 <= np.mean(rejections) <= 0.10


def test_clearly_worse_treatment_loses(online):
    content_only = {
        **{f"recall.quota.{c}": 0.0 for c in ("cf", "item2item", "popular", "fresh")},
        "recall.quota.embedding": 1.0,
        **{f"prerank.w_{c}": 0.0 for c in ("cf", "item2item", "popular", "fresh")},
        **{f"ranking.w_{h}": 0.0 for h in ("cf", "engage", "like", "pop", "recency")},
        "ranking.w_content": 1.0,
        "rerank.mmr_lambda": 0.0,
    }
    res = ab_test(online, {}, content_only, seed=0)
    main = res.metrics["NDCG@10"]
    assert main.significant and main.diff < 0 and main.ci_high < 0
    assert res.decision == "control" and not res.ship


def test_result_serialises_to_json_and_back(online):
    res = ab_test(online, {}, {"rerank.mmr_lambda": 0.6}, seed=2)
    again = ABTestResult.model_validate_json(res.to_json())
    assert again == res
    assert again.treatment_config["rerank.mmr_lambda"] == 0.6
    arms = assign(online.user_ids, seed=2)
    assert res.n_treatment == int(arms.sum())
