"""The Actor's classical sampler: Optuna TPE or CMA-ES over the pipeline's
knobs, steered by the run's memory.

Each round the ``actor`` node asks the sampler for suggestions, which the
Actor (rule or LLM) uses next to skills and repairs
(:func:`agenticrec.graphs._tune_search.propose`). Optuna is the engine; this
module only translates:

* **Told**: every configuration the Critic estimated so far (skills' warm
  starts included), with its guard drop beyond the tolerance as an Optuna
  constraint (``<= 0``: feasible), so TPE's split into good and bad trials is
  constraint-aware. The value is the configuration's rank (0..1) by offline
  gain among the run's own estimates: TPE and CMA-ES only use the order of
  values, and ranks put the priors below on the same scale.
* **Priors** (transfer through the Skillhub): estimates that earlier runs
  stored in the hub (:func:`agenticrec.graphs._tune_skillhub.load_priors`:
  other datasets, other user partitions, same objective), told the same way,
  each source ranked within itself, while the run has fewer than
  :data:`PRIOR_UNTIL` estimates of its own. A run with an empty hub has
  none; the first rounds of a run with a task's hub sample where that task
  found its gains (the warm start the study does not get from one skill's
  single configuration).
* **Narrowed ranges** (:func:`narrowed`): while the priors are told, each
  numeric knob is searched only over the span where the sources' best
  feasible configurations lie (plus a margin), when that span is clearly
  narrower than the full range: the sampler's first suggestions land where
  earlier tasks' gains were, instead of anywhere in a 24-knob box.
* **Frozen**: knobs the Insight agent measured as inert (no effect on either
  metric, :data:`FREEZE_EFFECT`, over at least :data:`FREEZE_N` estimates)
  are left out of the search space and keep the incumbent's value: a smaller
  space for the same budget.
* **Sampler**: ``tpe`` (``TPESampler``, multivariate, constant liar so one
  round's suggestions differ) or ``cmaes`` (``CmaEsSampler`` warm-started
  from the feasible trials via ``source_trials``; categorical knobs fall back
  to Optuna's independent sampler, as Optuna does).

Why the study is rebuilt from the history each round instead of kept: the
history lives in the graph state, so a resumed run asks exactly the same
points and no Optuna object (a pickle) ever enters a checkpoint.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agenticrec.tools.pipeline import PipelineConfig

__all__ = [
    "FREEZE_EFFECT",
    "FREEZE_N",
    "NARROW_KEEP",
    "NARROW_MARGIN",
    "NARROW_MIN",
    "NARROW_TOP",
    "PRIOR_UNTIL",
    "SAMPLERS",
    "ask",
    "inert_knobs",
    "narrowed",
]

SAMPLERS = ("tpe", "cmaes", "gaussian")
"""``gaussian``: no sampler, the Actor's own perturbation search only."""
FREEZE_EFFECT = 1e-3
"""Largest mean relative effect (both metrics) of a knob counted as inert."""
FREEZE_N = 6
"""Estimates that changed a knob before it may be frozen."""
PRIOR_UNTIL = 30
"""Own estimates after which the priors are no longer told (five rounds of
six candidates: by then the run's own order is the better guide)."""

_NAMES = PipelineConfig.knob_names()
_BOUNDS = PipelineConfig.bounds()
_CHOICES = PipelineConfig.choices()

NARROW_TOP = 0.25
"""Share of each source's feasible priors, best gains first, whose ranges
the sampler searches (at least :data:`NARROW_MIN` configs)."""
NARROW_MIN = 5
NARROW_MARGIN = 0.1
"""Margin added on each side of a narrowed range, as a share of the knob's
full range (the new task's optimum sits near, not exactly at, the old one)."""
NARROW_KEEP = 0.8
"""A range wider than this share of the full one is left full."""


def narrowed(
    priors: Sequence[Mapping[str, Any]], *, guard_tolerance: float
) -> dict[str, list[float]]:
    """The numeric knobs' ranges where earlier runs found their best
    feasible configurations: per source, the top :data:`NARROW_TOP` by gain
    among those within the guard; per knob, the span of their values over all
    sources, widened by :data:`NARROW_MARGIN` of the full range on each side
    and clipped to it; knobs whose span stays wider than :data:`NARROW_KEEP`
    of the full range are not narrowed. Categorical knobs never are (one
    task's best category says little about the next's).

    Returns ``{knob: [low, high]}`` (empty without enough priors).
    """
    by: dict[str, list[Mapping[str, Any]]] = {}
    for p in priors:
        if p["guard_change"] >= -guard_tolerance:
            by.setdefault(str(p.get("source", "")), []).append(p)
    top: list[dict[str, Any]] = []
    for rows in by.values():
        rows = sorted(rows, key=lambda r: -float(r["gain"]))
        n = max(NARROW_MIN, int(np.ceil(NARROW_TOP * len(rows))))
        top += [
            PipelineConfig.from_flat(dict(r["overrides"])).to_flat() for r in rows[:n]
        ]
    if len(top) < NARROW_MIN:
        return {}
    out: dict[str, list[float]] = {}
    for k in _NAMES:
        if k in _CHOICES:
            continue
        b = _BOUNDS[k]
        full = float(b.high - b.low)
        vals = [float(t[k]) for t in top]
        lo = max(float(b.low), min(vals) - NARROW_MARGIN * full)
        hi = min(float(b.high), max(vals) + NARROW_MARGIN * full)
        if hi - lo > NARROW_KEEP * full:
            continue
        if b.kind == "int":
            lo, hi = float(np.floor(lo)), float(np.ceil(hi))
        out[k] = [round(lo, 6), round(hi, 6)]
    return out


def inert_knobs(knob_stats: Sequence[Mapping[str, Any]]) -> list[str]:
    """Knobs whose every measured effect is below :data:`FREEZE_EFFECT` with
    at least :data:`FREEZE_N` estimates behind each (``knob_stats`` rows of
    :func:`agenticrec.graphs._tune_search.knob_stats`)."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for row in knob_stats:
        by.setdefault(row["knob"], []).append(row)
    return sorted(
        k
        for k, rows in by.items()
        if k in _BOUNDS
        and all(r["n"] >= FREEZE_N and r["effect"] < FREEZE_EFFECT for r in rows)
    )


def _distributions(frozen: set[str], ranges: Mapping[str, Sequence[float]]):
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    out = {}
    for k in _NAMES:
        if k in frozen:
            continue
        b = _BOUNDS[k]
        if k in _CHOICES:
            out[k] = CategoricalDistribution(list(_CHOICES[k]))
        elif b.kind == "int":
            lo, hi = ranges.get(k, (b.low, b.high))
            out[k] = IntDistribution(int(lo), int(hi))
        else:
            lo, hi = ranges.get(k, (b.low, b.high))
            out[k] = FloatDistribution(float(lo), float(hi))
    return out


def _params(overrides: Mapping[str, Any], dists) -> dict[str, Any]:
    flat = PipelineConfig.from_flat(dict(overrides)).to_flat()
    out = {}
    for k, d in dists.items():
        v = flat[k]
        if k in _CHOICES:
            out[k] = v
        elif _BOUNDS[k].kind == "int":
            out[k] = int(min(max(int(v), d.low), d.high))
        else:
            out[k] = float(min(max(float(v), d.low), d.high))
    return out


def _ranks(values: Sequence[float]) -> list[float]:
    """Each value's rank in ``[0, 1]`` (ties share the mean rank)."""
    if not values:
        return []
    from scipy.stats import rankdata

    r = rankdata(np.asarray(values, float), method="average")
    return [float(x) for x in (r - 1) / max(len(values) - 1, 1)]


def ask(
    history: Sequence[Mapping[str, Any]],
    *,
    n: int,
    seed: int,
    sampler: str = "tpe",
    base: Mapping[str, Any] | None = None,
    frozen: Sequence[str] = (),
    guard_tolerance: float,
    priors: Sequence[Mapping[str, Any]] = (),
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> list[dict[str, Any]]:
    """``n`` suggested configurations (overrides of the default).

    Args:
        history: estimated configs, ``{"overrides", "gain", "guard_change"}``.
        priors: other runs' estimates, the same fields plus ``source``; told
            while ``len(history) <`` :data:`PRIOR_UNTIL`.
        seed: the sampler's seed (the caller mixes in the round).
        base: overrides the frozen knobs keep (the incumbent).
        frozen: knobs left out of the search (see :func:`inert_knobs`).
        guard_tolerance: largest relative guard drop counted as feasible.
        ranges: ``{knob: [low, high]}`` searched instead of the knob's full
            range (:func:`narrowed`); told configurations outside are clipped
            to it.

    Returns an empty list for ``sampler="gaussian"``.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r}: one of {', '.join(SAMPLERS)}")
    if sampler == "gaussian" or n <= 0:
        return []
    import optuna
    from optuna.trial import create_trial

    from agenticrec.graphs._tune_search import overrides_of

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = _distributions(set(frozen), ranges or {})
    groups: dict[str, list[Mapping[str, Any]]] = {"": list(history)}
    if len(history) < PRIOR_UNTIL:
        for p in priors:
            groups.setdefault("prior:" + str(p.get("source", "")), []).append(p)
    trials = []
    for rows in groups.values():
        for h, value in zip(rows, _ranks([h["gain"] for h in rows]), strict=True):
            trials.append(
                create_trial(
                    value=value,
                    params=_params(h["overrides"], dists),
                    distributions=dists,
                    constraints={"guard": float(-guard_tolerance - h["guard_change"])},
                )
            )
    if sampler == "tpe":
        engine = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True
        )
    else:
        # warm start from the feasible trials, on the numeric knobs CMA-ES
        # searches (source trials must match its search space exactly)
        num = {k: d for k, d in dists.items() if k not in _CHOICES}
        feasible = [
            create_trial(
                value=t.value,
                params={k: t.params[k] for k in num},
                distributions=num,
            )
            for t in trials
            if t.constraints["guard"] <= 0
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # categorical: independent sampling
            engine = optuna.samplers.CmaEsSampler(
                seed=seed,
                source_trials=feasible or None,
                warn_independent_sampling=False,
            )
    study = optuna.create_study(direction="maximize", sampler=engine)
    study.add_trials(trials)
    fixed = PipelineConfig.from_flat(dict(base or {})).to_flat()
    out: list[dict[str, Any]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n):
            trial = study.ask(dists)
            flat = {**fixed, **trial.params}
            v = np.array(
                [
                    float(_CHOICES[k].index(flat[k])) if k in _CHOICES else flat[k]
                    for k in _NAMES
                ],
                float,
            )
            out.append(overrides_of(PipelineConfig.from_vector(v)))
    return out
