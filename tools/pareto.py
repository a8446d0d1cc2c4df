"""Pareto tools as pure JAX kernels: ranks, crowding, CDP, exact hypervolume.

Every objective is **minimised** (as in moocore); negate maximised columns
once with :func:`to_minimization`. Every function takes one set, ``points:
f[n, m]``, or many, ``f[*batch, n, m]``, with an optional ``mask: bool[*batch,
n]`` that marks the real rows of padded or ragged sets. All of them run under
``jax.jit`` and ``jax.vmap`` on traced arrays, on CPU and GPU alike; shapes
are checked at trace time, values (NaN) only on concrete arrays.

Dtypes: float32 and float64 inputs compute and return in their own dtype
(float64 needs ``jax_enable_x64``); float16/bfloat16 are promoted to float32;
integers give the default float. Ranks and indices are int32.

Only :func:`hypervolume` ever leaves JAX: called outside any transformation
on host arrays, it may hand the work to moocore (see its docstring).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from agenticrec.errors import ConfigError
from agenticrec.tools import _pareto_dominance as _dom
from agenticrec.tools import _pareto_hv as _hv
from agenticrec.tools._pareto_checks import (
    check_points_shape,
    float_dtype,
    host_view,
    prepare_mask,
    prepare_points,
    prepare_ref,
    reject_nan,
)

__all__ = [
    "MAX_EXACT_WORK",
    "MOOCORE_MIN_POINTS",
    "HypervolumeEstimate",
    "Selection",
    "constraint_dominates",
    "crowding_distance",
    "dominates",
    "hypervolume",
    "hypervolume_contributions",
    "hypervolume_mc",
    "is_nondominated",
    "nondominated_ranks",
    "select_by_rank_and_crowding",
    "to_minimization",
    "total_violation",
]

MAX_EXACT_WORK = _hv.MAX_EXACT_WORK

# ``backend="auto"`` hands a concrete host call to moocore from this many
# points per set (where the O(n^2) JAX sweep falls behind moocore's
# O(n log n) one), or when there are few sets, or four or more objectives.
MOOCORE_MIN_POINTS = 256
_MOOCORE_MAX_SETS = 8


class Selection(NamedTuple):
    """Result of :func:`select_by_rank_and_crowding`."""

    indices: jax.Array
    """``int32[*batch, k]``: the chosen points, best first."""
    selected: jax.Array
    """``bool[*batch, n]``: whether each point is among the chosen."""


class HypervolumeEstimate(NamedTuple):
    """A Monte-Carlo hypervolume estimate; never exact."""

    value: jax.Array
    """``f[*batch]``: the estimate."""
    stderr: jax.Array
    """``f[*batch]``: its standard error (binomial, from the hit fraction)."""
    n_samples: int
    """Samples drawn per set."""


# --------------------------------------------------------------- dominance


def to_minimization(points: Any, maximize: bool | tuple[bool, ...]) -> jax.Array:
    """Negate the maximised objectives so that every kernel can minimise.

    Args:
        points: ``f[..., m]``; a reference point works too.
        maximize: one flag for all objectives or one per objective.

    Returns:
        ``f[..., m]`` with maximised columns negated.
    """
    x = jnp.asarray(points)
    flags = np.broadcast_to(np.asarray(maximize, dtype=bool), x.shape[-1:])
    sign = np.where(flags, -1, 1).astype(float_dtype(x))
    return x * sign


def dominates(
    a: Any, b: Any, *, maximize: bool | tuple[bool, ...] | None = None
) -> jax.Array:
    """Whether ``a`` Pareto-dominates ``b``: no worse anywhere, better somewhere.

    Args:
        a: ``f[..., m]``.
        b: ``f[..., m]``, broadcast against ``a``.
        maximize: objectives to maximise (default: minimise all).

    Returns:
        ``bool[...]``.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if maximize is not None:
        a, b = to_minimization(a, maximize), to_minimization(b, maximize)
    return jnp.all(a <= b, axis=-1) & jnp.any(a < b, axis=-1)


def total_violation(constraints: Any) -> jax.Array:
    """Total constraint violation ``sum(max(g, 0))`` of ``g(x) <= 0`` constraints.

    Args:
        constraints: ``f[..., c]`` constraint values, feasible when ``<= 0``.

    Returns:
        ``f[...]``, 0 for feasible points.
    """
    g = jnp.asarray(constraints)
    return jnp.sum(jnp.maximum(g, 0), axis=-1).astype(float_dtype(g))


def constraint_dominates(
    a_obj: Any, a_violation: Any, b_obj: Any, b_violation: Any, eps: Any = 0.0
) -> jax.Array:
    """Deb's constrained domination (CDP): whether ``a`` beats ``b``.

    A solution whose total violation is at most ``eps`` counts as feasible.
    Feasible beats infeasible; between two feasible solutions Pareto
    dominance decides; between two infeasible ones the smaller total
    violation wins (equal violations: neither).

    Args:
        a_obj, b_obj: ``f[..., m]`` objectives, minimised.
        a_violation, b_violation: ``f[...]`` total violations (``>= 0``;
            see :func:`total_violation`).
        eps: tolerance, scalar or broadcastable to ``[...]``.

    Returns:
        ``bool[...]`` (all arguments broadcast together).
    """
    va, vb = jnp.asarray(a_violation), jnp.asarray(b_violation)
    fa, fb = va <= eps, vb <= eps
    pareto = dominates(a_obj, b_obj)
    return (fa & ~fb) | (fa & fb & pareto) | (~fa & ~fb & (va < vb))


def _flatten(x: jax.Array, trailing: int) -> jax.Array:
    return x.reshape((-1,) + x.shape[x.ndim - trailing :])


@functools.partial(jax.jit, static_argnums=0, static_argnames="options")
def _run(kernel, *args, options: tuple[tuple[str, Any], ...] = ()):
    """``kernel`` over a flattened batch: ``vmap``-ed, or plain for one set.

    A single set skips ``vmap``: a ``vmap``-ed ``lax.scan`` over one long set
    runs several times slower on CPU than the plain one.
    """
    f = functools.partial(kernel, **dict(options))
    if args[0].shape[0] == 1:
        out = f(*(a[0] for a in args))
        return jax.tree.map(lambda x: x[None], out)
    return jax.vmap(f)(*args)


def _prepare_set(points: Any, mask: Any) -> tuple[jax.Array, jax.Array]:
    p = prepare_points(points)
    valid = prepare_mask(mask, p.shape[:-1])
    reject_nan(p, valid)
    return p, valid


def _batch_eps(eps: Any, valid: jax.Array, dtype) -> jax.Array:
    """``eps`` as one value per flattened set (scalar or ``f[*batch]``)."""
    e = jnp.asarray(eps, dtype)
    try:
        return jnp.broadcast_to(e, valid.shape[:-1]).reshape(-1)
    except ValueError:
        raise ConfigError(
            f"`eps` of shape {tuple(e.shape)} does not broadcast to the batch "
            f"shape {valid.shape[:-1]}"
        ) from None


def _prepare_violation(violation: Any, valid: jax.Array, dtype) -> jax.Array:
    v = jnp.asarray(violation, dtype=dtype)
    try:
        v = jnp.broadcast_to(v, valid.shape)
    except ValueError:
        raise ConfigError(
            f"`violation` of shape {tuple(v.shape)} does not broadcast to "
            f"(*batch, n_points) = {valid.shape}; pass one total per point"
        ) from None
    reject_nan(v, valid, "violation", trailing=0)
    return v


def is_nondominated(points: Any, mask: Any = None) -> jax.Array:
    """Which points no other valid point dominates (duplicates all count).

    Args:
        points: ``f[*batch, n, m]``, minimised.
        mask: ``bool[*batch, n]`` of real rows, or ``None``.

    Returns:
        ``bool[*batch, n]``; ``False`` for masked rows.
    """
    p, valid = _prepare_set(points, mask)
    if p.size == 0:
        return jnp.zeros(valid.shape, bool)
    out = _run(_dom.is_nondominated, _flatten(p, 2), _flatten(valid, 1))
    return out.reshape(valid.shape)


def nondominated_ranks(
    points: Any, mask: Any = None, *, violation: Any = None, eps: Any = 0.0
) -> jax.Array:
    """Non-dominated sorting: the front index of every point (all fronts).

    Rank 0 is the non-dominated front, rank 1 what is non-dominated once rank
    0 is removed, and so on (moocore's ``pareto_rank``). Duplicates share a
    rank. ``O(n^2 m)`` comparisons plus one pass per front; no sort.

    Args:
        points: ``f[*batch, n, m]``, minimised.
        mask: ``bool[*batch, n]`` of real rows, or ``None``.
        violation: optional ``f[*batch, n]`` total constraint violations;
            when given, ranks follow constrained domination
            (:func:`constraint_dominates`) with tolerance ``eps``: feasible
            fronts first, then infeasible points by increasing violation.
        eps: violations ``<= eps`` count as feasible.

    Returns:
        ``int32[*batch, n]``; masked rows get ``n`` so that they sort last
        (inside ``jit``, where NaN cannot raise, so do rows holding NaN).
    """
    p, valid = _prepare_set(points, mask)
    if p.size == 0:
        return jnp.zeros(valid.shape, jnp.int32)
    constrained = violation is not None
    v = (
        _prepare_violation(violation, valid, p.dtype)
        if constrained
        else jnp.zeros(valid.shape, p.dtype)
    )
    out = _run(
        _dom.ranks,
        _flatten(p, 2),
        _flatten(valid, 1),
        _flatten(v, 1),
        _batch_eps(eps, valid, p.dtype),
        options=(("constrained", constrained),),
    )
    return out.reshape(valid.shape)


def crowding_distance(points: Any, ranks: Any, mask: Any = None) -> jax.Array:
    """NSGA-II crowding distance of every point within its front.

    Per objective, each point scores the gap between its two neighbours in
    its front divided by the front's range; the first and last points score
    infinity; an objective with zero range in a front adds 0. The scores are
    summed over objectives (pymoo's ``calc_crowding_distance`` is this
    divided by ``m``). Fronts of one or two points are infinite.

    Args:
        points: ``f[*batch, n, m]``.
        ranks: ``int[*batch, n]`` front indices, e.g. from
            :func:`nondominated_ranks`; any grouping works.
        mask: ``bool[*batch, n]`` of real rows, or ``None``.

    Returns:
        ``f[*batch, n]`` in the points' dtype; 0 for masked rows.
    """
    p, valid = _prepare_set(points, mask)
    r = jnp.asarray(ranks)
    if r.shape != valid.shape or not jnp.issubdtype(r.dtype, jnp.integer):
        raise ConfigError(
            f"`ranks` must be integers of shape {valid.shape}; got "
            f"{r.dtype}{list(r.shape)}"
        )
    if p.size == 0:
        return jnp.zeros(valid.shape, p.dtype)
    out = _run(_dom.crowding, _flatten(p, 2), _flatten(r, 1), _flatten(valid, 1))
    return out.reshape(valid.shape)


def select_by_rank_and_crowding(
    points: Any,
    k: int,
    mask: Any = None,
    *,
    violation: Any = None,
    eps: Any = 0.0,
) -> Selection:
    """NSGA-II environmental selection: the best ``k`` by (rank, -crowding).

    Whole fronts are taken in rank order; the front that does not fit is cut
    by decreasing crowding distance (ties by index). With ``violation``,
    ranks follow constrained domination (see :func:`nondominated_ranks`).

    Args:
        points: ``f[*batch, n, m]``, minimised.
        k: how many to keep, ``1 <= k <= n`` (static).
        mask: ``bool[*batch, n]`` of real rows, or ``None``. Masked rows come
            last; with fewer than ``k`` real rows some are chosen anyway.
        violation: optional ``f[*batch, n]`` total violations.
        eps: violations ``<= eps`` count as feasible.

    Returns:
        :class:`Selection` of ``indices: int32[*batch, k]`` (best first) and
        ``selected: bool[*batch, n]``.
    """
    p, valid = _prepare_set(points, mask)
    n = p.shape[-2]
    if not isinstance(k, int | np.integer) or not 1 <= k <= n:
        raise ConfigError(f"`k` must be an int in [1, n_points={n}]; got {k!r}")
    constrained = violation is not None
    v = (
        _prepare_violation(violation, valid, p.dtype)
        if constrained
        else jnp.zeros(valid.shape, p.dtype)
    )
    idx, sel = _run(
        _dom.select,
        _flatten(p, 2),
        _flatten(valid, 1),
        _flatten(v, 1),
        _batch_eps(eps, valid, p.dtype),
        options=(("k", int(k)), ("constrained", constrained)),
    )
    return Selection(idx.reshape(valid.shape[:-1] + (k,)), sel.reshape(valid.shape))


# ------------------------------------------------------------- hypervolume


def _moocore():
    try:
        import moocore
    except ImportError:
        return None
    return moocore


def _hypervolume_on_host(points: Any, ref: Any, mask: Any, backend: str):
    """moocore's hypervolume when ``backend`` and the inputs call for it.

    Returns ``None`` when the JAX kernel should run instead.
    """
    host_p, host_ref = host_view(points), host_view(ref)
    host_mask = None if mask is None else host_view(mask)
    mc = _moocore()
    on_host = host_p is not None and host_ref is not None
    if mc is None or not on_host or (mask is not None and host_mask is None):
        if backend == "moocore":
            raise ConfigError(
                "backend='moocore' needs moocore installed (pip install moocore) "
                "and concrete host arrays outside jit/vmap; use backend='jax' there"
            )
        return None
    p = check_points_shape(host_p)
    batch, (n, m) = p.shape[:-2], p.shape[-2:]
    many_small = n < MOOCORE_MIN_POINTS and math.prod(batch) > _MOOCORE_MAX_SETS
    if backend == "auto" and many_small and m <= 3:
        return None
    dtype = float_dtype(p, host_ref)
    r = np.asarray(host_ref, np.float64)
    if r.ndim == 0:
        r = np.full(m, r)
    if r.shape[-1] != m or not np.all(np.isfinite(r)):
        raise ConfigError(f"`ref` must be finite with {m} coordinate(s); got {r}")
    try:
        r = np.broadcast_to(r, batch + (m,)).reshape(-1, m)
        valid = np.broadcast_to(
            np.ones((), bool) if mask is None else host_mask, batch + (n,)
        )
    except ValueError:
        raise ConfigError(
            f"`ref`/`mask` do not broadcast to the points' batch shape {batch}"
        ) from None
    if valid.dtype != bool:
        raise ConfigError(f"`mask` must be boolean; got dtype {valid.dtype}")
    reject_nan(p, valid)
    flat = p.reshape(-1, n, m).astype(np.float64, copy=False)
    out = np.zeros(len(flat))
    for i, (pts, ri, vi) in enumerate(zip(flat, r, valid.reshape(-1, n), strict=True)):
        pts = pts if mask is None else pts[vi]  # moocore skips points beyond ri
        if len(pts):
            out[i] = mc.hypervolume(pts, ref=ri)
    return jnp.asarray(out.reshape(batch), dtype=dtype)


def hypervolume(
    points: Any,
    ref: Any,
    mask: Any = None,
    *,
    backend: Literal["auto", "jax", "moocore"] = "auto",
) -> jax.Array:
    """Exact hypervolume dominated by each set and bounded by ``ref``.

    Points not strictly better than ``ref`` in every objective add nothing;
    dominated points and duplicates are handled. For 1 to 3 objectives the
    JAX kernel is an ``O(n^2)`` sweep (no ``O(n^3)`` work). For ``m >= 4`` it
    is exact too, in ``O(n^(m-1))`` time: a set must satisfy ``n ** (m - 1)
    <= MAX_EXACT_WORK`` (2**28: m=4 up to 645 points, m=5 up to 128, m=6 up
    to 48); larger sets need moocore or :func:`hypervolume_mc`.

    Args:
        points: ``f[*batch, n, m]``, minimised.
        ref: ``f[m]`` or ``f[*batch, m]`` reference point (finite).
        mask: ``bool[*batch, n]`` of real rows, or ``None``.
        backend: ``"jax"`` always runs the JAX kernel; ``"moocore"`` runs
            moocore on concrete host inputs; ``"auto"`` uses moocore only
            when the call is outside any JAX transformation, the inputs are
            host arrays (NumPy, lists or JAX arrays on CPU), moocore is
            installed, and either a set has ``>= MOOCORE_MIN_POINTS`` points,
            there are at most 8 sets, or ``m >= 4``. Traced inputs always
            take the JAX kernel.

    Returns:
        ``f[*batch]`` in the computation dtype (moocore computes in float64
        and the result is cast to it). Inside ``jit``, a set with a NaN in a
        valid row yields NaN; outside, NaN raises :class:`ConfigError`.
    """
    if backend not in ("auto", "jax", "moocore"):
        raise ConfigError(
            f"`backend` must be 'auto', 'jax' or 'moocore'; got {backend!r}"
        )
    if backend != "jax":
        out = _hypervolume_on_host(points, ref, mask, backend)
        if out is not None:
            return out
    p = prepare_points(points)
    batch, (n, m) = p.shape[:-2], p.shape[-2:]
    r = prepare_ref(ref, batch + (m,), p.dtype)
    valid = prepare_mask(mask, batch + (n,))
    reject_nan(p, valid)
    if m >= 4 and _hv.exact_work(n, m) > MAX_EXACT_WORK:
        raise ConfigError(
            f"exact hypervolume in {m} objectives costs n**{m - 1} steps; "
            f"n={n} exceeds MAX_EXACT_WORK=2**28 (at most "
            f"{_hv.max_exact_points(m)} points). Use "
            "hypervolume_mc for an estimate, or call outside jit with moocore "
            "installed"
        )
    if p.size == 0 or n == 0:
        return jnp.zeros(batch, p.dtype)
    out = _run(_hv.hypervolume, _flatten(p, 2), _flatten(r, 1), _flatten(valid, 1))
    return out.reshape(batch)


def hypervolume_contributions(
    points: Any, ref: Any, mask: Any = None, *, ignore_dominated: bool = False
) -> jax.Array:
    """Exclusive hypervolume contribution of each point, for 2 or 3 objectives.

    The contribution of ``x`` is ``hypervolume(S) - hypervolume(S - {x})``
    (the basis of SMS-EMOA and HypE selection): zero for dominated points and
    for duplicates, and reduced where a dominated point would fill part of
    its dominator's region. ``ignore_dominated=True`` drops dominated points
    first, like moocore's default ``hv_contributions``. ``O(n^2)`` per set.

    Args:
        points: ``f[*batch, n, m]`` with ``m`` in {2, 3}, minimised.
        ref: ``f[m]`` or ``f[*batch, m]`` reference point (finite).
        mask: ``bool[*batch, n]`` of real rows, or ``None``.
        ignore_dominated: see above.

    Returns:
        ``f[*batch, n]``; 0 for masked rows.
    """
    p = prepare_points(points, min_objectives=2)
    batch, (n, m) = p.shape[:-2], p.shape[-2:]
    if m > 3:
        raise ConfigError(
            f"hypervolume_contributions supports 2 or 3 objectives; got {m}. "
            "Use moocore.hv_contributions for more"
        )
    r = prepare_ref(ref, batch + (m,), p.dtype)
    valid = prepare_mask(mask, batch + (n,))
    reject_nan(p, valid)
    if p.size == 0:
        return jnp.zeros(batch + (n,), p.dtype)
    out = _run(
        _hv.contributions,
        _flatten(p, 2),
        _flatten(r, 1),
        _flatten(valid, 1),
        options=(("ignore_dominated", bool(ignore_dominated)),),
    )
    return out.reshape(batch + (n,))


def hypervolume_mc(
    points: Any,
    ref: Any,
    key: jax.Array,
    mask: Any = None,
    *,
    n_samples: int = 65_536,
) -> HypervolumeEstimate:
    """Monte-Carlo hypervolume estimate with its standard error, any ``m``.

    Uniform samples in the box from the valid points' per-objective minimum
    to ``ref``; the estimate is the box volume times the dominated fraction.
    It is an estimate, never exact: report ``stderr`` with it. Cost
    ``O(n_samples * n * m)`` per set; each set of a batch draws from its own
    key (``jax.random.split(key, n_sets)``).

    Args:
        points: ``f[*batch, n, m]``, minimised.
        ref: ``f[m]`` or ``f[*batch, m]`` reference point (finite).
        key: a ``jax.random`` key.
        mask: ``bool[*batch, n]`` of real rows, or ``None``.
        n_samples: samples per set (static).

    Returns:
        :class:`HypervolumeEstimate`.
    """
    if not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ConfigError(f"`n_samples` must be a positive int; got {n_samples!r}")
    p = prepare_points(points)
    batch, (n, m) = p.shape[:-2], p.shape[-2:]
    r = prepare_ref(ref, batch + (m,), p.dtype)
    valid = prepare_mask(mask, batch + (n,))
    reject_nan(p, valid)
    if p.size == 0:
        zero = jnp.zeros(batch, p.dtype)
        return HypervolumeEstimate(zero, zero, int(n_samples))
    n_sets = math.prod(batch)
    keys = jax.random.split(key, n_sets)
    value, stderr = _run(
        _hv.hypervolume_mc,
        _flatten(p, 2),
        _flatten(r, 1),
        _flatten(valid, 1),
        keys,
        options=(("n_samples", int(n_samples)),),
    )
    return HypervolumeEstimate(
        value.reshape(batch), stderr.reshape(batch), int(n_samples)
    )
