"""Evaluation of DualAgent-Rec and its baselines, and the hypervolume study.

The scoring (:func:`score_lists`, :func:`list_baselines`, :func:`greedy_mmr`)
lives in :mod:`agenticrec.graphs._dualagent_scoring`, which the graph uses at
run time, and is re-exported here. Every run goes through the one runner,
``agenticrec.runner.run("dualagent", ctx)``.

Per user: hypervolume of the final strictly feasible set (reference point 0,
exact), feasibility of the chosen list, NDCG@10 and Recall@10 of the chosen
list on the held-out item (one relevant item: Recall@10 = HR@10), its
relevance, diversity and novelty; overall: catalogue coverage (distinct
recommended items / catalogue size).

Baselines: the evolutionary ones are methods of the same engine and graph
(:data:`agenticrec.graphs.dualagent.METHODS`: single-population NSGA-II with
CDP, exploitation-only, exploration-only, fixed alpha = 0.7), all with the
same evaluation budget (``N`` offspring per generation for ``T_max``
generations) and the same initial populations; the list baselines are the
base top-k, greedy MMR re-ranking, and the greedy constraint repair of the
top-k. A single list's hypervolume is the box it dominates when it is
feasible, 0 otherwise.

Study (``python -m agenticrec.evals.dualagent_eval``): DualAgent-Rec against
the baselines on the first 100 evaluable users of each dataset, over several
seeds; per seed the mean hypervolume over users, then a paired t-test over
seeds and a Wilcoxon signed-rank test over the (user, seed) pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from agenticrec.graphs._dualagent_scoring import (
    greedy_mmr,
    list_baselines,
    score_lists,
)

__all__ = [
    "greedy_mmr",
    "list_baselines",
    "main",
    "paired_tests",
    "score_lists",
    "study",
]


# -------------------------------------------------------------------- study
def paired_tests(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """``a`` vs ``b`` per seed (rows) and user (columns): relative gain of the
    seed means, paired t-test over seeds, Wilcoxon over all pairs."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ma, mb = a.mean(axis=1), b.mean(axis=1)
    out: dict[str, Any] = {
        "mean_a": round(float(ma.mean()), 6),
        "mean_b": round(float(mb.mean()), 6),
        "gain": round(float(ma.mean() / mb.mean() - 1.0), 6) if mb.mean() else None,
        "per_seed_gain": [
            round(float(x / y - 1.0), 6) if y else None
            for x, y in zip(ma, mb, strict=True)
        ],
    }
    if len(ma) >= 2 and np.any(ma != mb):
        t = stats.ttest_rel(ma, mb)
        out["t_seeds"] = {"t": round(float(t.statistic), 4), "p": float(t.pvalue)}
    d = (a - b).ravel()
    if np.any(d != 0):
        w = stats.wilcoxon(a.ravel(), b.ravel())
        out["wilcoxon_pairs"] = {"W": float(w.statistic), "p": float(w.pvalue)}
    return out


def study(
    data: str,
    *,
    n_users: int = 100,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    methods: tuple[str, ...] = ("dualagent", "nsga2", "exploit", "explore", "fixed"),
    pop_size: int = 200,
    generations: int = 100,
    k: int = 10,
    n_candidates: int = 500,
    log=print,
) -> dict[str, Any]:
    """Every method on the same users and seeds; per-user hypervolume
    matrices, summaries, and paired tests of ``dualagent`` against each."""
    from agenticrec.graphs.dualagent import DualAgentContext
    from agenticrec.runner import run

    hv: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    summaries: dict[str, list[dict]] = {m: [] for m in methods}
    lists: dict[str, list[dict]] = {}
    seconds: dict[str, float] = {m: 0.0 for m in methods}
    for seed in seeds:
        for m in methods:
            ctx = DualAgentContext(
                data=data,
                method=m,
                seed=seed,
                users=n_users,
                pop_size=pop_size,
                generations=generations,
                k=k,
                n_candidates=n_candidates,
                baselines=(seed == seeds[0] and m == methods[0]),
                details=True,
            )
            t0 = time.perf_counter()
            rep = run("dualagent", ctx)
            seconds[m] += time.perf_counter() - t0
            res = rep["result"]
            hv[m].append(np.array([r["hypervolume"] for r in res["users"]]))
            summaries[m].append(res["summary"])
            if not lists:
                lists = {k: v for k, v in rep["metrics"].items() if k != m}
            log(
                f"{data} seed {seed} {m:9s} HV {res['summary']['hypervolume']:.4f} "
                f"feasible {res['summary']['feasible']:.3f} "
                f"NDCG {res['summary']['NDCG@10']:.4f} "
                f"({time.perf_counter() - t0:.1f}s)"
            )
    mats = {m: np.stack(v) for m, v in hv.items()}
    out: dict[str, Any] = {
        "data": data,
        "users": n_users,
        "seeds": list(seeds),
        "summary": {m: _mean_summary(s) for m, s in summaries.items()},
        "list_baselines": lists,
        "seconds": {m: round(s, 1) for m, s in seconds.items()},
    }
    if "dualagent" in mats:
        out["vs"] = {
            m: paired_tests(mats["dualagent"], mats[m])
            for m in methods
            if m != "dualagent"
        }
    return out


def _mean_summary(rows: list[dict]) -> dict[str, Any]:
    keys = [
        k for k, v in rows[0].items() if isinstance(v, int | float) and v is not None
    ]
    return {
        k: round(float(np.mean([r[k] for r in rows if r[k] is not None])), 6)
        for k in keys
    }


def _table(res: dict[str, Any]) -> str:
    cols = [
        "hypervolume",
        "feasible",
        "feasible_if_satisfiable",
        "NDCG@10",
        "Recall@10",
        "relevance",
        "diversity",
        "novelty",
        "coverage",
    ]
    lines = [
        f"### {res['data']} ({res['users']} users, seeds {res['seeds']})",
        "",
        "| method | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    rows = dict(res["summary"])
    rows.update(res.get("list_baselines", {}))
    for name, s in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(s.get(c)) for c in cols) + " |")
    if "vs" in res:
        head = (
            "dualagent vs",
            "mean HV dualagent",
            "mean HV other",
            "gain",
            "paired t (seeds) p",
            "Wilcoxon (user x seed) p",
        )
        lines += ["", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for m, t in res["vs"].items():
            cells = (
                m,
                f"{t['mean_a']:.4f}",
                f"{t['mean_b']:.4f}",
                f"{100 * (t['gain'] or 0):+.2f}%",
                _fmt(t.get("t_seeds", {}).get("p")),
                _fmt(t.get("wilcoxon_pairs", {}).get("p")),
            )
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if (abs(v) < 1e-3 and v != 0) else f"{v:.4f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", help="Dataset(s); default: both.")
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--pop", type=int, default=200)
    ap.add_argument("--gens", type=int, default=100)
    ap.add_argument("--methods", default="dualagent,nsga2,exploit,explore,fixed")
    ap.add_argument("--json", type=str, default=None, help="Write results here.")
    a = ap.parse_args(argv)
    datas = a.data or ["ml-latest-small", "amazon18-scientific-unisrec"]
    results = []
    for d in datas:
        res = study(
            d,
            n_users=a.users,
            seeds=tuple(range(a.seeds)),
            methods=tuple(a.methods.split(",")),
            pop_size=a.pop,
            generations=a.gens,
            log=lambda s: print(s, file=sys.stderr, flush=True),
        )
        results.append(res)
        print(_table(res), flush=True)
        print(flush=True)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
