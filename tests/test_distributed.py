"""The Ray backend: one run's users split across Ray workers give the report
of one process, one trajectory file with every record once, and a shard
whose worker is SIGKILLed mid-run resumes from its own checkpoint.

A local Ray (``ray.init(num_cpus=2)``) is started once for the module; the
subsets are small (a few dozen teacher users, six DualAgent users) so the
module runs in about two minutes on two cores. Without Ray the module skips,
or fails under ``AGENTICREC_REQUIRE_RAY=1`` (CI).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from agenticrec.distributed import split
from agenticrec.errors import ConfigError
from agenticrec.graphs.dualagent import DualAgentContext
from agenticrec.graphs.teacher import TeacherContext
from agenticrec.runner import run
from agenticrec.trajectory import TrajectoryWriter, read_trajectories
from tests.test_runtime import _cli  # the CLI in a subprocess

REQUIRE_RAY_ENV = "AGENTICREC_REQUIRE_RAY"
USERS = 24


def _need_ray():
    import importlib.util

    if importlib.util.find_spec("ray") is not None:
        return
    if os.environ.get(REQUIRE_RAY_ENV) == "1":
        pytest.fail(f"{REQUIRE_RAY_ENV}=1 but ray is missing")
    pytest.skip("ray extra not installed (pip install 'agenticrec[ray]')")


@pytest.fixture(scope="module")
def ray_cluster():
    _need_ray()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _by_user(path: Path) -> dict[str, list[tuple]]:
    """raw user -> its steps (step id, node, decision, metrics), run ids aside
    (they name the thread, which differs between backends)."""
    out: dict[str, list[tuple]] = {}
    for run_id, traj in read_trajectories(path).items():
        user = run_id.rsplit(":", 1)[1]
        assert user not in out, f"user {user} recorded twice"
        assert traj.complete, f"run {run_id} has no end record"
        out[user] = [
            (s.step_id, s.node, json.dumps(s.decision, sort_keys=True), s.metrics)
            for s in traj.steps
        ]
    return out


def _whole_lines(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode().splitlines()]


# --------------------------------------------------------------- no Ray
def test_split_gives_contiguous_shards_differing_by_at_most_one():
    items = list(range(11))
    shards = split(items, 4)
    assert [len(s) for s in shards] == [3, 3, 3, 2]
    assert [x for s in shards for x in s] == items
    assert split(items[:3], 8) == [[0], [1], [2]]  # never an empty shard


def test_appending_a_run_twice_writes_each_record_once(tmp_path):
    src, dst = tmp_path / "shard.jsonl", tmp_path / "all.jsonl"
    with TrajectoryWriter(src) as w:
        rec = w.run("r1", graph="teacher")
        rec.step("a", node="planner")
        rec.step("b", node="ranker")
        rec.end(metrics={"rank": 0})
    traj = read_trajectories(src)["r1"]
    with TrajectoryWriter(dst) as w:
        assert w.append(traj) == 4
    with TrajectoryWriter(dst) as w:  # a retried shard's records, reopened
        assert w.append(traj) == 0
    lines = _whole_lines(dst)
    assert [x["type"] for x in lines] == ["run", "step", "step", "end"]


def test_shards_get_the_drivers_settings_but_no_secret(monkeypatch):
    from agenticrec.distributed import _env

    monkeypatch.setenv("AGENTICREC_LLM_API_KEY", "sk-secret")
    monkeypatch.setenv("AGENTICREC_LLM_MODEL", "stub")
    monkeypatch.setenv("HOME_UNRELATED", "x")
    env = _env()
    assert env["AGENTICREC_LLM_MODEL"] == "stub"
    assert "AGENTICREC_LLM_API_KEY" not in env and "HOME_UNRELATED" not in env


def test_backend_ray_names_the_extra_when_ray_is_missing(tmp_path):
    fake = tmp_path / "site" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n")
    out = _cli(
        "run", "teacher", "--backend", "ray", "--users", "2",
        env={"PYTHONPATH": str(fake.parent)},
    )
    assert out.returncode == 2, out.stderr
    assert "pip install 'agenticrec[ray]'" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, code, says",
    [
        (("--workers", "-1"), 2, "workers=-1 is out of range"),
        (("--backend", "spark"), 2, "backend='spark': expected one of local, ray"),
        (("--address", "127.0.0.1:1"), 1, "cannot reach the Ray cluster at"),
        (("--address", "nowhere"), 2, "expected host:port"),
    ],
)
def test_bad_ray_settings_exit_with_one_line(args, code, says):
    _need_ray()
    base = ("run", "teacher", "--users", "2")
    if "--backend" not in args:
        base += ("--backend", "ray")
    out = _cli(*base, *args)
    assert out.returncode == code, out.stderr
    assert says in " ".join(out.stderr.split())
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_graph_without_user_fan_out_is_refused_on_ray():
    _need_ray()
    out = _cli("run", "system", "--backend", "ray")
    assert out.returncode == 2
    assert "has no per-user fan-out" in out.stderr


# ------------------------------------------------------------- on Ray
@pytest.fixture(scope="module")
def teacher_local(tmp_path_factory):
    d = tmp_path_factory.mktemp("local")
    ctx = TeacherContext(users=USERS, trajectories=str(d / "t.jsonl"))
    return run("teacher", ctx), d / "t.jsonl"


def test_teacher_on_two_workers_matches_one_process(
    ray_cluster, teacher_local, tmp_path
):
    local, local_traj = teacher_local
    traj = tmp_path / "t.jsonl"
    ctx = TeacherContext(
        users=USERS, backend="ray", workers=2, trajectories=str(traj)
    )
    rep = run("teacher", ctx, checkpoint=tmp_path / "ck")
    assert rep.metrics == local.metrics
    assert (rep.users, rep.policies, rep.reflections) == (
        local.users,
        local.policies,
        local.reflections,
    )
    assert [s["users"] for s in rep.shards] == [USERS // 2] * 2
    assert rep.thread_id == local.thread_id  # the same binding, the same thread
    _whole_lines(traj)
    assert _by_user(traj) == _by_user(local_traj)
    again = run("teacher", ctx, checkpoint=tmp_path / "ck")  # finished shards
    assert again.cached and again.metrics == local.metrics
    assert [s["attempts"] for s in again.shards] == [1, 1]
    assert _by_user(traj) == _by_user(local_traj)  # nothing appended twice


def test_dualagent_on_two_workers_matches_one_process(ray_cluster):
    kw = dict(users=6, pop_size=16, generations=4, coordinator_every=2)
    kw.update(n_candidates=60, method="fixed", baselines=True)
    local = run("dualagent", DualAgentContext(**kw))
    rep = run("dualagent", DualAgentContext(**kw, backend="ray", workers=2))
    assert rep.metrics == local.metrics
    assert (rep.alpha_trace, rep.policies, rep.users, rep.satisfiability) == (
        local.alpha_trace,
        local.policies,
        local.users,
        local.satisfiability,
    )
    assert len(rep.shards) == 2


def test_the_coordinator_decides_once_for_all_shards_as_in_one_process(ray_cluster):
    # the rule reads batch means: the shards add exact partial sums, so each
    # round's signals, alpha and per-generation trace are one process's
    kw = dict(users=7, pop_size=16, generations=6, coordinator_every=2)
    kw.update(n_candidates=60, method="dualagent", baselines=False, details=True)
    local = run("dualagent", DualAgentContext(**kw))
    rep = run("dualagent", DualAgentContext(**kw, backend="ray", workers=2))
    assert len(set(local.alpha_trace)) > 1  # the rule moved alpha
    assert rep.alpha_trace == local.alpha_trace and rep.policies == {"rule": 3}
    assert rep.rounds == local.rounds and rep.trace == local.trace
    assert rep.metrics == local.metrics and rep.result == local.result


def test_shards_that_share_values_must_fit_the_cluster_at_once(ray_cluster):
    kw = dict(users=6, pop_size=16, generations=2, n_candidates=60)
    with pytest.raises(ConfigError, match="Ray cluster has 2 CPU"):
        run("dualagent", DualAgentContext(**kw, backend="ray", workers=3))


def test_each_dualagent_worker_shards_its_users_over_its_local_devices(
    ray_cluster, monkeypatch
):
    kw = dict(users=6, pop_size=16, generations=4, coordinator_every=2)
    kw.update(n_candidates=60, method="fixed", baselines=False)
    local = run("dualagent", DualAgentContext(**kw))  # this process: 1 device
    # the shards' workers start with two host devices each (XLA_ variables
    # travel to the shards); --devices 0 shards over all of them
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    rep = run("dualagent", DualAgentContext(**kw, backend="ray", workers=2))
    assert [s["devices"] for s in rep.shards] == [2, 2]
    assert rep.metrics == local.metrics


def _kill_after_ends(folder: Path, ends: int, killed: dict) -> None:
    """SIGKILL shard 0's worker once its trajectory file holds ``ends``
    finished users (each checkpointed before the next starts at concurrency
    1)."""
    deadline = time.time() + 300
    while time.time() < deadline:
        pids = sorted(folder.glob("*.0-of-2.pids"))
        trajs = sorted(folder.glob("*.0-of-2.trajectories.jsonl"))
        if pids and trajs:
            text = trajs[0].read_text(encoding="utf-8", errors="replace")
            if text.count('"type":"end"') >= ends:
                pid = int(pids[0].read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
                return
        time.sleep(0.05)


def test_a_killed_worker_shard_resumes_with_every_user_once(ray_cluster, tmp_path):
    from agenticrec.evals._llm_stub import LatencyStub

    users = 16
    stub = LatencyStub(0.05)
    with stub as url:
        llm = dict(llm_base_url=url, llm_model="stub", llm_max_retries=0)
        ref = run("teacher", TeacherContext(users=users, concurrency=8, **llm))
        per_user = stub.calls / users
        folder, traj = tmp_path / "ck", tmp_path / "t.jsonl"
        ctx = TeacherContext(
            users=users,
            concurrency=1,
            backend="ray",
            workers=2,
            trajectories=str(traj),
            **llm,
        )
        killed: dict = {}
        killer = threading.Thread(
            target=_kill_after_ends, args=(folder, 3, killed), daemon=True
        )
        killer.start()
        rep = run("teacher", ctx, checkpoint=folder)
        killer.join(timeout=1)
    assert killed, "the shard finished before it could be killed"
    shard0 = rep.shards[0]
    assert shard0["attempts"] == 2 and shard0["pids"][0] == killed["pid"]
    # the users finished before the kill (the last end record seen may belong
    # to a user whose checkpoint write was still under way)
    assert shard0["resumed"] >= 2
    # resumed, not rerun: at most the one user in flight at the kill is redone
    rerun = (stub.calls - per_user * users) / per_user - users
    assert rerun < 2, f"{rerun:.1f} users' model calls were made twice"
    assert rep.users == users and rep.metrics == ref.metrics
    lines = _whole_lines(traj)
    runs = Counter(x["run_id"] for x in lines if x["type"] == "run")
    assert len(runs) == users and set(runs.values()) == {1}
    steps = Counter((x["run_id"], x["step_id"]) for x in lines if x["type"] == "step")
    assert set(steps.values()) == {1}
    assert Counter(x["run_id"] for x in lines if x["type"] == "end") == runs


def _kill_shard_after(folder: Path, shard: str, key: str, killed: dict) -> None:
    """SIGKILL ``shard``'s worker once the run's shared values hold ``key``."""
    deadline = time.time() + 300
    while time.time() < deadline:
        pids = sorted(folder.glob(f"*.{shard}.pids"))
        if pids and list(folder.glob(f"*.shared-of-*/{key}.json")):
            pid = int(pids[0].read_text().split()[0])
            os.kill(pid, signal.SIGKILL)
            killed["pid"] = pid
            return
        time.sleep(0.02)


def test_a_killed_dualagent_shard_resumes_and_the_llm_decides_once_per_round(
    ray_cluster, tmp_path
):
    from agenticrec.evals._llm_stub import LatencyStub

    kw = dict(users=6, pop_size=16, generations=16, coordinator_every=2)
    kw.update(n_candidates=60, method="dualagent", baselines=False, details=True)
    with LatencyStub(0.3) as url:
        llm = dict(llm_base_url=url, llm_model="stub", llm_max_retries=0)
        local = run("dualagent", DualAgentContext(**kw, **llm))
        assert local.policies == {"llm:stub": 8}
        traj, folder = tmp_path / "t.jsonl", tmp_path / "ck"
        ctx = DualAgentContext(
            **kw, **llm, backend="ray", workers=2, trajectories=str(traj)
        )
        killed: dict = {}
        killer = threading.Thread(
            target=_kill_shard_after,
            args=(folder, "1-of-2", "coordinator_6", killed),
            daemon=True,
        )
        killer.start()
        rep = run("dualagent", ctx, checkpoint=folder)
        killer.join(timeout=1)
    assert killed, "the shard finished before it could be killed"
    assert rep.shards[1]["attempts"] == 2 and rep.shards[1]["pids"][0] == killed["pid"]
    # shard 0 asked the model once per round for the whole batch; the resumed
    # shard got the stored decisions, and the result is one process's
    assert rep.policies == local.policies and rep.rounds == local.rounds
    assert rep.metrics == local.metrics and rep.result == local.result
    steps = [x for x in _whole_lines(traj) if x["type"] == "step"]
    coord = Counter(x["step_id"] for x in steps if x["node"] == "coordinator")
    assert len(coord) == 8 and set(coord.values()) == {1}


def test_cli_joins_a_running_cluster_and_prints_the_one_process_report(
    ray_cluster, teacher_local
):
    local, _ = teacher_local
    address = ray_cluster.get_runtime_context().gcs_address
    out = _cli(
        "run", "teacher", "--users", str(USERS), "--backend", "ray",
        "--workers", "2", "--address", address, "--json",
    )
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    assert rep["metrics"] == local.metrics
    assert [s["shard"] for s in rep["shards"]] == ["0-of-2", "1-of-2"]


TUNE_FAST = ("--rounds", "1", "--candidates", "3", "--offline-events", "1",
             "--embedding", "hashing", "--skillhub", ":temp:")


def test_cli_seed_list_runs_tune_tasks_at_once_on_ray(ray_cluster):
    from agenticrec.graphs.tune import TuneContext

    address = ray_cluster.get_runtime_context().gcs_address
    out = _cli("run", "tune", *TUNE_FAST, "--backend", "ray", "--seed-list",
               "0,1", "--address", address, "--json")
    assert out.returncode == 0, out.stderr
    reps = json.loads(out.stdout)
    assert [r["seed"] for r in reps] == [0, 1]
    fast = dict(rounds=1, candidates=3, offline_events=1, embedding="hashing")
    one = run("tune", TuneContext(seed=1, skillhub=":temp:", **fast))
    drop = ("timings", "cached", "skillhub")
    mine = one.model_dump(mode="json")
    assert {k: v for k, v in reps[1].items() if k not in drop} == {
        k: v for k, v in mine.items() if k not in drop
    }


@pytest.mark.parametrize(
    "args, says",
    [
        (("--seed-list", "0,1"), "add --backend ray"),
        (("--backend", "ray", "--seed-list", "0,x"), "comma-separated integers"),
        (("--backend", "ray", "--seed-list", "0,1", "--skillhub", "hub"),
         "cannot share one Skillhub folder"),
    ],
)
def test_bad_seed_lists_exit_2_with_one_line(args, says):
    out = _cli("run", "tune", *args)
    assert out.returncode == 2, out.stderr
    assert says in " ".join(out.stderr.split())
    assert len(out.stderr.strip().splitlines()) == 1
