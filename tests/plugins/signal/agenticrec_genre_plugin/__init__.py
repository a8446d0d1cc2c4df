"""Genre affinity: how much of a user's visible history shares each
candidate's genres. A per-candidate signal the teacher's planner offers as
the ``genre_affinity`` analysis and its rule ranker blends with weight 0.5."""

from collections import Counter

from agenticrec.plugins import signal_tool


@signal_tool("genre_affinity", weight=0.5)
def genre_affinity(index, user: int, candidates: list[int]) -> dict[int, float]:
    """Score candidates by genre affinity with the user's history: for each
    candidate, the mean over its genres of the share of the user's items in
    that genre (0: no shared genre, 1: every history item in every genre)."""
    hist = index.history(user)
    counts = Counter(g for i in hist for g in index.categories[int(i)])
    n = max(len(hist), 1)
    out = {}
    for c in candidates:
        genres = index.categories[c]
        out[c] = sum(counts[g] for g in genres) / n / len(genres) if genres else 0.0
    return out
