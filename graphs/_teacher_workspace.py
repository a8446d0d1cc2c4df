"""Everything a teacher run reads but never checkpoints: data, split,
candidates, the interaction graph of the visible history, and the tools.

Built once per (dataset, protocol, seed) and cached in-process, so a resumed
run rebuilds exactly the same candidates from the same seed.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
from langchain_core.tools import BaseTool

from agenticrec import data
from agenticrec.context import Context, setting
from agenticrec.errors import ConfigError, DataValidationError
from agenticrec.graphs._teacher_fit import (
    FIT_USERS,
    XT_BYTES,
    TeacherFit,
    fit_teacher,
)
from agenticrec.graphs._teacher_retrieval import outside_rank, shortlist
from agenticrec.tools.item_models import fit_item_models
from agenticrec.tools.signals import item_user_matrix
from agenticrec.tools.teacher_tools import EvidenceIndex, make_teacher_tools
from agenticrec.workspace import data_workspace

__all__ = [
    "SHORTLIST",
    "SplitContext",
    "TeacherWorkspace",
    "parse_protocol",
    "users_after_offset",
    "workspace",
]

SHORTLIST = 200
"""Default size of the ``full`` protocol's multi-channel shortlist
(:func:`agenticrec.graphs._teacher_retrieval.shortlist`): the agents rank it;
the rest of the catalogue keeps EASE^R order below it."""


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
            sampled protocols; the multi-channel shortlist for ``full``).
        targets: int32[q] held-out test item per row.
        outside_rank: int64[q] for ``full``: the target's EASE^R rank among
            the unseen items outside the shortlist (``-1`` when it is in it).
        pop: float[n_items] visible popularity.
        fit: the rule policy fitted on the validation split.
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
    fit: TeacherFit

    @property
    def recall(self) -> float | None:
        """Share of rows whose held-out item is in the ``full`` shortlist."""
        if self.protocol.strip() != "full" or self.users.size == 0:
            return None
        return float(np.mean(self.outside_rank < 0))

    def row(self, user: int) -> int:
        rows = np.flatnonzero(self.users == user)
        if rows.size == 0:
            raise ConfigError(
                f"user {user} has no held-out test item under this split; "
                f"evaluable users: {self.users.size}"
            )
        return int(rows[0])

    def rank_of_target(self, row: int, ranking: list[int]) -> int:
        """0-based rank of row ``row``'s held-out item in ``ranking`` (its
        candidates, best first); under ``full`` an item outside the shortlist
        ranks below it, at its EASE^R place among the rest of the catalogue."""
        target = int(self.targets[row])
        if target in ranking:
            return ranking.index(target)
        return len(ranking) + int(self.outside_rank[row])


@functools.lru_cache(maxsize=4)
def workspace(
    name: str,
    protocol: str,
    seed: int,
    shortlist_size: int = SHORTLIST,
    fit_users: int = FIT_USERS,
) -> TeacherWorkspace:
    """Load ``name``, split leave-one-out by time, fit the rule policy on the
    validation split (:func:`~agenticrec.graphs._teacher_fit.fit_teacher`),
    fit the item models on the visible interactions, and build candidates."""
    kind, n_neg = parse_protocol(protocol)
    dw = data_workspace(name)
    split, sds, g = dw.split, dw.dataset, dw.graph()
    indptr, items = dw.visible()
    xt = item_user_matrix(g) if 4 * g.n_items * g.n_users <= XT_BYTES else None
    fit = fit_teacher(name, protocol, seed, shortlist_size, fit_users)
    models = fit_item_models(g, indptr, items, **fit.params.model_dump(), persist=True)
    index = EvidenceIndex(g, indptr, items, sds.titles, sds.categories, xt, models)
    if kind == "sampled":
        c = data.sample_candidates(split, n_neg, seed=seed, shuffle=True)
        users, targets, cands = c.users, c.targets, c.items
        outside = np.full(len(users), -1, np.int64)
    else:
        users, targets = (np.asarray(a) for a in split.targets("test"))
        cands, ease = shortlist(index, users, shortlist_size)
        outside = outside_rank(ease, cands, targets)
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
        fit=fit,
    )


def users_after_offset(ws: TeacherWorkspace, ctx, graph: str) -> np.ndarray:
    """The ``ctx.users`` evaluable users after the first ``ctx.offset`` (all of
    them for ``users=0``): teacher and student runs with the same settings
    score the same users.

    Raises:
        DataValidationError: the offset skips every evaluable user.
    """
    if ws.users.size <= ctx.offset:
        raise DataValidationError(
            f"{graph}: offset={ctx.offset} skips all {ws.users.size} evaluable "
            f"users of {ctx.data} under {ctx.protocol}"
        )
    end = ws.users.size if ctx.users == 0 else ctx.offset + ctx.users
    return ws.users[ctx.offset : end]


@dataclass(kw_only=True)
class SplitContext(Context):
    """The settings that fix which users, candidates and shortlist a run
    scores (plus the LLM settings of :class:`Context`). The teacher and the
    student share them, so runs with the same values rank the same rows."""

    data: str = setting("ml-latest-small", "Dataset name (ml-latest-small) or path.")
    users: int = setting(
        100,
        "Users to process: N evaluable ones after --offset (0: all).",
        ge=0,
        le=10**8,
    )
    offset: int = setting(
        0,
        "Skip the first N evaluable users (e.g. to score users a student was "
        "not trained on).",
        ge=0,
        le=10**8,
    )
    protocol: str = setting(
        "sampled:19", "sampled:N (target + N negatives, 1 <= N <= 10000) or full."
    )
    k: int = setting(10, "Length of the ranking.", ge=1, le=1000)
    shortlist: int = setting(
        SHORTLIST,
        "Under full: size of the multi-channel shortlist that is ranked.",
        ge=10,
        le=10_000,
    )
    fit_users: int = setting(
        FIT_USERS,
        "Validation users the teacher's fit (rule policy, shortlist) uses (0: all).",
        ge=0,
        le=10**7,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        kind, n = parse_protocol(self.protocol)
        if kind == "sampled" and n > 10_000:
            raise ConfigError(f"protocol={self.protocol!r}: at most sampled:10000")

    def ws(self) -> TeacherWorkspace:
        return workspace(
            self.data, self.protocol, self.seed, self.shortlist, self.fit_users
        )
