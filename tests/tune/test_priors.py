"""Transfer through the Skillhub: a run's offline estimates become the
sampler's priors in later runs (validated, own thread excluded)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agenticrec.errors import DataFormatError
from agenticrec.graphs import _tune_sampler as ts
from agenticrec.graphs import _tune_search as search
from agenticrec.graphs import _tune_skillhub as hubs
from agenticrec.graphs import tune
from agenticrec.runner import run
from agenticrec.tools.pipeline import PipelineConfig

KNOB = "ranking.w_cf"
FAST = dict(rounds=1, candidates=3, offline_events=1, embedding="hashing")


def _priors(n=40, seed=0, peak=0.9):
    rng = np.random.default_rng(seed)
    j = PipelineConfig.knob_names().index(KNOB)
    out = []
    for _ in range(n):
        over = search.from_unit(rng.random(len(PipelineConfig.knob_names())))
        x = search.to_unit(over)[j]
        out.append(
            {
                "overrides": over,
                "gain": float(-((x - peak) ** 2)),
                "guard_change": 0.0,
                "source": "other-ndcg",
            }
        )
    return out, j


def _dist(sug, j, peak=0.9):
    return np.mean([abs(search.to_unit(o)[j] - peak) for o in sug])


def test_priors_pull_an_empty_runs_first_suggestions_to_where_they_gained():
    priors, j = _priors()
    cold = ts.ask([], n=12, seed=0, guard_tolerance=0.005)
    warm = ts.ask([], n=12, seed=0, guard_tolerance=0.005, priors=priors)
    assert _dist(warm, j) < _dist(cold, j)


def test_priors_are_dropped_once_the_run_has_enough_estimates_of_its_own():
    priors, _ = _priors()
    own, _ = _priors(ts.PRIOR_UNTIL, seed=1, peak=0.1)
    for h in own:
        h.pop("source")
    a = ts.ask(own, n=4, seed=2, guard_tolerance=0.005, priors=priors)
    b = ts.ask(own, n=4, seed=2, guard_tolerance=0.005)
    assert a == b


def test_a_second_run_is_warm_started_by_the_first_runs_estimates(tmp_path):
    hub = tmp_path / "hub"
    first = run("tune", tune.TuneContext(skillhub=str(hub), seed=0, **FAST))
    assert first["skills"]["priors"] == {"n": 0, "sources": [], "ranges": {}}
    stored = (hub / "estimates" / "ml-latest-small-ndcg.jsonl").read_text()
    assert stored.count("\n") == first["evaluations"] == 3

    second = run(
        "tune", tune.TuneContext(skillhub=str(hub), seed=1, **FAST), thread_id="b"
    )
    # three estimates are too few to narrow a range (NARROW_MIN)
    assert second["skills"]["priors"] == {
        "n": 3,
        "sources": ["ml-latest-small-ndcg"],
        "ranges": {},
    }
    off = run(
        "tune",
        tune.TuneContext(skillhub=str(hub), seed=1, transfer=False, **FAST),
        thread_id="c",
    )
    assert off["skills"]["priors"]["n"] == 0


def test_planted_estimates_are_checked_and_a_broken_line_names_its_file(tmp_path):
    folder = tmp_path / "estimates"
    folder.mkdir()
    good = {"offline.gain": 0.05, "offline.guard_change": 0.0}
    rows = [
        {"id": "x:1", "config": {KNOB: 2.0}, "results": good},
        {"id": "x:2", "config": {"no.such.knob": 1.0}, "results": good},
        {"id": "x:3", "config": {}, "results": {**good, "offline.gain": 1e9}},
        {"id": "me:1", "config": {KNOB: 3.0}, "results": good},
    ]
    f = folder / "other-ndcg.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    o = tune.OBJECTIVES["ndcg"]
    priors, skipped = hubs.load_priors(tmp_path, o, exclude="me:")
    assert [p["overrides"][KNOB] for p in priors] == [2.0]
    assert skipped == ["other-ndcg.jsonl:x:2", "other-ndcg.jsonl:x:3"]

    f.write_text(f.read_text() + "{not json\n")
    with pytest.raises(DataFormatError, match=r"other-ndcg.jsonl.*5"):
        hubs.load_priors(tmp_path, o, exclude="me:")
