"""EASE^R and ItemKNN kernels against independent numpy / scipy references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from agenticrec.tools import baselines, ease, itemknn
from agenticrec.tools.graph import InteractionGraph


def _random(seed: int, n_users=40, n_items=30, n=400, dead=(7,)):
    """A random graph whose catalogue has items nobody touched (``dead``)."""
    rng = np.random.default_rng(seed)
    alive = np.setdiff1d(np.arange(n_items), dead)
    u = rng.integers(0, n_users, n)
    i = rng.choice(alive, n)
    g = InteractionGraph.from_interactions(u, i, n_users, n_items)
    x = sp.csr_matrix((np.ones(n), (u, i)), shape=(n_users, n_items))
    x.data[:] = 1.0  # duplicates count once
    x.sum_duplicates()
    x.data[:] = 1.0
    return g, x


def _ease_ref(x: sp.csr_matrix, lam: float) -> np.ndarray:
    gram = (x.T @ x).toarray().astype(np.float64)
    p = np.linalg.inv(gram + lam * np.eye(gram.shape[0]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def _cosine_ref(x: sp.csr_matrix, shrink: float = 0.0) -> np.ndarray:
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())
    if shrink == 0.0:
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        xn = x @ sp.diags(inv)
        s = (xn.T @ xn).toarray()
    else:
        den = np.outer(norms, norms) + shrink
        s = (x.T @ x).toarray() / den
    np.fill_diagonal(s, 0.0)
    return s


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lam", [0.5, 20.0, 3000.0])
def test_ease_weights_match_numpy_inverse(seed, lam):
    _, x = _random(seed)
    gram = (x.T @ x).toarray().astype(np.float32)
    got = np.asarray(ease.ease_weights(gram, lam))
    ref = _ease_ref(x, lam)
    assert_allclose(got, ref, atol=2e-4 * np.abs(ref).max(), rtol=1e-3)
    assert np.all(np.diag(got) == 0)


def test_ease_weights_batched_equal_one_by_one():
    grams = np.stack(
        [(x.T @ x).toarray() for x in (_random(s)[1] for s in range(3))]
    ).astype(np.float32)
    batched = np.asarray(ease.ease_weights(grams, 10.0))
    assert batched.shape == grams.shape
    for b, gm in zip(batched, grams, strict=True):
        assert_allclose(b, np.asarray(ease.ease_weights(gm, 10.0)), atol=1e-6)


@pytest.mark.parametrize("lam", [0.0, -1.0, float("nan"), float("inf"), 1e8])
def test_ease_rejects_lam_out_of_bounds(lam):
    g, _ = _random(0)
    with pytest.raises(ValueError, match="lam"):
        ease.ease_weights(np.eye(3, dtype=np.float32), lam)
    with pytest.raises(ValueError, match="lam"):
        ease.ease_scores(g, np.arange(3), None, lam)


def test_ease_rejects_non_square_gram():
    with pytest.raises(ValueError, match="gram"):
        ease.ease_weights(np.zeros((3, 4), np.float32), 1.0)


def test_ease_scores_match_reference_full_and_on_candidates():
    g, x = _random(2)
    ref = x.toarray() @ _ease_ref(x, 15.0)
    users = np.arange(g.n_users)
    full = ease.ease_scores(g, users, None, 15.0)
    assert full.shape == (g.n_users, g.n_items)
    assert_allclose(full, ref, atol=1e-4)
    rng = np.random.default_rng(5)
    cands = rng.integers(-1, g.n_items, (g.n_users, 9))
    got = ease.ease_scores(g, users, cands, 15.0)
    want = np.take_along_axis(ref, np.clip(cands, 0, None), axis=1)
    assert np.all(np.isneginf(got[cands < 0]))
    assert_allclose(got[cands >= 0], want[cands >= 0], atol=1e-4)


def test_ease_item_without_interactions_scores_zero():
    g, x = _random(3, dead=(0, 7, 29))
    full = ease.ease_scores(g, np.arange(g.n_users), None, 5.0)
    assert np.all(full[:, [0, 7, 29]] == 0)
    assert_allclose(full, x.toarray() @ _ease_ref(x, 5.0), atol=1e-4)


def test_ease_one_user_equals_its_row_of_a_batch():
    g, _ = _random(4)
    batch = ease.ease_scores(g, np.arange(g.n_users), None, 50.0)
    one = ease.ease_scores(g, np.array([11]), None, 50.0)
    assert one.shape == (1, g.n_items)
    assert_allclose(one[0], batch[11], atol=1e-6)


def test_ease_fit_is_cached_by_graph_and_lam():
    g, _ = _random(5)
    _, w1 = ease.ease_fit(g, 30.0)
    _, w2 = ease.ease_fit(g, 30.0)
    _, w3 = ease.ease_fit(g, 31.0)
    g2, _ = _random(6)
    assert w1 is w2 and w3 is not w1
    assert itemknn.graph_fingerprint(g) != itemknn.graph_fingerprint(g2)
    other = InteractionGraph.from_interactions(
        np.asarray(g.edge_users), np.asarray(g.user_items), g.n_users, g.n_items
    )
    assert itemknn.graph_fingerprint(other) == itemknn.graph_fingerprint(g)


@pytest.mark.parametrize("shrink", [0.0, 10.0])
def test_cosine_scores_match_scipy_normalisation(shrink):
    g, x = _random(7)
    ref = x.toarray() @ _cosine_ref(x, shrink)
    got = itemknn.itemknn_scores(g, np.arange(g.n_users), shrink=shrink)
    assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_cosine_weights_batched_and_top_k_keep_each_columns_largest():
    xs = [_random(s)[1] for s in (8, 9)]
    grams = np.stack([(x.T @ x).toarray() for x in xs]).astype(np.float32)
    full = np.asarray(itemknn.cosine_weights(grams))
    for w, x in zip(full, xs, strict=True):
        assert_allclose(w, _cosine_ref(x), atol=1e-6)
    k = 4
    pruned = np.asarray(itemknn.cosine_weights(grams, k=k))
    for w, p in zip(full, pruned, strict=True):
        assert np.all((p == 0) | (p == w))
        assert np.all((p != 0).sum(axis=0) <= k)
        # ties make the kept set ambiguous, never the kept values
        assert_allclose(np.sort(p, axis=0)[-k:], np.sort(w, axis=0)[-k:], atol=1e-7)


def test_count_measure_is_the_projects_cooccurrence_itemknn():
    g, _ = _random(10)
    users = np.arange(g.n_users)
    rng = np.random.default_rng(0)
    cands = rng.integers(-1, g.n_items, (g.n_users, 6)).astype(np.int32)
    ptr = np.asarray(g.user_ptr)
    hist = np.asarray(g.user_items)
    old = baselines.itemknn_scores(g, ptr, hist, users, cands)
    new = itemknn.itemknn_scores(g, users, cands, measure="count")
    assert_allclose(new[cands >= 0], old[cands >= 0], atol=2e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"measure": "jaccard"}, "measure"),
        ({"shrink": -1.0}, "shrink"),
        ({"k": 0}, "k"),
    ],
)
def test_itemknn_rejects_bad_settings(kwargs, match):
    g, _ = _random(0)
    with pytest.raises(ValueError, match=match):
        itemknn.itemknn_scores(g, np.arange(2), **kwargs)


def test_scores_reject_candidates_of_other_users():
    g, _ = _random(0)
    with pytest.raises(ValueError, match="candidates"):
        ease.ease_scores(g, np.arange(3), np.zeros((2, 4), np.int32), 1.0)


def test_as_graph_accepts_workspaces_and_refuses_others():
    from agenticrec.workspace import data_workspace

    dw = data_workspace("ml-latest-small")
    assert itemknn.as_graph(dw) is dw.graph()
    with pytest.raises(TypeError, match="InteractionGraph"):
        itemknn.as_graph(object())
