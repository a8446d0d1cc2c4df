"""The coordinator rule gives exploration the share its solutions earn on
the feasible front, and exploits at the end of the budget."""

from agenticrec.graphs import _dualagent_roles as roles


def _obs(c, *, progress=0.3, feas=0.9):
    return {"progress": progress, "feasibility_rate": feas, "explore_contribution": c}


def test_exploration_that_adds_nothing_keeps_only_a_probe_share():
    assert roles.coordinator_rule(_obs(0.0)).exploitation_ratio == roles.ALPHA_MAX


def test_exploration_share_grows_with_its_contribution_to_the_front():
    a = [
        roles.coordinator_rule(_obs(c)).exploitation_ratio for c in (0, 0.05, 0.1, 0.3)
    ]
    assert a == sorted(a, reverse=True) and a[-1] == roles.ALPHA_MIN
    # 0.95 - 0.75 * c / 0.2, rounded to 2 decimals
    assert a[1] == 0.76 and a[2] == 0.57


def test_low_feasibility_and_late_budget_push_toward_exploitation():
    assert roles.coordinator_rule(_obs(0.1, feas=0.3)).exploitation_ratio == 0.67
    late = roles.coordinator_rule(_obs(0.5, progress=0.85)).exploitation_ratio
    assert late == roles.ALPHA_MAX == 0.95


def test_missing_or_negative_contribution_reads_as_none():
    obs = {"progress": 0.1, "feasibility_rate": 0.9, "explore_contribution": None}
    assert roles.coordinator_rule(obs).exploitation_ratio == roles.ALPHA_MAX
    assert roles.coordinator_rule(_obs(-0.2)).exploitation_ratio == roles.ALPHA_MAX
    assert "0.000" in roles.coordinator_rule(obs).reasoning
