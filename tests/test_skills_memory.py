"""ExperimentMemory: Pareto + diversity pruning against brute force, durable appends."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from agenticrec.errors import ConfigError, DataFormatError
from agenticrec.skills import (
    ExperimentItem,
    ExperimentMemory,
    Objective,
    config_matrix,
    select_pareto_diverse,
)
from agenticrec.skills._pareto import nondominated_ranks

OBJ = [Objective("NDCG@10", "max"), Objective("latency_ms", "min")]
KNOBS = ("ranking.w_cf", "ranking.w_pop", "rerank.mmr_lambda")


def _random_items(rng, n: int) -> list[ExperimentItem]:
    return [
        ExperimentItem(
            id=f"e{i}",
            config={k: float(rng.uniform(0, 2)) for k in KNOBS},
            results={"NDCG@10": float(rng.normal()), "latency_ms": float(rng.normal())},
        )
        for i in range(n)
    ]


# -- brute-force references (pure Python) -----------------------------------


def _dominates(a: ExperimentItem, b: ExperimentItem, objectives) -> bool:
    def better_eq(o):
        x, y = a.results[o.metric], b.results[o.metric]
        return x >= y if o.direction == "max" else x <= y

    def better(o):
        x, y = a.results[o.metric], b.results[o.metric]
        return x > y if o.direction == "max" else x < y

    return all(map(better_eq, objectives)) and any(map(better, objectives))


def _front(items, objectives) -> set[int]:
    return {
        i
        for i, a in enumerate(items)
        if not any(_dominates(b, a, objectives) for b in items)
    }


def _normalised(items) -> list[list[float]]:
    cols = []
    for k in KNOBS:
        v = [it.config[k] for it in items]
        lo, hi = min(v), max(v)
        cols.append([(x - lo) / (hi - lo) for x in v])
    return [list(row) for row in zip(*cols, strict=True)]


def _greedy(points, start: list[int], pool, capacity: int) -> list[int]:
    chosen = list(start)
    while len(chosen) < capacity:
        rest = [p for p in pool if p not in chosen]
        if not rest:
            break
        gap = {p: min(math.dist(points[p], points[c]) for c in chosen) for p in rest}
        chosen.append(max(rest, key=lambda p: (gap[p], -p)))
    return chosen


# -- selection -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_nondominated_ranks_match_brute_force_peeling(seed):
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 4, size=(30, 3)).astype(float)  # ties included
    ranks = nondominated_ranks(pts)
    left, rank = set(range(len(pts))), 0
    while left:
        front = {
            i
            for i in left
            if not any(
                (pts[j] <= pts[i]).all() and (pts[j] < pts[i]).any() for j in left
            )
        }
        assert {i for i in range(len(pts)) if ranks[i] == rank} == front
        left -= front
        rank += 1


@pytest.mark.parametrize("seed", range(5))
def test_pruning_keeps_the_pareto_front_and_fills_with_farthest_configs(seed):
    rng = np.random.default_rng(seed)
    items = _random_items(rng, 40)
    capacity = 15
    kept = select_pareto_diverse(items, OBJ, capacity)
    front = _front(items, OBJ)
    assert len(front) < capacity  # this test covers the fill case
    assert len(kept) == capacity and kept == sorted(kept)
    assert front <= set(kept)
    points = _normalised(items)
    expected = _greedy(points, sorted(front), range(len(items)), capacity)
    assert set(kept) == set(expected)


@pytest.mark.parametrize("seed", range(3))
def test_a_front_larger_than_capacity_keeps_extremes_then_diverse_points(seed):
    rng = np.random.default_rng(seed)
    items = _random_items(rng, 30)
    for it in items:  # all on one trade-off curve: every item is non-dominated
        x = it.config["ranking.w_cf"]
        it.results.update({"NDCG@10": x, "latency_ms": x**2})
    capacity = 6
    kept = select_pareto_diverse(items, OBJ, capacity)
    assert _front(items, OBJ) == set(range(30))
    best_ndcg = max(range(30), key=lambda i: items[i].results["NDCG@10"])
    best_latency = min(range(30), key=lambda i: items[i].results["latency_ms"])
    points = _normalised(items)
    expected = _greedy(points, [best_ndcg, best_latency], range(30), capacity)
    assert set(kept) == set(expected)


@pytest.mark.parametrize("seed", range(3))
def test_diversity_selection_is_within_half_of_the_best_spacing(seed):
    rng = np.random.default_rng(seed)
    items = _random_items(rng, 10)
    k = 4
    kept = select_pareto_diverse(items, [], k)  # no objectives: diversity only
    points = _normalised(items)

    def spacing(subset):
        return min(
            math.dist(points[a], points[b])
            for a, b in itertools.combinations(subset, 2)
        )

    best = max(spacing(s) for s in itertools.combinations(range(10), k))
    assert len(kept) == k
    assert spacing(kept) >= best / 2 - 1e-12


def test_failed_and_unmeasured_items_only_fill_and_small_sets_are_kept():
    items = [
        ExperimentItem(id="a", config={"x": 0.0}, results={"NDCG@10": 0.3}),
        ExperimentItem(id="b", config={"x": 0.1}, results={"NDCG@10": 0.2}),
        ExperimentItem(id="c", config={"x": 1.0}, status="failed"),
        ExperimentItem(id="d", config={"x": 0.5}, results={"NDCG@10": math.nan}),
        ExperimentItem(
            id="e", config={"x": 0.05}, status="failed", results={"NDCG@10": 0.9}
        ),
    ]
    obj = [Objective("NDCG@10")]
    assert select_pareto_diverse(items, obj, 5) == [0, 1, 2, 3, 4]
    assert select_pareto_diverse(items, obj, 1) == [0]
    assert select_pareto_diverse(items, obj, 2) == [0, 2]  # the far failed config
    with pytest.raises(ConfigError, match="capacity"):
        select_pareto_diverse(items, obj, 0)
    with pytest.raises(ConfigError, match="'NDCG@10': direction"):
        select_pareto_diverse(items, [Objective("NDCG@10", "up")], 2)


def test_config_matrix_scales_numbers_fills_gaps_and_one_hots_strings():
    x = config_matrix(
        [
            {"w": 1.0, "on": True, "sim": "genre", "c": 3},
            {"w": 3.0, "on": False, "sim": "embedding", "c": 3},
            {"w": 2.0, "sim": "genre", "c": 3},
        ]
    )
    # columns: c, on, sim=embedding, sim=genre, w
    np.testing.assert_allclose(x[:, 0], [0, 0, 0])
    np.testing.assert_allclose(x[:, 1], [1, 0, 0.5])
    np.testing.assert_allclose(np.linalg.norm(x[0, 2:4] - x[1, 2:4]), 1.0)
    np.testing.assert_allclose(x[:, 4], [0, 1, 0.5])


# -- persistence -------------------------------------------------------------


def test_adds_are_idempotent_by_id_across_reopen_and_pruning(tmp_path):
    path = tmp_path / "mem" / "experiments.jsonl"
    mem = ExperimentMemory(path)
    item = ExperimentItem(id="e1", config={"w": 1.0}, results={"NDCG@10": 0.3})
    assert mem.add(item) is True
    assert mem.add(item) is False
    again = item.model_copy(update={"explanation": "again"})
    assert ExperimentMemory(path).add(again) is False
    assert len(ExperimentMemory(path)) == 1
    assert path.read_text().count("\n") == 1
    mem.add(ExperimentItem(id="e2", config={"w": 2.0}, results={"NDCG@10": 0.4}))
    assert mem.prune([Objective("NDCG@10")], capacity=1) == ["e1"]
    assert mem.add(item) is False  # a resumed run does not resurrect it
    assert [it.id for it in ExperimentMemory(path).items()] == ["e2"]


def test_update_replaces_an_item_and_keeps_its_place(tmp_path):
    mem = ExperimentMemory(tmp_path / "m.jsonl")
    mem.add(ExperimentItem(id="a", config={"w": 1.0}, status="running"))
    mem.add(ExperimentItem(id="b", config={"w": 2.0}, status="done"))
    got = mem.update("a", status="done", results={"NDCG@10": 0.31})
    assert got.results == {"NDCG@10": 0.31}
    assert [(it.id, it.status) for it in mem.items()] == [("a", "done"), ("b", "done")]
    assert [it.id for it in mem.items(status="done")] == ["a", "b"]
    with pytest.raises(KeyError, match="nope"):
        mem.update("nope", status="done")
    with pytest.raises(ConfigError, match="status"):
        mem.update("a", status="finished")


def test_prune_keeps_in_flight_items_and_auto_prunes_at_capacity(tmp_path):
    mem = ExperimentMemory(tmp_path / "m.jsonl", objectives=OBJ, capacity=3)
    mem.add(ExperimentItem(id="live", config={"w": 9.0}, status="running"))
    for i in range(6):
        mem.add(
            ExperimentItem(
                id=f"e{i}",
                config={"w": float(i)},
                results={"NDCG@10": i / 10, "latency_ms": 10.0 - i},
            )
        )
    ids = [it.id for it in mem.items()]
    assert "live" in ids and "e5" in ids  # e5 dominates every other e*
    assert len(ids) == 4
    settled = [it for it in mem.items() if it.status != "running"]
    assert len(settled) == 3


def test_a_torn_last_line_is_ignored_then_cut_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "m.jsonl"
    mem = ExperimentMemory(path)
    mem.add(ExperimentItem(id="a"))
    with open(path, "ab") as fh:
        fh.write(b'{"id": "half", "conf')  # a writer killed mid-line
    assert [it.id for it in mem.items()] == ["a"]
    mem.add(ExperimentItem(id="b"))
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["a", "b"]
    with open(path, "a") as fh:
        fh.write('{"id": "c", "status": "exploded"}\n')
    with pytest.raises(DataFormatError, match=r"m\.jsonl, line 3, field 'status'"):
        mem.items()


def test_two_processes_append_to_one_memory_without_duplicates(tmp_path):
    path = tmp_path / "m.jsonl"
    worker = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from agenticrec.skills import ExperimentItem, ExperimentMemory
        lo, hi, step = map(int, sys.argv[1:])
        mem = ExperimentMemory({str(path)!r})
        (Path({str(tmp_path)!r}) / f"ready-{{lo}}").touch()
        while len(list(Path({str(tmp_path)!r}).glob("ready-*"))) < 2:
            time.sleep(0.01)
        for i in range(lo, hi, step):
            mem.add(ExperimentItem(id=f"e{{i}}", config={{"w": float(i)}}))
            time.sleep(0.005)
        """
    )
    procs = [  # 0..59 upwards and 89..30 downwards: both race for 30..59
        subprocess.Popen([sys.executable, "-c", worker, *args], stderr=subprocess.PIPE)
        for args in (("0", "60", "1"), ("89", "29", "-1"))
    ]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    lines = path.read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids)) == 90
    only_a = [n for n, i in enumerate(ids) if int(i[1:]) < 30]
    only_b = [n for n, i in enumerate(ids) if int(i[1:]) >= 60]
    interleaved = min(only_b) < max(only_a) and min(only_a) < max(only_b)
    assert interleaved, "the two writers did not run at the same time"
    assert {it.id for it in ExperimentMemory(path).items()} == {
        f"e{i}" for i in range(90)
    }
