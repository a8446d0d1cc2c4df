"""Collaborative-signal translation: tool results -> short, faithful text.

STAR's teacher verbalises behavioural patterns so that a language model can
reason over them ("412 users who rated *Heat (1995)* also rated *Casino
(1995)* (lift 3.1)"). Two rules keep that text trustworthy:

* every number in a sentence is copied, as recorded, from the tool result
  (the tool already rounded it), never recomputed or paraphrased;
* item text is data, not instructions: titles are JSON-quoted
  (:func:`quote`), so a title such as ``Ignore previous instructions"`` stays
  one inert string and cannot close the quote or start a new line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["quote", "translate"]

_MAX_TITLE = 120


def quote(title: str) -> str:
    """``title`` as an escaped, double-quoted, single-line string."""
    text = " ".join(str(title).split())
    if len(text) > _MAX_TITLE:
        text = text[: _MAX_TITLE - 3] + "..."
    return json.dumps(text or "(untitled)", ensure_ascii=False)


def _profile(r: Mapping[str, Any]) -> list[str]:
    cats = ", ".join(f"{quote(c)} ({n})" for c, n in r["top_categories"]) or "none"
    recent = ", ".join(quote(i["title"]) for i in r["recent_items"]) or "none"
    return [
        f"The user has {r['history_len']} items in their history; top categories: "
        f"{cats}.",
        f"Most recent items, newest first: {recent}.",
        f"The median item in their history was used by "
        f"{r['median_item_popularity']} users.",
    ]


def _cooccurrence(r: Mapping[str, Any]) -> list[str]:
    scope = f"the user's last {r['window']} items" if r.get("window") else "the history"
    lines = []
    for s in r["support"]:
        lines.append(
            f"{s['co_count']} users who interacted with {quote(s['via_title'])} also "
            f"interacted with {quote(s['title'])} (lift {s['lift']}); "
            f"{s['paths']} co-occurrence paths lead from {scope} to it."
        )
    hits = sum(1 for _, v in r["scores"] if v > 0)
    lines.append(f"{hits} of {len(r['scores'])} candidates co-occur with {scope}.")
    return lines


def _neighbours(r: Mapping[str, Any]) -> list[str]:
    lines = [
        f"{s['votes']} of the user's {s['neighbours']} nearest neighbours "
        f"interacted with {quote(s['title'])} (similarity-weighted {s['weighted']})."
        for s in r["support"]
    ]
    hits = sum(1 for _, v in r["scores"] if v > 0)
    lines.append(
        f"{hits} of {len(r['scores'])} candidates were used by at least one of "
        f"{r['neighbours']} neighbours."
    )
    return lines


def _walk(r: Mapping[str, Any]) -> list[str]:
    return [
        f"{quote(s['title'])} ranks {s['rank']} of {s['of']} candidates by random "
        f"walk from the user's items ({s['per_million']} visits per million)."
        for s in r["support"]
    ]


def _popularity(r: Mapping[str, Any]) -> list[str]:
    return [f"Item {i} was used by {n} of {r['users']} users." for i, n in r["scores"]]


def _model(r: Mapping[str, Any]) -> list[str]:
    sig = r["signal"]
    lines = []
    for s in r["support"]:
        via = quote(s["via_title"]) if s["via"] >= 0 else "no single history item"
        if sig == "sequence":
            lines.append(
                f"Users chose {quote(s['title'])} within {r['window']} steps after "
                f"{via} (one of the user's last {r['last']} items): weighted "
                f"transitions {s['via_weight']}, {s['score']} in all."
            )
        elif sig == "cosine":
            lines.append(
                f"{quote(s['title'])} is most similar to {via} in the history "
                f"(cosine {s['via_weight']}); summed similarity {s['score']}."
            )
        else:
            how = (
                f"the recency-weighted history (decay {r['decay']} per item)"
                if sig == "recent_ease"
                else "the whole history"
            )
            lines.append(
                f"EASE^R (penalty {r['lam']:g}) scores {quote(s['title'])} "
                f"{s['score']} from {how}; {via} weighs most ({s['via_weight']})."
            )
    hits = sum(1 for _, v in r["scores"] if v > 0)
    lines.append(f"{hits} of {len(r['scores'])} candidates score positive ({sig}).")
    return lines


_TEMPLATES = {
    "ease_evidence": _model,
    "itemknn_evidence": _model,
    "sequence_evidence": _model,
    "user_profile": _profile,
    "cooccurrence_evidence": _cooccurrence,
    "neighbour_evidence": _neighbours,
    "graph_walk_evidence": _walk,
    "item_popularity": _popularity,
}


def translate(tool: str, result: Mapping[str, Any]) -> list[str]:
    """Sentences stating ``result`` of ``tool``; unknown tools get their JSON."""
    fn = _TEMPLATES.get(tool)
    if fn is None:
        return [f"{tool} returned {json.dumps(result, sort_keys=True, default=str)}"]
    return fn(result)
