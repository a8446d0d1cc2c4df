"""The jitted evaluation: recall -> pre-rank -> rank -> re-rank -> metrics.

One call evaluates one config for every user of a :class:`Features` batch.
Knobs arrive as traced arrays (:class:`Params`), so configs never recompile;
the static sizes are the feature shapes and the bounds ``MAX_KEEP_TOP``,
``MAX_WINDOW`` and ``LIST_SIZE``. Tie rule everywhere: the earlier position
wins (``lax.top_k`` and ``argmax`` keep the lower index), i.e. the smaller item
id in pre-ranking, the better pre-ranked item in ranking, the better ranked
item in MMR.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._pipeline_config import LIST_SIZE, MAX_KEEP_TOP, MAX_WINDOW, Params
from ._pipeline_features import Features

__all__ = ["DISCOUNT", "Outputs", "evaluate_kernel"]

DISCOUNT = (1.0 / np.log2(np.arange(LIST_SIZE) + 2.0)).astype(np.float32)
"""``f32[10]`` NDCG gain of a hit at each position (one relevant item)."""


class Outputs(NamedTuple):
    """Per-user results of one config (``U`` users, ``L = 10``)."""

    top: jax.Array
    """``i32[U, L]`` final list, best first, ``-1`` where empty."""
    top_pos: jax.Array
    """``i32[U, L]`` pool column of each final item (``-1`` where empty)."""
    window: jax.Array
    """``i32[U, MAX_WINDOW]`` ranked window (ranking order), ``-1`` beyond it."""
    ndcg: jax.Array
    """``f32[U]`` NDCG@10 of the held-out item."""
    hr: jax.Array
    """``f32[U]`` 1 if the held-out item is in the list."""
    ild: jax.Array
    """``f32[U]`` mean pairwise genre Jaccard distance."""
    ild_embedding: jax.Array
    """``f32[U]`` mean pairwise ``1 - cosine`` of embeddings."""
    novelty: jax.Array
    """``f32[U]`` mean novelty bits of the list."""
    recall_hit: jax.Array
    """``f32[U]`` 1 if the held-out item was recalled."""
    prerank_hit: jax.Array
    """``f32[U]`` 1 if it survived pre-ranking."""


def fuse(planes: jax.Array, weights: jax.Array) -> jax.Array:
    """``sum_k weights[k] * planes[k]``, accumulated in index order.

    Args:
        planes: ``f32[k, ...]``.
        weights: ``f32[k]``.
    """
    acc = jnp.zeros(planes.shape[1:], jnp.float32)
    for k in range(planes.shape[0]):
        acc = acc + weights[k] * planes[k]
    return acc


def _similarity(g: jax.Array, e: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Pairwise genre Jaccard and embedding cosine of ``[U, n, G]``/``[U, n, D]``
    item rows: two ``f32[U, n, n]``."""
    inter = jnp.einsum("uag,ubg->uab", g, g)
    size = jnp.sum(g, axis=-1)
    union = size[:, :, None] + size[:, None, :] - inter
    jac = jnp.where(union > 0, inter / jnp.where(union > 0, union, 1.0), 0.0)
    cos = jnp.einsum("uad,ubd->uab", e, e)
    return jac, cos


def _mmr(rel, sim, g, valid, p: Params):
    """Greedy MMR with a soft category cap; returns ``i32[U, L]`` window columns.

    An item is admissible while each of its categories has fewer than ``cap``
    items in the list; when no remaining item is, the cap relaxes to the items
    whose fullest category is least full (so a list is never left short).
    """
    lam = p.mmr_lambda
    rest = 1.0 - lam
    u, w = rel.shape
    chosen = jnp.zeros((u, w), bool)
    maxsim = jnp.zeros((u, w), jnp.float32)
    count = jnp.zeros((u, g.shape[-1]), jnp.float32)
    cols = jnp.arange(w, dtype=jnp.int32)[None, :]
    picks = []
    for _ in range(LIST_SIZE):
        gain = lam * rel - rest * maxsim
        eligible = valid & ~chosen
        # fullest category of each item so far; the cap admits items below it,
        # else (cap infeasible) the items whose fullest category is least full
        fullest = jnp.max(g * count[:, None, :], axis=2)
        least = jnp.min(jnp.where(eligible, fullest, jnp.inf), axis=1, keepdims=True)
        bar = jnp.maximum(p.cap.astype(jnp.float32), least + 1.0)
        use = eligible & (fullest < bar)
        has = jnp.any(use, axis=1)
        pick = jnp.argmax(jnp.where(use, gain, -jnp.inf), axis=1).astype(jnp.int32)
        hot = (cols == pick[:, None]) & has[:, None]
        chosen = chosen | hot
        count = count + jnp.einsum("uwg,uw->ug", g, hot.astype(jnp.float32))
        row = jnp.take_along_axis(sim, pick[:, None, None], axis=1)[:, 0, :]
        maxsim = jnp.where(has[:, None], jnp.maximum(maxsim, row), maxsim)
        picks.append(jnp.where(has, pick, -1))
    return jnp.stack(picks, axis=1)


def _list_metrics(f: Features, top: jax.Array):
    valid = top >= 0
    it = jnp.maximum(top, 0)
    hit = valid & (top == f.target[:, None])
    hr = jnp.any(hit, axis=1)
    ndcg = jnp.where(hr, jnp.asarray(DISCOUNT)[jnp.argmax(hit, axis=1)], 0.0)
    g = f.genres[it] * valid[..., None]
    jac, cos = _similarity(g, f.emb[it])
    n = top.shape[1]
    upper = jnp.triu(jnp.ones((n, n), bool), k=1)
    pair = valid[:, :, None] & valid[:, None, :] & upper
    npairs = jnp.sum(pair, axis=(1, 2))
    denom = jnp.maximum(npairs, 1).astype(jnp.float32)
    ild = jnp.sum(jnp.where(pair, 1.0 - jac, 0.0), axis=(1, 2)) / denom
    ild_e = jnp.sum(jnp.where(pair, 1.0 - cos, 0.0), axis=(1, 2)) / denom
    nlist = jnp.maximum(jnp.sum(valid, axis=1), 1).astype(jnp.float32)
    novelty = jnp.sum(jnp.where(valid, f.novelty[it], 0.0), axis=1) / nlist
    return ndcg, hr.astype(jnp.float32), ild, ild_e, novelty


@jax.jit
def evaluate_kernel(f: Features, p: Params) -> Outputs:
    """Run the four stages and the metrics for every user row of ``f``.

    Args:
        f: device :class:`Features` (``U`` users, pool width ``M``).
        p: :class:`Params` of one config, as arrays.

    Returns:
        :class:`Outputs`.
    """
    n_chan = f.ranks.shape[0]
    u, m = f.pool.shape
    in_pool = f.pool >= 0
    hits = jnp.zeros((u, m), bool)
    for c in range(n_chan):
        hits = hits | (f.ranks[c].astype(jnp.int32) < p.slots[c])
    recalled = in_pool & hits

    pre = jnp.where(recalled, fuse(f.chan, p.w_pre), -jnp.inf)
    k = min(MAX_KEEP_TOP, m)
    kval, kpos = jax.lax.top_k(pre, k)
    kept = (jnp.arange(k) < p.keep_top)[None, :] & (kval > -jnp.inf)

    heads = jnp.take_along_axis(f.heads, kpos[None], axis=2)
    logs = jnp.take_along_axis(f.log_heads, kpos[None], axis=2)
    score = jnp.where(p.multiplicative, fuse(logs, p.w_rank), fuse(heads, p.w_rank))
    score = jnp.where(kept, score, -jnp.inf)
    w = min(MAX_WINDOW, k)
    wval, wcol = jax.lax.top_k(score, w)
    wvalid = (jnp.arange(w) < p.window)[None, :] & (wval > -jnp.inf)
    wpos = jnp.take_along_axis(kpos, wcol, axis=1)
    witems = jnp.where(wvalid, jnp.take_along_axis(f.pool, wpos, axis=1), -1)

    lo = jnp.min(jnp.where(wvalid, wval, jnp.inf), axis=1, keepdims=True)
    hi = jnp.max(jnp.where(wvalid, wval, -jnp.inf), axis=1, keepdims=True)
    span = hi - lo
    rel = jnp.where(span > 0, (wval - lo) / jnp.where(span > 0, span, 1.0), 1.0)
    rel = jnp.where(wvalid, rel, 0.0)
    it = jnp.maximum(witems, 0)
    rel = rel + p.novelty_weight * f.nov_norm[it]
    g = f.genres[it] * wvalid[..., None]
    jac, cos = _similarity(g, f.emb[it])
    sim = jnp.where(p.embedding_similarity, cos, jac)
    picks = _mmr(rel, sim, g, wvalid, p)

    chosen = picks >= 0
    safe = jnp.maximum(picks, 0)
    top = jnp.where(chosen, jnp.take_along_axis(witems, safe, axis=1), -1)
    top_pos = jnp.where(chosen, jnp.take_along_axis(wpos, safe, axis=1), -1)
    ndcg, hr, ild, ild_e, novelty = _list_metrics(f, top)

    is_target = f.pool == f.target[:, None]
    recall_hit = jnp.any(recalled & is_target, axis=1)
    kept_items = jnp.take_along_axis(f.pool, kpos, axis=1)
    prerank_hit = jnp.any(kept & (kept_items == f.target[:, None]), axis=1)
    pad = MAX_WINDOW - w
    window = jnp.pad(witems, ((0, 0), (0, pad)), constant_values=-1)
    return Outputs(
        top=top,
        top_pos=top_pos,
        window=window,
        ndcg=ndcg,
        hr=hr,
        ild=ild,
        ild_embedding=ild_e,
        novelty=novelty,
        recall_hit=recall_hit.astype(jnp.float32),
        prerank_hit=prerank_hit.astype(jnp.float32),
    )
