"""ChromaSkillStore on disk: add/search/filters, merge, outcomes, prune, restarts.

These tests use HashingEmbedding for speed; retrieval quality with the real
MiniLM model is in test_skills_embedding.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from agenticrec.errors import ConfigError, SkillhubError
from agenticrec.skills import (
    ChromaSkillStore,
    Evidence,
    HashingEmbedding,
    Skill,
    SkillStore,
    load_seed_skills,
    retrieval_weight,
    should_prune,
)


def _skill(id: str, title: str, north_star: str = "NDCG@10", **kw) -> Skill:
    kw.setdefault("task_context", f"context of {title}")
    kw.setdefault("requirement", f"requirement of {title}")
    return Skill(id=id, title=title, north_star=north_star, **kw)


@pytest.fixture
def hub(tmp_path) -> ChromaSkillStore:
    return ChromaSkillStore(
        tmp_path / "hub", "test", embedding=HashingEmbedding(), seeds=False
    )


def _run(code: str, timeout: float = 60) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_store_satisfies_protocol_and_loads_seeds_once(tmp_path):
    hub = ChromaSkillStore(tmp_path, "p", embedding=HashingEmbedding())
    assert isinstance(hub, SkillStore)
    seeds = {s.id for s in load_seed_skills()}
    assert {s.id for s in hub.all()} == seeds
    assert all(s.source == "seed" for s in hub.all())
    hub.delete(sorted(seeds)[0])
    again = ChromaSkillStore(tmp_path, "p", embedding=HashingEmbedding())
    assert len(again) == len(seeds) - 1  # not empty, so not reseeded


def test_projects_are_separate_collections(tmp_path):
    a = ChromaSkillStore(tmp_path, "a", embedding=HashingEmbedding(), seeds=False)
    b = ChromaSkillStore(tmp_path, "b", embedding=HashingEmbedding(), seeds=False)
    a.add(_skill("s1", "mmr diversity"))
    assert len(a) == 1 and len(b) == 0


def test_invalid_project_name_is_named(tmp_path):
    with pytest.raises(ConfigError, match="'bad name!'"):
        ChromaSkillStore(tmp_path, "bad name!", embedding=HashingEmbedding())


def test_add_get_roundtrip_keeps_the_whole_record(hub):
    skill = _skill(
        "s1",
        "Lower mmr lambda",
        stage="rerank",
        initial_config={"rerank.mmr_lambda": 0.7, "rerank.on": True, "sim": "genre"},
        tools=["mmr_rerank"],
        evidence=[
            Evidence(
                experiment_id="e1",
                knob_changes={"rerank.mmr_lambda": 0.7},
                effects={"ILD@10": 0.05, "NDCG@10": -0.002, "p": 0.01},
            )
        ],
    )
    hub.add(skill)
    assert hub.get("s1") == skill
    assert hub.get("missing") is None
    with pytest.raises(SkillhubError, match="'s1' already present"):
        hub.add(skill)


def test_search_ranks_by_similarity_and_filters_on_metadata(hub):
    hub.add(_skill("a", "shrink recall popular quota", north_star="Recall@500"))
    hub.add(_skill("b", "shrink recall popular quota for cold users"))
    hub.add(_skill("c", "raise ranking engagement weight"))
    hits = hub.search("shrink recall popular quota", k=3)
    assert [h.skill.id for h in hits][:2] == ["a", "b"]
    assert hits[0].similarity > hits[1].similarity > hits[2].similarity
    assert all(-1.0 <= h.similarity <= 1.0 + 1e-6 for h in hits)
    query = "shrink recall popular quota"
    only = {h.skill.id for h in hub.search(query, k=5, where={"north_star": "NDCG@10"})}
    assert only == {"b", "c"}
    both = hub.search(
        "quota", k=5, where={"north_star": "NDCG@10", "source": "distilled"}
    )
    assert {h.skill.id for h in both} == {"b", "c"}
    assert hub.search("anything", k=2, where={"north_star": "nope"}) == []


def test_search_score_down_weights_failing_skills(hub):
    hub.add(_skill("good", "tune ranking weights"))
    hub.add(_skill("bad", "tune ranking weights"))  # same text, same similarity
    for i in range(4):
        hub.record_outcome("bad", False, Evidence(experiment_id=f"x{i}"))
    hits = hub.search("tune ranking weights", k=2)
    assert [h.skill.id for h in hits] == ["good", "bad"]
    assert hits[0].similarity == pytest.approx(hits[1].similarity, abs=1e-5)
    assert retrieval_weight(hits[1].skill) == pytest.approx(0.75 + 0.5 * 1 / 6)


def test_record_outcome_counts_once_per_experiment(hub):
    hub.add(_skill("s", "tune ranking weights"))
    ev = Evidence(experiment_id="e7", effects={"NDCG@10": 0.01})
    hub.record_outcome("s", True, ev)
    hub.record_outcome("s", True, ev)  # a resumed run reports it again
    hub.record_outcome("s", False)
    got = hub.get("s")
    assert (got.success_count, got.failure_count) == (1, 1)
    assert [e.experiment_id for e in got.evidence] == ["e7"]
    assert got.updated_at >= got.created_at
    with pytest.raises(KeyError, match="nope"):
        hub.record_outcome("nope", True)


def test_merge_joins_duplicates_with_the_same_north_star(hub):
    base = _skill(
        "base",
        "lower mmr lambda for diversity",
        initial_config={"rerank.mmr_lambda": 0.8},
        tools=["mmr_rerank"],
        evidence=[Evidence(experiment_id="e1")],
        success_count=1,
        domain_knowledge="Lambda 0.8 is a safe start.",
    )
    hub.add(base)
    dup = _skill(
        "dup",
        "lower mmr lambda for diversity",
        initial_config={"rerank.mmr_lambda": 0.6, "rerank.window": 40},
        tools=["mmr_rerank", "diversity_metrics"],
        evidence=[Evidence(experiment_id="e1"), Evidence(experiment_id="e2")],
        success_count=2,
        failure_count=1,
        domain_knowledge="Below 0.6 NDCG falls fast.",
    )
    res = hub.merge(dup, threshold=0.9)
    assert res.merged_into == "base" and res.similarity >= 0.9
    got = hub.get("base")
    assert hub.get("dup") is None
    assert got == res.skill
    assert got.initial_config == {"rerank.mmr_lambda": 0.8, "rerank.window": 40}
    assert got.tools == ["mmr_rerank", "diversity_metrics"]
    assert [e.experiment_id for e in got.evidence] == ["e1", "e2"]
    assert (got.success_count, got.failure_count) == (3, 1)
    assert "safe start" in got.domain_knowledge and "falls fast" in got.domain_knowledge
    assert got.title == base.title and got.created_at == base.created_at


def test_merge_adds_when_north_star_differs_or_not_similar(hub):
    hub.add(_skill("base", "lower mmr lambda for diversity", north_star="ILD@10"))
    other_metric = _skill("m", "lower mmr lambda for diversity", north_star="NDCG@10")
    res = hub.merge(other_metric)
    assert res.merged_into is None and res.similarity is None
    different = _skill("d", "raise popularity quota in recall", north_star="ILD@10")
    res = hub.merge(different, threshold=0.9)
    assert res.merged_into is None and res.similarity < 0.9
    assert hub.get("m") is not None and hub.get("d") is not None


def test_merge_by_same_id_always_merges(hub):
    hub.add(_skill("s", "tune ranking weights", success_count=1))
    res = hub.merge(_skill("s", "tune ranking weights", success_count=1), threshold=2)
    assert res.merged_into == "s" and hub.get("s").success_count == 2


def test_prune_drops_failing_distilled_skills_and_keeps_seeds(tmp_path):
    hub = ChromaSkillStore(tmp_path, "p", embedding=HashingEmbedding())
    seed_id = "seed-rerank-mmr-diversity"
    cases = {  # id: (successes, failures, pruned?)
        "fails-3-of-4": (1, 3, True),
        "fails-2-of-2": (0, 2, False),  # too few failures to judge
        "fails-3-of-5": (2, 3, False),  # rate 0.6 is not > 0.6
        "fails-5-of-7": (2, 5, True),
        "works": (5, 0, False),
    }
    for sid, (s, f, _) in cases.items():
        hub.add(_skill(sid, sid, success_count=s, failure_count=f))
    for i in range(4):
        hub.record_outcome(seed_id, False, Evidence(experiment_id=f"e{i}"))
    for sid, (_, _, pruned) in cases.items():
        assert should_prune(hub.get(sid)) is pruned, sid
    report = hub.prune()
    assert sorted(report.removed) == ["fails-3-of-4", "fails-5-of-7"]
    assert report.down_weighted == [seed_id]
    assert hub.get(seed_id) is not None
    assert {s.id for s in hub.all(where={"source": "distilled"})} == {
        "fails-2-of-2",
        "fails-3-of-5",
        "works",
    }
    again = hub.prune(min_failures=2, max_failure_rate=0.5)
    assert sorted(again.removed) == ["fails-2-of-2", "fails-3-of-5"]


def test_reopening_with_another_embedding_is_refused(tmp_path):
    ChromaSkillStore(tmp_path, "p", embedding=HashingEmbedding(), seeds=False)
    with pytest.raises(SkillhubError, match="agenticrec_hashing"):
        ChromaSkillStore(tmp_path, "p", embedding=HashingEmbedding(dim=64))
    reopened = ChromaSkillStore(tmp_path, "p")  # None: the stored one
    assert isinstance(reopened.embedding, HashingEmbedding)


def test_skills_survive_a_restart_in_another_process(tmp_path):
    hub = ChromaSkillStore(tmp_path, "p", embedding=HashingEmbedding(dim=128))
    hub.add(_skill("mine", "shrink recall popular quota", tools=["ab_test"]))
    hub.record_outcome("mine", True, Evidence(experiment_id="e1"))
    expected = {s.id: s.model_dump(mode="json") for s in hub.all()}
    out = _run(
        f"""
        import json
        import chromadb
        from agenticrec.skills import ChromaSkillStore, Skill
        hub = ChromaSkillStore({str(tmp_path)!r}, "p")  # embedding from the config
        print(json.dumps({{s.id: s.model_dump(mode="json") for s in hub.all()}}))
        print(hub.search("shrink recall popular quota", k=1)[0].skill.id)
        # a plain Chroma client reopens the collection with no embedding passed
        col = chromadb.PersistentClient({str(tmp_path)!r}).get_collection("skills.p")
        got = col.query(query_texts=["shrink recall popular quota"], n_results=1)
        print(got["ids"][0][0])
        """
    )
    records, top, raw_top = out.strip().splitlines()
    assert json.loads(records) == expected
    assert top == raw_top == "mine"


def test_two_processes_write_one_skillhub_without_losing_updates(tmp_path):
    ChromaSkillStore(tmp_path, "p", embedding=HashingEmbedding(), seeds=False).add(
        _skill("shared", "shared skill")
    )
    worker = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from agenticrec.skills import ChromaSkillStore, Evidence, Skill
        tag = sys.argv[1]
        hub = ChromaSkillStore({str(tmp_path)!r}, "p")
        (Path({str(tmp_path)!r}) / f"ready-{{tag}}").touch()
        while len(list(Path({str(tmp_path)!r}).glob("ready-*"))) < 2:
            time.sleep(0.01)
        for i in range(15):
            hub.add(Skill(id=f"{{tag}}-{{i}}", title=f"skill {{tag}} {{i}}",
                          north_star="NDCG@10"))
            hub.record_outcome("shared", i % 3 != 0,
                               Evidence(experiment_id=f"{{tag}}-{{i}}"))
            time.sleep(0.02)  # an agent thinks between writes
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", worker, tag], stderr=subprocess.PIPE, text=True
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    with ChromaSkillStore(tmp_path, "p") as hub:
        assert len(hub) == 31
        shared = hub.get("shared")
        hit = hub.search("skill a 7", k=1)[0]
    assert (shared.success_count, shared.failure_count) == (20, 10)
    assert len({e.experiment_id for e in shared.evidence}) == 30
    order = [e.experiment_id[0] for e in shared.evidence]
    assert order != sorted(order), "the two writers did not interleave"
    assert hit.skill.id == "a-7"
    assert len(hub) == 31  # reopened after close
