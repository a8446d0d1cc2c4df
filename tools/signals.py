"""Per-candidate collaborative signals: the evidence a ranker weighs.

Graph queries in :mod:`agenticrec.tools.graph` rank the whole catalogue; an
agent ranking a given candidate list needs the same signals restricted to its
candidates, plus *which* history item supports each candidate, so the evidence
can be quoted ("412 users who rated A also rated B"). Every kernel here is
jitted and batched over query rows ``q`` with a fixed candidate width ``c``
(``-1`` pads), so one compilation serves every user of a protocol.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .graph import (
    InteractionGraph,
    history_rows,
    overlap,
    personalized_pagerank,
    propagate,
    spread,
    top_n,
)

__all__ = [
    "CoSupport",
    "item_user_matrix",
    "cooccurrence_scores",
    "NeighbourSupport",
    "cooccurrence_support",
    "neighbour_support",
    "walk_support",
]

_HIGHEST = jax.lax.Precision.HIGHEST


class CoSupport(NamedTuple):
    """Co-occurrence evidence for candidates from a set of history items."""

    score: jax.Array
    """f32[q, c] ``sum_{i in S} C[i, j]``: 2-hop paths from the set to ``j``."""
    via: jax.Array
    """i32[q, c] the history item with the largest count with ``j`` (ties:
    smaller id; ``-1`` when no history item co-occurs with ``j``)."""
    via_count: jax.Array
    """f32[q, c] ``C[via, j]``: users who interacted with both."""
    via_lift: jax.Array
    """f32[q, c] ``C[via, j] * n_users / (pop_via * pop_j)``."""


class NeighbourSupport(NamedTuple):
    """User-based kNN evidence for candidates."""

    score: jax.Array
    """f32[q, c] ``sum_{v in N_k(u)} cos(u, v) [j in H(v)]``."""
    votes: jax.Array
    """f32[q, c] how many of the ``k`` neighbours interacted with ``j``."""
    k_found: jax.Array
    """i32[q] neighbours found (users sharing at least one item)."""


def _marks(g: InteractionGraph, items: jax.Array) -> jax.Array:
    """f32[q, i] 0/1 rows marking each row's items (a scatter, never a one-hot
    of ``[q, s, i]``, which long histories would make gigabytes)."""
    q = items.shape[0]
    valid = (items >= 0) & (items < g.n_items)
    cols = jnp.where(valid, items, g.n_items)
    rows = jnp.arange(q, dtype=jnp.int32)[:, None]
    out = jnp.zeros((q, g.n_items + 1), jnp.float32).at[rows, cols].set(1.0)
    return out[:, : g.n_items]


def _take(values: jax.Array, cands: jax.Array, fill=0.0) -> jax.Array:
    safe = jnp.clip(cands, 0, values.shape[-1] - 1)
    got = jnp.take_along_axis(values, safe, axis=-1)
    return jnp.where(cands >= 0, got, fill)


@jax.jit
def cooccurrence_scores(
    g: InteractionGraph, items: jax.Array, cands: jax.Array
) -> jax.Array:
    """Only the ``score`` of :func:`cooccurrence_support`: f32[q, c] path counts.

    Batched scoring (baselines, pre-ranking) needs no ``via`` item, which is the
    costly part (a ``[q, c, s]`` gather and sort).
    """
    h = _marks(g, items)
    if g.counts is None:
        return _take(propagate(g, h), cands)
    cols = g.counts[jnp.clip(cands, 0, g.n_items - 1)]
    score = jnp.einsum("qci,qi->qc", cols, h, precision=_HIGHEST)
    return jnp.where(cands >= 0, score, 0.0)


def item_user_matrix(g: InteractionGraph) -> jax.Array:
    """f32[i, u] 0/1 item rows (``X.T``), for the row-gather fast paths.

    On CPU, gathering rows of a float32 ``X.T`` and multiplying small blocks is
    several times faster than column gathers from the bf16 ``X`` (XLA's CPU
    bf16 dot is emulated). Memory: ``4 * n_items * n_users`` bytes.
    """
    xt = jnp.zeros((g.n_items, g.n_users), jnp.float32)
    return xt.at[g.edge_items, g.item_users].set(1.0)


@jax.jit
def cooccurrence_support(
    g: InteractionGraph, items: jax.Array, cands: jax.Array, xt: jax.Array | None = None
) -> CoSupport:
    """Co-occurrence of each candidate with an item set.

    The pairwise counts ``C[S, cands]`` come from the dense interaction matrix
    (``X[:, S].T @ X[:, cands]``: ``u * s * c`` work, no ``[i, i]`` matrix),
    else from the dense co-occurrence matrix; on a fully sparse graph only
    ``score`` is computed and ``via`` is ``-1``. History sets must not repeat
    an item (leave-one-out histories are deduplicated).

    Args:
        g: the graph.
        items: i32[q, s] history item sets, ``-1`` pads.
        cands: i32[q, c] candidates, ``-1`` pads.
        xt: optional f32[i, u] from :func:`item_user_matrix` (fast path).

    Returns:
        :class:`CoSupport` of ``[q, c]`` arrays.
    """
    valid = (items >= 0) & (items < g.n_items)
    safe_s = jnp.clip(items, 0, g.n_items - 1)
    safe_c = jnp.clip(cands, 0, g.n_items - 1)
    if xt is not None:
        pair = jnp.einsum("qsu,qcu->qcs", xt[safe_s], xt[safe_c], precision=_HIGHEST)
    elif g.x is not None:
        xs = jnp.take(g.x, safe_s, axis=1)  # [u, q, s]
        xc = jnp.take(g.x, safe_c, axis=1)  # [u, q, c]
        pair = jnp.einsum("uqs,uqc->qcs", xs, xc, preferred_element_type=jnp.float32)
    elif g.counts is not None:
        cols = g.counts[safe_c]  # [q, c, i]: C symmetric, so rows are columns
        pair = jnp.take_along_axis(cols, safe_s[:, None, :], axis=2)  # [q, c, s]
    else:
        score = _take(propagate(g, _marks(g, items)), cands)
        neg = jnp.full(cands.shape, -1, jnp.int32)
        zero = jnp.zeros(cands.shape, jnp.float32)
        return CoSupport(score, neg, zero, zero)
    pair = jnp.where(valid[:, None, :], pair, 0.0)
    score = jnp.sum(pair, axis=2)
    # ties go to the smaller item id: order the set by id before argmax
    key = jnp.where(valid, safe_s, g.n_items)
    order = jnp.argsort(key, axis=1)
    masked = jnp.where(valid[:, None, :], pair, -1.0)
    pair_sorted = jnp.take_along_axis(masked, order[:, None, :], axis=2)
    best = jnp.argmax(pair_sorted, axis=2)
    via = jnp.take_along_axis(jnp.take_along_axis(items, order, 1), best, axis=1)
    via_count = jnp.take_along_axis(pair_sorted, best[..., None], axis=2)[..., 0]
    ok = (via_count > 0) & (cands >= 0)
    via = jnp.where(ok, via, -1)
    via_count = jnp.where(ok, via_count, 0.0)
    pop = g.popularity
    lift = via_count * g.n_users / jnp.maximum(pop[jnp.clip(via, 0)] * pop[safe_c], 1.0)
    return CoSupport(
        jnp.where(cands >= 0, score, 0.0), via, via_count, jnp.where(ok, lift, 0.0)
    )


@functools.partial(jax.jit, static_argnames=("k",))
def neighbour_support(
    g: InteractionGraph,
    users: jax.Array,
    cands: jax.Array,
    k: int = 20,
    xt: jax.Array | None = None,
    hist: jax.Array | None = None,
) -> NeighbourSupport:
    """User-kNN votes for candidates from the ``k`` most similar users.

    Similarity is the cosine of 0/1 interaction vectors (as
    :func:`~agenticrec.tools.graph.user_neighbours`), the user excluded.

    Args:
        users: i32[q]; cands: i32[q, c]; k: neighbours (static).
        xt, hist: the fast path: f32[i, u] from :func:`item_user_matrix` and
            i32[q, s] the users' items (``-1`` pads), so similarities are row
            gathers instead of ``[q, i] @ [i, u]`` products.
    """
    if xt is not None and hist is not None:
        valid = ((hist >= 0) & (hist < g.n_items)).astype(jnp.float32)
        rows = xt[jnp.clip(hist, 0, g.n_items - 1)] * valid[..., None]  # [q, s, u]
        shared = jnp.sum(rows, axis=1)
        act = jnp.sum(valid, axis=1, keepdims=True)
    else:
        h = history_rows(g, users)
        shared = overlap(g, h, binary=True)
        act = jnp.sum(h, axis=1, keepdims=True)
    cos = jnp.where(
        shared > 0, shared / jnp.sqrt(jnp.maximum(act * g.activity[None], 1.0)), 0.0
    )
    others = jnp.arange(g.n_users, dtype=jnp.int32)[None, :] != users[:, None]
    nb = top_n(cos, k, others & (shared > 0))
    rows = jnp.arange(users.shape[0], dtype=jnp.int32)[:, None]
    cols = jnp.where(nb.ids >= 0, nb.ids, g.n_users)
    w = jnp.zeros((users.shape[0], g.n_users + 1), jnp.float32)
    w = w.at[rows, cols].set(jnp.where(nb.ids >= 0, nb.scores, 0.0))[:, : g.n_users]
    found = jnp.sum(nb.ids >= 0, axis=1)
    if xt is not None:
        xc = xt[jnp.clip(cands, 0, g.n_items - 1)]  # [q, c, u]
        ok = cands >= 0
        score = jnp.einsum("qcu,qu->qc", xc, w, precision=_HIGHEST)
        votes = jnp.einsum("qcu,qu->qc", xc, (w > 0).astype(jnp.float32))
        return NeighbourSupport(
            jnp.where(ok, score, 0.0), jnp.where(ok, votes, 0.0), found
        )
    score = spread(g, w, binary=False)
    votes = spread(g, (w > 0).astype(jnp.float32), binary=True)
    return NeighbourSupport(_take(score, cands), _take(votes, cands), found)


@functools.partial(jax.jit, static_argnames=("alpha", "max_iter"))
def walk_support(
    g: InteractionGraph,
    users: jax.Array,
    cands: jax.Array,
    alpha: float = 0.85,
    max_iter: int = 50,
) -> jax.Array:
    """Personalised PageRank mass of each candidate, restarting at the history.

    Returns:
        f32[q, c] visit probabilities (0 for padding).
    """
    h = history_rows(g, users)
    walk = personalized_pagerank(g, h, alpha=alpha, max_iter=max_iter)
    return _take(walk.items, cands)
