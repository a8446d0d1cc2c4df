"""Personalised PageRank (random walk with restart) on the bipartite graph."""

from __future__ import annotations

import functools
from typing import NamedTuple

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
    map_chunks,
    top_n,
)
from ._graph_query import per_user

__all__ = ["PageRank", "personalized_pagerank", "ppr_recommend"]

_HIGHEST = jax.lax.Precision.HIGHEST
_DENSE_MIN_ROWS = 8


class PageRank(NamedTuple):
    """Stationary visit probabilities of a walk with restart (each row sums to 1)."""

    items: jax.Array
    """f32[..., i] mass on item nodes."""
    users: jax.Array
    """f32[..., u] mass on user nodes."""
    iterations: jax.Array
    """i32[] power iterations run (the batch stops together)."""


def _walk(g: InteractionGraph, restart, alpha, max_iter: int, tol) -> PageRank:
    c = restart.shape[0]
    total = jnp.sum(restart, axis=1, keepdims=True)
    p = jnp.where(total > 0, restart / jnp.where(total > 0, total, 1.0), 0.0)
    inv_pop = jnp.where(g.popularity > 0, 1.0 / g.popularity, 0.0)
    inv_act = jnp.where(g.activity > 0, 1.0 / g.activity, 0.0)
    lonely_i = (g.popularity == 0).astype(jnp.float32)
    lonely_u = (g.activity == 0).astype(jnp.float32)

    if g.x is not None and c >= _DENSE_MIN_ROWS:
        xf = g.x.astype(jnp.float32)

        def to_users(w):
            return jnp.matmul(w, xf.T, precision=_HIGHEST)

        def to_items(w):
            return jnp.matmul(w, xf, precision=_HIGHEST)
    else:

        def to_users(w):
            return jax.ops.segment_sum(
                w.T[g.user_items], g.edge_users, g.n_users, indices_are_sorted=True
            ).T

        def to_items(w):
            return jax.ops.segment_sum(
                w.T[g.item_users], g.edge_items, g.n_items, indices_are_sorted=True
            ).T

    def step(xi, xu):
        dangling = xi @ lonely_i + xu @ lonely_u
        new_u = alpha * to_users(xi * inv_pop)
        new_i = alpha * to_items(xu * inv_act)
        new_i = new_i + (alpha * dangling + (1.0 - alpha))[:, None] * p
        return new_i, new_u

    def cond(state):
        _, _, it, err = state
        return (it < max_iter) & (err >= tol)

    def body(state):
        xi, xu, it, _ = state
        ni, nu = step(xi, xu)
        err = jnp.max(
            jnp.sum(jnp.abs(ni - xi), axis=1) + jnp.sum(jnp.abs(nu - xu), axis=1),
            initial=0.0,
        )
        return ni, nu, it + 1, err

    xu0 = jnp.zeros((c, g.n_users), jnp.float32)
    init = (p, xu0, jnp.int32(0), jnp.float32(jnp.inf))
    xi, xu, it, _ = jax.lax.while_loop(cond, body, init)
    return PageRank(xi, xu, it)


def _check_walk(alpha, max_iter) -> None:
    if not 0.0 <= float(alpha) < 1.0:
        raise ConfigError(f"alpha must be in [0, 1), got {alpha!r}")
    check_n(max_iter, "max_iter")


@functools.partial(jax.jit, static_argnames=("alpha", "max_iter"))
def personalized_pagerank(
    g: InteractionGraph,
    restart: jax.Array,
    alpha: float = 0.85,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> PageRank:
    """Personalised PageRank from item weights on the bipartite graph.

    A walker follows a uniformly chosen edge with probability ``alpha`` and
    jumps back to an item drawn from ``restart`` otherwise; from a node with no
    edge it always jumps back. This is ``networkx.pagerank(G, alpha,
    personalization)`` on the user-item graph with unit edge weights.

    Args:
        g: the graph.
        restart: f32[q, i] or f32[i] non-negative restart weights over items
            (normalised per row; an all-zero row gives all-zero output).
        alpha: probability of following an edge (static).
        max_iter: most power iterations (static).
        tol: stop when every row's L1 change is below ``tol``.

    Returns:
        :class:`PageRank` with ``[q, i]`` / ``[q, u]`` (or unbatched) masses.
    """
    _check_walk(alpha, max_iter)
    restart = jnp.asarray(restart, jnp.float32)
    if restart.shape[-1:] != (g.n_items,) or restart.ndim not in (1, 2):
        raise ConfigError(
            f"restart must be f32[q, {g.n_items}] or f32[{g.n_items}], "
            f"got {restart.shape}"
        )
    if restart.ndim == 1:
        res = _walk(g, restart[None], alpha, max_iter, tol)
        return PageRank(res.items[0], res.users[0], res.iterations)
    return _walk(g, restart, alpha, max_iter, tol)


@functools.partial(jax.jit, static_argnames=("n", "alpha", "max_iter"))
def ppr_recommend(
    g: InteractionGraph,
    users: jax.Array,
    n: int,
    alpha: float = 0.85,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> TopN:
    """Top-``n`` unseen items by a random walk restarting at the user's items.

    The restart distribution is uniform over ``H(u)``; the score of an item is
    its :func:`personalized_pagerank` mass. Users with no history get no items.

    Args:
        g: the graph.
        users: i32[q] or i32[] user ids.
        n: results per user (static).
        alpha: probability of following an edge (static).
        max_iter: most power iterations (static).
        tol: L1 convergence tolerance.

    Returns:
        :class:`TopN` of ``[q, n]`` (or ``[n]``) items and visit probabilities.
    """
    check_n(n)
    _check_walk(alpha, max_iter)
    users = as_ids(users, "users")

    def chunk(us):
        h = history_rows(g, us)
        walk = _walk(g, h, alpha, max_iter, tol)
        return top_n(walk.items, n, h == 0)

    def batched(us):
        return map_chunks(chunk, us, chunk_size(g, g.n_users + g.n_items))

    return per_user(batched, users)
