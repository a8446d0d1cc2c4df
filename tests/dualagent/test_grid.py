"""The experiment grid's cell on real data, at the graph tests' small
settings (same compiled kernels)."""

from __future__ import annotations

import json

import numpy as np

from agenticrec.evals import dualagent_grid as grid
from agenticrec.graphs import dualagent
from agenticrec.graphs._dualagent_scoring import random_feasible_share

SMALL = dict(n_candidates=200, coordinator_every=3, trace_hv=True)


def test_grid_cell_pairs_every_method_on_the_same_users(tmp_path):
    path = tmp_path / "gini0.6.json"
    spec = grid.LEVELS["ml-latest-small"]["gini0.6"]
    path.write_text(json.dumps({"constraints": spec}))
    res = grid.cell(
        "ml-latest-small",
        path,
        pop_size=24,
        generations=6,
        users=8,
        seeds=(0, 1),
        overrides=SMALL,
    )
    share = res["random_feasible_share"]
    assert 0.0 < share["mean"] < 1.0 and share["satisfiable"]["yes"] == 8
    assert res["narrow"] == (share["mean"] < grid.NARROW_SHARE)
    assert set(res["methods"]) == set(grid.METHODS)
    for m, s in res["methods"].items():
        assert s["feasible_if_satisfiable"] == 1.0, m
        assert 0.0 <= s["better_than_greedy_users"] <= 1.0
    assert set(res["vs"]) == set(grid.METHODS) - {"dualagent"}
    assert len(res["hv_per_seed"]["dualagent"]) == 2
    cells = [
        {
            "data": "ml-latest-small",
            "level": "gini0.6",
            "pop_size": 24,
            "generations": 6,
            **res,
        }
    ]
    md = grid.table({"cells": cells, "coordinator_vs_fixed": grid._coordinator(cells)})
    assert "gini0.6" in md and "Rule coordinator vs fixed" in md
    # two processes' grids merge into one table and one coordinator test
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"cells": cells}))
    b.write_text(json.dumps({"cells": [{**cells[0], "level": "other"}]}))
    out = tmp_path / "m.json"
    assert grid.main(["--merge", str(a), str(b), "--json", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert [c["level"] for c in merged["cells"]] == ["gini0.6", "other"]
    assert merged["coordinator_vs_fixed"]["pairs"] == 4
    (tmp_path / "bad.json").write_text("{not json")
    assert grid.main(["--merge", str(tmp_path / "bad.json")]) == 2


def test_random_feasible_share_matches_the_hypergeometric_law(tmp_path):
    # one long-tail share constraint: a random k-subset is feasible when it
    # holds >= ceil(t k) of the user's flagged candidates, a hypergeometric
    # tail probability (an independent reference for the sampler)
    from scipy import stats

    users = [0, 1, 2]
    for threshold in (0.0, 0.7, 0.9):
        path = tmp_path / f"c{threshold}.json"
        spec = [{"kind": "min_share", "attribute": "long_tail", "threshold": threshold}]
        path.write_text(json.dumps(spec))
        c = dualagent.DualAgentContext(
            data="ml-latest-small", n_candidates=200, constraints=str(path)
        )
        batch = dualagent.workspace(c, users).batch
        n = 2000
        share = random_feasible_share(batch, n_lists=n, chunk=250)
        flags = np.asarray(batch.problem.attr)[:, :, 0]
        n_cand = np.asarray(batch.problem.n_cand)
        k = batch.problem.k
        for u in range(len(users)):
            tail = int(flags[u, : n_cand[u]].sum())
            need = int(np.ceil(threshold * k - 1e-9))
            want = stats.hypergeom(int(n_cand[u]), tail, k).sf(need - 1)
            se = max(np.sqrt(want * (1 - want) / n), 1e-3)
            assert abs(share[u] - want) <= 4 * se, (threshold, u, share[u], want)
