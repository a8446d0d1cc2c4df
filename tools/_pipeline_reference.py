"""A straightforward numpy implementation of the pipeline, one user at a time.

It reads the same :class:`Features` and :class:`Params` as the jitted kernel
and follows the stages as a reader would write them (stable sorts, a plain
MMR loop), so tests can check the kernel against it and the benchmark can
time the kernel against it. Float32 arithmetic in the same order as the
kernel, so the lists agree exactly, ties included.
"""

from __future__ import annotations

import numpy as np

from ._pipeline_config import LIST_SIZE, Params
from ._pipeline_features import Features
from ._pipeline_kernel import DISCOUNT

__all__ = ["evaluate_reference"]


def _fuse(planes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    acc = np.zeros(planes.shape[1:], np.float32)
    for k in range(planes.shape[0]):
        acc = acc + weights[k] * planes[k]
    return acc


def _one_user(f: Features, p: Params, u: int) -> dict:
    pool = f.pool[u]
    recalled = pool >= 0
    by_channel = np.zeros_like(recalled)
    for c in range(f.ranks.shape[0]):
        by_channel |= f.ranks[c, u].astype(np.int32) < p.slots[c]
    recalled &= by_channel

    pre = _fuse(f.chan[:, u], p.w_pre)
    cand = np.flatnonzero(recalled)
    kept = cand[np.argsort(-pre[cand], kind="stable")][: int(p.keep_top)]

    planes = f.log_heads if bool(p.multiplicative) else f.heads
    score = _fuse(planes[:, u, kept], p.w_rank)
    window = kept[np.argsort(-score, kind="stable")][: int(p.window)]
    wscore = score[np.argsort(-score, kind="stable")][: len(window)]
    items = pool[window]

    lo, hi = wscore.min(), wscore.max()
    rel = (wscore - lo) / (hi - lo) if hi > lo else np.ones_like(wscore)
    rel = rel.astype(np.float32) + p.novelty_weight * f.nov_norm[items]
    g = f.genres[items]
    if bool(p.embedding_similarity):
        sim = f.emb[items] @ f.emb[items].T
    else:
        inter = g @ g.T
        size = g.sum(axis=1)
        union = size[:, None] + size[None, :] - inter
        sim = np.where(union > 0, inter / np.where(union > 0, union, 1), 0)
        sim = sim.astype(np.float32)

    lam = p.mmr_lambda
    rest = np.float32(1.0) - lam
    chosen: list[int] = []
    maxsim = np.zeros(len(items), np.float32)
    count = np.zeros(g.shape[1], np.float32)
    for _ in range(LIST_SIZE):
        left = [j for j in range(len(items)) if j not in chosen]
        if not left:
            break
        fullest = {j: float((g[j] * count).max()) if g.shape[1] else 0.0 for j in left}
        least = min(fullest.values())
        pool_j = [j for j in left if fullest[j] < max(float(p.cap), least + 1.0)]
        gain = lam * rel - rest * maxsim
        best = max(pool_j, key=lambda j: (gain[j], -j))
        chosen.append(best)
        count += g[best]
        maxsim = np.maximum(maxsim, sim[best])
    top = np.full(LIST_SIZE, -1, np.int32)
    top[: len(chosen)] = items[chosen]
    top_pos = np.full(LIST_SIZE, -1, np.int32)
    top_pos[: len(chosen)] = window[chosen]
    return {
        "top": top,
        "top_pos": top_pos,
        "recall_hit": float(f.target[u] in pool[recalled]),
        "prerank_hit": float(f.target[u] in pool[kept]),
        **_metrics(f, top[: len(chosen)], int(f.target[u])),
    }


def _metrics(f: Features, top: np.ndarray, target: int) -> dict:
    where = np.flatnonzero(top == target)
    ndcg = float(DISCOUNT[where[0]]) if where.size else 0.0
    n = len(top)
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    if pairs:
        g = f.genres[top]
        e = f.emb[top]
        jac = []
        for a, b in pairs:
            inter = float(g[a] @ g[b])
            union = float(g[a].sum() + g[b].sum() - inter)
            jac.append(inter / union if union > 0 else 0.0)
        ild = float(np.mean(1.0 - np.asarray(jac)))
        ild_e = float(np.mean([1.0 - float(e[a] @ e[b]) for a, b in pairs]))
    else:
        ild = ild_e = 0.0
    novelty = float(f.novelty[top].mean()) if n else 0.0
    return {
        "ndcg": ndcg,
        "hr": float(where.size > 0),
        "ild": ild,
        "ild_embedding": ild_e,
        "novelty": novelty,
    }


def evaluate_reference(
    f: Features, p: Params, rows: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Evaluate one config user by user.

    Args:
        f: numpy :class:`Features`.
        p: :class:`Params`.
        rows: user rows of ``f`` to evaluate (default all).

    Returns:
        ``top``/``top_pos``: ``i32[n, 10]``; ``ndcg``, ``hr``, ``ild``,
        ``ild_embedding``, ``novelty``, ``recall_hit``, ``prerank_hit``:
        ``f64[n]``.
    """
    rows = np.arange(len(f.target)) if rows is None else np.asarray(rows)
    out = [_one_user(f, p, int(u)) for u in rows]
    return {k: np.asarray([o[k] for o in out]) for k in out[0]} if out else {}
