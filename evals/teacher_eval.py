"""Teacher vs baselines on both datasets and all protocols (rule policy).

    python evals/teacher_eval.py [--users 0] [--amazon-users 1000]

Prints one Markdown table: HR@1/3/5/10, NDCG@10, MRR per method.
"""

from __future__ import annotations

import argparse
import platform
import time

from agenticrec.graphs import teacher
from agenticrec.runner import run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--users", type=int, default=0, help="ml-latest-small users (0: all)"
    )
    ap.add_argument("--amazon-users", type=int, default=1000)
    args = ap.parse_args()
    cols = ("HR@1", "HR@3", "HR@5", "HR@10", "NDCG@10", "MRR")
    print(
        f"# teacher_eval, rule policy, {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print("| data | protocol | users | method | " + " | ".join(cols) + " | users/s |")
    print("|---|---|---|---|" + "---|" * (len(cols) + 1))
    for data, n in (
        ("ml-latest-small", args.users),
        ("amazon18-scientific-unisrec", args.amazon_users),
    ):
        for protocol in ("sampled:19", "sampled:99", "full"):
            ctx = teacher.TeacherContext(data=data, protocol=protocol, users=n)
            r = run("teacher", ctx)
            for method in ("teacher", "itemknn", "popularity", "random"):
                m = r["metrics"][method]
                speed = r["timings"]["users_per_s"] if method == "teacher" else ""
                print(
                    f"| {data} | {protocol} | {r['users']} | {method} | "
                    + " | ".join(f"{m[c]:.4f}" for c in cols)
                    + f" | {speed} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
