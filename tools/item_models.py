"""Fitted item-item models the teacher's analysts query: EASE^R over the
whole or the recency-weighted history, cosine ItemKNN, and sequential
transitions.

Each scores a user as a weighted sum of matrix rows over their history,
``s(u, j) = sum_t w_t M[h_t, j]``; the models differ in ``M`` and ``w``:

- ``ease``: ``M = B`` (:mod:`.ease`), ``w_t = 1``;
- ``recent_ease``: ``M = B``, ``w_t = decay ** age_t`` (age 0: the newest item);
- ``cosine``: ``M[i, j] = G[i, j] / sqrt(G[i, i] G[j, j])`` off the diagonal,
  computed from the shared Gram matrix ``G`` (:mod:`.itemknn`) by a scale
  vector, never stored;
- ``sequence``: ``M = T``, ``T[i, j] = sum`` over users and gaps
  ``1 <= d <= window`` of ``1/d`` when ``j`` follows ``i`` ``d`` steps later in
  the user's time-ordered history; ``w_t = decay ** age_t`` over the last
  ``last`` items, 0 before. Leave-one-out by time asks for the *next* item,
  which order-free models cannot see.

Two jitted kernels serve every model: :func:`candidate_scores` gathers
``M[h, c]`` (``s * c`` work per user, the tools' path, which also returns the
history item contributing most, for evidence) and :func:`history_scores`
multiplies a weighted history vector by ``M`` (the whole catalogue, for
retrieval and fitting). Matrices live over the graph's *active* items.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .ease import ease_fit
from .graph import InteractionGraph
from .itemknn import ItemGram, _Cache, graph_fingerprint, item_gram

__all__ = [
    "ITEM_MODELS",
    "ItemModels",
    "PairSupport",
    "candidate_scores",
    "fit_item_models",
    "history_scores",
    "history_weights",
    "transition_matrix",
]

ITEM_MODELS = ("ease", "recent_ease", "cosine", "sequence")
"""The models of :class:`ItemModels`, as signals."""

_HIGHEST = jax.lax.Precision.HIGHEST
MAX_DENSE_BYTES = 2 << 30
"""Largest dense ``f32[a, a]`` matrix built (a = active items); 2 GiB is
about 23,000 active items. Larger catalogues raise a clear error."""


class PairSupport(NamedTuple):
    """Per-candidate scores of one model and the history item behind each."""

    score: jax.Array
    """f32[q, c] ``sum_t w_t M[h_t, c]`` (0 at padding)."""
    via: jax.Array
    """i32[q, c] the history item with the largest ``w_t M[h_t, c]`` (ties:
    the earlier position; ``-1`` when no term is positive)."""
    via_value: jax.Array
    """f32[q, c] that term ``w_t M[h_t, c]`` (0 when ``via`` is -1)."""


def _positions(pos: jax.Array, ids: jax.Array) -> jax.Array:
    ok = (ids >= 0) & (ids < pos.shape[0])
    return jnp.where(ok, pos[jnp.clip(ids, 0, pos.shape[0] - 1)], -1)


@jax.jit
def candidate_scores(
    m: jax.Array,
    pos: jax.Array,
    hist: jax.Array,
    w: jax.Array,
    cands: jax.Array,
    scale: jax.Array | None = None,
) -> PairSupport:
    """Scores of candidates under one item-item model.

    Args:
        m: f32[a, a] the model over active items.
        pos: i32[n_items] item id -> row of ``m`` (-1: inactive item).
        hist: i32[q, s] history item ids (-1 pads).
        w: f32[q, s] weight of each history position.
        cands: i32[q, c] candidate item ids (-1 pads).
        scale: optional f32[a]: use ``scale[i] m[i, j] scale[j]`` with the
            diagonal zeroed (cosine from a Gram matrix).

    Returns:
        :class:`PairSupport` of ``[q, c]`` arrays (unbatched ``[s]``/``[c]``
        inputs give ``[c]`` outputs).
    """
    if hist.ndim == 1:
        out = candidate_scores(m, pos, hist[None], w[None], cands[None], scale)
        return PairSupport(*(x[0] for x in out))
    hp, cp = _positions(pos, hist), _positions(pos, cands)
    ok_h, ok_c = hp >= 0, cp >= 0
    sh, sc = jnp.clip(hp, 0), jnp.clip(cp, 0)
    pair = m[sh[:, :, None], sc[:, None, :]]  # [q, s, c]
    if scale is not None:
        pair = pair * scale[sh][:, :, None] * scale[sc][:, None, :]
        pair = jnp.where(sh[:, :, None] == sc[:, None, :], 0.0, pair)
    valid = ok_h[:, :, None] & ok_c[:, None, :]
    contrib = jnp.where(valid, pair * w[:, :, None], 0.0)
    score = jnp.sum(contrib, axis=1)
    best = jnp.argmax(jnp.where(valid, contrib, -jnp.inf), axis=1)  # [q, c]
    value = jnp.take_along_axis(contrib, best[:, None, :], axis=1)[:, 0, :]
    via = jnp.take_along_axis(hist, best, axis=1)
    ok = value > 0
    return PairSupport(
        score, jnp.where(ok, via, -1), jnp.where(ok, value, 0.0).astype(jnp.float32)
    )


@jax.jit
def history_scores(
    m: jax.Array,
    pos: jax.Array,
    hist: jax.Array,
    w: jax.Array,
    scale: jax.Array | None = None,
) -> jax.Array:
    """f32[q, a] scores of every active item: ``x @ M`` for the weighted
    history vector ``x[i] = sum_{t: h_t = i} w_t`` (same arguments as
    :func:`candidate_scores`). With ``scale``, the diagonal is excluded.

    Computed as a loop over history positions adding ``w_t M[h_t]`` (row
    gathers): ``q * s * a`` work instead of the dense ``q * a * a`` product,
    since histories are short next to the catalogue.
    """
    hp = _positions(pos, hist)
    q, a = hist.shape[0], m.shape[0]
    ok = hp >= 0
    wt = jnp.where(ok, w, 0.0).astype(jnp.float32)
    sh = jnp.clip(hp, 0)
    if scale is not None:
        wt = wt * scale[sh]
    cols = jnp.arange(a, dtype=jnp.int32)[None, :]

    def step(t, acc):
        row = m[sh[:, t]]  # [q, a]
        if scale is not None:
            row = jnp.where(cols == sh[:, t, None], 0.0, row)
        return acc + wt[:, t, None] * row

    out = jax.lax.fori_loop(0, hist.shape[1], step, jnp.zeros((q, a), jnp.float32))
    return out if scale is None else out * scale[None, :]


def history_weights(
    lengths: np.ndarray, width: int, decay: float, last: int = 0
) -> np.ndarray:
    """f32[q, width] ``decay ** age`` per history position.

    Histories are left-aligned (position 0 the oldest, then -1 pads), so a
    row of length ``n`` has age ``n - 1 - t`` at position ``t``; positions past
    ``n`` and (with ``last > 0``) ages ``>= last`` get 0.
    """
    lengths = np.asarray(lengths, np.int64).reshape(-1, 1)
    t = np.arange(width)[None, :]
    age = lengths - 1 - t
    w = np.where(age >= 0, float(decay) ** np.maximum(age, 0), 0.0)
    if last > 0:
        w = np.where(age < last, w, 0.0)
    return w.astype(np.float32)


def _check_dense(a: int, what: str) -> None:
    if 4 * a * a > MAX_DENSE_BYTES:
        from agenticrec.errors import ConfigError

        raise ConfigError(
            f"{what} needs a dense {a} x {a} float32 matrix "
            f"({4 * a * a / 2**30:.1f} GiB, over the {MAX_DENSE_BYTES / 2**30:.0f} "
            "GiB limit); filter the catalogue to fewer active items"
        )


@functools.partial(jax.jit, static_argnames=("a",))
def _scatter(rows: jax.Array, cols: jax.Array, vals: jax.Array, a: int) -> jax.Array:
    return jnp.zeros((a, a), jnp.float32).at[rows, cols].add(vals)


def transition_matrix(
    hist_ptr: np.ndarray, hist_items: np.ndarray, pos: np.ndarray, window: int = 3
) -> jax.Array:
    """f32[a, a] ``T`` (module docstring) from time-ordered CSR histories.

    Args:
        hist_ptr: int[n_users + 1]; hist_items: int[k] oldest first per user.
        pos: int[n_items] item -> active index (-1: inactive, skipped).
        window: largest gap ``d`` counted (>= 1).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    ptr = np.asarray(hist_ptr, np.int64)
    items = np.asarray(hist_items, np.int64)
    pos = np.asarray(pos, np.int64)
    a = int(pos.max(initial=-1)) + 1
    _check_dense(a, "the sequence model")
    owner = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    rows, cols, vals = [], [], []
    for d in range(1, window + 1):
        src = np.arange(items.size - d)
        same = owner[src] == owner[src + d]
        pi, pj = pos[items[src[same]]], pos[items[src[same] + d]]
        ok = (pi >= 0) & (pj >= 0)
        rows.append(pi[ok])
        cols.append(pj[ok])
        vals.append(np.full(int(ok.sum()), 1.0 / d, np.float32))
    return _scatter(
        jnp.asarray(np.concatenate(rows), jnp.int32),
        jnp.asarray(np.concatenate(cols), jnp.int32),
        jnp.asarray(np.concatenate(vals)),
        a,
    )


_TRANSITIONS = _Cache(2)


def _transitions(g, hist_ptr, hist_items, pos, window) -> jax.Array:
    """:func:`transition_matrix`, cached by graph, history order and window
    (the fit tries many decays and penalties over one matrix)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(np.ascontiguousarray(hist_ptr, np.int64).tobytes())
    h.update(np.ascontiguousarray(hist_items, np.int64).tobytes())
    key = (graph_fingerprint(g), h.hexdigest(), int(window))
    return _TRANSITIONS.get(
        key, lambda: transition_matrix(hist_ptr, hist_items, pos, window)
    )


@dataclass(frozen=True, eq=False)
class ItemModels:
    """The fitted models of one visible graph (see the module docstring).

    Attributes:
        gram: the active-item Gram matrix (shared with the baselines).
        pos: int32[n_items] item -> active index (-1: inactive).
        ease: f32[a, a] EASE^R ``B`` with penalty ``lam``.
        inv_norm: f32[a] ``1 / sqrt(G[i, i])`` (cosine scale).
        trans: f32[a, a] transitions within ``window`` steps.
        recency: per-step decay of ``recent_ease``.
        seq_decay, seq_last: decay and number of newest items of ``sequence``.
    """

    gram: ItemGram
    pos: jax.Array
    ease: jax.Array
    inv_norm: jax.Array
    trans: jax.Array
    lam: float
    recency: float
    window: int
    seq_decay: float
    seq_last: int

    def matrix(self, model: str) -> tuple[jax.Array, jax.Array | None]:
        """``(M, scale)`` of ``model`` (one of :data:`ITEM_MODELS`)."""
        if model in ("ease", "recent_ease"):
            return self.ease, None
        if model == "cosine":
            return self.gram.gram, self.inv_norm
        if model == "sequence":
            return self.trans, None
        raise ValueError(f"unknown item model {model!r}; choose from {ITEM_MODELS}")

    def weights(self, model: str, lengths: np.ndarray, width: int) -> np.ndarray:
        """f32[q, width] history weights of ``model`` for left-aligned rows."""
        if model == "recent_ease":
            return history_weights(lengths, width, self.recency)
        if model == "sequence":
            return history_weights(lengths, width, self.seq_decay, self.seq_last)
        return history_weights(lengths, width, 1.0)


def fit_item_models(
    g: InteractionGraph,
    hist_ptr: np.ndarray,
    hist_items: np.ndarray,
    *,
    lam: float,
    recency: float,
    window: int,
    seq_decay: float,
    seq_last: int,
    persist: bool = False,
) -> ItemModels:
    """:class:`ItemModels` of graph ``g`` with its time-ordered histories
    (EASE weights cached by graph and ``lam``, on disk with ``persist``,
    see :func:`.ease.ease_fit`)."""
    if not 0.0 < recency <= 1.0 or not 0.0 < seq_decay <= 1.0:
        raise ValueError(
            f"decays must be in (0, 1], got recency={recency}, seq_decay={seq_decay}"
        )
    if seq_last < 1:
        raise ValueError(f"seq_last must be >= 1, got {seq_last}")
    gram = item_gram(g)
    _check_dense(int(gram.items.size), "EASE^R")
    _, b = ease_fit(g, lam, persist=persist)
    pos = np.full(g.n_items, -1, np.int32)
    pos[gram.items] = np.arange(gram.items.size, dtype=np.int32)
    diag = jnp.diagonal(gram.gram)
    inv = jnp.where(diag > 0, 1.0 / jnp.sqrt(jnp.maximum(diag, 1e-12)), 0.0)
    trans = _transitions(g, hist_ptr, hist_items, pos, window)
    return ItemModels(
        gram=gram,
        pos=jnp.asarray(pos),
        ease=b,
        inv_norm=inv.astype(jnp.float32),
        trans=trans,
        lam=float(lam),
        recency=float(recency),
        window=int(window),
        seq_decay=float(seq_decay),
        seq_last=int(seq_last),
    )
