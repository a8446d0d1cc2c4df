"""Skill reuse, measured: does the Skillhub of a first task speed up a second?

Per seed:

1. **Task 1**: tune ml-latest-small (NDCG@10 objective) for ``--rounds1``
   rounds with a fresh Skillhub holding the seed skills. Its *final gain* is
   the offline north-star gain of its incumbent (the best configuration the
   Critic confirmed on both offline halves).
2. **Task 2**: tune ``--data2`` for ``--rounds2`` rounds under three
   Skillhubs. The default second task is the same product after its traffic
   changed: ml-latest-small with a new offline/online user partition
   (``--split2 1``) and a new Actor seed; ``--data2`` takes another dataset
   (a name such as ``ml-100k`` found in the data search folders, or a path).

   * ``task1-hub``: a copy of task 1's Skillhub (seeds, their recorded
     outcomes, the skills distilled from task 1 and task 1's offline
     estimates, which warm-start task 2's sampler as priors);
   * ``seeds-only``: a fresh hub with the seed skills;
   * ``empty``: no skills at all.

Reported: for each condition, the rounds task 2 needs until its incumbent's
offline gain reaches task 1's final gain (``None``: not within
``--rounds2``), the same for half of it, the final gains, and the A/B results.
Every condition of a seed shares task 2's user partition and the Actor's
seed, so they differ only in the skills retrieved.

``--tasks2 ml-latest-small:1,ml-100k:0`` runs several second tasks on each
seed's task 1 (one task 1 per seed, one table per second task).

Run: ``agenticrec eval tune_skill_reuse [--seeds 5]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from agenticrec.graphs import tune
from agenticrec.runner import run

CONDITIONS = ("task1-hub", "seeds-only", "empty")


def rounds_to(history: list[dict[str, Any]], target: float) -> int | None:
    """Rounds used until the incumbent's offline gain reaches ``target``."""
    for h in history:
        if h["incumbent_gain"] >= target - 1e-12:
            return h["round"] + 1
    return None


def one_seed(seed: int, args, tmp: Path) -> dict[str, Any]:
    hub1 = tmp / f"hub1-{seed}"
    c1 = tune.TuneContext(
        data=args.data1,
        rounds=args.rounds1,
        candidates=args.candidates,
        seed=seed,
        split_seed=0,
        skillhub=str(hub1),
    )
    # the runner closes the Skillhub client before returning (then it is copied)
    r1 = run("tune", c1, thread_id=f"reuse1-{seed}")
    target = r1["incumbent"]["offline_gain"]
    out: dict[str, Any] = {
        "seed": seed,
        "task1": {
            "final_gain": target,
            "winner": r1["winner"],
            "skills_written": r1["skills"]["written"],
        },
        "task2": {},
    }
    for data2, split2 in args.tasks2:
        out["task2"][f"{data2}:{split2}"] = res = {}
        for cond in CONDITIONS:
            hub2 = tmp / f"hub2-{seed}-{data2}-{split2}-{cond}"
            if cond == "task1-hub":
                shutil.copytree(hub1, hub2)
            c2 = tune.TuneContext(
                data=data2,
                rounds=args.rounds2,
                candidates=args.candidates,
                seed=seed + 100,
                split_seed=split2,
                skillhub=str(hub2),
                seeds=cond != "empty",
                offline_events=args.offline_events2,
                max_users=args.max_users2,
            )
            r2 = run("tune", c2, thread_id=f"reuse2-{seed}-{cond}")
            hist = r2["history"]
            res[cond] = {
                "rounds_to_task1_gain": rounds_to(hist, target),
                "rounds_to_half_gain": rounds_to(hist, target / 2),
                "final_gain": r2["incumbent"]["offline_gain"],
                "curve": [h["incumbent_gain"] for h in hist],
                "retrieved": [s["id"] for s in r2["skills"]["retrieved"]],
                "priors": r2["skills"]["priors"]["n"],
                "narrowed": len(r2["skills"]["priors"].get("ranges", {})),
                "winner": r2["winner"],
                "ab_tests": r2["ab_tests"],
            }
    print(json.dumps(out, default=str), file=sys.stderr)
    return out


def summarize(rows: list[dict[str, Any]], rounds2: int) -> str:
    """One table pair per second task, then task 1's gains."""
    parts = [
        f"### task 2 = {task}\n\n"
        + summarize_task([{**r, "task2": r["task2"][task]} for r in rows], rounds2)
        for task in rows[0]["task2"]
    ]
    g = [r["task1"]["final_gain"] for r in rows]
    parts.append(
        f"task 1 final offline gain: mean {np.mean(g):+.1%} "
        f"({', '.join(f'{x:+.1%}' for x in g)})"
    )
    return "\n\n".join(parts)


def summarize_task(rows: list[dict[str, Any]], rounds2: int) -> str:
    def med(vals):
        v = [rounds2 + 1 if x is None else x for x in vals]
        return f"{np.mean(v):.1f}"

    lines = [
        "| task-2 Skillhub | rounds to task-1 gain (mean; not reached = "
        f"{rounds2 + 1}) | reached | rounds to half of it | final offline gain | "
        "A/B winners | sampler priors | narrowed knobs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for cond in CONDITIONS:
        t = [r["task2"][cond] for r in rows]
        lines.append(
            f"| {cond} | {med([x['rounds_to_task1_gain'] for x in t])} | "
            f"{sum(x['rounds_to_task1_gain'] is not None for x in t)}/{len(t)} | "
            f"{med([x['rounds_to_half_gain'] for x in t])} | "
            f"{np.mean([x['final_gain'] for x in t]):+.1%} | "
            f"{sum(x['winner'] is not None for x in t)}/{len(t)} | "
            f"{np.mean([x.get('priors', 0) for x in t]):.0f} | "
            f"{np.mean([x.get('narrowed', 0) for x in t]):.1f} |"
        )
    lines += [
        "",
        "| paired over seeds | measure | seeds | mean (a - b) | paired t p | "
        "Wilcoxon p |",
        "|---|---|---|---|---|---|",
    ]
    for a, b in (("task1-hub", "empty"), ("task1-hub", "seeds-only")):
        for key in ("rounds_to_task1_gain", "rounds_to_half_gain", "final_gain"):
            x, y = (
                np.array([_val(r["task2"][c][key], rounds2) for r in rows], float)
                for c in (a, b)
            )
            t_p, w_p = _paired_p(x, y)
            lines.append(
                f"| {a} vs {b} | {key} | {len(x)} | {np.mean(x - y):+.3f} | "
                f"{t_p:.3g} | {w_p:.3g} |"
            )
    return "\n".join(lines)


def _val(x: float | None, rounds2: int) -> float:
    """Rounds not reached count as ``rounds2 + 1`` (a lower bound)."""
    return float(rounds2 + 1) if x is None else float(x)


def _paired_p(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Paired t and Wilcoxon signed-rank p-values (1.0 when every pair ties)."""
    from scipy import stats

    d = x - y
    if len(d) < 2 or not np.any(d != 0):
        return 1.0, 1.0
    t_p = float(stats.ttest_rel(x, y).pvalue) if d.std() > 0 else 0.0
    return t_p, float(stats.wilcoxon(x, y).pvalue)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data1", default="ml-latest-small")
    ap.add_argument("--data2", default="ml-latest-small")
    ap.add_argument("--split2", type=int, default=1)
    ap.add_argument(
        "--tasks2",
        default=None,
        help="second tasks as DATA:SPLIT,... sharing each seed's task 1 "
        "(default: --data2:--split2)",
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--rounds1", type=int, default=10)
    ap.add_argument("--rounds2", type=int, default=6)
    ap.add_argument("--candidates", type=int, default=6)
    ap.add_argument("--offline-events2", type=int, default=3)
    ap.add_argument("--max-users2", type=int, default=0)
    ap.add_argument("--out", default="runs/tune_skill_reuse.json")
    args = ap.parse_args(argv)
    try:
        args.tasks2 = [
            (d, int(sp))
            for d, _, sp in (
                t.rpartition(":") for t in (args.tasks2 or "").split(",") if t
            )
        ] or [(args.data2, args.split2)]
    except ValueError:
        ap.error(f"--tasks2 {args.tasks2!r}: expected DATA:SPLIT,... (integer SPLIT)")
    with tempfile.TemporaryDirectory(prefix="agenticrec-reuse-") as tmp:
        rows = [one_seed(s, args, Path(tmp)) for s in range(args.seeds)]
    table = summarize(rows, args.rounds2)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {"args": vars(args), "rows": rows, "table": table}, indent=1, default=str
        )
    )
    return {"rows": rows, "table": table}


if __name__ == "__main__":
    main()
