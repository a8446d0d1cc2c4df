"""How a DualAgent-Rec run is scored, and the list baselines it is compared
with (what the graph and its report use at run time; the hypervolume study
in :mod:`agenticrec.evals.dualagent_eval` builds on it).

Per user: hypervolume of the final strictly feasible set (reference point 0,
exact), feasibility of the chosen list, NDCG@10 and Recall@10 of the chosen
list on the held-out item (one relevant item: Recall@10 = HR@10), its
relevance, diversity and novelty; overall: catalogue coverage (distinct
recommended items / catalogue size). List baselines: the base top-k, greedy
MMR re-ranking, and the greedy constraint repair of the top-k; a single
list's hypervolume is the box it dominates when it is feasible, 0 otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agenticrec.tools import evolve as ev

__all__ = [
    "greedy_mmr",
    "list_baselines",
    "random_feasible_share",
    "score_lists",
    "served_vs_baselines",
]


def score_lists(
    batch, chosen: np.ndarray, *, hypervolume: np.ndarray | None = None
) -> dict[str, Any]:
    """Score one list per user (candidate positions ``int[U, k]``).

    Args:
        batch: the run's :class:`~agenticrec.graphs._dualagent_problem.Batch`.
        chosen: the lists, any order.
        hypervolume: ``f[U]`` the method's final feasible-set hypervolume;
            default: the box the list itself dominates (0 if infeasible).

    Returns:
        ``{"summary": {...}, "users": [{...}, ...]}``.
    """
    chosen = np.sort(np.asarray(chosen, np.int64), axis=1)
    obj, viol, g = (
        np.asarray(x)[:, 0] for x in ev.evaluate_lists(batch.problem, chosen[:, None])
    )
    feasible = viol == 0
    if hypervolume is None:
        hypervolume = np.where(feasible, np.prod(np.clip(obj, 0, None), axis=1), 0.0)
    rows = np.arange(len(chosen))
    items = batch.cands[rows[:, None], chosen]
    hit = items == batch.targets[:, None]
    rank = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    ndcg = np.where(rank >= 0, 1.0 / np.log2(np.maximum(rank, 0) + 2.0), 0.0)
    labels = [s.label for s in batch.specs]
    sat = np.array([s == "yes" for s in batch.satisfiable])
    users = [
        {
            "user": int(batch.users[r]),
            "items": items[r].tolist(),
            "feasible": bool(feasible[r]),
            "satisfiable": batch.satisfiable[r],
            "binding": batch.binding[r],
            "hypervolume": round(float(hypervolume[r]), 6),
            "relevance": round(float(obj[r, 0]), 6),
            "diversity": round(float(obj[r, 1]), 6),
            "novelty": round(float(obj[r, 2]), 6),
            "ndcg@10": round(float(ndcg[r]), 6),
            "recall@10": bool(rank[r] >= 0),
            "constraints": {
                lab: round(float(g[r, c]), 6) for c, lab in enumerate(labels)
            },
        }
        for r in rows
    ]
    summary = {
        "users": int(len(rows)),
        "hypervolume": round(float(np.mean(hypervolume)), 6),
        "feasible": round(float(np.mean(feasible)), 6),
        "feasible_if_satisfiable": round(float(np.mean(feasible[sat])), 6)
        if sat.any()
        else None,
        "satisfiable_users": int(sat.sum()),
        "NDCG@10": round(float(np.mean(ndcg)), 6),
        "Recall@10": round(float(np.mean(rank >= 0)), 6),
        "relevance": round(float(obj[:, 0].mean()), 6),
        "diversity": round(float(obj[:, 1].mean()), 6),
        "novelty": round(float(obj[:, 2].mean()), 6),
        "coverage": round(float(np.unique(items).size / batch.n_items), 6),
    }
    return {"summary": summary, "users": users}


def greedy_mmr(batch, lam: float = 0.7) -> np.ndarray:
    """Maximal marginal relevance: ``k`` picks maximising ``lam * score -
    (1 - lam) * max cosine to the picked items`` (candidate positions)."""
    p = batch.problem
    score = np.asarray(p.score, np.float64)
    emb = np.asarray(p.emb, np.float64)
    n_cand = np.asarray(p.n_cand)
    u, m = score.shape
    allowed = np.arange(m)[None, :] < n_cand[:, None]
    maxsim = np.full((u, m), -np.inf)
    out = np.empty((u, p.k), np.int64)
    rows = np.arange(u)
    for j in range(p.k):
        penal = np.where(np.isfinite(maxsim), maxsim, 0.0)
        val = np.where(allowed, lam * score - (1 - lam) * penal, -np.inf)
        pick = np.argmax(val, axis=1)
        out[:, j] = pick
        allowed[rows, pick] = False
        sim = np.einsum("umd,ud->um", emb, emb[rows, pick])
        maxsim = np.maximum(maxsim, sim)
    return out


def list_baselines(batch) -> dict[str, dict[str, Any]]:
    """Summaries of the base top-k, MMR and greedy repair lists."""
    k = batch.problem.k
    u = len(batch.users)
    lists = {
        "base_topk": np.broadcast_to(np.arange(k), (u, k)),
        "mmr": greedy_mmr(batch),
        "greedy_repair": batch.certificate,
    }
    return {name: score_lists(batch, x)["summary"] for name, x in lists.items()}


def served_vs_baselines(batch, chosen: np.ndarray) -> dict[str, float]:
    """How the served lists differ from the cheap list baselines, per user.

    ``same_as_greedy_repair`` / ``same_as_mmr``: share of users served
    exactly that baseline's item set; ``beyond_greedy_repair``: share of
    users whose served list is strictly feasible and beats the greedy
    repair on diversity or on novelty (the issue's "better beyond accuracy
    at equal feasibility"); ``relevance_loss_vs_greedy``: mean relative
    relevance given up against the greedy repair (negative: a gain).
    """
    chosen = np.sort(np.asarray(chosen, np.int64), axis=1)
    greedy = np.sort(np.asarray(batch.certificate, np.int64), axis=1)
    mmr = np.sort(greedy_mmr(batch), axis=1)
    both = np.stack([chosen, greedy], axis=1)
    obj, viol, _ = (np.asarray(x) for x in ev.evaluate_lists(batch.problem, both))
    feasible = viol[:, 0] == 0
    better = (obj[:, 0, 1] > obj[:, 1, 1]) | (obj[:, 0, 2] > obj[:, 1, 2])
    loss = 1.0 - obj[:, 0, 0] / np.maximum(obj[:, 1, 0], 1e-12)
    return {
        "same_as_greedy_repair": round(float(np.mean((chosen == greedy).all(1))), 6),
        "same_as_mmr": round(float(np.mean((chosen == mmr).all(1))), 6),
        "beyond_greedy_repair": round(float(np.mean(feasible & better)), 6),
        "relevance_loss_vs_greedy": round(float(np.mean(loss)), 6),
    }


def random_feasible_share(
    batch, n_lists: int = 1000, seed: int = 0, chunk: int = 100
) -> np.ndarray:
    """``f64[U]``: share of uniformly random ``k``-subsets of each user's
    candidates that are strictly feasible: how large the feasible region is
    (Mechanism 1 of the paper: the dual population should pay off when it
    is narrow). Exact for the sampled lists; its standard error is at most
    ``0.5 / sqrt(n_lists)``."""
    p = batch.problem
    u, m = np.asarray(p.score).shape
    n_cand = np.asarray(p.n_cand)
    rng = np.random.default_rng(seed)
    hits = np.zeros(u, np.int64)
    done = 0
    while done < n_lists:
        c = min(chunk, n_lists - done)
        keys = rng.random((u, c, m))
        pad = np.arange(m)[None, None, :] >= n_cand[:, None, None]
        keys = np.where(pad, np.inf, keys)
        lists = np.argpartition(keys, p.k - 1, axis=-1)[..., : p.k]
        _, viol, _ = ev.evaluate_lists(p, lists)
        hits += np.sum(np.asarray(viol) == 0, axis=1)
        done += c
    return hits / n_lists
