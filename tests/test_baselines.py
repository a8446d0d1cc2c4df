"""Honest baselines: the teacher's users and candidates, tuned on validation."""

from __future__ import annotations

import numpy as np
import pytest

from agenticrec.evals import baselines as bl
from agenticrec.evals.baselines_eval import baseline_table, paired, user_ndcg
from agenticrec.graphs._teacher_workspace import workspace
from agenticrec.tools.graph import InteractionGraph
from agenticrec.tools.metrics import ndcg
from agenticrec.workspace import data_workspace


def test_sampled_candidates_are_the_teachers():
    p = bl.part("ml-latest-small", "test", ["sampled:99"], seed=0)
    ws = workspace("ml-latest-small", "sampled:99", 0)
    cands, tpos = p.sampled["sampled:99"]
    np.testing.assert_array_equal(p.users, ws.users)
    np.testing.assert_array_equal(p.targets, ws.targets)
    np.testing.assert_array_equal(cands, ws.cands)
    np.testing.assert_array_equal(cands[np.arange(len(tpos)), tpos], ws.targets)
    assert p.graph is data_workspace("ml-latest-small").graph()


def test_validation_part_sees_train_only_and_holds_out_second_last():
    split = data_workspace("ml-latest-small").split
    p = bl.part("ml-latest-small", "valid", ["sampled:99"], seed=0)
    assert p.graph.n_edges == split.train.size
    _, valid_items = split.targets("valid")
    _, test_items = split.targets("test")
    np.testing.assert_array_equal(p.targets, valid_items)
    ptr, items = np.asarray(p.graph.user_ptr), np.asarray(p.graph.user_items)
    for r, u in enumerate(p.users[:50]):
        seen = items[ptr[u] : ptr[u + 1]]
        assert p.targets[r] not in seen and test_items[r] not in seen


def _tiny_graph():
    users = np.array([0, 0, 1, 1, 1, 2, 2])
    items = np.array([0, 1, 1, 2, 3, 0, 3])
    return InteractionGraph.from_interactions(users, items, 3, 5)


def test_full_scores_mask_seen_items_and_rank_whole_catalogue():
    g = _tiny_graph()
    sc = bl.full_scores("popularity", g, np.array([0, 2]))
    assert sc.shape == (2, 5)
    assert np.isneginf(sc[0, [0, 1]]).all() and np.isneginf(sc[1, [0, 3]]).all()
    assert sc[0, 4] == 0.0  # an item nobody touched is still ranked
    p = bl.Part("test", g, np.array([0, 2]), np.array([3, 2]), {})
    r = bl.protocol_ranks(sc, p, ["full"])["full"]
    # user 0: pop = [2, 2, 1, 2, 0]; item 3 (pop 2) ties nothing unseen -> 0
    # user 2: item 2 (pop 1) after item 1 (pop 2), tied with none -> 1
    np.testing.assert_array_equal(r, [0, 1])


def test_tune_picks_the_best_validation_point(monkeypatch):
    calls = []

    def fake(g, users, a):
        calls.append(a)
        sc = np.zeros((len(users), g.n_items), np.float32)
        sc[:, 4] = a  # only a = 2 puts the target first
        return sc

    monkeypatch.setitem(bl.SCORERS, "fake", fake)
    monkeypatch.setitem(bl.GRIDS, "fake", {"a": (-1.0, 2.0)})
    g = _tiny_graph()
    valid = bl.Part("valid", g, np.array([0]), np.array([4]), {})
    best, trials = bl.tune("fake", valid, ["full"])["full"]
    assert best == {"a": 2.0} and calls == [-1.0, 2.0]
    # a = -1: items 2 and 3 (unseen, score 0) rank above the target
    assert [v for _, v in trials] == [ndcg(np.array([2]), 10), 1.0]


def test_paired_counts_users_and_refuses_misaligned():
    a = np.array([0, 5, 20, 1])
    b = np.array([1, 5, 0, 30])
    out = paired(a, b)
    assert (out["better"], out["worse"], out["ties"]) == (2, 1, 1)
    assert 0.0 < out["p"] <= 1.0
    assert np.isnan(paired(a, a)["p"])
    with pytest.raises(ValueError, match="same users"):
        paired(a, b[:3])
    np.testing.assert_allclose(user_ndcg(np.array([0, 9, 10])), [1, 1 / np.log2(11), 0])


@pytest.mark.slow
def test_ease_and_als_beat_popularity_on_ml100k(shared_data, monkeypatch):
    pytest.importorskip("implicit")
    monkeypatch.setitem(bl.GRIDS, "ease", {"lam": (50.0, 500.0)})
    monkeypatch.setitem(bl.GRIDS, "als", {"factors": (32,), "alpha": (10.0,)})
    name = str(shared_data / "ml-100k")
    res = bl.run_baselines(
        name, ["full", "sampled:99"], users=300, methods=("popularity", "ease", "als")
    )
    for proto in ("full", "sampled:99"):
        e, p = res["ease"][proto], res["popularity"][proto]
        assert e["users"].size == p["users"].size == 300
        assert e["params"]["lam"] in (50.0, 500.0) and e["valid_ndcg"] > 0
        assert e["NDCG@10"] > p["NDCG@10"]
        assert res["als"][proto]["NDCG@10"] > p["NDCG@10"]
    pop = res["popularity"]["full"]
    as_teacher = {"full": (pop["users"], pop["ranks"])}
    rows = baseline_table("ml-100k", res, as_teacher)
    assert rows[0].split("|")[4].strip() == "teacher"
    assert "vs EASE^R" in rows[0]
