"""A pip-installed tool plugin reaches the teacher: planned, called, blended
into the ranking, replayed and exported; models and policies from Python."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from agenticrec.errors import ConfigError, PluginError
from agenticrec.export import export_file
from agenticrec.graphs import teacher
from agenticrec.plugins import DISABLE_ENV, default_registry, signal_tool
from agenticrec.policy import RulePolicy
from agenticrec.replay import replay_file
from agenticrec.runner import run
from agenticrec.trajectory import read_trajectories

PLUGIN = Path(__file__).parents[1] / "plugins" / "signal"
USERS = 8


@pytest.fixture(scope="module")
def genre_site(tmp_path_factory) -> Path:
    """``pip install`` the plugin package (tests/plugins/signal) into a folder:
    a real build, a real dist-info with its entry point."""
    root = tmp_path_factory.mktemp("genre-plugin")
    src, site = root / "src", root / "site"
    shutil.copytree(PLUGIN, src)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
        + ["--no-build-isolation", "--no-index", "--target", str(site), str(src)],
        check=True,
    )
    return site


@pytest.fixture
def plugin(genre_site, monkeypatch):
    """The installed plugin on ``sys.path`` for one test, autoload on."""
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    monkeypatch.syspath_prepend(str(genre_site))
    importlib.invalidate_caches()
    default_registry.cache_clear()
    yield
    default_registry.cache_clear()
    sys.modules.pop("agenticrec_genre_plugin", None)


def _rankings(path: Path) -> dict[str, list[int]]:
    """Raw user id -> final ranking (a run id is ``<thread>:<raw user>``)."""
    runs = read_trajectories(path).items()
    return {rid.rsplit(":", 1)[1]: t.end.metrics["ranking"] for rid, t in runs}


@pytest.fixture
def plugin_run(plugin, tmp_path) -> Path:
    path = tmp_path / "plugin.jsonl"
    run("teacher", teacher.TeacherContext(users=USERS, trajectories=str(path)))
    return path


def test_teacher_plans_calls_and_blends_the_plugin_signal(plugin_run, tmp_path):
    runs = read_trajectories(plugin_run)
    assert len(runs) == USERS
    for traj in runs.values():
        plan = next(s for s in traj.steps if s.node == "planner")
        assert "genre_affinity" in plan.observation["available"]
        assert "genre_affinity" in plan.decision["analyses"]
        step = next(s for s in traj.steps if s.node == "tools")
        call = next(c for c in step.tool_results if c["name"] == "genre_affinity")
        assert call["result"]["signal"] == "genre_affinity"
        assert "index" not in call["args"] and len(call["result"]["scores"]) == 20
    default_registry.cache_clear()
    without = tmp_path / "builtin.jsonl"
    ctx = teacher.TeacherContext(users=USERS, trajectories=str(without))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DISABLE_ENV, "1")
        run("teacher", ctx, thread_id="no-plugin")
    a, b = _rankings(plugin_run), _rankings(without)
    assert set(a) == set(b) and sum(a[r] != b[r] for r in a) >= 2


def test_plugin_calls_replay_identical_and_export_lists_the_schema(
    plugin_run, tmp_path
):
    report = replay_file(plugin_run)
    assert report.ok, report.differences[:3]
    assert report.calls >= 5 * USERS
    export_file(plugin_run, tmp_path, "sft")
    row = json.loads((tmp_path / "sft.jsonl").read_text().splitlines()[0])
    schema = next(t for t in row["tools"] if t["function"]["name"] == "genre_affinity")
    params = schema["function"]["parameters"]
    assert set(params["properties"]) == {"user", "candidates"}
    assert "genre" in schema["function"]["description"]


class Recorder:
    """A custom policy: the rule's decisions, observations kept."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def decide(self, role, observation):
        self.seen.append(dict(observation))
        d = RulePolicy().decide(role, observation)
        return type(d)(d.role, d.value, self.name, d.latency_ms)


def test_llm_analyst_sees_the_plugin_schema_and_output_names_the_policy(plugin):
    rec = Recorder()
    ctx = teacher.TeacherContext(users=1, policies={"teacher.analyst": rec})
    out = teacher.graph.invoke({"users": [0]}, context=ctx)
    obs = rec.seen[0]
    assert "genre_affinity" in obs["tools"]
    (spec,) = obs["plugin_tools"]
    assert spec["name"] == "genre_affinity" and spec["analysis"] == "genre_affinity"
    assert set(spec["parameters"]["properties"]) == {"user", "candidates"}
    policies = out["results"][0]["policies"]
    assert policies["analyst"]["policy"] == "recorder"
    assert policies["planner"]["policy"] == "rule"


def test_a_langchain_chat_model_decides_and_falls_back_to_the_rule():
    plan = '{"analyses": ["profile", "long_term"], "reason": "fake model"}'
    model = GenericFakeChatModel(messages=iter([AIMessage(plan)]))
    ctx = teacher.TeacherContext(users=1, model=model, llm_max_retries=0)
    out = teacher.build_graph().invoke({"users": [0]}, context=ctx)
    policies = out["results"][0]["policies"]
    assert policies["planner"] == {
        "policy": "llm:GenericFakeChatModel",
        "fallback_reason": None,
    }
    # the fake model has no second reply: the analyst's rule decides, and says why
    assert policies["analyst"]["policy"] == "rule"
    assert policies["analyst"]["fallback_reason"].startswith("llm:GenericFake")
    assert "model" not in ctx.settings() and "policies" not in ctx.settings()


def test_tools_given_to_build_graph_become_analyses(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "1")
    default_registry.cache_clear()

    @signal_tool("long_history_bias", weight=2.0)
    def long_history_bias(index, user: int, candidates: list[int]) -> list[float]:
        """Prefer candidates with larger ids (a deliberately strong signal)."""
        return [float(c) for c in candidates]

    g = teacher.build_graph(tools=[long_history_bias])
    out = g.invoke({"users": [0, 1]}, context=teacher.TeacherContext(users=2))
    base = teacher.graph.invoke({"users": [0, 1]}, context=teacher.TeacherContext())
    assert [r["ranking"] for r in out["results"]] != [
        r["ranking"] for r in base["results"]
    ]


def test_a_plugin_signal_that_shadows_a_builtin_names_its_origin(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "1")
    default_registry.cache_clear()

    @signal_tool("neighbours", weight=1.0)
    def fake_neighbours(index, user: int, candidates: list[int]) -> list[float]:
        """Shadows the built-in neighbours signal."""
        return [0.0] * len(candidates)

    g = teacher.build_graph(tools=[fake_neighbours])
    with pytest.raises(PluginError, match="signal 'neighbours'.*already taken"):
        g.invoke({"users": [0]}, context=teacher.TeacherContext(users=1))


def test_unknown_role_in_policies_is_a_clear_error():
    ctx = teacher.TeacherContext(users=1, policies={"teacher.rankr": RulePolicy()})
    with pytest.raises(ConfigError, match="teacher.rankr.*registered roles"):
        teacher.graph.invoke({"users": [0]}, context=ctx)
