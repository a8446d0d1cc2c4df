"""Graph kernels over the user-item interaction graph (pure JAX).

The bipartite graph has an edge for each distinct (user, item) pair: duplicate
interactions count once. Build an :class:`InteractionGraph` once from
``user_idx: int[n], item_idx: int[n]``; every query kernel is jitted, batched
over query users ``i32[q]`` (or takes one id ``i32[]``), and returns
fixed-shape arrays padded with id ``-1`` / score ``0`` when there are fewer
candidates than asked for. Ties always go to the smaller id.

Definitions (``H(u)``: distinct items of user ``u``; ``C = X.T @ X`` for the
0/1 matrix ``X: [u, i]``):

- co-occurrence ``C[i, j]``: users who interacted with both ``i`` and ``j``;
  normalised as lift ``C n_users / (p_i p_j)``, cosine ``C / sqrt(p_i p_j)`` or
  Jaccard ``C / (p_i + p_j - C)``, with popularity ``p_i = C[i, i]``.
- top co-occurring items for a user: ``score(u, j) = sum_{i in H(u)} C[i, j]``
  for ``j`` not in ``H(u)``, score > 0; equal to the number of 2-hop paths
  ``u -> i -> v -> j``.
- user neighbours: cosine of 0/1 interaction vectors, the user excluded.
- personalised PageRank: ``networkx.pagerank`` on the bipartite graph,
  restarting at the user's items.

Dense/sparse switch-over: the graph keeps ``C: f32[i, i]`` dense when
``4 * n_items**2 <= dense_bytes`` (default 1 GiB, i.e. up to 16,384 items) and
``n_items**2 <= 64 * edges``; ``X: bf16[u, i]`` likewise with ``2 * n_users *
n_items`` bytes and ``n_users * n_items`` cells. Without them the same kernels
gather along the edge lists (cost ``q * edges``, memory bounded by chunking the
query batch), with identical results.

Building blocks (:func:`history_rows`, :func:`propagate`, :func:`overlap`,
:func:`spread`, :func:`top_n`, :func:`take_rows`) take either path and are
public for kernels elsewhere (e.g. per-candidate signals).
"""

from __future__ import annotations

from ._graph_build import (
    DENSE_BYTES,
    DENSE_CELLS_PER_EDGE,
    InteractionGraph,
    cooccurrence_counts,
    decayed_popularity,
    degree,
    last_interaction,
)
from ._graph_nx import neighbourhood_graph
from ._graph_ops import (
    TopN,
    history_rows,
    overlap,
    propagate,
    spread,
    take_rows,
    top_n,
)
from ._graph_query import (
    MEASURES,
    CoOccurring,
    Measure,
    Neighbours,
    PairMeasures,
    TwoHop,
    cooccurrence_measure,
    neighbour_items,
    pair_measures,
    recommend_cooccurring,
    top_cooccurring,
    two_hop_paths,
    user_neighbours,
)
from ._graph_walk import PageRank, personalized_pagerank, ppr_recommend

__all__ = [
    "DENSE_BYTES",
    "DENSE_CELLS_PER_EDGE",
    "MEASURES",
    "CoOccurring",
    "InteractionGraph",
    "Measure",
    "Neighbours",
    "PageRank",
    "PairMeasures",
    "TopN",
    "TwoHop",
    "cooccurrence_counts",
    "cooccurrence_measure",
    "decayed_popularity",
    "degree",
    "history_rows",
    "last_interaction",
    "neighbour_items",
    "neighbourhood_graph",
    "overlap",
    "pair_measures",
    "personalized_pagerank",
    "ppr_recommend",
    "propagate",
    "recommend_cooccurring",
    "spread",
    "take_rows",
    "top_cooccurring",
    "top_n",
    "two_hop_paths",
    "user_neighbours",
]
