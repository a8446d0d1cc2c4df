"""Experiment memory: the A/B tests the Insight agent summarises.

Each experiment is an :class:`ExperimentItem` (config tried, why, status,
measured metrics). The memory is a JSONL file; each line is one item (a later
line with the same id replaces the earlier one, which is how :meth:`update`
works) or a ``{"pruned": id}`` tombstone. Appends are one ``write`` of a whole
line under a ``filelock``, and pruning rewrites the file atomically (temp file
and ``os.replace``), so the file is never half-written and two processes can
share it.

Pruning follows AgenticRecTune: keep the Pareto set of finished experiments on
the chosen objectives, then fill the capacity by greedy farthest-point
selection over normalised configs, so the memory keeps both the best trade-offs
and the widest coverage of the configuration space.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agenticrec._io import atomic_write_text
from agenticrec.checkpoint import lock_path
from agenticrec.errors import ConfigError, DataFormatError

from ._pareto import nondominated_ranks
from ._schema import KnobValue

__all__ = [
    "ExperimentItem",
    "ExperimentMemory",
    "ExperimentStatus",
    "Objective",
    "config_matrix",
    "select_pareto_diverse",
]

ExperimentStatus = Literal["proposed", "running", "done", "failed"]
_IN_FLIGHT = ("proposed", "running")


class Objective(NamedTuple):
    """One metric of the Pareto comparison."""

    metric: str
    """Key in :attr:`ExperimentItem.results`, e.g. ``"NDCG@10"``."""
    direction: Literal["max", "min"] = "max"
    """Whether larger (``max``) or smaller (``min``) values are better."""


class ExperimentItem(BaseModel):
    """One tuning experiment (an A/B test or an offline evaluation).

    Attributes:
        id: stable id; adding an id twice is a no-op.
        config: knob -> value tested.
        explanation: why the Actor proposed it.
        time: UTC time it was proposed.
        status: ``proposed``/``running`` (in flight, never pruned),
            ``done`` or ``failed``.
        results: metric -> measured value, e.g. ``{"NDCG@10": 0.41}``.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    config: dict[str, KnobValue] = Field(default_factory=dict)
    explanation: str = ""
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    status: ExperimentStatus = "done"
    results: dict[str, float] = Field(default_factory=dict)


def config_matrix(configs: Sequence[Mapping[str, KnobValue]]) -> np.ndarray:
    """Configs as points ``f64[n, d]`` where each knob spans at most 1.

    Numeric and boolean knobs are min-max scaled to ``[0, 1]`` over ``configs``
    (a constant knob is 0); a config lacking a knob gets the knob's mean. A knob
    with any string value is one-hot encoded with entries ``1/sqrt(2)``, so two
    different options are distance 1 apart, like the two ends of a range.
    """
    n = len(configs)
    keys = sorted({k for c in configs for k in c})
    cols: list[np.ndarray] = []
    for key in keys:
        values = [c.get(key) for c in configs]
        present = [v for v in values if v is not None]
        if any(isinstance(v, str) for v in present):
            for option in sorted({str(v) for v in present}):
                cols.append(
                    np.array([(str(v) == option) / math.sqrt(2) for v in values])
                )
            continue
        col = np.array([np.nan if v is None else float(v) for v in values])
        lo, hi = np.nanmin(col), np.nanmax(col)
        col = (col - lo) / (hi - lo) if hi > lo else np.zeros(n)
        col[np.isnan(col)] = np.nanmean(col) if np.isfinite(col).any() else 0.0
        cols.append(col)
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0))


def _farthest_points(
    x: np.ndarray, start: list[int], pool: list[int], capacity: int
) -> list[int]:
    """Greedy farthest-point: grow ``start`` from ``pool`` up to ``capacity``.

    Each step adds the pool point whose distance to its nearest selected point
    is largest (first in order on ties). With an empty ``start`` the first
    pool point starts. This greedy 2-approximates the best max-min spacing.
    """
    selected = list(start)
    rest = [p for p in pool if p not in set(selected)]
    if not selected and rest and capacity > 0:
        selected.append(rest.pop(0))
    if not rest or len(selected) >= capacity:
        return selected[:capacity]
    pts = x[rest]
    gap = np.min(
        np.linalg.norm(pts[:, None, :] - x[selected][None, :, :], axis=-1), axis=1
    )
    while len(selected) < capacity and rest:
        j = int(np.argmax(gap))
        chosen = rest.pop(j)
        selected.append(chosen)
        gap = np.delete(gap, j)
        pts = np.delete(pts, j, axis=0)
        if rest:
            gap = np.minimum(gap, np.linalg.norm(pts - x[chosen], axis=1))
    return selected


def select_pareto_diverse(
    items: Sequence[ExperimentItem], objectives: Sequence[Objective], capacity: int
) -> list[int]:
    """Indices of the items to keep, in input order.

    1. The Pareto set: ``done`` items with a finite value for every objective
       that no other such item dominates (ranks from :func:`nondominated_ranks`).
    2. If it holds more than ``capacity`` items, keep the best item of each
       objective and grow that set by farthest-point selection within it.
       Otherwise keep all of it and fill up to ``capacity`` by farthest-point
       selection among the other items (failed and partially measured ones
       included: they show where not to go).

    Distances are Euclidean over :func:`config_matrix` of all ``items``.
    """
    if capacity < 1:
        raise ConfigError(
            f"select_pareto_diverse: capacity must be >= 1, got {capacity}"
        )
    for o in objectives:
        if o.direction not in ("max", "min"):
            raise ConfigError(
                f"objective {o.metric!r}: direction must be 'max' or 'min', "
                f"got {o.direction!r}"
            )
    if len(items) <= capacity:
        return list(range(len(items)))
    sign = np.array([1.0 if o.direction == "min" else -1.0 for o in objectives])
    scored = [
        i
        for i, it in enumerate(items)
        if objectives
        and it.status == "done"
        and all(math.isfinite(it.results.get(o.metric, math.nan)) for o in objectives)
    ]
    front: list[int] = []
    f = np.zeros((0, len(objectives)))
    if scored:
        f = sign * np.array(
            [[items[i].results[o.metric] for o in objectives] for i in scored]
        )
        ranks = nondominated_ranks(f)
        front = [i for i, r in zip(scored, ranks, strict=True) if r == 0]
    x = config_matrix([it.config for it in items])
    if len(front) > capacity:
        f_front = f[[scored.index(i) for i in front]]
        extremes: list[int] = []
        for m in range(len(objectives)):
            best = front[int(np.argmin(f_front[:, m]))]
            if best not in extremes:
                extremes.append(best)
        kept = _farthest_points(x, extremes[:capacity], front, capacity)
    else:
        kept = _farthest_points(x, front, list(range(len(items))), capacity)
    return sorted(kept)


class ExperimentMemory:
    """Experiments of one tuning project, persisted as JSONL at ``path``.

    Args:
        path: the JSONL file (created with its folder on first write).
        objectives, capacity: if both are given, :meth:`add` prunes whenever
            more than ``capacity`` finished experiments are stored.
        lock_timeout: seconds to wait for ``<path>.lock``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        objectives: Sequence[Objective] | None = None,
        capacity: int | None = None,
        lock_timeout: float = 60.0,
    ) -> None:
        self.path = Path(path)
        self.objectives = list(objectives or [])
        self.capacity = capacity
        self._lock = FileLock(str(lock_path(self.path)), timeout=lock_timeout)

    # -- file --------------------------------------------------------------

    def _records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if not self.path.exists():
            return
        lines = self.path.read_bytes().split(b"\n")
        lines.pop()  # b"" after the last newline, or a line still being written
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataFormatError(
                    f"not JSON ({exc})", path=self.path, line=lineno
                ) from exc
            if not isinstance(obj, dict):
                raise DataFormatError("not a JSON object", path=self.path, line=lineno)
            yield lineno, obj

    def _load(self) -> tuple[dict[str, ExperimentItem], set[str]]:
        """Current items (by first appearance) and pruned ids."""
        items: dict[str, ExperimentItem] = {}
        pruned: set[str] = set()
        for lineno, obj in self._records():
            if set(obj) == {"pruned"}:
                pruned.add(str(obj["pruned"]))
                items.pop(str(obj["pruned"]), None)
                continue
            try:
                item = ExperimentItem.model_validate(obj)
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"]) or None
                raise DataFormatError(
                    err["msg"], path=self.path, line=lineno, field=field
                ) from exc
            items[item.id] = item
        return items, pruned

    def _append(self, lines: Sequence[str]) -> None:
        """Append whole lines; call with the lock held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size:
            data = self.path.read_bytes()
            if not data.endswith(b"\n"):  # a killed writer left half a line
                with open(self.path, "r+b") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)
        with open(self.path, "ab") as fh:
            fh.write("".join(f"{line}\n" for line in lines).encode("utf-8"))

    # -- API ---------------------------------------------------------------

    def items(self, status: ExperimentStatus | None = None) -> list[ExperimentItem]:
        """Stored experiments in the order they were first added."""
        items = list(self._load()[0].values())
        return [it for it in items if status is None or it.status == status]

    def get(self, item_id: str) -> ExperimentItem | None:
        return self._load()[0].get(item_id)

    def __len__(self) -> int:
        return len(self._load()[0])

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._load()[0]

    def add(self, item: ExperimentItem) -> bool:
        """Store ``item``; ``False`` (and no change) if its id was ever stored.

        An id removed by pruning counts as stored, so a resumed run that
        re-adds its experiments neither duplicates nor resurrects them.
        """
        with self._lock.acquire(poll_interval=0.01):
            items, pruned = self._load()
            if item.id in items or item.id in pruned:
                return False
            self._append([item.model_dump_json()])
            settled = sum(it.status not in _IN_FLIGHT for it in items.values()) + (
                item.status not in _IN_FLIGHT
            )
            if (
                self.capacity is not None
                and self.objectives
                and settled > self.capacity
            ):
                self._prune_locked(self.objectives, self.capacity)
        return True

    def update(self, item_id: str, **changes: Any) -> ExperimentItem:
        """Replace fields of a stored item, e.g. ``status="done", results={...}``.

        Raises:
            KeyError: no such item.
        """
        with self._lock.acquire(poll_interval=0.01):
            current = self._load()[0].get(item_id)
            if current is None:
                raise KeyError(f"{self.path}: no experiment {item_id!r}")
            try:
                item = ExperimentItem.model_validate(
                    {**current.model_dump(), **changes, "id": item_id}
                )
            except ValidationError as exc:
                raise ConfigError(f"update of experiment {item_id!r}: {exc}") from exc
            self._append([item.model_dump_json()])
        return item

    def prune(
        self,
        objectives: Sequence[Objective] | None = None,
        capacity: int | None = None,
    ) -> list[str]:
        """Keep the Pareto set plus diverse configs; return the removed ids.

        In-flight experiments (``proposed``, ``running``) are always kept and
        do not count towards ``capacity``. See :func:`select_pareto_diverse`.
        """
        objectives = list(objectives) if objectives is not None else self.objectives
        capacity = capacity if capacity is not None else self.capacity
        if capacity is None:
            raise ConfigError("ExperimentMemory.prune needs a capacity")
        with self._lock.acquire(poll_interval=0.01):
            return self._prune_locked(objectives, capacity)

    def _prune_locked(
        self, objectives: Sequence[Objective], capacity: int
    ) -> list[str]:
        items, pruned = self._load()
        settled = [it for it in items.values() if it.status not in _IN_FLIGHT]
        keep = {
            settled[i].id for i in select_pareto_diverse(settled, objectives, capacity)
        }
        removed = [it.id for it in settled if it.id not in keep]
        if not removed:
            return []
        lines = [json.dumps({"pruned": p}) for p in sorted(pruned | set(removed))]
        lines += [it.model_dump_json() for it in items.values() if it.id not in removed]
        atomic_write_text(self.path, "".join(f"{line}\n" for line in lines))
        return removed
