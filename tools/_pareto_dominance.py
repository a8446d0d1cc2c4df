"""Single-set dominance kernels: ranks, crowding, constraint domination, selection.

Every function here takes one set, ``p: f[n, m]`` with ``valid: bool[n]``, and
minimises; batching is by ``vmap`` in :mod:`agenticrec.tools.pareto`. Nothing
sorts (XLA's CPU sort is slow on many short rows): orders come from pairwise
comparisons, ``O(n^2 m)`` work in fused blocks.

The dominance relation is stored bit-packed, ``beaten_by: uint32[ceil(n/32),
n]`` with bit ``b`` of word ``w`` of column ``j`` set when point ``32 w + b``
beats point ``j``: 32x less memory than a boolean matrix, so that peeling
the fronts (one pass over it per front) stays in cache.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from agenticrec.tools._pareto_pairwise import (
    fold_columns,
    inverse_permutation,
    stable_rank,
)

__all__ = [
    "cdp_relation",
    "crowding",
    "is_nondominated",
    "nondominated",
    "pack_relation",
    "pareto_relation",
    "peel_fronts",
    "ranks",
    "select",
    "select_best",
]

# A relation: ``beats(i)`` with ``i: int32[k]`` -> ``bool[k, n]``, whether
# point ``i[r]`` beats each point.
Relation = Callable[[jax.Array], jax.Array]

# Up to this many words per column the front test is unrolled.
_UNROLL_WORDS = 16


def pareto_relation(p: jax.Array, valid: jax.Array) -> Relation:
    """Pareto dominance among the valid points of ``p: f[n, m]`` (minimised).

    NaN compares false, so a NaN point is in no relation either way.
    """

    def beats(i: jax.Array) -> jax.Array:
        pi = p[i]
        le = lt = None
        for k in range(p.shape[-1]):
            a, b = pi[:, k, None], p[None, :, k]
            le = (a <= b) if le is None else le & (a <= b)
            lt = (a < b) if lt is None else lt | (a < b)
        return le & lt & valid[None, :] & valid[i][:, None]

    return beats


def cdp_relation(
    p: jax.Array, violation: jax.Array, valid: jax.Array, eps: jax.Array
) -> Relation:
    """Deb's constrained domination among the valid points.

    A point whose total violation is ``<= eps`` is feasible. Feasible beats
    infeasible; two feasible points compare by Pareto dominance; two
    infeasible points by total violation (smaller wins; equal: neither).
    """
    feasible = violation <= eps
    v = jnp.where(feasible, 0, violation)
    pareto = pareto_relation(p, valid)

    def beats(i: jax.Array) -> jax.Array:
        fi, fj = feasible[i][:, None], feasible[None, :]
        by_violation = ~fi & ~fj & (v[i][:, None] < v[None, :])
        won = (fi & ~fj) | (fi & fj & pareto(i)) | by_violation
        return won & valid[None, :] & valid[i][:, None]

    return beats


def pack_relation(beats: Relation, n: int) -> jax.Array:
    """``beaten_by: uint32[ceil(n/32), n]``: bit ``b`` of word ``w`` of column
    ``j`` is set when point ``32 w + b`` beats point ``j``."""
    n_words = -(-n // 32)
    lanes = jnp.arange(32, dtype=jnp.int32)

    def word(w, out):
        i = w * 32 + lanes
        rows = beats(jnp.minimum(i, n - 1)) & (i < n)[:, None]
        bits = jnp.zeros(n, jnp.uint32)
        for b in range(32):
            bits = bits | (rows[b].astype(jnp.uint32) << b)
        return out.at[w].set(bits)

    return lax.fori_loop(0, n_words, word, jnp.zeros((n_words, n), jnp.uint32))


def _pack_mask(mask: jax.Array) -> jax.Array:
    n = mask.shape[0]
    n_words = -(-n // 32)
    bits = jnp.pad(mask, (0, n_words * 32 - n)).reshape(n_words, 32)
    word = jnp.zeros(n_words, jnp.uint32)
    for b in range(32):
        word = word | (bits[:, b].astype(jnp.uint32) << b)
    return word


def _beaten(beaten_by: jax.Array, live: jax.Array) -> jax.Array:
    """Whether some point whose bit is set in ``live`` beats each column."""
    hit = beaten_by & live[:, None]
    if hit.shape[0] > _UNROLL_WORDS:
        return jnp.any(hit != 0, axis=0)
    out = hit[0] != 0
    for w in range(1, hit.shape[0]):
        out = out | (hit[w] != 0)
    return out


def nondominated(beaten_by: jax.Array, valid: jax.Array) -> jax.Array:
    """``bool[n]``: valid points that no point beats."""
    return valid & ~_beaten(
        beaten_by, jnp.full(beaten_by.shape[:1], 0xFFFFFFFF, jnp.uint32)
    )


def peel_fronts(beaten_by: jax.Array, valid: jax.Array) -> jax.Array:
    """Front index of every point of a strict partial order, by peeling.

    Args:
        beaten_by: from :func:`pack_relation`; the relation must be
            irreflexive and transitive (Pareto dominance and CDP are).
        valid: ``bool[n]``.

    Returns:
        ``int32[n]``: 0 for the non-dominated front, 1 for the next, ...;
        ``n`` for invalid points, so that they sort last. The loop runs once
        per front.
    """
    n = valid.shape[0]

    def body(state):
        rank, remaining, front = state
        now = remaining & ~_beaten(beaten_by, _pack_mask(remaining))
        return jnp.where(now, front, rank), remaining & ~now, front + 1

    init = (jnp.full(n, n, jnp.int32), valid, jnp.int32(0))
    rank, _, _ = lax.while_loop(lambda s: jnp.any(s[1]), body, init)
    return rank


def crowding(p: jax.Array, rank: jax.Array, valid: jax.Array) -> jax.Array:
    """NSGA-II crowding distance of every point within its own front.

    For each objective, a point's neighbours are the next lower and higher
    values in its front (ties ordered by index, as a stable sort would); the
    term is ``(next - prev) / (max - min)`` over the front, infinite for the
    first and last point, and 0 for every point when the front's range in
    that objective is 0. Terms are summed over objectives (Deb et al. 2002;
    pymoo's ``calc_crowding_distance`` returns this divided by ``m``).
    Fronts of one or two points are infinite; invalid points get 0, rows
    holding NaN get NaN.

    Each objective's order within the fronts is one pairwise count on the key
    ``(rank, value, index)``; the neighbours, the front's first and last
    values are then gathers at that position +-1 and at the front's ends.

    Returns:
        ``f[n]`` in the dtype of ``p``.
    """
    n, m = p.shape
    inf = jnp.asarray(jnp.inf, p.dtype)
    group = jnp.where(valid, rank, n).astype(jnp.int32)
    size = jnp.zeros(n + 1, jnp.int32).at[group].add(1)
    first_of = lax.associative_scan(jnp.add, size) - size  # exclusive prefix
    start, count = first_of[group], size[group]
    end = start + count - 1
    f = p.T  # [m, n]
    pos = stable_rank(f, group)  # [m, n]
    order = jax.vmap(inverse_permutation)(pos)
    sorted_f = jnp.take_along_axis(f, order, axis=1)

    def at(c):
        return jnp.take_along_axis(sorted_f, jnp.clip(c, 0, n - 1), axis=1)

    span = at(jnp.broadcast_to(end, (m, n))) - at(jnp.broadcast_to(start, (m, n)))
    edge = (pos == start) | (pos == end)
    gap = at(pos + 1) - at(pos - 1)
    term = jnp.where(edge, inf, gap / jnp.where(span > 0, span, 1))
    total = jnp.sum(jnp.where(span > 0, term, 0), axis=0)
    total = jnp.where(count <= 2, inf, total)
    total = jnp.where(jnp.any(jnp.isnan(p), axis=1), jnp.nan, total)
    return jnp.where(valid, total, 0).astype(p.dtype)


def select_best(
    rank: jax.Array, crowd: jax.Array, valid: jax.Array, k: int
) -> tuple[jax.Array, jax.Array]:
    """The ``k`` best points by (rank ascending, crowding descending, index).

    Returns:
        ``(indices: int32[k], selected: bool[n])``, indices best first.
    """
    n = rank.shape[0]
    i = jnp.arange(n, dtype=jnp.int32)
    rank = jnp.where(valid, rank, n)

    def count(blocks, j, ok):
        rj, cj = blocks
        ri, ci = rank[:, None], crowd[:, None]
        rj, cj = rj[None, :], cj[None, :]
        tie = (cj == ci) & (j[None, :] < i[:, None])
        better = (rj < ri) | ((rj == ri) & ((cj > ci) | tie))
        return jnp.sum(better & ok, axis=-1, dtype=jnp.int32)

    position = fold_columns(count, [rank, crowd], jnp.zeros(n, jnp.int32), jnp.add)
    indices = jnp.zeros(k, jnp.int32).at[position].set(i, mode="drop")
    return indices, position < k


def _relation(p, valid, violation, eps, constrained: bool) -> Relation:
    if constrained:
        return cdp_relation(p, violation, valid, eps)
    return pareto_relation(p, valid)


def is_nondominated(p: jax.Array, valid: jax.Array) -> jax.Array:
    """``bool[n]``: valid points that no valid point dominates (NaN rows: no)."""
    valid = valid & ~jnp.any(jnp.isnan(p), axis=1)
    beaten_by = pack_relation(pareto_relation(p, valid), p.shape[0])
    return nondominated(beaten_by, valid)


def ranks(
    p: jax.Array,
    valid: jax.Array,
    violation: jax.Array,
    eps: jax.Array,
    *,
    constrained: bool,
) -> jax.Array:
    """Front index per point under Pareto (or constrained) domination.

    Rows holding NaN are treated as invalid (rank ``n``).
    """
    valid = valid & ~jnp.any(jnp.isnan(p), axis=1)
    relation = _relation(p, valid, violation, eps, constrained)
    return peel_fronts(pack_relation(relation, p.shape[0]), valid)


def select(
    p: jax.Array,
    valid: jax.Array,
    violation: jax.Array,
    eps: jax.Array,
    *,
    k: int,
    constrained: bool,
) -> tuple[jax.Array, jax.Array]:
    """NSGA-II environmental selection of ``k`` points: ranks, crowding, cut."""
    valid = valid & ~jnp.any(jnp.isnan(p), axis=1)
    rank = ranks(p, valid, violation, eps, constrained=constrained)
    return select_best(rank, crowding(p, rank, valid), valid, k)
