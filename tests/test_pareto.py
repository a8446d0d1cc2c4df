"""Pareto kernels against independent references on fresh random inputs.

References: moocore (``pareto_rank``, ``is_nondominated``, ``hypervolume``,
``hv_contributions``), pymoo (``calc_crowding_distance``) and brute-force
NumPy for constrained domination and selection. Every run draws new data:
the base seed is random unless ``AGENTICREC_TEST_SEED`` is set, and each
test derives its own generator from it and its name; failure messages
print the base seed to replay. Shapes are few and fixed so that each kernel
compiles a handful of times.
"""

from __future__ import annotations

import os
import secrets
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agenticrec.errors import ConfigError
from agenticrec.tools import pareto

moocore = pytest.importorskip("moocore")
pymoo_metrics = pytest.importorskip(
    "pymoo.operators.survival.rank_and_crowding.metrics"
)

BASE_SEED = int(os.environ.get("AGENTICREC_TEST_SEED", secrets.randbits(32)))
REPLAY = f"replay with AGENTICREC_TEST_SEED={BASE_SEED}"
SEEDS = (0, 1, 2)
B, N = 9, 40  # the batch shape most tests share (> 8 sets: JAX, not moocore)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator fresh every run, distinct per test and parameter set."""
    return np.random.default_rng([BASE_SEED, zlib.crc32(request.node.name.encode())])


def cloud(rng, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    """float32 points: ``uniform``, ``simplex`` (all mutually non-dominated),
    ``ties`` (a 5-level grid: heavy ties and duplicates) or ``outside``
    (a third beyond the unit reference box)."""
    m = shape[-1]
    if kind == "uniform":
        x = rng.random(shape)
    elif kind == "simplex":
        x = rng.dirichlet(np.ones(m), size=shape[:-1])
    elif kind == "ties":
        x = rng.integers(0, 5, size=shape) / 4.0
    elif kind == "outside":
        x = rng.random(shape) * 1.5
    else:
        raise ValueError(kind)
    return x.astype(np.float32)


def moocore_hv(points: np.ndarray, ref: np.ndarray, mask=None) -> float:
    pts = np.asarray(points, np.float64)
    if mask is not None:
        pts = pts[mask]
    return float(moocore.hypervolume(pts, ref=ref)) if len(pts) else 0.0


def assert_rel(actual, expected, rtol: float) -> None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected)
    err = np.abs(actual - expected) / np.maximum(np.abs(expected), 1e-30)
    assert np.all(err <= rtol), f"max rel err {err.max():.2e} > {rtol} ({REPLAY})"


# ----------------------------------------------------------------- dominance


def test_dominates_needs_no_worse_everywhere_and_better_somewhere():
    a = jnp.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    b = jnp.array([[1.0, 3.0], [1.0, 2.0], [0.0, 3.0]])
    assert pareto.dominates(a, b).tolist() == [True, False, False]
    assert pareto.dominates(b, a, maximize=True).tolist() == [True, False, False]
    assert pareto.dominates([1.0, 5.0], [2.0, 4.0], maximize=(False, True))


def test_to_minimization_negates_only_maximised_columns():
    x = pareto.to_minimization([[1.0, 2.0, 3.0]], (True, False, True))
    assert x.tolist() == [[-1.0, 2.0, -3.0]]


def test_cdp_prefers_feasible_over_better_objective():
    good_but_infeasible, feasible = jnp.array([0.0, 0.0]), jnp.array([5.0, 5.0])
    assert pareto.constraint_dominates(feasible, 0.0, good_but_infeasible, 0.1)
    assert not pareto.constraint_dominates(good_but_infeasible, 0.1, feasible, 0.0)


def test_cdp_smaller_violation_wins_among_infeasible():
    a, b = jnp.array([9.0, 9.0]), jnp.array([0.0, 0.0])
    assert pareto.constraint_dominates(a, 0.2, b, 0.5)
    assert not pareto.constraint_dominates(b, 0.5, a, 0.2)
    assert not pareto.constraint_dominates(a, 0.5, b, 0.5)


def test_cdp_eps_counts_small_violations_as_feasible():
    a, b = jnp.array([0.0, 0.0]), jnp.array([1.0, 1.0])
    assert not pareto.constraint_dominates(a, 0.05, b, 0.0)
    assert pareto.constraint_dominates(a, 0.05, b, 0.0, eps=0.1)
    assert not pareto.constraint_dominates(b, 0.0, a, 0.05, eps=0.1)


def test_total_violation_sums_positive_parts():
    g = jnp.array([[-1.0, 0.5, 2.0], [-1.0, -2.0, 0.0]])
    assert pareto.total_violation(g).tolist() == [2.5, 0.0]


# --------------------------------------------------------------------- ranks


@pytest.mark.parametrize("kind", ["uniform", "simplex", "ties"])
@pytest.mark.parametrize("m", [2, 3, 5])
def test_ranks_match_moocore(rng, kind, m):
    for _ in SEEDS:
        x = cloud(rng, kind, (B, N, m))
        got = np.asarray(pareto.nondominated_ranks(x))
        want = np.stack([moocore.pareto_rank(s) for s in x])
        np.testing.assert_array_equal(got, want, err_msg=REPLAY)
        if kind == "simplex":
            assert not got.any()


def test_ranks_match_moocore_beyond_four_words(rng):
    x = cloud(rng, "ties", (2, 150, 3))
    want = np.stack([moocore.pareto_rank(s) for s in x])
    np.testing.assert_array_equal(pareto.nondominated_ranks(x), want, err_msg=REPLAY)


def test_duplicates_share_a_rank():
    x = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [0.0, 3.0]], np.float32)
    assert pareto.nondominated_ranks(x).tolist() == [0, 0, 1, 0]


def test_masked_rows_rank_n_and_leave_the_others_unchanged(rng):
    x = cloud(rng, "uniform", (B, N, 3))
    mask = rng.random((B, N)) < 0.6
    got = np.asarray(pareto.nondominated_ranks(x, mask))
    for s, mk, r in zip(x, mask, got, strict=True):
        assert (r[~mk] == N).all()
        np.testing.assert_array_equal(r[mk], moocore.pareto_rank(s[mk]))


def test_empty_and_single_point_sets(rng):
    x = cloud(rng, "uniform", (B, N, 3))
    mask = np.zeros((B, N), bool)
    mask[1, 7] = True  # set 0 empty, set 1 a single point
    ranks = np.asarray(pareto.nondominated_ranks(x, mask))
    assert (
        (ranks[0] == N).all() and ranks[1, 7] == 0 and (ranks[1].sum() == N * (N - 1))
    )
    assert pareto.nondominated_ranks(np.zeros((0, 3))).shape == (0,)


def test_batched_ranks_equal_per_set_ranks(rng):
    x = cloud(rng, "ties", (B, N, 3))
    batched = np.asarray(pareto.nondominated_ranks(x))
    for s, r in zip(x, batched, strict=True):
        np.testing.assert_array_equal(pareto.nondominated_ranks(s), r)
    nested = np.asarray(pareto.nondominated_ranks(x.reshape(1, B, N, 3)))
    np.testing.assert_array_equal(nested[0], batched)


def test_is_nondominated_matches_moocore(rng):
    x = cloud(rng, "ties", (B, N, 3))
    want = np.stack([moocore.is_nondominated(s, keep_weakly=True) for s in x])
    np.testing.assert_array_equal(pareto.is_nondominated(x), want, err_msg=REPLAY)


def _cdp_ranks_reference(f: np.ndarray, v: np.ndarray, eps: float) -> np.ndarray:
    """Deb's rules spelled out pair by pair, then front peeling."""
    n = len(f)
    feas = v <= eps
    beats = np.zeros((n, n), bool)
    for i in range(n):
        for j in range(n):
            if feas[i] and not feas[j]:
                beats[i, j] = True
            elif feas[i] and feas[j]:
                beats[i, j] = np.all(f[i] <= f[j]) and np.any(f[i] < f[j])
            elif not feas[i] and not feas[j]:
                beats[i, j] = v[i] < v[j]
    rank, left, k = np.full(n, -1), np.ones(n, bool), 0
    while left.any():
        front = left & ~beats[left].any(axis=0)
        rank[front], left, k = k, left & ~front, k + 1
    return rank


def test_constrained_ranks_match_reference(rng):
    x = cloud(rng, "uniform", (B, N, 3))
    v = np.where(rng.random((B, N)) < 0.5, 0.0, rng.integers(1, 6, (B, N)) / 10)
    v = v.astype(np.float32)
    eps = 0.15
    got = np.asarray(pareto.nondominated_ranks(x, violation=v, eps=eps))
    for s, vs, r in zip(x, v, got, strict=True):
        np.testing.assert_array_equal(r, _cdp_ranks_reference(s, vs, eps), REPLAY)


# ------------------------------------------------------------------ crowding


def _pymoo_crowding(x: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """pymoo's NSGA-II crowding per front, times m (pymoo averages)."""
    out = np.zeros(len(x))
    for r in np.unique(ranks):
        idx = np.flatnonzero(ranks == r)
        if len(idx) <= 2:
            out[idx] = np.inf
        else:
            f = x[idx].astype(np.float64)
            out[idx] = pymoo_metrics.calc_crowding_distance(f) * x.shape[1]
    return out


@pytest.mark.parametrize("kind", ["uniform", "ties"])
@pytest.mark.parametrize("m", [2, 3])
def test_crowding_matches_pymoo_per_front(rng, kind, m):
    x = cloud(rng, kind, (B, N, m))
    ranks = np.asarray(pareto.nondominated_ranks(x))
    got = np.asarray(pareto.crowding_distance(x, ranks))
    for s, r, c in zip(x, ranks, got, strict=True):
        want = _pymoo_crowding(s, r)
        np.testing.assert_array_equal(np.isinf(c), np.isinf(want), REPLAY)
        fin = ~np.isinf(want)
        np.testing.assert_allclose(c[fin], want[fin], rtol=1e-5, atol=1e-6)


def test_crowding_boundaries_are_infinite_and_masked_rows_zero():
    x = np.array([[0, 4], [1, 3], [2, 2], [4, 0], [9, 9]], np.float32)
    mask = np.array([True, True, True, True, False])
    ranks = pareto.nondominated_ranks(x, mask)
    cd = np.asarray(pareto.crowding_distance(x, ranks, mask))
    assert np.isinf(cd[[0, 3]]).all() and cd[4] == 0
    np.testing.assert_allclose(cd[1:3], [2 / 4 + 2 / 4, 3 / 4 + 3 / 4])


def test_batched_crowding_equals_per_set(rng):
    x = cloud(rng, "ties", (B, N, 3))
    ranks = pareto.nondominated_ranks(x)
    batched = np.asarray(pareto.crowding_distance(x, ranks))
    for s, r, c in zip(x, np.asarray(ranks), batched, strict=True):
        np.testing.assert_allclose(pareto.crowding_distance(s, r), c, rtol=1e-6)


# ----------------------------------------------------------------- selection


def test_selection_takes_fronts_then_the_least_crowded(rng):
    x = cloud(rng, "uniform", (B, N, 3))
    k = 13
    sel = pareto.select_by_rank_and_crowding(x, k)
    for s, idx, chosen in zip(
        x, np.asarray(sel.indices), np.asarray(sel.selected), strict=True
    ):
        r = moocore.pareto_rank(s)
        cd = _pymoo_crowding(s, r)
        want = np.lexsort((np.arange(N), -cd, r))[:k]
        np.testing.assert_array_equal(idx, want, REPLAY)
        assert chosen.sum() == k and chosen[want].all()


def test_selection_skips_masked_rows_when_enough_are_valid(rng):
    x = cloud(rng, "uniform", (B, N, 3))
    mask = np.arange(N) % 3 != 0
    x[:, ~mask] = -1.0  # would dominate everything if they counted
    sel = pareto.select_by_rank_and_crowding(x, 13, mask)
    assert not np.asarray(sel.selected)[:, ~mask].any()


def test_selection_rejects_a_bad_k():
    with pytest.raises(ConfigError, match="k"):
        pareto.select_by_rank_and_crowding(np.zeros((5, 2)), 6)


# --------------------------------------------------------------- hypervolume


@pytest.mark.parametrize("kind", ["uniform", "simplex", "ties", "outside"])
@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_matches_moocore_float32(rng, kind, m):
    ref = np.ones(m, np.float32)
    for _ in SEEDS:
        x = cloud(rng, kind, (B, N, m))
        got = pareto.hypervolume(x, ref, backend="jax")
        assert got.dtype == jnp.float32
        assert_rel(got, [moocore_hv(s, ref) for s in x], 1e-6)


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_matches_moocore_float64(rng, m):
    ref = np.full(m, 1.1)
    with jax.enable_x64(True):
        for kind in ("uniform", "simplex", "ties"):
            x = cloud(rng, kind, (B, N, m)).astype(np.float64)
            x += rng.random(x.shape) * 1e-3
            got = pareto.hypervolume(x, ref, backend="jax")
            assert got.dtype == jnp.float64
            assert_rel(got, [moocore_hv(s, ref) for s in x], 1e-12)


@pytest.mark.parametrize("m,n", [(4, 12), (5, 8)])
def test_hypervolume_above_three_objectives_is_exact(rng, m, n):
    ref = np.ones(m, np.float32)
    for kind in ("uniform", "simplex", "ties"):
        x = cloud(rng, kind, (2, n, m))
        got = pareto.hypervolume(x, ref, backend="jax")
        assert_rel(got, [moocore_hv(s, ref) for s in x], 2e-6)


def test_hypervolume_above_the_exact_limit_raises_in_jit():
    n = int(pareto.MAX_EXACT_WORK ** (1 / 4)) + 1
    with pytest.raises(ConfigError, match="hypervolume_mc"):
        jax.jit(lambda p: pareto.hypervolume(p, jnp.ones(5))).lower(jnp.zeros((n, 5)))


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_of_a_large_set_matches_moocore(rng, m):
    ref = np.ones(m, np.float32)
    x = np.concatenate([cloud(rng, "simplex", (500, m)), cloud(rng, "ties", (100, m))])
    assert_rel(pareto.hypervolume(x, ref, backend="jax"), moocore_hv(x, ref), 1e-6)


def test_hypervolume_edge_cases(rng):
    ref = np.ones(3, np.float32)
    x = cloud(rng, "uniform", (B, N, 3))
    mask = np.zeros((B, N), bool)
    x[0, 0], mask[0, 0] = (0.5, 0.25, 0.0), True  # a single point
    x[2, :2], mask[2, :2] = [(1.0, 0.1, 0.1), (0.1, 2.0, 0.1)], True  # beyond ref
    got = np.asarray(pareto.hypervolume(x, ref, mask, backend="jax"))
    assert got[:3].tolist() == [0.375, 0.0, 0.0]  # set 1 is empty
    assert float(pareto.hypervolume([[0.25], [0.5]], [1.0], backend="jax")) == 0.75


def test_ragged_masks_equal_filtered_sets_and_batch_equals_per_set(rng):
    ref = np.ones(3, np.float32)
    x = cloud(rng, "outside", (B, N, 3))
    mask = rng.random((B, N)) < 0.7
    x[~mask] = np.nan  # padding may hold anything
    got = np.asarray(pareto.hypervolume(x, ref, mask, backend="jax"))
    assert_rel(
        got, [moocore_hv(s, ref, mk) for s, mk in zip(x, mask, strict=True)], 1e-6
    )
    for s, mk, h in zip(x, mask, got, strict=True):
        np.testing.assert_allclose(
            pareto.hypervolume(s, ref, mk, backend="jax"), h, rtol=1e-6
        )


def test_hypervolume_under_user_jit_and_vmap_equals_batched(rng):
    ref = jnp.ones(3)
    x = jnp.asarray(cloud(rng, "uniform", (B, N, 3)))
    user = jax.jit(jax.vmap(lambda p: pareto.hypervolume(p, ref)))
    np.testing.assert_allclose(user(x), pareto.hypervolume(x, ref, backend="jax"), 1e-6)


def test_auto_backend_uses_moocore_only_for_concrete_host_arrays(rng, monkeypatch):
    calls = []

    class Spy:
        def hypervolume(self, pts, ref):
            calls.append(len(pts))
            return moocore.hypervolume(pts, ref=ref)

    monkeypatch.setattr(pareto, "_moocore", lambda: Spy())
    x, ref = cloud(rng, "uniform", (N, 3)), np.ones(3, np.float32)
    host = pareto.hypervolume(x, ref)
    assert calls == [N] and host.dtype == jnp.float32
    traced = jax.jit(lambda p: pareto.hypervolume(p, ref))(x)
    assert calls == [N]
    np.testing.assert_allclose(traced, host, rtol=1e-6)
    pareto.hypervolume(cloud(rng, "uniform", (B, N, 3)), ref)  # many small: JAX
    assert calls == [N]
    with pytest.raises(ConfigError, match="moocore"):
        jax.jit(lambda p: pareto.hypervolume(p, ref, backend="moocore"))(x)


def test_dtypes_follow_the_input():
    ref = np.ones(3)
    as_int = np.zeros((N, 3), np.int32)
    half = np.zeros((N, 3), np.float16)
    assert pareto.hypervolume(as_int, ref, backend="jax").dtype == jnp.float32
    assert pareto.hypervolume(half, ref, backend="jax").dtype == jnp.float32
    assert pareto.nondominated_ranks(half).dtype == jnp.int32
    assert pareto.crowding_distance(half, np.zeros(N, int)).dtype == jnp.float32
    with jax.enable_x64(True):
        f64 = np.zeros((B, N, 3))
        assert pareto.hypervolume(f64, ref, backend="jax").dtype == jnp.float64
        assert pareto.hypervolume(f64[0], ref).dtype == jnp.float64  # via moocore
        assert pareto.nondominated_ranks(f64).dtype == jnp.int32


# ------------------------------------------------------------- NaN and errors


@pytest.mark.parametrize(
    "call",
    [
        lambda x: pareto.nondominated_ranks(x),
        lambda x: pareto.is_nondominated(x),
        lambda x: pareto.crowding_distance(x, np.zeros(x.shape[:-1], int)),
        lambda x: pareto.hypervolume(x, np.ones(3)),
        lambda x: pareto.hypervolume(x, np.ones(3), backend="jax"),
        lambda x: pareto.hypervolume_contributions(x, np.ones(3)),
        lambda x: pareto.hypervolume_mc(x, np.ones(3), jax.random.key(0)),
        lambda x: pareto.select_by_rank_and_crowding(x, 2),
    ],
)
def test_nan_input_is_rejected_with_a_clear_error(call):
    x = np.full((4, 3), 0.5, np.float32)
    x[2, 1] = np.nan
    with pytest.raises(ConfigError, match=r"NaN at index \(2,\)"):
        call(x)


def test_nan_inside_jit_gives_nan_volume_and_rank_n():
    x = jnp.array([[0.5, 0.5, 0.5], [jnp.nan, 0.1, 0.1], [0.6, 0.6, 0.6]])
    hv = jax.jit(lambda p: pareto.hypervolume(p, jnp.ones(3)))(x)
    assert jnp.isnan(hv)
    ranks = jax.jit(pareto.nondominated_ranks)(x)
    assert ranks.tolist() == [0, 3, 1]


def test_bad_shapes_name_the_argument():
    with pytest.raises(ConfigError, match="points"):
        pareto.hypervolume([0.1, 0.2], [1.0, 1.0])
    with pytest.raises(ConfigError, match="ref"):
        pareto.hypervolume([[0.1, 0.2]], [1.0, 1.0, 1.0], backend="jax")
    with pytest.raises(ConfigError, match="ref"):
        pareto.hypervolume([[0.1, 0.2]], [1.0, np.inf])
    with pytest.raises(ConfigError, match="mask"):
        pareto.nondominated_ranks(np.zeros((3, 2)), mask=np.ones(4, bool))
    with pytest.raises(ConfigError, match="2 or 3"):
        pareto.hypervolume_contributions(np.zeros((3, 4)), np.ones(4))


# ------------------------------------------------------------- contributions


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("ignore_dominated", [False, True])
def test_contributions_match_moocore(rng, m, ignore_dominated):
    ref = np.ones(m, np.float32)
    for kind in ("uniform", "simplex", "ties"):
        x = cloud(rng, kind, (B, N, m))
        got = np.asarray(
            pareto.hypervolume_contributions(x, ref, ignore_dominated=ignore_dominated)
        )
        want = np.stack(
            [
                moocore.hv_contributions(s, ref=ref, ignore_dominated=ignore_dominated)
                for s in x
            ]
        )
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7, err_msg=REPLAY)


def test_contributions_equal_leave_one_out_volumes(rng):
    ref = np.ones(3, np.float32)
    x = cloud(rng, "ties", (N, 3))
    mask = rng.random(N) < 0.8
    got = np.asarray(pareto.hypervolume_contributions(x, ref, mask))
    total = moocore_hv(x, ref, mask)
    for i in range(N):
        without = mask.copy()
        without[i] = False
        want = total - moocore_hv(x, ref, without) if mask[i] else 0.0
        assert got[i] == pytest.approx(want, abs=1e-6), REPLAY


# --------------------------------------------------------------- Monte Carlo


@pytest.mark.parametrize("m", [3, 5])
def test_monte_carlo_estimate_is_within_a_few_standard_errors(rng, m):
    ref = np.ones(m, np.float32)
    x = cloud(rng, "uniform", (B, N, m))
    est = pareto.hypervolume_mc(x, ref, jax.random.key(BASE_SEED), n_samples=20_000)
    exact = np.array([moocore_hv(s, ref) for s in x])
    assert isinstance(est, pareto.HypervolumeEstimate) and est.n_samples == 20_000
    stderr = np.asarray(est.stderr)
    assert (stderr > 0).all()
    assert (np.abs(np.asarray(est.value) - exact) <= 5 * stderr).all(), REPLAY


def test_batched_contributions_equal_per_set(rng):
    ref = np.ones(3, np.float32)
    x = cloud(rng, "ties", (B, N, 3))
    mask = rng.random((B, N)) < 0.8
    batched = np.asarray(pareto.hypervolume_contributions(x, ref, mask))
    for s, mk, c in zip(x[:2], mask[:2], batched[:2], strict=True):
        np.testing.assert_allclose(
            pareto.hypervolume_contributions(s, ref, mk), c, rtol=1e-6, atol=1e-9
        )


# ------------------------------------------------- inside a generational loop


def test_kernels_run_in_a_jitted_scan_over_generations_vmapped_over_users(rng):
    """The DualAgent pattern: jit(scan over generations) of vmap over users."""
    users, pop, m = 4, 16, 3
    ref = jnp.full(m, 2.0)

    def generation(state, key):
        obj, viol = state  # f[pop, m], f[pop]
        child = obj + 0.05 * jax.random.normal(key, obj.shape)
        child_viol = jnp.maximum(viol - 0.05, 0.0)
        both = jnp.concatenate([obj, child])
        both_viol = jnp.concatenate([viol, child_viol])
        ranks = pareto.nondominated_ranks(both, violation=both_viol, eps=0.01)
        crowd = pareto.crowding_distance(both, ranks)
        sel = pareto.select_by_rank_and_crowding(
            both, pop, violation=both_viol, eps=0.01
        )
        beats = pareto.constraint_dominates(
            both[sel.indices[0]], both_viol[sel.indices[0]], both, both_viol, 0.01
        )
        new = (both[sel.indices], both_viol[sel.indices])
        hv = pareto.hypervolume(new[0], ref)
        whole_fronts = jnp.all(sel.selected | (ranks >= ranks[sel.indices[-1]]))
        return new, (
            hv,
            whole_fronts,
            jnp.any(jnp.isnan(crowd) | (crowd < 0)),
            beats[sel.indices[0]],
        )

    def run(obj, viol, keys):
        return jax.lax.scan(generation, (obj, viol), keys)

    obj = jnp.asarray(cloud(rng, "uniform", (users, pop, m)))
    viol = jnp.asarray(rng.random((users, pop)) * 0.2, jnp.float32)
    keys = jax.random.split(jax.random.key(BASE_SEED), (users, 3))
    (final, _), (hv, whole, bad_crowd, self_beat) = jax.jit(jax.vmap(run))(
        obj, viol, keys
    )
    assert final.shape == (users, pop, m) and hv.shape == (users, 3)
    assert np.asarray(whole).all() and not np.asarray(bad_crowd).any()
    assert not np.asarray(self_beat).any()  # CDP is irreflexive
    for u in range(users):
        want = moocore_hv(np.asarray(final[u]), np.asarray(ref))
        assert hv[u, -1] == pytest.approx(want, rel=1e-6), REPLAY
