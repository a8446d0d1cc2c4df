"""Ray backend: users/s of the teacher against a 200 ms LLM endpoint, in one
process and split over 1, 2 and 4 Ray workers, and Ray's cost per shard.

An OpenAI-compatible stub on 127.0.0.1 answers every call after 200 ms with a
valid decision (:mod:`agenticrec.evals._llm_stub`), so what is measured is
how many users' decisions are in flight, not a model. Peers side by side in
one run (ratios are what to compare; absolute times swing on a shared
machine):

* in-process, ``--concurrency C`` and ``--concurrency 4C`` (the runtime's
  own fan-out, as many users in flight as the 4-worker Ray run);
* ``--backend ray --workers N`` for N = 1, 2, 4, each shard with the same
  ``--concurrency C`` (so N workers keep N x C users in flight), on a local
  Ray started here with one slot per worker; each measured after a warm-up
  run in which every worker process builds the teacher's workspace.

Ray's overhead per shard is the run's wall time (submit to last result)
minus its slowest shard's own time inside its worker: scheduling, shipping
the context and the users, and returning state and trajectories.

    agenticrec eval bench_ray [--users 128] [--concurrency 16] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from agenticrec.graphs.teacher import TeacherContext
from agenticrec.runner import run


def _row(name: str, rep, wall: float) -> tuple:
    ups = rep.users / rep.timings["graph_s"]
    over = None
    if rep.shards:
        over = rep.timings["graph_s"] - max(s["seconds"] for s in rep.shards)
    return name, rep.users, rep.timings["graph_s"], wall, ups, over


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=128)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args(argv)
    import ray

    from agenticrec.evals._llm_stub import LatencyStub

    levels = [int(x) for x in args.workers.split(",")]
    stub = LatencyStub(args.latency)
    rows = []
    with stub as url:
        kw = dict(
            users=args.users,
            concurrency=args.concurrency,
            llm_base_url=url,
            llm_model="stub",
            llm_max_retries=0,
            max_reflections=0,
        )
        run("teacher", TeacherContext(**{**kw, "users": 8}))  # compile first
        t = time.perf_counter()
        local = run("teacher", TeacherContext(**kw))
        rows.append(
            _row(
                f"in-process, concurrency {args.concurrency}",
                local,
                time.perf_counter() - t,
            )
        )
        wide = max(levels) * args.concurrency  # as many in flight as Ray's most
        t = time.perf_counter()
        rep = run("teacher", TeacherContext(**{**kw, "concurrency": wide}))
        wall = time.perf_counter() - t
        rows.append(_row(f"in-process, concurrency {wide}", rep, wall))
        ray.init(
            num_cpus=max(levels),
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
        )
        try:
            for n in levels:
                ctx = TeacherContext(**kw, backend="ray", workers=n)
                t = time.perf_counter()
                cold = run("teacher", ctx)
                cold_s = time.perf_counter() - t
                t = time.perf_counter()
                rep = run("teacher", ctx)
                rows.append(
                    _row(
                        f"ray, {n} worker(s) x concurrency {args.concurrency}",
                        rep,
                        time.perf_counter() - t,
                    )
                )
                assert rep.metrics == local.metrics, "ray report differs"
                print(
                    f"# ray {n} worker(s): first run (workers build the "
                    f"workspace) {cold_s:.1f} s, "
                    f"{len(cold.shards)} shards"
                )
        finally:
            ray.shutdown()
    print(
        f"\n# bench_ray, {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; teacher, ml-latest-small, sampled:19, "
        f"{args.users} users, LLM stub answering after {args.latency * 1000:.0f} "
        f"ms ({stub.calls} calls), max_reflections 0"
    )
    base = rows[0][4]
    print(
        f"| {'run':<40} | {'users':>5} | {'graph s':>7} | {'wall s':>6} | "
        f"{'users/s':>7} | {'ratio':>6} | {'Ray overhead s':>14} |"
    )
    print(f"|{'-' * 42}|{'-' * 7}|{'-' * 9}|{'-' * 8}|{'-' * 9}|{'-' * 8}|{'-' * 16}|")
    for name, users, gs, wall, ups, over in rows:
        o = "" if over is None else f"{over:.2f}"
        print(
            f"| {name:<40} | {users:>5} | {gs:7.2f} | {wall:6.2f} | {ups:7.1f} | "
            f"{ups / base:5.2f}x | {o:>14} |"
        )
    print(
        "\ngraph s: submit to last result (in-process: the graph's stream); "
        "wall s: the whole call incl. input, merge and report; every Ray report "
        "equals the in-process one (asserted)."
    )


if __name__ == "__main__":
    main()
