"""Item-model kernels of :mod:`agenticrec.tools.item_models` against NumPy loops."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from agenticrec.tools import item_models as im
from agenticrec.tools.ease import ease_weights
from agenticrec.tools.graph import InteractionGraph

TOL = dict(rtol=1e-5, atol=1e-5)
SEEDS = [0, 1, 2, 3]


def _instance(seed, n_items=12, a=9, q=4, s=7, c=6):
    """Random model over ``a`` active items, histories and candidates with
    -1 pads, inactive items, repeated items and some exactly-zero entries."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(a, a)).astype(np.float32)
    m[rng.random((a, a)) < 0.3] = 0.0
    m[0] = 0.0  # an all-zero row
    pos = np.full(n_items, -1, np.int32)
    pos[rng.permutation(n_items)[:a]] = rng.permutation(a).astype(np.int32)
    hist = rng.integers(-1, n_items, (q, s)).astype(np.int32)
    hist[0, 1] = hist[0, 0]  # a repeated item
    hist[-1] = -1  # an empty history
    cands = rng.integers(-1, n_items, (q, c)).astype(np.int32)
    cands[0, 0] = hist[0, 0]  # a candidate in its own history
    w = rng.uniform(0.1, 1.0, (q, s)).astype(np.float32)
    scale = rng.uniform(0.2, 2.0, a).astype(np.float32)
    return m, pos, hist, w, cands, scale


def _active(pos, ids):
    return [(t, int(pos[i])) for t, i in enumerate(ids) if i >= 0 and pos[i] >= 0]


def _pair(m, i, j, scale):
    if scale is None:
        return float(m[i, j])
    return 0.0 if i == j else float(scale[i]) * float(m[i, j]) * float(scale[j])


def _candidates_ref(m, pos, hist, w, cands, scale=None):
    q, c = cands.shape
    score, value = np.zeros((q, c)), np.zeros((q, c))
    via = np.full((q, c), -1, np.int64)
    for r in range(q):
        for k, cid in enumerate(cands[r]):
            if cid < 0 or pos[cid] < 0:
                continue
            best = -np.inf
            for t, i in _active(pos, hist[r]):
                term = float(w[r, t]) * _pair(m, i, pos[cid], scale)
                score[r, k] += term
                if term > best:  # strict: the earlier position wins ties
                    best = term
                    if term > 0:
                        via[r, k], value[r, k] = hist[r, t], term
    return score, via, value


def _history_ref(m, pos, hist, w, scale=None):
    a = m.shape[0]
    x = np.zeros((hist.shape[0], a))
    for r in range(hist.shape[0]):
        for t, i in _active(pos, hist[r]):
            x[r, i] += w[r, t]
    mm = np.array([[_pair(m, i, j, scale) for j in range(a)] for i in range(a)])
    return x @ mm


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scaled", [False, True])
def test_candidate_scores_match_loop_reference_with_pads(seed, scaled):
    m, pos, hist, w, cands, scale = _instance(seed)
    sc = scale if scaled else None
    out = im.candidate_scores(m, pos, hist, w, cands, sc)
    score, via, value = _candidates_ref(m, pos, hist, w, cands, sc)
    assert_allclose(np.asarray(out.score), score, **TOL)
    assert_array_equal(np.asarray(out.via), via)
    assert_allclose(np.asarray(out.via_value), value, **TOL)
    assert np.all(np.asarray(out.score)[-1] == 0)  # empty history
    pad = (cands < 0) | (pos[np.maximum(cands, 0)] < 0)
    assert np.all(np.asarray(out.score)[pad] == 0)
    assert np.all(np.asarray(out.via)[pad] == -1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scaled", [False, True])
def test_candidate_scores_unbatched_equals_first_row(seed, scaled):
    m, pos, hist, w, cands, scale = _instance(seed)
    sc = scale if scaled else None
    full = im.candidate_scores(m, pos, hist, w, cands, sc)
    one = im.candidate_scores(m, pos, hist[0], w[0], cands[0], sc)
    for a, b in zip(one, full, strict=True):
        assert a.shape == (cands.shape[1],)
        assert_array_equal(np.asarray(a), np.asarray(b)[0])


def test_candidate_scores_ties_go_to_earlier_position():
    pos = np.array([0, 1, -1, 2, 3], np.int32)  # item 2 inactive
    m = np.ones((4, 4), np.float32)
    m[:, 3] = 0.0  # column of item 4: all-zero terms
    hist = np.array([[1, 3, 0, -1], [-1, 3, 1, 0], [2, 0, 3, -1]], np.int32)
    w = np.ones((3, 4), np.float32)
    cands = np.array([[0, 4, -1], [1, 4, 2], [3, 0, 4]], np.int32)
    out = im.candidate_scores(m, pos, hist, w, cands)
    assert_array_equal(np.asarray(out.via), [[1, -1, -1], [3, -1, -1], [0, 0, -1]])
    assert_allclose(np.asarray(out.via_value), [[1, 0, 0], [1, 0, 0], [1, 1, 0]])
    assert_allclose(np.asarray(out.score), [[3, 0, 0], [3, 0, 0], [2, 2, 0]])
    # cosine scale zeroes the self term: item 0 in its own history is skipped
    out = im.candidate_scores(m, pos, hist, w, cands, np.ones(4, np.float32))
    assert_array_equal(np.asarray(out.via)[0], [1, -1, -1])
    assert_allclose(np.asarray(out.score)[0], [2, 0, 0])


def test_candidate_scores_negative_terms_give_no_via():
    pos = np.arange(3, dtype=np.int32)
    m = -np.ones((3, 3), np.float32)
    out = im.candidate_scores(m, pos, np.array([0, 1]), np.ones(2), np.array([2]))
    assert int(out.via[0]) == -1 and float(out.via_value[0]) == 0.0
    assert_allclose(float(out.score[0]), -2.0, **TOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scaled", [False, True])
def test_history_scores_equal_weighted_vector_times_matrix(seed, scaled):
    m, pos, hist, w, cands, scale = _instance(seed)
    sc = scale if scaled else None
    full = np.asarray(im.history_scores(m, pos, hist, w, sc))
    assert_allclose(full, _history_ref(m, pos, hist, w, sc), **TOL)
    cand = np.asarray(im.candidate_scores(m, pos, hist, w, cands, sc).score)
    for r, k in zip(*np.nonzero(cands >= 0), strict=True):
        if pos[cands[r, k]] >= 0:
            assert_allclose(full[r, pos[cands[r, k]]], cand[r, k], **TOL)


def _weights_ref(lengths, width, decay, last):
    out = np.zeros((len(lengths), width))
    for r, n in enumerate(lengths):
        for t in range(min(n, width)):
            age = n - 1 - t
            if last <= 0 or age < last:
                out[r, t] = decay**age
    return out


@pytest.mark.parametrize(
    ("decay", "last"), [(0.5, 0), (0.8, 2), (1.0, 0), (1.0, 3), (0.9, 10)]
)
def test_history_weights_decay_by_age_and_cut_at_last(decay, last):
    lengths = np.array([0, 1, 3, 5, 6])
    got = im.history_weights(lengths, 6, decay, last)
    assert got.dtype == np.float32 and got.shape == (5, 6)
    assert_allclose(got, _weights_ref(lengths, 6, decay, last), **TOL)
    assert_allclose(im.history_weights(np.array([3]), 4, 0.5)[0], [0.25, 0.5, 1, 0])


def _transition_ref(ptr, items, pos, window):
    a = int(pos.max()) + 1
    t = np.zeros((a, a))
    for u in range(len(ptr) - 1):
        h = items[ptr[u] : ptr[u + 1]]
        for d in range(1, window + 1):
            for k in range(len(h) - d):
                i, j = pos[h[k]], pos[h[k + d]]
                if i >= 0 and j >= 0:
                    t[i, j] += 1.0 / d
    return t


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("window", [1, 2, 4])
def test_transition_matrix_matches_loop_within_users(seed, window):
    rng = np.random.default_rng(seed)
    n_items, a = 10, 7
    pos = np.full(n_items, -1, np.int64)
    pos[rng.permutation(n_items)[:a]] = rng.permutation(a)
    lengths = rng.integers(0, 7, 6)
    lengths[1] = 1
    ptr = np.concatenate([[0], np.cumsum(lengths)])
    items = rng.integers(0, n_items, ptr[-1])
    got = np.asarray(im.transition_matrix(ptr, items, pos, window))
    assert_allclose(got, _transition_ref(ptr, items, pos, window), **TOL)


def test_transition_matrix_never_crosses_users_and_rejects_window_zero():
    pos = np.arange(4)
    got = np.asarray(im.transition_matrix([0, 2, 4], [0, 1, 2, 3], pos, 3))
    want = np.zeros((4, 4))
    want[0, 1] = want[2, 3] = 1.0
    assert_allclose(got, want)
    with pytest.raises(ValueError, match="window"):
        im.transition_matrix([0, 2], [0, 1], pos, 0)


def _fit(seed, **kw):
    rng = np.random.default_rng(seed)
    n_users, n_items = 8, 7  # item 6 is never touched
    u = rng.integers(0, n_users, 40)
    i = rng.integers(0, n_items - 1, 40)
    g = InteractionGraph.from_interactions(u, i, n_users, n_items)
    order = np.argsort(u, kind="stable")
    ptr = np.searchsorted(u[order], np.arange(n_users + 1))
    args = dict(lam=3.0, recency=0.7, window=2, seq_decay=0.5, seq_last=3)
    args.update(kw)
    return im.fit_item_models(g, ptr, i[order], **args), u, i, ptr, i[order]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_item_models_ease_cosine_and_sequence_match_numpy(seed):
    models, u, i, ptr, seq = _fit(seed)
    x = np.zeros((8, 7))
    x[u, i] = 1.0
    active = np.flatnonzero(x.sum(0) > 0)
    assert_array_equal(models.gram.items, active)
    pos = np.asarray(models.pos)
    assert_array_equal(pos[active], np.arange(active.size))
    assert np.all(np.delete(pos, active) == -1)
    gram = x[:, active].T @ x[:, active]
    assert_allclose(np.asarray(models.gram.gram), gram, **TOL)
    p = np.linalg.inv(gram + 3.0 * np.eye(active.size))
    b = np.eye(active.size) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    mat, sc = models.matrix("ease")
    assert sc is None and models.matrix("recent_ease")[1] is None
    assert_allclose(np.asarray(mat), b, rtol=1e-4, atol=1e-5)
    assert_allclose(np.asarray(mat), np.asarray(ease_weights(gram, 3.0)), **TOL)
    g_mat, inv = models.matrix("cosine")
    cos = gram / np.sqrt(np.outer(np.diag(gram), np.diag(gram)))
    np.fill_diagonal(cos, 0.0)
    s = np.asarray(inv)
    got = s[:, None] * np.asarray(g_mat) * s[None, :] * (1 - np.eye(active.size))
    assert_allclose(got, cos, **TOL)
    hist = np.array([[active[0], active[-1], -1]], np.int32)
    h = im.history_scores(g_mat, models.pos, hist, np.ones((1, 3)), inv)
    assert_allclose(np.asarray(h)[0], cos[0] + cos[-1], **TOL)
    trans = np.asarray(models.matrix("sequence")[0])
    assert_allclose(trans, _transition_ref(ptr, seq, pos, 2), **TOL)
    wts = models.weights("sequence", np.array([5]), 5)
    assert_allclose(wts[0], [0, 0, 0.25, 0.5, 1.0], **TOL)
    assert_allclose(models.weights("cosine", np.array([2]), 3)[0], [1, 1, 0])


@pytest.mark.parametrize(
    "kw",
    [
        dict(recency=0.0),
        dict(recency=1.5),
        dict(seq_decay=0.0),
        dict(seq_decay=-0.2),
        dict(seq_decay=1.01),
        dict(seq_last=0),
    ],
)
def test_fit_item_models_rejects_bad_decays(kw):
    with pytest.raises(ValueError):
        _fit(0, **kw)


def test_matrix_rejects_unknown_model():
    models = _fit(0)[0]
    with pytest.raises(ValueError, match="unknown item model"):
        models.matrix("popularity")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sequence_tool_on_newest_items_equals_kernel_over_whole_history(seed):
    from agenticrec.tools.model_tools import model_evidence
    from agenticrec.tools.teacher_tools import EvidenceIndex

    models, u, i, ptr, seq = _fit(seed, seq_last=2)
    index = EvidenceIndex(
        graph=InteractionGraph.from_interactions(u, i, 8, 7),
        hist_ptr=ptr,
        hist_items=seq,
        titles=tuple(f"t{j}" for j in range(7)),
        categories=((),) * 7,
        models=models,
    )
    cands = np.arange(7, dtype=np.int32)
    user = int(np.argmax(np.diff(ptr)))  # the longest history
    hist = seq[ptr[user] : ptr[user + 1]]
    assert hist.size > 2  # the tool's query is shorter than the history
    mat, scale = models.matrix("sequence")
    w = models.weights("sequence", np.array([hist.size]), hist.size)
    want = im.candidate_scores(mat, models.pos, hist[None], w, cands[None], scale)
    got = model_evidence(index, "sequence", user, cands.tolist(), top=7)
    assert_allclose([s for _, s in got["scores"]], np.asarray(want.score)[0], atol=1e-5)
    via = {r["candidate"]: r["via"] for r in got["support"]}
    for c in via:
        assert via[c] == int(np.asarray(want.via)[0][c])
    assert got["last"] == 2
