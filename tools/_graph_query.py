"""Batched graph queries: co-occurrence, 2-hop paths, user neighbours.

Every kernel takes a batch of query users ``i32[q]`` (or a single id ``i32[]``,
giving unbatched outputs) and returns fixed-shape arrays; ids outside
``[0, n_users)`` behave as users with no history, so callers can pad batches
with ``-1``.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from agenticrec.errors import ConfigError

from ._graph_build import InteractionGraph
from ._graph_ops import (
    TopN,
    as_ids,
    check_n,
    chunk_size,
    history_rows,
    item_rows,
    map_chunks,
    overlap,
    propagate,
    spread,
    take_rows,
    top_n,
)

__all__ = [
    "MEASURES",
    "CoOccurring",
    "Measure",
    "Neighbours",
    "PairMeasures",
    "TwoHop",
    "cooccurrence_measure",
    "neighbour_items",
    "pair_measures",
    "recommend_cooccurring",
    "top_cooccurring",
    "two_hop_paths",
    "user_neighbours",
]

Measure = Literal["count", "lift", "cosine", "jaccard"]
MEASURES: tuple[str, ...] = ("count", "lift", "cosine", "jaccard")


class CoOccurring(NamedTuple):
    """Items that co-occur with a query item set, best first (ties: smaller id)."""

    ids: jax.Array
    """i32[..., n] neighbour items, ``-1`` padding."""
    scores: jax.Array
    """f32[..., n] the chosen measure summed over the query items."""
    co_counts: jax.Array
    """f32[..., n] co-occurrence counts summed over the query items."""
    pair_counts: jax.Array
    """f32[..., n, k] count with each query item (0 for padding)."""


class TwoHop(NamedTuple):
    """Unseen items reached by paths user -> item -> user -> item."""

    ids: jax.Array
    """i32[..., n] items, most paths first (ties: smaller id)."""
    paths: jax.Array
    """f32[..., n] number of such paths (the co-occurrence score)."""
    via_users: jax.Array
    """f32[..., n] distinct other users on those paths (who share an item with
    the query user and interacted with the result item)."""


class Neighbours(NamedTuple):
    """Most similar users by cosine of 0/1 interaction vectors."""

    ids: jax.Array
    """i32[..., k] users, most similar first (ties: smaller id), ``-1`` padding."""
    cosine: jax.Array
    """f32[..., k] ``shared / sqrt(|H(u)| |H(v)|)``."""
    shared: jax.Array
    """f32[..., k] number of items both users interacted with."""


class PairMeasures(NamedTuple):
    """Normalisations of a co-occurrence count ``c`` of items ``i`` and ``j``."""

    lift: jax.Array
    """``c * n_users / (pop_i * pop_j)``: 1 means independent."""
    cosine: jax.Array
    """``c / sqrt(pop_i * pop_j)``."""
    jaccard: jax.Array
    """``c / (pop_i + pop_j - c)``."""


def _safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
    return jnp.where(num > 0, num / jnp.where(num > 0, den, 1.0), 0.0)


def pair_measures(
    count: jax.Array, pop_i: jax.Array, pop_j: jax.Array, n_users: int
) -> PairMeasures:
    """Lift, cosine and Jaccard of co-occurrence counts (broadcasting).

    Args:
        count: f32[...] users who interacted with both items.
        pop_i: f32[...] users of the first item.
        pop_j: f32[...] users of the second item.
        n_users: number of users (for lift).

    Returns:
        :class:`PairMeasures`, each ``f32[...]``, 0 where ``count`` is 0.
    """
    count = jnp.asarray(count, jnp.float32)
    return PairMeasures(
        lift=_safe_div(count * n_users, pop_i * pop_j),
        cosine=_safe_div(count, jnp.sqrt(pop_i * pop_j)),
        jaccard=_safe_div(count, pop_i + pop_j - count),
    )


def cooccurrence_measure(
    counts: jax.Array, popularity: jax.Array, n_users: int, measure: Measure
) -> jax.Array:
    """Normalised co-occurrence matrix.

    Args:
        counts: f32[i, i] co-occurrence counts (diagonal = popularity).
        popularity: f32[i] distinct users per item.
        n_users: number of users.
        measure: ``"count"``, ``"lift"``, ``"cosine"`` or ``"jaccard"``.

    Returns:
        f32[i, i] the measure; the diagonal is left as computed.
    """
    if measure == "count":
        return counts
    _check_measure(measure)
    m = pair_measures(counts, popularity[:, None], popularity[None, :], n_users)
    return getattr(m, measure)


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ConfigError(f"measure must be one of {MEASURES}, got {measure!r}")


def per_user(batched, users: jax.Array):
    """Run ``batched`` (``i32[q] -> pytree of [q, ...]``) on ``i32[q]`` or ``i32[]``."""
    if users.ndim == 0:
        return jax.tree.map(lambda a: a[0], batched(users[None]))
    if users.ndim != 1:
        raise ConfigError(f"users must be i32[q] or i32[], got shape {users.shape}")
    return batched(users)


@functools.partial(jax.jit, static_argnames=("n",))
def recommend_cooccurring(g: InteractionGraph, users: jax.Array, n: int) -> TopN:
    """Top-``n`` co-occurring items for each user.

    ``score(u, j) = sum_{i in H(u)} C[i, j]`` for ``j`` not in ``H(u)``, where
    ``H(u)`` is the set of distinct items of ``u`` and ``C[i, j]`` the number
    of users who interacted with both. Equivalently, the number of paths
    ``u -> i -> v -> j`` in the bipartite graph. Only items with a positive
    score are candidates; ties go to the smaller item id.

    Args:
        g: the graph.
        users: i32[q] or i32[] user ids.
        n: results per user (static).

    Returns:
        :class:`TopN` of ``[q, n]`` (or ``[n]``) item ids and path counts.
    """
    check_n(n)
    users = as_ids(users, "users")

    def chunk(us):
        h = history_rows(g, us)
        return top_n(propagate(g, h), n, h == 0)

    def batched(us):
        return map_chunks(chunk, us, chunk_size(g, g.n_items))

    return per_user(batched, users)


@functools.partial(jax.jit, static_argnames=("n",))
def two_hop_paths(g: InteractionGraph, users: jax.Array, n: int) -> TwoHop:
    """Top-``n`` unseen items by 2-hop path count, with the users on the paths.

    Same ranking as :func:`recommend_cooccurring`; also counts, for each result
    item ``j``, the distinct users ``v != u`` that share at least one item with
    ``u`` and interacted with ``j``.

    Args:
        g: the graph.
        users: i32[q] or i32[] user ids.
        n: results per user (static).

    Returns:
        :class:`TwoHop` of ``[q, n]`` (or ``[n]``) arrays.
    """
    check_n(n)
    users = as_ids(users, "users")

    def chunk(us):
        h = history_rows(g, us)
        best = top_n(propagate(g, h), n, h == 0)
        linked = (overlap(g, h, binary=True) > 0).astype(jnp.float32)
        via = spread(g, linked, binary=True)
        return TwoHop(best.ids, best.scores, take_rows(via, best.ids))

    def batched(us):
        return map_chunks(chunk, us, chunk_size(g, g.n_users + g.n_items))

    return per_user(batched, users)


def _neighbours(g: InteractionGraph, us: jax.Array, h: jax.Array, k: int):
    shared = overlap(g, h, binary=True)
    act_u = jnp.sum(h, axis=1, keepdims=True)
    cosine = _safe_div(shared, jnp.sqrt(act_u * g.activity[None, :]))
    others = jnp.arange(g.n_users, dtype=jnp.int32)[None, :] != us[:, None]
    best = top_n(cosine, k, others)
    return Neighbours(best.ids, best.scores, take_rows(shared, best.ids))


@functools.partial(jax.jit, static_argnames=("k",))
def user_neighbours(g: InteractionGraph, users: jax.Array, k: int) -> Neighbours:
    """The ``k`` most similar other users by cosine of interaction vectors.

    ``cos(u, v) = |H(u) & H(v)| / sqrt(|H(u)| |H(v)|)``; users sharing no item
    are not neighbours. Ties go to the smaller user id.

    Args:
        g: the graph.
        users: i32[q] or i32[] user ids.
        k: neighbours per user (static).

    Returns:
        :class:`Neighbours` of ``[q, k]`` (or ``[k]``) arrays.
    """
    check_n(k, "k")
    users = as_ids(users, "users")

    def chunk(us):
        return _neighbours(g, us, history_rows(g, us), k)

    def batched(us):
        return map_chunks(chunk, us, chunk_size(g, g.n_users))

    return per_user(batched, users)


@functools.partial(jax.jit, static_argnames=("k", "n"))
def neighbour_items(
    g: InteractionGraph, users: jax.Array, k: int, n: int
) -> tuple[TopN, jax.Array]:
    """Unseen items liked by the ``k`` nearest users (user-based kNN).

    ``score(u, j) = sum_{v in N_k(u)} cos(u, v) * [j in H(v)]`` for ``j`` not in
    ``H(u)``, with ``N_k`` from :func:`user_neighbours`. Ties: smaller item id.

    Args:
        g: the graph.
        users: i32[q] or i32[] user ids.
        k: neighbours per user (static).
        n: items per user (static).

    Returns:
        (:class:`TopN` of ``[q, n]`` items and scores, ``f32[q, n]`` how many of
        the ``k`` neighbours interacted with each item); unbatched without ``q``.
    """
    check_n(k, "k")
    check_n(n)
    users = as_ids(users, "users")

    def chunk(us):
        h = history_rows(g, us)
        nb = _neighbours(g, us, h, k)
        c = us.shape[0]
        rows = jnp.arange(c, dtype=jnp.int32)[:, None]
        cols = jnp.where(nb.ids >= 0, nb.ids, g.n_users)
        w = jnp.zeros((c, g.n_users + 1), jnp.float32).at[rows, cols].set(nb.cosine)
        w = w[:, : g.n_users]
        scores = spread(g, w, binary=False)
        support = spread(g, (w > 0).astype(jnp.float32), binary=True)
        best = top_n(scores, n, h == 0)
        return best, take_rows(support, best.ids)

    def batched(us):
        return map_chunks(chunk, us, chunk_size(g, g.n_users + g.n_items))

    return per_user(batched, users)


@functools.partial(jax.jit, static_argnames=("n", "measure"))
def top_cooccurring(
    g: InteractionGraph,
    items: jax.Array,
    n: int,
    measure: Measure = "count",
    min_count: float = 1.0,
) -> CoOccurring:
    """Items that co-occur most with a set of items.

    ``score(j) = sum_{i in S} M[i, j]`` for ``j`` not in ``S``, where ``M`` is
    the chosen measure (see :func:`pair_measures`). Candidates need a summed
    count of at least ``min_count`` (raise it to keep lift from favouring
    items seen by one or two users). Ties: smaller item id.

    Args:
        g: the graph.
        items: i32[k] one item set, or i32[q, k] a batch of sets; ``-1`` pads.
        n: results per set (static).
        measure: ``"count"``, ``"lift"``, ``"cosine"`` or ``"jaccard"`` (static).
        min_count: smallest summed co-occurrence count of a candidate.

    Returns:
        :class:`CoOccurring` of ``[q, n]`` (``[n]`` for one set) arrays and
        ``pair_counts`` of ``[q, n, k]``.
    """
    check_n(n)
    _check_measure(measure)
    items = as_ids(items, "items")
    if items.ndim not in (1, 2):
        raise ConfigError(f"items must be i32[k] or i32[q, k], got {items.shape}")
    k = items.shape[-1]

    def chunk(sets):
        c = sets.shape[0]
        flat = sets.reshape(c * k)
        valid = ((flat >= 0) & (flat < g.n_items)).astype(jnp.float32)
        if g.counts is not None:
            rows = g.counts[jnp.clip(flat, 0, g.n_items - 1)] * valid[:, None]
        else:
            rows = propagate(g, item_rows(g, flat))
        pop_q = g.popularity[jnp.clip(flat, 0, g.n_items - 1)][:, None]
        if measure == "count":
            m = rows
        else:
            m = getattr(pair_measures(rows, pop_q, g.popularity, g.n_users), measure)
        rows = rows.reshape(c, k, g.n_items)
        total = jnp.sum(rows, axis=1)
        score = jnp.sum(m.reshape(c, k, g.n_items), axis=1)
        in_set = jnp.sum(item_rows(g, flat).reshape(c, k, g.n_items), axis=1) > 0
        best = top_n(score, n, ~in_set & (total >= min_count))
        idx = jnp.maximum(best.ids, 0)[:, None, :]
        pair = jnp.take_along_axis(rows, jnp.broadcast_to(idx, (c, k, n)), axis=2)
        pair = jnp.where(best.ids[:, None, :] >= 0, pair, 0.0)
        return CoOccurring(
            best.ids, best.scores, take_rows(total, best.ids), pair.swapaxes(1, 2)
        )

    def batched(sets):
        return map_chunks(chunk, sets, max(1, chunk_size(g, g.n_items) // max(k, 1)))

    if items.ndim == 1:
        return jax.tree.map(lambda a: a[0], batched(items[None]))
    return batched(items)
