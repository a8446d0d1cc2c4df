"""LangChain tools the MARS teacher's analysts call, bound to one dataset.

Each tool is a thin wrapper: it validates ids, pads to a bucketed width (so
the jitted kernels in :mod:`agenticrec.tools.signals` compile once per
bucket), calls the kernel and returns a JSON-ready dict. The dict is the tool
call's *artifact*; :mod:`agenticrec.graphs.evidence` turns it into the text
the agents read. Numbers are rounded here, once, so text and record agree.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agenticrec.errors import ConfigError, PluginError
from agenticrec.plugins import ToolInfo

from .graph import InteractionGraph
from .signals import cooccurrence_support, neighbour_support, walk_support

__all__ = [
    "EvidenceIndex",
    "bind_tool",
    "check_signal_result",
    "make_teacher_tools",
    "TOOLS",
]

TOOLS: list[BaseTool] = []
"""No module-level tools: teacher tools are bound to a dataset by
:func:`make_teacher_tools`."""


def _bucket(n: int) -> int:
    """Padded history width: a power of 4 (>= 16), so a run compiles each
    kernel for at most six widths up to 16,384 items; padding is at most 4x
    of work that is small next to the catalogue."""
    return 1 << max(4, 2 * int(np.ceil(np.log2(max(n, 1)) / 2)))


@dataclass(frozen=True)
class EvidenceIndex:
    """What the teacher's tools may read: the visible interactions only.

    Attributes:
        graph: interaction graph of the visible (train) interactions.
        hist_ptr, hist_items: time-ordered visible history per user (CSR).
        titles, categories: catalogue text, indexed by item id.
    """

    graph: InteractionGraph
    hist_ptr: np.ndarray
    hist_items: np.ndarray
    titles: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    xt: jnp.ndarray | None = None
    """f32[i, u] item rows for the kernels' fast path (``None``: generic path)."""
    models: Any = None
    """:class:`~agenticrec.tools.item_models.ItemModels` fitted on the visible
    interactions (``None``: no model tools)."""

    def history(self, user: int) -> np.ndarray:
        """int32[h] the user's visible items, oldest first."""
        self.check_user(user)
        return self.hist_items[self.hist_ptr[user] : self.hist_ptr[user + 1]]

    def check_user(self, user: int) -> None:
        if not 0 <= int(user) < len(self.hist_ptr) - 1:
            raise ConfigError(f"user {user} out of range [0, {len(self.hist_ptr) - 1})")

    def check_items(self, items: list[int], what: str = "candidates") -> np.ndarray:
        arr = np.asarray(items, dtype=np.int64)
        bad = arr[(arr < 0) | (arr >= self.graph.n_items)]
        if bad.size:
            raise ConfigError(
                f"{what} contain unknown item ids {bad[:5].tolist()} "
                f"(valid: 0..{self.graph.n_items - 1})"
            )
        return arr.astype(np.int32)

    def title(self, item: int) -> str:
        return self.titles[item] if 0 <= item < len(self.titles) else ""


def _pad(rows: list[np.ndarray], width: int) -> np.ndarray:
    """i32[len(rows), width] left-aligned rows padded with -1.

    A host array, not ``jnp.asarray``: jitted kernels take numpy arguments on
    their C++ dispatch path, while an eager ``jnp.asarray`` costs ~0.5 ms per
    call, a fifth of a tool call."""
    out = np.full((len(rows), width), -1, np.int32)
    for r, v in enumerate(rows):
        out[r, : len(v)] = v
    return out


def _pairs(cands: np.ndarray, values: np.ndarray, digits: int = 4) -> list[list]:
    """``[[item, value rounded to digits], ...]``, vectorised (a tool call
    returns hundreds of these)."""
    vals = np.round(np.asarray(values, np.float64), digits).tolist()
    return [list(p) for p in zip(np.asarray(cands).tolist(), vals, strict=True)]


def _r(x: float, digits: int = 4) -> float:
    return float(round(float(x), digits))


def _support(
    cands: np.ndarray, score: np.ndarray, top: int, extra
) -> list[dict[str, Any]]:
    order = np.lexsort((cands, -score))[:top]
    return [extra(int(i)) for i in order if score[i] > 0]


def user_profile(index: EvidenceIndex, user: int, recent: int = 5) -> dict[str, Any]:
    """Counts behind a user's long-term and recent interests."""
    hist = index.history(user)
    cats = Counter(c for i in hist for c in index.categories[i][:3])
    pop = np.asarray(index.graph.popularity)
    last = hist[-recent:][::-1] if recent > 0 else hist[:0]
    return {
        "user": int(user),
        "history_len": int(hist.size),
        "top_categories": [[c, int(n)] for c, n in cats.most_common(5)],
        "recent_items": [{"item": int(i), "title": index.title(int(i))} for i in last],
        "median_item_popularity": _r(np.median(pop[hist]) if hist.size else 0.0, 1),
    }


def cooccurrence_evidence(
    index: EvidenceIndex,
    user: int,
    candidates: list[int],
    recent: int = 0,
    top: int = 3,
) -> dict[str, Any]:
    """Per-candidate co-occurrence with the user's (recent) history."""
    hist = index.history(user)
    if recent > 0:
        hist = hist[-recent:]
    cands = index.check_items(candidates)
    out = cooccurrence_support(
        index.graph,
        _pad([hist], _bucket(hist.size)),
        _pad([cands], cands.size),
        index.xt,
    )
    score, via, cnt, lift = (np.asarray(a)[0] for a in out)

    def extra(i: int) -> dict[str, Any]:
        return {
            "candidate": int(cands[i]),
            "title": index.title(int(cands[i])),
            "via": int(via[i]),
            "via_title": index.title(int(via[i])),
            "co_count": int(cnt[i]),
            "lift": _r(lift[i], 2),
            "paths": int(score[i]),
        }

    return {
        "signal": "recent_cooccurrence" if recent > 0 else "cooccurrence",
        "user": int(user),
        "window": int(min(recent, index.history(user).size)) if recent > 0 else None,
        "scores": _pairs(cands, score),
        "support": _support(cands, score, top, extra),
    }


def neighbour_evidence(
    index: EvidenceIndex,
    user: int,
    candidates: list[int],
    k: int = 20,
    top: int = 3,
) -> dict[str, Any]:
    """User-kNN votes for candidates."""
    index.check_user(user)
    cands = index.check_items(candidates)
    hist = index.history(user)
    out = neighbour_support(
        index.graph,
        np.asarray([user], np.int32),
        _pad([cands], cands.size),
        k=k,
        xt=index.xt,
        hist=_pad([hist], _bucket(hist.size)) if index.xt is not None else None,
    )
    score, votes = np.asarray(out.score)[0], np.asarray(out.votes)[0]
    found = int(np.asarray(out.k_found)[0])

    def extra(i: int) -> dict[str, Any]:
        return {
            "candidate": int(cands[i]),
            "title": index.title(int(cands[i])),
            "votes": int(votes[i]),
            "neighbours": found,
            "weighted": _r(score[i], 3),
        }

    return {
        "signal": "neighbours",
        "user": int(user),
        "neighbours": found,
        "scores": _pairs(cands, score),
        "support": _support(cands, score, top, extra),
    }


def graph_walk_evidence(
    index: EvidenceIndex, user: int, candidates: list[int], top: int = 3
) -> dict[str, Any]:
    """Random-walk-with-restart visit probabilities of the candidates."""
    index.check_user(user)
    cands = index.check_items(candidates)
    p = np.asarray(
        walk_support(
            index.graph, np.asarray([user], np.int32), _pad([cands], cands.size)
        )
    )[0]
    rank = np.empty(cands.size, np.int64)
    rank[np.lexsort((cands, -p))] = np.arange(1, cands.size + 1)

    def extra(i: int) -> dict[str, Any]:
        return {
            "candidate": int(cands[i]),
            "title": index.title(int(cands[i])),
            "per_million": _r(p[i] * 1e6, 1),
            "rank": int(rank[i]),
            "of": int(cands.size),
        }

    return {
        "signal": "graph_walk",
        "user": int(user),
        "scores": _pairs(cands, np.asarray(p, np.float64) * 1e6, 3),
        "support": _support(cands, p, top, extra),
    }


def item_popularity(index: EvidenceIndex, items: list[int]) -> dict[str, Any]:
    """Distinct users per item in the visible interactions."""
    arr = index.check_items(items, "items")
    pop = np.asarray(index.graph.popularity)
    return {
        "signal": "popularity",
        "scores": [[int(i), int(pop[i])] for i in arr],
        "users": int(index.graph.n_users),
    }


class _UserArgs(BaseModel):
    user: int = Field(description="Compact user id.")
    recent: int = Field(5, ge=0, le=50, description="How many recent items to list.")


class _CoArgs(BaseModel):
    user: int = Field(description="Compact user id whose history is the query.")
    candidates: list[int] = Field(description="Candidate item ids to score.")
    recent: int = Field(
        0, ge=0, le=200, description="Use only the last N items (0: whole history)."
    )
    top: int = Field(3, ge=0, le=20, description="Best-supported candidates to cite.")


class _NbArgs(BaseModel):
    user: int = Field(description="Compact user id.")
    candidates: list[int] = Field(description="Candidate item ids to score.")
    k: int = Field(20, ge=1, le=200, description="Nearest users to consult.")
    top: int = Field(3, ge=0, le=20, description="Best-supported candidates to cite.")


class _WalkArgs(BaseModel):
    user: int = Field(description="Compact user id (restart at their items).")
    candidates: list[int] = Field(description="Candidate item ids to score.")
    top: int = Field(3, ge=0, le=20, description="Best-supported candidates to cite.")


class _PopArgs(BaseModel):
    items: list[int] = Field(description="Item ids.")


def make_teacher_tools(index: EvidenceIndex) -> list[BaseTool]:
    """The analysts' tools, bound to ``index``. Each returns a JSON-ready dict;
    with fitted ``index.models`` the model tools of :mod:`.model_tools` too."""
    from .model_tools import make_model_tools  # it imports this module

    def bind(fn, name: str, schema: type[BaseModel], doc: str) -> BaseTool:
        return StructuredTool.from_function(
            lambda **kw: fn(index, **kw),
            name=name,
            description=doc,
            args_schema=schema,
        )

    return [
        bind(
            user_profile,
            "user_profile",
            _UserArgs,
            "Summarise a user's history: length, top categories with counts, the "
            "most recent items, median item popularity.",
        ),
        bind(
            cooccurrence_evidence,
            "cooccurrence_evidence",
            _CoArgs,
            "Score candidates by co-occurrence with the user's history (or its "
            "last `recent` items): for each candidate the number of 2-hop paths, "
            "and for the best-supported ones which history item they co-occur "
            "with, how many users share both (co_count) and the lift.",
        ),
        bind(
            neighbour_evidence,
            "neighbour_evidence",
            _NbArgs,
            "Score candidates by the k most similar users (cosine of interaction "
            "vectors): how many neighbours interacted with each candidate.",
        ),
        bind(
            graph_walk_evidence,
            "graph_walk_evidence",
            _WalkArgs,
            "Score candidates by a random walk with restart from the user's items "
            "on the user-item graph (visit probability per million).",
        ),
        bind(
            item_popularity,
            "item_popularity",
            _PopArgs,
            "Number of distinct users who interacted with each item.",
        ),
        *make_model_tools(index),
    ]


def check_signal_result(
    result: Any, signal: str, candidates: Iterable[int], info: ToolInfo
) -> None:
    """Raise :class:`PluginError` (naming the plugin) unless ``result`` is
    ``{"signal": signal, "scores": [[item, score], ...]}`` with one finite
    score per candidate: the shape the teacher turns into a ranking signal."""

    def fail(what: str) -> None:
        raise PluginError(
            f"tool {info.tool.name!r} declares signal {signal!r} but {what}; "
            'return {"signal": ..., "scores": [[item, score], ...]} with one '
            "pair per candidate",
            plugin=info.origin,
        )

    if not isinstance(result, dict):
        fail(f"returned a {type(result).__name__}")
    if result.get("signal") != signal:
        fail(f"returned signal {result.get('signal')!r}")
    pairs = result.get("scores")
    if not isinstance(pairs, list) or not all(
        isinstance(p, list | tuple)
        and len(p) == 2
        and isinstance(p[1], int | float)
        and not isinstance(p[1], bool)
        and math.isfinite(p[1])
        for p in pairs
    ):
        fail("its scores are not [item, finite number] pairs")
    if sorted(int(p[0]) for p in pairs) != sorted(int(c) for c in candidates):
        fail("its scores do not cover exactly the candidates")


def bind_tool(info: ToolInfo, index: EvidenceIndex) -> BaseTool:
    """A registered tool as the teacher's analysts call it.

    A tool whose ``args_schema`` has an injected ``index`` argument
    (``Annotated[..., InjectedToolArg]``, as :func:`agenticrec.plugins.signal_tool`
    makes) gets ``index`` passed in; the bound tool's schema is what the model
    sees (``tool_call_schema``). A signal tool's result is checked with
    :func:`check_signal_result`, so a malformed result is a failed call, the
    same on replay.
    """
    tool = info.tool
    fields = getattr(tool.args_schema, "model_fields", {})
    injected = "index" in fields and "index" not in tool.tool_call_schema.model_fields
    decl = info.declaration

    def call(**kw: Any) -> Any:
        result = tool.invoke({**kw, "index": index} if injected else kw)
        if decl is not None and decl.signal is not None:
            check_signal_result(result, decl.signal, kw.get("candidates", []), info)
        return result

    return StructuredTool(
        name=tool.name,
        description=tool.description,
        args_schema=tool.tool_call_schema,
        func=call,
        metadata=tool.metadata,
    )
