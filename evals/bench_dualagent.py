"""Benchmark: DualAgent-Rec's batched JAX evolution against pymoo's NSGA-II.

The same problem for every peer: the first ``--users`` evaluable users of
``--data``, ``k`` of ``M`` candidates, 3 objectives, the dataset's 3 default
constraints, population 200, 100 generations. Peers, side by side in one
process:

- ``agenticrec dualagent``: the graph's kernels for all users at once
  (init + one jitted round per 10 generations, rule coordinator, final pick);
- ``agenticrec nsga2``: the same engine in single-population NSGA-II mode;
- ``pymoo NSGA-II``: ``pymoo.algorithms.moo.nsga2.NSGA2`` per user, with
  NumPy objectives identical to the kernel's, random k-subset sampling,
  uniform crossover (0.9), per-position mutation (0.1) and duplicate repair.
  pymoo is slow, so it runs on ``--pymoo-users`` users and is reported per
  user.

Compilation is timed apart (the first call of each jitted function); the
steady-state time is a second, identical call. The table reports seconds per
user and the per-user throughput ratio against pymoo (higher is better).

    python -m agenticrec.evals.bench_dualagent
    python -m agenticrec.evals.bench_dualagent --users 10000 --pymoo-users 0   # GPU
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np

from agenticrec.graphs import _dualagent_problem as dp
from agenticrec.graphs import _dualagent_roles as roles
from agenticrec.graphs.dualagent import LAYOUT_ALPHA, method_config
from agenticrec.tools import evolve as ev
from agenticrec.tools import pareto

__all__ = ["main", "pymoo_user", "run_engine"]


def run_engine(batch, cfg, *, gens: int, every: int, coordinated: bool, mesh=None):
    """Init, ``gens`` generations in rounds of ``every``, final pick, for all
    users; returns ``(seconds, hypervolume f[U], feasible bool[U])``."""
    t0 = time.perf_counter()
    problem, seeds = batch.problem, batch.seeds
    u, n = problem.n_users, cfg.pop_size
    alpha = LAYOUT_ALPHA if coordinated else 1.0
    ne = np.full(u, round(alpha * n), np.int32)
    pop, eps0 = ev.init_population(
        problem, seeds, ne, cfg, seed_lists=batch.certificate, mesh=mesh
    )
    _, m = ev.assess(problem, pop.lists, ne, eps0, mesh=mesh)
    lists, prev, g = pop.lists, None, 0
    while g < gens:
        if coordinated:
            feas = float(np.asarray(m.feasible).mean())
            hv = float(np.asarray(m.hypervolume).mean())
            obs = {
                "progress": g / gens,
                "feasibility_rate": feas,
                "improvement_rate": None
                if prev is None
                else (hv - prev) / max(prev, 1e-9),
            }
            alpha, prev = roles.coordinator_rule(obs).exploitation_ratio, hv
            ne = np.full(u, round(alpha * n), np.int32)
        step = min(every, gens - g)
        pop, _, m = ev.evolve(
            problem,
            lists,
            ne,
            eps0,
            seeds,
            start=g,
            total=gens,
            n_gens=step,
            cfg=cfg,
            mesh=mesh,
        )
        lists, g = pop.lists, g + step
    _, ok = ev.pick(pop)
    hv = np.asarray(ev.final_front(pop))
    return time.perf_counter() - t0, hv, np.asarray(ok)


# -------------------------------------------------------------------- pymoo
class _NumpyProblem:
    """One user's objectives and constraints in NumPy (the kernel's formulas)."""

    def __init__(self, problem: ev.Problem, row: int):
        self.k = problem.k
        self.n_cand = int(problem.n_cand[row])
        self.score = np.asarray(problem.score[row], np.float64)
        self.emb = np.asarray(problem.emb[row], np.float64)
        self.nov = np.asarray(problem.novelty[row], np.float64)
        self.attr = np.asarray(problem.attr[row])
        self.bound = np.asarray(problem.bound[row], np.float64)
        self.universe = np.asarray(problem.universe[row]).astype(np.int64) & 0xFFFFFFFF
        self.kinds, self.n_bits = problem.kinds, problem.n_bits
        self.w = 1.0 / np.log2(np.arange(self.k) + 2.0)
        self.idcg = float((self.score[: self.k] * self.w).sum())

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.sort(x.astype(np.int64), axis=1)
        k = self.k
        rel = (self.score[x] * self.w).sum(1) / self.idcg
        e = self.emb[x]
        tot = e.sum(1)
        mean_cos = 0.5 * ((tot * tot).sum(1) - (e * e).sum((1, 2))) / (k * (k - 1) / 2)
        div = np.clip(0.5 * (1 - mean_cos), 0, 1)
        nov = self.nov[x].mean(1)
        g = []
        for c, kind in enumerate(self.kinds):
            a = self.attr[x, c]
            if kind == "max_gini":
                bits = np.arange(self.n_bits)
                counts = ((a[..., None] >> bits) & 1).sum(1).astype(np.float64)
                inside = ((self.universe[c] >> bits) & 1).astype(np.float64)
                gu, total = inside.sum(), (counts * inside).sum(1)
                mad = (
                    inside[None, :, None]
                    * inside[None, None, :]
                    * np.abs(counts[:, :, None] - counts[:, None, :])
                ).sum((1, 2))
                gini = np.where(total == 0, 1.0, mad / np.maximum(2 * gu * total, 1.0))
                g.append(gini - self.bound[c] - 1e-6)
            elif kind == "min_distinct_share":
                distinct = np.array(
                    [len({v for v in row if v >= 0}) for row in a], np.float64
                )
                g.append((self.bound[c] - distinct) / k)
            else:
                g.append((self.bound[c] - a.sum(1)) / k)
        return np.stack([-rel, -div, -nov], 1), np.stack(g, 1)


def _repair(x: np.ndarray, n_cand: int, rng: np.random.Generator) -> np.ndarray:
    x = np.sort(x, axis=1)
    for r in np.flatnonzero((np.diff(x, axis=1) == 0).any(axis=1)):
        row = list(dict.fromkeys(x[r].tolist()))
        while len(row) < x.shape[1]:
            c = int(rng.integers(n_cand))
            if c not in row:
                row.append(c)
        x[r] = np.sort(row)
    return x


def pymoo_user(problem: ev.Problem, row: int, *, pop: int, gens: int, seed: int):
    """pymoo NSGA-II on one user; ``(seconds, hypervolume, feasible)``."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.crossover import Crossover
    from pymoo.core.mutation import Mutation
    from pymoo.core.problem import Problem
    from pymoo.core.sampling import Sampling
    from pymoo.optimize import minimize

    npb = _NumpyProblem(problem, row)
    rng = np.random.default_rng(seed)

    class ListProblem(Problem):
        def __init__(self):
            super().__init__(
                n_var=npb.k,
                n_obj=3,
                n_ieq_constr=len(npb.kinds),
                xl=0,
                xu=npb.n_cand - 1,
                vtype=int,
            )

        def _evaluate(self, x, out, *args, **kwargs):
            out["F"], out["G"] = npb.evaluate(np.asarray(x))

    class Subsets(Sampling):
        def _do(self, problem, n_samples, **kwargs):
            draws = np.argsort(rng.random((n_samples, npb.n_cand)), axis=1)
            return np.sort(draws[:, : npb.k], axis=1)

    class Uniform(Crossover):
        def __init__(self):
            super().__init__(2, 2, prob=0.9)

        def _do(self, problem, x, **kwargs):
            a, b = x[0].astype(np.int64), x[1].astype(np.int64)
            swap = rng.random(a.shape) < 0.5
            c1, c2 = np.where(swap, b, a), np.where(swap, a, b)
            return np.stack(
                [_repair(c1, npb.n_cand, rng), _repair(c2, npb.n_cand, rng)]
            )

    class Replace(Mutation):
        def _do(self, problem, x, **kwargs):
            x = x.astype(np.int64)
            hit = rng.random(x.shape) < 0.1
            x = np.where(hit, rng.integers(0, npb.n_cand, x.shape), x)
            return _repair(x, npb.n_cand, rng)

    algo = NSGA2(
        pop_size=pop,
        sampling=Subsets(),
        crossover=Uniform(),
        mutation=Replace(),
        eliminate_duplicates=True,
    )
    t0 = time.perf_counter()
    res = minimize(ListProblem(), algo, ("n_gen", gens), seed=seed, verbose=False)
    dt = time.perf_counter() - t0
    f, g = npb.evaluate(np.asarray(res.pop.get("X")))
    feas = np.maximum(g, 0).sum(1) == 0
    hv = float(pareto.hypervolume(f[feas], np.zeros(3))) if feas.any() else 0.0
    return dt, hv, bool(feas.any())


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ml-latest-small")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--pymoo-users", type=int, default=5)
    ap.add_argument("--pop", type=int, default=200)
    ap.add_argument("--gens", type=int, default=100)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    ws = dp.workspace(a.data)
    t0 = time.perf_counter()
    base_users = ws.users[: min(a.users, ws.users.size)]
    batch = dp.build_batch(
        ws,
        base_users,
        n_candidates=a.candidates,
        k=a.k,
        specs=dp.default_constraints(ws.dataset),
        seed=a.seed,
    )
    if a.users > batch.problem.n_users:  # scale runs: repeat users, fresh seeds
        batch = _tiled(batch, a.users)
    setup = time.perf_counter() - t0
    dev = jax.devices()[0]
    mesh = ev.users_mesh() if jax.local_device_count() > 1 else None
    print(
        f"# {a.data}: {batch.problem.n_users} users, pop {a.pop}, "
        f"{a.gens} generations, "
        f"k={a.k} of {a.candidates}, 3 objectives, {len(batch.specs)} constraints; "
        f"device {dev.platform} ({dev.device_kind}) x{jax.local_device_count()}, "
        f"{platform.processor() or platform.machine()}; setup {setup:.1f}s",
        flush=True,
    )
    rows = []
    for name, method, coord in (
        ("agenticrec dualagent", "dualagent", True),
        ("agenticrec nsga2", "nsga2", False),
    ):
        cfg = method_config(method, a.pop)
        first, _, _ = run_engine(
            batch, cfg, gens=a.gens, every=a.every, coordinated=coord, mesh=mesh
        )
        steady, hv, ok = run_engine(
            batch, cfg, gens=a.gens, every=a.every, coordinated=coord, mesh=mesh
        )
        u = batch.problem.n_users
        head = slice(0, max(1, min(a.pymoo_users, u)))
        rows.append(
            (
                name,
                u,
                steady,
                steady / u,
                first - steady,
                float(hv[head].mean()),
                float(ok.mean()),
            )
        )
        print(
            f"  {name}: {steady:.2f}s steady, compile {first - steady:.1f}s", flush=True
        )
    if a.pymoo_users > 0:
        times, hvs, oks = [], [], []
        for r in range(min(a.pymoo_users, batch.problem.n_users)):
            dt, hv, ok = pymoo_user(
                batch.problem, r, pop=a.pop, gens=a.gens, seed=a.seed + r
            )
            times.append(dt)
            hvs.append(hv)
            oks.append(ok)
            print(f"  pymoo user {r}: {dt:.2f}s HV {hv:.4f}", flush=True)
        n = len(times)
        rows.append(
            (
                "pymoo NSGA-II (per user)",
                n,
                sum(times),
                sum(times) / n,
                0.0,
                float(np.mean(hvs)),
                float(np.mean(oks)),
            )
        )
    base = rows[-1][3] if a.pymoo_users > 0 else None
    print()
    cols = (
        "peer",
        "users",
        "seconds (steady)",
        "s / user",
        "per-user throughput vs pymoo",
        "compile s",
        "mean HV (feasible)",
        "users feasible",
    )
    print("| " + " | ".join(cols) + " |")
    print("|---" * len(cols) + "|")
    for name, u, total, per, comp, hv, ok in rows:
        ratio = f"{base / per:.1f}x" if base else "-"
        cells = (name, u, f"{total:.2f}", f"{per:.4f}", ratio, f"{comp:.1f}")
        cells += (f"{hv:.4f}", f"{ok:.2f}")
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print(
        f"\nHV column: mean over the first {max(1, a.pymoo_users)} user(s) for every "
        "peer (same users); 'users feasible': share of all users a peer ran."
    )
    return 0


def _tiled(batch, n: int):
    """``batch`` repeated to ``n`` users, each copy with its own seed."""
    import dataclasses

    reps = -(-n // len(batch.users))

    def tile(x):
        return np.concatenate([np.asarray(x)] * reps)[:n]

    seeds = tile(batch.seeds) + np.arange(n, dtype=np.uint32) * 2654435761
    return dataclasses.replace(
        batch,
        users=tile(batch.users),
        cands=tile(batch.cands),
        problem=jax.tree.map(tile, batch.problem),
        seeds=seeds.astype(np.uint32),
        targets=tile(batch.targets),
        certificate=tile(batch.certificate),
        satisfiable=list(tile(batch.satisfiable)),
        binding=list(tile(batch.binding)),
    )


if __name__ == "__main__":
    raise SystemExit(main())
