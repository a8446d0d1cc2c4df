"""The Skillhub side of a tune run: where the hub lives, its client (one per
run, from the run's services), the experiment memory, and the idempotent
writes of the Skill agent.

``skillhub`` is a folder (Chroma collection ``skills.agenticrec`` and
``experiments/<data>-<objective>.jsonl``), ``runs/skillhub`` by default, or
:data:`TEMP_HUB` (``":temp:"``): a fresh temporary folder made on first use
and removed when the run's services close (``agenticrec demo``; a review
pause or a resumed run would find a new, empty one, so review refuses it).

Every write is keyed by experiment id (``{thread}:{round}:{i}``): a skill
holding an experiment's ``distilled`` evidence is never merged again, and
``record_outcome`` counts an experiment once, so a node re-executed after a
kill writes nothing twice.
"""

from __future__ import annotations

import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from agenticrec.context import Services
    from agenticrec.graphs._tune_task import Objective
    from agenticrec.skills import ChromaSkillStore, Evidence, ExperimentMemory

__all__ = [
    "DEFAULT_HUB",
    "HUB_PROJECT",
    "TEMP_HUB",
    "distilled_holder",
    "evidence",
    "experiment_memory",
    "hub_of",
    "hub_path",
    "record_outcomes",
    "skill_id",
]

HUB_PROJECT = "agenticrec"
DEFAULT_HUB = Path("runs/skillhub")
TEMP_HUB = ":temp:"
"""``skillhub`` value of a temporary Skillhub, removed at the end of the run."""


def hub_path(skillhub: str | None, services: Services) -> Path:
    """The Skillhub folder of a run (the temporary one made on first use)."""
    if skillhub == TEMP_HUB:
        tmp = services.get(
            "tune.temp_skillhub",
            lambda: tempfile.TemporaryDirectory(prefix="agenticrec-skillhub-"),
            close="cleanup",
        )
        return Path(tmp.name)
    return Path(skillhub) if skillhub else DEFAULT_HUB


def hub_of(
    path: Path, services: Services, *, embedding: str, seeds: bool
) -> ChromaSkillStore:
    """The run's Skillhub client, built once and closed with its services."""

    def build() -> ChromaSkillStore:
        from agenticrec.skills import (
            ChromaSkillStore,
            HashingEmbedding,
            MiniLMEmbedding,
        )

        emb = HashingEmbedding() if embedding == "hashing" else MiniLMEmbedding()
        return ChromaSkillStore(path, HUB_PROJECT, embedding=emb, seeds=seeds)

    return services.get("tune.skillhub", build, close="close")


def experiment_memory(path: Path, slug: str, objective: Objective) -> ExperimentMemory:
    """The task's :class:`ExperimentMemory` (``<skillhub>/experiments/``)."""
    from agenticrec.skills import ExperimentMemory
    from agenticrec.skills import Objective as MemoryObjective

    o = objective
    return ExperimentMemory(
        path / "experiments" / f"{slug}-{o.name}.jsonl",
        objectives=[
            MemoryObjective(f"offline.{o.north_star}", "max"),
            MemoryObjective(f"offline.{o.guard}", "max"),
        ],
        capacity=100,
    )


def skill_id(slug: str, objective: Objective, knobs: list[str]) -> str:
    """The id of a skill distilled for ``knobs`` on this task."""
    h = zlib.crc32(",".join(sorted(knobs)).encode())
    return f"tune-{slug}-{objective.name}-{h:08x}"


def evidence(e: Mapping[str, Any], kind: str = "outcome") -> Evidence:
    """An experiment as skill evidence: its knob changes and measured effects."""
    from agenticrec.skills import Evidence

    eff = {m: v["diff"] for m, v in e["metrics"].items()}
    eff["p"] = e["p"]
    return Evidence(
        experiment_id=e["id"],
        knob_changes=e["overrides"],
        effects=eff,
        note=f"{kind} ({e['decision']}): {e['why']}"[:300],
    )


def distilled_holder(hub: ChromaSkillStore, experiment_id: str) -> Any:
    """The stored skill already distilled from ``experiment_id``, if any."""
    return next(
        (
            s
            for s in hub.all()
            if any(
                ev.experiment_id == experiment_id and ev.note.startswith("distilled")
                for ev in s.evidence
            )
        ),
        None,
    )


def record_outcomes(
    hub: ChromaSkillStore, experiments: list[dict[str, Any]], r: int
) -> list[dict[str, Any]]:
    """Record the outcome of each skill-seeded A/B test of round ``r``:
    success = significant win, failure = significant loss or a gain <= 0; a
    positive non-significant gain records nothing. Returns the log entries."""
    log = []
    for e in experiments:
        if not e["origin"].startswith("skill:"):
            continue
        sid = e["origin"].split(":", 1)[1]
        if e["decision"] == "treatment":
            success = True
        elif e["decision"] == "control" or e["diff"] <= 0:
            success = False
        else:
            continue  # positive but not significant: no verdict
        try:
            hub.record_outcome(sid, success, evidence(e))
        except KeyError:
            continue
        log.append(
            {
                "round": r,
                "action": "outcome",
                "skill": sid,
                "experiment": e["id"],
                "success": success,
            }
        )
    return log
