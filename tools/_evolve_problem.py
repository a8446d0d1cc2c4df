"""The re-ranking problem as a pytree, and the objectives of one list.

A solution is a list of ``k`` distinct candidate indices kept in **canonical
order**: ascending index. Candidates are sorted by predicted score, best
first, so ascending index is descending score, which is the order that
maximises the DCG-weighted relevance of a given set (rearrangement
inequality); diversity, novelty and every constraint are set functions. A
list is therefore a set, and nothing is lost by sorting it.

Objectives (all maximised, each in ``[0, 1]``):

- relevance ``DCG / IDCG``: ``sum_j s(x_j) / log2(j + 2)`` over the list in
  canonical order, divided by the same sum over the top-``k`` candidates;
  ``s`` is the predicted score divided by the user's best score.
- diversity: intra-list distance, the mean over pairs of ``1 - cos(e_a,
  e_b)``, halved so that it lies in ``[0, 1]``. With unit embeddings the sum
  of pairwise cosines is ``(|sum e|^2 - sum |e|^2) / 2``: ``O(k d)`` per list.
- novelty: mean self-information ``-log2(pop_i / sum pop)`` divided by its
  largest possible value ``log2(sum pop)`` (an item seen once).

Constraints ``g <= 0`` (feasible), one per :data:`KINDS` entry, in share
units so that violations of different kinds add up comparably:

- ``max_gini``: Gini of the per-category counts of the list over the
  categories present among the user's candidates (``universe`` bitmask),
  minus the threshold minus :data:`GINI_TOL`; a list none of whose items
  has a category counts as Gini 1, an empty universe as Gini 0.
- ``min_distinct_share``: ``(need - distinct values) / k``; unknown values
  (code ``-1``) never count.
- ``min_share``: ``(need - flagged items) / k``.

``need`` is the integer count the share threshold demands,
``ceil(threshold * k)``, so the share constraints are exact in float32.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

__all__ = [
    "GINI_TOL",
    "KINDS",
    "N_OBJECTIVES",
    "Problem",
    "canonical",
    "constraint_values",
    "evaluate",
    "objectives",
]

KINDS = ("max_gini", "min_distinct_share", "min_share")
N_OBJECTIVES = 3
GINI_TOL = 1e-6
"""Float32 slack of the Gini test: a list whose Gini equals the threshold in
exact arithmetic must not fail by one rounding step."""


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "score",
        "emb",
        "novelty",
        "attr",
        "bound",
        "universe",
        "n_cand",
        "idcg",
    ],
    meta_fields=["kinds", "k", "n_bits"],
)
@dataclasses.dataclass(frozen=True)
class Problem:
    """Every user's candidates and attributes, leading axis ``U`` (users).

    Build it with :func:`agenticrec.tools.evolve.make_problem`, which checks
    the inputs. Inside the per-user kernels the same class holds one user's
    slice (no leading axis).

    Attributes:
        score: ``f32[U, M]`` predicted scores divided by the user's best,
            non-increasing along ``M``; 0 on padding.
        emb: ``f32[U, M, d]`` unit item embeddings (zero rows for items
            without one and for padding).
        novelty: ``f32[U, M]`` normalised self-information in ``[0, 1]``.
        attr: ``i32[U, M, C]`` per-constraint attribute code of each
            candidate: a category bitmask (``max_gini``), a value id or -1
            (``min_distinct_share``), 0/1 (``min_share``).
        bound: ``f32[U, C]`` the Gini threshold, or the count ``need``.
        universe: ``i32[U, C]`` bitmask of the categories present among the
            user's candidates (``max_gini``; 0 otherwise).
        n_cand: ``i32[U]`` real candidates (``k <= n_cand <= M``); the rest
            is padding that no list may hold.
        idcg: ``f32[U]`` DCG of the top-``k`` candidates.
        kinds: constraint kind per column of ``attr`` (static).
        k: list length (static).
        n_bits: categories used by ``max_gini`` bitmasks, at most 32 (static).
    """

    score: jax.Array
    emb: jax.Array
    novelty: jax.Array
    attr: jax.Array
    bound: jax.Array
    universe: jax.Array
    n_cand: jax.Array
    idcg: jax.Array
    kinds: tuple[str, ...]
    k: int
    n_bits: int

    @property
    def n_users(self) -> int:
        return int(self.score.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.score.shape[-1])

    @property
    def n_constraints(self) -> int:
        return len(self.kinds)


def dcg_weights(k: int) -> jax.Array:
    """``f32[k]``: ``1 / log2(j + 2)``."""
    return 1.0 / jnp.log2(jnp.arange(k, dtype=jnp.float32) + 2.0)


def canonical(x: jax.Array) -> jax.Array:
    """``x: i32[k]`` distinct indices in ascending order (no sort: counting)."""
    k = x.shape[-1]
    pos = jnp.sum(x[None, :] < x[:, None], axis=1)
    return jnp.zeros(k, x.dtype).at[pos].set(x)


def objectives(p: Problem, x: jax.Array) -> jax.Array:
    """``f32[3]``: relevance, diversity, novelty of one canonical list."""
    k = x.shape[-1]
    rel = jnp.sum(p.score[x] * dcg_weights(k)) / p.idcg
    e = p.emb[x]
    tot = jnp.sum(e, axis=0)
    sq = jnp.sum(e * e)
    pairs = k * (k - 1) / 2
    mean_cos = 0.5 * (jnp.dot(tot, tot) - sq) / pairs
    div = jnp.clip(0.5 * (1.0 - mean_cos), 0.0, 1.0)
    nov = jnp.mean(p.novelty[x])
    return jnp.stack([rel, div, nov])


def _gini(codes: jax.Array, universe: jax.Array, n_bits: int) -> jax.Array:
    bits = jnp.arange(n_bits, dtype=jnp.int32)
    counts = jnp.sum((codes[:, None] >> bits) & 1, axis=0).astype(jnp.float32)
    inside = ((universe >> bits) & 1).astype(jnp.float32)
    g = jnp.sum(inside)
    total = jnp.sum(counts * inside)
    mad = jnp.sum(
        inside[:, None] * inside[None, :] * jnp.abs(counts[:, None] - counts[None, :])
    )
    gini = mad / jnp.maximum(2.0 * g * total, 1.0)
    return jnp.where(g == 0, 0.0, jnp.where(total == 0, 1.0, gini))


def _distinct(codes: jax.Array) -> jax.Array:
    k = codes.shape[0]
    earlier = jnp.tril(jnp.ones((k, k), bool), -1)
    seen = jnp.any((codes[:, None] == codes[None, :]) & earlier, axis=1)
    return jnp.sum((codes >= 0) & ~seen).astype(jnp.float32)


def constraint_values(p: Problem, x: jax.Array) -> jax.Array:
    """``f32[C]`` constraint values ``g`` of one list (feasible when ``<= 0``)."""
    k = x.shape[-1]
    a = p.attr[x]  # [k, C]
    out = []
    for c, kind in enumerate(p.kinds):
        if kind == "max_gini":
            out.append(_gini(a[:, c], p.universe[c], p.n_bits) - p.bound[c] - GINI_TOL)
        elif kind == "min_distinct_share":
            out.append((p.bound[c] - _distinct(a[:, c])) / k)
        else:
            out.append((p.bound[c] - jnp.sum(a[:, c]).astype(jnp.float32)) / k)
    if not out:
        return jnp.zeros((0,), jnp.float32)
    return jnp.stack(out)


def evaluate(p: Problem, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Objectives ``f32[3]`` and total violation ``f32[]`` of one list."""
    g = constraint_values(p, x)
    return objectives(p, x), jnp.sum(jnp.maximum(g, 0.0))
