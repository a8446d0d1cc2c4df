"""DualAgent-Rec's experiment grid: constraint strictness x population size
x dataset, at equal evaluation budget, paired over users and seeds.

    python -m agenticrec.evals.dualagent_grid [--users 20] [--seeds 5]
        [--budget 20000] [--pops 50,100,200] [--data NAME ...]
        [--level NAME ...] [--json FILE]
    python -m agenticrec.evals.dualagent_grid --merge A.json B.json [--json C]

Per cell (dataset, strictness level, population ``N`` with ``budget / N``
generations): the share of uniformly random top-k lists that are strictly
feasible (how narrow the feasible region is), and for every method of the
graph (dualagent, fixed alpha = 0.7, exploit-only, explore-only,
single-population NSGA-II) the exact hypervolume, the feasibility of the
served list, and the served list's NDCG@10, Recall@10, diversity, novelty
and coverage, next to the list baselines (base top-k, MMR, greedy repair).
Paired tests (:func:`~agenticrec.evals.dualagent_eval.paired_tests`: t over
seed means, Wilcoxon over (user, seed) pairs) compare dualagent with each
method; the served list is compared with the greedy repair per user.

A cell is *narrow* when the mean random feasible share is below
:data:`NARROW_SHARE` (the paper's Mechanism 1: the dual population should
pay off when the feasible region is small). Every run goes through the one
runner (``agenticrec.runner.run("dualagent", ctx)``); constraint levels are
written as JSON constraint files, exactly what a user would pass with
``--constraints``.
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

__all__ = ["LEVELS", "NARROW_SHARE", "cell", "grid", "main", "merge"]

NARROW_SHARE = 0.05
"""Mean share of random feasible lists below which a cell counts as narrow."""

METHODS = ("dualagent", "fixed", "exploit", "explore", "nsga2")


def _ml(theta: float, tail: float, recent: float) -> list[dict]:
    return [
        {"kind": "max_gini", "attribute": "category", "threshold": theta},
        {"kind": "min_share", "attribute": "long_tail", "threshold": tail},
        {"kind": "min_share", "attribute": "recent", "threshold": recent},
    ]


def _amazon(path: float, brand: float, tail: float) -> list[dict]:
    return [
        {"kind": "min_distinct_share", "attribute": "category_path", "threshold": path},
        {"kind": "min_distinct_share", "attribute": "brand", "threshold": brand},
        {"kind": "min_share", "attribute": "long_tail", "threshold": tail},
    ]


LEVELS: dict[str, dict[str, list[dict]]] = {
    "ml-latest-small": {
        "gini0.7": _ml(0.7, 0.2, 0.1),
        "gini0.6": _ml(0.6, 0.2, 0.1),
        "gini0.5": _ml(0.5, 0.2, 0.1),
        "gini0.5-tail0.3-recent0.2": _ml(0.5, 0.3, 0.2),
        "gini0.5-tail0.3-recent0.5": _ml(0.5, 0.3, 0.5),
    },
    "amazon18-scientific-unisrec": {
        "path0.5-brand0.5-tail0.2": _amazon(0.5, 0.5, 0.2),
        "path0.8-brand0.8-tail0.4": _amazon(0.8, 0.8, 0.4),
        "path0.9-brand0.9-tail0.8": _amazon(0.9, 0.9, 0.8),
    },
}
"""Strictness levels per dataset, loose to strict. ml-latest-small: the
paper's genre Gini theta in {0.7, 0.6, 0.5} with the default long-tail and
recent shares, then theta 0.5 with tighter shares, the last one (half the
list recent) added after :mod:`agenticrec.evals.dualagent_headroom` showed
that the other ml-latest-small levels cut at most 2.3% of the Pareto front
(this one 15%: the case the paper's Mechanism 1 is about); Amazon
Scientific (769 category paths: a Gini is impossible, see docs/dualagent.md): distinct
category paths and brands, and long-tail share, from the defaults up."""


def cell(
    data: str,
    constraints: Path,
    *,
    pop_size: int,
    generations: int,
    users: int,
    seeds: tuple[int, ...],
    methods: tuple[str, ...] = METHODS,
    overrides: dict[str, Any] | None = None,
    log=print,
) -> dict[str, Any]:
    """Every method on the same users, candidates and seeds of one cell
    (``overrides``: further graph settings, e.g. ``n_candidates``)."""
    from agenticrec.graphs import dualagent
    from agenticrec.graphs._dualagent_scoring import (
        random_feasible_share,
        score_lists,
    )
    from agenticrec.runner import run

    def ctx(method: str, seed: int) -> dualagent.DualAgentContext:
        return dualagent.DualAgentContext(
            data=data,
            method=method,
            seed=seed,
            users=users,
            pop_size=pop_size,
            generations=generations,
            constraints=str(constraints),
            baselines=False,
            details=True,
            **(overrides or {}),
        )

    per: dict[str, dict[str, list[np.ndarray]]] = {}
    served: dict[str, list[dict]] = {m: [] for m in methods}
    greedy: dict[str, list[np.ndarray]] = {}
    share = None
    t0 = time.perf_counter()
    for seed in seeds:
        for m in methods:
            rep = run("dualagent", ctx(m, seed))
            rows = rep["result"]["users"]
            d = per.setdefault(m, {})
            for key in ("hypervolume", "ndcg@10", "diversity", "novelty", "relevance"):
                d.setdefault(key, []).append(np.array([r[key] for r in rows], float))
            d.setdefault("feasible", []).append(
                np.array([r["feasible"] for r in rows], float)
            )
            served[m].append(rep["result"]["summary"])
        # the greedy repair of this seed's candidates, per user (paired)
        c = ctx("dualagent", seed)
        w = dualagent.workspace(c, [int(r["user"]) for r in rows])
        g = score_lists(w.batch, w.batch.certificate)["users"]
        for key in ("ndcg@10", "diversity", "novelty", "relevance"):
            greedy.setdefault(key, []).append(np.array([r[key] for r in g], float))
        if share is None:
            s = random_feasible_share(w.batch)
            sat = [x == "yes" for x in w.batch.satisfiable]
            share = {
                "mean": round(float(s.mean()), 6),
                "median": round(float(np.median(s)), 6),
                "min": round(float(s.min()), 6),
                "satisfiable": {
                    x: w.batch.satisfiable.count(x) for x in ("yes", "no", "unknown")
                },
                "unsatisfiable": [
                    {"user": int(w.batch.users[i]), "binding": w.batch.binding[i]}
                    for i, ok in enumerate(sat)
                    if not ok
                ],
            }
            sat_mask = np.array(sat)
    mats = {m: {k: np.stack(v) for k, v in d.items()} for m, d in per.items()}
    gm = {k: np.stack(v) for k, v in greedy.items()}
    out: dict[str, Any] = {
        "random_feasible_share": share,
        "narrow": share["mean"] < NARROW_SHARE,
        "seconds": round(time.perf_counter() - t0, 1),
        "methods": {},
    }
    for m in methods:
        x = mats[m]
        summ = {
            k: round(float(np.mean([s[k] for s in served[m]])), 6)
            for k in (
                "hypervolume",
                "feasible",
                "NDCG@10",
                "Recall@10",
                "relevance",
                "diversity",
                "novelty",
                "coverage",
                "same_as_greedy_repair",
                "same_as_mmr",
                "beyond_greedy_repair",
                "relevance_loss_vs_greedy",
            )
        }
        summ["feasible_if_satisfiable"] = round(
            float(x["feasible"][:, sat_mask].mean()) if sat_mask.any() else 1.0, 6
        )
        # served list vs greedy repair, per (seed, user): feasible and more
        # diverse or more novel; and the NDCG@10 difference's paired test
        better = (x["feasible"] > 0) & (
            (x["diversity"] > gm["diversity"] + 1e-9)
            | (x["novelty"] > gm["novelty"] + 1e-9)
        )
        summ["better_than_greedy_users"] = round(float(better.mean()), 6)
        summ["ndcg_vs_greedy"] = _paired_diff(x["ndcg@10"], gm["ndcg@10"])
        out["methods"][m] = summ
    if "dualagent" in mats:
        out["vs"] = {
            m: paired_tests(mats["dualagent"]["hypervolume"], mats[m]["hypervolume"])
            for m in methods
            if m != "dualagent"
        }
    if "fixed" in mats and "dualagent" in mats:
        out["hv_per_seed"] = {
            m: mats[m]["hypervolume"].mean(axis=1).round(6).tolist() for m in methods
        }
    log(
        f"{data} {constraints.stem} N={pop_size} T={generations}: share "
        f"{share['mean']:.4f}; HV "
        + " ".join(f"{m} {out['methods'][m]['hypervolume']:.4f}" for m in methods)
        + f" ({out['seconds']:.0f}s)"
    )
    return out


def _paired_diff(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Mean of ``a - b`` over ``[seeds, users]`` and two Wilcoxon tests:
    over (seed, user) pairs, and over users of their seed means. A user's
    held-out item is the same in every seed, so only the second treats
    independent units as independent; the first is kept for comparison
    with earlier grids."""
    from scipy import stats

    d = (a - b).ravel()
    out: dict[str, Any] = {"mean_diff": round(float(d.mean()), 6)}
    if np.any(d != 0):
        w = stats.wilcoxon(a.ravel(), b.ravel())
        out["wilcoxon_p"] = float(w.pvalue)
    du = (a - b).mean(axis=0)
    if np.any(du != 0):
        out["wilcoxon_users_p"] = float(stats.wilcoxon(du).pvalue)
    return out


def grid(
    datas: list[str],
    *,
    pops: tuple[int, ...] = (50, 100, 200),
    budget: int = 20_000,
    users: int = 20,
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
    levels: dict[str, dict[str, list[dict]]] | None = None,
    log=print,
    on_cell=None,
) -> dict[str, Any]:
    """All cells; ``budget`` offspring per user split as ``N x budget / N``;
    ``on_cell(result_so_far)`` after each cell (a long grid keeps what it
    measured when it is stopped)."""
    levels = LEVELS if levels is None else levels
    cells = []
    with tempfile.TemporaryDirectory() as tmp:
        for data in datas:
            for name, spec in levels[data].items():
                path = Path(tmp) / f"{name}.json"
                path.write_text(json.dumps({"constraints": spec}), encoding="utf-8")
                for n in pops:
                    res = cell(
                        data,
                        path,
                        pop_size=n,
                        generations=budget // n,
                        users=users,
                        seeds=seeds,
                        log=log,
                    )
                    cells.append(
                        {
                            "data": data,
                            "level": name,
                            "pop_size": n,
                            "generations": budget // n,
                            **res,
                        }
                    )
                    if on_cell is not None:
                        on_cell(merge([{"cells": cells}]))
    return merge([{"cells": cells}])


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several grids' cells (e.g. one process per dataset),
    with the coordinator comparison over all of them."""
    cells = [c for r in results for c in r["cells"]]
    return {"cells": cells, "coordinator_vs_fixed": _coordinator(cells)}


def _coordinator(cells: list[dict]) -> dict[str, Any] | None:
    """Rule coordinator vs fixed alpha = 0.7 over the grid: mean HV, and a
    paired t-test / Wilcoxon over (cell, seed) mean hypervolumes."""
    from scipy import stats

    a = [x for c in cells for x in c.get("hv_per_seed", {}).get("dualagent", [])]
    b = [x for c in cells for x in c.get("hv_per_seed", {}).get("fixed", [])]
    if not a:
        return None
    out: dict[str, Any] = {
        "pairs": len(a),
        "mean_dualagent": round(float(np.mean(a)), 6),
        "mean_fixed": round(float(np.mean(b)), 6),
    }
    if np.any(np.array(a) != np.array(b)):
        out["t_p"] = float(stats.ttest_rel(a, b).pvalue)
        out["wilcoxon_p"] = float(stats.wilcoxon(a, b).pvalue)
    return out


def table(res: dict[str, Any]) -> str:
    """Markdown: one row per cell, then the served-list rows."""
    head = (
        "| data | level | N x T | random feasible | narrow | HV dual | fixed | "
        "exploit | explore | NSGA-II | dual vs NSGA-II | t p | Wilcoxon p | "
        "served feasible (sat.): dual / NSGA-II / explore |"
    )
    lines = [head, "|---" * 14 + "|"]
    for c in res["cells"]:
        m, vs = c["methods"], c["vs"]["nsga2"]
        lines.append(
            f"| {c['data']} | {c['level']} | {c['pop_size']} x {c['generations']}"
            f" | {c['random_feasible_share']['mean']:.4f} | "
            f"{'yes' if c['narrow'] else 'no'} | "
            + " | ".join(
                f"{m[k]['hypervolume']:.4f}"
                for k in ("dualagent", "fixed", "exploit", "explore", "nsga2")
            )
            + f" | {100 * vs['gain']:+.2f}% | {_p(vs, 't_seeds')} | "
            f"{_p(vs, 'wilcoxon_pairs')} | "
            + " / ".join(
                f"{m[k]['feasible_if_satisfiable']:.3f}" if k in m else "-"
                for k in ("dualagent", "nsga2", "explore")
            )
            + " |"
        )
    lines += [
        "",
        "| data | level | N | method | NDCG@10 | Recall@10 | diversity | novelty "
        "| coverage | same as greedy | better than greedy (users) | NDCG vs greedy "
        "(diff, p pairs, p users) |",
        "|---" * 12 + "|",
    ]
    for c in res["cells"]:
        for name in ("dualagent", "nsga2"):
            s = c["methods"][name]
            nd = s["ndcg_vs_greedy"]
            lines.append(
                f"| {c['data']} | {c['level']} | {c['pop_size']} | {name} | "
                f"{s['NDCG@10']:.4f} | {s['Recall@10']:.4f} | {s['diversity']:.4f} | "
                f"{s['novelty']:.4f} | {s['coverage']:.4f} | "
                f"{s['same_as_greedy_repair']:.2f} | "
                f"{s['better_than_greedy_users']:.2f} | {nd['mean_diff']:+.4f}, "
                f"{_fmtp(nd.get('wilcoxon_p'))}, "
                f"{_fmtp(nd.get('wilcoxon_users_p'))} |"
            )
    co = res.get("coordinator_vs_fixed")
    if co:
        lines += [
            "",
            f"Rule coordinator vs fixed alpha 0.7 over {co['pairs']} (cell, seed) "
            f"pairs: mean HV {co['mean_dualagent']:.4f} vs {co['mean_fixed']:.4f}, "
            f"paired t p = {_fmtp(co.get('t_p'))}, Wilcoxon p = "
            f"{_fmtp(co.get('wilcoxon_p'))}.",
        ]
    return "\n".join(lines)


def _p(t: dict, key: str) -> str:
    return _fmtp(t.get(key, {}).get("p"))


def _fmtp(p) -> str:
    return "-" if p is None else f"{p:.2g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", action="append", choices=sorted(LEVELS))
    ap.add_argument("--level", action="append", help="Only these levels.")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=20_000)
    ap.add_argument("--pops", default="50,100,200")
    ap.add_argument(
        "--json", default=None, help="Write the results here (after every cell)."
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="Print one table from earlier --json files instead of running.",
    )
    a = ap.parse_args(argv)
    if a.merge:
        try:
            res = merge([json.loads(Path(f).read_text("utf-8")) for f in a.merge])
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"dualagent_grid: --merge: {e}", file=sys.stderr)
            return 2
        print(table(res), flush=True)
        if a.json:
            _write(a.json, res)
        return 0
    try:
        pops = tuple(int(x) for x in a.pops.split(","))
    except ValueError:
        ap.error(f"--pops {a.pops!r}: comma-separated integers")
    if a.users < 1 or a.seeds < 2 or any(n < 8 or a.budget // n < 10 for n in pops):
        ap.error("need --users >= 1, --seeds >= 2, pops >= 8, budget / pop >= 10")
    datas = a.data or list(LEVELS)
    levels = {
        d: {k: v for k, v in LEVELS[d].items() if not a.level or k in a.level}
        for d in datas
    }
    unknown = sorted(set(a.level or ()) - {k for d in datas for k in LEVELS[d]})
    if unknown:
        ap.error(f"--level {unknown}: not a level of {datas}")
    res = grid(
        datas,
        levels=levels,
        pops=pops,
        budget=a.budget,
        users=a.users,
        seeds=tuple(range(a.seeds)),
        log=lambda s: print(s, file=sys.stderr, flush=True),
        on_cell=(lambda r: _write(a.json, r)) if a.json else None,
    )
    print(table(res), flush=True)
    if a.json:
        _write(a.json, res)
    return 0


def _write(path: str, res: dict[str, Any]) -> None:
    from agenticrec._io import atomic_write_text

    atomic_write_text(Path(path), json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    raise SystemExit(main())
