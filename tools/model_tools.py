"""The teacher's model-based tools: EASE^R (whole or recency-weighted
history), cosine ItemKNN and sequential transitions, as LangChain tools over
an :class:`~agenticrec.tools.teacher_tools.EvidenceIndex` whose ``models``
were fitted on the visible interactions (:mod:`.item_models`).

Each returns ``{"signal", "user", "scores": [[item, score], ...], "support":
[...]}`` like the graph tools, so the ranker blends it and
:mod:`agenticrec.graphs.evidence` quotes its support (the history item behind
each best candidate).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agenticrec.errors import ConfigError

from .item_models import ItemModels, candidate_scores
from .teacher_tools import EvidenceIndex, _bucket, _pad, _pairs, _r, _support

__all__ = ["MODEL_TOOLS", "make_model_tools", "model_evidence"]

MODEL_TOOLS = {
    "ease_evidence": "ease",
    "itemknn_evidence": "cosine",
    "sequence_evidence": "sequence",
}
"""Tool name -> the signal it returns (``ease_evidence`` with ``recent=true``
returns ``recent_ease``)."""


def _models(index: EvidenceIndex) -> ItemModels:
    if index.models is None:
        raise ConfigError("this evidence index has no fitted item models")
    return index.models


def model_evidence(
    index: EvidenceIndex, model: str, user: int, candidates: list[int], top: int = 3
) -> dict[str, Any]:
    """Scores of ``candidates`` for ``user`` under item model ``model``, with
    the history item contributing most to each best-supported candidate."""
    m = _models(index)
    full = index.history(user)
    cands = index.check_items(candidates)
    # Sequence weights are 0 past the newest ``seq_last`` items, so the query
    # is those items alone: the same scores and citations, without gathering
    # a long history's rows for nothing (a 1,000-item history costs 10x).
    hist = full[-m.seq_last :] if model == "sequence" else full
    width = _bucket(hist.size)
    w = m.weights(model, np.asarray([hist.size]), width)
    mat, scale = m.matrix(model)
    out = candidate_scores(
        mat,
        m.pos,
        _pad([hist], width),
        w,
        _pad([cands], cands.size),
        scale,
    )
    score, via, value = (np.asarray(a)[0] for a in out)

    def extra(i: int) -> dict[str, Any]:
        return {
            "candidate": int(cands[i]),
            "title": index.title(int(cands[i])),
            "via": int(via[i]),
            "via_title": index.title(int(via[i])) if via[i] >= 0 else "",
            "via_weight": _r(value[i]),
            "score": _r(score[i]),
        }

    result: dict[str, Any] = {
        "signal": model,
        "user": int(user),
        "scores": _pairs(cands, score, 6),
        "support": _support(cands, score, top, extra),
    }
    if model == "ease" or model == "recent_ease":
        result["lam"] = m.lam
        if model == "recent_ease":
            result["decay"] = m.recency
    if model == "sequence":
        result.update(window=m.window, last=min(m.seq_last, int(full.size)))
    return result


class _EaseArgs(BaseModel):
    user: int = Field(description="Compact user id whose history is the query.")
    candidates: list[int] = Field(description="Candidate item ids to score.")
    recent: bool = Field(
        False, description="Weight the history by recency (newest items count most)."
    )
    top: int = Field(3, ge=0, le=20, description="Best-supported candidates to cite.")


class _ModelArgs(BaseModel):
    user: int = Field(description="Compact user id whose history is the query.")
    candidates: list[int] = Field(description="Candidate item ids to score.")
    top: int = Field(3, ge=0, le=20, description="Best-supported candidates to cite.")


def make_model_tools(index: EvidenceIndex) -> list[BaseTool]:
    """The model tools bound to ``index`` (empty when it has no models;
    ``index=None`` gives unbound tools, for their schemas)."""
    if index is not None and index.models is None:
        return []

    def ease(user: int, candidates: list[int], recent: bool = False, top: int = 3):
        model = "recent_ease" if recent else "ease"
        return model_evidence(index, model, user, candidates, top)

    def knn(user: int, candidates: list[int], top: int = 3):
        return model_evidence(index, "cosine", user, candidates, top)

    def seq(user: int, candidates: list[int], top: int = 3):
        return model_evidence(index, "sequence", user, candidates, top)

    return [
        StructuredTool.from_function(
            ease,
            name="ease_evidence",
            description="Score candidates with EASE^R, a linear item-item model "
            "fitted in closed form on all users (its penalty chosen on the "
            "validation split); with recent=true the history is weighted toward "
            "the newest items. Cites the history item that weighs most for the "
            "best candidates.",
            args_schema=_EaseArgs,
        ),
        StructuredTool.from_function(
            knn,
            name="itemknn_evidence",
            description="Score candidates by summed cosine similarity (over the "
            "users who interacted with both) to the user's history items; cites "
            "the most similar history item for the best candidates.",
            args_schema=_ModelArgs,
        ),
        StructuredTool.from_function(
            seq,
            name="sequence_evidence",
            description="Score candidates by how often other users chose them "
            "within a few steps after the user's newest items (transitions in "
            "time order); cites the newest item each best candidate follows.",
            args_schema=_ModelArgs,
        ),
    ]
