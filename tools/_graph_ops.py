"""Primitive graph operations, each with a dense and a sparse path.

Every operation takes a batch of ``c`` query rows. The dense path multiplies by
the dense matrices of an :class:`InteractionGraph`; the sparse path gathers
along the edge lists and sums segments (cost ``c * edges``, memory
``c * (edges + users + items)`` floats). Kernels call :func:`map_chunks` so
that a batch of any size runs in chunks whose intermediates fit in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from agenticrec.errors import ConfigError

from ._graph_build import InteractionGraph

__all__ = ["TopN"]

_CHUNK_ELEMENTS = 1 << 24
_HIGHEST = jax.lax.Precision.HIGHEST


class TopN(NamedTuple):
    """The best ``n`` candidates per query row, best first.

    Ties are broken by the smaller id. Rows with fewer than ``n`` candidates
    are padded with id ``-1`` and score ``0``.
    """

    ids: jax.Array
    """i32[..., n] item (or user) ids."""
    scores: jax.Array
    """f32[..., n] scores."""


def check_n(n: int, name: str = "n") -> None:
    """Raise ``ConfigError`` unless ``n`` is a non-negative Python int."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ConfigError(f"{name} must be a non-negative int, got {n!r}")


def as_ids(ids, name: str) -> jax.Array:
    """Ids as int32, rejecting floats (a common silent mistake)."""
    arr = jnp.asarray(ids)
    if arr.size and not jnp.issubdtype(arr.dtype, jnp.integer):
        raise ConfigError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(jnp.int32)


def chunk_size(g: InteractionGraph, width: int) -> int:
    """Query rows per chunk so that per-chunk intermediates stay near 2**24 floats."""
    per_row = max(width, g.n_items, g.max_activity)
    if g.counts is None or g.x is None:
        per_row = max(per_row, g.n_edges + g.n_users)
    return max(1, _CHUNK_ELEMENTS // per_row)


def map_chunks(fn: Callable, rows: jax.Array, chunk: int, pad_value=-1):
    """Apply ``fn`` (``[c, ...] -> pytree of [c, ...]``) to ``rows`` in chunks.

    Args:
        fn: batched function of one chunk.
        rows: [q, ...] query rows.
        chunk: rows per chunk.
        pad_value: fills the last chunk (``-1``: a user or item with no edges).
    """
    q = rows.shape[0]
    if q <= chunk:
        return fn(rows)
    m = -(-q // chunk)
    pad = [(0, m * chunk - q)] + [(0, 0)] * (rows.ndim - 1)
    padded = jnp.pad(rows, pad, constant_values=pad_value)
    out = jax.lax.map(fn, padded.reshape(m, chunk, *rows.shape[1:]))
    return jax.tree.map(lambda a: a.reshape(m * chunk, *a.shape[2:])[:q], out)


def history_rows(g: InteractionGraph, users: jax.Array) -> jax.Array:
    """0/1 history rows of users.

    Args:
        g: the graph.
        users: i32[c] user ids; ids outside ``[0, n_users)`` get an empty row.

    Returns:
        f32[c, i] ``1`` where the user interacted with the item.
    """
    c, width = users.shape[0], g.max_activity
    valid = (users >= 0) & (users < g.n_users)
    u = jnp.where(valid, users, 0)
    start = g.user_ptr[u]
    count = jnp.where(valid, g.user_ptr[u + 1] - start, 0)
    offset = jnp.arange(width, dtype=jnp.int32)
    pos = jnp.minimum(start[:, None] + offset, g.n_edges - 1)
    items = jnp.where(offset < count[:, None], g.user_items[pos], g.n_items)
    rows = jnp.arange(c, dtype=jnp.int32)[:, None]
    out = jnp.zeros((c, g.n_items + 1), jnp.float32).at[rows, items].set(1.0)
    return out[:, : g.n_items]


def item_rows(g: InteractionGraph, items: jax.Array) -> jax.Array:
    """One-hot rows of items: f32[c, i]; ids outside ``[0, n_items)`` give zeros."""
    valid = (items >= 0) & (items < g.n_items)
    hot = jax.nn.one_hot(jnp.where(valid, items, 0), g.n_items, dtype=jnp.float32)
    return hot * valid[:, None]


def propagate(g: InteractionGraph, h: jax.Array) -> jax.Array:
    """Item scores through co-occurrence: ``h @ C``.

    Args:
        g: the graph.
        h: f32[c, i] item weights (e.g. 0/1 histories).

    Returns:
        f32[c, i] ``sum_k h[., k] * C[k, .]``; for 0/1 rows, the number of
        paths item -> user -> item from the marked items.
    """
    if g.counts is not None:
        return jnp.matmul(h, g.counts, precision=_HIGHEST)
    return spread(g, overlap(g, h, binary=False), binary=False)


def overlap(g: InteractionGraph, h: jax.Array, *, binary: bool) -> jax.Array:
    """Item weights summed onto users: ``h @ X.T``.

    Args:
        g: the graph.
        h: f32[c, i] item weights.
        binary: ``h`` is 0/1 (then the dense path multiplies exactly in bf16).

    Returns:
        f32[c, u]; for 0/1 rows, the number of marked items each user has.
    """
    if g.x is None:
        per_edge = h.T[g.user_items]
        return jax.ops.segment_sum(
            per_edge, g.edge_users, g.n_users, indices_are_sorted=True
        ).T
    dims = (((1,), (1,)), ((), ()))
    if binary:
        return jax.lax.dot_general(
            h.astype(jnp.bfloat16), g.x, dims, preferred_element_type=jnp.float32
        )
    return jax.lax.dot_general(h, g.x.astype(jnp.float32), dims, precision=_HIGHEST)


def spread(g: InteractionGraph, w: jax.Array, *, binary: bool) -> jax.Array:
    """User weights summed onto items: ``w @ X``.

    Args:
        g: the graph.
        w: f32[c, u] user weights.
        binary: ``w`` is 0/1.

    Returns:
        f32[c, i] ``sum_v w[., v] * X[v, .]``.
    """
    if g.x is None:
        per_edge = w.T[g.item_users]
        return jax.ops.segment_sum(
            per_edge, g.edge_items, g.n_items, indices_are_sorted=True
        ).T
    if binary:
        return jnp.matmul(
            w.astype(jnp.bfloat16), g.x, preferred_element_type=jnp.float32
        )
    return jnp.matmul(w, g.x.astype(jnp.float32), precision=_HIGHEST)


def top_n(scores: jax.Array, n: int, candidate: jax.Array) -> TopN:
    """Best ``n`` entries per row among candidates with a positive score.

    Args:
        scores: f32[c, m] non-negative scores.
        n: how many to keep (static); may exceed ``m``.
        candidate: bool[c, m] entries allowed in the result.

    Returns:
        :class:`TopN` with ``[c, n]`` arrays.
    """
    c, m = scores.shape
    k = min(n, m)
    keep = candidate & (scores > 0)
    values, ids = jax.lax.top_k(jnp.where(keep, scores, -jnp.inf), k)
    found = values > -jnp.inf
    ids = jnp.where(found, ids, -1).astype(jnp.int32)
    values = jnp.where(found, values, 0.0)
    if k < n:
        ids = jnp.pad(ids, ((0, 0), (0, n - k)), constant_values=-1)
        values = jnp.pad(values, ((0, 0), (0, n - k)))
    return TopN(ids, values)


def take_rows(values: jax.Array, ids: jax.Array) -> jax.Array:
    """``values[r, ids[r, j]]`` with 0 where ``ids`` is ``-1``.

    Args:
        values: f32[c, m].
        ids: i32[c, n].

    Returns:
        f32[c, n].
    """
    got = jnp.take_along_axis(values, jnp.maximum(ids, 0), axis=1)
    return jnp.where(ids >= 0, got, 0.0)
