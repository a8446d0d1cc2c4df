"""The system graph as the runner sees it: input, typed report (per round:
inner rewards of every agent, outer rewards offline and held out, triggers
and routing), progress, and the agent declarations."""

from __future__ import annotations

from typing import Any

from agenticrec.graphs import _system_agents  # noqa: F401 - declares the agents
from agenticrec.graphs._runtime import policy_counts
from agenticrec.graphs.system import GRAPH_NAME, SystemContext
from agenticrec.graphspec import GraphSpec, Report, ReportPart, RunResult
from agenticrec.tools.pipeline import PipelineConfig
from agenticrec.workspace import data_workspace

__all__ = ["FinalReport", "RoundReport", "SystemReport", "spec"]


_Row = ReportPart


class RoundReport(_Row):
    """One individual round, its measurement and its compositional round."""

    round: int
    shifted: bool
    outer_offline: float
    outer_heldout: float
    ndcg_heldout: float
    satisfaction_heldout: float
    initial_outer_heldout: float
    """The frozen initial composition, measured on the same held-out users."""
    trigger: str | None
    """Why a compositional round followed (``None``: none did)."""
    inner: dict[str, float]
    """``arm/agent`` -> the agent's inner reward after its step."""
    reward_used: dict[str, str]
    """``arm/agent`` -> ``inner`` or ``outer``: what drove its step."""
    routing_after: dict[str, str]
    router_policy: dict[str, Any] | None
    """``{"policy", "fallback_reason"}`` of the router, if it decided."""


class FinalReport(_Row):
    outer_heldout: float | None
    initial_outer_heldout: float | None
    routing: dict[str, str] | None
    arms: dict[str, dict[str, tuple[Any, Any]]]
    """Arm -> the knobs where it differs from the default pipeline:
    ``{knob: (default, value)}``."""


class SystemReport(Report):
    """Inner vs outer rewards of the AgenticRS cycle, round by round."""

    data: str
    compositional: bool
    segments_cutoff: int
    """History length separating ``short`` from ``long`` users."""
    rounds: list[RoundReport]
    final: FinalReport
    policies: dict[str, dict[str, int]]
    """role -> policy -> decisions (``rule (fallback)`` counted apart)."""

    def summary(self) -> str:
        f = self.final
        if f.outer_heldout is None or f.initial_outer_heldout is None:
            return f"{self.graph}: {self.status}, no round measured"
        return (
            f"held-out outer reward {f.outer_heldout:.4f} vs initial composition "
            f"{f.initial_outer_heldout:.4f} after {len(self.rounds)} rounds; "
            f"routing {f.routing}"
        )


_DEFAULT = PipelineConfig.default()

_ROUND_KEYS = (
    "round",
    "shifted",
    "outer_offline",
    "outer_heldout",
    "ndcg_heldout",
    "satisfaction_heldout",
    "initial_outer_heldout",
    "trigger",
)


def make_input(ctx: SystemContext) -> dict[str, Any]:
    data_workspace(ctx.data).require_evaluable("system")
    ctx.ws()  # build the pipelines here: part of the run's setup time
    return {"rounds": ctx.rounds}


def _phase(hist: list[dict[str, Any]], phase: str, rnd: int) -> dict | None:
    return next((h for h in hist if h["phase"] == phase and h["round"] == rnd), None)


def report(res: RunResult) -> SystemReport:
    ctx: SystemContext = res.context
    hist = list(res.state.get("history", []))
    measures = [h for h in hist if h["phase"] == "measure"]
    rounds = []
    for m in measures:
        ind = _phase(hist, "individual", m["round"]) or {"inner": {}}
        comp = _phase(hist, "compositional", m["round"])
        rounds.append(
            RoundReport(
                **{k: m[k] for k in _ROUND_KEYS},
                inner={k: round(v["inner"], 5) for k, v in ind["inner"].items()},
                reward_used={k: v["reward_used"] for k, v in ind["inner"].items()},
                routing_after=comp["routing"] if comp else m["routing"],
                router_policy=comp["policy"] if comp else None,
            )
        )
    by_role: dict[str, list[dict[str, Any]]] = {}
    for h in hist:
        if h["phase"] == "individual":
            for key, info in h["inner"].items():
                if key.endswith("/ranking.structure"):
                    by_role.setdefault("system.structure", []).append(info["policy"])
        elif h["phase"] == "compositional":
            by_role.setdefault("system.router", []).append(h["policy"])
    last = measures[-1] if measures else {}
    return SystemReport(
        graph=GRAPH_NAME,
        status=res.status,
        seed=ctx.seed,
        thread_id=res.thread_id,
        data=ctx.data,
        compositional=ctx.compositional,
        segments_cutoff=ctx.ws().cutoff,
        rounds=rounds,
        final=FinalReport(
            outer_heldout=last.get("outer_heldout"),
            initial_outer_heldout=last.get("initial_outer_heldout"),
            routing=res.state.get("routing"),
            arms={
                arm: _DEFAULT.diff(PipelineConfig.from_flat(flat))
                for arm, flat in res.state.get("arms", {}).items()
            },
        ),
        policies={role: policy_counts(v) for role, v in by_role.items()},
        timings=dict(res.timings),
    )


def dataset(ctx: SystemContext) -> dict[str, Any]:
    from agenticrec.workspace import data_workspace

    return {"name": ctx.data, "fingerprint": data_workspace(ctx.data).fingerprint}


def progress(ctx, inp, counts, state) -> tuple[int, int]:
    """Individual rounds finished (of this thread, resumed ones included)."""
    return int(state.get("round", 0) or 0), int(inp["rounds"])


def recursion_limit(ctx: SystemContext, inp: dict[str, Any]) -> int:
    return 10 * int(inp["rounds"]) + 20


spec = GraphSpec(
    name=GRAPH_NAME,
    description=(
        "AgenticRS cycle: individual and compositional evolution, inner vs outer."
    ),
    module="agenticrec.graphs.system",
    context=SystemContext,
    make_input=make_input,
    report=report,
    report_type=SystemReport,
    dataset=dataset,
    progress=progress,
    recursion_limit=recursion_limit,
    demo={"rounds": 3, "shift_round": 2},
)
