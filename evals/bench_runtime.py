"""The runner's speed and size: checkpointing cost, checkpoint growth, and
how many users' LLM decisions are in flight at once.

One process, peers side by side (ratios are what to compare; absolute times
swing 2x on a shared machine):

1. Teacher, rule policy, every evaluable user, sampled:19: the same per-user
   work without LangGraph (policies + tools called directly), the runner
   without a checkpointer, and the runner with the SQLite checkpointer;
   users/s, checkpointed / unchecked ratio (target >= 0.8x and >= 50
   users/s), checkpoint file size (target <= 20 MB), peak RSS.
2. An OpenAI-compatible stub on 127.0.0.1 answering every call after 200 ms
   with a valid decision (:mod:`agenticrec.evals._llm_stub`): users/s at
   concurrency 1, 4, 16, 64 (target: 16 >= 10x concurrency 1).
3. The real local llama.cpp server (SmolLM2-135M, ``scripts/llm-local.sh
   install``) at concurrency 1 and 4, when it is installed.

    agenticrec eval bench_runtime [--data ml-latest-small] [--stub-users 16]
"""

from __future__ import annotations

import argparse
import platform
import resource
import sqlite3
import tempfile
import time
from pathlib import Path

from agenticrec.graphs import _teacher_roles as roles
from agenticrec.graphs.teacher import TeacherContext
from agenticrec.policy import RulePolicy
from agenticrec.runner import run


def direct(ctx: TeacherContext, users: list[int]) -> None:
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
            res = ws.tools[c.tool].invoke({**c.args, "user": u, "candidates": cands})
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


def _table(title: str, rows: list[tuple[str, float, int]], base: float) -> None:
    print(f"\n## {title}")
    print(f"| {'run':<44} | {'seconds':>8} | {'users/s':>8} | {'ratio':>7} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    for name, sec, n in rows:
        ups = n / sec
        print(f"| {name:<44} | {sec:8.2f} | {ups:8.1f} | {ups / base:6.2f}x |")


def rule_section(data: str) -> None:
    ctx = TeacherContext(data=data, users=0, concurrency=4)
    ws = ctx.ws()
    users = [int(u) for u in ws.users]
    n = len(users)
    t = time.perf_counter()
    run("teacher", ctx)  # first pass: jit compiles per history bucket
    warm = time.perf_counter() - t
    rows = []
    t = time.perf_counter()
    direct(ctx, users)
    rows.append(("tools + policies, no LangGraph", time.perf_counter() - t, n))
    r = run("teacher", ctx)
    rows.append(("runner, no checkpointer (concurrency 4)", r.timings["graph_s"], n))
    with tempfile.TemporaryDirectory() as d:
        ck = Path(d) / "ck.sqlite"
        r2 = run("teacher", ctx, checkpoint=ck)
        rows.append(
            ("runner, SQLite checkpointer (concurrency 4)", r2.timings["graph_s"], n)
        )
        r3 = run(
            "teacher",
            TeacherContext(data=data, users=0, concurrency=1),
            checkpoint=Path(d) / "ck1.sqlite",
        )
        rows.append(
            ("runner, SQLite checkpointer (concurrency 1)", r3.timings["graph_s"], n)
        )
        with sqlite3.connect(ck) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            n_ck = conn.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
            n_wr = conn.execute("SELECT COUNT(*) FROM writes").fetchone()[0]
        size = ck.stat().st_size
    print(
        f"# teacher, {data}, sampled:19, {n} users, rule policy; first pass "
        f"incl. compiles {warm:.2f} s"
    )
    base = n / rows[1][1]
    _table(
        "checkpointing (ratio: users/s over the runner without a checkpointer)",
        rows,
        base,
    )
    ratio = (n / rows[2][1]) / base
    print(
        f"\ncheckpointed / unchecked: {ratio:.2f}x (target >= 0.8x); "
        f"checkpointed users/s {n / rows[2][1]:.1f} (target >= 50)"
    )
    print(
        f"checkpoint file: {size / 1e6:.2f} MB ({n_ck} checkpoints, {n_wr} "
        f"pending writes) for {n} users (target <= 20 MB)"
    )
    assert r.metrics == r2.metrics == r3.metrics, "same seed, same report"


def _llm_rows(base_url: str, model: str, levels, users_of, timeout_s: float, **kw):
    rows = []
    for c in levels:
        ctx = TeacherContext(
            users=users_of(c),
            concurrency=c,
            llm_base_url=base_url,
            llm_model=model,
            llm_max_retries=0,
            llm_timeout_s=timeout_s,
            max_reflections=0,
            **kw,
        )
        r = run("teacher", ctx)
        by = sum(sum(v.values()) for v in r.policies.values())
        llm = sum(
            n for v in r.policies.values() for k, n in v.items() if k.startswith("llm")
        )
        rows.append(
            (
                f"concurrency {c:>2} ({r.users} users, {llm}/{by} llm)",
                r.timings["graph_s"],
                r.users,
            )
        )
    return rows


def stub_section(stub_users: int) -> None:
    from agenticrec.evals._llm_stub import LatencyStub

    run("teacher", TeacherContext(users=16 * stub_users))  # compile first
    with LatencyStub(0.2) as url:
        rows = _llm_rows(
            url,
            "stub",
            (1, 4, 16, 64),
            lambda c: max(stub_users // 4, c * stub_users // 16),
            30.0,
        )
    base = rows[0][2] / rows[0][1]
    _table(
        "LLM stub answering after 200 ms (ratio: users/s over concurrency 1)",
        rows,
        base,
    )
    r16 = rows[2][2] / rows[2][1]
    print(f"\nconcurrency 16 / 1: {r16 / base:.1f}x (target >= 10x)")


def llama_section() -> None:
    from agenticrec.llm_server import DEFAULT_ALIAS, local_server, server_missing

    why = server_missing()
    if why:
        print(f"\n## real llama.cpp server: skipped ({why})")
        return
    # as the real-model tests run it: 10 candidates, forced function calls
    with local_server() as url:
        rows = _llm_rows(
            url,
            DEFAULT_ALIAS,
            (1, 4),
            lambda c: 4,
            60.0,
            structured_output="function_calling",
            protocol="sampled:9",
            k=5,
        )
    base = rows[0][2] / rows[0][1]
    _table(
        "real llama.cpp server, SmolLM2-135M, 1 thread (ratio: over concurrency 1)",
        rows,
        base,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ml-latest-small")
    ap.add_argument("--stub-users", type=int, default=64)
    ap.add_argument("--skip", nargs="*", default=[], choices=["rule", "stub", "llama"])
    args = ap.parse_args(argv)
    print(
        f"# bench_runtime, {time.strftime('%Y-%m-%d')}, "
        f"{platform.processor() or platform.machine()}"
    )
    if "rule" not in args.skip:
        rule_section(args.data)
    if "stub" not in args.skip:
        stub_section(args.stub_users)
    if "llama" not in args.skip:
        llama_section()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    main()
