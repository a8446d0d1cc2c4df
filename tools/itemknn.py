"""Item-based nearest neighbours over the item Gram matrix ``G = X.T @ X``.

``X: [u, i]`` is the 0/1 matrix of an :class:`InteractionGraph`, so
``G[i, j]`` is the co-occurrence count of :func:`cooccurrence_counts` and
``G[i, i]`` the popularity of ``i``. Two weightings ``W: [i, i]`` score a
user's items ``s(u, j) = sum_{i in H(u)} W[i, j]``:

- ``"count"``: ``W = G`` as is, the project's co-occurrence ItemKNN (2-hop
  paths; :func:`agenticrec.tools.baselines.itemknn_scores` on candidates);
- ``"cosine"``: ``W[i, j] = G[i, j] / (sqrt(G[i, i] G[j, j]) + shrink)`` with
  the diagonal zeroed (Sarwar et al. 2001; shrink as in Dacrema et al. 2019).

Either can keep only each target item's ``k`` most similar items (column
top-k). Items nobody interacted with have zero rows and columns of ``G``, so
the Gram matrix is built over the *active* items only (those with popularity
> 0) and cached per graph fingerprint; :mod:`agenticrec.tools.ease` shares it.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._graph_build import InteractionGraph, cooccurrence_counts
from ._graph_ops import history_rows

__all__ = [
    "ItemGram",
    "as_graph",
    "cosine_weights",
    "graph_fingerprint",
    "item_gram",
    "itemknn_scores",
    "itemknn_weights",
    "linear_scores",
    "score_rows",
]

KnnMeasure = Literal["count", "cosine"]

_HIGHEST = jax.lax.Precision.HIGHEST
_USER_BLOCK = 512
"""Users scored per matmul (bounds ``f32[q, i]`` history rows)."""


class ItemGram(NamedTuple):
    """The Gram matrix of a graph's active items."""

    fingerprint: str
    """Content hash of the graph's edges and sizes (the cache key)."""
    items: np.ndarray
    """``int32[a]`` active item ids (popularity > 0), ascending."""
    gram: jax.Array
    """``f32[a, a]`` ``X[:, items].T @ X[:, items]``."""
    n_items: int
    """Catalogue size of the graph (scores come back over it)."""


def as_graph(source: Any) -> InteractionGraph:
    """The :class:`InteractionGraph` of ``source``: a graph, a
    :class:`~agenticrec.workspace.DataWorkspace` (its visible train +
    validation graph) or a teacher workspace (``source.index.graph``)."""
    if isinstance(source, InteractionGraph):
        return source
    index = getattr(source, "index", None)
    if isinstance(getattr(index, "graph", None), InteractionGraph):
        return index.graph
    graph = getattr(source, "graph", None)
    if callable(graph):
        g = graph()
        if isinstance(g, InteractionGraph):
            return g
    raise TypeError(
        f"expected an InteractionGraph, a DataWorkspace or a TeacherWorkspace, "
        f"got {type(source).__name__}"
    )


def graph_fingerprint(g: InteractionGraph) -> str:
    """Hash of the distinct edges and sizes: equal graphs, equal fingerprint."""
    h = hashlib.blake2b(digest_size=12)
    h.update(np.asarray([g.n_users, g.n_items], np.int64).tobytes())
    h.update(np.asarray(g.user_ptr, np.int32).tobytes())
    h.update(np.asarray(g.user_items, np.int32).tobytes())
    return h.hexdigest()


class _Cache:
    """A small thread-safe LRU (dense item matrices are hundreds of MB)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, make):
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = make()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_GRAMS = _Cache(2)


def item_gram(source: Any) -> ItemGram:
    """The active-item Gram matrix of ``source`` (see :func:`as_graph`), built
    with :func:`cooccurrence_counts` once per graph fingerprint."""
    g = as_graph(source)
    fp = graph_fingerprint(g)

    def make() -> ItemGram:
        pop = np.asarray(g.popularity)
        items = np.flatnonzero(pop > 0).astype(np.int32)
        remap = np.full(g.n_items, -1, np.int32)
        remap[items] = np.arange(items.size, dtype=np.int32)
        cols = jnp.asarray(remap[np.asarray(g.user_items)])
        gram = cooccurrence_counts(g.edge_users, cols, g.n_users, int(items.size))
        return ItemGram(fp, items, gram, g.n_items)

    return _GRAMS.get(fp, make)


def _check_square(gram: jax.Array, name: str = "gram") -> None:
    if gram.ndim < 2 or gram.shape[-1] != gram.shape[-2]:
        raise ValueError(f"{name} must be f[..., i, i], got shape {gram.shape}")


@functools.partial(jax.jit, static_argnames=("k",))
def cosine_weights(gram: jax.Array, shrink=0.0, k: int | None = None) -> jax.Array:
    """Cosine item-item similarity from a Gram matrix.

    Args:
        gram: ``f[..., i, i]`` co-occurrence counts (``G[i, i]`` popularity).
        shrink: ``f[]`` >= 0 added to the denominator (damps pairs of rare
            items).
        k: keep each column's ``k`` largest entries (static; ``None``: all).

    Returns:
        ``f32[..., i, i]`` ``G[i, j] / (sqrt(G[i, i] G[j, j]) + shrink)``, zero
        where that denominator is 0 and on the diagonal.
    """
    _check_square(gram)
    gram = gram.astype(jnp.float32)
    norm = jnp.sqrt(jnp.diagonal(gram, axis1=-2, axis2=-1))
    den = norm[..., :, None] * norm[..., None, :] + shrink
    sim = jnp.where(den > 0, gram / jnp.where(den > 0, den, 1.0), 0.0)
    sim = sim * (1.0 - jnp.eye(gram.shape[-1], dtype=sim.dtype))
    return sim if k is None else _top_k_columns(sim, k)


def _top_k_columns(w: jax.Array, k: int) -> jax.Array:
    """Zero all but each column's ``k`` largest entries (ties: smaller row)."""
    n = w.shape[-1]
    if k >= n:
        return w
    wt = jnp.swapaxes(w, -1, -2)
    _, idx = jax.lax.top_k(wt, k)
    keep = jnp.zeros(wt.shape, bool)
    keep = jnp.put_along_axis(keep, idx, True, axis=-1, inplace=False)
    return jnp.swapaxes(jnp.where(keep, wt, 0.0), -1, -2)


@functools.partial(jax.jit, static_argnames=("k",))
def _count_weights(gram: jax.Array, k: int | None = None) -> jax.Array:
    _check_square(gram)
    gram = gram.astype(jnp.float32)
    return gram if k is None else _top_k_columns(gram, k)


def itemknn_weights(
    gram: jax.Array,
    measure: KnnMeasure = "cosine",
    *,
    shrink: float = 0.0,
    k: int | None = None,
) -> jax.Array:
    """``f32[i, i]`` ItemKNN weights of ``measure`` (module docstring).

    Raises:
        ValueError: an unknown measure, ``shrink < 0`` or ``k < 1``.
    """
    if measure not in ("count", "cosine"):
        raise ValueError(f"measure must be 'count' or 'cosine', got {measure!r}")
    if not np.isfinite(shrink) or shrink < 0:
        raise ValueError(f"shrink must be finite and >= 0, got {shrink}")
    if k is not None and k < 1:
        raise ValueError(f"k (neighbours per item) must be >= 1 or None, got {k}")
    if measure == "count":
        return _count_weights(gram, k=k)
    return cosine_weights(gram, jnp.float32(shrink), k=k)


@jax.jit
def score_rows(weights: jax.Array, hist: jax.Array) -> jax.Array:
    """``f32[q, i]`` ``hist @ weights`` for ``hist: f[q, i]`` 0/1 rows and
    ``weights: f[i, i]`` (also unbatched: ``hist: f[i]`` gives ``f32[i]``)."""
    if weights.ndim != 2 or hist.shape[-1] != weights.shape[0]:
        raise ValueError(
            f"hist must be f[..., {weights.shape[0]}] for weights "
            f"{weights.shape}, got {hist.shape}"
        )
    return jnp.matmul(hist.astype(jnp.float32), weights, precision=_HIGHEST)


def linear_scores(
    source: Any,
    gram: ItemGram,
    weights: jax.Array,
    users: np.ndarray,
    candidates: np.ndarray | None,
) -> np.ndarray:
    """Scores of an item-item linear model over ``gram.items``.

    Args:
        source: what :func:`as_graph` accepts (its histories are used).
        gram: the active-item Gram matrix ``weights`` was fitted on.
        weights: ``f32[a, a]``.
        users: ``int[q]`` compact user ids.
        candidates: ``int[q, c]`` item ids (``-1`` pads), or ``None`` for the
            whole catalogue.

    Returns:
        ``f32[q, c]`` (``-inf`` at padding) or ``f32[q, n_items]``; items
        outside ``gram.items`` score 0. Seen items are not masked.
    """
    g = as_graph(source)
    users = np.asarray(users, np.int32).reshape(-1)
    if candidates is not None:
        candidates = np.asarray(candidates)
        if candidates.ndim != 2 or candidates.shape[0] != users.size:
            raise ValueError(
                f"candidates must be int[q, c] with q = {users.size}, got "
                f"{candidates.shape}"
            )
    active = jnp.asarray(gram.items)
    width = candidates.shape[1] if candidates is not None else g.n_items
    out = np.empty((users.size, width), np.float32)
    for s in range(0, users.size, _USER_BLOCK):
        us = jnp.asarray(users[s : s + _USER_BLOCK])
        hist = history_rows(g, us)[:, active]
        full = jnp.zeros((us.shape[0], g.n_items), jnp.float32)
        full = full.at[:, active].set(score_rows(weights, hist))
        if candidates is None:
            out[s : s + _USER_BLOCK] = np.asarray(full)
        else:
            c = candidates[s : s + _USER_BLOCK]
            got = np.take_along_axis(np.asarray(full), np.clip(c, 0, None), axis=1)
            out[s : s + _USER_BLOCK] = np.where(c >= 0, got, -np.inf)
    return out


def itemknn_scores(
    source: Any,
    users: np.ndarray,
    candidates: np.ndarray | None = None,
    *,
    measure: KnnMeasure = "cosine",
    shrink: float = 0.0,
    k: int | None = None,
) -> np.ndarray:
    """ItemKNN scores of ``users`` for ``candidates`` (or the catalogue).

    Args:
        source: an :class:`InteractionGraph` or a workspace (:func:`as_graph`);
            the users' histories and the Gram matrix come from it.
        users: ``int[q]`` compact user ids.
        candidates: ``int[q, c]`` item ids, ``-1`` pads; ``None``: all items.
        measure, shrink, k: see :func:`itemknn_weights`.

    Returns:
        ``f32[q, c]`` (``-inf`` at padding) or ``f32[q, n_items]``.
    """
    gram = item_gram(source)
    w = itemknn_weights(gram.gram, measure, shrink=shrink, k=k)
    return linear_scores(source, gram, w, users, candidates)
