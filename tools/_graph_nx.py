"""networkx export of one user's neighbourhood, for inspection (not compute)."""

from __future__ import annotations

import networkx as nx
import numpy as np

from agenticrec.errors import ConfigError

from ._graph_build import InteractionGraph
from ._graph_query import recommend_cooccurring, user_neighbours

__all__ = ["neighbourhood_graph"]


def neighbourhood_graph(
    g: InteractionGraph,
    user: int,
    *,
    n_users: int = 5,
    n_items: int = 10,
    titles=None,
) -> nx.Graph:
    """A small bipartite ``networkx`` graph around one user.

    Nodes are ``("user", id)`` and ``("item", id)`` with attributes ``kind``,
    ``bipartite`` (0 users, 1 items), ``degree`` (in the full graph) and, for
    items, ``role`` (``"history"`` or ``"candidate"``) and ``title`` when
    ``titles`` is given. It holds the user, their items, their ``n_users``
    nearest users (:func:`user_neighbours`) and the ``n_items`` best unseen
    items by 2-hop paths (:func:`recommend_cooccurring`), with every
    interaction edge among them.

    Args:
        g: the graph.
        user: the user id.
        n_users: nearest users to include.
        n_items: unseen candidate items to include.
        titles: optional ``item id -> title`` mapping or sequence.
    """
    if not 0 <= int(user) < g.n_users:
        raise ConfigError(f"user {user} is out of range [0, {g.n_users})")
    user = int(user)
    history = g.history(user)
    neighbours = np.asarray(user_neighbours(g, user, n_users).ids)
    neighbours = neighbours[neighbours >= 0]
    candidates = np.asarray(recommend_cooccurring(g, user, n_items).ids)
    candidates = candidates[candidates >= 0]
    popularity = np.asarray(g.popularity)
    activity = np.asarray(g.activity)

    out = nx.Graph(user=user)
    items = {int(i): "history" for i in history}
    items.update({int(i): "candidate" for i in candidates})
    for item, role in items.items():
        attrs = {"kind": "item", "bipartite": 1, "role": role}
        attrs["degree"] = int(popularity[item])
        if titles is not None:
            attrs["title"] = str(titles[item])
        out.add_node(("item", item), **attrs)
    for u in [user, *map(int, neighbours)]:
        out.add_node(("user", u), kind="user", bipartite=0, degree=int(activity[u]))
        for item in g.history(u):
            if int(item) in items:
                out.add_edge(("user", u), ("item", int(item)))
    return out
