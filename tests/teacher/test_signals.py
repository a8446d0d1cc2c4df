"""Per-candidate signal kernels against numpy and networkx references."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest

from agenticrec.tools.graph import InteractionGraph
from agenticrec.tools.signals import (
    cooccurrence_scores,
    cooccurrence_support,
    neighbour_support,
    walk_support,
)


def random_graph(seed: int, n_users=40, n_items=30, density=0.15, dense=True):
    rng = np.random.default_rng(seed)
    x = rng.random((n_users, n_items)) < density
    x[0] = False  # a user with no history
    x[:, 5] = False  # an item nobody touched
    u, i = np.nonzero(x)
    # duplicates count once
    u, i = np.r_[u, u[:5]], np.r_[i, i[:5]]
    g = InteractionGraph.from_interactions(u, i, n_users, n_items, dense=dense)
    if dense is None:  # dense interactions, sparse co-occurrence (ml-latest-small)
        g = dataclasses.replace(
            InteractionGraph.from_interactions(u, i, n_users, n_items, dense=True),
            counts=None,
        )
        assert g.x is not None
    return g, x.astype(np.float64)


def pad(rows, width):
    out = np.full((len(rows), width), -1, np.int32)
    for r, v in enumerate(rows):
        out[r, : len(v)] = v
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dense", [True, False, None])
def test_cooccurrence_support_matches_numpy(seed, dense):
    g, x = random_graph(seed, dense=dense)
    c = x.T @ x
    rng = np.random.default_rng(100 + seed)
    users = [0, 1, 2, 3, 7]
    sets = [np.flatnonzero(x[u]) for u in users]
    cands = rng.integers(0, x.shape[1], (len(users), 8)).astype(np.int32)
    cands[1, -2:] = -1  # padding
    out = cooccurrence_support(g, jnp.asarray(pad(sets, 16)), jnp.asarray(cands))
    only = cooccurrence_scores(g, jnp.asarray(pad(sets, 16)), jnp.asarray(cands))
    for r, (s, cs) in enumerate(zip(sets, cands, strict=True)):
        ref = np.array([c[s, j].sum() if j >= 0 else 0 for j in cs])
        np.testing.assert_allclose(np.asarray(out.score[r]), ref)
        np.testing.assert_allclose(np.asarray(only[r]), ref)
        if dense is False:  # fully sparse graph: scores only
            continue
        for col, j in enumerate(cs):
            if j < 0 or s.size == 0 or c[s, j].max() == 0:
                assert int(out.via[r, col]) == -1
                continue
            best = s[np.argmax(c[s, j])]  # first max: smallest id (s is sorted)
            assert int(out.via[r, col]) == best
            assert float(out.via_count[r, col]) == c[best, j]
            lift = c[best, j] * x.shape[0] / (c[best, best] * c[j, j])
            np.testing.assert_allclose(float(out.via_lift[r, col]), lift, rtol=1e-5)


@pytest.mark.parametrize("seed", [0, 3])
def test_neighbour_support_matches_bruteforce(seed):
    g, x = random_graph(seed)
    users = np.array([1, 2, 9], np.int32)
    cands = np.tile(np.arange(x.shape[1], dtype=np.int32), (3, 1))
    k = 5
    out = neighbour_support(g, jnp.asarray(users), jnp.asarray(cands), k=k)
    act = x.sum(1)
    for r, u in enumerate(users):
        shared = x @ x[u]
        cos = np.where(shared > 0, shared / np.sqrt(np.maximum(act * act[u], 1)), 0)
        cos[u] = -1
        order = np.lexsort((np.arange(len(cos)), -cos))
        nb = [v for v in order[:k] if cos[v] > 0]
        score = sum(cos[v] * x[v] for v in nb) if nb else np.zeros(x.shape[1])
        votes = sum(x[v] for v in nb) if nb else np.zeros(x.shape[1])
        np.testing.assert_allclose(np.asarray(out.score[r]), score, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(out.votes[r]), votes)
        assert int(out.k_found[r]) == len(nb)


def test_walk_support_matches_networkx_pagerank():
    g, x = random_graph(4)
    user = 3
    cands = np.arange(x.shape[1], dtype=np.int32)[None]
    got = np.asarray(
        walk_support(
            g, jnp.asarray([user], jnp.int32), jnp.asarray(cands), max_iter=200
        )
    )[0]
    G = nx.Graph()
    G.add_nodes_from([("u", i) for i in range(x.shape[0])])
    G.add_nodes_from([("i", j) for j in range(x.shape[1])])
    G.add_edges_from((("u", a), ("i", b)) for a, b in zip(*np.nonzero(x), strict=True))
    hist = np.flatnonzero(x[user])
    pers = {n: 0.0 for n in G}
    for j in hist:
        pers[("i", j)] = 1.0 / len(hist)
    pr = nx.pagerank(G, alpha=0.85, personalization=pers, tol=1e-12, max_iter=1000)
    ref = np.array([pr[("i", j)] for j in range(x.shape[1])])
    np.testing.assert_allclose(got, ref, atol=2e-5)


def test_padded_candidates_score_zero_and_empty_history_scores_nothing():
    g, x = random_graph(5)
    out = cooccurrence_support(
        g, jnp.full((1, 8), -1, jnp.int32), jnp.asarray([[1, 2, -1]], jnp.int32)
    )
    assert np.all(np.asarray(out.score) == 0) and np.all(np.asarray(out.via) == -1)
