"""Everything config-independent, computed once per `Pipeline`.

For the evaluation users ``U`` this builds, from the interactions the pipeline
may see (its *visible rows*):

* five recall channel scores over the whole catalog, their per-user rank
  (ties to the smaller item id; only positive scores rank) and the *pool*:
  the union of every channel's top ``MAX_TOTAL`` items, the only items any
  config can recall;
* the ranking heads of the pool items, each in [0, 1], and their logs;
* item tables for re-ranking and metrics: category multi-hot, embeddings,
  novelty.

Channel scores (``H(u)``: the user's visible items, oldest first; ``w_u(i) =
2 ** (-(n - 1 - position) / half_life)`` weights recent items more):

* ``cf``: user kNN, ``sum_{v in N_k(u)} cos(u, v) X[v, j]`` with
  :func:`agenticrec.tools.graph.user_neighbours`;
* ``item2item``: ``sum_i w_u(i) C[i, j] / sqrt(p_i p_j)``, cosine
  co-occurrence with ``C = X.T X`` over the graph's distinct edges ``X`` and
  its popularity ``p`` (computed as ``(w X.T) X`` in sparse form, never
  materialising ``C``);
* ``embedding``: cosine of the item's embedding with the user's profile (the
  ``w_u``-weighted mean of history embeddings);
* ``popular``: ``p_j``, distinct users over the visible rows;
* ``fresh``: visible interactions with ``j`` in the ``fresh_days`` before the
  user's latest visible interaction (the user's own time, so no future leaks
  in; popularity again for order-only data).

History items are never candidates. Each channel's score is divided by its
per-user maximum (the pre-ranking plane, in [0, 1]).

Heads: ``cf`` = mean of the ``cf`` and ``item2item`` planes; ``content`` =
the ``embedding`` plane; ``engage`` = the item's mean rating shrunk to the
global mean with 10 pseudo-ratings, min-max scaled over the catalog; ``like``
= its share of ratings >= 4 shrunk likewise; ``pop`` = ``log1p(p) /
log1p(max p)``; ``recency`` = the ``fresh`` plane. Without ratings ``engage``
and ``like`` are 0 for every item (they then change no order).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from agenticrec.data import Dataset
from agenticrec.errors import ConfigError, DataValidationError

from ._pipeline_config import CHANNELS, HEADS, MAX_TOTAL
from ._pipeline_embed import quantize
from .graph import InteractionGraph, user_neighbours

__all__ = [
    "MAX_CATEGORIES",
    "BuildOptions",
    "Features",
    "build_features",
    "category_matrix",
    "pad_features",
]

NO_RANK = np.iinfo(np.int16).max
"""Rank of an item a channel does not return (beyond its top ``MAX_TOTAL``)."""
LOG_EPS = 0.01
"""``log(head + LOG_EPS)`` is the multiplicative fusion's per-head term."""
MAX_CATEGORIES = 64
"""Most categories the re-ranker and diversity metrics distinguish."""
_RATING_PRIOR = 10.0
_LIKE_THRESHOLD = 4.0


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """Config-independent choices of the channel models (fixed per pipeline)."""

    neighbours: int = 20
    """Users in the ``cf`` channel's neighbourhood."""
    half_life: float = 10.0
    """History positions at which an item's weight halves (``item2item``,
    ``embedding`` profile)."""
    fresh_days: float = 90.0
    """Window of the ``fresh`` channel and ``recency`` head, in days."""

    def __post_init__(self) -> None:
        if not (isinstance(self.neighbours, int) and self.neighbours >= 1):
            raise ConfigError(f"neighbours must be an int >= 1, got {self.neighbours}")
        if not self.half_life > 0:
            raise ConfigError(f"half_life must be > 0, got {self.half_life}")
        if not self.fresh_days > 0:
            raise ConfigError(f"fresh_days must be > 0, got {self.fresh_days}")


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "pool",
        "ranks",
        "chan",
        "heads",
        "log_heads",
        "target",
        "genres",
        "emb",
        "novelty",
        "nov_norm",
    ],
    meta_fields=[],
)
@dataclasses.dataclass(frozen=True)
class Features:
    """Config-independent inputs of the kernel (numpy or jax arrays).

    ``U`` evaluation users (rows), ``M`` pool width, ``C`` channels, ``H``
    heads, ``I`` items, ``G`` categories, ``D`` embedding size.
    """

    pool: np.ndarray
    """``i32[U, M]`` candidate item ids, ascending per row, ``-1`` padding."""
    ranks: np.ndarray
    """``i16[C, U, M]`` 0-based rank of the item in each channel, `NO_RANK`
    where the channel does not return it."""
    chan: np.ndarray
    """``f32[C, U, M]`` channel scores divided by the user's maximum."""
    heads: np.ndarray
    """``f32[H, U, M]`` ranking heads in [0, 1]."""
    log_heads: np.ndarray
    """``f32[H, U, M]`` ``log(heads + LOG_EPS)``."""
    target: np.ndarray
    """``i32[U]`` held-out item (``-1`` for padding rows)."""
    genres: np.ndarray
    """``f32[I, G]`` category multi-hot (see `category_matrix`)."""
    emb: np.ndarray
    """``f32[I, D]`` quantised unit embeddings."""
    novelty: np.ndarray
    """``f32[I]`` ``-log2((p + 1) / (n_visible_users + 1))`` bits."""
    nov_norm: np.ndarray
    """``f32[I]`` novelty divided by its catalog maximum."""


def _history(dataset: Dataset, rows: np.ndarray, users: np.ndarray, half_life):
    """Visible history of ``users``: 0/1 and recency-weighted ``[U, I]`` CSR,
    and each user's latest visible timestamp."""
    sel = np.zeros(dataset.n_users, np.int64) - 1
    sel[users] = np.arange(len(users))
    r_users = dataset.users[rows]
    keep = sel[r_users] >= 0
    rr = sel[r_users[keep]]
    items = dataset.items[rows][keep]
    stamps = dataset.timestamps[rows][keep]
    # rows are sorted by (user, time): positions within each user's history
    counts = np.bincount(rr, minlength=len(users))
    order = np.argsort(rr, kind="stable")
    start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.empty(len(rr), np.int64)
    pos[order] = np.arange(len(rr)) - np.repeat(start, counts)
    age = counts[rr] - 1 - pos
    weight = np.exp2(-age / half_life)
    shape = (len(users), dataset.n_items)
    binary = sp.csr_matrix((np.ones(len(rr), np.float32), (rr, items)), shape=shape)
    binary.sum_duplicates()
    binary.data[:] = 1.0
    weighted = sp.csr_matrix((weight.astype(np.float32), (rr, items)), shape=shape)
    weighted.sum_duplicates()
    last = np.full(len(users), np.iinfo(np.int64).min)
    np.maximum.at(last, rr, stamps)
    return binary, weighted, last


def _window_counts(
    items: np.ndarray, stamps: np.ndarray, n_items: int, until: np.ndarray, days
) -> np.ndarray:
    """``f32[U, I]`` rows with ``until[u] - days < t <= until[u]`` per item."""
    t0, t1 = int(stamps.min()), int(stamps.max())
    span = t1 - t0 + 2

    def key(item, t):
        return item * span + np.clip(t - t0 + 1, 0, span - 1)

    keys = np.sort(key(items.astype(np.int64), stamps))
    item_col = np.arange(n_items, dtype=np.int64)[None, :]
    hi = np.searchsorted(keys, key(item_col, until[:, None]), side="right")
    start = until[:, None] - int(days * 86400)
    lo = np.searchsorted(keys, key(item_col, start), side="right")
    return (hi - lo).astype(np.float32)


def _rating_heads(dataset: Dataset, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    n = dataset.n_items
    if dataset.ratings is None or len(rows) == 0:
        return np.zeros(n, np.float32), np.zeros(n, np.float32)
    items, ratings = dataset.items[rows], dataset.ratings[rows].astype(np.float64)
    count = np.bincount(items, minlength=n)
    total = np.bincount(items, weights=ratings, minlength=n)
    likes = np.bincount(items, weights=ratings >= _LIKE_THRESHOLD, minlength=n)
    mean = (total + _RATING_PRIOR * ratings.mean()) / (count + _RATING_PRIOR)
    lo, hi = mean.min(), mean.max()
    engage = (mean - lo) / (hi - lo) if hi > lo else np.zeros(n)
    share = (ratings >= _LIKE_THRESHOLD).mean()
    like = (likes + _RATING_PRIOR * share) / (count + _RATING_PRIOR)
    return engage.astype(np.float32), like.astype(np.float32)


def category_matrix(
    categories: tuple[tuple[str, ...], ...], max_categories: int = MAX_CATEGORIES
) -> np.ndarray:
    """``f32[I, G]`` multi-hot of the informative categories.

    A label on more than half of the catalog (a root such as "Industrial &
    Scientific") says nothing about diversity and is dropped; of the rest, the
    ``max_categories`` most frequent are kept (ties: alphabetical), which bounds
    the re-ranking cost on fine-grained taxonomies. MovieLens keeps all of its
    genres.
    """
    freq: dict[str, int] = {}
    for cats in categories:
        for c in set(cats):
            freq[c] = freq.get(c, 0) + 1
    limit = len(categories) / 2
    names = sorted(
        (c for c, n in freq.items() if n <= limit), key=lambda c: (-freq[c], c)
    )
    index = {c: k for k, c in enumerate(names[:max_categories])}
    out = np.zeros((len(categories), max(len(index), 1)), np.float32)
    for i, cats in enumerate(categories):
        for c in cats:
            if c in index:
                out[i, index[c]] = 1.0
    return out


def _normalise(scores: np.ndarray, history: np.ndarray) -> np.ndarray:
    """Zero history and non-positive scores, divide rows by their maximum."""
    s = np.where(history | ~(scores > 0), 0.0, scores).astype(np.float32)
    top = s.max(axis=1, keepdims=True)
    return np.where(top > 0, s / np.where(top > 0, top, 1.0), 0.0).astype(np.float32)


@functools.partial(jax.jit, static_argnames=("k",))
def _top_k(scores, k):
    return jax.lax.top_k(scores, k)


def _channel_ranks(plane: np.ndarray, depth: int) -> np.ndarray:
    """``i16[U, I]`` rank among positive entries (ties: smaller id)."""
    k = min(depth, plane.shape[1])
    values, ids = (np.asarray(a) for a in _top_k(jnp.asarray(plane), k))
    ranks = np.full(plane.shape, NO_RANK, np.int16)
    r = np.broadcast_to(np.arange(k, dtype=np.int16), ids.shape)
    rows = np.broadcast_to(np.arange(plane.shape[0])[:, None], ids.shape)
    ok = values > 0
    ranks[rows[ok], ids[ok]] = r[ok]
    return ranks


def build_features(
    dataset: Dataset,
    rows: np.ndarray,
    users: np.ndarray,
    targets: np.ndarray,
    embeddings: np.ndarray,
    options: BuildOptions,
) -> tuple[Features, InteractionGraph]:
    """Compute the features of ``users`` from the visible ``rows``.

    Args:
        dataset: the (split) dataset; ids refer to it.
        rows: ``int[k]`` sorted interaction rows the pipeline may see.
        users: ``int[U]`` evaluation users (compact ids).
        targets: ``int[U]`` their held-out items.
        embeddings: ``f32[I, D]`` quantised item embeddings.
        options: channel model choices.

    Returns:
        (numpy :class:`Features`, the graph of the visible rows).
    """
    users = np.asarray(users, np.int64)
    if len(rows) == 0:
        raise DataValidationError("a pipeline needs visible interactions")
    n_items = dataset.n_items
    if embeddings.shape[0] != n_items:
        raise ConfigError(
            f"embeddings have {embeddings.shape[0]} rows, the catalog {n_items} items"
        )
    unix = dataset.time_kind == "unix"
    r_items, r_stamps = dataset.items[rows], dataset.timestamps[rows]
    graph = InteractionGraph.from_interactions(
        dataset.users[rows],
        r_items,
        dataset.n_users,
        n_items,
        timestamps=r_stamps if unix else None,
    )
    binary, weighted, last = _history(dataset, rows, users, options.half_life)
    seen = binary.toarray() > 0
    pop = np.asarray(graph.popularity, np.float64)
    inv_sqrt = np.where(pop > 0, 1.0 / np.sqrt(np.maximum(pop, 1.0)), 0.0)

    x = sp.csr_matrix(
        (
            np.ones(graph.n_edges, np.float64),
            (np.asarray(graph.edge_users), np.asarray(graph.user_items)),
        ),
        shape=(dataset.n_users, n_items),
    )
    # sum_i w(i) C[i, j] / sqrt(p_i p_j) with C = X.T X, as (W X.T) X.
    scaled = sp.csr_matrix(weighted.multiply(inv_sqrt[None, :]))
    item2item = np.asarray(((scaled @ x.T) @ x).todense()) * inv_sqrt[None, :]

    nb = user_neighbours(graph, jnp.asarray(users, jnp.int32), options.neighbours)
    nb_ids, nb_cos = np.asarray(nb.ids), np.asarray(nb.cosine)
    ok = nb_ids >= 0
    w = sp.csr_matrix(
        (nb_cos[ok], (np.nonzero(ok)[0], nb_ids[ok])),
        shape=(len(users), dataset.n_users),
    )
    user_cf = (w @ x).toarray()

    profile = quantize(np.asarray(weighted @ embeddings.astype(np.float64)))
    # exact in float32 (quantised rows), so XLA's order of summation is harmless
    content = np.asarray(jnp.asarray(profile) @ jnp.asarray(embeddings).T)

    if unix:
        fresh = _window_counts(r_items, r_stamps, n_items, last, options.fresh_days)
    else:
        fresh = np.broadcast_to(pop.astype(np.float32), seen.shape)
    popular = np.broadcast_to(pop.astype(np.float32), seen.shape)

    raw = {
        "cf": user_cf,
        "item2item": item2item,
        "embedding": content,
        "popular": popular,
        "fresh": fresh,
    }
    planes = {c: _normalise(raw[c], seen) for c in CHANNELS}
    ranks = {c: _channel_ranks(planes[c], MAX_TOTAL) for c in CHANNELS}
    in_pool = np.zeros(seen.shape, bool)
    for c in CHANNELS:
        in_pool |= ranks[c] != NO_RANK
    width = max(1, int(in_pool.sum(axis=1).max()))
    pos = np.argsort(~in_pool, axis=1, kind="stable")[:, :width]
    valid = np.take_along_axis(in_pool, pos, axis=1)
    pool = np.where(valid, pos, -1).astype(np.int32)

    def at_pool(plane, fill):
        got = np.take_along_axis(np.asarray(plane), pos, axis=1)
        return np.where(valid, got, fill)

    engage, like = _rating_heads(dataset, rows)
    log_pop = np.log1p(pop)
    pop_head = (log_pop / log_pop.max() if log_pop.max() > 0 else log_pop).astype(
        np.float32
    )
    item_head = {"engage": engage, "like": like, "pop": pop_head}
    chan = np.stack([at_pool(planes[c], 0.0) for c in CHANNELS]).astype(np.float32)
    heads = []
    for h in HEADS:
        if h == "cf":
            cf = np.float32(0.5) * (planes["cf"] + planes["item2item"])
            heads.append(at_pool(cf, 0.0))
        elif h == "content":
            heads.append(at_pool(planes["embedding"], 0.0))
        elif h == "recency":
            heads.append(at_pool(planes["fresh"], 0.0))
        else:
            heads.append(np.where(valid, item_head[h][np.maximum(pool, 0)], 0.0))
    heads_arr = np.stack(heads).astype(np.float32)

    genres = category_matrix(dataset.categories)
    n_visible = int(np.count_nonzero(np.asarray(graph.activity)))
    novelty = -np.log2((pop + 1.0) / (n_visible + 1.0))
    features = Features(
        pool=pool,
        ranks=np.stack([at_pool(ranks[c], NO_RANK) for c in CHANNELS]).astype(np.int16),
        chan=chan,
        heads=heads_arr,
        log_heads=np.log(heads_arr + np.float32(LOG_EPS)).astype(np.float32),
        target=np.asarray(targets, np.int32),
        genres=genres,
        emb=np.asarray(embeddings, np.float32),
        novelty=novelty.astype(np.float32),
        nov_norm=(novelty / novelty.max()).astype(np.float32),
    )
    return features, graph


def _round_up(n: int, step: int) -> int:
    return max(step, -(-n // step) * step)


def pad_features(f: Features, user_step: int = 64, pool_step: int = 128) -> Features:
    """Pad users and pool to multiples of the steps (``-1`` ids, no ranks), so
    pipelines of similar size share one compiled kernel."""
    u, m = f.pool.shape
    pu, pm = _round_up(u, user_step) - u, _round_up(m, pool_step) - m

    def pad(a, value, lead=0):
        width = [(0, 0)] * lead + [(0, pu), (0, pm)]
        return np.pad(a, width, constant_values=value)

    return dataclasses.replace(
        f,
        pool=pad(f.pool, -1),
        ranks=pad(f.ranks, NO_RANK, 1),
        chan=pad(f.chan, 0.0, 1),
        heads=pad(f.heads, 0.0, 1),
        log_heads=pad(f.log_heads, np.float32(np.log(LOG_EPS)), 1),
        target=np.pad(f.target, (0, pu), constant_values=-1),
    )
