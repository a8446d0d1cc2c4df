"""LangChain tools over the graph kernels, bound to one interaction graph.

Each tool validates its ids, pads batch widths to a few buckets (so the jitted
kernels in :mod:`agenticrec.tools.graph` compile once per bucket), calls one
kernel and returns a JSON-ready dict whose numbers the evidence text quotes.
Ids are the compact ids of the graph (``0..n-1``); every result names its
dataset.

``TOOLS`` is bound lazily to the shipped ``ml-latest-small`` dataset: listing
the registry costs nothing, the first call builds the graph (~0.3 s), and the
``"dataset"`` field of every result says which data answered. Graphs that serve
another dataset build their own with :func:`make_graph_tools`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax.numpy as jnp
import numpy as np
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from .graph import (
    InteractionGraph,
    neighbour_items,
    pair_measures,
    ppr_recommend,
    top_cooccurring,
    two_hop_paths,
    user_neighbours,
)

__all__ = ["TOOLS", "GraphIndex", "embedded_index", "make_graph_tools"]

_BUCKETS = (8, 16, 32, 64, 128)


def _bucket(n: int) -> int:
    return next((b for b in _BUCKETS if b >= n), n)


def _r(x: float, digits: int = 4) -> float:
    return float(round(float(x), digits))


@dataclass(frozen=True)
class GraphIndex:
    """What the graph tools read: the graph, item titles and the dataset's name.

    Attributes:
        graph: the indexed interactions.
        titles: ``item id -> title`` (sequence or mapping), or ``None``.
        dataset: name reported in every result.
    """

    graph: InteractionGraph
    titles: Sequence[str] | Mapping[int, str] | None = None
    dataset: str = "unnamed"

    def title(self, item: int) -> str | None:
        if self.titles is None:
            return None
        try:
            return str(self.titles[item])
        except (IndexError, KeyError):
            return None

    def check_user(self, user: int) -> int:
        if not 0 <= int(user) < self.graph.n_users:
            raise ToolException(
                f"user {user} is not a user id of {self.dataset} "
                f"(valid: 0..{self.graph.n_users - 1})"
            )
        return int(user)

    def check_items(self, items: Sequence[int]) -> np.ndarray:
        arr = np.asarray(list(items), np.int64)
        if arr.size == 0:
            raise ToolException("give at least one item id")
        bad = arr[(arr < 0) | (arr >= self.graph.n_items)]
        if bad.size:
            raise ToolException(
                f"unknown item ids {bad[:5].tolist()} in {self.dataset} "
                f"(valid: 0..{self.graph.n_items - 1})"
            )
        return np.unique(arr).astype(np.int32)

    @functools.cached_property
    def popularity_rank(self) -> np.ndarray:
        """int[i] 1 + number of strictly more popular items."""
        pop = np.asarray(self.graph.popularity)
        return 1 + np.searchsorted(np.sort(-pop), -pop, side="left")

    def item(self, item: int, **fields: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"item": int(item)}
        if (title := self.title(item)) is not None:
            out["title"] = title
        return out | fields


IndexSource = GraphIndex | Callable[[], GraphIndex]


@functools.cache
def embedded_index() -> GraphIndex:
    """The shipped ``ml-latest-small`` dataset, indexed once per process."""
    from agenticrec import data

    ds = data.load()
    return GraphIndex(InteractionGraph.from_dataset(ds), ds.titles, ds.name)


def cooccurring_items(
    index: GraphIndex,
    items: list[int],
    n: int = 10,
    measure: Literal["count", "lift", "cosine", "jaccard"] = "lift",
    min_count: int = 5,
) -> dict[str, Any]:
    """Items co-occurring with a set of items, with per-pair counts and lift."""
    query = index.check_items(items)
    g = index.graph
    padded = np.full(_bucket(query.size), -1, np.int32)
    padded[: query.size] = query
    res = top_cooccurring(g, jnp.asarray(padded), _bucket(n), measure, min_count)
    pop = np.asarray(g.popularity)
    ids, scores = np.asarray(res.ids)[:n], np.asarray(res.scores)[:n]
    totals, pairs = np.asarray(res.co_counts)[:n], np.asarray(res.pair_counts)[:n]
    m = pair_measures(pairs, pop[padded][None, :], pop[ids][:, None], g.n_users)
    lift, cosine, jaccard = (np.asarray(a) for a in m)
    neighbours = []
    for r, j in enumerate(ids):
        if j < 0:
            break
        order = np.argsort(-pairs[r, : query.size], kind="stable")[:3]
        neighbours.append(
            {
                "neighbour": int(j),
                **({"title": t} if (t := index.title(int(j))) else {}),
                "score": _r(scores[r]),
                "co_count": int(totals[r]),
                "popularity": int(pop[j]),
                "pairs": [
                    {
                        "item": int(query[c]),
                        "co_count": int(pairs[r, c]),
                        "lift": _r(lift[r, c]),
                        "cosine": _r(cosine[r, c]),
                        "jaccard": _r(jaccard[r, c]),
                    }
                    for c in order
                    if pairs[r, c] > 0
                ],
            }
        )
    return {
        "dataset": index.dataset,
        "query": [index.item(int(i), popularity=int(pop[i])) for i in query],
        "measure": measure,
        "min_count": min_count,
        "users": g.n_users,
        "neighbours": neighbours,
    }


def two_hop_items(index: GraphIndex, user: int, n: int = 10) -> dict[str, Any]:
    """Unseen items by number of paths user -> item -> user -> item."""
    u = index.check_user(user)
    res = two_hop_paths(index.graph, jnp.int32(u), _bucket(n))
    pop = np.asarray(index.graph.popularity)
    rows = zip(*(np.asarray(a)[:n] for a in res), strict=True)
    return {
        "dataset": index.dataset,
        "user": u,
        "history_size": int(index.graph.activity[u]),
        "items": [
            index.item(j, paths=int(p), via_users=int(v), popularity=int(pop[j]))
            for j, p, v in rows
            if j >= 0
        ],
    }


def similar_users(index: GraphIndex, user: int, k: int = 10) -> dict[str, Any]:
    """Most similar users by cosine of interaction vectors."""
    u = index.check_user(user)
    res = user_neighbours(index.graph, jnp.int32(u), _bucket(k))
    act = np.asarray(index.graph.activity)
    rows = zip(*(np.asarray(a)[:k] for a in res), strict=True)
    return {
        "dataset": index.dataset,
        "user": u,
        "history_size": int(act[u]),
        "neighbours": [
            {
                "user": int(v),
                "cosine": _r(c),
                "shared_items": int(s),
                "history_size": int(act[v]),
            }
            for v, c, s in rows
            if v >= 0
        ],
    }


def knn_items(index: GraphIndex, user: int, k: int = 20, n: int = 10) -> dict:
    """Unseen items liked by the k most similar users."""
    u = index.check_user(user)
    # k is passed as is: more neighbours would change every score
    best, support = neighbour_items(index.graph, jnp.int32(u), k, _bucket(n))
    ids, scores = np.asarray(best.ids)[:n], np.asarray(best.scores)[:n]
    support = np.asarray(support)[:n]
    return {
        "dataset": index.dataset,
        "user": u,
        "k": k,
        "items": [
            index.item(j, score=_r(s), neighbours_liked=int(v))
            for j, s, v in zip(ids, scores, support, strict=True)
            if j >= 0
        ],
    }


def random_walk_items(
    index: GraphIndex, user: int, n: int = 10, restart: float = 0.15
) -> dict[str, Any]:
    """Unseen items by personalised PageRank from the user's items."""
    u = index.check_user(user)
    alpha = round(1.0 - float(restart), 4)
    res = ppr_recommend(index.graph, jnp.int32(u), _bucket(n), alpha=alpha)
    ids, probs = np.asarray(res.ids)[:n], np.asarray(res.scores)[:n]
    return {
        "dataset": index.dataset,
        "user": u,
        "restart": float(restart),
        "items": [
            index.item(j, visit_per_million=_r(p * 1e6, 2))
            for j, p in zip(ids, probs, strict=True)
            if j >= 0
        ],
    }


def item_stats(index: GraphIndex, items: list[int]) -> dict[str, Any]:
    """Popularity, popularity rank and recency of items."""
    query = index.check_items(items)
    g = index.graph
    pop, trend = np.asarray(g.popularity), np.asarray(g.trend)
    last = np.asarray(g.last_seen)
    rank = index.popularity_rank

    def when(t: float) -> str | None:
        if not np.isfinite(t):
            return None
        return dt.datetime.fromtimestamp(float(t), dt.UTC).date().isoformat()

    return {
        "dataset": index.dataset,
        "users": g.n_users,
        "items": [
            index.item(
                i,
                popularity=int(pop[i]),
                popularity_rank=int(rank[i]),
                share_of_users=_r(pop[i] / g.n_users),
                last_interaction=when(last[i]),
                recent_popularity=_r(trend[i], 2),
            )
            for i in query
        ],
    }


class _ItemSetArgs(BaseModel):
    items: list[int] = Field(
        min_length=1, max_length=128, description="Item ids (the query set)."
    )
    n: int = Field(10, ge=1, le=100, description="How many items to return.")
    measure: Literal["count", "lift", "cosine", "jaccard"] = Field(
        "lift",
        description="Ranking: raw co-count, lift (count vs chance; favours niche "
        "items), cosine, or Jaccard (overlap of the two audiences).",
    )
    min_count: int = Field(
        5, ge=1, description="Ignore items sharing fewer users with the set."
    )


class _UserArgs(BaseModel):
    user: int = Field(description="User id.")
    n: int = Field(10, ge=1, le=100, description="How many items to return.")


class _SimilarArgs(BaseModel):
    user: int = Field(description="User id.")
    k: int = Field(10, ge=1, le=100, description="How many users to return.")


class _KnnArgs(BaseModel):
    user: int = Field(description="User id.")
    k: int = Field(20, ge=1, le=100, description="Neighbours who vote.")
    n: int = Field(10, ge=1, le=100, description="How many items to return.")


class _WalkArgs(BaseModel):
    user: int = Field(description="User id.")
    n: int = Field(10, ge=1, le=100, description="How many items to return.")
    restart: float = Field(
        0.15, ge=0.05, le=0.9, description="Chance per step to jump back home."
    )


class _StatsArgs(BaseModel):
    items: list[int] = Field(min_length=1, max_length=128, description="Item ids.")


_SPECS: tuple[tuple[Callable, str, type[BaseModel], str], ...] = (
    (
        cooccurring_items,
        "graph_cooccurring_items",
        _ItemSetArgs,
        "Items most often consumed together with the given items. For each "
        "neighbour: co_count (users who interacted with it and a query item), "
        "its popularity, and per query item the co_count, lift (>1: more often "
        "together than by chance), cosine and Jaccard.",
    ),
    (
        two_hop_items,
        "graph_two_hop_items",
        _UserArgs,
        "Items the user has not seen, ranked by the number of paths user -> "
        "item -> other user -> item (co-occurrence with the whole history). "
        "paths: that number; via_users: distinct users on those paths.",
    ),
    (
        similar_users,
        "graph_similar_users",
        _SimilarArgs,
        "Users whose histories are most similar (cosine of interaction "
        "vectors), with the number of items they share with the user.",
    ),
    (
        knn_items,
        "graph_neighbour_items",
        _KnnArgs,
        "Items the user has not seen that their k most similar users liked: "
        "score sums the neighbours' cosine similarity; neighbours_liked counts "
        "them.",
    ),
    (
        random_walk_items,
        "graph_random_walk_items",
        _WalkArgs,
        "Items the user has not seen, ranked by a random walk with restart from "
        "their items on the user-item graph (personalised PageRank); "
        "visit_per_million is the walker's share of time at the item.",
    ),
    (
        item_stats,
        "graph_item_stats",
        _StatsArgs,
        "Popularity of items (distinct users, rank 1 = most popular, share of "
        "all users), date of the last interaction and recent popularity "
        "(interactions weighted by half every 90 days before the data's end).",
    ),
)


def make_graph_tools(
    index: IndexSource | InteractionGraph,
    titles: Sequence[str] | Mapping[int, str] | None = None,
    *,
    dataset: str = "unnamed",
) -> list[BaseTool]:
    """The graph tools, bound to one graph.

    Args:
        index: a :class:`GraphIndex`, a bare :class:`InteractionGraph` (then
            ``titles`` and ``dataset`` describe it), or a zero-argument callable
            returning a :class:`GraphIndex`, called at the first tool call.
        titles: item titles when ``index`` is a bare graph.
        dataset: dataset name when ``index`` is a bare graph.

    Returns:
        Tools whose results are JSON-ready dicts; bad ids come back to the
        model as an error message naming the valid range.
    """
    if isinstance(index, InteractionGraph):
        index = GraphIndex(index, titles, dataset)
    resolve = index if callable(index) else (lambda: index)

    def bind(fn: Callable) -> Callable[..., dict[str, Any]]:
        return lambda **kwargs: fn(resolve(), **kwargs)

    return [
        StructuredTool.from_function(
            bind(fn),
            name=name,
            description=doc,
            args_schema=schema,
            handle_tool_error=True,
        )
        for fn, name, schema, doc in _SPECS
    ]


TOOLS: list[BaseTool] = make_graph_tools(embedded_index)
