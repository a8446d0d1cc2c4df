"""Teacher throughput: users per second with the rule policy, LangGraph included.

Runs, in one process on the same users: the teacher graph without a
checkpointer, with a SQLite checkpointer (every node persisted), and the same
per-user work without LangGraph (policies + tools called directly), so the
graph overhead is visible as a ratio. Compilation (a first pass over all users,
one jit per history-length bucket) is reported apart from steady state.

    python evals/bench_teacher.py [--data ml-latest-small] [--protocol sampled:19]
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

from agenticrec.graphs import _teacher_roles as roles
from agenticrec.graphs import teacher
from agenticrec.policy import RulePolicy


def direct(ctx: teacher.TeacherContext, users: list[int]) -> None:
    """The same decisions and tool calls as the graph, as plain calls."""
    ws, pol = ctx.ws(), RulePolicy()
    for u in users:
        cands = [int(c) for c in ws.cands[ws.row(u)]]
        hist = ws.index.history(u)
        plan = pol.decide("teacher.planner", {"history_len": int(hist.size)}).value
        calls = pol.decide(
            "teacher.analyst",
            {
                "user": u,
                "pending": plan.analyses,
                "candidates": cands,
                "tools": sorted(ws.tools),
            },
        ).value.calls
        signals = {}
        for c in calls:
            res = ws.tools[c.tool].invoke(c.args)
            name = roles.SIGNAL_OF.get(res.get("signal", ""))
            if name:
                signals[name] = [v for _, v in res["scores"]]
        obs = {
            "k": ctx.k,
            "candidates": [
                {
                    "item": c,
                    "popularity": float(ws.pop[c]),
                    "signals": {n: v[j] for n, v in signals.items()},
                }
                for j, c in enumerate(cands)
            ],
        }
        pol.decide("teacher.ranker", obs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="ml-latest-small")
    ap.add_argument("--protocol", default="sampled:19")
    args = ap.parse_args()
    ctx = teacher.TeacherContext(data=args.data, protocol=args.protocol)
    t = time.perf_counter()
    ws = ctx.ws()
    setup = time.perf_counter() - t
    users = [int(u) for u in ws.users]
    t = time.perf_counter()
    teacher.run(ctx, users=users, thread_id="warm")
    warm = time.perf_counter() - t

    rows = []
    t = time.perf_counter()
    direct(ctx, users)
    rows.append(("tools + policies, no LangGraph", time.perf_counter() - t))
    r = teacher.run(ctx, users=users, thread_id="steady")
    rows.append(("teacher graph, no checkpointer", r["timings"]["graph_s"]))
    with tempfile.TemporaryDirectory() as d:
        conn = sqlite3.connect(str(Path(d) / "ck.sqlite"), check_same_thread=False)
        r2 = teacher.run(
            ctx, users=users, checkpointer=SqliteSaver(conn), thread_id="ck"
        )
        conn.close()
    rows.append(("teacher graph, SQLite checkpointer", r2["timings"]["graph_s"]))

    n = len(users)
    print(f"# bench_teacher: {args.data}, {args.protocol}, {n} users, rule policy")
    print(
        f"# machine: {platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    print(
        f"setup (load, split, graph build, candidates): {setup:.2f} s; "
        f"first pass incl. jit compiles: {warm:.2f} s ({n / warm:.1f} users/s)"
    )
    base = rows[0][1]
    print(f"| {'method':<36} | {'seconds':>8} | {'users/s':>8} | {'vs direct':>9} |")
    print(f"|{'-' * 38}|{'-' * 10}|{'-' * 10}|{'-' * 11}|")
    for name, sec in rows:
        print(f"| {name:<36} | {sec:8.2f} | {n / sec:8.1f} | {sec / base:8.2f}x |")
    print(
        json.dumps(
            {
                "teacher_ndcg10": r["metrics"]["teacher"]["NDCG@10"],
                "itemknn_ndcg10": r["metrics"]["itemknn"]["NDCG@10"],
            }
        )
    )


if __name__ == "__main__":
    main()
