"""Seed skill files: the shipped seeds parse, malformed files name file and line."""

from __future__ import annotations

import textwrap

import pytest

from agenticrec.errors import DataFormatError
from agenticrec.skills import load_seed_skills, parse_seed_file, seed_dir

GOOD = textwrap.dedent(
    """\
    ---
    id: seed-test
    north_star: NDCG@10
    stage: ranking
    tools: ab_test, evaluate_offline
    ---
    # Test skill

    ## Task context
    When testing.

    ## Requirement
    Pass.

    ## Initial config
    - `ranking.w_cf`: 1.0
    - `ranking.fusion`: "multiplicative"
    - `rerank.on`: true
    - `recall.total`: 500
    - `rerank.similarity`: genre_jaccard

    ## Domain knowledge
    Line one.

    - a bullet
    """
)


def _write(tmp_path, text: str, name: str = "s.md"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_seeds_cover_the_pipeline_stages():
    seeds = load_seed_skills()
    assert 4 <= len(seeds) <= 6
    assert {s.stage for s in seeds} >= {"recall", "pre-ranking", "ranking", "rerank"}
    assert len({s.id for s in seeds}) == len(seeds)
    for s in seeds:
        assert s.source == "seed" and s.initial_config and s.tools
        assert s.task_context and s.requirement and len(s.domain_knowledge) > 200
        assert all("." in knob for knob in s.initial_config)  # stage.knob names
    assert seed_dir().is_dir()


def test_seed_file_parses_into_a_record(tmp_path):
    skill = parse_seed_file(_write(tmp_path, GOOD))
    assert skill.id == "seed-test" and skill.title == "Test skill"
    assert skill.north_star == "NDCG@10" and skill.stage == "ranking"
    assert skill.dataset == "any"
    assert skill.tools == ["ab_test", "evaluate_offline"]
    assert skill.initial_config == {
        "ranking.w_cf": 1.0,
        "ranking.fusion": "multiplicative",
        "rerank.on": True,
        "recall.total": 500,
        "rerank.similarity": "genre_jaccard",
    }
    assert type(skill.initial_config["recall.total"]) is int
    assert skill.task_context == "When testing." and skill.requirement == "Pass."
    assert skill.domain_knowledge == "Line one.\n\n- a bullet"


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("---\nid: seed-test", "id: seed-test", 1, "front matter"),
        ("stage: ranking", "colour: red", 4, "key: value"),
        ("north_star: NDCG@10\n", "", 5, "north_star"),
        ("- `ranking.w_cf`: 1.0", "- ranking.w_cf = 1.0", 16, "config lines"),
        ("- `recall.total`: 500", "- `ranking.w_cf`: 2", 19, "set twice"),
        ("- `recall.total`: 500", "- `recall.total`: [1, 2]", 19, "not a number"),
        ("## Requirement", "## Requirements", 12, "unknown section"),
        ("## Requirement\nPass.\n", "", 23, "missing section"),
        ("When testing.", "", 9, "section is empty"),
        ("# Test skill", "Test skill", 7, "Title"),
        ("id: seed-test", "id: bad id!", 2, "skill id"),
    ],
)
def test_malformed_seed_names_file_and_line(tmp_path, old, new, line, message):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1), "broken.md")
    with pytest.raises(DataFormatError, match=message) as info:
        parse_seed_file(path)
    assert info.value.path == str(path) and info.value.line == line
    assert f"broken.md, line {line}" in str(info.value)


def test_duplicate_seed_ids_in_a_folder_are_refused(tmp_path):
    _write(tmp_path, GOOD, "a.md")
    _write(tmp_path, GOOD, "b.md")
    with pytest.raises(DataFormatError, match="already used by a.md"):
        load_seed_skills(tmp_path)
