"""DualAgent-Rec end to end on real data (rule policy unless a test fakes
the LLM); one small configuration so the kernels compile once."""

from __future__ import annotations

import json

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from agenticrec.checkpoint import open_checkpointer
from agenticrec.errors import ConfigError
from agenticrec.graphs import _dualagent_problem as dp
from agenticrec.graphs import _dualagent_spec, dualagent
from agenticrec.policy import LLMPolicy
from agenticrec.runner import run
from agenticrec.trajectory import read_trajectories

SMALL = dict(
    data="ml-latest-small",
    n_candidates=200,
    pop_size=24,
    generations=6,
    coordinator_every=3,
    trace_hv=True,
)
N_USERS = 8


def ctx(**kw) -> dualagent.DualAgentContext:
    return dualagent.DualAgentContext(**{**SMALL, "users": N_USERS, **kw})


def users_of(c: dualagent.DualAgentContext) -> list[int]:
    return _dualagent_spec.make_input(c)["users"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("traj") / "t.jsonl"
    rep = run("dualagent", ctx(trajectories=str(path), details=True))
    return rep.model_dump(), path


def _strip(rep):
    if not isinstance(rep, dict):
        rep = rep.model_dump()
    return {k: v for k, v in rep.items() if k not in ("timings", "thread_id")}


def test_satisfiable_users_end_strictly_feasible_with_baselines(report):
    rep, _ = report
    m = rep["metrics"]
    assert set(m) == {"dualagent", "base_topk", "mmr", "greedy_repair"}
    assert rep["satisfiability"]["yes"] == N_USERS
    assert m["dualagent"]["feasible_if_satisfiable"] == 1.0
    assert m["dualagent"]["hypervolume"] > m["greedy_repair"]["hypervolume"]
    for u in rep["result"]["users"]:
        assert u["feasible"] and all(v <= 0 for v in u["constraints"].values())
        assert len(set(u["items"])) == 10


def test_coordinator_decisions_are_bounded_and_recorded(report):
    rep, path = report
    assert rep["policies"] == {"rule": 2}
    assert len(rep["alpha_trace"]) == 2
    assert all(0.2 <= a <= 0.95 for a in rep["alpha_trace"])
    traj = next(iter(read_trajectories(path).values()))
    assert traj.complete
    steps = [s for s in traj.steps if s.node == "coordinator"]
    assert [s.role for s in steps] == ["dualagent.coordinator"] * 2
    assert steps[0].decision["exploitation_ratio"] == rep["alpha_trace"][0]
    assert {"hypervolume", "feasibility_rate", "progress"} <= set(steps[0].observation)
    assert [r["generation"] for r in rep["trace"]] == list(range(1, 7))


def test_same_seed_gives_identical_report(report):
    again = run("dualagent", ctx(details=True), thread_id="again")
    a = _strip(report[0])
    b = _strip(again)
    assert a == b


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, report):
    c = ctx(details=True)
    with open_checkpointer(tmp_path / "ck.sqlite") as ck:
        g = dualagent.build_graph(checkpointer=ck.saver)
        cfg = {"configurable": {"thread_id": "cut"}, "recursion_limit": 100}
        for n, _ in enumerate(g.stream({"users": users_of(c)}, cfg, context=c)):
            if n == 3:  # after the first evolve round, as a killed process
                break
        snap = g.get_state(cfg)
        assert snap.next and snap.values["generation"] == 3
        resumed = run("dualagent", c, checkpoint=ck, thread_id="cut")
    assert _strip(resumed) == _strip(report[0])


def _fake_llm(c: dualagent.DualAgentContext, reply: str) -> dualagent.DualAgentContext:
    """``c`` whose run decides through a fake chat model (the run's policy)."""
    from agenticrec.context import Context

    c.services.policy = LLMPolicy(
        FakeListChatModel(responses=[reply]), context=Context(llm_max_retries=1)
    )
    return c


def test_invalid_llm_reply_keeps_the_previous_alpha_and_says_why(tmp_path):
    path = tmp_path / "t.jsonl"
    c = ctx(trajectories=str(path), baselines=False, details=True)
    rep = run(
        "dualagent",
        _fake_llm(c, '{"exploitation_ratio": 0.99, "reasoning": "all in"}'),
    )
    assert rep["alpha_trace"] == [dualagent.LAYOUT_ALPHA] * 2
    assert rep["policies"] == {"rule (fallback)": 2}
    assert rep["kept_previous"] == 2
    assert all(
        "less than or equal to 0.95" in r["fallback_reason"] for r in rep["rounds"]
    )
    steps = [s for s in next(iter(read_trajectories(path).values())).steps]
    coord = [s for s in steps if s.node == "coordinator"]
    assert all(s.fallback_reason and s.extra["kept_previous"] for s in coord)
    assert rep["metrics"]["dualagent"]["feasible_if_satisfiable"] == 1.0


def test_valid_llm_reply_sets_alpha():
    c = ctx(baselines=False)
    rep = run(
        "dualagent",
        _fake_llm(c, 'Sure: {"exploitation_ratio": 0.65, "reasoning": "ok"}'),
    )
    assert rep["alpha_trace"] == [0.65, 0.65]
    assert rep["policies"] == {"llm:FakeListChatModel": 2}
    assert rep["kept_previous"] == 0


@pytest.mark.parametrize("method", ["explore", "exploit", "fixed"])
def test_one_agent_and_fixed_alpha_baselines_run_on_the_same_users(method, report):
    rep = run("dualagent", ctx(method=method, baselines=False))
    s = rep["metrics"][method]
    assert s["users"] == N_USERS and 0 < s["hypervolume"] < 1
    assert rep["policies"] == {"fixed": 2}
    assert rep["alpha_trace"] == [dualagent.fixed_alpha(ctx(method=method))] * 2
    if method != "explore":  # exploration alone ignores the constraints
        assert s["feasible_if_satisfiable"] == 1.0


def test_nsga2_is_strict_single_population_with_its_own_operators():
    cfg = dualagent.method_config("nsga2", 24)
    assert cfg.ops.scheme == "nsga2" and not cfg.relax and cfg.transfer_every == 0
    assert dualagent.fixed_alpha(ctx(method="nsga2")) == 1.0


def test_unsatisfiable_users_are_listed_with_the_binding_constraint(tmp_path):
    spec = tmp_path / "c.json"
    spec.write_text(
        json.dumps(
            {
                "constraints": [
                    {"kind": "max_gini", "attribute": "category", "threshold": 0.6},
                    {"kind": "min_share", "attribute": "long_tail", "threshold": 0.2},
                    {"kind": "min_share", "attribute": "recent", "threshold": 1.0},
                ]
            }
        )
    )
    c = ctx(constraints=str(spec))
    b = dualagent.workspace(c, users_of(c)).batch
    assert "no" in b.satisfiable
    for s, bind in zip(b.satisfiable, b.binding, strict=True):
        if s == "no":
            assert bind == "min_share(recent) >= 1"


def test_users_with_too_few_candidates_are_reported_not_dropped(monkeypatch):
    real = dp.base_candidates

    def short(ws, users, m):
        ids, sc = real(ws, users, m)
        ids[1, 5:], sc[1, 5:] = -1, 0.0
        return ids, sc

    monkeypatch.setattr(dp, "base_candidates", short)
    ws = dp.workspace("ml-latest-small")
    users = ws.users[:9]
    b = dp.build_batch(
        ws,
        users,
        n_candidates=200,
        k=10,
        specs=dp.default_constraints(ws.dataset),
        seed=0,
    )
    assert b.users.tolist() == [users[0], *users[2:]]
    assert b.skipped == [
        {
            "user": int(users[1]),
            "raw_user": str(ws.dataset.user_ids[users[1]]),
            "reason": "only 5 candidate(s) for k=10",
        }
    ]


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"kind": "max_gini", "attribute": "category", "threshold": 1.5},
            "less than or equal to 1",
        ),
        (
            {"kind": "min_share", "attribute": "long_tail", "threshold": -0.1},
            "greater than or equal to 0",
        ),
        (
            {"kind": "min_share", "attribute": "category", "threshold": 0.2},
            "does not apply",
        ),
        (
            {"kind": "min_share", "attribute": "colour", "threshold": 0.2},
            "unknown attribute",
        ),
        (
            {"kind": "min_distinct_share", "attribute": "brand", "threshold": 0},
            r"\(0, 1\]",
        ),
        (
            {
                "kind": "min_share",
                "attribute": "long_tail",
                "threshold": 0.2,
                "param": 2,
            },
            "head share",
        ),
    ],
)
def test_bad_constraint_files_are_clear_errors(tmp_path, spec, message):
    f = tmp_path / "c.json"
    f.write_text(json.dumps([spec]))
    with pytest.raises(ConfigError, match=message) as err:
        dp.load_constraints(f)
    assert str(f) in str(err.value)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="larger than the candidate set"):
        ctx(k=20, n_candidates=10)
    with pytest.raises(ConfigError, match="method"):
        ctx(method="moead")
    with pytest.raises(ConfigError, match="^preference="):
        ctx(preference="1,2")
    with pytest.raises(ConfigError, match="^preference="):
        ctx(preference="0,0,0")
    for name, bad in (
        ("k", 0),
        ("users", -5),
        ("generations", 0),
        ("alpha", 1.5),
        ("max_loss", 2.0),
    ):
        with pytest.raises(ConfigError, match=f"^{name}={bad}"):
            ctx(**{name: bad})
    # predictable memory is checked before anything compiles
    with pytest.raises(ConfigError, match=r"^k=500 .*greedy repair kernel .* GB"):
        users_of(ctx(k=500, n_candidates=600, users=100, memory_gb=64))
    with pytest.raises(ConfigError, match=r"^pop_size=100000 .*evolution kernel"):
        users_of(ctx(pop_size=100_000, users=100, memory_gb=16))
    with pytest.raises(ConfigError, match="no held-out test item|unknown user"):
        dualagent.workspace(ctx(), [10**6])


def test_gini_on_a_many_valued_attribute_says_what_to_use(shared_data):
    ws = dp.workspace(str(shared_data / "amazon18-scientific-unisrec"))
    spec = dp.ConstraintSpec(kind="max_gini", attribute="category_path", threshold=0.6)
    with pytest.raises(ConfigError, match="use min_distinct_share"):
        ws.attribute(spec)


def test_cli_writes_a_json_report_and_plots_inside_the_folder(
    tmp_path, report, monkeypatch
):
    from typer.testing import CliRunner

    from agenticrec.cli import _register_graphs, app

    monkeypatch.setenv("AGENTICREC_JAX_CACHE", "0")
    _register_graphs()
    out = tmp_path / "plots"
    res = CliRunner().invoke(
        app,
        [
            "run",
            "dualagent",
            "--users",
            str(N_USERS),
            "--pop",
            "24",
            "--gens",
            "6",
            "--every",
            "3",
            "--candidates",
            "200",
            "--plot",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["metrics"]["dualagent"] == report[0]["metrics"]["dualagent"]
    assert sorted(p.name for p in out.iterdir()) == [
        "alpha.png",
        "convergence.png",
        "front.png",
    ]
    assert all(v.startswith(str(out.resolve())) for v in rep["plots"].values())
