"""The teacher's fitted rule policy: fitted on validation only, the same
numbers as its tools, a shortlist drawn from every channel, and ablations."""

from __future__ import annotations

import numpy as np
import pytest

from agenticrec.graphs import _teacher_fit as fit_mod
from agenticrec.graphs._teacher_retrieval import (
    RETRIEVAL_CHANNELS,
    catalogue_scores,
    shortlist,
    signal_matrix,
)
from agenticrec.graphs.teacher import TeacherContext
from agenticrec.runner import run
from agenticrec.trajectory import read_trajectories

HEADER = "userId,movieId,rating,timestamp\n"


def _log(folder, test_items=None, seed=0):
    """A MovieLens-style log: 80 users, 60 items, 14 timed interactions each
    drawn with a taste for neighbouring ids (so the signals carry
    information); ``test_items`` replaces each user's last interaction."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(80):
        centre = rng.integers(0, 60)
        items = (centre + rng.permutation(np.arange(-12, 13))[:14]) % 60
        if test_items is not None:
            fresh = [i for i in range(60) if i not in items[:13]]
            items[13] = test_items[u] if test_items[u] in fresh else fresh[0]
        for t, i in enumerate(items):
            rows.append(f"{u + 1},{int(i) + 1},4.0,{1000 + 10 * t}\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(HEADER + "".join(rows))
    return folder


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTICREC_CACHE_DIR", str(tmp_path / "cache"))
    fit_mod.fit_teacher.cache_clear()
    fit_mod.model_params.cache_clear()
    yield tmp_path
    fit_mod.fit_teacher.cache_clear()
    fit_mod.model_params.cache_clear()


def _fit(folder, protocol="full"):
    return TeacherContext(data=str(folder), protocol=protocol, shortlist=20).ws().fit


def test_fit_never_reads_test_items(cache):
    a = _fit(_log(cache / "a"))
    rng = np.random.default_rng(7)
    b = _fit(_log(cache / "b", test_items=rng.integers(0, 60, size=80)))
    assert a.fitted and b.fitted
    assert a.fingerprint != b.fingerprint  # the test rows did change
    keep = {"params", "weights", "reserve", "tau", "valid", "channel_ndcg", "recall"}
    assert a.model_dump(include=keep) == b.model_dump(include=keep)


def test_fit_is_cached_as_validated_json_and_refits_a_corrupt_file(cache):
    folder = _log(cache / "a")
    first = _fit(folder)
    files = sorted((cache / "cache" / "teacher-fit").glob("*.json"))
    assert len(files) == 2  # the hyperparameters and the full-protocol fit
    fit_mod.fit_teacher.cache_clear()
    for f in files:
        f.write_text('{"version": 1, "weights": "__import__(\'os\')"}')
    fit_mod.model_params.cache_clear()
    again = fit_mod.fit_teacher(str(folder), "full", 0, 20, fit_mod.FIT_USERS)
    assert again.model_dump(exclude={"seconds"}) == first.model_dump(
        exclude={"seconds"}
    )


def test_too_few_validation_users_keep_the_documented_prior(cache):
    rows = "".join(
        f"{u},{(u * 3 + i) % 20 + 1},4.0,{i}\n" for u in range(1, 6) for i in range(6)
    )
    (cache / "tiny").mkdir()
    (cache / "tiny" / "ratings.csv").write_text(HEADER + rows)
    f = _fit(cache / "tiny", "sampled:3")
    assert not f.fitted and "validation users" in f.reason
    assert f.weights["short"] == fit_mod.PRIOR


def test_batched_signals_equal_the_tools_answers():
    ws = TeacherContext(data="ml-100k", protocol="sampled:19").ws()
    users, cands = ws.users[:6], ws.cands[:6]
    sig = signal_matrix(ws.index, users, cands)
    calls = {
        "long_term": ("cooccurrence_evidence", {"recent": 0}),
        "recent": ("cooccurrence_evidence", {"recent": 10}),
        "neighbours": ("neighbour_evidence", {"k": 20}),
        "graph_walk": ("graph_walk_evidence", {}),
        "ease": ("ease_evidence", {}),
        "recent_ease": ("ease_evidence", {"recent": True}),
        "cosine": ("itemknn_evidence", {}),
        "sequence": ("sequence_evidence", {}),
    }
    for name, (tool, args) in calls.items():
        for r, u in enumerate(users):
            out = ws.tools[tool].invoke(
                {"user": int(u), "candidates": [int(c) for c in cands[r]], **args}
            )
            got = np.asarray([v for _, v in out["scores"]])
            np.testing.assert_allclose(got, sig[name][r], rtol=1e-3, atol=2e-3)


def test_shortlist_takes_every_channels_best_unseen_item():
    ws = TeacherContext(data="ml-100k", protocol="full").ws()
    users = ws.users[:8]
    short, _ = shortlist(ws.index, users, 50)
    assert short.shape == (8, 50)
    for r, u in enumerate(users):
        seen = set(ws.index.history(int(u)).tolist())
        assert len(set(short[r].tolist())) == 50 and not seen & set(short[r].tolist())
        for ch in (*RETRIEVAL_CHANNELS, "popularity"):
            best = int(np.argmax(catalogue_scores(ws.index, users[r : r + 1], ch)[0]))
            assert best in short[r], ch


def test_full_report_scores_baselines_over_the_catalogue_and_reports_recall():
    r = run("teacher", TeacherContext(data="ml-100k", protocol="full", users=30))
    assert 0.0 < r["recall"] <= 1.0 and r["shortlist"] == 200
    assert {"popularity", "itemknn-cooccurrence", "random"} <= set(r["metrics"])
    assert r["fit"]["fitted"] and set(r["fit"]["weights"]) == {"short", "long"}


@pytest.mark.parametrize("agent", ["planner", "analyst", "ranker", "reflector"])
def test_each_agent_can_be_removed_and_says_so(tmp_path, agent):
    path = tmp_path / "t.jsonl"
    ctx = TeacherContext(
        data="ml-100k",
        protocol="sampled:19",
        users=12,
        ablate=agent,
        trajectories=str(path),
    )
    r = run("teacher", ctx)
    assert r["policies"][agent] == {"ablated": 12}
    others = {"planner", "analyst", "ranker", "reflector"} - {agent}
    assert all(r["policies"][o] == {"rule": 12} for o in others)
    if agent == "reflector":
        assert r["reflections"] == 0
    calls = [
        c
        for t in read_trajectories(path).values()
        for step in t.steps
        for c in step.tool_results
    ]
    assert (len(calls) == 0) == (agent == "analyst")
