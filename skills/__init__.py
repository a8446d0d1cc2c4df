"""The Skillhub of AgenticRecTune: tuning skills and experiment memory.

* :class:`Skill` records (context, requirement, north-star metric, initial
  config, domain knowledge, evidence, outcome counts) in a :class:`SkillStore`;
  :class:`ChromaSkillStore` keeps them in a Chroma folder on disk, embedded
  offline by :class:`MiniLMEmbedding`. The Skill agent ``merge``\\s, records
  outcomes and ``prune``\\s; the Actor agent ``search``\\es by task similarity.
* Seed skills as Markdown files under ``skills/seeds/`` (layout in
  :mod:`agenticrec.skills._seeds`), loaded into an empty store.
* :class:`ExperimentMemory`: the experiments the Insight agent reads, pruned to
  the Pareto set plus diverse configurations.

::

    from agenticrec.skills import ChromaSkillStore
    hub = ChromaSkillStore("runs/skillhub", project="movielens")
    hits = hub.search("improve diversity of the final list", k=3)
"""

from __future__ import annotations

from agenticrec.embedding import (
    CACHE_ENV,
    INSTALL_HINT,
    HashingEmbedding,
    MiniLMEmbedding,
    default_model_dir,
    ensure_minilm_files,
)

from ._memory import (
    ExperimentItem,
    ExperimentMemory,
    ExperimentStatus,
    Objective,
    config_matrix,
    select_pareto_diverse,
)
from ._schema import Evidence, KnobValue, Skill, SkillSource, retrieval_weight
from ._seeds import load_seed_skills, parse_seed_file, seed_dir
from ._store import (
    MERGE_THRESHOLD,
    PRUNE_MAX_FAILURE_RATE,
    PRUNE_MIN_FAILURES,
    ChromaSkillStore,
    MergeResult,
    PruneReport,
    SkillHit,
    SkillStore,
    should_prune,
)

__all__ = [
    "CACHE_ENV",
    "INSTALL_HINT",
    "MERGE_THRESHOLD",
    "PRUNE_MAX_FAILURE_RATE",
    "PRUNE_MIN_FAILURES",
    "ChromaSkillStore",
    "Evidence",
    "ExperimentItem",
    "ExperimentMemory",
    "ExperimentStatus",
    "HashingEmbedding",
    "KnobValue",
    "MergeResult",
    "MiniLMEmbedding",
    "Objective",
    "PruneReport",
    "Skill",
    "SkillHit",
    "SkillSource",
    "SkillStore",
    "config_matrix",
    "default_model_dir",
    "ensure_minilm_files",
    "load_seed_skills",
    "parse_seed_file",
    "retrieval_weight",
    "seed_dir",
    "select_pareto_diverse",
    "should_prune",
]
