"""Power of the tune graph's online tests: how often does a fresh test see a
configuration whose gain is known?

For each configuration (the offline picks of a ``bench_tune`` run, or
``--config`` JSON overrides) and each online design, the share of
``--assignments`` fresh assignment seeds in which the test decides for the
treatment (:meth:`TuneTask.robustness`). The configuration's *population
gain* (its mean north-star change over all online users, no split) says
whether a win is right: a test should win often for a clearly positive gain
and rarely for a negative one.

Designs (rows): the old default (``welch`` on one online event per user),
then ``welch``, ``cuped``, ``cuped+strata`` and ``interleave`` on
``--online-events`` (default 10), and ``interleave`` with sequential mSPRT
looks.

Run: ``agenticrec eval tune_power --bench runs/bench_tune.json [--top 3]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from agenticrec.graphs import tune

DESIGNS: tuple[tuple[str, int | None, str, bool], ...] = (
    ("welch, 1 online event (old default)", 1, "welch", False),
    ("welch", None, "welch", False),
    ("cuped", None, "cuped", False),
    ("cuped+strata", None, "cuped+strata", False),
    ("interleave (default)", None, "interleave", False),
    ("interleave + sequential", None, "interleave", True),
)


def picks(bench: Path, top: int) -> list[tuple[str, dict[str, Any]]]:
    """The ``top`` offline picks of a bench run with the largest and the one
    with the smallest population gain (distinct configurations)."""
    rows = json.loads(bench.read_text())["rows"]
    seen, uniq = set(), []
    for r in sorted(rows, key=lambda r: -r["pick_population_gain"]):
        key = json.dumps(r["pick"], sort_keys=True)
        if r["pick"] and key not in seen:
            seen.add(key)
            uniq.append(r)
    chosen = uniq[:top] + uniq[-1:]
    return [(f"{r['method']} seed {r['seed']}", r["pick"]) for r in chosen]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", type=Path, default=Path("runs/bench_tune.json"))
    ap.add_argument("--config", default=None, help="JSON overrides instead")
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--assignments", type=int, default=20)
    ap.add_argument("--online-events", type=int, default=10)
    ap.add_argument("--data", default="ml-latest-small")
    ap.add_argument("--out", default="runs/tune_power.json")
    args = ap.parse_args(argv)
    if args.config:
        configs = [("--config", json.loads(args.config))]
    elif args.bench.exists():
        configs = picks(args.bench, args.top)
    else:
        ap.error(f"{args.bench} not found: run bench_tune first or pass --config")
    out: list[dict[str, Any]] = []
    for name, over in configs:
        for label, events, design, seq in DESIGNS:
            ctx = tune.TuneContext(
                data=args.data,
                seed=0,
                split_seed=0,
                online_events=events or args.online_events,
            )
            task = ctx.ws()
            rob = task.robustness(
                over,
                objective=ctx.obj,
                alpha=ctx.alpha,
                seeds=args.assignments,
                design=design,
                sequential=seq,
            )
            c = task._per_user("online", {})[ctx.obj.north_star]
            t = task._per_user("online", over)[ctx.obj.north_star]
            out.append(
                {
                    "config": name,
                    "design": label,
                    "online_events": events or args.online_events,
                    "population_gain": float((t.mean() - c.mean()) / c.mean()),
                    "wins": int(round(rob["win_share"] * args.assignments)),
                    "assignments": args.assignments,
                }
            )
            print(json.dumps(out[-1]), file=sys.stderr)
    table = summarize(out)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"rows": out, "table": table}, indent=1))
    return {"rows": out, "table": table}


def summarize(rows: list[dict[str, Any]]) -> str:
    configs = list(dict.fromkeys(r["config"] for r in rows))
    head = " | ".join(
        f"{c} ({np.mean([r['population_gain'] for r in rows if r['config'] == c and r['online_events'] != 1]):+.1%})"  # noqa: E501
        for c in configs
    )
    lines = [
        f"| design | {head} |",
        "|---" * (len(configs) + 1) + "|",
    ]
    for label in dict.fromkeys(r["design"] for r in rows):
        cells = [
            next(
                f"{r['wins']}/{r['assignments']}"
                for r in rows
                if r["config"] == c and r["design"] == label
            )
            for c in configs
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
