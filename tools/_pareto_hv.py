"""Single-set exact hypervolume kernels (minimisation) and contributions.

The 3-D method is a sweep over z. Columns are the points sorted by x; ``h[c]``
is the smallest y among the points inserted so far whose x is at or left of
column ``c``. Inserting a point takes the minimum with its y on every column
right of it; the 2-D area after ``k`` insertions is ``sum_c dx[c] * (ry -
h[c])``, and the volume is ``sum_k dz[k] * area_k``. That is ``O(n)``
vectorised work per step, ``O(n^2)`` per set, with no sort inside the loop;
dominated points, duplicates and points outside the reference box need no
special case (the last are moved onto the reference corner and never count).

For ``m >= 4`` the sweep is applied recursively: sweeping the last ``m - 3``
coordinates turns the volume into a weighted sum of ``n^(m-3)`` masked 3-D
volumes of the same points, all advanced by one shared scan. That is exact
and costs ``O(n^(m-1))`` time, hence :data:`MAX_EXACT_WORK`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from agenticrec.tools import _pareto_dominance as _dom
from agenticrec.tools._pareto_pairwise import (
    fold_columns,
    inverse_permutation,
    stable_rank,
)

__all__ = [
    "MAX_EXACT_WORK",
    "PAIRWISE_MAX_POINTS",
    "contributions",
    "exact_work",
    "max_exact_points",
    "hypervolume",
    "hypervolume_mc",
]

# Up to this many points per set, orders come from pairwise comparison counts
# (fast for many short rows on CPU); above it, from ``lax.sort``.
PAIRWISE_MAX_POINTS = 512

# Largest ``n ** (m - 1)`` (points per set, objectives) the exact m >= 4
# method accepts: about a second per set on one CPU core.
MAX_EXACT_WORK = 2**28


def exact_work(n: int, m: int) -> int:
    """Step count of the exact method for ``n`` points in ``m >= 4`` objectives."""
    return n ** (m - 1)


def max_exact_points(m: int) -> int:
    """Largest set the exact ``m >= 4`` method accepts."""
    n = round(MAX_EXACT_WORK ** (1 / (m - 1)))
    while exact_work(n, m) > MAX_EXACT_WORK:
        n -= 1
    while exact_work(n + 1, m) <= MAX_EXACT_WORK:
        n += 1
    return n


class _Sweep(NamedTuple):
    """The sweep of one set: columns in x order, steps in z order."""

    dx: jax.Array  # f[n]: width of column c (next x, or ref x, minus x)
    col: jax.Array  # int32[n]: column of the point inserted at step k
    y: jax.Array  # f[n]: y of the point inserted at step k
    dz: jax.Array  # f[n]: next z (or ref z) minus z at step k
    order: jax.Array  # int32[n]: original index of the point at step k


def _sort_order(v: jax.Array) -> jax.Array:
    idx = jnp.arange(v.shape[0], dtype=jnp.int32)
    return lax.sort((v, idx), num_keys=1, is_stable=True)[1]


def _close(sorted_v: jax.Array, end: jax.Array) -> jax.Array:
    """Gaps from each sorted value to the next one, the last to ``end``."""
    return jnp.append(sorted_v[1:], end) - sorted_v


def _sweep(p: jax.Array, ref: jax.Array) -> _Sweep:
    """Sweep of ``p: f[n, 3]`` whose excluded points already sit at ``ref``."""
    n = p.shape[0]
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    if n <= PAIRWISE_MAX_POINTS:
        ranks = stable_rank(jnp.stack([x, z]))
        x_rank = ranks[0]
        x_order, z_order = inverse_permutation(x_rank), inverse_permutation(ranks[1])
    else:
        x_order = _sort_order(x)
        x_rank = inverse_permutation(x_order)
        z_order = _sort_order(z)
    return _Sweep(
        dx=_close(x[x_order], ref[0]),
        col=x_rank[z_order],
        y=y[z_order],
        dz=_close(z[z_order], ref[2]),
        order=z_order,
    )


def _kahan_add(acc: jax.Array, comp: jax.Array, term: jax.Array):
    t = term - comp
    s = acc + t
    return s, (s - acc) - t


def _volume3(sw: _Sweep, ry: jax.Array) -> jax.Array:
    """3-D volume of the swept set (Kahan-summed over the z steps)."""
    n = sw.dx.shape[0]
    cols = jnp.arange(n, dtype=jnp.int32)

    def step(carry, inp):
        h, acc, comp = carry
        c, yk, dzk = inp
        h = jnp.where(cols >= c, jnp.minimum(h, yk), h)
        area = jnp.sum((ry - h) * sw.dx)
        acc, comp = _kahan_add(acc, comp, area * dzk)
        return (h, acc, comp), None

    zero = jnp.zeros((), sw.dx.dtype)
    init = (jnp.full(n, ry, sw.dx.dtype), zero, zero)
    (_, acc, _), _ = lax.scan(step, init, (sw.col, sw.y, sw.dz))
    return acc


def _volumes3(sw: _Sweep, ry: jax.Array, insert: jax.Array) -> jax.Array:
    """3-D volumes of ``S`` subsets sharing one sweep, in one scan.

    Args:
        sw: the sweep of all points.
        ry: reference y.
        insert: ``bool[S, n]`` in step order: subset ``s`` holds the point of
            step ``k``. Points outside a subset stay as column/step
            boundaries, which splits the sums without changing them.

    Returns:
        ``f[S]``.
    """
    n_sub, n = insert.shape
    cols = jnp.arange(n, dtype=jnp.int32)

    def step(carry, inp):
        h, acc, comp = carry
        c, yk, dzk, ins = inp
        yk = jnp.where(ins, yk, ry)
        h = jnp.where(cols[None, :] >= c, jnp.minimum(h, yk[:, None]), h)
        area = jnp.sum((ry - h) * sw.dx, axis=-1)
        acc, comp = _kahan_add(acc, comp, area * dzk)
        return (h, acc, comp), None

    zero = jnp.zeros(n_sub, sw.dx.dtype)
    init = (jnp.full((n_sub, n), ry, sw.dx.dtype), zero, zero)
    (_, acc, _), _ = lax.scan(step, init, (sw.col, sw.y, sw.dz, insert.T))
    return acc


def _clip_to_ref(p: jax.Array, ref: jax.Array, active: jax.Array) -> jax.Array:
    return jnp.where(active[:, None], p, ref)


def _hv1(p: jax.Array, ref: jax.Array, active: jax.Array) -> jax.Array:
    lo = jnp.min(jnp.where(active, p[:, 0], ref[0]))
    return ref[0] - lo


def _hv2(p: jax.Array, ref: jax.Array, active: jax.Array) -> jax.Array:
    n = p.shape[0]
    q = _clip_to_ref(p, ref, active)
    x, y = q[:, 0], q[:, 1]
    if n <= PAIRWISE_MAX_POINTS:
        order = inverse_permutation(stable_rank(x))
    else:
        order = _sort_order(x)
    h = lax.associative_scan(jnp.minimum, y[order])
    return jnp.sum(_close(x[order], ref[0]) * (ref[1] - h))


def _hv3(p: jax.Array, ref: jax.Array, active: jax.Array) -> jax.Array:
    sw = _sweep(_clip_to_ref(p, ref, active), ref)
    return _volume3(sw, ref[1])


def _hv_high(p: jax.Array, ref: jax.Array, active: jax.Array) -> jax.Array:
    """Exact volume for ``m >= 4`` as a weighted sum of masked 3-D volumes."""
    n, m = p.shape
    q = _clip_to_ref(p, ref, active)
    sw = _sweep(q[:, :3], ref[:3])
    masks, weights = [], []
    for d in range(3, m):
        rank = stable_rank(q[:, d])
        order = inverse_permutation(rank)
        steps = jnp.arange(n)
        masks.append(rank[None, :] <= steps[:, None])  # [k_d, point]
        weights.append(_close(q[order, d], ref[d]))  # [k_d]
    n_sweeps = m - 3
    mask = active[None, :]
    weight = jnp.ones((), p.dtype)
    for axis, (mk, wk) in enumerate(zip(masks, weights, strict=True)):
        shape = [1] * n_sweeps
        shape[axis] = n
        mask = mask & mk.reshape(shape + [n])
        weight = weight * wk.reshape(shape)
    mask = jnp.broadcast_to(mask, (n,) * n_sweeps + (n,)).reshape(-1, n)
    weight = jnp.broadcast_to(weight, (n,) * n_sweeps).reshape(-1)
    vols = _volumes3(sw, ref[1], mask[:, sw.order])
    return jnp.sum(weight * vols)


def hypervolume(p: jax.Array, ref: jax.Array, valid: jax.Array) -> jax.Array:
    """Exact hypervolume of one set.

    Args:
        p: ``f[n, m]`` points, minimised.
        ref: ``f[m]`` reference point.
        valid: ``bool[n]``.

    Returns:
        ``f[]``: the volume dominated by the valid points and bounded by
        ``ref``; NaN when a valid point holds NaN.
    """
    m = p.shape[1]
    nan_row = jnp.any(jnp.isnan(p), axis=1) & valid
    active = valid & jnp.all(p < ref, axis=1)
    kernel = {1: _hv1, 2: _hv2, 3: _hv3}.get(m, _hv_high)
    vol = kernel(p, ref, active)
    vol = jnp.where(jnp.any(active), vol, 0)
    return jnp.where(jnp.any(nan_row), jnp.nan, vol).astype(p.dtype)


def contributions(
    p: jax.Array, ref: jax.Array, valid: jax.Array, ignore_dominated: bool
) -> jax.Array:
    """Exclusive hypervolume contribution of every point, ``m`` in {2, 3}.

    ``hv(S) - hv(S without i)``: zero for dominated points and duplicates,
    and (unless ``ignore_dominated``) reduced where a dominated point would
    take over part of its dominator's region.

    The sweep keeps, per column, the smallest and second-smallest y and the
    point owning the smallest; the strip between the two belongs to that
    owner alone and is credited to it at every step.

    Returns:
        ``f[n]``; 0 for invalid points, NaN for a valid point holding NaN.
    """
    n, m = p.shape
    nan_row = jnp.any(jnp.isnan(p), axis=1) & valid
    active = valid & jnp.all(p < ref, axis=1)
    if ignore_dominated:
        beaten_by = _dom.pack_relation(_dom.pareto_relation(p, active), n)
        active = _dom.nondominated(beaten_by, active)
    if m == 2:
        flat = jnp.where(active, 0, 1).astype(p.dtype)
        p = jnp.concatenate([p, flat[:, None]], axis=1)
        ref = jnp.append(ref, jnp.ones((), p.dtype))
    sw = _sweep(_clip_to_ref(p, ref, active), ref)
    ry = ref[1]
    cols = jnp.arange(n, dtype=jnp.int32)

    def step(carry, inp):
        h1, h2, owner, total = carry
        c, yk, dzk, who = inp
        right = cols >= c
        h2 = jnp.where(right, jnp.minimum(h2, jnp.maximum(h1, yk)), h2)
        owner = jnp.where(right & (yk < h1), who, owner)
        h1 = jnp.where(right, jnp.minimum(h1, yk), h1)
        total = total.at[owner].add(dzk * sw.dx * (h2 - h1), mode="drop")
        return (h1, h2, owner, total), None

    full = jnp.full(n, ry, p.dtype)
    init = (full, full, jnp.full(n, n, jnp.int32), jnp.zeros(n, p.dtype))
    (_, _, _, total), _ = lax.scan(step, init, (sw.col, sw.y, sw.dz, sw.order))
    total = jnp.where(active, total, 0)
    return jnp.where(nan_row, jnp.nan, total).astype(p.dtype)


def hypervolume_mc(
    p: jax.Array,
    ref: jax.Array,
    valid: jax.Array,
    key: jax.Array,
    n_samples: int,
) -> tuple[jax.Array, jax.Array]:
    """Monte-Carlo hypervolume estimate and its standard error, one set.

    Samples are uniform in the box from the valid points' per-objective
    minimum to ``ref``; the estimate is the box volume times the dominated
    fraction, and the standard error ``volume * sqrt(f (1 - f) / N)``. The
    dominance test folds over blocks of points, ``O(N n m)`` work.
    """
    n, m = p.shape
    active = valid & jnp.all(p < ref, axis=1)
    lo = jnp.min(jnp.where(active[:, None], p, ref), axis=0)
    width = ref - lo
    samples = lo + width * jax.random.uniform(key, (n_samples, m), p.dtype)

    def covered(blocks, j, ok):
        q, act = blocks  # [m, block], [block]
        hit = act & ok
        for d in range(m):
            hit = hit & (q[d][None, :] <= samples[:, d, None])
        return jnp.any(hit, axis=1)

    init = jnp.zeros(n_samples, bool)
    hit = fold_columns(covered, [p.T, active], init, jnp.logical_or)
    frac = jnp.mean(hit.astype(p.dtype))
    box = jnp.prod(width)
    nan = jnp.any(jnp.isnan(p) & valid[:, None])
    value = jnp.where(nan, jnp.nan, box * frac)
    stderr = box * jnp.sqrt(frac * (1 - frac) / n_samples)
    return value, jnp.where(nan, jnp.nan, stderr)
