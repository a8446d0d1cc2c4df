"""The teacher's rule policy, fitted on the validation split of any dataset.

Nothing here reads a test item. On the *validation* part of the
leave-one-out split (histories = train rows, targets = each user's
second-to-last item, on up to ``fit_users`` users sampled with the run's seed)
:func:`fit_teacher` chooses, in order:

1. the model hyperparameters, each by its channel's NDCG@10 over the whole
   catalogue: EASE^R's ``lam`` (:data:`LAM_GRID`), then the recency decay of
   ``recent_ease`` and the sequence decay (:data:`DECAY_GRID`);
2. the ranker's fusion weights: coordinate ascent over :data:`WEIGHT_GRID`
   from the best single signal, maximising NDCG@10 of the blended ranking on
   the run's candidates (the validation shortlist under ``full``, the
   validation sampled candidates under ``sampled:N``);
3. the planner's segments and pruning (:data:`PRUNE_LOSS`): users split at
   the median history length, each
   segment's weights refined from the global ones and kept only when they
   improve that segment by at least :data:`SEGMENT_GAIN`;
4. the reflector's reserve: signals whose removal costs less than
   :data:`RESERVE_LOSS` of the validation NDCG are left out of the plan and
   asked for only when the two strongest signals run disagree (overlap of
   their top 10 below ``tau``, chosen from :data:`TAU_GRID`).

The fit is deterministic; its numbers (no arrays) are cached as JSON under
``$AGENTICREC_CACHE_DIR/teacher-fit`` keyed by dataset fingerprint, protocol,
seed and settings, and validated on load (a bad file is refitted). Too few
validation users (< :data:`MIN_FIT_USERS`) keep :data:`PRIOR` and say so.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agenticrec import data
from agenticrec._io import atomic_write_text
from agenticrec.data._cache import cache_dir
from agenticrec.graphs._teacher_retrieval import (
    SIGNALS,
    catalogue_scores,
    outside_rank,
    shortlist,
    signal_matrix,
)
from agenticrec.tools.graph import InteractionGraph
from agenticrec.tools.item_models import fit_item_models
from agenticrec.tools.signals import item_user_matrix
from agenticrec.tools.teacher_tools import EvidenceIndex

__all__ = [
    "FIT_USERS",
    "FIT_VERSION",
    "ModelParams",
    "PRIOR",
    "TeacherFit",
    "blend_scores",
    "fit_teacher",
    "overlap_top",
    "validation_index",
]

log = logging.getLogger(__name__)

FIT_VERSION = 3
PARAMS_VERSION = 1
"""Version of the hyperparameter search (its cache key), apart from the
fusion fit's :data:`FIT_VERSION`."""
LAM_GRID = (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)
DECAY_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
WEIGHT_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
TAU_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.01)
SEGMENT_GAIN = 0.02
RESERVE_LOSS = 0.01
MIN_FIT_USERS = 30
ALWAYS_ASKED = 0.8
"""A reserve the reflector would ask for on this share of validation users or
more is planned up front (one loop fewer per user, the same signals)."""
PRUNE_DEFAULT = 0.002
PRUNE_LOSS = {"graph_walk": 0.02}
"""Largest relative loss of validation NDCG@10 accepted to stop running an
analysis (pruned before the reserve is chosen). The random walk, a PageRank
over the whole graph per user, costs about ten times any other analysis
(36 vs 2-4 ms per user on ml-latest-small), so it must earn 2%."""
FIT_USERS = 1000
"""Default number of validation users the fit samples."""
SEQ_LAST, SEQ_WINDOW = 5, 3
XT_BYTES = 1 << 30
"""Largest float32 item-by-user matrix the tools keep for their fast path
(ml-latest-small: 24 MB; Amazon Scientific: 148 MB)."""

PRIOR = {
    "ease": 1.0,
    "recent_ease": 1.0,
    "sequence": 1.0,
    "cosine": 0.2,
    "long_term": 0.0,
    "recent": 0.0,
    "neighbours": 0.0,
    "graph_walk": 0.0,
    "popularity": 0.05,
}
"""Weights used when a dataset has too few validation users to fit."""


class ModelParams(BaseModel):
    """Hyperparameters of the item models (:mod:`agenticrec.tools.item_models`)."""

    model_config = ConfigDict(extra="forbid")

    lam: float = Field(gt=0, le=1e7)
    recency: float = Field(gt=0, le=1)
    seq_decay: float = Field(gt=0, le=1)
    seq_last: int = Field(ge=1, le=1000)
    window: int = Field(ge=1, le=100)


DEFAULT_PARAMS = ModelParams(
    lam=100.0, recency=0.9, seq_decay=0.6, seq_last=SEQ_LAST, window=SEQ_WINDOW
)
"""The hyperparameters when a dataset is too small to choose them."""


class TeacherFit(BaseModel):
    """What the validation split taught the rule policy (module docstring)."""

    model_config = ConfigDict(extra="forbid")

    version: int = FIT_VERSION
    fingerprint: str
    protocol: str
    seed: int
    shortlist: int
    fit_users: int
    users: int
    """Validation users the fit used."""
    fitted: bool
    reason: str = ""
    params: ModelParams
    channel_ndcg: dict[str, float] = {}
    """Validation NDCG@10 of each signal alone on the run's candidates."""
    best_single: str = "ease"
    threshold: int = 0
    """History length from which a user is in segment ``long``."""
    weights: dict[str, dict[str, float]]
    """segment (``short``/``long``) -> signal -> fusion weight (max 1)."""
    reserve: list[str] = []
    tau: float = 0.0
    valid: dict[str, float] = {}
    """Validation NDCG@10 of each stage: single, fused, segmented, reflector."""
    recall: float | None = None
    """Validation recall of the ``full`` shortlist."""
    seconds: float = 0.0

    def segment(self, history_len: int) -> str:
        return "long" if history_len >= self.threshold else "short"

    def plan(self, history_len: int) -> list[str]:
        """The signals the planner runs for a user (reserve left out)."""
        w = self.weights[self.segment(history_len)]
        return [s for s in SIGNALS if w.get(s, 0.0) > 0 and s not in self.reserve]


# ------------------------------------------------------------- blending
def blend_scores(
    sig: Mapping[str, np.ndarray], pop: np.ndarray, w: Mapping[str, float]
) -> np.ndarray:
    """f64[q, c] the rule ranker's blend (:func:`..._teacher_roles.blend`),
    batched: each signal divided by its row maximum when that is > 0."""
    total = np.zeros(pop.shape, np.float64)
    for name, v in {**sig, "popularity": pop}.items():
        wt = w.get(name, 0.0)
        if not wt:
            continue
        v = np.asarray(v, np.float64)
        top = np.max(v, axis=1, keepdims=True, initial=0.0)
        total += wt * np.where(top > 0, v / np.where(top > 0, top, 1.0), 0.0)
    return total


def _ranks(score, pop, cands, tpos, outside) -> np.ndarray:
    """0-based rank of the target under the ranker's order (score, then
    popularity, then smaller id); ``c + outside`` when it is not a candidate."""
    q = score.shape[0]
    rows = np.arange(q)
    t = np.clip(tpos, 0, None)
    st, pt, it = score[rows, t][:, None], pop[rows, t][:, None], cands[rows, t][:, None]
    better = (score > st) | (
        (score == st) & ((pop > pt) | ((pop == pt) & (cands < it)))
    )
    r = better.sum(axis=1)
    return np.where(tpos >= 0, r, cands.shape[1] + outside)


def _ndcg(ranks: np.ndarray) -> np.ndarray:
    return np.where(ranks < 10, 1.0 / np.log2(np.minimum(ranks, 10) + 2.0), 0.0)


def overlap_top(a: np.ndarray, b: np.ndarray, k: int = 10) -> np.ndarray:
    """f64[q] share of the top ``k`` (by value) of ``a`` and ``b`` in common."""
    k = min(k, a.shape[1])
    ta = np.argsort(-a, axis=1, kind="stable")[:, :k]
    tb = np.argsort(-b, axis=1, kind="stable")[:, :k]
    return np.asarray(
        [np.intersect1d(x, y).size / k for x, y in zip(ta, tb, strict=True)]
    )


class _Problem:
    """Validation signals on the run's candidates, and NDCG of a weighting."""

    def __init__(self, sig, pop, cands, tpos, outside, lengths):
        self.sig, self.pop, self.cands = sig, pop, cands
        self.tpos, self.outside, self.lengths = tpos, outside, lengths

    def per_user(self, w, rows=None, drop=()) -> np.ndarray:
        sel = slice(None) if rows is None else rows
        sig = {k: v[sel] for k, v in self.sig.items() if k not in drop}
        sc = blend_scores(sig, self.pop[sel], w)
        r = _ranks(
            sc, self.pop[sel], self.cands[sel], self.tpos[sel], self.outside[sel]
        )
        return _ndcg(r)

    def score(self, w, rows=None) -> float:
        return float(self.per_user(w, rows).mean())

    def ascend(self, start: dict[str, float], rows=None, passes: int = 2):
        w, best = dict(start), self.score(start, rows)
        for _ in range(passes):
            for name in (*SIGNALS, "popularity"):
                for v in WEIGHT_GRID:
                    trial = {**w, name: v}
                    if not any(trial.values()) or v == w.get(name, 0.0):
                        continue
                    s = self.score(trial, rows)
                    if s > best + 1e-12:
                        w, best = trial, s
        top = max(w.values())
        return {k: round(v / top, 4) for k, v in w.items()}, best


# ---------------------------------------------------------- validation
@functools.lru_cache(maxsize=2)
def validation_index(name: str) -> tuple[EvidenceIndex, InteractionGraph]:
    """The evidence index of the validation view: train rows only."""
    from agenticrec.workspace import data_workspace

    dw = data_workspace(name)
    split, ds = dw.split, dw.dataset
    indptr, items = split.history("valid")
    users = np.repeat(np.arange(ds.n_users, dtype=np.int32), np.diff(indptr))
    g = InteractionGraph.from_interactions(users, items, ds.n_users, ds.n_items)
    xt = item_user_matrix(g) if 4 * g.n_items * g.n_users <= XT_BYTES else None
    return EvidenceIndex(g, indptr, items, ds.titles, ds.categories, xt), g


def _nd_full(sc: np.ndarray, targets: np.ndarray) -> float:
    st = sc[np.arange(len(targets)), targets][:, None]
    return float(_ndcg((sc > st).sum(axis=1)).mean())


def _choose_params(index, g, users, targets, ptr, items) -> ModelParams:
    best = (-1.0, 0.0)
    for lam in LAM_GRID:
        m = fit_item_models(
            g,
            ptr,
            items,
            lam=lam,
            recency=0.9,
            window=SEQ_WINDOW,
            seq_decay=0.6,
            seq_last=SEQ_LAST,
        )
        ix = _with_models(index, m)
        s = _nd_full(catalogue_scores(ix, users, "ease"), targets)
        best = max(best, (s, -lam))
    lam = -best[1]
    picks = {}
    for chan, field in (("recent_ease", "recency"), ("sequence", "seq_decay")):
        cands = []
        for d in DECAY_GRID:
            kw = {"recency": 0.9, "seq_decay": 0.6, field: d}  # others: defaults
            m = fit_item_models(
                g, ptr, items, lam=lam, window=SEQ_WINDOW, seq_last=SEQ_LAST, **kw
            )
            s = _nd_full(catalogue_scores(_with_models(index, m), users, chan), targets)
            cands.append((s, -abs(d - 0.8), d))
        picks[field] = max(cands)[2]
    return ModelParams(lam=lam, seq_last=SEQ_LAST, window=SEQ_WINDOW, **picks)


def _sample(vusers, vtargets, seed: int, fit_users: int):
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.permutation(vusers.size)[: fit_users or vusers.size])
    return vusers[pick], vtargets[pick]


@functools.lru_cache(maxsize=8)
def model_params(name: str, seed: int, fit_users: int) -> ModelParams:
    """The item models' hyperparameters chosen on the validation split (one
    choice for every protocol; cached in memory and as JSON on disk)."""
    from agenticrec.workspace import data_workspace

    dw = data_workspace(name)
    key = _key(dw.dataset.fingerprint, "params", seed, 0, fit_users)
    path = _cache_file(key)
    if path.is_file():
        try:
            return ModelParams.model_validate_json(path.read_text(encoding="utf-8"))
        except (ValidationError, OSError, UnicodeDecodeError) as exc:
            log.warning("refitting the item models: %s is unreadable (%s)", path, exc)
    vusers, vtargets = (np.asarray(a) for a in dw.split.targets("valid"))
    users, targets = _sample(vusers, vtargets, seed, fit_users)
    index, g = validation_index(name)
    params = _choose_params(index, g, users, targets, index.hist_ptr, index.hist_items)
    _store(path, params.model_dump_json(indent=1))
    return params


def _store(path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as exc:  # a read-only cache only costs a refit next time
        log.warning("could not cache the teacher fit at %s: %s", path, exc)


def _with_models(index: EvidenceIndex, models) -> EvidenceIndex:
    import dataclasses

    return dataclasses.replace(index, models=models)


def _key(fingerprint, protocol, seed, size, fit_users) -> str:
    version = PARAMS_VERSION if protocol == "params" else FIT_VERSION
    raw = json.dumps([version, fingerprint, protocol, seed, size, fit_users])
    return hashlib.blake2b(raw.encode(), digest_size=10).hexdigest()


def _cache_file(key: str):
    return cache_dir() / "teacher-fit" / f"{key}.json"


@functools.lru_cache(maxsize=8)
def fit_teacher(
    name: str, protocol: str, seed: int, size: int, fit_users: int
) -> TeacherFit:
    """The fitted rule policy of dataset ``name`` under ``protocol``
    (cached in memory and on disk; see the module docstring)."""
    from agenticrec.graphs._teacher_workspace import parse_protocol
    from agenticrec.workspace import data_workspace

    dw = data_workspace(name)
    fp = dw.dataset.fingerprint
    key = _key(fp, protocol, seed, size, fit_users)
    path = _cache_file(key)
    if path.is_file():
        try:
            fit = TeacherFit.model_validate_json(path.read_text(encoding="utf-8"))
            if fit.fingerprint == fp and fit.protocol == protocol:
                return fit
        except (ValidationError, OSError, UnicodeDecodeError) as exc:
            log.warning("refitting the teacher: %s is unreadable (%s)", path, exc)
    t0 = time.perf_counter()
    kind, n_neg = parse_protocol(protocol)
    split = dw.split
    vusers, vtargets = (np.asarray(a) for a in split.targets("valid"))
    base = {
        "fingerprint": fp,
        "protocol": protocol,
        "seed": seed,
        "shortlist": size,
        "fit_users": fit_users,
    }
    if vusers.size < MIN_FIT_USERS:
        return TeacherFit(
            **base,
            users=int(vusers.size),
            fitted=False,
            reason=f"{vusers.size} validation users (< {MIN_FIT_USERS})",
            params=DEFAULT_PARAMS,
            weights={"short": PRIOR, "long": PRIOR},
        )
    users, targets = _sample(vusers, vtargets, seed, fit_users)
    index, g = validation_index(name)
    ptr, items = index.hist_ptr, index.hist_items
    params = model_params(name, seed, fit_users)
    models = fit_item_models(g, ptr, items, **params.model_dump())
    index = _with_models(index, models)
    recall = None
    if kind == "full":
        cands, ease = shortlist(index, users, size)
        hit = cands == targets[:, None]
        tpos = np.where(hit.any(1), hit.argmax(1), -1)
        outside = np.maximum(outside_rank(ease, cands, targets), 0)
        recall = float((tpos >= 0).mean())
    else:
        c = data.sample_candidates(split, n_neg, part="valid", seed=seed, shuffle=True)
        row = {int(u): r for r, u in enumerate(c.users)}
        keep = np.asarray([int(u) in row for u in users])
        users, targets = users[keep], targets[keep]
        rows = np.asarray([row[int(u)] for u in users], np.int64)
        cands, tpos = c.items[rows].astype(np.int32), c.target_pos[rows]
        outside = np.zeros(users.size, np.int64)
    sig = signal_matrix(index, users, cands)
    pop = np.asarray(g.popularity, np.float64)[cands]
    lengths = np.asarray([index.history(int(u)).size for u in users])
    prob = _Problem(sig, pop, cands, tpos, outside, lengths)
    single = {s: prob.score({s: 1.0}) for s in (*SIGNALS, "popularity")}
    best_single = max(single, key=lambda s: (single[s], s == "ease"))
    w, fused = prob.ascend({best_single: 1.0})
    threshold = int(np.median(lengths))
    seg_w, seg_rows = {}, {}
    for seg, rows in (("short", lengths < threshold), ("long", lengths >= threshold)):
        seg_rows[seg] = rows
        if rows.sum() < MIN_FIT_USERS:
            seg_w[seg] = w
            continue
        cand_w, s = prob.ascend(w, rows, passes=1)
        base_s = prob.score(w, rows)
        seg_w[seg] = cand_w if s >= base_s * (1 + SEGMENT_GAIN) else w

    def per_user(weights, drop=()):
        out = np.zeros(users.size)
        for seg, rows in seg_rows.items():
            out[rows] = prob.per_user(weights[seg], rows, drop=drop)
        return out

    # prune: an analysis whose loss costs less than its allowance is not run
    current = float(per_user(seg_w).mean())
    used = [x for x in SIGNALS if any(w.get(x, 0.0) > 0 for w in seg_w.values())]
    for x in sorted(used, key=lambda x: (-PRUNE_LOSS.get(x, PRUNE_DEFAULT), x)):
        trial = {seg: {**w, x: 0.0} for seg, w in seg_w.items()}
        if not any(v for w in trial.values() for v in w.values()):
            continue
        v = float(per_user(trial).mean())
        if v >= current * (1 - PRUNE_LOSS.get(x, PRUNE_DEFAULT)):
            seg_w, current = trial, v
    per = per_user(seg_w)
    segmented = float(per.mean())
    # reserve: signals cheap to lose on average, re-asked on disagreement
    reserve = []
    for s in SIGNALS:
        used = [seg for seg in seg_w if seg_w[seg].get(s, 0.0) > 0]
        if not used:
            continue
        without = np.zeros(users.size)
        for seg, rows in seg_rows.items():
            without[rows] = prob.per_user(seg_w[seg], rows, drop=(s,))
        if without.mean() >= segmented * (1 - RESERVE_LOSS):
            reserve.append(s)
    # each reserve signal is judged alone; keep all only if together cheap too
    if reserve:
        without = np.zeros(users.size)
        for seg, rows in seg_rows.items():
            without[rows] = prob.per_user(seg_w[seg], rows, drop=tuple(reserve))
        while reserve and without.mean() < segmented * (1 - RESERVE_LOSS):
            reserve.pop()
            for seg, rows in seg_rows.items():
                without[rows] = prob.per_user(seg_w[seg], rows, drop=tuple(reserve))
    tau, reflect = 0.0, float(without.mean()) if reserve else segmented
    if reserve:
        dis = np.zeros(users.size)
        for seg, rows in seg_rows.items():
            run = [s for s in SIGNALS if seg_w[seg].get(s, 0) > 0 and s not in reserve]
            top2 = sorted(run, key=lambda s: -seg_w[seg][s])[:2]
            if len(top2) == 2:
                dis[rows] = overlap_top(sig[top2[0]][rows], sig[top2[1]][rows])
            else:
                dis[rows] = 1.0
        best = (-1.0, 0.0)
        for t in TAU_GRID:
            v = float(np.where(dis < t, per, without).mean())
            best = max(best, (v, -t))
        reflect, tau = best[0], -best[1]
        if float(np.mean(dis < tau)) >= ALWAYS_ASKED:  # plan it up front instead
            reserve, tau, reflect = [], 0.0, segmented
    fit = TeacherFit(
        **base,
        users=int(users.size),
        fitted=True,
        params=params,
        channel_ndcg={k: round(v, 5) for k, v in single.items()},
        best_single=best_single,
        threshold=threshold,
        weights=seg_w,
        reserve=reserve,
        tau=tau,
        valid={
            "single": round(single[best_single], 5),
            "fused": round(fused, 5),
            "segmented": round(segmented, 5),
            "reflector": round(reflect, 5),
        },
        recall=None if recall is None else round(recall, 4),
        seconds=round(time.perf_counter() - t0, 1),
    )
    _store(path, fit.model_dump_json(indent=1))
    return fit
