"""The evolution kernels against independent NumPy references."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agenticrec.errors import ConfigError
from agenticrec.tools import evolve as ev
from agenticrec.tools import pareto
from agenticrec.tools._evolve_ops import repair
from agenticrec.tools._evolve_select import epsilon, select, transfer

from .conftest import CFG, ROUND, K, M, U, synth_arrays


def _numpy_eval(a, u, x):
    """Objectives and constraint values of one list, straight from the docs."""
    x = np.sort(x)
    w = 1 / np.log2(np.arange(K) + 2)
    rel = (a["score"][u, x] * w).sum() / (a["score"][u, :K] * w).sum()
    e = a["emb"][u, x] / np.linalg.norm(a["emb"][u, x], axis=1, keepdims=True)
    cos = [e[i] @ e[j] for i, j in itertools.combinations(range(K), 2)]
    div = np.mean([(1 - c) / 2 for c in cos])
    nov = a["novelty"][u, x].mean()
    g = []
    for c, kind in enumerate(a["kinds"]):
        codes = a["attr"][u, x, c]
        if kind == "max_gini":
            universe = [b for b in range(a["n_bits"]) if a["universe"][u, c] >> b & 1]
            n = np.array([sum(v >> b & 1 for v in codes) for b in universe], float)
            gini = np.abs(n[:, None] - n[None, :]).sum() / (2 * len(n) * n.sum())
            g.append(gini - a["bound"][c] - 1e-6)
        elif kind == "min_distinct_share":
            g.append((a["bound"][c] - len({int(v) for v in codes if v >= 0})) / K)
        else:
            g.append((a["bound"][c] - codes.sum()) / K)
    return np.array([rel, div, nov]), np.array(g)


def _check_against_numpy(a, problem, seed):
    rng = np.random.default_rng(seed)
    m = a["score"].shape[1]
    lists = np.stack(
        [
            [rng.choice(m, K, replace=False) for _ in range(5)]
            for _ in range(len(a["score"]))
        ]
    )
    obj, viol, g = (np.asarray(x) for x in ev.evaluate_lists(problem, lists))
    for u, j in itertools.product(range(len(lists)), range(5)):
        ro, rg = _numpy_eval(a, u, lists[u, j])
        np.testing.assert_allclose(obj[u, j], ro, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(g[u, j], rg, rtol=2e-5, atol=2e-6)
        assert viol[u, j] == pytest.approx(np.maximum(rg, 0).sum(), abs=2e-6)


def test_objectives_and_constraints_match_numpy_reference(synth):
    _check_against_numpy(*synth, seed=1)


def test_distinct_value_constraint_matches_numpy_reference():
    a = synth_arrays(seed=4, u=3, m=30)
    rng = np.random.default_rng(5)
    a["attr"] = rng.integers(-1, 12, (3, 30, 1))  # -1: unknown brand
    a.update(
        kinds=("min_distinct_share",), bound=np.array([6.0]), universe=np.zeros((3, 1))
    )
    _check_against_numpy(a, ev.make_problem(**a), seed=6)


def test_share_constraints_are_exact_at_the_threshold(synth):
    a, problem = synth
    flagged = np.flatnonzero(a["attr"][0, :, 1])
    other = np.flatnonzero(a["attr"][0, :, 1] == 0)
    x = np.concatenate([flagged[:2], other[: K - 2]])  # exactly the 2 needed
    g = np.asarray(ev.evaluate_lists(problem, np.broadcast_to(x, (U, 1, K)))[2])
    assert g[0, 0, 1] == 0.0


def test_repair_returns_k_distinct_sorted_candidates_in_range():
    rng = np.random.default_rng(2)
    fix = jax.jit(jax.vmap(repair, in_axes=(0, 0, None)))
    for n_cand in (K, K + 1, 13, 200):
        x = rng.integers(0, min(n_cand, 4), (500, K)).astype(np.int32)
        u = rng.random((500, K)).astype(np.float32)
        out = np.asarray(fix(jnp.asarray(u), jnp.asarray(x), jnp.int32(n_cand)))
        assert np.all(np.diff(out, axis=1) > 0)
        assert out.min() >= 0 and out.max() < n_cand


def test_selection_ranks_each_agent_like_the_pareto_core():
    rng = np.random.default_rng(3)
    p, n, ne, eps = 40, 20, 8, 0.05
    obj = rng.integers(0, 4, (p, 3)).astype(np.float32)  # ties and duplicates
    viol = np.where(rng.random(p) < 0.5, 0.0, rng.random(p) / 5).astype(np.float32)
    explore = np.arange(p) % 2 == 1
    src = np.asarray(
        jax.jit(select, static_argnums=4)(obj, viol, explore, ne, n, jnp.float32(eps))
    )
    assert len(set(src.tolist())) == n
    assert not explore[src[:ne]].any() and explore[src[ne:]].all()
    # within each agent, survivors never rank behind a rejected point
    for agent, chosen, v in ((False, src[:ne], viol), (True, src[ne:], None)):
        idx = np.flatnonzero(explore == agent)
        r = np.asarray(
            pareto.nondominated_ranks(
                -obj[idx], violation=None if v is None else v[idx], eps=eps
            )
        )
        rank = dict(zip(idx.tolist(), r.tolist(), strict=True))
        rejected = set(idx.tolist()) - set(chosen.tolist())
        worst_kept = max(rank[i] for i in chosen)
        assert all(rank[i] >= worst_kept for i in rejected)
    # an exploitation survivor list starts with the eps-feasible points
    feas = viol[src[:ne]] <= eps
    assert np.all(feas[: feas.sum()])


def test_transfer_swaps_elites_and_is_a_noop_for_one_agent():
    src = np.asarray(transfer(20, jnp.int32(10), 0.2))
    assert src[:2].tolist() == [10, 11] and src[10:12].tolist() == [0, 1]
    assert sorted(src.tolist()) == list(range(20))
    for ne in (0, 20):
        assert np.asarray(transfer(20, jnp.int32(ne), 0.2)).tolist() == list(range(20))


def test_copied_elites_overwrite_the_other_agents_worst_slots():
    n, ne, share = 20, 8, 0.25  # 2 elites each way (25% of 8)
    src = np.asarray(transfer(n, jnp.int32(ne), share, copy=True))
    want = np.arange(n)
    want[[ne - 1, ne - 2]] = [ne, ne + 1]  # exploration's elites, last first
    want[[n - 1, n - 2]] = [0, 1]  # exploitation's elites
    np.testing.assert_array_equal(src, want)
    assert set(range(2)) <= set(src[:ne].tolist())  # elites stay at home
    for ne in (0, 20):
        got = np.asarray(transfer(n, jnp.int32(ne), share, copy=True))
        assert got.tolist() == list(range(n))


def test_epsilon_starts_at_eps0_and_is_exactly_zero_at_the_end():
    eps = [
        float(epsilon(jnp.float32(0.3), jnp.int32(t), jnp.float32(20), 0.05, 0.1))
        for t in range(20)
    ]
    assert eps[0] == pytest.approx(0.3)
    assert all(a >= b for a, b in itertools.pairwise(eps))
    assert eps[-2:] == [0.0, 0.0] and eps[-3] > 0


def test_evolution_finds_feasible_lists_and_raises_hypervolume(synth):
    _, problem = synth
    seeds = np.arange(U, dtype=np.uint32)
    ne = np.full(U, 12)
    cert, _, _ = ev.greedy_lists(problem)
    pop0, eps0 = ev.init_population(problem, seeds, ne, CFG, seed_lists=cert)
    lists = pop0.lists
    for start in (0, ROUND):
        pop, trace, m = ev.evolve(
            problem,
            lists,
            ne,
            eps0,
            seeds,
            start=start,
            total=2 * ROUND,
            n_gens=ROUND,
            cfg=CFG,
        )
        lists = pop.lists
    hv0 = np.asarray(ev.final_front(pop0))
    hv1 = np.asarray(ev.final_front(pop))
    assert np.all(hv1 >= hv0 - 1e-6) and hv1.mean() > hv0.mean()
    np.testing.assert_allclose(np.asarray(trace["hypervolume"])[:, -1], hv1, rtol=1e-6)
    assert np.all(np.asarray(m.epsilon) == 0)  # strict at the end
    slot, ok = ev.pick(pop)
    assert np.all(np.asarray(ok))
    assert np.all(np.diff(np.asarray(pop.lists), axis=-1) > 0)  # distinct, canonical


def test_repair_from_any_list_never_raises_the_violation(synth):
    # the repair from the base top-k is the certificate; from random lists,
    # checked against the NumPy reference's constraint values: the result is
    # k distinct candidates whose violation is what the kernel reports and
    # never above the start's; feasible starts come back unchanged; one
    # user's batch equals that user alone
    a, problem = synth
    cert, cert_viol, _ = ev.greedy_lists(problem)
    top = np.broadcast_to(np.arange(K), (U, 1, K))
    again, again_viol = ev.repair_lists(problem, top)
    np.testing.assert_array_equal(np.asarray(again)[:, 0], np.asarray(cert))
    np.testing.assert_array_equal(np.asarray(again_viol)[:, 0], np.asarray(cert_viol))
    rng = np.random.default_rng(11)
    starts = np.stack(
        [[rng.choice(M, K, replace=False) for _ in range(6)] for _ in range(U)]
    )
    fixed, viol = (np.asarray(x) for x in ev.repair_lists(problem, starts))
    for u, j in itertools.product(range(U), range(6)):
        x = fixed[u, j]
        assert len(set(x.tolist())) == K and np.all(np.diff(x) > 0)
        assert x.min() >= 0 and x.max() < M
        before = np.maximum(_numpy_eval(a, u, starts[u, j])[1], 0).sum()
        after = np.maximum(_numpy_eval(a, u, x)[1], 0).sum()
        assert viol[u, j] == pytest.approx(after, abs=2e-6)
        assert after <= before + 2e-6
        if before == 0:
            np.testing.assert_array_equal(x, np.sort(starts[u, j]))
    assert (viol == 0).mean() > 0.5  # the search does repair, not just keep
    one = ev.make_problem(**{**synth_arrays(), **_user(a, 3)})
    alone, alone_viol = ev.repair_lists(one, starts[3:4])
    np.testing.assert_array_equal(np.asarray(alone)[0], fixed[3])
    np.testing.assert_array_equal(np.asarray(alone_viol)[0], viol[3])


def _user(a, u):
    """The host arrays of user ``u`` alone (a batch of one)."""
    per_user = ("score", "emb", "novelty", "attr", "universe", "n_cand")
    return {key: a[key][u : u + 1] for key in per_user}


def test_nsga2_offspring_mix_two_tournament_winners():
    from agenticrec.tools._evolve_ops import Operators, n_uniforms, variation

    rng = np.random.default_rng(7)
    n, m = 12, 40
    pop = np.sort(np.stack([rng.choice(m, K, replace=False) for _ in range(n)]), 1)
    ops = Operators(scheme="nsga2", crossover=1.0, mutation=0.0)
    u = rng.random((n, n_uniforms(K))).astype(np.float32)
    kids = np.asarray(
        jax.jit(variation, static_argnums=4)(u, pop, jnp.int32(n), jnp.int32(m), ops)
    )
    assert np.all(np.diff(kids, axis=1) > 0) and kids.max() < m
    members = [set(p.tolist()) for p in pop]
    for kid in kids:  # all but repaired entries come from some two parents
        best = max(len(set(kid) & (a | b)) for a in members for b in members)
        assert best >= K - 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({"score": "nan"}, "NaN"),
        ({"k": 201}, "larger than the candidate set"),
        ({"n_cand": "short"}, "fewer than k=10"),
        ({"kinds": ("max_gini", "min_share", "at_most")}, "constraint kind"),
        ({"score": "unsorted"}, "sorted best first"),
    ],
)
def test_make_problem_rejects_bad_input_clearly(change, message):
    a = synth_arrays()
    if change.get("score") == "nan":
        a["score"][2, 5] = np.nan
    elif change.get("score") == "unsorted":
        a["score"][1] = a["score"][1][::-1]
    elif change.get("n_cand") == "short":
        a["n_cand"] = np.array([200, 200, 9, 200, 200, 200, 200, 200])
    else:
        a.update(change)
    with pytest.raises(ConfigError, match=message):
        ev.make_problem(**a)


def _numpy_pick(obj, viol, rule, weights, max_loss):
    """One user's served slot, written from pick's docstring."""
    feas = np.flatnonzero(viol == 0)
    if feas.size == 0:
        return int(np.argmin(viol - 1e-6 * obj[:, 0]))
    front = [
        i
        for i in feas
        if not any(np.all(obj[j] >= obj[i]) and np.any(obj[j] > obj[i]) for j in feas)
    ]
    f = obj[front]
    lo, hi = f.min(0), f.max(0)
    z = (obj - lo) / np.where(hi > lo, hi - lo, 1.0)
    best = f[:, 0].max()
    if rule == "relevance":
        key = [tuple(obj[i]) for i in front]
        return front[max(range(len(front)), key=key.__getitem__)]
    if rule == "bounded":
        ok = [i for i in front if obj[i, 0] >= best * (1 - max_loss)]
        return max(ok, key=lambda i: z[i, 1] + z[i, 2] + 1e-6 * z[i, 0])
    if rule == "preference":
        return max(front, key=lambda i: z[i] @ weights)
    return min(front, key=lambda i: np.sum((1 - z[i]) ** 2))


@pytest.mark.parametrize("rule", ev.PICK_RULES)
def test_pick_rules_match_numpy_reference(rule):
    rng = np.random.default_rng(11)
    u, p = 30, 16
    # distinct continuous objectives (ties are the kernel's own business)
    obj = rng.random((u, p, 3)).astype(np.float32) * [1, 0.3, 0.6]
    obj[..., 0] += 0.5
    viol = np.where(rng.random((u, p)) < 0.5, 0.0, rng.random((u, p))).astype(
        np.float32
    )
    viol[0] = 0.1 + rng.random(p)  # nobody feasible: least violating
    viol[1] = 0.0  # everybody feasible
    weights, loss = np.array([0.2, 0.5, 0.3], np.float32), 0.1
    lists = np.zeros((u, p, K), np.int32)
    slot, ok = ev.pick(
        ev.Population(lists, obj, viol), rule, weights=weights, max_loss=loss
    )
    slot, ok = np.asarray(slot), np.asarray(ok)
    assert not ok[0] and ok[1:].all()
    want = [_numpy_pick(obj[i], viol[i], rule, weights, loss) for i in range(u)]
    assert slot.tolist() == want


def test_bounded_pick_trades_at_most_the_loss_for_diversity():
    # slot 0 most relevant; slot 1 loses 1% relevance but is far more diverse
    # and novel; slot 2 loses 5%: with a 2% budget the pick is slot 1, with 0
    # it is slot 0, with 10% slot 2 (the most diverse).
    obj = np.array(
        [[[1.0, 0.1, 0.1], [0.99, 0.3, 0.3], [0.95, 0.5, 0.5], [0.5, 0.2, 0.2]]],
        np.float32,
    )
    pop = ev.Population(
        np.zeros((1, 4, K), np.int32), obj, np.zeros((1, 4), np.float32)
    )
    picks = [int(np.asarray(ev.pick(pop, max_loss=x)[0])[0]) for x in (0.0, 0.02, 0.1)]
    assert picks == [0, 1, 2]
    assert int(np.asarray(ev.pick(pop, "relevance")[0])[0]) == 0


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"rule": "best"}, "pick rule"),
        ({"weights": (1.0, -1.0, 0.0)}, "weights"),
        ({"weights": (0.0, 0.0, 0.0)}, "not all be 0"),
        ({"weights": (1.0, 2.0)}, "weights"),
        ({"max_loss": 1.5}, "max_loss"),
    ],
)
def test_pick_rejects_bad_rules_and_weights(kw, message):
    pop = ev.Population(
        np.zeros((1, 2, K), np.int32), np.ones((1, 2, 3), np.float32), np.zeros((1, 2))
    )
    with pytest.raises(ConfigError, match=message):
        ev.pick(pop, **kw)
