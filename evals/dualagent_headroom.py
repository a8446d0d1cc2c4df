"""Where a better hypervolume could come from, per constraint level: how much
the constraints cut the Pareto front, and how far an equal-budget run is
from convergence.

    python -m agenticrec.evals.dualagent_headroom [--data D ...] [--level L ...]
        [--users 20] [--seeds 2] [--budget 20000] [--pop 100] [--factor 10]
        [--long-pop 200] [--json FILE]

DualAgent-Rec's Mechanism 1 says the exploration agent pays off when the
feasible region is narrow or disjoint: its constraint-free lists cross
infeasible space to parts of the front that constrained domination cannot
reach. That can only add hypervolume where the constraints *cut* the front,
i.e. where the best constrained front is smaller than the unconstrained one.
The share of random lists that are feasible (the grid's ``narrow``) measures
the region's volume, not that cut: a region can hold 2% of all lists and
still contain nearly the whole front. So per level (same users, candidates
and seeds; every run through ``agenticrec.runner.run``):

- **equal budget** (``pop x budget / pop``): hypervolume of dualagent,
  exploit-only and NSGA-II, and dualagent vs NSGA-II (paired tests);
- **long budget** (``factor x budget`` offspring, population ``long_pop``):
  NSGA-II and exploit-only under the constraints (per user the better of the
  two is the *best constrained front* found), and NSGA-II with no
  constraints at all (the *unconstrained front*, same search effort);
- **headroom** = best constrained front / NSGA-II at equal budget - 1: what
  any method could gain by converging faster;
- **cut** = 1 - best constrained front / unconstrained front: what the
  constraints remove from the front, the most that crossing infeasible
  space could give back;
- **repaired exploration**: the explore-only population at the equal
  budget (the exploration agent given every slot), each list projected onto
  the feasible region by the greedy repair
  (:func:`agenticrec.tools.evolve.repair_lists`, far more evaluations than
  the budget allows), joined to NSGA-II's equal-budget front: what the
  exploration agent's lists could add even if every one were made feasible
  at no cost.

Both fronts are found by search, so both figures are estimates from below
of the true fronts; they are compared at the same search effort.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from agenticrec.evals.dualagent_eval import paired_tests
from agenticrec.evals.dualagent_grid import LEVELS

__all__ = ["diagnose", "main", "table"]

EQUAL = ("dualagent", "exploit", "nsga2")
"""Methods run at the equal (grid) budget."""


def diagnose(
    data: str,
    level: str,
    spec: list[dict],
    *,
    users: int = 20,
    seeds: tuple[int, ...] = (0, 1),
    budget: int = 20_000,
    pop: int = 100,
    factor: int = 10,
    long_pop: int = 200,
    overrides: dict[str, Any] | None = None,
    log=print,
) -> dict[str, Any]:
    """One level's cut and headroom (see the module docstring)."""
    from agenticrec.graphs import dualagent
    from agenticrec.graphs._dualagent_scoring import random_feasible_share
    from agenticrec.runner import run

    t0 = time.perf_counter()
    gens, long_gens = budget // pop, factor * budget // long_pop
    hv: dict[str, list[np.ndarray]] = {}
    share = None
    with tempfile.TemporaryDirectory() as tmp:
        bound, free = Path(tmp) / f"{level}.json", Path(tmp) / "none.json"
        bound.write_text(json.dumps({"constraints": spec}), encoding="utf-8")
        free.write_text(json.dumps({"constraints": []}), encoding="utf-8")
        runs = {m: (bound, m, pop, gens) for m in EQUAL}
        runs["nsga2_long"] = (bound, "nsga2", long_pop, long_gens)
        runs["exploit_long"] = (bound, "exploit", long_pop, long_gens)
        runs["unconstrained_long"] = (free, "nsga2", long_pop, long_gens)
        for seed in seeds:
            per: dict[str, dict[int, float]] = {}
            for name, (path, method, n, t) in runs.items():
                c = _context(data, method, seed, path, n, t, overrides, users=users)
                rows = run("dualagent", c)["result"]["users"]
                per[name] = {int(r["user"]): float(r["hypervolume"]) for r in rows}
            # users every run kept (an unsatisfiable user is skipped only
            # under the constraints), in one order for the paired tests
            common = sorted(set.intersection(*(set(p) for p in per.values())))
            for name, p in per.items():
                hv.setdefault(name, []).append(np.array([p[u] for u in common]))
            hv.setdefault("nsga2_with_repaired_exploration", []).append(
                _with_repaired_exploration(
                    data, bound, seed, common, pop, gens, overrides
                )
            )
            if share is None:
                c = dualagent.DualAgentContext(
                    data=data, seed=seed, constraints=str(bound), **(overrides or {})
                )
                share = float(
                    random_feasible_share(dualagent.workspace(c, common).batch).mean()
                )
    n_users = min(len(x) for x in hv["nsga2"])
    mats = {k: np.stack([x[:n_users] for x in v]) for k, v in hv.items()}
    best = np.maximum(mats["nsga2_long"], mats["exploit_long"])
    means = {k: round(float(v.mean()), 6) for k, v in mats.items()}
    means["best_constrained_long"] = round(float(best.mean()), 6)
    repaired = mats["nsga2_with_repaired_exploration"]
    out = {
        "data": data,
        "level": level,
        "users": n_users,
        "seeds": list(seeds),
        "equal_budget": f"{pop} x {gens}",
        "long_budget": f"{long_pop} x {long_gens}",
        "random_feasible_share": round(share, 6),
        "hypervolume": means,
        "dual_vs_nsga2": paired_tests(mats["dualagent"], mats["nsga2"]),
        "headroom": round(float(best.mean() / mats["nsga2"].mean() - 1.0), 6),
        "cut": round(float(1.0 - best.mean() / mats["unconstrained_long"].mean()), 6),
        "repaired_exploration_gain": round(
            float(repaired.mean() / mats["nsga2"].mean() - 1.0), 6
        ),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    log(
        f"{data} {level}: share {share:.4f}, headroom {100 * out['headroom']:+.2f}%, "
        f"cut {100 * out['cut']:.2f}%, dual vs NSGA-II "
        f"{100 * out['dual_vs_nsga2']['gain']:+.2f}% ({out['seconds']:.0f}s)"
    )
    return out


def _context(data, method, seed, path, pop_size, gens, overrides, **extra):
    """One run's graph context (the same for the runner and the engine)."""
    from agenticrec.graphs import dualagent

    return dualagent.DualAgentContext(
        data=data,
        method=method,
        seed=seed,
        pop_size=pop_size,
        generations=gens,
        constraints=str(path),
        baselines=False,
        details=True,
        **extra,
        **(overrides or {}),
    )


def _populations(ctx, users: list[int], alpha: float):
    """The final population of ``ctx``'s method for ``users`` (the engine
    calls of the graph's ``prepare`` and ``evolve`` nodes in one round:
    draws do not depend on how generations are split into rounds, so with a
    fixed alpha this is the population the graph ends with)."""
    from agenticrec.graphs import dualagent
    from agenticrec.tools import evolve as ev

    w = dualagent.workspace(ctx, users)
    cfg = ctx.cfg()
    ne = np.full(w.problem.n_users, int(round(alpha * cfg.pop_size)), np.int32)
    pop, eps0 = ev.init_population(
        w.problem, w.seeds, ne, cfg, seed_lists=w.pad(w.batch.certificate)
    )
    t = int(ctx.generations)
    pop, _, _ = ev.evolve(
        w.problem, pop.lists, ne, eps0, w.seeds, start=0, total=t, n_gens=t, cfg=cfg
    )
    return w, pop


def _with_repaired_exploration(data, path, seed, users, pop_size, gens, overrides):
    """Per user, the hypervolume of NSGA-II's final feasible set joined to
    the repaired explore-only population (both at the equal budget)."""
    import jax.numpy as jnp

    from agenticrec.tools import evolve as ev

    def ctx(method):
        return _context(data, method, seed, path, pop_size, gens, overrides)

    w, nsga = _populations(ctx("nsga2"), users, 1.0)
    _, explore = _populations(ctx("explore"), users, 0.0)
    lists, _ = ev.repair_lists(w.problem, explore.lists)
    obj, viol, _ = ev.evaluate_lists(w.problem, lists)
    both = ev.Population(
        jnp.concatenate([nsga.lists, lists], axis=1),
        jnp.concatenate([nsga.obj, obj], axis=1),
        jnp.concatenate([nsga.viol, viol], axis=1),
    )
    return np.asarray(ev.final_front(both), np.float64)[: w.n_users]


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown, one row per level."""
    lines = [
        "| data | level | random feasible | NSGA-II | dualagent | exploit | dual vs "
        "NSGA-II (Wilcoxon p) | best constrained, long | unconstrained, long | "
        "headroom | cut | NSGA-II + repaired exploration |",
        "|---" * 12 + "|",
    ]
    for r in rows:
        h, vs = r["hypervolume"], r["dual_vs_nsga2"]
        p = vs.get("wilcoxon_pairs", {}).get("p")
        lines.append(
            f"| {r['data']} | {r['level']} | {r['random_feasible_share']:.4f} | "
            f"{h['nsga2']:.4f} | {h['dualagent']:.4f} | {h['exploit']:.4f} | "
            f"{100 * vs['gain']:+.2f}% ({'-' if p is None else f'{p:.2g}'}) | "
            f"{h['best_constrained_long']:.4f} | {h['unconstrained_long']:.4f} | "
            f"{100 * r['headroom']:+.2f}% | {100 * r['cut']:.2f}% | "
            f"{100 * r['repaired_exploration_gain']:+.2f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", choices=sorted(LEVELS))
    ap.add_argument("--level", action="append", help="Only these levels.")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--budget", type=int, default=20_000)
    ap.add_argument("--pop", type=int, default=100)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--long-pop", type=int, default=200)
    ap.add_argument("--json", default=None, help="Write the rows here (after each).")
    a = ap.parse_args(argv)
    datas = a.data or list(LEVELS)
    known = {lv for d in datas for lv in LEVELS[d]}
    unknown = sorted(set(a.level or ()) - known)
    if unknown:
        ap.error(f"--level {unknown}: expected some of {sorted(known)}")
    if a.users < 1 or a.seeds < 2 or a.factor < 1:
        ap.error("need --users >= 1, --seeds >= 2, --factor >= 1")
    for n, what in ((a.pop, "--pop"), (a.long_pop, "--long-pop")):
        if n < 8 or a.budget // n < 10:
            ap.error(f"{what} {n}: need >= 8 and --budget / {what} >= 10")
    rows: list[dict[str, Any]] = []
    for d in datas:
        for level, spec in LEVELS[d].items():
            if a.level and level not in a.level:
                continue
            rows.append(
                diagnose(
                    d,
                    level,
                    spec,
                    users=a.users,
                    seeds=tuple(range(a.seeds)),
                    budget=a.budget,
                    pop=a.pop,
                    factor=a.factor,
                    long_pop=a.long_pop,
                    log=lambda s: print(s, file=sys.stderr, flush=True),
                )
            )
            if a.json:
                from agenticrec._io import atomic_write_text

                atomic_write_text(Path(a.json), json.dumps({"levels": rows}, indent=1))
    print(table(rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
