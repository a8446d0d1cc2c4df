"""AgenticRecTune (rule policies) vs Optuna TPE vs random search, same budget.

Every method gets the same task (data, objective, user partition), the same
number of offline evaluations (the agent's ``rounds x candidates``) and the
same number of A/B tests as the agent used in that seed:

* **agent**: the tune graph (``agenticrec.runner.run("tune", ...)``) with a
  fresh (temporary) Skillhub holding the seed skills.
* **tpe**: Optuna's ``TPESampler`` over the 24 knobs (recall quotas
  renormalised by ``PipelineConfig.from_vector``), maximising the offline
  north star with the guard metric as a constraint (relative drop at most the
  objective's ``guard_tolerance``).
* **random**: uniform samples in the same box, same constraint.

TPE and random then A/B test their best feasible offline configurations
(as many as the agent launched), each against the default with a fresh
assignment seed, exactly as the Online agent does; the winner is the
significant one with the largest gain.

Reported per method and seed:

* the in-run **winner** (a significant A/B test among the many the method
  ran; multiplicity inflates these) and its *population gain*: the mean
  north-star change over **all** online users, free of the arm split;
* the **offline pick** (agent: its incumbent, the config the Critic confirmed
  on both offline halves; TPE/random: the best feasible offline config),
  chosen without online data: its population gain, one pre-registered A/B
  test against the default (same assignment seed for every method), and its
  win share over 20 fresh assignments (the power of a 50/50 test for it).

Every test uses the tune context's online design (``ab_design``, default
team-draft interleaving over 10 online events per user); the pick's win share
is also reported under a plain Welch split, for the power comparison.

Run: ``agenticrec eval bench_tune [--seeds 5] [--rounds 10] [--candidates 6]``
(Optuna is a core dependency: the Actor steers its samplers).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from agenticrec.graphs import tune
from agenticrec.graphs._tune_search import overrides_of
from agenticrec.graphs._tune_task import TuneTask, experiment_seed
from agenticrec.runner import run
from agenticrec.tools.pipeline import PipelineConfig

METHODS = ("agent", "tpe", "cmaes", "random")
NAMES = PipelineConfig.knob_names()
BOUNDS = PipelineConfig.bounds()
CHOICES = PipelineConfig.choices()


def _feasible(task: TuneTask, ctx: tune.TuneContext, over: dict, control: dict):
    o = ctx.obj
    est = task.estimate(over)["all"]
    ns = est[o.north_star]
    guard = (est[o.guard] - control[o.guard]) / abs(control[o.guard])
    return ns, guard >= -o.guard_tolerance, guard


def search_optuna(
    task, ctx, budget: int, seed: int, sampler: str = "tpe"
) -> list[tuple[float, bool, dict]]:
    """Plain Optuna at the same budget: ``tpe`` (``TPESampler``, default
    settings) or ``cmaes`` (``CmaEsSampler``; the categorical knobs fall back
    to its independent sampler, as Optuna does)."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    control = task.estimate({})["all"]
    out: list[tuple[float, bool, dict]] = []

    def objective(trial):
        v = []
        for k in NAMES:
            b = BOUNDS[k]
            if k in CHOICES:
                v.append(
                    float(CHOICES[k].index(trial.suggest_categorical(k, CHOICES[k])))
                )
            elif b.kind == "int":
                v.append(float(trial.suggest_int(k, int(b.low), int(b.high))))
            else:
                v.append(trial.suggest_float(k, b.low, b.high))
        over = overrides_of(PipelineConfig.from_vector(np.array(v)))
        ns, ok, guard = _feasible(task, ctx, over, control)
        trial.set_constraint("guard", -ctx.obj.guard_tolerance - guard)
        out.append((ns, ok, over))
        return ns

    if sampler == "tpe":
        engine = optuna.samplers.TPESampler(seed=seed)
    else:
        engine = optuna.samplers.CmaEsSampler(
            seed=seed, warn_independent_sampling=False
        )
    study = optuna.create_study(direction="maximize", sampler=engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=budget)
    return out


def search_tpe(task, ctx, budget: int, seed: int) -> list[tuple[float, bool, dict]]:
    return search_optuna(task, ctx, budget, seed, "tpe")


def search_cmaes(task, ctx, budget: int, seed: int) -> list[tuple[float, bool, dict]]:
    return search_optuna(task, ctx, budget, seed, "cmaes")


def search_random(task, ctx, budget: int, seed: int) -> list[tuple[float, bool, dict]]:
    rng = np.random.default_rng(seed)
    lo = np.array([BOUNDS[k].low for k in NAMES])
    hi = np.array([BOUNDS[k].high for k in NAMES])
    control = task.estimate({})["all"]
    out = []
    for _ in range(budget):
        over = overrides_of(
            PipelineConfig.from_vector(lo + rng.random(len(NAMES)) * (hi - lo))
        )
        ns, ok, _ = _feasible(task, ctx, over, control)
        out.append((ns, ok, over))
    return out


def ab_select(task, ctx, tried, n_ab: int, tag: str) -> dict[str, Any]:
    """A/B test the ``n_ab`` best feasible configs; pick the best winner."""
    o = ctx.obj
    feas = sorted((t for t in tried if t[1]), key=lambda t: -t[0])
    best_over = feas[0][2] if feas else {}
    winner = None
    for i, (_, _, over) in enumerate(feas[:n_ab]):
        eid = f"{tag}:{i}"
        r = task.ab_test(
            over,
            seed=experiment_seed(ctx.seed, eid),
            objective=o,
            alpha=ctx.alpha,
            design=ctx.ab_design,
        )
        m = r.metrics[o.north_star]
        if r.decision == "treatment" and (winner is None or m.diff > winner["diff"]):
            winner = {
                "knobs": over,
                "diff": m.diff,
                "relative": m.relative_diff,
                "p": m.p_value,
            }
    return {"winner": winner, "pick": best_over}


def population_gain(task, ctx, over: dict) -> float:
    """Mean relative north-star change over all online users."""
    c = task._per_user("online", {})[ctx.obj.north_star]
    t = task._per_user("online", over)[ctx.obj.north_star]
    return float((t.mean() - c.mean()) / c.mean())


def run_agent(ctx: tune.TuneContext) -> dict[str, Any]:
    return run("tune", ctx, thread_id=f"bench-{ctx.seed}").model_dump(mode="json")


def confirm(
    task, ctx, over: dict, seed: int, assignments: int = 20
) -> dict[str, Any]:
    """One pre-registered A/B test of an offline-chosen config (the same
    assignment seed for every method of a seed) and its win share over 20
    fresh assignments."""
    o = ctx.obj
    if not over:
        return {
            "sig": False,
            "diff": 0.0,
            "p": 1.0,
            "win_share": 0.0,
            "win_share_welch": 0.0,
        }
    r = task.ab_test(
        over,
        seed=experiment_seed(ctx.seed, f"bench-{seed}:confirm"),
        objective=o,
        alpha=ctx.alpha,
        design=ctx.ab_design,
    )
    m = r.metrics[o.north_star]
    rob = task.robustness(
        over, objective=o, alpha=ctx.alpha, design=ctx.ab_design, seeds=assignments
    )
    welch = task.robustness(
        over, objective=o, alpha=ctx.alpha, design="welch", seeds=assignments
    )
    return {
        "sig": r.decision == "treatment",
        "diff": m.diff,
        "p": m.p_value,
        "win_share": rob["win_share"],
        "win_share_welch": welch["win_share"],
    }


def row(method, seed, budget, n_ab, winner, pick, task, ctx, seconds, assignments):
    """One table row: the in-run winner (if any) and the offline pick."""
    c = confirm(task, ctx, pick, seed, assignments)
    return {
        "method": method,
        "seed": seed,
        "evals": budget,
        "ab_tests": n_ab,
        "winner": winner is not None,
        "winner_diff": winner["diff"] if winner else 0.0,
        "winner_p": winner["p"] if winner else None,
        "winner_population_gain": population_gain(task, ctx, winner["knobs"])
        if winner
        else None,
        "pick": pick,
        "pick_population_gain": population_gain(task, ctx, pick),
        "confirm_win": c["sig"],
        "confirm_diff": c["diff"],
        "confirm_p": c["p"],
        "pick_win_share": c["win_share"],
        "pick_win_share_welch": c["win_share_welch"],
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="ml-latest-small")
    ap.add_argument("--objective", default="ndcg")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--candidates", type=int, default=6)
    ap.add_argument("--out", default="runs/bench_tune.json")
    ap.add_argument(
        "--assignments",
        type=int,
        default=20,
        help="fresh assignments behind each pick's win share (1..1000)",
    )
    args = ap.parse_args(argv)
    if not 1 <= args.assignments <= 1000:
        ap.error(f"--assignments {args.assignments}: must lie in 1..1000")
    rows: list[dict[str, Any]] = []
    for seed in range(args.seeds):
        ctx = tune.TuneContext(
            data=args.data,
            objective=args.objective,
            rounds=args.rounds,
            candidates=args.candidates,
            seed=seed,
            split_seed=0,
            skillhub=tune.TEMP_HUB,  # fresh, removed when the run ends
        )
        task = ctx.ws()
        t0 = time.perf_counter()
        rep = run_agent(ctx)
        budget, n_ab = rep["evaluations"], max(rep["ab_tests"], 1)
        w = rep["winner"]
        win = {"knobs": w["knobs"], "diff": w["diff"], "p": w["p"]} if w else None
        rows.append(
            row(
                "agent",
                seed,
                budget,
                rep["ab_tests"],
                win,
                rep["incumbent"]["knobs"],
                task,
                ctx,
                time.perf_counter() - t0,
                args.assignments,
            )
        )
        for name, fn in (
            ("tpe", search_tpe),
            ("cmaes", search_cmaes),
            ("random", search_random),
        ):
            t0 = time.perf_counter()
            tried = fn(task, ctx, budget, seed)
            sel = ab_select(task, ctx, tried, n_ab, f"{name}-{seed}")
            rows.append(
                row(
                    name,
                    seed,
                    budget,
                    n_ab,
                    sel["winner"],
                    sel["pick"],
                    task,
                    ctx,
                    time.perf_counter() - t0,
                    args.assignments,
                )
            )
        print(json.dumps(rows[-4:], default=str), file=sys.stderr)
    table = summarize(rows)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"rows": rows, "table": table}, indent=1, default=str)
    )
    return {"rows": rows, "table": table}


def summarize(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| method | seeds | offline evals | A/B tests | in-run winners | their "
        "population gain | offline pick: population gain (min..max) | "
        "pick wins confirmation | pick win share (fresh tests) | "
        "same, Welch split |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in METHODS:
        rs = [r for r in rows if r["method"] == m]
        if not rs:
            continue
        g = [r["pick_population_gain"] for r in rs]
        wg = [r["winner_population_gain"] for r in rs if r["winner"]]
        lines.append(
            f"| {m} | {len(rs)} | {np.mean([r['evals'] for r in rs]):.0f} | "
            f"{np.mean([r['ab_tests'] for r in rs]):.1f} | "
            f"{sum(r['winner'] for r in rs)}/{len(rs)} | "
            + (f"{np.mean(wg):+.1%}" if wg else "-")
            + f" | {np.mean(g):+.1%} ({min(g):+.1%}..{max(g):+.1%}) | "
            f"{sum(r['confirm_win'] for r in rs)}/{len(rs)} | "
            f"{np.mean([r['pick_win_share'] for r in rs]):.2f} | "
            f"{np.mean([r.get('pick_win_share_welch', 0.0) for r in rs]):.2f} |"
        )
    lines += [
        "",
        "| agent vs | paired on | seeds | mean diff | paired t p | Wilcoxon p |",
        "|---|---|---|---|---|---|",
    ]
    for other in METHODS[1:]:
        for key in ("pick_population_gain", "pick_win_share"):
            pr = paired(rows, "agent", other, key)
            if pr is None:
                continue
            lines.append(
                f"| {other} | {key} | {pr['n']} | {pr['diff']:+.4f} | "
                f"{pr['t_p']:.3g} | {pr['w_p']:.3g} |"
            )
    return "\n".join(lines)


def paired(rows, a: str, b: str, key: str) -> dict[str, float] | None:
    """Paired t-test and Wilcoxon signed-rank test of ``key`` between two
    methods over the seeds both ran (``None`` with fewer than 2 seeds)."""
    from scipy import stats

    by = {(r["method"], r["seed"]): r[key] for r in rows}
    seeds = sorted(s for (m, s) in by if m == a and (b, s) in by)
    if len(seeds) < 2:
        return None
    x = np.array([by[(a, s)] for s in seeds], float)
    y = np.array([by[(b, s)] for s in seeds], float)
    d = x - y
    t_p = float(stats.ttest_rel(x, y).pvalue) if d.std() > 0 else 1.0
    w_p = float(stats.wilcoxon(x, y).pvalue) if np.any(d != 0) else 1.0
    return {"n": len(seeds), "diff": float(d.mean()), "t_p": t_p, "w_p": w_p}


if __name__ == "__main__":
    main()
