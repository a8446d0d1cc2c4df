"""What the teacher's tools measure, in batches: the multi-channel shortlist
under ``full`` and the per-candidate signal matrices the fit learns from.

The tools answer one user per call (:mod:`agenticrec.tools.teacher_tools`,
:mod:`agenticrec.tools.model_tools`); fitting the ranker on the validation
split needs the same numbers for a thousand users, so this module calls the
same jitted kernels on blocks of users. :func:`signal_matrix` and the tools
agree up to the tools' rounding (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from agenticrec.tools.item_models import (
    candidate_scores,
    history_scores,
    history_weights,
)
from agenticrec.tools.signals import neighbour_support, walk_support
from agenticrec.tools.teacher_tools import EvidenceIndex, _bucket, _pad

__all__ = [
    "RECENT_WINDOW",
    "RETRIEVAL_CHANNELS",
    "SIGNALS",
    "catalogue_scores",
    "outside_rank",
    "shortlist",
    "signal_matrix",
]

SIGNALS = (
    "long_term",
    "recent",
    "neighbours",
    "graph_walk",
    "ease",
    "recent_ease",
    "cosine",
    "sequence",
)
"""Per-candidate signals an analysis produces (popularity is always known)."""

RETRIEVAL_CHANNELS = ("sequence", "recent_ease", "ease", "cosine", "long_term")
"""Channels whose top items make the ``full`` shortlist, then popularity."""

RECENT_WINDOW = 10
"""Newest items the ``recent`` co-occurrence analysis uses (the rule
analyst's ``cooccurrence_evidence(recent=10)``)."""

_BLOCK = 64


def _pad_rows(index: EvidenceIndex, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(int32[q, s] left-aligned histories (-1 pads), int64[q] lengths)``."""
    hists = [index.history(int(u)) for u in users]
    lengths = np.asarray([h.size for h in hists], np.int64)
    width = _bucket(int(lengths.max(initial=1)))  # the tools' widths: no new compiles
    return _pad(hists, width), lengths


def _blocks(index: EvidenceIndex, users: np.ndarray) -> list[np.ndarray]:
    """Row indices in blocks of users of similar history length (each block
    is padded to its own longest history)."""
    lengths = np.asarray([index.history(int(u)).size for u in users])
    order = np.argsort(lengths, kind="stable")
    return [order[s : s + _BLOCK] for s in range(0, order.size, _BLOCK)]


def _model_weights(index, model: str, lengths, width) -> np.ndarray:
    m = index.models
    if model == "long_term":
        return m.weights("ease", lengths, width)
    if model == "recent":
        return history_weights(lengths, width, 1.0, RECENT_WINDOW)
    return m.weights(model, lengths, width)


def _matrix(index, model: str):
    m = index.models
    if model in ("long_term", "recent"):
        return m.gram.gram, None  # co-occurrence paths: sum_h G[h, c]
    return m.matrix(model)


def catalogue_scores(
    index: EvidenceIndex, users: np.ndarray, channel: str
) -> np.ndarray:
    """f64[q, n_items] ``channel``'s score of every item (``popularity`` or a
    :data:`RETRIEVAL_CHANNELS` model), ``-inf`` at the user's visible items."""
    g = index.graph
    users = np.asarray(users, np.int64)
    out = np.empty((users.size, g.n_items), np.float64)
    if channel == "popularity":
        out[:] = np.asarray(g.popularity, np.float64)[None, :]
    else:
        m = index.models
        items = np.asarray(m.gram.items)
        mat, scale = _matrix(index, channel)
        for block in _blocks(index, users):
            hist, lengths = _pad_rows(index, users[block])
            w = _model_weights(index, channel, lengths, hist.shape[1])
            sc = history_scores(mat, m.pos, jnp.asarray(hist), jnp.asarray(w), scale)
            rows = np.zeros((block.size, g.n_items))
            rows[:, items] = np.asarray(sc, np.float64)
            out[block] = rows
    for r, u in enumerate(users):
        out[r, index.history(int(u))] = -np.inf
    return out


def shortlist(
    index: EvidenceIndex, users: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The multi-channel shortlist of each user.

    Channels (:data:`RETRIEVAL_CHANNELS`, then popularity) take turns: every
    channel's best unseen item, then every channel's second, ..., skipping
    items already taken, until ``size`` items. The rest of the catalogue keeps
    EASE^R order below the shortlist.

    Returns:
        ``(int32[q, size] shortlist, f64[q, n_items] EASE^R scores)`` (the
        second ranks what lies outside; ``size`` is capped at the unseen items
        of the emptiest history).
    """
    users = np.asarray(users, np.int64)
    channels = (*RETRIEVAL_CHANNELS, "popularity")
    n_items = index.graph.n_items
    longest = max((index.history(int(u)).size for u in users), default=0)
    size = max(1, min(size, n_items - longest))
    tops = []
    ease = None
    for ch in channels:
        sc = catalogue_scores(index, users, ch)
        if ch == "ease":
            ease = sc
        part = np.argpartition(-sc, size - 1, axis=1)[:, :size]
        val = np.take_along_axis(sc, part, 1)
        order = np.lexsort((part, -val), axis=1)
        tops.append(np.take_along_axis(part, order, 1))
    stacked = np.stack(tops, axis=2).reshape(len(users), -1)  # rank-major turns
    out = np.empty((len(users), size), np.int32)
    for r in range(len(users)):
        _, first = np.unique(stacked[r], return_index=True)
        out[r] = stacked[r][np.sort(first)][:size]
    return out, ease


def outside_rank(
    ease: np.ndarray, cands: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """int64[q] the target's pessimistic EASE^R rank among the unseen items
    outside ``cands`` (``-1`` when the target is a candidate)."""
    rows = np.arange(targets.size)
    t = ease[rows, targets][:, None]
    better = (ease >= t).sum(1) - 1  # the target itself
    inside = (np.take_along_axis(ease, cands.astype(np.int64), 1) >= t).sum(1)
    hit = (cands == targets[:, None]).any(1)
    return np.where(hit, -1, better - inside).astype(np.int64)


def signal_matrix(
    index: EvidenceIndex,
    users: np.ndarray,
    cands: np.ndarray,
    signals: Sequence[str] = SIGNALS,
) -> dict[str, np.ndarray]:
    """signal -> f32[q, c] the value each analysis gives each candidate, as the
    rule analyst's tool calls compute it (neighbours: k=20; walk: per million)."""
    users = np.asarray(users, np.int32)
    cands = np.asarray(cands, np.int32)
    out = {s: np.zeros(cands.shape, np.float32) for s in signals}
    m = index.models
    g = index.graph
    for block in _blocks(index, users):
        us = users[block]
        cs = jnp.asarray(cands[block])
        hist, lengths = _pad_rows(index, us)
        for sig in signals:
            if sig == "neighbours":
                val = neighbour_support(
                    g,
                    jnp.asarray(us),
                    cs,
                    k=20,
                    xt=index.xt,
                    hist=jnp.asarray(hist) if index.xt is not None else None,
                ).score
            elif sig == "graph_walk":
                val = walk_support(g, jnp.asarray(us), cs) * 1e6
            else:
                mat, scale = _matrix(index, sig)
                w = _model_weights(index, sig, lengths, hist.shape[1])
                val = candidate_scores(
                    mat, m.pos, jnp.asarray(hist), jnp.asarray(w), cs, scale
                ).score
            out[sig][block] = np.asarray(val, np.float32)
    return out
