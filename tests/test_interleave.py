"""Team-draft interleaving and paired A/B analysis, against plain references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agenticrec.errors import ConfigError
from agenticrec.tools.abtest import _unit, analyse, paired_t
from agenticrec.tools.interleave import credit, team_draft


def _reference(a, b, coins):
    """Radlinski et al.'s team-draft loop for one user, written plainly."""
    out, teams, na, nb = [], [], 0, 0
    la = [x for x in a if x >= 0]
    lb = [x for x in b if x >= 0]
    k = len(a)
    r = 0
    while len(out) < k:
        ra = [x for x in la if x not in out]
        rb = [x for x in lb if x not in out]
        if not ra and not rb:
            break
        a_turn = na < nb or (na == nb and coins[r])
        if (a_turn and ra) or not rb:
            out.append(ra[0])
            teams.append(0)
            na += 1
        else:
            out.append(rb[0])
            teams.append(1)
            nb += 1
        r += 1
    return out + [-1] * (k - len(out)), teams + [-1] * (k - len(teams))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_team_draft_matches_the_papers_loop_on_random_overlapping_lists(seed):
    rng = np.random.default_rng(seed)
    n, k = 40, 10
    a = np.stack([rng.choice(25, k, replace=False) for _ in range(n)]).astype(np.int32)
    b = np.stack([rng.choice(25, k, replace=False) for _ in range(n)]).astype(np.int32)
    b[:5] = a[:5]  # identical rankings
    a[5:8, 7:] = -1  # short lists
    ids = np.arange(100, 100 + n)
    items, team = team_draft(a, b, user_ids=ids, seed=seed)
    for u in range(n):
        coins = [_unit(seed, f"{ids[u]}:{r}") < 0.5 for r in range(k)]
        ref_items, ref_team = _reference(a[u].tolist(), b[u].tolist(), coins)
        assert items[u].tolist() == ref_items
        assert team[u].tolist() == ref_team
        got = items[u][items[u] >= 0]
        assert len(set(got.tolist())) == len(got)  # no item twice


def test_team_draft_keeps_team_sizes_within_one_at_every_prefix():
    rng = np.random.default_rng(7)
    a = np.stack([rng.permutation(30)[:10] for _ in range(50)])
    b = np.stack([rng.permutation(30)[:10] for _ in range(50)])
    _, team = team_draft(a, b, user_ids=np.arange(50), seed=3)
    for row in team:
        na = np.cumsum(row == 0)
        nb = np.cumsum(row == 1)
        assert np.all(np.abs(na - nb) <= 1)


def test_team_draft_depends_on_the_user_not_on_the_others():
    rng = np.random.default_rng(1)
    a = np.stack([rng.permutation(30)[:10] for _ in range(20)])
    b = np.stack([rng.permutation(30)[:10] for _ in range(20)])
    ids = np.arange(20)
    full, _ = team_draft(a, b, user_ids=ids, seed=5)
    part, _ = team_draft(a[10:], b[10:], user_ids=ids[10:], seed=5)
    assert np.array_equal(full[10:], part)


def test_credit_goes_to_the_team_that_drafted_the_hit():
    items = np.array([[5, 6, 7], [5, 6, 7], [1, 2, 3]])
    team = np.array([[0, 1, 0], [1, 0, 1], [0, 1, -1]], np.int8)
    got = credit(items, team, np.array([6, 7, 3]))
    assert got["HR@10"].tolist() == [[0, 0, 0], [1, 1, 0]]
    assert got["NDCG@10"][1, 0] == pytest.approx(1 / np.log2(3))
    assert got["NDCG@10"][1, 1] == pytest.approx(1 / np.log2(4))


def test_bad_shapes_are_refused():
    with pytest.raises(ConfigError):
        team_draft(np.zeros((2, 3)), np.zeros((2, 4)), user_ids=[1, 2], seed=0)
    with pytest.raises(ConfigError):
        team_draft(np.zeros((2, 3)), np.zeros((2, 3)), user_ids=[1], seed=0)
    with pytest.raises(ConfigError):
        credit(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(3))


def test_paired_t_equals_the_textbook_formula():
    rng = np.random.default_rng(0)
    c = rng.normal(size=50)
    t = c + rng.normal(0.3, 0.5, 50)
    d = t - c
    tt = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    p = 2 * stats.t.sf(abs(tt), len(d) - 1)
    assert paired_t(c, t) == pytest.approx((tt, p))
    assert paired_t(c, c) == (0.0, 1.0)


def test_paired_analysis_sees_an_effect_a_split_cannot():
    """Large between-user variance, small consistent within-user gain."""
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1.0, 200)
    c = {"m": base}
    t = {"m": base + 0.05 + rng.normal(0, 0.02, 200)}
    paired = analyse(c, t, primary="m", paired=True)
    split = analyse({"m": base[:100]}, {"m": t["m"][100:]}, primary="m")
    assert paired.decision == "treatment"
    assert split.decision != "treatment"
