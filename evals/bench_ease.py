"""Benchmark: fitting EASE^R, the jitted JAX kernel vs numpy.

Task (the same for every method): from the item Gram matrix ``G = X.T @ X``
of a dataset's visible interactions (built once, not timed), compute
``B = I - P / diag(P)`` with ``P = (G + lam I)^-1`` and a zero diagonal.
Methods: :func:`agenticrec.tools.ease.ease_weights` (float32 Cholesky solve,
jitted) and numpy's ``np.linalg.inv`` in float64 (the textbook reference) and
float32. Before any time is printed, the kernel's ``B`` must match the float64
reference. Medians of ``--repeats`` rounds, methods interleaved; the kernel's
compile time is its first call minus the median.

Run::

    agenticrec eval bench_ease [--data ml-1m-implicit] [--lam 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import jax
import numpy as np

from agenticrec.tools.ease import ease_weights
from agenticrec.tools.itemknn import item_gram
from agenticrec.workspace import data_workspace


def numpy_ease(gram: np.ndarray, lam: float, dtype=np.float64) -> np.ndarray:
    """The reference: ``np.linalg.inv`` of ``G + lam I`` in ``dtype``."""
    g = gram.astype(dtype)
    p = np.linalg.inv(g + lam * np.eye(g.shape[0], dtype=dtype))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ml-1m-implicit")
    ap.add_argument("--lam", type=float, default=500.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    gram = item_gram(data_workspace(args.data))
    g32 = gram.gram
    g64 = np.asarray(g32, np.float64)
    n = g64.shape[0]

    def kernel():
        return jax.block_until_ready(ease_weights(g32, args.lam))

    first = _time(kernel)
    ref = numpy_ease(g64, args.lam)
    err = float(np.max(np.abs(np.asarray(kernel()) - ref)) / np.max(np.abs(ref)))
    if err > 1e-3:
        print(f"kernel disagrees with np.linalg.inv: max rel err {err:.2e}")
        return 1
    methods = {
        "jax ease_weights (f32, jit)": kernel,
        "numpy inv (f64)": lambda: numpy_ease(g64, args.lam),
        "numpy inv (f32)": lambda: numpy_ease(g64, args.lam, np.float32),
    }
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(args.repeats):
        for m, fn in methods.items():
            times[m].append(_time(fn))
    med = {m: statistics.median(t) for m, t in times.items()}
    base = med["numpy inv (f64)"]
    print(
        f"# bench_ease, {args.data}: {n} active items, lam={args.lam:g}, "
        f"{jax.default_backend()} ({platform.machine()}), median of "
        f"{args.repeats}; kernel max rel err vs f64 inv {err:.1e}, compile "
        f"{max(first - med['jax ease_weights (f32, jit)'], 0):.2f}s"
    )
    print("| method | fit s | numpy f64 / method |")
    print("|---|---|---|")
    for m, t in med.items():
        print(f"| {m} | {t:.3f} | {base / t:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
