"""PipelineConfig: bounds, validation messages, flat and vector views."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from agenticrec.errors import ConfigError
from agenticrec.tools._pipeline_config import apportion
from agenticrec.tools.pipeline import CHANNELS, HEADS, PipelineConfig, to_params

QUOTAS = {f"recall.quota.{c}" for c in CHANNELS}


def _random_configs(n: int, seed: int) -> list[PipelineConfig]:
    bounds = PipelineConfig.bounds()
    lo = np.array([b.low for b in bounds.values()])
    hi = np.array([b.high for b in bounds.values()])
    rng = np.random.default_rng(seed)
    return [
        PipelineConfig.from_vector(lo + rng.random(lo.size) * (hi - lo))
        for _ in range(n)
    ]


def test_default_lies_within_bounds_and_every_knob_is_documented():
    flat = PipelineConfig.default().to_flat()
    bounds = PipelineConfig.bounds()
    choices = PipelineConfig.choices()
    assert list(flat) == list(bounds) == list(PipelineConfig.knob_names())
    for knob, (low, high, kind) in bounds.items():
        if kind == "categorical":
            assert flat[knob] in choices[knob]
        else:
            assert low <= flat[knob] <= high, knob
    described = PipelineConfig.describe()
    assert all(described[k]["doc"] for k in flat)
    assert sum(flat[k] for k in QUOTAS) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("rerank.mmr_lambda", 1.5),
        ("ranking.w_cf", -0.1),
        ("prerank.keep_top", 301),
        ("recall.total", 49),
        ("rerank.window", 9),
        ("rerank.max_per_category", 0),
        ("rerank.novelty_weight", float("nan")),
        ("recall.total", 120.5),
    ],
)
def test_out_of_bounds_value_error_names_the_knob(knob, value):
    with pytest.raises(ConfigError, match=knob.replace(".", r"\.")) as info:
        PipelineConfig.from_flat({knob: value})
    if knob != "rerank.novelty_weight":
        assert "bounds [" in str(info.value)


def test_unknown_knob_is_refused_with_close_names():
    with pytest.raises(ConfigError, match="ranking.w_popp.*did you mean ranking.w_pop"):
        PipelineConfig.from_flat({"ranking.w_popp": 1.0})
    with pytest.raises(ConfigError, match="unknown pipeline knob 'ranking.bogus'"):
        PipelineConfig.parse({"ranking": {"bogus": 1}})


def test_quotas_must_sum_to_one_and_the_error_names_recall_quota():
    with pytest.raises(ConfigError, match=r"recall\.quota: .*sum to 1, got 1\.25"):
        PipelineConfig.from_flat({"recall.quota.cf": 0.6})
    moved = PipelineConfig.from_flat(
        {"recall.quota.cf": 0.25, "recall.quota.popular": 0.2}
    )
    assert moved.recall.quota.popular == 0.2


def test_categorical_error_lists_the_choices():
    with pytest.raises(ConfigError, match="ranking.fusion = 'max'.*additive"):
        PipelineConfig.from_flat({"ranking.fusion": "max"})


def test_direct_construction_names_the_knob_too():
    with pytest.raises(ValidationError, match=r"rerank\.mmr_lambda"):
        PipelineConfig(rerank={"mmr_lambda": 2.0})
    with pytest.raises(ConfigError, match=r"rerank\.mmr_lambda = 2"):
        PipelineConfig.parse({"rerank": {"mmr_lambda": 2.0}})


def test_every_bound_is_accepted_and_just_beyond_it_is_refused():
    for knob, (low, high, kind) in PipelineConfig.bounds().items():
        if kind == "categorical" or knob in QUOTAS:
            continue
        cast = int if kind == "int" else float
        for edge in (low, high):
            assert PipelineConfig.from_flat({knob: cast(edge)}).to_flat()[knob] == edge
        step = 1 if kind == "int" else 1e-6
        for beyond in (low - step, high + step):
            with pytest.raises(ConfigError, match=knob.replace(".", r"\.")):
                PipelineConfig.from_flat({knob: cast(beyond)})


def test_vector_round_trip():
    for config in [PipelineConfig.default(), *_random_configs(5, seed=1)]:
        assert PipelineConfig.from_vector(config.to_vector()) == config


def test_from_vector_clips_rounds_and_renormalises():
    names = PipelineConfig.knob_names()
    v = PipelineConfig.default().to_vector()
    pos = {k: i for i, k in enumerate(names)}
    v[pos["rerank.mmr_lambda"]] = 7.0
    v[pos["prerank.keep_top"]] = 99.6
    v[pos["ranking.fusion"]] = 0.7
    for c in CHANNELS:
        v[pos[f"recall.quota.{c}"]] = 2.0
    config = PipelineConfig.from_vector(v)
    assert config.rerank.mmr_lambda == 1.0
    assert config.prerank.keep_top == 100
    assert config.ranking.fusion == "multiplicative"
    assert config.recall.quota.cf == pytest.approx(0.2)


def test_from_vector_rejects_wrong_length_and_non_finite():
    with pytest.raises(ConfigError, match="24 entries"):
        PipelineConfig.from_vector(np.zeros(3))
    v = PipelineConfig.default().to_vector()
    v[0] = np.nan
    with pytest.raises(ConfigError, match="not finite at recall.total"):
        PipelineConfig.from_vector(v)


def test_apportion_fills_the_budget_in_proportion():
    assert apportion(np.array([0.35, 0.3, 0.1, 0.1, 0.15]), 300).tolist() == [
        105,
        90,
        30,
        30,
        45,
    ]
    rng = np.random.default_rng(0)
    for _ in range(50):
        shares = rng.dirichlet(np.ones(5))
        total = int(rng.integers(50, 501))
        slots = apportion(shares, total)
        assert slots.sum() == total
        assert np.all(np.abs(slots - shares * total) < 1.0)


def test_params_carry_the_knobs_in_kernel_order():
    config = PipelineConfig.from_flat(
        {
            "ranking.w_like": 2.5,
            "ranking.fusion": "multiplicative",
            "rerank.similarity": "embedding_cosine",
        }
    )
    p = to_params(config)
    assert p.w_rank[HEADS.index("like")] == np.float32(2.5)
    assert bool(p.multiplicative) and bool(p.embedding_similarity)
    assert p.slots.sum() == config.recall.total


def test_category_matrix_drops_root_labels_and_caps_the_vocabulary():
    from agenticrec.tools._pipeline_features import category_matrix

    cats = (("Root", "a"), ("Root", "b"), ("Root", "a"), ("c",))
    g = category_matrix(cats)
    assert g.shape == (4, 3)
    np.testing.assert_array_equal(g.sum(axis=1), [1, 1, 1, 1])
    assert category_matrix(cats, max_categories=1).sum() == 2
