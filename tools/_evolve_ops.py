"""Variation operators on index lists, for one user's population.

Populations are ``i32[N, k]`` canonical lists (see
:mod:`agenticrec.tools._evolve_problem`) whose slots are ordered: the
exploitation agent owns slots ``[0, n_exploit)`` and the exploration agent
the rest, each best first by (front, crowding) after every selection. That
order is what makes *pbest* ("one of the best 10%") a slot range and a binary
tournament the smaller of two slot numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from agenticrec.tools._evolve_problem import Problem, canonical, constraint_values

__all__ = ["Operators", "greedy_repair", "n_uniforms", "repair", "variation"]


class Operators(NamedTuple):
    """Variation settings (static: a change recompiles)."""

    scheme: str = "dual"
    """``"dual"``: DE/pbest/1 for the exploitation slots, DE/rand/1 for the
    exploration slots; ``"nsga2"``: binary tournament, uniform crossover."""
    crossover: float = 0.9
    """Per-position probability of taking the donor (DE ``CR``); for
    ``nsga2``, the probability that a child is a crossover at all."""
    scale: float = 0.5
    """DE ``F``: probability that a position where ``r1`` holds an item
    ``r2`` lacks moves to that item (the list analogue of ``F (x_r1 -
    x_r2)``)."""
    pbest: float = 0.1
    """Share of the exploitation agent the DE base is drawn from."""
    mutation: float = 0.1
    """Per-position probability of a uniformly random candidate."""
    explore_factor: float = 2.0
    """Exploration mutation rate = ``mutation * explore_factor``."""


def duplicates(x: jax.Array) -> jax.Array:
    """``bool[k]``: entries equal to an earlier entry."""
    k = x.shape[-1]
    earlier = jnp.tril(jnp.ones((k, k), bool), -1)
    return jnp.any((x[:, None] == x[None, :]) & earlier, axis=1)


def repair(u: jax.Array, x: jax.Array, n_cand: jax.Array) -> jax.Array:
    """``k`` distinct candidates in canonical order.

    Each repeated entry is first redrawn uniformly from ``[0, n_cand)`` with
    the uniforms ``u: f32[k]``; entries still repeated then take the
    smallest unused indices (there are always enough below ``min(2k,
    n_cand)`` when ``n_cand >= k``).
    """
    k = x.shape[-1]
    dup = duplicates(x)
    x = jnp.where(dup, _index(u, n_cand), x)
    dup = duplicates(x)
    v = jnp.arange(2 * k, dtype=x.dtype)
    used = jnp.any((x[:, None] == v[None, :]) & ~dup[:, None], axis=0)
    free = (v < n_cand) & ~used
    free_rank = jnp.cumsum(free) - 1
    dup_rank = jnp.cumsum(dup) - 1
    match = free[None, :] & (free_rank[None, :] == dup_rank[:, None])
    fill = jnp.sum(jnp.where(match, v[None, :], 0), axis=1).astype(x.dtype)
    return canonical(jnp.where(dup, fill, x))


def _index(u: jax.Array, size: jax.Array) -> jax.Array:
    """Uniform integers in ``[0, size)`` from uniforms in ``[0, 1)``."""
    return jnp.minimum(jnp.floor(u * size).astype(jnp.int32), size - 1)


N_SCALARS = 6
"""Uniforms per slot besides the ``5 k`` per-position ones."""


def n_uniforms(k: int) -> int:
    """Uniforms :func:`variation` consumes per slot (one draw per generation:
    a single ``jax.random.uniform`` call compiles and runs far faster on CPU
    than a dozen small ones)."""
    return N_SCALARS + 5 * k


def variation(
    u: jax.Array,
    lists: jax.Array,
    n_exploit: jax.Array,
    n_cand: jax.Array,
    ops: Operators,
) -> jax.Array:
    """One offspring per slot, owned by the slot's agent: ``i32[N, k]``.

    ``dual``: the exploitation slot ``i`` builds a donor from a base drawn
    from the best ``pbest`` share of its agent (DE/pbest/1) or, for an
    exploration slot, from any member of its agent (DE/rand/1); at each
    position where ``r1`` holds an item that ``r2`` lacks, the donor takes
    ``r1``'s item with probability ``scale``. The trial takes the donor's
    item with probability ``crossover`` per position (one position always),
    keeps the slot's own otherwise. ``nsga2``: parents by binary tournament
    on the slot order, uniform crossover with probability ``crossover``.
    Then per-position mutation (doubled for exploration) and :func:`repair`.

    Args:
        u: ``f32[N, n_uniforms(k)]`` uniforms in ``[0, 1)``.
        lists: ``i32[N, k]`` the population, laid out by agent.
        n_exploit: exploitation slots.
        n_cand: real candidates.
        ops: settings.
    """
    n, k = lists.shape
    s, pos = u[:, :N_SCALARS], u[:, N_SCALARS:].reshape(n, 5, k)
    slot = jnp.arange(n, dtype=jnp.int32)
    explore = slot >= n_exploit
    if ops.scheme == "dual":
        lo = jnp.where(explore, n_exploit, 0)
        size = jnp.maximum(jnp.where(explore, n - n_exploit, n_exploit), 1)
        top = jnp.maximum(1, jnp.ceil(ops.pbest * n_exploit).astype(jnp.int32))
        base = jnp.where(explore, lo + _index(s[:, 0], size), _index(s[:, 0], top))
        r1, r2 = lo + _index(s[:, 1], size), lo + _index(s[:, 2], size)
        b, x1, x2 = lists[base], lists[r1], lists[r2]
        diff = ~jnp.any(x1[:, :, None] == x2[:, None, :], axis=2)
        donor = jnp.where(diff & (pos[:, 0] < ops.scale), x1, b)
        forced = _index(s[:, 3], k)[:, None]
        take = (pos[:, 1] < ops.crossover) | (jnp.arange(k) == forced)
        trial = jnp.where(take, donor, lists)
        rate = jnp.where(explore, ops.mutation * ops.explore_factor, ops.mutation)
    elif ops.scheme == "nsga2":
        a = _index(s[:, :4], n)
        p1 = lists[jnp.minimum(a[:, 0], a[:, 1])]
        p2 = lists[jnp.minimum(a[:, 2], a[:, 3])]
        cross = (s[:, 4] < ops.crossover)[:, None]
        trial = jnp.where(cross & (pos[:, 1] < 0.5), p2, p1)
        rate = jnp.full(n, ops.mutation)
    else:  # pragma: no cover - validated by EvolveConfig
        raise ValueError(f"unknown variation scheme {ops.scheme!r}")
    mutate = pos[:, 2] < rate[:, None]
    trial = jnp.where(mutate, _index(pos[:, 3], n_cand), trial)
    return jax.vmap(repair, in_axes=(0, 0, None))(pos[:, 4], trial, n_cand)


def _first_true(b: jax.Array, count: int) -> jax.Array:
    """Indices of the first ``count`` true entries of ``b: bool[M]`` (-1 when
    fewer)."""
    rank = jnp.cumsum(b)
    out = []
    for r in range(count):
        hit = b & (rank == r + 1)
        out.append(jnp.where(jnp.any(hit), jnp.argmax(hit), -1))
    return jnp.stack(out).astype(jnp.int32)


def _helpful(p: Problem, x: jax.Array, per_constraint: int) -> jax.Array:
    """Candidates whose entry could lower a violation, best score first:
    per category bit the best candidate carrying it, per value constraint
    the best candidates bringing a new value, per share constraint the best
    flagged ones, and the two best candidates overall. ``-1`` pads."""
    m = p.score.shape[0]
    idx = jnp.arange(m)
    free = (idx < p.n_cand) & ~jnp.any(idx[:, None] == x[None, :], axis=1)
    out = [_first_true(free, 2)]
    for c, kind in enumerate(p.kinds):
        a = p.attr[:, c]
        if kind == "max_gini":
            bits = jnp.arange(p.n_bits, dtype=jnp.int32)
            has = ((a[:, None] >> bits) & 1).astype(bool) & free[:, None]
            first = jnp.argmax(has, axis=0)
            out.append(jnp.where(jnp.any(has, axis=0), first, -1).astype(jnp.int32))
        elif kind == "min_distinct_share":
            new = free & (a >= 0) & ~jnp.any(a[:, None] == a[x][None, :], axis=1)
            out.append(_first_true(new, per_constraint))
        else:
            out.append(_first_true(free & (a > 0), per_constraint))
    return jnp.concatenate(out)


def greedy_repair(
    p: Problem, steps: int, start: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """A constraint-repairing local search from the base top-``k`` list
    (or from ``start``, a canonical ``i32[k]`` list).

    Each step tries every swap of one list position for one of the
    :func:`_helpful` candidates and keeps the swap with the smallest total
    violation (ties: the smallest loss of predicted score) if it lowers the
    violation; it stops once the list is feasible or no swap helps. A
    feasible result proves the user's constraints satisfiable; an infeasible
    one proves nothing (the search is greedy).

    Returns:
        ``(list i32[k], violation f32[])``.
    """
    k = p.k

    def viol(x):
        return jnp.sum(jnp.maximum(constraint_values(p, x), 0.0))

    def step(_, carry):
        x, v = carry
        q = _helpful(p, x, per_constraint=4)
        pos = jnp.arange(k)
        tried = jnp.where(
            pos[None, :, None] == pos[None, None, :], q[:, None, None], x[None, None, :]
        )  # [Q, k(pos), k]
        tried = tried.reshape(-1, k)
        ok = jnp.repeat(q >= 0, k)
        canon = jax.vmap(canonical)(jnp.where(ok[:, None], tried, x[None, :]))
        vs = jax.vmap(viol)(canon)
        loss = jnp.sum(p.score[x]) - jax.vmap(lambda y: jnp.sum(p.score[y]))(canon)
        key = jnp.where(ok, vs + 1e-4 * loss, jnp.inf)
        best = jnp.argmin(key)
        better = ok[best] & (vs[best] < v) & (v > 0)
        return jnp.where(better, canon[best], x), jnp.where(better, vs[best], v)

    x0 = jnp.arange(k, dtype=jnp.int32) if start is None else start.astype(jnp.int32)
    return jax.lax.fori_loop(0, steps, step, (x0, viol(x0)))
