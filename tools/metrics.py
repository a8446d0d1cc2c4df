"""Ranking metrics as small pure functions over rank positions.

Every metric takes ``ranks: int[u]``, the 0-based position of each user's
held-out item in that user's ranked list (``-1`` or ``>= k`` when it is not in
the top k), so one ranking pass serves all metrics. Leave-one-out protocols have
one relevant item per user, which makes HR@k equal Recall@k and NDCG@k equal
``1 / log2(rank + 2)`` when the item is ranked within k.
"""

from __future__ import annotations

import numpy as np

__all__ = ["hit_rate", "mrr", "ndcg", "rank_of_target", "summarize"]


def rank_of_target(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """0-based rank of ``target`` under ``scores`` (higher is better).

    Ties are counted pessimistically (the target ranks after every item with an
    equal score), so a constant scorer earns nothing from tie order.

    Args:
        scores: ``f[u, c]`` candidate scores; ``-inf`` excludes a candidate.
        target: ``int[u]`` column of the held-out item in ``scores``.
    Returns:
        ``int[u]`` ranks.
    """
    scores = np.asarray(scores, dtype=np.float64)
    target = np.asarray(target)
    if scores.ndim != 2 or target.shape != (scores.shape[0],):
        raise ValueError(
            f"scores must be [u, c] and target [u]; got {scores.shape}, {target.shape}"
        )
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    t = scores[np.arange(len(target)), target][:, None]
    better_or_tied = (scores >= t).sum(axis=1) - 1
    return better_or_tied.astype(np.int64)


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """Share of users whose item is in the top ``k`` (= Recall@k here)."""
    ranks = np.asarray(ranks)
    return float(np.mean((ranks >= 0) & (ranks < k))) if ranks.size else 0.0


def ndcg(ranks: np.ndarray, k: int) -> float:
    """Mean NDCG@k with one relevant item: ``1/log2(rank+2)`` inside the top k."""
    ranks = np.asarray(ranks)
    if not ranks.size:
        return 0.0
    inside = (ranks >= 0) & (ranks < k)
    gain = np.where(inside, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)
    return float(gain.mean())


def mrr(ranks: np.ndarray) -> float:
    """Mean reciprocal rank over the full list (0 for items not ranked)."""
    ranks = np.asarray(ranks)
    if not ranks.size:
        return 0.0
    return float(np.mean(np.where(ranks >= 0, 1.0 / (ranks + 1.0), 0.0)))


def summarize(ranks: np.ndarray, ks: tuple[int, ...] = (1, 3, 5, 10)) -> dict:
    """HR@k for each k, NDCG@10 and MRR, rounded for reports."""
    out = {f"HR@{k}": round(hit_rate(ranks, k), 6) for k in ks}
    out["NDCG@10"] = round(ndcg(ranks, 10), 6)
    out["MRR"] = round(mrr(ranks), 6)
    out["users"] = int(np.asarray(ranks).size)
    return out
