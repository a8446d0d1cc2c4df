"""Data a system run reads but never checkpoints: the offline and held-out
pipelines, user segments, and a cache of evaluated configs.

A thin view over the one data workspace (:func:`agenticrec.workspace.data_workspace`):
the dataset is loaded once per process and shared with every graph; the
pipelines are built from it here, once per (dataset, seed).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agenticrec.tools.pipeline import Evaluation, PipelineConfig, tuning_pipelines
from agenticrec.workspace import data_workspace

__all__ = ["ILD_THRESHOLD", "SATISFACTION_WEIGHT", "SystemWorkspace", "workspace"]

ILD_THRESHOLD = 0.75
"""The diversity constraint: a user's list satisfies it when its intra-list
(genre) distance ILD@10 is at least this (about the 25th percentile of the
default pipeline on ml-latest-small)."""

SATISFACTION_WEIGHT = 0.01
"""Outer reward = weighted mean NDCG@10 + ``SATISFACTION_WEIGHT`` x weighted
share of users whose list meets the diversity constraint."""


@dataclass
class SystemWorkspace:
    """Pipelines for one (dataset, seed).

    ``offline`` users (validation items) drive every evolution step; the
    ``online`` users (test items) are held out and only measured.
    """

    data: str
    seed: int
    fingerprint: str
    """Content fingerprint of the split's dataset (what checkpoints bind to)."""
    offline: Any
    online: Any
    segments: dict[str, dict[str, np.ndarray]]
    """part -> segment -> bool mask over that part's evaluated users."""
    cutoff: int
    """History length separating ``short`` from ``long`` users."""
    _cache: dict[tuple[str, str], Evaluation] = field(default_factory=dict)

    def evaluate(self, part: str, flat: Mapping[str, Any]) -> Evaluation:
        key = (part, json.dumps(flat, sort_keys=True))
        ev = self._cache.get(key)
        if ev is None:
            pipe = self.offline if part == "offline" else self.online
            ev = pipe.evaluate(PipelineConfig.from_flat(flat))
            if len(self._cache) > 4096:
                self._cache.clear()
            self._cache[key] = ev
        return ev

    def weights(self, part: str, shifted: bool, factor: float) -> np.ndarray:
        """Per-user weights: uniform, or short-history users x ``factor``."""
        short = self.segments[part]["short"]
        w = np.ones(short.size)
        if shifted:
            w[short] = factor
        return w

    def outer(
        self,
        part: str,
        arms: Mapping[str, Mapping[str, Any]],
        routing: Mapping[str, str],
        weights: np.ndarray,
        mask: np.ndarray | None = None,
    ) -> dict[str, float]:
        """Outer reward of a composition on ``part`` (optionally on ``mask``)."""
        n = weights.size
        ndcg = np.zeros(n)
        sat = np.zeros(n)
        for seg, arm in routing.items():
            m = self.segments[part][seg]
            ev = self.evaluate(part, arms[arm])
            ndcg[m] = ev["NDCG@10"][m]
            sat[m] = ev["ILD@10"][m] >= ILD_THRESHOLD
        w = weights if mask is None else weights * mask
        tot = w.sum()
        nd = float((w * ndcg).sum() / tot) if tot else 0.0
        st = float((w * sat).sum() / tot) if tot else 0.0
        return {
            "outer": nd + SATISFACTION_WEIGHT * st,
            "NDCG@10": nd,
            "satisfaction": st,
        }

    def per_user_outer(
        self, arms, routing, weights: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:
        """Each offline user's weighted contribution to the outer reward, on
        ``mask`` (so that the mean over ``mask`` is the outer reward there)."""
        ndcg = np.zeros(weights.size)
        sat = np.zeros(weights.size)
        for seg, arm in routing.items():
            m = self.segments["offline"][seg]
            ev = self.evaluate("offline", arms[arm])
            ndcg[m] = ev["NDCG@10"][m]
            sat[m] = ev["ILD@10"][m] >= ILD_THRESHOLD
        w = weights[mask] / weights[mask].mean()
        return w * (ndcg[mask] + SATISFACTION_WEIGHT * sat[mask])

    def per_user_inner(
        self, flat: Mapping[str, Any], metric: str, mask: np.ndarray
    ) -> np.ndarray:
        ev = self.evaluate("offline", flat)
        if metric == "satisfaction":
            vals = (ev["ILD@10"] >= ILD_THRESHOLD).astype(float)
        else:
            vals = np.asarray(ev[metric], dtype=float)
        return vals[mask]

    def inner(self, flat: Mapping[str, Any], metric: str, mask: np.ndarray) -> float:
        """Mean of a per-user pipeline metric on the offline users in ``mask``."""
        vals = self.per_user_inner(flat, metric, mask)
        return float(vals.mean()) if vals.size else 0.0


def _history_lengths(pipe, split, part: str) -> np.ndarray:
    """History length of each user ``pipe`` evaluates, in its order."""
    ev = pipe.evaluate(None)
    indptr, _ = split.history(part)
    return np.diff(indptr)[ev.users]


@functools.lru_cache(maxsize=4)
def workspace(data: str, seed: int) -> SystemWorkspace:
    """The pipelines of ``data`` (a dataset name or path) for ``seed``."""
    dws = data_workspace(data)
    tp = tuning_pipelines(dws.raw, seed=seed)
    off_len = _history_lengths(tp.offline, dws.split, "valid")
    on_len = _history_lengths(tp.online, dws.split, "test")
    cutoff = int(np.median(np.r_[off_len, on_len]))
    segs = {
        "offline": {"short": off_len < cutoff, "long": off_len >= cutoff},
        "online": {"short": on_len < cutoff, "long": on_len >= cutoff},
    }
    return SystemWorkspace(
        data, seed, dws.fingerprint, tp.offline, tp.online, segs, cutoff
    )
