"""The Skillhub: a ``SkillStore`` protocol and its Chroma implementation on disk."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.api.types import Documents, EmbeddingFunction
from chromadb.errors import NotFoundError

from agenticrec.embedding import MiniLMEmbedding
from agenticrec.errors import ConfigError, SkillhubError

from ._chroma import folder
from ._schema import Evidence, Skill, retrieval_weight
from ._seeds import load_seed_skills

__all__ = [
    "MERGE_THRESHOLD",
    "PRUNE_MAX_FAILURE_RATE",
    "PRUNE_MIN_FAILURES",
    "ChromaSkillStore",
    "MergeResult",
    "PruneReport",
    "SkillHit",
    "SkillStore",
    "should_prune",
]

#: Cosine similarity at or above which a new skill with the same north star is
#: a duplicate of a stored one. Measured with MiniLM on skill texts: a reworded
#: copy of a seed scores about 0.85; a distilled variant of the same strategy
#: 0.72-0.76; a different strategy for the same stage up to 0.74; two different
#: seeds at most 0.67. 0.80 merges rewordings and keeps distinct strategies
#: apart (the Skill agent can still merge a variant by id).
MERGE_THRESHOLD = 0.80
#: Prune rule: a distilled skill with at least this many failures ...
PRUNE_MIN_FAILURES = 3
#: ... and a failure rate above this is deleted by :meth:`SkillStore.prune`.
PRUNE_MAX_FAILURE_RATE = 0.6

_PROJECT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,480}[A-Za-z0-9])?$")
Where = Mapping[str, Any]


class SkillHit(NamedTuple):
    """One search result."""

    skill: Skill
    """The stored record."""
    similarity: float
    """Cosine similarity of query and skill text, in [-1, 1]."""
    score: float
    """``similarity * retrieval_weight(skill)``: what results are sorted by."""


class MergeResult(NamedTuple):
    """What :meth:`SkillStore.merge` did."""

    skill: Skill
    """The stored record after the call (the merged one, or the new one)."""
    merged_into: str | None
    """Id of the existing skill the new one was merged into; ``None`` if added."""
    similarity: float | None
    """Similarity to the nearest skill with the same north star (``None``: none)."""


class PruneReport(NamedTuple):
    """What :meth:`SkillStore.prune` did."""

    removed: list[str]
    """Ids of deleted distilled skills."""
    down_weighted: list[str]
    """Ids of seeds that meet the rule: kept, ranked lower by their weight."""


def should_prune(
    skill: Skill,
    *,
    min_failures: int = PRUNE_MIN_FAILURES,
    max_failure_rate: float = PRUNE_MAX_FAILURE_RATE,
) -> bool:
    """The prune rule: ``failures >= min_failures and failure_rate > max_failure_rate``.

    Applies to every skill; :meth:`SkillStore.prune` deletes only distilled
    ones. A skill needs several failed experiments before it goes, so one
    unlucky A/B test does not erase it.
    """
    return skill.failure_count >= min_failures and skill.failure_rate > max_failure_rate


@runtime_checkable
class SkillStore(Protocol):
    """Where the Skill agent keeps skills and the Actor agent finds them."""

    def add(self, skill: Skill) -> Skill:
        """Store a new skill; raise ``SkillhubError`` if its id is present."""
        ...

    def get(self, skill_id: str) -> Skill | None:
        """The skill with this id, or ``None``."""
        ...

    def search(
        self, query_text: str, k: int = 5, *, where: Where | None = None
    ) -> list[SkillHit]:
        """Up to ``k`` skills most similar to the task text, best first."""
        ...

    def merge(self, skill: Skill, *, threshold: float = MERGE_THRESHOLD) -> MergeResult:
        """Merge into a near-duplicate with the same north star, else add."""
        ...

    def record_outcome(
        self, skill_id: str, success: bool, evidence: Evidence | None = None
    ) -> Skill:
        """Count one experiment outcome (once per ``evidence.experiment_id``)."""
        ...

    def prune(
        self,
        *,
        min_failures: int = PRUNE_MIN_FAILURES,
        max_failure_rate: float = PRUNE_MAX_FAILURE_RATE,
    ) -> PruneReport:
        """Delete distilled skills that stopped helping (see :func:`should_prune`)."""
        ...

    def delete(self, skill_id: str) -> bool:
        """Delete a skill; ``False`` if it was not there."""
        ...

    def all(self, *, where: Where | None = None) -> list[Skill]:
        """Every skill (matching ``where``), by id."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


def _where(where: Where | None) -> dict[str, Any] | None:
    """Chroma wants one top-level key; ``{"a": 1, "b": 2}`` becomes an ``$and``."""
    if not where:
        return None
    if len(where) == 1 or any(k.startswith("$") for k in where):
        return dict(where)
    return {"$and": [{k: v} for k, v in where.items()]}


def _merge_records(old: Skill, new: Skill) -> Skill:
    """``old`` absorbs ``new``: see :meth:`ChromaSkillStore.merge`."""
    seen = {e.experiment_id for e in old.evidence}
    evidence = old.evidence + [e for e in new.evidence if e.experiment_id not in seen]
    knowledge = old.domain_knowledge
    extra = new.domain_knowledge.strip()
    if extra and extra not in knowledge:
        knowledge = f"{knowledge.rstrip()}\n\n{extra}" if knowledge.strip() else extra
    return old.model_copy(
        update={
            "initial_config": {**new.initial_config, **old.initial_config},
            "domain_knowledge": knowledge,
            "tools": old.tools + [t for t in new.tools if t not in old.tools],
            "evidence": evidence,
            "success_count": old.success_count + new.success_count,
            "failure_count": old.failure_count + new.failure_count,
            "updated_at": _now(),
        }
    )


class ChromaSkillStore:
    """A :class:`SkillStore` in a Chroma ``PersistentClient`` folder.

    One collection per project (``skills.<project>``), cosine space. Each
    skill is one Chroma document: its :meth:`Skill.embedding_text` is
    embedded, its :meth:`Skill.metadata` holds filter keys (``north_star``,
    ``stage``, ``dataset``, ``source``, ``success_count``, ``failure_count``,
    ``n_evidence``, ``updated_at``...) and the whole record as JSON.

    Concurrency: every operation holds ``<path>/skillhub.lock``, a
    ``filelock`` shared by all processes using the folder, so each
    read-modify-write (merge, record_outcome, prune) is atomic; a client is
    reopened when another process wrote since (see
    :mod:`agenticrec.skills._chroma`). Two processes can therefore write one
    Skillhub without corrupting it or losing updates.

    Args:
        path: the Chroma folder (created if missing).
        project: names the collection: letters, digits, ``._-``.
        embedding: a Chroma embedding function. ``None``: the one the
            collection was created with, or :class:`MiniLMEmbedding` for a new
            collection. One that differs from the stored one raises.
        seeds: skills loaded when the collection is empty: ``True`` for the
            shipped seeds, a folder of seed files, a list of skills, or
            ``False`` for none.
        lock_timeout: seconds to wait for the folder lock.
    """

    def __init__(
        self,
        path: str | Path,
        project: str = "default",
        *,
        embedding: EmbeddingFunction[Documents] | None = None,
        seeds: bool | str | Path | Sequence[Skill] = True,
        lock_timeout: float = 60.0,
    ) -> None:
        if not _PROJECT.match(project):
            raise ConfigError(
                f"ChromaSkillStore: project {project!r} must be letters, digits and "
                "'._-', starting and ending with a letter or digit"
            )
        self.path = Path(path)
        self.project = project
        self.name = f"skills.{project}"
        self._folder = folder(self.path)
        self._timeout = lock_timeout
        with self._folder.session(lock_timeout) as client:
            col = self._open(client, embedding)
            self.embedding: EmbeddingFunction[Documents] = (
                embedding or col.configuration["embedding_function"]
            )
            if col.count() == 0 and seeds is not False:
                if seeds is True:
                    initial = load_seed_skills()
                elif isinstance(seeds, str | Path):
                    initial = load_seed_skills(seeds)
                else:
                    initial = list(seeds)
                if initial:
                    self._upsert(initial)

    def _open(
        self, client: ClientAPI, embedding: EmbeddingFunction[Documents] | None
    ) -> Collection:
        try:
            stored = client.get_collection(self.name)
        except NotFoundError:
            stored = None
        if stored is None:
            self._folder.touch()
            return client.create_collection(
                self.name,
                embedding_function=embedding or MiniLMEmbedding(),
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"agenticrec": "skillhub/1"},
            )
        if embedding is None:
            return stored
        old = stored.configuration.get("embedding_function")
        try:
            if old is None or old.name() != embedding.name():
                raise ValueError(f"stored embedding is {old and old.name()!r}")
            embedding.validate_config_update(old.get_config(), embedding.get_config())
        except ValueError as exc:
            raise SkillhubError(
                f"{self.path}: collection {self.name!r} cannot be opened with "
                f"embedding {embedding.name()!r} {embedding.get_config()} ({exc}); "
                "pass embedding=None to use the stored one, or use a new path or "
                "project"
            ) from exc
        return client.get_collection(self.name, embedding_function=embedding)

    @contextmanager
    def _session(self) -> Iterator[Collection]:
        with self._folder.session(self._timeout):
            yield self._folder.collection(self.name, self.embedding)

    def close(self) -> None:
        """Release the Chroma client of this folder (reopened on next use)."""
        self._folder.close()

    def __enter__(self) -> ChromaSkillStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -------------------------------------------------------------

    def get(self, skill_id: str) -> Skill | None:
        with self._session() as col:
            got = col.get(ids=[skill_id], include=["metadatas"])
        return Skill.from_metadata(got["metadatas"][0]) if got["ids"] else None

    def all(self, *, where: Where | None = None) -> list[Skill]:
        with self._session() as col:
            got = col.get(where=_where(where), include=["metadatas"])
        return sorted((Skill.from_metadata(m) for m in got["metadatas"]), key=_id)

    def __len__(self) -> int:
        with self._session() as col:
            return col.count()

    def search(
        self, query_text: str, k: int = 5, *, where: Where | None = None
    ) -> list[SkillHit]:
        """Skills for a task, by similarity times :func:`retrieval_weight`.

        Args:
            query_text: the task: context, requirement, metric.
            k: results wanted.
            where: Chroma metadata filter, e.g. ``{"north_star": "NDCG@10"}``,
                ``{"success_count": {"$gte": 1}}``; several keys are ANDed.

        Returns:
            Up to ``k`` hits, highest ``score`` first. The nearest
            ``max(4k, k + 8)`` by similarity are re-ranked by score.
        """
        if k < 1:
            raise ConfigError(f"search: k must be >= 1, got {k}")
        hits = self._nearest(query_text, max(4 * k, k + 8), where)
        hits.sort(key=lambda h: (-h.score, h.skill.id))
        return hits[:k]

    def _nearest(self, text: str, n: int, where: Where | None) -> list[SkillHit]:
        """Up to ``n`` skills by decreasing similarity to ``text``."""
        with self._session() as col:
            total = col.count()
            if total == 0:
                return []
            got = col.query(
                query_texts=[text],
                n_results=min(n, total),
                where=_where(where),
                include=["metadatas", "distances"],
            )
        hits = []
        for meta, dist in zip(got["metadatas"][0], got["distances"][0], strict=True):
            skill = Skill.from_metadata(meta)
            sim = 1.0 - float(dist)
            hits.append(SkillHit(skill, sim, sim * retrieval_weight(skill)))
        return hits

    # -- writes ------------------------------------------------------------

    def _upsert(self, skills: Sequence[Skill]) -> None:
        """Write records (embedding their text); call inside a session."""
        self._folder.collection(self.name, self.embedding).upsert(
            ids=[s.id for s in skills],
            documents=[s.embedding_text() for s in skills],
            metadatas=[s.metadata() for s in skills],
        )
        self._folder.touch()

    def _update_metadata(self, skill: Skill) -> None:
        """Write a record whose embedding text did not change (no re-embedding)."""
        self._folder.collection(self.name, self.embedding).update(
            ids=[skill.id], metadatas=[skill.metadata()]
        )
        self._folder.touch()

    def add(self, skill: Skill) -> Skill:
        with self._session():
            if self.get(skill.id) is not None:
                raise SkillhubError(
                    f"skill {skill.id!r} already present in {self.name!r}; "
                    "use merge() or record_outcome()"
                )
            self._upsert([skill])
        return skill

    def merge(self, skill: Skill, *, threshold: float = MERGE_THRESHOLD) -> MergeResult:
        """Add ``skill`` unless it duplicates a stored one; then merge into that.

        A duplicate is the stored skill with the same id, or else the most
        similar one with the same ``north_star`` if its similarity is at least
        ``threshold``. Merging keeps the stored title, context, requirement,
        source and knob values; adds knobs it lacked, tools it lacked, evidence
        with new experiment ids and domain knowledge it did not contain; and
        adds the success and failure counts.
        """
        with self._session():
            target, sim = self.get(skill.id), None
            if target is not None:
                sim = 1.0
            else:
                near = self._nearest(
                    skill.embedding_text(), 1, {"north_star": skill.north_star}
                )
                if near:
                    sim = near[0].similarity
                    if sim >= threshold:
                        target = near[0].skill
            if target is None:
                self._upsert([skill])
                return MergeResult(skill, None, sim)
            merged = _merge_records(target, skill)
            if merged.embedding_text() == target.embedding_text():
                self._update_metadata(merged)
            else:
                self._upsert([merged])
            return MergeResult(merged, target.id, sim)

    def record_outcome(
        self, skill_id: str, success: bool, evidence: Evidence | None = None
    ) -> Skill:
        """Count one outcome of using the skill.

        Idempotent per experiment: if ``evidence.experiment_id`` is already in
        the skill's evidence, nothing changes (a resumed run may report twice).

        Raises:
            KeyError: no skill with this id.
        """
        with self._session():
            skill = self.get(skill_id)
            if skill is None:
                raise KeyError(f"no skill {skill_id!r} in {self.name!r}")
            if evidence is not None:
                done = {e.experiment_id for e in skill.evidence}
                if evidence.experiment_id in done:
                    return skill
            update: dict[str, Any] = {"updated_at": _now()}
            if success:
                update["success_count"] = skill.success_count + 1
            else:
                update["failure_count"] = skill.failure_count + 1
            if evidence is not None:
                update["evidence"] = [*skill.evidence, evidence]
            skill = skill.model_copy(update=update)
            self._update_metadata(skill)
            return skill

    def prune(
        self,
        *,
        min_failures: int = PRUNE_MIN_FAILURES,
        max_failure_rate: float = PRUNE_MAX_FAILURE_RATE,
    ) -> PruneReport:
        """Delete distilled skills meeting :func:`should_prune`; report seeds that do.

        Seeds are never deleted: their :func:`retrieval_weight` already ranks
        them lower as failures accumulate.
        """
        with self._session() as col:
            removed, down = [], []
            for skill in self.all():
                if should_prune(
                    skill, min_failures=min_failures, max_failure_rate=max_failure_rate
                ):
                    (down if skill.source == "seed" else removed).append(skill.id)
            if removed:
                col.delete(ids=removed)
                self._folder.touch()
        return PruneReport(removed, down)

    def delete(self, skill_id: str) -> bool:
        with self._session() as col:
            if self.get(skill_id) is None:
                return False
            col.delete(ids=[skill_id])
            self._folder.touch()
            return True


def _id(skill: Skill) -> str:
    return skill.id
