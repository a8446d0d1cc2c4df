"""agenticrec: agentic recommender systems.

LangGraph graphs (:mod:`agenticrec.graphs`) wire agents that decide through a
policy layer (:mod:`agenticrec.policy`: an LLM or a documented rule) and call
JAX-jitted tools (:mod:`agenticrec.tools`) on real data (:mod:`agenticrec.data`),
recording trajectories (:mod:`agenticrec.trajectory`) for replay and
distillation.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
