"""LangChain tools over the Pareto kernels: ``hypervolume`` and ``pareto_front``.

The tools take plain lists (what a model writes), orient maximised objectives
once, pad ragged candidate lists to a few bucket sizes with a mask (so that
the jitted kernels in :mod:`agenticrec.tools.pareto` compile once per
bucket), and return JSON-ready dicts. Bad input becomes a ``ToolException``
whose message the model reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import BaseModel, Field

from agenticrec.errors import ConfigError

from . import pareto

__all__ = ["TOOLS", "HypervolumeArgs", "ParetoFrontArgs"]

_BUCKETS = (8, 16, 32, 64, 128, 256, 512)
_MAX_POINTS = 4096
_MAX_OBJECTIVES = 8


def _g(x: float) -> float:
    """A float at the precision it was computed in (float32: 7 digits)."""
    return float(f"{float(x):.7g}")


def _bucket(n: int) -> int:
    return next((b for b in _BUCKETS if b >= n), n)


def _flags(maximize: bool | list[bool] | None, m: int) -> np.ndarray:
    if maximize is None:
        return np.zeros(m, bool)
    flags = np.asarray(maximize, bool).reshape(-1)
    if flags.size == 1:
        return np.full(m, bool(flags[0]))
    if flags.size != m:
        raise ToolException(
            f"`maximize` has {flags.size} flags but the points have {m} objectives"
        )
    return flags


def _matrix(points: Sequence[Sequence[float]], what: str) -> np.ndarray:
    try:
        arr = np.asarray(points, np.float64)
    except ValueError:
        raise ToolException(
            f"{what}: every objective vector must have the same length"
        ) from None
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ToolException(
            f"{what}: give a non-empty list of objective vectors, e.g. "
            "[[0.2, 0.9], [0.5, 0.4]]"
        )
    if arr.shape[0] > _MAX_POINTS or arr.shape[1] > _MAX_OBJECTIVES:
        raise ToolException(
            f"{what}: at most {_MAX_POINTS} vectors of at most {_MAX_OBJECTIVES} "
            f"objectives; got {arr.shape[0]} x {arr.shape[1]}"
        )
    if not np.all(np.isfinite(arr)):
        raise ToolException(f"{what}: objective values must be finite numbers")
    return arr


class HypervolumeArgs(BaseModel):
    """Arguments of the ``hypervolume`` tool."""

    point_sets: list[list[list[float]]] = Field(
        description=(
            "One or more candidate lists to score. Each candidate list is a list "
            "of objective vectors, one vector per candidate, all of the same "
            "length, e.g. [[[0.2, 0.9], [0.5, 0.4]], [[0.3, 0.3]]] for two lists."
        )
    )
    ref_point: list[float] | None = Field(
        default=None,
        description=(
            "Reference point, one value per objective, worse than every "
            "candidate worth counting. Omit it to use the worst value seen in "
            "each objective pushed 10% of its range further (the same point "
            "for every list, so that their volumes compare)."
        ),
    )
    maximize: bool | list[bool] | None = Field(
        default=None,
        description=(
            "Which objectives are maximised (true) rather than minimised: one "
            "flag for all or one per objective. Default: all minimised."
        ),
    )


class ParetoFrontArgs(BaseModel):
    """Arguments of the ``pareto_front`` tool."""

    points: list[list[float]] = Field(
        description=(
            "Objective vectors of the candidates, one list per candidate, all "
            "of the same length, e.g. [[0.2, 0.9], [0.5, 0.4], [0.6, 0.95]]."
        )
    )
    maximize: bool | list[bool] | None = Field(
        default=None,
        description=(
            "Which objectives are maximised (true) rather than minimised: one "
            "flag for all or one per objective. Default: all minimised."
        ),
    )


def _hypervolume(
    point_sets: list[list[list[float]]],
    ref_point: list[float] | None = None,
    maximize: bool | list[bool] | None = None,
) -> dict:
    if not point_sets:
        raise ToolException("point_sets: give at least one candidate list")
    sets = [_matrix(s, f"point_sets[{i}]") for i, s in enumerate(point_sets)]
    m = sets[0].shape[1]
    if any(s.shape[1] != m for s in sets):
        raise ToolException("point_sets: all vectors must have the same length")
    sign = np.where(_flags(maximize, m), -1.0, 1.0)
    sets = [s * sign for s in sets]
    if ref_point is None:
        stacked = np.concatenate(sets)
        worst, best = stacked.max(axis=0), stacked.min(axis=0)
        spread = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1.0))
        ref = worst + 0.1 * spread
    else:
        ref = np.asarray(ref_point, np.float64).reshape(-1)
        if ref.size != m or not np.all(np.isfinite(ref)):
            raise ToolException(f"ref_point must hold {m} finite numbers")
        ref = ref * sign
    n = _bucket(max(len(s) for s in sets))
    padded = np.zeros((len(sets), n, m))
    mask = np.zeros((len(sets), n), bool)
    for i, s in enumerate(sets):
        padded[i, : len(s)], mask[i, : len(s)] = s, True
    try:
        hv = np.asarray(pareto.hypervolume(padded, ref, mask))
    except ConfigError as exc:
        raise ToolException(str(exc)) from exc
    return {
        "hypervolumes": [_g(v) for v in hv],
        "ref_point": [_g(v) for v in ref * sign],
        "maximize": [bool(f) for f in sign < 0],
        "n_points": [len(s) for s in sets],
        "exact": True,
        "note": (
            "Volume of objective space dominated by each list and bounded by "
            "ref_point; larger is better. Only comparable under one ref_point."
        ),
    }


def _pareto_front(
    points: list[list[float]], maximize: bool | list[bool] | None = None
) -> dict:
    arr = _matrix(points, "points")
    n, m = arr.shape
    arr = arr * np.where(_flags(maximize, m), -1.0, 1.0)
    size = _bucket(n)
    padded = np.zeros((size, m), np.float32)
    padded[:n] = arr
    mask = np.arange(size) < n
    try:
        ranks = np.asarray(pareto.nondominated_ranks(padded, mask))[:n]
    except ConfigError as exc:
        raise ToolException(str(exc)) from exc
    return {
        "nondominated": [int(i) for i in np.flatnonzero(ranks == 0)],
        "ranks": [int(r) for r in ranks],
        "n_fronts": int(ranks.max()) + 1,
        "note": (
            "Indices into `points`. Rank 0 is the Pareto front (no other "
            "candidate is at least as good in every objective and better in "
            "one); rank 1 is the front once rank 0 is removed, and so on."
        ),
    }


hypervolume_tool = StructuredTool.from_function(
    func=_hypervolume,
    name="hypervolume",
    description=(
        "Exact hypervolume of one or more candidate lists: the volume of "
        "objective space that each list's objective vectors dominate, bounded "
        "by a reference point. Use it to compare recommendation lists or "
        "Pareto fronts on several objectives at once (larger is better). "
        "Input: point_sets, a list of candidate lists, each a list of "
        "objective vectors (one number per objective); objectives are "
        "minimised unless `maximize` says otherwise; ref_point is optional. "
        'Returns JSON {"hypervolumes": [one float per list], "ref_point": '
        '[...], "maximize": [...], "n_points": [...], "exact": true}.'
    ),
    args_schema=HypervolumeArgs,
    handle_tool_error=True,
)

pareto_front_tool = StructuredTool.from_function(
    func=_pareto_front,
    name="pareto_front",
    description=(
        "Non-dominated sorting of candidates by their objective vectors. Input: "
        "points, a list of objective vectors (one number per objective); "
        "objectives are minimised unless `maximize` says otherwise. Returns "
        'JSON {"nondominated": [indices of the Pareto-optimal candidates], '
        '"ranks": [front index per candidate, 0 = Pareto front], "n_fronts": k}.'
    ),
    args_schema=ParetoFrontArgs,
    handle_tool_error=True,
)

TOOLS: list[BaseTool] = [hypervolume_tool, pareto_front_tool]
