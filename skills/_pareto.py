"""Non-dominated ranks for experiment memory, from :mod:`agenticrec.tools.pareto`."""

from __future__ import annotations

import numpy as np

__all__ = ["nondominated_ranks"]

_MIN_BUCKET = 8


def nondominated_ranks(points: np.ndarray) -> np.ndarray:
    """Pareto front index of each point under minimisation.

    Args:
        points: ``f[n, m]``, one row per experiment, every objective minimised.

    Returns:
        ``int[n]``: 0 for the non-dominated front, 1 for the front left when
        that is removed, and so on. Equal points share a rank.

    Delegates to the jitted :func:`agenticrec.tools.pareto.nondominated_ranks`
    (imported on first use, so importing the Skillhub does not load JAX). Rows
    are padded to a power of two and masked, so a memory whose size changes
    between prunes reuses a few compiled kernels instead of compiling for
    every ``n``. Values are compared in float32, JAX's default precision.
    """
    from agenticrec.tools.pareto import nondominated_ranks as ranks

    f = np.asarray(points, dtype=np.float32)
    if f.ndim != 2:
        raise ValueError(f"points must be f[n, m], got shape {f.shape}")
    n = f.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    size = max(_MIN_BUCKET, 1 << (n - 1).bit_length())
    padded = np.zeros((size, f.shape[1]), dtype=np.float32)
    padded[:n] = f
    mask = np.arange(size) < n
    return np.asarray(ranks(padded, mask))[:n].astype(int)
