"""The tune graph as the runner sees it: input (the task text), the typed
report, the review answers (``--approve`` / ``--decline``) and the demo.

::

    from agenticrec.runner import run
    from agenticrec.graphs.tune import TuneContext

    ctx = TuneContext(rounds=10, review=True, skillhub="runs/skillhub")
    rep = run("tune", ctx, checkpoint="ck.sqlite", thread_id="t")  # pauses
    assert rep.status == "awaiting_input"  # rep.pending: the launch plan
    rep = run("tune", ctx, checkpoint="ck.sqlite", thread_id="t",
              resume={"approve": True})
"""

from __future__ import annotations

from typing import Any

from typing_extensions import TypedDict

from agenticrec.errors import ConfigError
from agenticrec.graphs import _tune_sampler as sampling
from agenticrec.graphs._runtime import policy_counts
from agenticrec.graphs._tune_task import rel
from agenticrec.graphs.tune import GRAPH_NAME, TEMP_HUB, TuneContext
from agenticrec.graphspec import GraphSpec, Report, RunResult
from agenticrec.workspace import data_workspace

__all__ = ["TuneReport", "spec"]


class Incumbent(TypedDict):
    """The feasible configuration with the highest offline lower bound
    (gain minus one paired standard error, ``TuneTask.gain_lower_bound``)."""

    id: str | None
    knobs: dict[str, Any]
    offline_gain: float
    """Relative offline north-star change over the default."""


class SkillsReport(TypedDict):
    retrieved: list[dict[str, Any]]
    """``{"id", "similarity", "source"}`` of the skills ``setup`` retrieved."""
    used: list[str]
    """Skills that seeded an Actor candidate."""
    written: list[str]
    """Skills distilled (written or merged into) by this run."""
    outcomes: list[dict[str, Any]]
    pruned: list[str]
    priors: dict[str, Any]
    """Other runs' estimates the sampler was warm-started with: ``{"n",
    "sources"}`` (``--no-transfer`` or an empty hub: none)."""


class TuneReport(Report):
    """The winner of a tune run, the checks of its result and the Skillhub's
    changes (``docs/tune.md``, section Report).

    While paused for review (``status == "awaiting_input"``) ``pending`` is
    the question with the launch ``plan``; answer ``{"approve": True|False}``.
    """

    data: str
    objective: str
    north_star: str
    task: str | None
    rounds: int
    rounds_done: int
    candidates: int
    task_info: dict[str, Any]
    default_offline: dict[str, float]
    """Offline estimate of the default configuration (all offline users)."""
    winner: dict[str, Any] | None
    """The largest significant in-run A/B gain (``p_bonferroni`` too)."""
    incumbent: Incumbent
    confirmation: dict[str, Any] | None
    """One pre-registered A/B test of the incumbent."""
    robustness: dict[str, Any] | None
    """Win share over 20 fresh assignments (report only)."""
    ab_tests: int
    evaluations: int
    history: list[dict[str, Any]]
    experiments: list[dict[str, Any]]
    skills: SkillsReport
    insight: str | None
    policies: dict[str, dict[str, int]]
    """role -> policy -> decisions (``rule (fallback)`` counted apart)."""
    skillhub: str

    def summary(self) -> str:
        w, c = self.winner, self.confirmation
        best = w or c
        found = (
            "no A/B winner yet"
            if best is None
            else f"{'winner' if w else 'incumbent (confirmation test)'} changes "
            f"{', '.join(best['knobs']) or 'nothing'}: {self.north_star} "
            f"{best['diff']:+.4f} (p={best['p']:.3f})"
        )
        return (
            f"{self.rounds_done} rounds, {self.ab_tests} A/B tests; {found}; "
            f"{len(self.skills['retrieved'])} skills retrieved, "
            f"{len(self.skills['written'])} written"
        )


def make_input(ctx: TuneContext) -> dict[str, Any]:
    return {"task": ctx.task_text()}


def prepare(ctx: TuneContext, checkpointed: bool) -> None:
    """Review pauses the run, so it needs a checkpointer to resume."""
    if ctx.review and not checkpointed:
        raise ConfigError(
            "review pauses before each launch and needs a checkpointer to resume: "
            "pass --checkpoint FILE (CLI without a terminal, or with --json; then "
            "re-run with the same --thread-id and --approve or --decline) or "
            "checkpoint= (Python)"
        )


def report(res: RunResult) -> TuneReport:
    ctx: TuneContext = res.context
    st = res.state
    o = ctx.obj
    log = st.get("skill_log", [])
    ctrl = st.get("control", {}).get("all", {})
    final = st.get("final") or {}
    inc = st.get("incumbent") or {}
    by_role: dict[str, list[dict[str, Any]]] = {}
    for info in st.get("policies", []):
        by_role.setdefault(info["role"], []).append(info)
    keep = ("id", "overrides", "origin", "decision", "diff", "relative", "p")
    return TuneReport(
        graph=GRAPH_NAME,
        status=res.status,
        seed=ctx.seed,
        thread_id=res.thread_id,
        pending=res.pending,
        timings=res.timings,
        data=ctx.data,
        objective=ctx.objective,
        north_star=o.north_star,
        task=st.get("task"),
        rounds=ctx.rounds,
        rounds_done=st.get("round", 0),
        candidates=ctx.candidates,
        task_info=ctx.ws().describe(),
        default_offline=ctrl,
        winner=final.get("winner"),
        incumbent={
            "id": inc.get("id"),
            "knobs": inc.get("overrides", {}),
            "offline_gain": round(
                rel(
                    inc.get("all", ctrl).get(o.north_star, 0.0),
                    ctrl.get(o.north_star, 0.0),
                ),
                5,
            ),
        },
        confirmation=final.get("confirmation"),
        robustness=final.get("robustness"),
        ab_tests=len(st.get("experiments", [])),
        evaluations=len(st.get("tried", [])),
        history=st.get("history", []),
        experiments=[
            {**{k: e[k] for k in keep}, "guardrails_failed": e["guardrails_failed"]}
            for e in st.get("experiments", [])
        ],
        skills={
            "retrieved": [
                {"id": s["id"], "similarity": s["similarity"], "source": s["source"]}
                for s in st.get("skills", [])
            ],
            "used": st.get("skills_used", []),
            "written": list(
                dict.fromkeys(
                    x["skill"] for x in log if x["action"] in ("written", "merged")
                )
            ),
            "outcomes": [x for x in log if x["action"] == "outcome"],
            "pruned": [x["skill"] for x in log if x["action"] == "pruned"],
            "priors": {
                "n": len(st.get("priors", [])),
                "sources": sorted({p["source"] for p in st.get("priors", [])}),
                # the knobs the sampler searched narrowed while priors were told
                "ranges": sampling.narrowed(
                    st.get("priors", []), guard_tolerance=ctx.obj.guard_tolerance
                ),
            },
        },
        insight=(st.get("insight") or {}).get("summary"),
        policies={role: policy_counts(v) for role, v in by_role.items()},
        skillhub=ctx.skillhub if ctx.skillhub == TEMP_HUB else str(ctx.hub_path()),
    )


def dataset(ctx: TuneContext) -> dict[str, Any]:
    return {"name": ctx.data, "fingerprint": data_workspace(ctx.data).fingerprint}


def progress(ctx: TuneContext, inp, counts, state) -> tuple[int, int]:
    """Rounds finished."""
    return min(state.get("round", 0), ctx.rounds), ctx.rounds


def recursion_limit(ctx: TuneContext, inp: dict[str, Any]) -> int:
    return 20 + 12 * ctx.rounds


spec = GraphSpec(
    name=GRAPH_NAME,
    description="AgenticRecTune: Actor, Critic, Online, Insight and Skill agents "
    "tune the pipeline through A/B tests with a self-evolving Skillhub.",
    module="agenticrec.graphs.tune",
    context=TuneContext,
    make_input=make_input,
    report=report,
    report_type=TuneReport,
    dataset=dataset,
    progress=progress,
    recursion_limit=recursion_limit,
    answers={"approve": {"approve": True}, "decline": {"approve": False}},
    demo={"rounds": 3, "candidates": 4, "offline_events": 2, "skillhub": TEMP_HUB},
    prepare=prepare,
)
