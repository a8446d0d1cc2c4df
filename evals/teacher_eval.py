"""Teacher vs baselines on both datasets and all protocols (rule policy).

    agenticrec eval teacher_eval [--users 0] [--amazon-users 1000]
        [--honest full,sampled:99] [--no-honest]

Prints one Markdown table: HR@1/3/5/10, NDCG@10, MRR per method. Then, for
the ``--honest`` protocols, a second table on the same users: the teacher
beside popularity over the whole catalogue, ItemKNN (co-occurrence, cosine),
EASE^R and ALS, each tuned on the validation split, with a paired Wilcoxon
test of teacher vs EASE^R (:mod:`agenticrec.evals.baselines_eval`). Under
``full`` the first table's baselines rank only the teacher's shortlist; the
second table's rank the whole catalogue.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time

import numpy as np

from agenticrec.evals.baselines import run_baselines
from agenticrec.evals.baselines_eval import HEADER, baseline_table
from agenticrec.graphs import teacher
from agenticrec.graphspec import get_graph
from agenticrec.runner import run


def _capturing_spec(store: dict):
    """The teacher's spec whose report also keeps per-user ranks in ``store``
    (``(users, ranks)``, sorted by user) for the paired tests."""
    spec = get_graph("teacher")

    def report(res):
        results = sorted(res.state.get("results", []), key=lambda r: r["user"])
        store["ranks"] = (
            np.array([r["user"] for r in results], np.int64),
            np.array([r["rank"] for r in results], np.int64),
        )
        return spec.report(res)

    return dataclasses.replace(spec, report=report)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--users", type=int, default=0, help="ml-latest-small users (0: all)"
    )
    ap.add_argument("--amazon-users", type=int, default=1000)
    ap.add_argument(
        "--honest",
        default="full,sampled:99",
        help="protocols of the honest-baselines table",
    )
    ap.add_argument("--no-honest", action="store_true", help="skip that table")
    args = ap.parse_args(argv)
    honest = [] if args.no_honest else [p for p in args.honest.split(",") if p]
    cols = ("HR@1", "HR@3", "HR@5", "HR@10", "NDCG@10", "MRR")
    print(
        f"# teacher_eval, rule policy, {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print("| data | protocol | users | method | " + " | ".join(cols) + " | users/s |")
    print("|---|---|---|---|" + "---|" * (len(cols) + 1))
    datasets = (
        ("ml-latest-small", args.users),
        ("amazon18-scientific-unisrec", args.amazon_users),
    )
    per_user: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for data, n in datasets:
        for protocol in ("sampled:19", "sampled:99", "full"):
            store: dict = {}
            ctx = teacher.TeacherContext(data=data, protocol=protocol, users=n)
            r = run(_capturing_spec(store), ctx)
            if "ranks" in store:
                per_user.setdefault(data, {})[protocol] = store["ranks"]
            for method in ("teacher", "itemknn", "popularity", "random"):
                m = r["metrics"][method]
                speed = r["timings"]["users_per_s"] if method == "teacher" else ""
                print(
                    f"| {data} | {protocol} | {r['users']} | {method} | "
                    + " | ".join(f"{m[c]:.4f}" for c in cols)
                    + f" | {speed} |",
                    flush=True,
                )
    if honest:
        print("\n# honest baselines (whole catalogue under full), same users")
        print(HEADER)
        for data, n in datasets:
            res = run_baselines(data, honest, users=n)
            teacher_ranks = per_user.get(data, {})
            print("\n".join(baseline_table(data, res, teacher_ranks)), flush=True)
    return 0


if __name__ == "__main__":
    main()
