"""Benchmark the JAX Pareto kernels against moocore, pymoo and a Monte-Carlo strawman.

Every peer runs in this one process on the same arrays; rounds are
interleaved so that machine noise hits all peers alike, and the table
reports medians and each row's ratio to moocore (lower is faster).
Compilation is timed apart from steady-state calls.

    python -m agenticrec.evals.bench_pareto            # full table
    python -m agenticrec.evals.bench_pareto --quick    # smaller sizes
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from agenticrec.tools import pareto

__all__ = ["Case", "main", "run_case"]


@dataclass
class Case:
    """One workload and its peers (name -> zero-argument callable)."""

    name: str
    peers: dict[str, Callable[[], object]]
    compile_s: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    target: str = ""
    baseline: str = "moocore"
    """Peer whose time the ratios divide by (the first one starting so)."""


def _front(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Mutually non-dominated points: the positive unit sphere, minimised."""
    x = np.abs(rng.normal(size=shape))
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _jitted(fn: Callable, *args) -> tuple[Callable[[], object], float]:
    """A zero-argument steady-state call and the compile time of ``jit(fn)``."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(*args))
    return (lambda: jax.block_until_ready(compiled(*args))), compile_s


def run_case(case: Case, repeats: int) -> dict[str, float]:
    """Median seconds per peer, rounds interleaved."""
    times: dict[str, list[float]] = {k: [] for k in case.peers}
    for fn in case.peers.values():
        fn()  # warm caches and any lazy compilation
    for _ in range(repeats):
        for name, fn in case.peers.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def _hv_case(b: int, n: int, rng, key, mc_samples: int, target: str) -> Case:
    """Batched 3-D hypervolume of ``b`` fronts of ``n`` points."""
    import moocore
    from pymoo.indicators.hv import HV

    fronts = _front(rng, (b, n, 3))
    ref = np.full(3, 1.1, np.float32)
    fj, rj = jnp.asarray(fronts), jnp.asarray(ref)
    agentic, c_hv = _jitted(lambda p, r: pareto.hypervolume(p, r), fj, rj)
    mc_name = f"JAX MC {mc_samples} samples (strawman)"
    mc, c_mc = _jitted(
        lambda p, r: pareto.hypervolume_mc(p, r, key, n_samples=mc_samples).value,
        fj,
        rj,
    )
    exact = np.array([moocore.hypervolume(f, ref=ref) for f in fronts])
    pymoo_hv = HV(ref_point=ref)
    case = Case(
        f"hypervolume 3-D, {b} fronts x {n} points",
        {
            "agenticrec (jit)": agentic,
            "agenticrec (eager)": lambda: jax.block_until_ready(
                pareto.hypervolume(fronts, ref)
            ),
            "moocore loop": lambda: [moocore.hypervolume(f, ref=ref) for f in fronts],
            "pymoo HV loop": lambda: [pymoo_hv(f) for f in fronts],
            mc_name: mc,
        },
        target=target,
    )
    case.compile_s = {"agenticrec (jit)": c_hv, mc_name: c_mc}
    case.notes = {
        "agenticrec (jit)": f"max rel err {_rel(agentic(), exact):.1e}",
        mc_name: f"max rel err {_rel(mc(), exact):.1e}",
    }
    return case


def _rank_crowd_select(x: np.ndarray, k: int) -> np.ndarray:
    """NSGA-II survival with moocore ranks and pymoo crowding, one population."""
    import moocore
    from pymoo.operators.survival.rank_and_crowding.metrics import (
        calc_crowding_distance,
    )

    ranks = moocore.pareto_rank(x)
    crowd = np.zeros(len(x))
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        if len(idx) <= 2:
            crowd[idx] = np.inf
        else:
            crowd[idx] = calc_crowding_distance(x[idx].astype(np.float64))
    return np.lexsort((np.arange(len(x)), -crowd, ranks))[:k]


def build_cases(quick: bool, seed: int = 0) -> list[Case]:
    """The workloads of the issue's targets, plus the DualAgent loop's sizes."""
    import moocore
    from pymoo.indicators.hv import HV
    from pymoo.operators.survival.rank_and_crowding.metrics import (
        calc_crowding_distance,
    )
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    scale = 4 if quick else 1
    users = 1000 // scale
    cases = [
        _hv_case(users, 50, rng, key, 1024, "agenticrec (jit) <= 1.0x moocore"),
        _hv_case(users, 300, rng, key, 1024, ""),
    ]

    # batched non-dominated sorting
    for n in (100, 300):
        pops = rng.random((users, n, 3)).astype(np.float32)
        agentic, c_rank = _jitted(pareto.nondominated_ranks, jnp.asarray(pops))
        nds = NonDominatedSorting()
        expected = np.stack([moocore.pareto_rank(x) for x in pops])
        case = Case(
            f"non-dominated ranks 3-D, {users} populations x {n} points",
            {
                "agenticrec (jit)": agentic,
                "moocore loop": lambda p=pops: [moocore.pareto_rank(x) for x in p],
                "pymoo NDS loop": lambda p=pops, nds=nds: [
                    nds.do(x, return_rank=True) for x in p
                ],
            },
            target="agenticrec (jit) <= 1.0x moocore" if n == 100 else "",
        )
        case.compile_s = {"agenticrec (jit)": c_rank}
        same = bool(np.array_equal(np.asarray(agentic()), expected))
        case.notes = {"agenticrec (jit)": "equal to moocore" if same else "MISMATCH"}
        cases.append(case)

    # crowding distance, given ranks (pymoo's runs per front)
    n = 100
    pops = rng.random((users, n, 3)).astype(np.float32)
    ranks = np.asarray(pareto.nondominated_ranks(pops))
    fronts_idx = [[np.flatnonzero(r == k) for k in np.unique(r)] for r in ranks]
    agentic, c_cd = _jitted(
        pareto.crowding_distance, jnp.asarray(pops), jnp.asarray(ranks)
    )

    def pymoo_cd():
        for x, idx in zip(pops, fronts_idx, strict=True):
            for i in idx:
                calc_crowding_distance(x[i].astype(np.float64))

    case = Case(
        f"crowding distance 3-D, {users} populations x {n} points",
        {"agenticrec (jit)": agentic, "pymoo per-front loop": pymoo_cd},
        baseline="pymoo",
    )
    case.compile_s = {"agenticrec (jit)": c_cd}
    cases.append(case)

    # NSGA-II environmental selection at the DualAgent loop's size
    n, k = 300, 150
    pops = rng.random((users, n, 3)).astype(np.float32)
    agentic, c_sel = _jitted(
        lambda p: pareto.select_by_rank_and_crowding(p, k).indices, jnp.asarray(pops)
    )
    same = all(
        np.array_equal(a, _rank_crowd_select(x, k))
        for a, x in zip(np.asarray(agentic())[:20], pops[:20], strict=True)
    )
    case = Case(
        f"NSGA-II selection 3-D, {users} populations, best {k} of {n}",
        {
            "agenticrec (jit)": agentic,
            "moocore ranks + pymoo crowding loop": lambda: [
                _rank_crowd_select(x, k) for x in pops
            ],
        },
    )
    case.compile_s = {"agenticrec (jit)": c_sel}
    case.notes = {"agenticrec (jit)": "same picks" if same else "MISMATCH"}
    cases.append(case)

    # hypervolume contributions
    n = 50
    fronts = _front(rng, (users, n, 3))
    ref = np.full(3, 1.1, np.float32)
    agentic, c_hvc = _jitted(
        pareto.hypervolume_contributions, jnp.asarray(fronts), jnp.asarray(ref)
    )
    case = Case(
        f"hypervolume contributions 3-D, {users} fronts x {n} points",
        {
            "agenticrec (jit)": agentic,
            "moocore loop": lambda: [
                moocore.hv_contributions(f, ref=ref) for f in fronts
            ],
        },
    )
    case.compile_s = {"agenticrec (jit)": c_hvc}
    cases.append(case)

    # one large front
    n = 10_000 // scale
    big = _front(rng, (n, 3))
    bj, rj = jnp.asarray(big), jnp.asarray(ref)
    in_jit, c_big = _jitted(lambda p, r: pareto.hypervolume(p, r), bj, rj)
    mc_name = "JAX MC 8192 samples (strawman)"
    mc_big, c_mcb = _jitted(
        lambda p, r: pareto.hypervolume_mc(p, r, key, n_samples=8192).value, bj, rj
    )
    exact = moocore.hypervolume(big, ref=ref)
    case = Case(
        f"hypervolume 3-D, one front of {n} points",
        {
            "agenticrec (jit, JAX kernel)": in_jit,
            "agenticrec (eager, auto -> moocore)": lambda: jax.block_until_ready(
                pareto.hypervolume(big, ref)
            ),
            "moocore": lambda: moocore.hypervolume(big, ref=ref),
            "pymoo HV": lambda: HV(ref_point=ref)(big),
            mc_name: mc_big,
        },
        target="agenticrec (jit, JAX kernel) <= 50x moocore",
    )
    case.compile_s = {"agenticrec (jit, JAX kernel)": c_big, mc_name: c_mcb}
    case.notes = {
        "agenticrec (jit, JAX kernel)": f"rel err {_rel(in_jit(), exact):.1e}",
        mc_name: f"rel err {_rel(mc_big(), exact):.1e}",
    }
    cases.append(case)
    return cases


def _fmt_ms(s: float) -> str:
    ms = s * 1e3
    return f"{ms:9.3f}" if ms < 10 else f"{ms:9.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4x smaller sizes")
    parser.add_argument("--repeats", type=int, default=9, help="rounds per case")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    dev = jax.devices()[0]
    print(
        f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}), "
        f"x64={jax.config.jax_enable_x64}, repeats={args.repeats}"
    )
    header = f"{'case / peer':58s} {'median ms':>9s} {'ratio':>10s} "
    header += f"{'compile s':>9s}  notes"
    print(header)
    print("-" * len(header))
    for case in build_cases(args.quick, args.seed):
        med = run_case(case, args.repeats)
        base = next(v for k, v in med.items() if k.startswith(case.baseline))
        line = f"{case.name}   (ratio: time / {case.baseline})"
        print(line + (f"   [target: {case.target}]" if case.target else ""))
        for name, t in med.items():
            ratio = f"{t / base:9.2f}x"
            comp = case.compile_s.get(name)
            comp_s = f"{comp:9.2f}" if comp is not None else f"{'':9s}"
            note = case.notes.get(name, "")
            print(f"  {name:56s} {_fmt_ms(t)} {ratio} {comp_s}  {note}")


if __name__ == "__main__":
    main()
