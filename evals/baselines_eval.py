"""Honest baselines side by side, and the teacher paired against EASE^R.

    agenticrec eval baselines_eval [--data ml-latest-small,...]
        [--protocols full,sampled:99] [--users 0] [--methods ease,als,...]

Prints one Markdown table per dataset: NDCG@10 and HR@10 of popularity (whole
catalogue), ItemKNN (co-occurrence counts, the project's variant; cosine),
EASE^R and ALS under each protocol, each tuned on the validation split
(:mod:`agenticrec.evals.baselines`). ``teacher_eval`` passes the teacher's
per-user ranks, which adds the teacher's row and a paired Wilcoxon test of
teacher vs EASE^R on the same users.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

import numpy as np
from scipy import stats

from agenticrec.evals.baselines import METHODS, run_baselines

__all__ = ["baseline_table", "main", "paired", "user_ndcg"]


def user_ndcg(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    """``f64[q]`` per-user NDCG@k of 0-based ranks (one relevant item)."""
    ranks = np.asarray(ranks)
    inside = (ranks >= 0) & (ranks < k)
    return np.where(inside, 1.0 / np.log2(np.maximum(ranks, 0) + 2.0), 0.0)


def paired(a_ranks: np.ndarray, b_ranks: np.ndarray) -> dict[str, float | int]:
    """Paired comparison of per-user NDCG@10 of ``a`` vs ``b`` (same users).

    Returns ``{"p": two-sided Wilcoxon signed-rank p-value (zero differences
    dropped; NaN when all tie), "better": users a wins, "worse", "ties"}``.
    """
    a, b = user_ndcg(a_ranks), user_ndcg(b_ranks)
    if a.shape != b.shape:
        raise ValueError(f"paired needs the same users, got {a.shape} vs {b.shape}")
    d = a - b
    p = float(stats.wilcoxon(a, b).pvalue) if np.any(d != 0) else float("nan")
    return {
        "p": p,
        "better": int((d > 0).sum()),
        "worse": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
    }


def _params(p: Mapping) -> str:
    def show(v):
        return "all" if v is None else f"{v:g}"

    return ", ".join(f"{k}={show(v)}" for k, v in p.items())


def baseline_table(
    name: str,
    results: Mapping[str, Mapping[str, Mapping]],
    teacher: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[str]:
    """Markdown rows for one dataset.

    Args:
        results: :func:`~agenticrec.evals.baselines.run_baselines` output.
        teacher: protocol -> ``(users: int[q], ranks: int[q])`` of the teacher;
            compared with EASE^R on the users both scored.
    """
    rows = []
    protocols = list(next(iter(results.values())))
    for proto in protocols:
        base_users = next(iter(results.values()))[proto]["users"]
        if teacher and proto in teacher:
            t_users, t_ranks = (np.asarray(x) for x in teacher[proto])
            keep = np.isin(base_users, t_users)
            pos = {int(u): i for i, u in enumerate(t_users)}
            tr = t_ranks[[pos[int(u)] for u in base_users[keep]]]
            ease = results.get("ease", {}).get(proto)
            cmp = paired(tr, ease["ranks"][keep]) if ease else None
            note = (
                f"vs EASE^R: p={cmp['p']:.2g}, better {cmp['better']}, worse "
                f"{cmp['worse']}, ties {cmp['ties']}"
                if cmp
                else ""
            )
            rows.append(
                f"| {name} | {proto} | {int(keep.sum())} | teacher | "
                f"{np.mean(user_ndcg(tr)):.4f} | {np.mean((tr >= 0) & (tr < 10)):.4f}"
                f" | | {note} |"
            )
        else:
            keep = np.ones(len(base_users), bool)
        for method, per in results.items():
            r = per[proto]["ranks"][keep]
            v = per[proto]["valid_ndcg"]
            rows.append(
                f"| {name} | {proto} | {int(keep.sum())} | {method} | "
                f"{np.mean(user_ndcg(r)):.4f} | {np.mean((r >= 0) & (r < 10)):.4f} | "
                f"{'' if v is None else f'{v:.4f}'} | {_params(per[proto]['params'])} |"
            )
    return rows


HEADER = (
    "| data | protocol | users | method | NDCG@10 | HR@10 | valid NDCG@10 | "
    "chosen on validation / paired test |\n|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ml-latest-small", help="comma-separated")
    ap.add_argument("--protocols", default="full,sampled:99")
    ap.add_argument("--users", type=int, default=0, help="first N test users (0: all)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(HEADER, flush=True)
    for name in args.data.split(","):
        res = run_baselines(
            name,
            protocols,
            users=args.users,
            seed=args.seed,
            methods=methods,
            log=lambda s: print(s, file=sys.stderr, flush=True),
        )
        print("\n".join(baseline_table(name, res)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
