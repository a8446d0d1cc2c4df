"""The cut/headroom diagnosis on real data, at the graph tests' small
settings (same compiled kernels)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agenticrec.evals import dualagent_grid as grid
from agenticrec.evals import dualagent_headroom as hr

SMALL = dict(n_candidates=200, coordinator_every=3)
TINY = dict(users=4, seeds=(0, 1), budget=160, pop=16, factor=2, long_pop=16)


def test_without_constraints_nothing_is_cut_and_every_list_is_feasible():
    # no constraints: the "best constrained" front includes the very run
    # that defines the unconstrained front (same users, seed, settings), so
    # the cut is exactly <= 0, and every random list is feasible
    r = hr.diagnose("ml-latest-small", "none", [], overrides=SMALL, **TINY)
    assert r["random_feasible_share"] == 1.0
    h = r["hypervolume"]
    assert h["nsga2_long"] == h["unconstrained_long"]
    assert r["cut"] <= 0.0
    assert h["best_constrained_long"] >= max(h["nsga2_long"], h["exploit_long"]) - 1e-6


def test_a_level_reports_headroom_cut_and_the_paired_comparison():
    spec = grid.LEVELS["ml-latest-small"]["gini0.5-tail0.3-recent0.5"]
    r = hr.diagnose("ml-latest-small", "strict", spec, overrides=SMALL, **TINY)
    h = r["hypervolume"]
    assert 0.0 <= r["random_feasible_share"] < 0.05
    assert r["users"] >= 1 and r["equal_budget"] == "16 x 10"
    assert r["long_budget"] == "16 x 20"
    assert r["headroom"] == pytest.approx(
        h["best_constrained_long"] / h["nsga2"] - 1, abs=2e-5
    )
    assert r["cut"] == pytest.approx(
        1 - h["best_constrained_long"] / h["unconstrained_long"], abs=2e-5
    )
    assert r["dual_vs_nsga2"]["mean_a"] == pytest.approx(h["dualagent"], abs=1e-5)
    # joining repaired lists to NSGA-II's front can only add volume
    assert h["nsga2_with_repaired_exploration"] >= h["nsga2"] - 1e-6
    assert r["repaired_exploration_gain"] >= -1e-6
    md = hr.table([r])
    assert "strict" in md and "headroom" in md


@pytest.mark.parametrize(
    "argv",
    [["--level", "nope"], ["--pop", "3"], ["--seeds", "1"], ["--factor", "0"]],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        hr.main(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


def test_the_engine_populations_are_the_graphs(tmp_path):
    # the repaired-exploration column rebuilds populations with the engine;
    # they must be the ones the graph serves from (same per-user volumes)
    from agenticrec.graphs import dualagent
    from agenticrec.runner import run
    from agenticrec.tools import evolve as ev

    path = tmp_path / "c.json"
    path.write_text(json.dumps(grid.LEVELS["ml-latest-small"]["gini0.6"]))
    for method, alpha in (("nsga2", 1.0), ("explore", 0.0)):
        c = dualagent.DualAgentContext(
            data="ml-latest-small",
            method=method,
            users=4,
            pop_size=16,
            generations=10,
            constraints=str(path),
            details=True,
            baselines=False,
            **SMALL,
        )
        rows = run("dualagent", c)["result"]["users"]
        users = [int(r["user"]) for r in rows]
        w, pop = hr._populations(c, users, alpha)
        got = np.asarray(ev.final_front(pop))[: w.n_users]
        want = np.array([r["hypervolume"] for r in rows])
        np.testing.assert_allclose(got, want, atol=1e-6)
