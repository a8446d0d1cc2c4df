"""Everything a teacher run reads but never checkpoints: data, split,
candidates, the interaction graph of the visible history, and the tools.

Built once per (dataset, protocol, seed) and cached in-process, so a resumed
run rebuilds exactly the same candidates from the same seed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from langchain_core.tools import BaseTool

from agenticrec import data
from agenticrec.errors import ConfigError
from agenticrec.tools.graph import InteractionGraph, history_rows, propagate
from agenticrec.tools.signals import item_user_matrix
from agenticrec.tools.teacher_tools import EvidenceIndex, make_teacher_tools
from agenticrec.workspace import data_workspace

__all__ = ["FULL_POOL", "TeacherWorkspace", "parse_protocol", "workspace"]

FULL_POOL = 100
"""Under the full-ranking protocol the agents rank the top ``FULL_POOL`` items of
an ItemKNN pre-ranking over the whole catalogue; items below keep their
pre-ranking order (retrieve, then rank)."""


XT_BYTES = 1 << 30
"""Largest float32 item-by-user matrix the tools keep for their fast path
(ml-latest-small: 24 MB; Amazon Scientific: 148 MB)."""


def parse_protocol(protocol: str) -> tuple[str, int]:
    """``"sampled:99"`` -> ``("sampled", 99)``; ``"full"`` -> ``("full", 0)``."""
    m = re.fullmatch(r"sampled:(\d+)|full", protocol.strip())
    if not m:
        raise ConfigError(
            f"protocol {protocol!r}: expected sampled:N (e.g. sampled:19, "
            "sampled:99) or full"
        )
    if protocol.strip() == "full":
        return "full", 0
    n = int(m.group(1))
    if n < 1:
        raise ConfigError("sampled:N needs N >= 1 negatives")
    return "sampled", n


@dataclass(frozen=True, eq=False)
class TeacherWorkspace:
    """Inputs of a teacher run.

    Attributes:
        dataset: the split's dataset (ids refer to it).
        index: visible interactions for the tools (train + validation).
        tools: name -> bound LangChain tool.
        users: int32[q] evaluable users, in row order.
        cands: int32[q, c] candidates per row (the target included for
            sampled protocols; the pre-ranked pool for ``full``).
        targets: int32[q] held-out test item per row.
        outside_rank: int64[q] for ``full``: the target's pre-ranking rank
            among the items outside the pool (``-1`` when the target is in it).
        pop: float[n_items] visible popularity.
    """

    name: str
    protocol: str
    seed: int
    dataset: data.Dataset
    index: EvidenceIndex
    tools: dict[str, BaseTool]
    users: np.ndarray
    cands: np.ndarray
    targets: np.ndarray
    outside_rank: np.ndarray
    pop: np.ndarray

    def row(self, user: int) -> int:
        rows = np.flatnonzero(self.users == user)
        if rows.size == 0:
            raise ConfigError(
                f"user {user} has no held-out test item under this split; "
                f"evaluable users: {self.users.size}"
            )
        return int(rows[0])


def _full_pool(g: InteractionGraph, users, targets, pool: int):
    pool = min(pool, g.n_items)  # a catalogue smaller than the pool
    q = len(users)
    cands = np.empty((q, pool), np.int32)
    outside = np.full(q, -1, np.int64)
    pop = np.asarray(g.popularity, np.float64)
    for s in range(0, q, 128):
        us = jnp.asarray(users[s : s + 128], jnp.int32)
        h = history_rows(g, us)
        sc = np.asarray(propagate(g, h), np.float64) + 1e-6 * pop / max(1.0, pop.max())
        sc[np.asarray(h) > 0] = -np.inf
        for r in range(sc.shape[0]):
            row = sc[r]
            top = np.lexsort((np.arange(row.size), -row))[:pool]
            cands[s + r] = top
            t = targets[s + r]
            if t not in top:
                rest = np.ones(row.size, bool)
                rest[top] = False
                rest[t] = False
                outside[s + r] = int(np.sum(row[rest] >= row[t]))
    return cands, outside


@functools.lru_cache(maxsize=4)
def workspace(name: str, protocol: str, seed: int) -> TeacherWorkspace:
    """Load ``name``, split leave-one-out by time, and sample candidates."""
    kind, n_neg = parse_protocol(protocol)
    dw = data_workspace(name)
    split, sds, g = dw.split, dw.dataset, dw.graph()
    indptr, items = dw.visible()
    xt = item_user_matrix(g) if 4 * g.n_items * g.n_users <= XT_BYTES else None
    index = EvidenceIndex(g, indptr, items, sds.titles, sds.categories, xt)
    if kind == "sampled":
        c = data.sample_candidates(split, n_neg, seed=seed, shuffle=True)
        users, targets, cands = c.users, c.targets, c.items
        outside = np.full(len(users), -1, np.int64)
    else:
        users, targets = split.targets("test")
        cands, outside = _full_pool(g, users, targets, FULL_POOL)
    tools = {t.name: t for t in make_teacher_tools(index)}
    return TeacherWorkspace(
        name=name,
        protocol=protocol,
        seed=seed,
        dataset=sds,
        index=index,
        tools=tools,
        users=np.asarray(users, np.int32),
        cands=np.asarray(cands, np.int32),
        targets=np.asarray(targets, np.int32),
        outside_rank=outside,
        pop=np.asarray(g.popularity, np.float64),
    )
