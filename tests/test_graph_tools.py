"""LangChain graph tools: JSON-ready results whose numbers match the kernels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from agenticrec.tools import BUILTIN_TOOL_MODULES, graph_tools
from agenticrec.tools.graph import InteractionGraph, recommend_cooccurring

NAMES = [
    "graph_cooccurring_items",
    "graph_two_hop_items",
    "graph_similar_users",
    "graph_neighbour_items",
    "graph_random_walk_items",
    "graph_item_stats",
]


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(11)
    users, items = rng.integers(0, 40, 400), rng.integers(0, 30, 400)
    stamps = rng.uniform(1.5e9, 1.6e9, 400)
    graph = InteractionGraph.from_interactions(users, items, 41, 31, timestamps=stamps)
    x = np.zeros((41, 31), np.int64)
    x[users, items] = 1
    titles = [f"movie {j}" for j in range(31)]
    tools = {
        t.name: t for t in graph_tools.make_graph_tools(graph, titles, dataset="toy")
    }
    return x, graph, tools, stamps, items


def test_tools_have_schemas_descriptions_and_json_results(small):
    _, _, tools, _, _ = small
    assert list(tools) == NAMES
    calls = {
        "graph_cooccurring_items": {"items": [3, 4]},
        "graph_item_stats": {"items": [3, 30]},
    }
    for name, tool in tools.items():
        assert tool.description.strip() and tool.args_schema is not None
        out = tool.invoke(calls.get(name, {"user": 5}))
        assert out["dataset"] == "toy"
        assert json.loads(json.dumps(out)) == out


def test_cooccurring_items_quotes_counts_and_lift_of_each_pair(small):
    x, _, tools, _, _ = small
    c = x.T @ x
    pop = x.sum(0)
    out = tools["graph_cooccurring_items"].invoke(
        {"items": [3, 4], "n": 5, "measure": "count", "min_count": 1}
    )
    assert [q["item"] for q in out["query"]] == [3, 4]
    assert out["query"][0] == {"item": 3, "title": "movie 3", "popularity": pop[3]}
    totals = c[3] + c[4]
    totals[[3, 4]] = 0
    want = sorted(range(31), key=lambda j: (-totals[j], j))[:5]
    assert [nb["neighbour"] for nb in out["neighbours"]] == want
    for nb in out["neighbours"]:
        j = nb["neighbour"]
        assert nb["co_count"] == totals[j] and nb["popularity"] == pop[j]
        assert nb["title"] == f"movie {j}"
        for pair in nb["pairs"]:
            i = pair["item"]
            assert pair["co_count"] == c[i, j]
            assert pair["lift"] == pytest.approx(c[i, j] * 41 / (pop[i] * pop[j]), 1e-3)
            assert pair["cosine"] == pytest.approx(
                c[i, j] / np.sqrt(pop[i] * pop[j]), 1e-3
            )
            assert pair["jaccard"] == pytest.approx(
                c[i, j] / (pop[i] + pop[j] - c[i, j]), 1e-3
            )


def test_user_tools_match_the_kernels(small):
    x, graph, tools, _, _ = small
    out = tools["graph_two_hop_items"].invoke({"user": 7, "n": 4})
    ref = recommend_cooccurring(graph, 7, 4)
    assert [r["item"] for r in out["items"]] == np.asarray(ref.ids).tolist()
    assert [r["paths"] for r in out["items"]] == np.asarray(ref.scores).tolist()
    assert out["history_size"] == x[7].sum()
    sim = tools["graph_similar_users"].invoke({"user": 7, "k": 3})["neighbours"]
    for row in sim:
        v = row["user"]
        shared = int(x[7] @ x[v])
        assert row["shared_items"] == shared and row["history_size"] == x[v].sum()
        assert row["cosine"] == pytest.approx(
            shared / np.sqrt(x[7].sum() * x[v].sum()), abs=1e-4
        )
    knn = tools["graph_neighbour_items"].invoke({"user": 7, "k": 3, "n": 5})
    voters = [row["user"] for row in sim]
    for row in knn["items"]:
        assert row["neighbours_liked"] == x[voters, row["item"]].sum()
        assert x[7, row["item"]] == 0
    walk = tools["graph_random_walk_items"].invoke({"user": 7, "n": 5})
    probs = [r["visit_per_million"] for r in walk["items"]]
    assert probs == sorted(probs, reverse=True) and all(p > 0 for p in probs)


def test_item_stats_reports_popularity_rank_and_last_interaction(small):
    x, _, tools, stamps, items = small
    out = tools["graph_item_stats"].invoke({"items": [3, 30]})["items"]
    pop = x.sum(0)
    assert out[0]["popularity"] == pop[3]
    assert out[0]["popularity_rank"] == 1 + (pop > pop[3]).sum()
    assert out[0]["share_of_users"] == pytest.approx(pop[3] / 41, abs=1e-4)
    day = np.datetime64(int(stamps[items == 3].max()), "s").astype("M8[D]")
    assert out[0]["last_interaction"] == str(day)
    assert out[1]["popularity"] == 0 and out[1]["last_interaction"] is None


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("graph_two_hop_items", {"user": 41}, "valid: 0..40"),
        ("graph_similar_users", {"user": -1}, "not a user id of toy"),
        ("graph_item_stats", {"items": [31]}, "unknown item ids [31]"),
    ],
)
def test_bad_ids_come_back_as_a_message_naming_the_valid_range(
    small, name, args, message
):
    _, _, tools, _, _ = small
    assert message in tools[name].invoke(args)


def test_arguments_are_validated_by_the_schema(small):
    _, _, tools, _, _ = small
    with pytest.raises(ValidationError):
        tools["graph_two_hop_items"].invoke({"user": 1, "n": 1000})
    with pytest.raises(ValidationError):
        tools["graph_cooccurring_items"].invoke({"items": [1], "measure": "pmi"})


def test_module_tools_are_registered_and_bound_lazily_to_the_shipped_data():
    from agenticrec.plugins import load_tools

    assert "agenticrec.tools.graph_tools" in BUILTIN_TOOL_MODULES
    registry = load_tools(plugins=False)
    assert set(NAMES) <= {t.name for t in registry.tools()}
    out = registry["graph_item_stats"].invoke({"items": [0]})
    assert out["dataset"] == "ml-latest-small"
    assert out["items"][0]["title"] == "Toy Story (1995)"
