"""Environmental selection of both agents in one pass, elite transfer, epsilon.

Both agents select from one pool (parents and offspring of one user) with a
single relation: ``i`` beats ``j`` only when both belong to the same agent,
by constrained domination with tolerance ``eps`` (exploitation) or plain
Pareto dominance (exploration). The fronts of the two agents never mix, so
one peel of the packed relation of the Pareto core ranks both, and each
agent keeps its best ``quota`` points by (front, crowding). One relation of
``2N`` points costs what single-population NSGA-II costs.

Exact duplicates (equal objectives and violation) are ordered by index
inside the relation, so the later copies fall to later fronts and a
population does not fill with clones. The relation stays a strict partial
order (irreflexive, transitive), which front peeling needs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agenticrec.tools import _pareto_dominance as dom
from agenticrec.tools._pareto_pairwise import fold_columns

__all__ = ["epsilon", "select", "transfer"]


def _relation(f: jax.Array, viol: jax.Array, explore: jax.Array, eps: jax.Array):
    """``beats(i) -> bool[len(i), P]`` for minimised ``f: f32[P, m]``."""
    p = f.shape[0]
    feasible = viol <= eps
    every = jnp.arange(p, dtype=jnp.int32)

    def beats(i):
        fi = f[i]
        le = lt = eq = None
        for c in range(f.shape[1]):
            a, b = fi[:, c, None], f[None, :, c]
            le = (a <= b) if le is None else le & (a <= b)
            lt = (a < b) if lt is None else lt | (a < b)
            eq = (a == b) if eq is None else eq & (a == b)
        vi, vj = viol[i][:, None], viol[None, :]
        dup = eq & (vi == vj) & (i[:, None] < every[None, :])
        better = (le & lt) | dup
        pi, pj = feasible[i][:, None], feasible[None, :]
        cdp = (pi & ~pj) | (pi & pj & better) | (~pi & ~pj & ((vi < vj) | dup))
        ei, ej = explore[i][:, None], explore[None, :]
        return (ei == ej) & jnp.where(ei, better, cdp)

    return beats


def _positions(group: jax.Array, crowd: jax.Array) -> jax.Array:
    """Rank of every point by (group, -crowding, index): ``int32[P]``."""
    p = group.shape[0]
    i = jnp.arange(p, dtype=jnp.int32)

    def count(blocks, j, ok):
        gj, cj = blocks
        gi, ci = group[:, None], crowd[:, None]
        gj, cj = gj[None, :], cj[None, :]
        tie = (cj == ci) & (j[None, :] < i[:, None])
        before = (gj < gi) | ((gj == gi) & ((cj > ci) | tie))
        return jnp.sum(before & ok, axis=-1, dtype=jnp.int32)

    return fold_columns(count, [group, crowd], jnp.zeros(p, jnp.int32), jnp.add)


def select(
    obj: jax.Array,
    viol: jax.Array,
    explore: jax.Array,
    n_exploit: jax.Array,
    n: int,
    eps: jax.Array,
) -> jax.Array:
    """Survivors of one user's pool, laid out for the next generation.

    Args:
        obj: ``f32[P, m]`` maximised objectives of the pool.
        viol: ``f32[P]`` total violations.
        explore: ``bool[P]`` the agent of each point.
        n_exploit: exploitation quota; the exploration quota is
            ``n - n_exploit``. Each agent must hold at least its quota.
        n: population size (static).
        eps: tolerance of the exploitation agent's constrained domination.

    Returns:
        ``int32[n]``: pool index of each new slot: the exploitation survivors
        best first, then the exploration survivors best first.
    """
    p = obj.shape[0]
    f = -obj
    valid = jnp.ones(p, bool)
    beaten_by = dom.pack_relation(_relation(f, viol, explore, eps), p)
    rank = dom.peel_fronts(beaten_by, valid)
    last_exploit = jnp.max(jnp.where(explore, -1, rank))
    group = jnp.where(explore, rank + last_exploit + 1, rank)
    crowd = dom.crowding(f, group, valid)
    pos = _positions(group, crowd)
    n_pool_exploit = jnp.sum(~explore)
    dest = jnp.where(explore, pos - n_pool_exploit + n_exploit, pos)
    keep = jnp.where(explore, pos - n_pool_exploit < n - n_exploit, pos < n_exploit)
    src = jnp.zeros(n, jnp.int32)
    return src.at[jnp.where(keep, dest, n)].set(
        jnp.arange(p, dtype=jnp.int32), mode="drop"
    )


def transfer(
    n: int, n_exploit: jax.Array, share: float, copy: bool = False
) -> jax.Array:
    """Slot map of the bidirectional elite exchange: ``int32[n]`` source slot.

    Each agent's elites are its first slots (front 0, largest crowding
    distance first, boundary points included); ``max(1, floor(share *
    smaller agent))`` of them change agent both ways at once: a swap, so
    no solution is duplicated and none is lost. With ``copy`` each agent
    keeps its elites and the other agent's elites overwrite its *last*
    slots instead (its worst): no agent gives up a boundary point, at the
    price of duplicates. Nothing moves while an agent is empty.
    """
    n_explore = n - n_exploit
    t_max = max(1, int(-(-share * n // 1)))
    count = jnp.maximum(1, jnp.floor(share * jnp.minimum(n_exploit, n_explore)))
    count = jnp.where((n_exploit > 0) & (n_explore > 0), count, 0).astype(jnp.int32)
    j = jnp.arange(t_max, dtype=jnp.int32)
    ok = j < count
    src = jnp.arange(n, dtype=jnp.int32)
    if copy:
        src = src.at[jnp.where(ok, n_exploit - 1 - j, n)].set(
            n_exploit + j, mode="drop"
        )
        return src.at[jnp.where(ok, n - 1 - j, n)].set(j, mode="drop")
    src = src.at[jnp.where(ok, j, n)].set(n_exploit + j, mode="drop")
    return src.at[jnp.where(ok, n_exploit + j, n)].set(j, mode="drop")


def epsilon(
    eps0: jax.Array, t: jax.Array, total: jax.Array, gamma: float, strict: float
) -> jax.Array:
    """``eps0 * gamma ** (t / total)``, and exactly 0 for the last
    ``max(1, round(strict * total))`` generations."""
    tf = t.astype(jnp.float32)
    n_strict = jnp.maximum(1.0, jnp.round(strict * total))
    e = eps0 * jnp.power(gamma, tf / total)
    return jnp.where(tf >= total - n_strict, 0.0, e)
