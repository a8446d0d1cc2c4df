"""The teacher (rule policy, fitted on validation) against honest baselines,
its ablations, and its throughput.

    agenticrec eval teacher_eval
        [--data ml-latest-small:0,amazon18-scientific-unisrec:1000,ml-100k:0]
        [--protocols full,sampled:99] [--no-ablations] [--no-baselines]

For each dataset (``name:users``, 0 = all users) and protocol it prints:

1. the teacher's run: NDCG/HR/MRR, users/s (steady state: a first pass over
   64 users compiles), the ``full`` shortlist's recall, and what the fit
   chose on validation;
2. the honest baselines of :mod:`agenticrec.evals.baselines` (popularity over
   the catalogue, ItemKNN co-occurrence and cosine, EASE^R, ALS; each tuned on
   validation) on the same users, with the teacher's ratio to EASE^R and a
   paired Wilcoxon test (users better/worse);
3. ablations: the teacher with each agent removed in turn (``ablate``),
   paired against the whole teacher.

Every weight and hyperparameter comes from the validation split; test
chooses nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import numpy as np

from agenticrec.evals.baselines import run_baselines
from agenticrec.evals.baselines_eval import HEADER, baseline_table, paired, user_ndcg
from agenticrec.graphs import teacher
from agenticrec.graphspec import get_graph
from agenticrec.runner import run

DATA = "ml-latest-small:0,amazon18-scientific-unisrec:1000,ml-100k:0"
ABLATIONS = ("planner", "analyst", "ranker", "reflector")


def capturing_spec(store: dict, graph: str = "teacher"):
    """``graph``'s spec whose report also keeps per-user ranks in ``store``
    (``(users, ranks)``, sorted by user) for the paired tests."""
    spec = get_graph(graph)

    def report(res):
        results = sorted(res.state.get("results", []), key=lambda r: r["user"])
        store["ranks"] = (
            np.array([r["user"] for r in results], np.int64),
            np.array([r["rank"] for r in results], np.int64),
        )
        return spec.report(res)

    return dataclasses.replace(spec, report=report)


def _teacher(data: str, protocol: str, users: int, ablate: str = "none"):
    store: dict = {}
    ctx = teacher.TeacherContext(
        data=data, protocol=protocol, users=users, ablate=ablate, concurrency=4
    )
    r = run(capturing_spec(store), ctx)
    return r, store["ranks"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=DATA, help="comma-separated name:users")
    ap.add_argument("--protocols", default="full,sampled:99")
    ap.add_argument("--no-ablations", action="store_true")
    ap.add_argument("--no-baselines", action="store_true")
    args = ap.parse_args(argv)
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    datasets = []
    for item in args.data.split(","):
        name, _, n = item.partition(":")
        datasets.append((name, int(n or 0)))
    print(
        f"# teacher_eval, rule policy fitted on validation, {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    cols = ("HR@1", "HR@10", "NDCG@10", "MRR")
    runs: dict[tuple[str, str], tuple] = {}
    print("\n## teacher runs (report baselines; full: whole catalogue)")
    print(
        "| data | protocol | users | method | "
        + " | ".join(cols)
        + " | users/s | shortlist recall |"
    )
    print("|---|---|---|---|" + "---|" * (len(cols) + 2))
    for data, n in datasets:
        for protocol in protocols:
            _teacher(data, protocol, 64)  # compiles; fits on validation once
            r, ranks = _teacher(data, protocol, n)
            runs[data, protocol] = (r, ranks)
            for method, m in r["metrics"].items():
                speed = r["timings"]["users_per_s"] if method == "teacher" else ""
                rec = r.get("recall") if method == "teacher" else None
                print(
                    f"| {data} | {protocol} | {r['users']} | {method} | "
                    + " | ".join(f"{m[c]:.4f}" for c in cols)
                    + f" | {speed} | {'' if rec is None else f'{rec:.3f}'} |",
                    flush=True,
                )
            fit = r["fit"]
            print(
                f"|  |  |  | fit: {fit['users']} validation users, "
                f"{fit['params']}, best single {fit['best_single']}, "
                f"weights {fit['weights']}, reserve {fit['reserve']} "
                f"(tau {fit['tau']}), validation NDCG@10 {fit['valid']} |"
                + " |"
                * (len(cols) + 1),
                flush=True,
            )
    if not args.no_baselines:
        print("\n## honest baselines (tuned on validation), same users")
        print(HEADER)
        verdict = []
        for data, n in datasets:
            res = run_baselines(data, protocols, users=n)
            mine = {p: runs[data, p][1] for p in protocols}
            print("\n".join(baseline_table(data, res, mine)), flush=True)
            for p in protocols:
                t = float(np.mean(user_ndcg(mine[p][1])))
                e = res["ease"][p]
                cmp = paired(mine[p][1], e["ranks"])
                verdict.append(
                    f"| {data} | {p} | {t:.4f} | {e['NDCG@10']:.4f} | "
                    f"{t / max(e['NDCG@10'], 1e-12):.3f}x | {cmp['p']:.2g} | "
                    f"{cmp['better']} / {cmp['worse']} |"
                )
        print("\n## teacher vs EASE^R (targets: >= 1.00x everywhere, >= 1.05x on two)")
        print(
            "| data | protocol | teacher | EASE^R | ratio | Wilcoxon p | "
            "better / worse |"
        )
        print("|---|---|---|---|---|---|---|")
        print("\n".join(verdict), flush=True)
    if not args.no_ablations:
        print("\n## ablations: one agent removed (paired vs the whole teacher)")
        print(
            "| data | protocol | removed | NDCG@10 | vs teacher | Wilcoxon p | "
            "better / worse | users/s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for data, n in datasets:
            for protocol in protocols:
                base, (_, t_ranks) = runs[data, protocol]
                nd = base["metrics"]["teacher"]["NDCG@10"]
                print(
                    f"| {data} | {protocol} | none | {nd:.4f} | | | | "
                    f"{base['timings']['users_per_s']} |"
                )
                for ab in ABLATIONS:
                    r, (_, ranks) = _teacher(data, protocol, n, ab)
                    cmp = paired(ranks, t_ranks)
                    v = r["metrics"]["teacher"]["NDCG@10"]
                    print(
                        f"| {data} | {protocol} | {ab} | {v:.4f} | "
                        f"{(v - nd) / max(nd, 1e-12):+.1%} | {cmp['p']:.2g} | "
                        f"{cmp['better']} / {cmp['worse']} | "
                        f"{r['timings']['users_per_s']} |",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    main()
