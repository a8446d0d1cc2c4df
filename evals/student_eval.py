"""The distilled student against its teacher and the strong baselines, on
users it was not trained on, with latency per user.

    agenticrec eval student_eval [--data ml-latest-small] [--protocol sampled:19]
        [--train-users 200] [--eval-users 100] [--base tiny|smollm2|DIR]
        [--sft-steps 200] [--grpo-steps 20] [--keep hit@10] [--out DIR]

1. The rule teacher runs on the first ``--train-users`` evaluable users and
   records trajectories; they are exported as student rows (``--keep``
   filters them by outcome).
2. ``agenticrec distill sft`` then ``grpo`` train the student from ``--base``.
3. Teacher, student and the validation-tuned baselines of
   :mod:`agenticrec.evals.baselines` (EASE^R, cosine and co-occurrence
   ItemKNN, ALS, popularity) are scored on the next ``--eval-users`` users
   (``offset = train users``): the same users and candidates, NDCG@10/HR@10,
   paired Wilcoxon tests against the teacher, and wall time per user with
   one user in flight (student: one generation pass; teacher: its
   multi-turn graph).

Nothing here looks at the test items of the evaluation users before scoring;
the training rows' targets are the training users' held-out items.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from agenticrec import distill
from agenticrec.evals.baselines import run_baselines
from agenticrec.evals.baselines_eval import paired, user_ndcg
from agenticrec.evals.teacher_eval import capturing_spec
from agenticrec.export import export_file
from agenticrec.graphs.student import StudentContext
from agenticrec.graphs.teacher import TeacherContext
from agenticrec.runner import run

GPU_COMMAND = (
    "agenticrec eval student_eval --base smollm2 --train-users 2000 "
    "--eval-users 500 --sft-steps 3000 --grpo-steps 300 --batch 8 "
    "--generations 8 --max-new-tokens 2048"
)
"""The full run for a GPU machine (transformers picks CUDA when present)."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ml-latest-small")
    ap.add_argument("--protocol", default="sampled:19")
    ap.add_argument("--train-users", type=int, default=200)
    ap.add_argument("--eval-users", type=int, default=100)
    ap.add_argument("--base", default="tiny", help="tiny | smollm2 | a model folder")
    ap.add_argument("--sft-steps", type=int, default=200)
    ap.add_argument("--grpo-steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--max-new-tokens", type=int, default=1024)
    ap.add_argument("--keep", default=None, help="outcome filter, e.g. hit@10")
    ap.add_argument("--out", default="runs/student_eval")
    ap.add_argument("--no-baselines", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = {"data": args.data, "protocol": args.protocol}
    print(
        f"# student_eval, {args.data} {args.protocol}, base {args.base}, "
        f"{platform.machine()}, {time.strftime('%Y-%m-%d')}"
    )

    # 1. teacher trajectories on the training users
    traj = out / "teacher-train.jsonl"
    traj.unlink(missing_ok=True)
    t0 = time.perf_counter()
    run(
        "teacher",
        TeacherContext(**common, users=args.train_users, trajectories=str(traj)),
    )
    rows = export_file(traj, out, "student", keep=args.keep)
    print(
        f"\nteacher trajectories: {args.train_users} users, {rows['rows']} rows "
        f"kept ({rows['dropped']} dropped by --keep {args.keep}) in "
        f"{time.perf_counter() - t0:.0f} s"
    )

    # 2. SFT, then GRPO
    sft_dir, grpo_dir = out / "sft", out / "grpo"
    cards = {}
    t0 = time.perf_counter()
    cards["sft"] = distill.sft(
        rows["file"],
        sft_dir,
        base=args.base,
        steps=args.sft_steps,
        batch=args.batch,
        lr=args.lr,
        save_steps=max(1, args.sft_steps // 4),
        resume=True,
    )
    model_dir = sft_dir
    if args.grpo_steps:
        cards["grpo"] = distill.grpo(
            rows["file"],
            grpo_dir,
            model=sft_dir,
            steps=args.grpo_steps,
            generations=args.generations,
            max_completion_length=args.max_new_tokens,
            lr=args.lr / 10,
            save_steps=max(1, args.grpo_steps // 4),
            resume=True,
        )
        model_dir = grpo_dir
    train_s = time.perf_counter() - t0
    print(f"\ntraining: {train_s:.0f} s")
    for stage, c in cards.items():
        print(
            f"- {stage}: {c.steps} steps, {c.parameters:,} parameters, "
            f"{c.seconds:.0f} s, {json.dumps(c.metrics)}"
        )

    # 3. held-out users: teacher, student, baselines
    held = {"offset": args.train_users, "users": args.eval_users, "concurrency": 1}
    store_t: dict = {}
    t0 = time.perf_counter()
    rep_t = run(capturing_spec(store_t), TeacherContext(**common, **held))
    teacher_ms = 1e3 * (time.perf_counter() - t0) / max(rep_t.users, 1)
    store_s: dict = {}
    (out / "student-eval.jsonl").unlink(missing_ok=True)
    t0 = time.perf_counter()
    rep_s = run(
        capturing_spec(store_s, "student"),
        StudentContext(
            **common,
            **held,
            student=str(model_dir),
            max_new_tokens=args.max_new_tokens,
            trajectories=str(out / "student-eval.jsonl"),  # the answers, to read
        ),
    )
    student_ms = 1e3 * (time.perf_counter() - t0) / max(rep_s.users, 1)
    users_t, ranks_t = store_t["ranks"]
    users_s, ranks_s = store_s["ranks"]
    assert np.array_equal(users_t, users_s), "teacher and student users differ"

    methods: dict[str, np.ndarray] = {"teacher": ranks_t, "student": ranks_s}
    if not args.no_baselines:
        base = run_baselines(
            args.data, [args.protocol], users=args.train_users + args.eval_users
        )
        for name, by_proto in base.items():
            r = by_proto[args.protocol]
            assert np.array_equal(r["users"][args.train_users :], users_t)
            methods[name] = r["ranks"][args.train_users :]
    print(
        f"\n## held-out users {args.train_users}..{args.train_users + rep_t.users - 1}"
        f" ({rep_t.users} users), paired against the teacher"
    )
    print("| method | NDCG@10 | HR@10 | vs teacher | Wilcoxon p | better / worse |")
    print("|---|---|---|---|---|---|")
    t_nd = float(np.mean(user_ndcg(ranks_t)))
    for name, ranks in methods.items():
        nd = float(np.mean(user_ndcg(ranks)))
        hr = float(np.mean((ranks >= 0) & (ranks < 10)))
        if name == "teacher":
            print(f"| teacher | {nd:.4f} | {hr:.4f} | | | |")
            continue
        cmp = paired(ranks, ranks_t)
        print(
            f"| {name} | {nd:.4f} | {hr:.4f} | {nd / max(t_nd, 1e-12):.3f}x | "
            f"{cmp['p']:.2g} | {cmp['better']} / {cmp['worse']} |"
        )
    print(
        f"\nstudent answers: {json.dumps(rep_s.policies)}; fallback reasons "
        f"{json.dumps(rep_s.fallback_reasons)}"
    )
    print("\n## wall time per user (one user in flight)")
    print("| method | ms/user | of which generation |")
    print("|---|---|---|")
    print(f"| teacher (multi-turn graph, rule) | {teacher_ms:.1f} | |")
    print(f"| student (one pass) | {student_ms:.1f} | {rep_s.ms_per_user:.1f} |")
    print(f"\nGPU run: {GPU_COMMAND}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
