"""The GRPO reward, for evaluation scripts: re-exported from
:mod:`agenticrec.rewards`, where training and the student graph (layers below
evals) read it."""

from agenticrec.rewards import FORMAT_REWARD, TIERS, parse_recommendation, reward

__all__ = ["FORMAT_REWARD", "TIERS", "parse_recommendation", "reward"]
