"""Graph kernels against independent numpy / scipy / networkx references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from agenticrec.errors import ConfigError, DataValidationError
from agenticrec.tools import _graph_ops
from agenticrec.tools import graph as G

SEEDS = [0, 1, 2]
PATHS = [True, False]  # dense, sparse


def random_pairs(seed: int, n_users=30, n_items=25, n=230):
    """``n`` distinct random pairs plus 30 repeats; 3 users and 4 items get none.

    Every seed gives the same array shapes, so the kernels compile once.
    """
    rng = np.random.default_rng(seed)
    weights = np.repeat(rng.pareto(1.5, n_items - 4) + 0.1, n_users - 3)
    cells = rng.choice(weights.size, n, replace=False, p=weights / weights.sum())
    i, u = np.divmod(cells, n_users - 3)
    dup = rng.integers(0, n, 30)
    return np.r_[u, u[dup]], np.r_[i, i[dup]], n_users, n_items


def binary(u, i, n_users, n_items) -> np.ndarray:
    x = np.zeros((n_users, n_items), np.int64)
    x[u, i] = 1
    return x


def bipartite(x: np.ndarray) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(("u", v) for v in range(x.shape[0]))
    g.add_nodes_from(("i", j) for j in range(x.shape[1]))
    g.add_edges_from((("u", v), ("i", j)) for v, j in zip(*np.nonzero(x), strict=True))
    return g


def ranked(scores: np.ndarray, allowed: np.ndarray, n: int):
    """Reference top-n: positive allowed scores, larger first, ties to smaller id."""
    order = sorted((-s, j) for j, s in enumerate(scores) if allowed[j] and s > 0)[:n]
    ids = [j for _, j in order] + [-1] * (n - len(order))
    return np.array(ids), np.array([-s for s, _ in order] + [0.0] * (n - len(order)))


def assert_topn_close(ids, scores, ref_scores_full, ref_scores_sorted, rtol=1e-5):
    """Equal up to the order of near-ties: same sorted scores, and each returned
    id's reference score equals the score returned for it."""
    ids, scores = np.asarray(ids), np.asarray(scores)
    np.testing.assert_allclose(scores, ref_scores_sorted, rtol=rtol, atol=1e-6)
    got = np.where(ids >= 0, ref_scores_full[np.maximum(ids, 0)], 0.0)
    np.testing.assert_allclose(got, scores, rtol=rtol, atol=1e-6)
    assert len(set(ids[ids >= 0].tolist())) == int((ids >= 0).sum())


@pytest.fixture(scope="module", params=SEEDS)
def case(request):
    u, i, nu, ni = random_pairs(request.param)
    x = binary(u, i, nu, ni)
    graphs = {
        d: G.InteractionGraph.from_interactions(u, i, nu, ni, dense=d) for d in PATHS
    }
    return x, graphs


# --- building -------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_cooccurrence_counts_equal_scipy_gram_with_duplicates_counted_once(seed):
    u, i, nu, ni = random_pairs(seed)
    x = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(nu, ni))
    x.data[:] = 1.0  # duplicates summed by scipy: count them once
    ref = (x.T @ x).toarray()
    got = G.cooccurrence_counts(jnp.asarray(u), jnp.asarray(i), nu, ni)
    np.testing.assert_array_equal(np.asarray(got), ref)


def test_cooccurrence_counts_in_user_blocks_and_symmetric_item_blocks():
    rng = np.random.default_rng(7)
    nu, ni = 53, 2100  # 2 symmetric item blocks; 53 users in blocks of 8
    u, i = rng.integers(0, nu, 4000), rng.integers(0, ni, 4000)
    ref = binary(u, i, nu, ni)
    ref = ref.T @ ref
    for block in (None, 8, 53):
        got = G.cooccurrence_counts(jnp.asarray(u), jnp.asarray(i), nu, ni, block)
        np.testing.assert_array_equal(np.asarray(got), ref)


def test_graph_stats_match_numpy(case):
    x, graphs = case
    for g in graphs.values():
        np.testing.assert_array_equal(np.asarray(g.popularity), x.sum(0))
        np.testing.assert_array_equal(np.asarray(g.activity), x.sum(1))
        assert g.exact and g.n_edges == x.sum()
        assert g.max_activity >= x.sum(1).max() and g.max_activity % 32 == 0
        for user in (0, x.shape[0] - 1):
            np.testing.assert_array_equal(g.history(user), np.nonzero(x[user])[0])
    assert graphs[True].dense and not graphs[False].dense
    np.testing.assert_array_equal(np.asarray(graphs[True].counts), x.T @ x)


def test_recency_and_decayed_popularity_match_numpy():
    rng = np.random.default_rng(3)
    items = rng.integers(0, 6, 50)
    stamps = rng.uniform(0, 1000, 50)
    last = np.full(8, -np.inf)
    np.maximum.at(last, items, stamps)
    got = G.last_interaction(jnp.asarray(items), jnp.asarray(stamps), 8)
    np.testing.assert_allclose(np.asarray(got), last, rtol=1e-6)
    age = stamps.max() - stamps
    ref = np.bincount(items, weights=0.5 ** (age / 100.0), minlength=8)
    got = G.decayed_popularity(jnp.asarray(items), jnp.asarray(age), 8, 100.0)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5)
    np.testing.assert_array_equal(
        np.asarray(G.degree(jnp.asarray(items), 8)), np.bincount(items, minlength=8)
    )


def test_graph_trend_counts_each_user_once_at_their_latest_interaction():
    users = np.array([0, 0, 1, 2])
    items = np.array([0, 0, 0, 1])
    stamps = np.array([0.0, 100.0, 100.0, 50.0])  # user 0 saw item 0 twice
    g = G.InteractionGraph.from_interactions(
        users, items, timestamps=stamps, half_life=50.0
    )
    np.testing.assert_allclose(np.asarray(g.trend), [2.0, 0.5])
    np.testing.assert_allclose(np.asarray(g.last_seen), [100.0, 50.0])
    np.testing.assert_array_equal(np.asarray(g.popularity), [2, 1])


@pytest.mark.parametrize(
    ("users", "items", "kwargs", "error", "match"),
    [
        ([0, -1], [0, 1], {}, ConfigError, r"user_idx\[1\] = -1"),
        ([0, 1], [0, 5], {"n_items": 5}, ConfigError, r"item_idx\[1\] = 5"),
        ([0, 1], [0.0, 1.0], {}, ConfigError, "integers"),
        ([0, 1], [0], {}, ConfigError, "2 entries"),
        ([[0]], [[0]], {}, ConfigError, "1-D"),
        ([], [], {}, DataValidationError, "no interactions"),
    ],
)
def test_from_interactions_rejects_bad_ids_naming_the_field(
    users, items, kwargs, error, match
):
    with pytest.raises(error, match=match):
        G.InteractionGraph.from_interactions(users, items, **kwargs)


def test_dense_switch_over_follows_budget_and_density():
    u, i, nu, ni = random_pairs(0)
    assert G.InteractionGraph.from_interactions(u, i, nu, ni).dense
    small = G.InteractionGraph.from_interactions(u, i, nu, ni, dense_bytes=1000)
    assert not small.dense and small.x is None
    rng = np.random.default_rng(0)
    sparse_u, sparse_i = rng.integers(0, 50, 60), rng.integers(0, 900, 60)
    assert not G.InteractionGraph.from_interactions(sparse_u, sparse_i).dense


# --- co-occurrence queries ---------------------------------------------------


def reference_recommend(x, users, n):
    c = x.T @ x
    out_ids, out_scores = [], []
    for u in users:
        s = x[u] @ c if 0 <= u < x.shape[0] else np.zeros(x.shape[1])
        seen = x[u] > 0 if 0 <= u < x.shape[0] else np.zeros(x.shape[1], bool)
        ids, scores = ranked(s, ~seen, n)
        out_ids.append(ids)
        out_scores.append(scores)
    return np.array(out_ids), np.array(out_scores)


@pytest.mark.parametrize("dense", PATHS)
def test_recommend_cooccurring_equals_numpy_for_all_users_batched(case, dense):
    x, graphs = case
    users = np.arange(x.shape[0])
    res = G.recommend_cooccurring(graphs[dense], jnp.asarray(users), 6)
    ref_ids, ref_scores = reference_recommend(x, users, 6)
    np.testing.assert_array_equal(np.asarray(res.ids), ref_ids)
    np.testing.assert_array_equal(np.asarray(res.scores), ref_scores)


@pytest.mark.parametrize("dense", PATHS)
def test_recommend_cooccurring_unbatched_equals_batched_row(case, dense):
    _, graphs = case
    g = graphs[dense]
    batch = G.recommend_cooccurring(g, jnp.arange(5), 4)
    one = G.recommend_cooccurring(g, 3, 4)
    assert one.ids.shape == (4,)
    np.testing.assert_array_equal(np.asarray(one.ids), np.asarray(batch.ids[3]))
    np.testing.assert_array_equal(np.asarray(one.scores), np.asarray(batch.scores[3]))


@pytest.mark.parametrize("dense", PATHS)
def test_two_hop_paths_equal_networkx_simple_path_enumeration(dense):
    u, i, nu, ni = random_pairs(4, n_users=14, n_items=12, n=50)
    x = binary(u, i, nu, ni)
    graph = bipartite(x)
    g = G.InteractionGraph.from_interactions(u, i, nu, ni, dense=dense)
    res = G.two_hop_paths(g, jnp.arange(nu), 5)
    for user in range(nu):
        paths = np.zeros(ni)
        via = [set() for _ in range(ni)]
        seen = x[user] > 0
        for j in np.nonzero(~seen)[0]:
            for p in nx.all_simple_paths(graph, ("u", user), ("i", int(j)), cutoff=3):
                if len(p) == 4:
                    paths[j] += 1
                    via[j].add(p[2])
        ids, scores = ranked(paths, ~seen, 5)
        np.testing.assert_array_equal(np.asarray(res.ids[user]), ids)
        np.testing.assert_array_equal(np.asarray(res.paths[user]), scores)
        want_via = [len(via[j]) if j >= 0 else 0 for j in ids]
        np.testing.assert_array_equal(np.asarray(res.via_users[user]), want_via)


def test_ties_go_to_the_smaller_item_id_and_short_lists_pad_with_minus_one():
    users = np.array([0, 1, 1, 2, 2, 3, 3])
    items = np.array([0, 0, 3, 0, 1, 0, 2])  # items 1, 2, 3 each one path from 0
    for dense in PATHS:
        g = G.InteractionGraph.from_interactions(users, items, 5, 6, dense=dense)
        res = G.recommend_cooccurring(g, jnp.array([0, 4, -1]), 8)
        np.testing.assert_array_equal(res.ids[0], [1, 2, 3, -1, -1, -1, -1, -1])
        np.testing.assert_array_equal(res.scores[0], [1, 1, 1, 0, 0, 0, 0, 0])
        np.testing.assert_array_equal(res.ids[1:], -1)  # no history, padding id
        np.testing.assert_array_equal(res.scores[1:], 0)


@pytest.mark.parametrize("dense", PATHS)
def test_empty_query_batch_and_n_beyond_catalogue(case, dense):
    x, graphs = case
    g = graphs[dense]
    empty = G.recommend_cooccurring(g, jnp.zeros((0,), jnp.int32), 3)
    assert empty.ids.shape == (0, 3) and empty.scores.shape == (0, 3)
    big = G.recommend_cooccurring(g, jnp.arange(4), x.shape[1] + 7)
    ref_ids, _ = reference_recommend(x, np.arange(4), x.shape[1] + 7)
    np.testing.assert_array_equal(np.asarray(big.ids), ref_ids)
    assert G.top_cooccurring(g, jnp.zeros((0, 2), jnp.int32), 3).ids.shape == (0, 3)
    assert G.user_neighbours(g, jnp.zeros((0,), jnp.int32), 3).ids.shape == (0, 3)


def test_never_interacted_items_are_never_recommended(case):
    x, graphs = case
    cold = np.nonzero(x.sum(0) == 0)[0]
    assert cold.size >= 4
    for g in graphs.values():
        ids = np.asarray(G.recommend_cooccurring(g, jnp.arange(x.shape[0]), 30).ids)
        assert not np.isin(ids, cold).any()


@pytest.mark.parametrize("measure", G.MEASURES)
@pytest.mark.parametrize("dense", PATHS)
def test_top_cooccurring_measures_equal_numpy(case, measure, dense):
    x, graphs = case
    g = graphs[dense]
    nu = x.shape[0]
    c = (x.T @ x).astype(float)
    pop = np.diag(c)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = {
            "count": c,
            "lift": c * nu / np.outer(pop, pop),
            "cosine": c / np.sqrt(np.outer(pop, pop)),
            "jaccard": c / (pop[:, None] + pop[None, :] - c),
        }[measure]
    m = np.nan_to_num(m)
    np.testing.assert_allclose(
        np.asarray(
            G.cooccurrence_measure(jnp.asarray(c), jnp.asarray(pop), nu, measure)
        ),
        m,
        rtol=1e-5,
    )
    sets = np.array([[0, 1, -1], [2, -1, -1], [3, 4, 5], [23, -1, -1]])
    res = G.top_cooccurring(g, jnp.asarray(sets), 5, measure, min_count=2.0)
    for r, s in enumerate(sets):
        s = s[s >= 0]
        total = c[s].sum(0)
        allowed = ~np.isin(np.arange(c.shape[0]), s) & (total >= 2)
        score = m[s].sum(0)
        ref_ids, ref_scores = ranked(score, allowed, 5)
        assert_topn_close(res.ids[r], res.scores[r], score * allowed, ref_scores)
        ids = np.asarray(res.ids[r])
        want_total = np.where(ids >= 0, total[np.maximum(ids, 0)], 0)
        np.testing.assert_array_equal(np.asarray(res.co_counts[r]), want_total)
        pairs = np.asarray(res.pair_counts[r])  # [n, k]
        for col, item in enumerate(sets[r]):
            want = np.where((ids >= 0) & (item >= 0), c[max(item, 0)][ids], 0)
            np.testing.assert_array_equal(pairs[:, col], want)
    one = G.top_cooccurring(g, jnp.array([0, 1, -1]), 5, measure, min_count=2.0)
    np.testing.assert_array_equal(np.asarray(one.ids), np.asarray(res.ids[0]))


def test_pair_measures_of_zero_count_are_zero():
    m = G.pair_measures(jnp.zeros(3), jnp.array([0.0, 1, 2]), jnp.zeros(3), 10)
    for v in m:
        np.testing.assert_array_equal(np.asarray(v), 0.0)


# --- user neighbours ---------------------------------------------------------


def reference_cosine(x):
    shared = (x @ x.T).astype(float)
    act = x.sum(1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.nan_to_num(shared / np.sqrt(np.outer(act, act)))
    np.fill_diagonal(cos, 0.0)
    return cos, shared


@pytest.mark.parametrize("dense", PATHS)
def test_user_neighbours_equal_numpy_cosine(case, dense):
    x, graphs = case
    cos, shared = reference_cosine(x)
    res = G.user_neighbours(graphs[dense], jnp.arange(x.shape[0]), 5)
    for u in range(x.shape[0]):
        _, ref_scores = ranked(cos[u], np.ones(x.shape[0], bool), 5)
        assert_topn_close(res.ids[u], res.cosine[u], cos[u], ref_scores)
        ids = np.asarray(res.ids[u])
        assert u not in ids
        want = np.where(ids >= 0, shared[u][np.maximum(ids, 0)], 0)
        np.testing.assert_array_equal(np.asarray(res.shared[u]), want)


@pytest.mark.parametrize("dense", PATHS)
def test_neighbour_items_equal_numpy_user_knn(case, dense):
    x, graphs = case
    cos, _ = reference_cosine(x)
    k, n = 4, 5
    best, support = G.neighbour_items(graphs[dense], jnp.arange(x.shape[0]), k, n)
    nb = G.user_neighbours(graphs[dense], jnp.arange(x.shape[0]), k)
    for u in range(x.shape[0]):
        nbrs = [v for v in np.asarray(nb.ids[u]) if v >= 0]
        # the neighbours themselves are checked above; score with them here
        score = cos[u, nbrs] @ x[nbrs] if nbrs else np.zeros(x.shape[1])
        votes = x[nbrs].sum(0) if nbrs else np.zeros(x.shape[1])
        _, ref_scores = ranked(score, x[u] == 0, n)
        assert_topn_close(best.ids[u], best.scores[u], score * (x[u] == 0), ref_scores)
        ids = np.asarray(best.ids[u])
        want = np.where(ids >= 0, votes[np.maximum(ids, 0)], 0)
        np.testing.assert_array_equal(np.asarray(support[u]), want)


# --- random walk -------------------------------------------------------------


@pytest.mark.parametrize("dense", PATHS)
@pytest.mark.parametrize("seed", SEEDS)
def test_personalized_pagerank_equals_networkx(seed, dense):
    u, i, nu, ni = random_pairs(seed, n_users=20, n_items=15, n=90)
    x = binary(u, i, nu, ni)
    g = G.InteractionGraph.from_interactions(u, i, nu, ni, dense=dense)
    graph = bipartite(x)
    rng = np.random.default_rng(seed)
    restart = rng.uniform(size=(9, ni)) * (rng.uniform(size=(9, ni)) < 0.4)
    restart[0] = 0.0
    restart[0, ni - 1] = 1.0  # a node with no edge: all its mass dangles
    restart[1] = x[2]  # restart at a user's items
    res = G.personalized_pagerank(
        g, jnp.asarray(restart), alpha=0.8, max_iter=300, tol=1e-7
    )
    for r in range(restart.shape[0]):
        pers = {("i", j): restart[r, j] for j in range(ni) if restart[r, j] > 0}
        ref = nx.pagerank(
            graph, alpha=0.8, personalization=pers, tol=1e-12, max_iter=2000
        )
        np.testing.assert_allclose(
            np.asarray(res.items[r]), [ref["i", j] for j in range(ni)], atol=2e-6
        )
        np.testing.assert_allclose(
            np.asarray(res.users[r]), [ref["u", v] for v in range(nu)], atol=2e-6
        )
    one = G.personalized_pagerank(
        g, jnp.asarray(restart[1]), alpha=0.8, tol=1e-7, max_iter=300
    )
    np.testing.assert_allclose(
        np.asarray(one.items), np.asarray(res.items[1]), atol=1e-6
    )


def test_ppr_recommend_ranks_unseen_items_by_walk_mass(case):
    x, graphs = case
    users = np.r_[0:6, x.shape[0] - 1]  # the last user has no history
    for g in graphs.values():
        res = G.ppr_recommend(g, jnp.asarray(users), 6, alpha=0.85, tol=1e-7)
        rows = G.history_rows(g, jnp.asarray(users))
        walk = G.personalized_pagerank(g, rows, alpha=0.85, tol=1e-7)
        for r, u in enumerate(users):
            mass = np.asarray(walk.items[r])
            _, ref_scores = ranked(mass, x[u] == 0, 6)
            assert_topn_close(res.ids[r], res.scores[r], mass * (x[u] == 0), ref_scores)
        np.testing.assert_array_equal(np.asarray(res.ids[-1]), -1)


def test_walk_rejects_alpha_outside_unit_interval(case):
    _, graphs = case
    with pytest.raises(ConfigError, match="alpha"):
        G.ppr_recommend(graphs[True], jnp.arange(2), 3, alpha=1.0)


# --- paths, chunking, export -------------------------------------------------


def test_dense_and_sparse_paths_agree_on_ml_latest_small(ml_small):
    u, i, nu, ni = ml_small
    dense = G.InteractionGraph.from_interactions(u, i, nu, ni, dense=True)
    sparse = G.InteractionGraph.from_interactions(u, i, nu, ni, dense=False)
    users = jnp.arange(0, nu, 37)
    a = G.recommend_cooccurring(dense, users, 20)
    b = G.recommend_cooccurring(sparse, users, 20)
    np.testing.assert_array_equal(np.asarray(a.ids), np.asarray(b.ids))
    np.testing.assert_array_equal(np.asarray(a.scores), np.asarray(b.scores))
    x = sp.csr_matrix((np.ones(u.size), (u, i)), shape=(nu, ni))
    x.data[:] = 1
    s = (x[np.asarray(users)] @ (x.T @ x)).toarray()
    seen = x[np.asarray(users)].toarray() > 0
    for r in range(len(users)):
        ids, scores = ranked(s[r], ~seen[r], 20)
        np.testing.assert_array_equal(np.asarray(a.ids[r]), ids)
        np.testing.assert_array_equal(np.asarray(a.scores[r]), scores)
    na = G.user_neighbours(dense, users, 10)
    nb = G.user_neighbours(sparse, users, 10)
    np.testing.assert_allclose(np.asarray(na.cosine), np.asarray(nb.cosine), rtol=1e-6)


@pytest.fixture(scope="module")
def ml_small():
    import importlib.resources as resources

    path = resources.files("agenticrec.data") / "ml-latest-small" / "ratings.csv"
    raw = np.loadtxt(str(path), delimiter=",", skiprows=1, usecols=(0, 1))
    _, u = np.unique(raw[:, 0].astype(np.int64), return_inverse=True)
    _, i = np.unique(raw[:, 1].astype(np.int64), return_inverse=True)
    keep = i < 3000  # the 3,000 oldest movies: a dense C of 36 MB
    return u[keep], i[keep], int(u.max()) + 1, 3000


@pytest.mark.parametrize("dense", PATHS)
def test_small_chunks_give_the_same_results(dense, monkeypatch):
    u, i, nu, ni = random_pairs(5)
    g = G.InteractionGraph.from_interactions(u, i, nu, ni, dense=dense)
    users = jnp.arange(nu)
    whole = G.recommend_cooccurring(g, users, 7)
    walk = G.ppr_recommend(g, users, 7, tol=1e-7)
    monkeypatch.setattr(_graph_ops, "_CHUNK_ELEMENTS", 4 * max(g.n_edges, 60))
    jax.clear_caches()
    assert _graph_ops.chunk_size(g, g.n_items) < nu
    chunked = G.recommend_cooccurring(g, users, 7)
    np.testing.assert_array_equal(np.asarray(chunked.ids), np.asarray(whole.ids))
    np.testing.assert_array_equal(np.asarray(chunked.scores), np.asarray(whole.scores))
    chunked_walk = G.ppr_recommend(g, users, 7, tol=1e-7)
    np.testing.assert_allclose(
        np.asarray(chunked_walk.scores), np.asarray(walk.scores), atol=1e-6
    )
    monkeypatch.undo()
    jax.clear_caches()


def test_map_chunks_pads_and_trims():
    rows = jnp.arange(10)
    out = _graph_ops.map_chunks(lambda r: (r * 2, r[:, None] + 1), rows, 4)
    np.testing.assert_array_equal(np.asarray(out[0]), np.arange(10) * 2)
    assert out[1].shape == (10, 1)


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_kernels_reject_bad_n(case, bad):
    _, graphs = case
    with pytest.raises(ConfigError, match="n must be"):
        G.recommend_cooccurring(graphs[True], jnp.arange(2), bad)


def test_kernels_reject_float_user_ids(case):
    _, graphs = case
    with pytest.raises(ConfigError, match="integer ids"):
        G.recommend_cooccurring(graphs[True], jnp.array([0.0, 1.0]), 3)


def test_neighbourhood_graph_exports_history_neighbours_and_candidates(case):
    x, graphs = case
    g = graphs[True]
    out = G.neighbourhood_graph(
        g, 0, n_users=3, n_items=4, titles=[f"t{j}" for j in range(x.shape[1])]
    )
    hist = set(np.nonzero(x[0])[0].tolist())
    items = {n[1]: d for n, d in out.nodes(data=True) if n[0] == "item"}
    assert {j for j, d in items.items() if d["role"] == "history"} == hist
    assert len([j for j, d in items.items() if d["role"] == "candidate"]) == 4
    assert all(d["title"] == f"t{j}" for j, d in items.items())
    users = [n[1] for n in out if n[0] == "user"]
    assert users[0] == 0 and len(users) == 4
    for a, b in out.edges:
        user, item = (a, b) if a[0] == "user" else (b, a)
        assert x[user[1], item[1]] == 1
    assert out.degree[("user", 0)] == len(hist)
    with pytest.raises(ConfigError, match="out of range"):
        G.neighbourhood_graph(g, x.shape[0])
