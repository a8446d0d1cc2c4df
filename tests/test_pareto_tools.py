"""The ``hypervolume`` and ``pareto_front`` LangChain tools: registry, I/O, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agenticrec.plugins import load_tools
from agenticrec.tools import pareto_tools

moocore = pytest.importorskip("moocore")


@pytest.fixture(scope="module")
def registry():
    return load_tools(plugins=False)


def test_tools_are_registered_with_pydantic_arguments(registry):
    for name in ("hypervolume", "pareto_front"):
        tool = registry[name]
        assert tool in pareto_tools.TOOLS
        assert "objective vector" in tool.description
        assert "minimised" in tool.description
    assert set(registry["hypervolume"].args) == {"point_sets", "ref_point", "maximize"}


def test_hypervolume_tool_scores_each_list_like_moocore(registry):
    a = [[0.2, 0.9], [0.5, 0.4], [0.9, 0.1]]
    b = [[0.3, 0.3]]
    out = registry["hypervolume"].invoke({"point_sets": [a, b], "ref_point": [1, 1]})
    json.dumps(out)
    want = [moocore.hypervolume(np.array(s), ref=[1, 1]) for s in (a, b)]
    np.testing.assert_allclose(out["hypervolumes"], want, rtol=1e-6)
    assert out["n_points"] == [3, 1] and out["exact"] is True


def test_hypervolume_tool_maximises_the_flagged_objectives(registry):
    accuracy_and_cost = [[0.9, 3.0], [0.7, 1.0]]
    out = registry["hypervolume"].invoke(
        {
            "point_sets": [accuracy_and_cost],
            "ref_point": [0.0, 4.0],
            "maximize": [True, False],
        }
    )
    want = moocore.hypervolume(
        np.array(accuracy_and_cost), ref=[0.0, 4.0], maximise=[True, False]
    )
    assert out["hypervolumes"][0] == pytest.approx(want, rel=1e-6)
    assert out["ref_point"] == [0.0, 4.0] and out["maximize"] == [True, False]


def test_hypervolume_tool_default_reference_is_shared_and_beyond_every_point(registry):
    out = registry["hypervolume"].invoke(
        {"point_sets": [[[0.0, 1.0], [1.0, 0.0]], [[0.5, 0.5]]]}
    )
    assert out["ref_point"] == pytest.approx([1.1, 1.1])
    assert all(v > 0 for v in out["hypervolumes"])


def test_pareto_front_tool_matches_moocore_ranks(registry):
    rng = np.random.default_rng()
    pts = rng.integers(0, 6, (30, 3)).tolist()
    out = registry["pareto_front"].invoke({"points": pts})
    json.dumps(out)
    ranks = moocore.pareto_rank(np.array(pts))
    assert out["ranks"] == ranks.tolist()
    assert out["nondominated"] == np.flatnonzero(ranks == 0).tolist()
    assert out["n_fronts"] == ranks.max() + 1


@pytest.mark.parametrize(
    "name,args,message",
    [
        ("pareto_front", {"points": [[1, 2], [3]]}, "same length"),
        ("pareto_front", {"points": []}, "non-empty"),
        ("pareto_front", {"points": [[1, 2]], "maximize": [True] * 3}, "3 flags"),
        ("hypervolume", {"point_sets": [[[1, 2]]], "ref_point": [1]}, "2 finite"),
        ("hypervolume", {"point_sets": [[[1, 2]], [[1, 2, 3]]]}, "same length"),
    ],
)
def test_bad_input_comes_back_as_a_message_for_the_model(registry, name, args, message):
    out = registry[name].invoke(args)
    assert isinstance(out, str) and message in out
