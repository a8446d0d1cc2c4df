"""Reward for GRPO on exported teacher prompts (TRL ``reward_funcs`` signature).

``reward(prompts, completions, target=..., candidates=..., **kwargs)`` returns
one float per completion:

* format reward, 0.2: the completion ends its reasoning with
  ``<recommend>[ids]</recommend>`` holding a JSON list of distinct candidate
  ids (a chain that cannot be parsed earns nothing at all);
* outcome reward, rank-tiered on the held-out ``target``: 1.0 at rank 1, 0.6
  in the top 3, 0.4 in the top 5, 0.2 in the top 10, else 0.

So a well-formed wrong list scores 0.2, a well-formed hit at rank 1 scores 1.2.

It lives in the kernel because training (:mod:`agenticrec.distill`) and the
student graph (which parses its answers with :func:`parse_recommendation`)
both need it; ``agenticrec.evals.rewards`` re-exports it for evaluation code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["FORMAT_REWARD", "TIERS", "parse_recommendation", "reward"]

FORMAT_REWARD = 0.2
TIERS: tuple[tuple[int, float], ...] = ((1, 1.0), (3, 0.6), (5, 0.4), (10, 0.2))
_RECOMMEND = re.compile(r"<recommend>(.*?)</recommend>", re.S)


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):  # conversational: list of messages
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def parse_recommendation(text: str, allowed: set[int] | None) -> list[int] | None:
    """The ids of the last ``<recommend>[...]</recommend>`` in ``text``, or
    ``None`` unless they are a non-empty JSON list of distinct ints, all in
    ``allowed`` (when given)."""
    found = _RECOMMEND.findall(text)
    if not found:
        return None
    try:
        ids = json.loads(found[-1])
    except json.JSONDecodeError:
        return None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        return None
    if len(set(ids)) != len(ids):
        return None
    if allowed is not None and not set(ids) <= allowed:
        return None
    return ids


def reward(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    target: Sequence[int] | None = None,
    candidates: Sequence[Sequence[int]] | None = None,
    **kwargs: Any,
) -> list[float]:
    """Format + rank-tiered outcome reward per completion (see module doc)."""
    if target is None:
        raise ValueError("reward needs the `target` column of the dataset")
    out = []
    for i, comp in enumerate(completions):
        allowed = set(candidates[i]) if candidates is not None else None
        ids = parse_recommendation(_text(comp), allowed)
        if ids is None:
            out.append(0.0)
            continue
        score = FORMAT_REWARD
        t = target[i]
        if t in ids:
            rank = ids.index(t) + 1
            score += next((r for k, r in TIERS if rank <= k), 0.0)
        out.append(score)
    return out
