"""The AgenticRS agent declarations (what ``agenticrec agents list`` shows).

Every agent names its closed loop, its own evaluation and its decision space
(:func:`agenticrec.agents.register_agent`): the system graph's model-centric
agents (recall channels, ranking fusion and structure, MMR re-ranker), its
router, and the other graphs each declared as one agent (the teacher,
DualAgent-Rec, the tune loop) plus the experiment orchestrator.

The evaluations of the graph agents run those graphs through the one runner
(:func:`agenticrec.runner.run`), by name, so this module imports no other
graph. Imported by :mod:`agenticrec.graphs._system_spec`, so every process
that loads the registered graphs holds these declarations.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from agenticrec.agents import AgentSpec, register_agent
from agenticrec.graphs._system_space import (
    ChannelSpace,
    RankingSpace,
    RerankSpace,
    RoutingDecision,
    StructureSpace,
)
from agenticrec.graphs.system import SystemContext
from agenticrec.tools.pipeline import CHANNELS, PipelineConfig

__all__ = [
    "DualAgentSpace",
    "OrchestratorSpace",
    "TeacherSpace",
    "TuneSpace",
]


def _data_seed(ctx: Any) -> dict[str, Any]:
    """The dataset and seed of the caller's context (defaults without one)."""
    return {k: getattr(ctx, k) for k in ("data", "seed") if hasattr(ctx, k)}


# ------------------------------------------------------ system's own agents
def _pipeline_eval(metric: str):
    def evaluate(flat=None, ctx: SystemContext | None = None) -> dict[str, float]:
        ws = (ctx or SystemContext()).ws()
        f = flat or PipelineConfig.default().to_flat()
        mask = np.ones(ws.segments["offline"]["short"].size, bool)
        return {metric: ws.inner(f, metric, mask)}

    return evaluate


for _c in CHANNELS:
    register_agent(
        AgentSpec(
            f"recall.{_c}",
            "model",
            ("user_history",),
            ("candidates",),
            _pipeline_eval("recall_hit"),
            ChannelSpace,
            "inner",
            "search",
            f"recall channel {_c}: quota and pre-ranking weight",
        ),
        replace=True,
    )
register_agent(
    AgentSpec(
        "ranking.fusion",
        "model",
        ("candidates", "score_heads"),
        ("ranked_list",),
        _pipeline_eval("NDCG@10"),
        RankingSpace,
        "outer",
        "search",
        "ranking fusion of the score heads (coordinating)",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "ranking.structure",
        "model",
        ("candidates", "score_heads"),
        ("ranked_list",),
        _pipeline_eval("NDCG@10"),
        StructureSpace,
        "outer",
        "llm",
        "which channels and heads participate, how heads fuse (grammar)",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "rerank.mmr",
        "model",
        ("ranked_list",),
        ("final_list",),
        _pipeline_eval("satisfaction"),
        RerankSpace,
        "outer",
        "search",
        "MMR re-ranker bearing the diversity constraint (coordinating)",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "system.router",
        "functional",
        ("user_segment", "arms"),
        ("routing",),
        lambda routing=None, ctx=None: {"outer": 0.0} if routing is None else routing,
        RoutingDecision,
        "outer",
        "compositional",
        "routes user segments to composition arms",
    ),
    replace=True,
)


# ------------------------------------------------------ graphs as agents
class TeacherSpace(BaseModel):
    """The MARS teacher's evolvable settings."""

    k: int = Field(10, ge=1, le=50)
    max_reflections: int = Field(1, ge=0, le=3)
    protocol: Literal["sampled:19", "sampled:99", "full"] = "sampled:19"


def _teacher_eval(space: TeacherSpace | None = None, ctx=None) -> dict[str, float]:
    """NDCG@10 of the teacher on 30 users (its own ranking of its candidates)."""
    from agenticrec.graphs.teacher import TeacherContext
    from agenticrec.runner import run

    sp = space or TeacherSpace()
    r = run(
        "teacher",
        TeacherContext(
            users=30,
            k=sp.k,
            max_reflections=sp.max_reflections,
            protocol=sp.protocol,
            **_data_seed(ctx),
        ),
    )
    return {"NDCG@10": r["metrics"]["teacher"]["NDCG@10"]}


class OrchestratorSpace(BaseModel):
    """The experiment orchestrator's settings (A/B tests)."""

    alpha: float = Field(0.05, ge=0.001, le=0.2)
    treatment_share: float = Field(0.5, ge=0.1, le=0.9)


def _orchestrator_eval(
    space: OrchestratorSpace | None = None, ctx=None, replicates: int = 20
) -> dict[str, float]:
    """Calibration of its A/B tests: A/A tests (same config both arms) on the
    held-out users, reward ``1 - |false-positive rate - alpha|``."""
    from agenticrec.tools.abtest import ab_test

    sp = space or OrchestratorSpace()
    ws = SystemContext(**_data_seed(ctx)).ws()
    fp = (
        sum(
            ab_test(
                ws.online,
                None,
                None,
                seed=s,
                alpha=sp.alpha,
                treatment_share=sp.treatment_share,
                n_resamples=200,
            )
            .metrics["NDCG@10"]
            .p_value
            < sp.alpha
            for s in range(replicates)
        )
        / replicates
    )
    return {"calibration": 1.0 - abs(fp - sp.alpha), "aa_false_positive_rate": fp}


class DualAgentSpace(BaseModel):
    """DualAgent-Rec's evolvable settings."""

    pop_size: int = Field(40, ge=10, le=1000)
    generations: int = Field(20, ge=10, le=500)
    coordinator_every: int = Field(10, ge=1, le=100)


def _dualagent_eval(space: DualAgentSpace | None = None, ctx=None) -> dict[str, float]:
    """Mean feasible-front hypervolume of DualAgent-Rec on 10 users."""
    from agenticrec.graphs.dualagent import DualAgentContext
    from agenticrec.runner import run

    sp = space or DualAgentSpace()
    r = run(
        "dualagent",
        DualAgentContext(
            users=10,
            pop_size=sp.pop_size,
            generations=sp.generations,
            coordinator_every=sp.coordinator_every,
            baselines=False,
            **_data_seed(ctx),
        ),
    )
    return {"hypervolume": float(r["metrics"]["dualagent"]["hypervolume"])}


class TuneSpace(BaseModel):
    """The tune loop's evolvable settings."""

    rounds: int = Field(3, ge=1, le=50)
    candidates: int = Field(4, ge=1, le=16)


def _tune_eval(space: TuneSpace | None = None, ctx=None) -> dict[str, float]:
    """How many A/B tests the tune loop launched in its rounds (its own output)."""
    import tempfile

    from agenticrec.graphs.tune import TuneContext
    from agenticrec.runner import run

    sp = space or TuneSpace()
    with tempfile.TemporaryDirectory() as tmp:
        # the runner closes the run's services (the Skillhub) before returning
        r = run(
            "tune",
            TuneContext(
                rounds=sp.rounds,
                candidates=sp.candidates,
                skillhub=tmp,
                **_data_seed(ctx),
            ),
        )
    return {"ab_tests": float(r["ab_tests"]), "rounds": float(r["rounds_done"])}


register_agent(
    AgentSpec(
        "dualagent",
        "model",
        ("candidates", "constraints"),
        ("final_lists",),
        _dualagent_eval,
        DualAgentSpace,
        "inner",
        "search",
        "DualAgent-Rec re-ranker (graphs/dualagent.py): constrained list evolution",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "tune.loop",
        "functional",
        ("task", "skills", "experiments"),
        ("config", "skills"),
        _tune_eval,
        TuneSpace,
        "inner",
        "llm",
        "AgenticRecTune loop (graphs/tune.py): actor/critic/online/insight/skill",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "teacher",
        "model",
        ("user_history", "candidates"),
        ("ranked_list", "trajectory"),
        _teacher_eval,
        TeacherSpace,
        "inner",
        "llm",
        "MARS teacher graph (graphs/teacher.py) as one agent",
    ),
    replace=True,
)
register_agent(
    AgentSpec(
        "experiment.orchestrator",
        "functional",
        ("control", "treatment"),
        ("decision",),
        _orchestrator_eval,
        OrchestratorSpace,
        "inner",
        "search",
        "A/B tests on held-out users (tools/abtest.py)",
    ),
    replace=True,
)
