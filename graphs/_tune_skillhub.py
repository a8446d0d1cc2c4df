"""The Skillhub side of a tune run: where the hub lives, its client (one per
run, from the run's services), the experiment memory, and the idempotent
writes of the Skill agent.

``skillhub`` is a folder (Chroma collection ``skills.agenticrec``,
``experiments/<data>-<objective>.jsonl`` for the A/B tests and
``estimates/<data>-<objective>.jsonl`` for every offline estimate, the
sampler's priors in later runs), ``runs/skillhub`` by default, or
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
    "MAX_PRIORS",
    "distilled_holder",
    "estimate_memory",
    "evidence",
    "experiment_memory",
    "hub_of",
    "hub_path",
    "load_priors",
    "record_outcomes",
    "skill_id",
]

HUB_PROJECT = "agenticrec"
DEFAULT_HUB = Path("runs/skillhub")
TEMP_HUB = ":temp:"
"""``skillhub`` value of a temporary Skillhub, removed at the end of the run."""
MAX_PRIORS = 200
"""Priors a run reads from the hub at most (the best by gain of each file
first, files in name order)."""


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


def _memory(
    path: Path, folder: str, slug: str, objective: Objective
) -> ExperimentMemory:
    """``<path>/<folder>/<slug>-<objective>.jsonl``, kept to the 100
    Pareto-diverse items on (offline north star, offline guard)."""
    from agenticrec.skills import ExperimentMemory
    from agenticrec.skills import Objective as MemoryObjective

    o = objective
    return ExperimentMemory(
        path / folder / f"{slug}-{o.name}.jsonl",
        objectives=[
            MemoryObjective(f"offline.{o.north_star}", "max"),
            MemoryObjective(f"offline.{o.guard}", "max"),
        ],
        capacity=100,
    )


def experiment_memory(path: Path, slug: str, objective: Objective) -> ExperimentMemory:
    """The task's A/B tests (``<skillhub>/experiments/``)."""
    return _memory(path, "experiments", slug, objective)


def estimate_memory(path: Path, slug: str, objective: Objective) -> ExperimentMemory:
    """Every offline estimate of the task (``<skillhub>/estimates/``); later
    runs read them as priors (:func:`load_priors`)."""
    return _memory(path, "estimates", slug, objective)


def load_priors(
    path: Path, objective: Objective, *, exclude: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Other runs' offline estimates for the same objective: ``(priors,
    skipped)``.

    Reads ``<path>/estimates/*-<objective>.jsonl`` (a malformed line raises
    :class:`~agenticrec.errors.DataFormatError` naming the file and line).
    Items whose id starts with ``exclude`` (this run's thread) are left out.
    The files are data from earlier runs, so each item is checked: its config
    must be a valid :class:`~agenticrec.tools.pipeline.PipelineConfig` and its
    gain and guard change finite numbers within +-10 (relative); an item that
    fails is skipped and named in ``skipped``.
    """
    import math

    from agenticrec.errors import ConfigError
    from agenticrec.graphs._tune_search import overrides_of
    from agenticrec.skills import ExperimentMemory
    from agenticrec.tools.pipeline import PipelineConfig

    folder = path / "estimates"
    if not folder.is_dir():
        return [], []
    out: list[dict[str, Any]] = []
    skipped: list[str] = []
    for f in sorted(folder.glob(f"*-{objective.name}.jsonl")):
        rows = []
        for it in ExperimentMemory(f).items("done"):
            if it.id.startswith(exclude):
                continue
            gain = it.results.get("offline.gain")
            guard = it.results.get("offline.guard_change")
            ok = all(
                isinstance(v, float) and math.isfinite(v) and abs(v) <= 10
                for v in (gain, guard)
            )
            try:
                over = overrides_of(PipelineConfig.from_flat(dict(it.config)))
            except (ConfigError, TypeError, ValueError):
                ok = False
            if not ok:
                skipped.append(f"{f.name}:{it.id}")
                continue
            rows.append(
                {
                    "overrides": over,
                    "gain": gain,
                    "guard_change": guard,
                    "source": f.stem,
                }
            )
        rows.sort(key=lambda r: -r["gain"])
        out += rows[: max(MAX_PRIORS - len(out), 0)]
    return out, skipped


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
