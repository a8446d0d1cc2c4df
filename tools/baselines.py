"""Non-agent baselines for candidate ranking: random, popularity, ItemKNN.

Each returns ``f32[q, c]`` scores for candidate matrices ``cands: i32[q, c]``
(higher is better, ``-inf`` for padding), so every method is evaluated by the
same :func:`agenticrec.tools.metrics.rank_of_target`. ItemKNN is the
co-occurrence recommender: the number of 2-hop paths from the user's history
to the candidate (:func:`agenticrec.tools.signals.cooccurrence_scores`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from agenticrec.tools.graph import InteractionGraph
from agenticrec.tools.signals import cooccurrence_scores

__all__ = ["itemknn_scores", "popularity_scores", "random_scores"]


def random_scores(cands: np.ndarray, seed: int = 0) -> np.ndarray:
    """Uniform random scores (seeded): the floor every method must beat."""
    rng = np.random.default_rng(seed)
    out = rng.random(cands.shape)
    return np.where(cands >= 0, out, -np.inf)


def popularity_scores(g: InteractionGraph, cands: np.ndarray) -> np.ndarray:
    """Distinct users per candidate in the visible interactions."""
    pop = np.asarray(g.popularity)
    return np.where(cands >= 0, pop[np.clip(cands, 0, None)], -np.inf)


def itemknn_scores(
    g: InteractionGraph,
    hist_ptr: np.ndarray,
    hist_items: np.ndarray,
    users: np.ndarray,
    cands: np.ndarray,
    batch: int = 64,
) -> np.ndarray:
    """Co-occurrence paths from each user's visible history to each candidate."""
    out = np.empty(cands.shape, np.float64)
    lengths = hist_ptr[users + 1] - hist_ptr[users]
    width = 1 << max(3, int(np.ceil(np.log2(max(int(lengths.max(initial=1)), 1)))))
    for s in range(0, len(users), batch):
        us = users[s : s + batch]
        items = np.full((len(us), width), -1, np.int32)
        for r, u in enumerate(us):
            h = hist_items[hist_ptr[u] : hist_ptr[u + 1]]
            items[r, : h.size] = h
        sc = cooccurrence_scores(
            g, jnp.asarray(items), jnp.asarray(cands[s : s + batch])
        )
        out[s : s + batch] = np.asarray(sc)
    # a tiny popularity tie-break so users with no co-occurrence are not all ties
    pop = popularity_scores(g, cands)
    return np.where(cands >= 0, out + 1e-6 * pop / max(1.0, pop.max()), -np.inf)
