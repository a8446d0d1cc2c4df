"""The Actor's classical sampler: deterministic from the history, steered
by it (TPE concentrates near good feasible configs), inert knobs frozen."""

from __future__ import annotations

import numpy as np
import pytest

from agenticrec.graphs import _tune_sampler as ts
from agenticrec.graphs import _tune_search as search
from agenticrec.tools.pipeline import PipelineConfig

KNOB = "ranking.w_cf"


def _history(n=40, seed=0):
    # north star peaks where KNOB sits at 80% of its range; guard always ok
    rng = np.random.default_rng(seed)
    j = PipelineConfig.knob_names().index(KNOB)
    out = []
    for _ in range(n):
        u = rng.random(len(PipelineConfig.knob_names()))
        over = search.from_unit(u)
        x = search.to_unit(over)[j]
        out.append(
            {"overrides": over, "gain": float(-((x - 0.8) ** 2)), "guard_change": 0.0}
        )
    return out, j


@pytest.mark.parametrize("sampler", ["tpe", "cmaes"])
def test_same_history_same_suggestions_all_valid(sampler):
    hist, _ = _history()
    a = ts.ask(hist, n=5, seed=3, sampler=sampler, guard_tolerance=0.005)
    b = ts.ask(hist, n=5, seed=3, sampler=sampler, guard_tolerance=0.005)
    assert a == b and len(a) == 5
    assert len({str(x) for x in a}) == 5  # constant liar: one round's differ
    for over in a:
        PipelineConfig.from_flat(over)  # valid by construction


def test_tpe_moves_toward_the_good_region_it_was_told():
    hist, j = _history(60)
    sug = ts.ask(hist, n=12, seed=0, sampler="tpe", guard_tolerance=0.005)
    told = np.mean([abs(search.to_unit(h["overrides"])[j] - 0.8) for h in hist])
    asked = np.mean([abs(search.to_unit(o)[j] - 0.8) for o in sug])
    assert asked < told


def test_guard_breaks_count_as_infeasible_for_tpe():
    hist, j = _history(60)
    free = ts.ask(hist, n=12, seed=0, sampler="tpe", guard_tolerance=0.005)
    # the best region now breaks the guard: fewer suggestions land in it
    for h in hist:
        h["guard_change"] = -0.1 if search.to_unit(h["overrides"])[j] > 0.6 else 0.0
    held = ts.ask(hist, n=12, seed=0, sampler="tpe", guard_tolerance=0.005)
    share = [np.mean([search.to_unit(o)[j] > 0.6 for o in x]) for x in (free, held)]
    assert share[1] < share[0]


def test_frozen_knobs_keep_the_base_value():
    hist, _ = _history()
    sug = ts.ask(
        hist, n=4, seed=1, frozen=[KNOB], base={KNOB: 1.7}, guard_tolerance=0.005
    )
    assert all(o[KNOB] == 1.7 for o in sug)


def test_inert_knobs_need_evidence_and_no_effect():
    rows = [
        {"knob": KNOB, "metric": "NDCG@10", "effect": 1e-5, "n": 8},
        {"knob": KNOB, "metric": "ILD@10", "effect": 2e-4, "n": 8},
        {"knob": "rerank.mmr_lambda", "metric": "NDCG@10", "effect": 0.02, "n": 8},
        {"knob": "prerank.keep_top", "metric": "NDCG@10", "effect": 0.0, "n": 2},
        {"knob": "not.a.knob", "metric": "NDCG@10", "effect": 0.0, "n": 9},
    ]
    assert ts.inert_knobs(rows) == [KNOB]


def test_gaussian_asks_nothing_and_unknown_sampler_is_refused():
    assert ts.ask([], n=3, seed=0, sampler="gaussian", guard_tolerance=0.0) == []
    with pytest.raises(ValueError, match="sampler"):
        ts.ask([], n=3, seed=0, sampler="smac", guard_tolerance=0.0)


def _priors(n=40, seed=0, source="t1"):
    # the transferred task's gains peak where KNOB sits at 80% of its range
    hist, j = _history(n, seed)
    return [{**h, "source": source} for h in hist], j


def test_priors_narrow_a_knob_to_where_their_best_configs_lie():
    priors, j = _priors()
    b = PipelineConfig.bounds()[KNOB]
    full = b.high - b.low
    ranges = ts.narrowed(priors, guard_tolerance=0.005)
    lo, hi = ranges[KNOB]
    best = sorted(priors, key=lambda p: -p["gain"])[: ts.NARROW_MIN + 5]
    vals = [PipelineConfig.from_flat(p["overrides"]).to_flat()[KNOB] for p in best]
    assert b.low <= lo < hi <= b.high and hi - lo <= ts.NARROW_KEEP * full
    top = best[: max(ts.NARROW_MIN, int(np.ceil(ts.NARROW_TOP * len(priors))))]
    for p in top:  # the top share of the source lies inside, with its margin
        v = PipelineConfig.from_flat(p["overrides"]).to_flat()[KNOB]
        assert lo <= v - ts.NARROW_MARGIN * full + 1e-6 or lo == b.low
        assert hi >= v + ts.NARROW_MARGIN * full - 1e-6 or hi == b.high
    assert lo <= min(vals) and max(vals) <= hi  # the very best are inside
    # knobs the gains do not depend on stay spread: most are not narrowed
    assert len(ranges) < len(PipelineConfig.knob_names()) // 2
    assert not any(k in PipelineConfig.choices() for k in ranges)


def test_no_narrowing_without_enough_feasible_priors():
    priors, _ = _priors()
    assert ts.narrowed([], guard_tolerance=0.005) == {}
    assert ts.narrowed(priors[:3], guard_tolerance=0.005) == {}
    broken = [{**p, "guard_change": -0.5} for p in priors]  # all break the guard
    assert ts.narrowed(broken, guard_tolerance=0.005) == {}


def test_suggestions_stay_inside_the_narrowed_ranges():
    priors, _ = _priors()
    ranges = ts.narrowed(priors, guard_tolerance=0.005)
    hist, _ = _history(8, seed=5)  # own estimates, some outside the ranges
    for sampler in ("tpe", "cmaes"):
        sug = ts.ask(hist, n=6, seed=1, sampler=sampler, guard_tolerance=0.005,
                     priors=priors, ranges=ranges)
        for over in sug:
            flat = PipelineConfig.from_flat(over).to_flat()
            for k, (lo, hi) in ranges.items():
                assert lo - 1e-9 <= flat[k] <= hi + 1e-9, (sampler, k)
