"""Constrained multi-objective evolution of top-k lists for many users at once.

The jitted kernels of DualAgent-Rec (:mod:`agenticrec.graphs.dualagent`) and
of its single-population baselines. Every user is independent: the kernels
are written for one user and ``vmap``-ed over the users axis, which is
sharded over all local devices (:func:`users_mesh`), so a batch of users is
one XLA computation and the generations between two coordinator decisions
are one ``lax.scan``.

::

    problem = make_problem(score=..., emb=..., novelty=..., attr=..., ...)
    cfg = EvolveConfig(pop_size=200)
    pop, eps0 = init_population(problem, seeds, n_exploit, cfg)
    pop, trace, metrics = evolve(problem, pop.lists, n_exploit, eps0, seeds,
                                 start=0, total=100, n_gens=10, cfg=cfg)

Randomness comes only from explicit keys: generation ``t`` of user ``u``
draws from ``fold_in(key(seeds[u]), t)``, so a run split into rounds of any
length, resumed from a checkpoint, or sharded over any number of devices
makes the same draws.

Objectives and constraints are defined in
:mod:`agenticrec.tools._evolve_problem`, variation in
:mod:`agenticrec.tools._evolve_ops`, selection and elite transfer in
:mod:`agenticrec.tools._evolve_select`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from agenticrec.errors import ConfigError
from agenticrec.tools import _pareto_dominance as dom
from agenticrec.tools import _pareto_hv as hv
from agenticrec.tools._evolve_ops import (
    Operators,
    greedy_repair,
    n_uniforms,
    repair,
    variation,
)
from agenticrec.tools._evolve_problem import (
    KINDS,
    N_OBJECTIVES,
    Problem,
    constraint_values,
    dcg_weights,
    evaluate,
)
from agenticrec.tools._evolve_select import epsilon, select, transfer

__all__ = [
    "KINDS",
    "EvolveConfig",
    "Operators",
    "Population",
    "Problem",
    "RoundMetrics",
    "assess",
    "evaluate_lists",
    "evolve",
    "final_front",
    "greedy_lists",
    "init_population",
    "make_problem",
    "pad_users",
    "pick",
    "repair_lists",
    "PICK_RULES",
    "DEFAULT_PREFERENCE",
    "DEFAULT_MAX_LOSS",
    "shard",
    "users_mesh",
]


class EvolveConfig(NamedTuple):
    """Static settings of a run (hashable; a change recompiles).

    The defaults are the DualAgent-Rec choices; the baselines are settings of
    the same engine (see :func:`agenticrec.graphs.dualagent.method_config`).
    """

    pop_size: int = 200
    """``N``: slots per user, shared by both agents."""
    ops: Operators = Operators()
    """Variation (DE/pbest/1 + DE/rand/1, or NSGA-II's)."""
    transfer_every: int = 5
    """Elite exchange after every this many generations (0: never)."""
    transfer_share: float = 0.1
    """Elites moved each way, as a share of the smaller agent."""
    transfer_copy: bool = True
    """Copy elites over the other agent's worst slots instead of swapping
    them (see :func:`~agenticrec.tools._evolve_select.transfer`). Was a
    swap until 2026-12-07: the swap sends the exploitation agent's boundary
    elites (largest crowding distance, the front's extreme points) to the
    exploration agent, whose constraint-free selection then drops the
    feasible ones; on ml-100k (held out from the grid; 30 users x 3 seeds
    x N in {50, 100} at 20,000 offspring) copying raised dualagent's
    hypervolume by 0.38% / 0.31% / 0.13% in three strictness levels, to
    NSGA-II's level (-0.01% / +0.04% / -0.02%)."""
    gamma: float = 0.001
    """Epsilon decay: ``eps_t = eps_0 * gamma ** (t / T_max)``. Was 0.05:
    on ml-100k (held out from the grid) the slower decay kept the
    exploitation agent on eps-feasible, strictly infeasible lists for most
    of the run, and those count for nothing in the final front."""
    strict_share: float = 0.3
    """Share of the last generations with ``eps = 0`` (at least one); was
    0.1 (see ``gamma``)."""
    eps_quantile: float = 0.8
    """``eps_0``: this quantile of the initial violations (per user)."""
    relax: bool = True
    """Epsilon relaxation on; ``False`` is strict CDP throughout."""
    seed_lists: bool = True
    """Seed slot 0 with the base top-k and slot 1 with the greedy repair of
    it (see :func:`greedy_lists`); the rest is uniformly random."""
    trace_hv: bool = False
    """Hypervolume of the feasible set after every generation (for plots)."""


class Population(NamedTuple):
    """Populations of all users."""

    lists: jax.Array
    """``i32[U, N, k]`` canonical lists; exploitation slots first."""
    obj: jax.Array
    """``f32[U, N, 3]`` relevance, diversity, novelty (maximised)."""
    viol: jax.Array
    """``f32[U, N]`` total violation (0: strictly feasible)."""


class RoundMetrics(NamedTuple):
    """Per-user state after a round."""

    hypervolume: jax.Array
    """``f32[U]`` volume of the strictly feasible solutions, reference 0."""
    feasible: jax.Array
    """``f32[U]`` share of strictly feasible solutions."""
    feasible_exploit: jax.Array
    """``f32[U]`` same, exploitation slots only (NaN when it has none)."""
    epsilon: jax.Array
    """``f32[U]`` tolerance used in the round's last generation."""
    hypervolume_exploit: jax.Array
    """``f32[U]`` volume of the strictly feasible exploitation slots alone:
    ``1 - this / hypervolume`` is what exploration adds to the final front,
    the coordinator rule's signal."""


REF = np.zeros(N_OBJECTIVES, np.float32)
"""Hypervolume reference point (maximised objectives, each in [0, 1])."""


# ------------------------------------------------------------------ problem
def make_problem(
    *,
    score: Any,
    emb: Any,
    novelty: Any,
    attr: Any,
    kinds: tuple[str, ...],
    bound: Any,
    universe: Any,
    n_cand: Any,
    k: int,
    n_bits: int = 32,
) -> Problem:
    """Check the host arrays of a batch of users and build a :class:`Problem`.

    Args:
        score: ``f[U, M]`` predicted scores, best first per row (padding 0).
        emb: ``f[U, M, d]`` item embeddings (normalised here).
        novelty: ``f[U, M]`` in ``[0, 1]``.
        attr: ``int[U, M, C]`` attribute codes (see :class:`Problem`).
        kinds: one of :data:`KINDS` per constraint.
        bound: ``f[C]`` or ``f[U, C]``: the Gini threshold, or the count
            a share constraint needs.
        universe: ``int[U, C]`` category bitmasks (``max_gini``).
        n_cand: ``int[U]`` real candidates per user.
        k: list length.
        n_bits: bits of the category masks in use (``<= 32``).

    Raises:
        ConfigError: NaN or infinite scores, unsorted scores, ``k`` larger
            than a user's candidates, shapes that disagree, unknown kinds.
    """
    score = np.asarray(score, np.float32)
    if score.ndim != 2:
        raise ConfigError(f"score must be f[U, M]; got shape {score.shape}")
    u, m = score.shape
    n_cand = np.asarray(n_cand, np.int64).reshape(u)
    if not isinstance(k, int | np.integer) or k < 2:
        raise ConfigError(f"k must be an int >= 2; got {k!r}")
    if k > m:
        raise ConfigError(f"k={k} is larger than the candidate set (M={m})")
    short = np.flatnonzero(n_cand < k)
    if short.size:
        raise ConfigError(
            f"{short.size} user row(s) have fewer than k={k} candidates "
            f"(rows {short[:5].tolist()}); drop or report them before the kernel"
        )
    real = np.arange(m)[None, :] < n_cand[:, None]
    bad = np.flatnonzero(np.any(~np.isfinite(score) & real, axis=1))
    if bad.size:
        raise ConfigError(
            f"score has NaN or infinite values in user row(s) {bad[:5].tolist()}"
        )
    if np.any(np.diff(np.where(real, score, -np.inf), axis=1) > 0):
        raise ConfigError("score rows must be sorted best first (non-increasing)")
    for kind in kinds:
        if kind not in KINDS:
            raise ConfigError(f"constraint kind {kind!r}: expected one of {KINDS}")
    if not 0 <= n_bits <= 32:
        raise ConfigError(f"n_bits must be in [0, 32]; got {n_bits}")
    emb = np.asarray(emb, np.float32)
    if emb.shape[:2] != (u, m) or emb.ndim != 3:
        raise ConfigError(f"emb must be f[{u}, {m}, d]; got {emb.shape}")
    if not np.all(np.isfinite(emb)):
        raise ConfigError("emb has NaN or infinite values")
    norm = np.linalg.norm(emb, axis=-1, keepdims=True)
    emb = np.where(norm > 0, emb / np.maximum(norm, 1e-30), 0.0).astype(np.float32)
    c = len(kinds)
    attr = np.asarray(attr, np.int64).reshape(u, m, c).astype(np.int32)
    bound = np.broadcast_to(np.asarray(bound, np.float32), (u, c)).copy()
    universe = np.asarray(universe, np.int64).reshape(u, c).astype(np.uint32)
    novelty = np.asarray(novelty, np.float32).reshape(u, m)
    score = np.where(real, score, 0.0).astype(np.float32)
    idcg = (score[:, :k] * np.asarray(dcg_weights(k))).sum(axis=1)
    if np.any(idcg <= 0):
        raise ConfigError("a user's top-k scores sum to 0: nothing to rank")
    return Problem(
        score=jnp.asarray(score),
        emb=jnp.asarray(emb),
        novelty=jnp.asarray(novelty),
        attr=jnp.asarray(attr),
        bound=jnp.asarray(bound),
        universe=jnp.asarray(universe.view(np.int32)),
        n_cand=jnp.asarray(n_cand, jnp.int32),
        idcg=jnp.asarray(idcg, jnp.float32),
        kinds=tuple(kinds),
        k=int(k),
        n_bits=int(n_bits),
    )


# ----------------------------------------------------------------- sharding
def users_mesh(devices: list | None = None) -> Mesh:
    """A 1-D mesh ``("users",)`` over ``devices`` (default: all local ones).

    Multi-host: call ``jax.distributed.initialize()`` first and pass
    ``jax.devices()``; every host then feeds its own users (see
    ``docs/dualagent.md``).
    """
    devs = list(devices) if devices is not None else jax.local_devices()
    return Mesh(np.asarray(devs), ("users",))


def _on_mesh(fn, mesh: Mesh | None, n_batched: int, n_args: int):
    """``fn`` with its first ``n_batched`` arguments split over ``users``."""
    if mesh is None or mesh.size == 1:
        return fn
    specs = tuple(P("users") if i < n_batched else P() for i in range(n_args))
    return jax.shard_map(
        fn, mesh=mesh, in_specs=specs, out_specs=P("users"), check_vma=False
    )


def pad_users(tree: Any, multiple: int) -> tuple[Any, int]:
    """Repeat the last user so the users axis divides ``multiple``."""
    u = jax.tree.leaves(tree)[0].shape[0]
    extra = (-u) % multiple
    if extra == 0:
        return tree, u

    def pad(x):
        return jnp.concatenate([x, jnp.repeat(x[-1:], extra, axis=0)], axis=0)

    return jax.tree.map(pad, tree), u


def shard(tree: Any, mesh: Mesh | None) -> Any:
    """Place arrays with a leading users axis on ``mesh`` (no-op without)."""
    if mesh is None or mesh.size == 1:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, P("users")))


# ---------------------------------------------------------------- per user
def _uniforms(seed: jax.Array, t: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniforms of stream ``t`` of a user, drawn flat then reshaped: XLA on
    CPU compiled some multi-axis draws 10x slower than the same count flat."""
    key = jax.random.fold_in(jax.random.key(seed), t)
    return jax.random.uniform(key, (int(np.prod(shape)),)).reshape(shape)


_INIT_STREAM = 2**31 - 1


def _evaluate_all(p: Problem, lists: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jax.vmap(evaluate, in_axes=(None, 0))(p, lists)


def _reorder(lists, obj, viol, src):
    return lists[src], obj[src], viol[src]


def _init_user(p, seed, seed_list, n_exploit, cfg: EvolveConfig):
    n, k = cfg.pop_size, p.k
    u = _uniforms(seed, _INIT_STREAM, (2, n, k))
    draws = jnp.minimum(jnp.floor(u[0] * p.n_cand), p.n_cand - 1).astype(jnp.int32)
    lists = jax.vmap(repair, in_axes=(0, 0, None))(u[1], draws, p.n_cand)
    if cfg.seed_lists:
        lists = lists.at[0].set(jnp.arange(k, dtype=jnp.int32))
        lists = lists.at[1].set(seed_list)
    obj, viol = _evaluate_all(p, lists)
    eps0 = jnp.quantile(viol, cfg.eps_quantile) if cfg.relax else jnp.float32(0)
    explore = jnp.arange(n) >= n_exploit
    src = select(obj, viol, explore, n_exploit, n, eps0)
    return _reorder(lists, obj, viol, src), eps0.astype(jnp.float32)


def _round_metrics(obj, viol, n_exploit, eps) -> RoundMetrics:
    feas = viol == 0
    vol = hv.hypervolume(-obj, jnp.asarray(-REF), feas)
    exploit = jnp.arange(viol.shape[0]) < n_exploit
    fe = jnp.sum(feas & exploit) / jnp.where(n_exploit > 0, n_exploit, jnp.nan)
    vol_e = hv.hypervolume(-obj, jnp.asarray(-REF), feas & exploit)
    return RoundMetrics(vol, jnp.mean(feas), fe, eps, vol_e)


def _evolve_user(p, lists, n_exploit, eps0, seed, start, total, cfg, n_gens):
    n = cfg.pop_size
    explore = jnp.arange(n) >= n_exploit
    pool_explore = jnp.concatenate([explore, explore])
    obj, viol = _evaluate_all(p, lists)

    def generation(carry, i):
        lists, obj, viol = carry
        t = start + i
        eps = epsilon(eps0, t, total, cfg.gamma, cfg.strict_share)
        u = _uniforms(seed, t, (n, n_uniforms(p.k)))
        kids = variation(u, lists, n_exploit, p.n_cand, cfg.ops)
        kobj, kviol = _evaluate_all(p, kids)
        pool = (
            jnp.concatenate([lists, kids]),
            jnp.concatenate([obj, kobj]),
            jnp.concatenate([viol, kviol]),
        )
        src = select(pool[1], pool[2], pool_explore, n_exploit, n, eps)
        lists, obj, viol = _reorder(*pool, src)
        if cfg.transfer_every > 0:
            due = (t + 1) % cfg.transfer_every == 0
            moved = transfer(n, n_exploit, cfg.transfer_share, cfg.transfer_copy)
            src = jnp.where(due, moved, jnp.arange(n, dtype=jnp.int32))
            lists, obj, viol = _reorder(lists, obj, viol, src)
        feas = viol == 0
        vol = (
            hv.hypervolume(-obj, jnp.asarray(-REF), feas)
            if cfg.trace_hv
            else jnp.float32(jnp.nan)
        )
        return (lists, obj, viol), (jnp.mean(feas), vol, eps)

    (lists, obj, viol), trace = jax.lax.scan(
        generation, (lists, obj, viol), jnp.arange(n_gens, dtype=jnp.int32)
    )
    last_eps = epsilon(eps0, start + n_gens - 1, total, cfg.gamma, cfg.strict_share)
    return (lists, obj, viol), trace, _round_metrics(obj, viol, n_exploit, last_eps)


# ------------------------------------------------------------------ public
@functools.partial(jax.jit, static_argnames=("steps",))
def _greedy(problem: Problem, steps: int):
    return jax.vmap(greedy_repair, in_axes=(0, None))(problem, steps)


def greedy_lists(problem: Problem, steps: int | None = None):
    """Greedy constraint repair of every user's base top-k list.

    Returns:
        ``(lists i32[U, k], violation f32[U], g f32[U, C])``: a zero
        violation is a certificate that the user's constraints can be met.
    """
    lists, viol = _greedy(problem, steps or 2 * problem.k)
    return lists, viol, evaluate_lists(problem, lists[:, None, :])[2][:, 0]


@functools.partial(jax.jit, static_argnames=("steps",))
def _repair_lists(problem: Problem, lists: jax.Array, steps: int):
    def one(p, xs):
        return jax.vmap(lambda x: greedy_repair(p, steps, x))(xs)

    return jax.vmap(one)(problem, lists)


def repair_lists(problem: Problem, lists: Any, steps: int | None = None):
    """The greedy constraint repair (:func:`greedy_lists`' search) started
    from each of ``lists: int[U, L, k]`` instead of the base top-k: what an
    exploration agent's constraint-free lists become when projected onto
    the feasible region (``evals/dualagent_headroom.py`` measures what they
    add to a front). Each step tries ``O(C k)`` swaps, so this is a
    diagnostic, not a variation operator inside the budget.

    Returns:
        ``(lists i32[U, L, k] canonical, violation f32[U, L])``.
    """
    x = jnp.sort(jnp.asarray(lists, jnp.int32), axis=-1)
    return _repair_lists(problem, x, steps or 2 * problem.k)


@jax.jit
def _evaluate_lists(problem: Problem, lists: jax.Array):
    def one(p, xs):
        obj, viol = _evaluate_all(p, xs)
        g = jax.vmap(constraint_values, in_axes=(None, 0))(p, xs)
        return obj, viol, g

    return jax.vmap(one)(problem, lists)


def evaluate_lists(problem: Problem, lists: Any):
    """Objectives ``f32[U, L, 3]``, violation ``f32[U, L]`` and constraint
    values ``f32[U, L, C]`` of lists ``int[U, L, k]`` (any order; they are
    put in canonical order first)."""
    x = jnp.sort(jnp.asarray(lists, jnp.int32), axis=-1)
    return _evaluate_lists(problem, x)


@functools.partial(jax.jit, static_argnames=("cfg", "mesh"))
def _init(problem, seeds, seed_lists, n_exploit, cfg, mesh):
    def batch(problem, seeds, seed_lists, n_exploit):
        return jax.vmap(_init_user, in_axes=(0, 0, 0, 0, None))(
            problem, seeds, seed_lists, n_exploit, cfg
        )

    return _on_mesh(batch, mesh, 4, 4)(problem, seeds, seed_lists, n_exploit)


def init_population(
    problem: Problem,
    seeds: Any,
    n_exploit: Any,
    cfg: EvolveConfig,
    *,
    seed_lists: Any = None,
    mesh: Mesh | None = None,
) -> tuple[Population, jax.Array]:
    """Initial populations, laid out by agent, and ``eps_0`` per user.

    Args:
        problem: all users.
        seeds: ``uint32[U]`` one seed per user.
        n_exploit: ``int[U]`` exploitation slots per user.
        cfg: settings.
        seed_lists: ``int[U, k]`` lists for slot 1 (e.g. :func:`greedy_lists`);
            default the base top-k.
        mesh: :func:`users_mesh` to shard over, or ``None``.
    """
    u = problem.n_users
    if seed_lists is None:
        seed_lists = jnp.broadcast_to(jnp.arange(problem.k), (u, problem.k))
    seed_lists = jnp.sort(jnp.asarray(seed_lists, jnp.int32), axis=-1)
    (lists, obj, viol), eps0 = _init(
        problem,
        jnp.asarray(seeds, jnp.uint32),
        seed_lists,
        jnp.asarray(n_exploit, jnp.int32).reshape(u),
        cfg,
        mesh,
    )
    return Population(lists, obj, viol), eps0


@functools.partial(jax.jit, static_argnames=("cfg", "n_gens", "mesh"))
def _evolve(problem, lists, n_exploit, eps0, seeds, start, total, cfg, n_gens, mesh):
    def batch(problem, lists, n_exploit, eps0, seeds, start, total):
        def one(p, lists, ne, e0, seed):
            return _evolve_user(p, lists, ne, e0, seed, start, total, cfg, n_gens)

        return jax.vmap(one)(problem, lists, n_exploit, eps0, seeds)

    fn = _on_mesh(batch, mesh, 5, 7)
    return fn(problem, lists, n_exploit, eps0, seeds, start, total)


def evolve(
    problem: Problem,
    lists: Any,
    n_exploit: Any,
    eps0: Any,
    seeds: Any,
    *,
    start: int,
    total: int,
    n_gens: int,
    cfg: EvolveConfig,
    mesh: Mesh | None = None,
) -> tuple[Population, dict[str, jax.Array], RoundMetrics]:
    """Run generations ``start .. start + n_gens - 1`` of ``total``.

    One jitted ``lax.scan`` over the generations, ``vmap``-ed over users.
    The round starts from the lists alone (objectives are recomputed inside
    the same computation), so a run resumed from stored lists continues
    bit for bit. ``n_exploit`` may differ from the previous round's (the
    coordinator's new split): slots change agent in place, nothing is
    reallocated; a growing exploitation agent takes over the best
    exploration slots, a shrinking one hands over its last ones.

    Args:
        problem: all users.
        lists: ``int[U, N, k]`` populations laid out by agent.
        n_exploit: ``int[U]`` exploitation slots.
        eps0: ``f32[U]`` initial tolerance.
        seeds: ``uint32[U]`` per-user seeds.
        start, total, n_gens: the generations to run, out of ``total``.
        cfg: settings (static).
        mesh: :func:`users_mesh` to shard the users axis over, or ``None``.

    Returns:
        The new populations; the per-generation trace (``feasible``,
        ``hypervolume`` (NaN unless ``cfg.trace_hv``), ``epsilon``, each
        ``f32[U, n_gens]``); and :class:`RoundMetrics`.
    """
    if start < 0 or n_gens < 1 or start + n_gens > total:
        raise ConfigError(
            f"generations {start}..{start + n_gens - 1} are outside 0..{total - 1}"
        )
    u = problem.n_users
    x = jnp.asarray(lists, jnp.int32)
    if x.shape != (u, cfg.pop_size, problem.k):
        raise ConfigError(
            f"lists must be int[{u}, {cfg.pop_size}, {problem.k}]; got {x.shape}"
        )
    (lists, obj, viol), trace, metrics = _evolve(
        problem,
        x,
        jnp.asarray(n_exploit, jnp.int32).reshape(u),
        jnp.asarray(eps0, jnp.float32).reshape(u),
        jnp.asarray(seeds, jnp.uint32),
        jnp.int32(start),
        jnp.float32(total),
        cfg,
        int(n_gens),
        mesh,
    )
    names = ("feasible", "hypervolume", "epsilon")
    return Population(lists, obj, viol), dict(zip(names, trace, strict=True)), metrics


@functools.partial(jax.jit, static_argnames=("mesh",))
def _assess(problem, lists, n_exploit, eps, mesh):
    def batch(problem, lists, n_exploit, eps):
        def one(p, lists, ne, e):
            obj, viol = _evaluate_all(p, lists)
            return (lists, obj, viol), _round_metrics(obj, viol, ne, e)

        return jax.vmap(one)(problem, lists, n_exploit, eps)

    return _on_mesh(batch, mesh, 4, 4)(problem, lists, n_exploit, eps)


def assess(
    problem: Problem,
    lists: Any,
    n_exploit: Any,
    eps: Any,
    *,
    mesh: Mesh | None = None,
) -> tuple[Population, RoundMetrics]:
    """Evaluate stored populations: objectives, violations and
    :class:`RoundMetrics` (for the first coordinator decision and the final
    pick)."""
    u = problem.n_users
    (lists, obj, viol), m = _assess(
        problem,
        jnp.asarray(lists, jnp.int32),
        jnp.asarray(n_exploit, jnp.int32).reshape(u),
        jnp.asarray(eps, jnp.float32).reshape(u),
        mesh,
    )
    return Population(lists, obj, viol), m


# ------------------------------------------------------------------- final
PICK_RULES = ("bounded", "preference", "knee", "relevance")
"""Served-list rules of :func:`pick` (``bounded`` is the default)."""
DEFAULT_PREFERENCE = (0.5, 0.25, 0.25)
"""Default weights of the ``preference`` rule (relevance, diversity, novelty)
over the front's min-max scaled objectives: relevance counts as much as the
two beyond-accuracy objectives together."""
DEFAULT_MAX_LOSS = 0.02
"""Default relevance loss of the ``bounded`` rule: lists at most 2% less
relevant than the user's best feasible one."""


def _scaled(obj, front):
    lo = jnp.min(jnp.where(front[:, None], obj, jnp.inf), axis=0)
    hi = jnp.max(jnp.where(front[:, None], obj, -jnp.inf), axis=0)
    return (obj - lo) / jnp.where(hi > lo, hi - lo, 1.0)


def _pick_user(obj, viol, weights, max_loss, rule: str):
    feas = viol == 0
    front = dom.is_nondominated(-obj, feas)
    rel = obj[:, 0]
    best_rel = jnp.max(jnp.where(front, rel, -jnp.inf))
    if rule == "relevance":
        cand = front & (rel == best_rel)
        for c in (1, 2):
            v = obj[:, c]
            cand = cand & (v == jnp.max(jnp.where(cand, v, -jnp.inf)))
        best = jnp.argmax(cand)
    elif rule == "bounded":
        # Within the relevance budget, the largest scaled diversity + novelty;
        # the most relevant list always qualifies, so a user whose front has
        # nothing better keeps it. Ties: relevance.
        ok = front & (rel >= best_rel * (1.0 - max_loss))
        z = _scaled(obj, front)
        gain = z[:, 1] + z[:, 2] + 1e-6 * z[:, 0]
        best = jnp.argmax(jnp.where(ok, gain, -jnp.inf))
    elif rule == "preference":
        z = _scaled(obj, front)
        best = jnp.argmax(jnp.where(front, z @ weights, -jnp.inf))
    else:
        z = _scaled(obj, front)
        dist = jnp.sum((1.0 - z) ** 2, axis=1)
        best = jnp.argmin(jnp.where(front, dist, jnp.inf))
    fallback = jnp.argmin(viol - 1e-6 * rel)
    return jnp.where(jnp.any(feas), best, fallback), jnp.any(feas)


@functools.partial(jax.jit, static_argnames=("rule",))
def _pick(obj, viol, weights, max_loss, rule):
    return jax.vmap(_pick_user, in_axes=(0, 0, None, None, None))(
        obj, viol, weights, max_loss, rule
    )


def pick(
    pop: Population,
    rule: str = "bounded",
    *,
    weights: Any = DEFAULT_PREFERENCE,
    max_loss: float = DEFAULT_MAX_LOSS,
) -> tuple[jax.Array, jax.Array]:
    """Each user's served slot among the strictly feasible solutions.

    Every rule looks at the user's feasible non-dominated front only:

    - ``bounded`` (default): among the front members whose relevance is at
      least ``(1 - max_loss)`` times the best feasible relevance, the one
      with the largest diversity + novelty (each min-max scaled over the
      front); with nothing better inside the budget, the most relevant list.
    - ``preference``: the largest ``weights . z`` where ``z`` are the
      objectives min-max scaled over the front (a preference vector).
    - ``knee``: the front member nearest the ideal point after that scaling.
    - ``relevance``: the most relevant front member (ties: diversity, then
      novelty), which is usually the greedy repair the run was seeded with.

    A user without a feasible solution gets the least-violating one.

    Args:
        pop: populations of all users.
        rule: one of :data:`PICK_RULES`.
        weights: ``f[3]`` non-negative preference weights (``preference``).
        max_loss: relevance loss in ``[0, 1]`` (``bounded``).

    Returns:
        ``(slot i32[U], feasible bool[U])``.

    Raises:
        ConfigError: an unknown rule, negative or all-zero weights, a loss
            outside ``[0, 1]``.
    """
    if rule not in PICK_RULES:
        raise ConfigError(f"pick rule must be one of {PICK_RULES}; got {rule!r}")
    w = np.asarray(weights, np.float32).reshape(-1)
    if w.shape != (N_OBJECTIVES,) or np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ConfigError(f"preference weights must be 3 values >= 0; got {weights!r}")
    if not w.sum() > 0:
        raise ConfigError("preference weights must not all be 0")
    if not 0.0 <= float(max_loss) <= 1.0:
        raise ConfigError(f"max_loss must be in [0, 1]; got {max_loss!r}")
    return _pick(pop.obj, pop.viol, jnp.asarray(w), jnp.float32(max_loss), rule)


@jax.jit
def _front_hv(obj, viol):
    feas = viol == 0
    return jax.vmap(lambda o, f: hv.hypervolume(-o, jnp.asarray(-REF), f))(obj, feas)


def final_front(pop: Population) -> jax.Array:
    """``f32[U]`` hypervolume of each user's strictly feasible solutions."""
    return _front_hv(pop.obj, pop.viol)
