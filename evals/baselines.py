"""Honest baselines over the teacher's leave-one-out split.

Every method scores the whole catalogue for each user (``f32[q, n_items]``);
one scoring pass then serves both protocols of the teacher eval:

- ``full``: the held-out item ranked against every item the user has not
  seen (what the model may see is masked to ``-inf``);
- ``sampled:N``: the held-out item and the same ``N`` sampled negatives, in
  the same shuffled order, as the teacher's workspace
  (``data.sample_candidates(split, N, seed=seed, shuffle=True)``).

Ranks come from :func:`agenticrec.tools.metrics.rank_of_target` (ties
pessimistic), as for the teacher. Hyperparameters (EASE ``lam``, ItemKNN
neighbours and shrink, ALS factors / regularisation / alpha) are chosen by a
small grid on the *validation* part of the same split (second-to-last item per
user, the model fitted on the train rows only), by NDCG@10 under the protocol
being reported, then refitted on train + validation for test. Test never
chooses anything.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from agenticrec import data
from agenticrec.graphs._teacher_workspace import parse_protocol
from agenticrec.tools.ease import ease_scores
from agenticrec.tools.graph import InteractionGraph
from agenticrec.tools.itemknn import itemknn_scores
from agenticrec.tools.metrics import hit_rate, ndcg, rank_of_target
from agenticrec.workspace import data_workspace

__all__ = [
    "GRIDS",
    "METHODS",
    "Part",
    "als_scores",
    "full_scores",
    "part",
    "popularity_scores",
    "protocol_ranks",
    "run_baselines",
    "tune",
]

TIE_BREAK = 1e-6
"""Weight of normalised popularity added to ItemKNN scores, as the project's
co-occurrence baseline does, so users with no co-occurrence are not all ties."""


@dataclass(frozen=True, eq=False)
class Part:
    """One held-out part of a split, as a model predicting it sees it.

    Attributes:
        name: ``"valid"`` or ``"test"``.
        graph: the interactions the model may see (train for ``valid``,
            train + validation for ``test``: the teacher's graph).
        users: ``int32[q]`` users with a held-out item, in split order.
        targets: ``int32[q]`` the held-out items.
        sampled: protocol -> ``(cands: int32[q, 1 + N], target_pos: int32[q])``.
    """

    name: str
    graph: InteractionGraph
    users: np.ndarray
    targets: np.ndarray
    sampled: Mapping[str, tuple[np.ndarray, np.ndarray]]


def part(
    name: str, which: str, protocols: Iterable[str], seed: int = 0
) -> Part:
    """The ``which`` part (``"valid"``/``"test"``) of dataset ``name``'s
    leave-one-out split, with the candidates of each sampled protocol."""
    dw = data_workspace(name)
    split = dw.split
    if which == "test":
        g = dw.graph()
    elif which == "valid":
        indptr, items = split.history("valid")
        ds = split.dataset
        users = np.repeat(np.arange(ds.n_users, dtype=np.int32), np.diff(indptr))
        g = InteractionGraph.from_interactions(users, items, ds.n_users, ds.n_items)
    else:
        raise ValueError(f"part must be 'valid' or 'test', got {which!r}")
    users, targets = split.targets(which)
    sampled = {}
    for p in protocols:
        kind, n = parse_protocol(p)
        if kind == "sampled":
            c = data.sample_candidates(split, n, part=which, seed=seed, shuffle=True)
            sampled[p] = (c.items, c.target_pos)
    return Part(
        which, g, np.asarray(users, np.int32), np.asarray(targets, np.int32), sampled
    )


# -------------------------------------------------------------- scorers
def popularity_scores(g: InteractionGraph, users: np.ndarray) -> np.ndarray:
    """``f32[q, n_items]`` distinct users per item, over the whole catalogue."""
    pop = np.asarray(g.popularity, np.float32)
    return np.broadcast_to(pop, (len(users), g.n_items)).copy()


def _tie_break(g: InteractionGraph, scores: np.ndarray) -> np.ndarray:
    pop = np.asarray(g.popularity, np.float64)
    return scores + (TIE_BREAK * pop / max(1.0, pop.max())).astype(np.float32)


def als_scores(
    g: InteractionGraph,
    users: np.ndarray,
    *,
    factors: int = 64,
    regularization: float = 0.01,
    alpha: float = 1.0,
    iterations: int = 15,
    seed: int = 0,
) -> np.ndarray:
    """``f32[q, n_items]`` implicit-feedback ALS (Hu et al. 2008) from the
    ``implicit`` library (CPU), fitted on ``g``'s 0/1 matrix."""
    import scipy.sparse as sp

    try:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
    except ImportError as exc:  # an optional extra: say how to get it
        from agenticrec.errors import ConfigError

        raise ConfigError(
            f"the ALS baseline needs the 'implicit' library ({exc}); "
            "install it with: pip install 'agenticrec[eval]'"
        ) from exc

    ptr = np.array(g.user_ptr, np.int64)  # writable copies: implicit needs them
    items = np.array(g.user_items, np.int32)
    x = sp.csr_matrix(
        (np.ones(items.size, np.float32), items, ptr), shape=(g.n_users, g.n_items)
    )
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=seed,
        )
        model.fit(x, show_progress=False)
    uf = np.asarray(model.user_factors)[np.asarray(users)]
    return (uf @ np.asarray(model.item_factors).T).astype(np.float32)


SCORERS: dict[str, Callable[..., np.ndarray]] = {
    "popularity": popularity_scores,
    "itemknn-cooccurrence": lambda g, users: _tie_break(
        g, itemknn_scores(g, users, measure="count")
    ),
    "itemknn-cosine": lambda g, users, k=None, shrink=0.0: _tie_break(
        g, itemknn_scores(g, users, measure="cosine", k=k, shrink=shrink)
    ),
    "ease": lambda g, users, lam: ease_scores(g, users, None, lam),
    "als": als_scores,
}
"""method -> ``(graph, users, **params) -> f32[q, n_items]``."""

METHODS = tuple(SCORERS)

GRIDS: dict[str, dict[str, tuple]] = {
    "popularity": {},
    "itemknn-cooccurrence": {},
    "itemknn-cosine": {"k": (20, 50, 200, None), "shrink": (0.0, 20.0)},
    "ease": {"lam": (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0)},
    "als": {
        "factors": (16, 32, 128),
        "regularization": (0.01, 0.1),
        "alpha": (1.0, 10.0, 40.0),
    },
}
"""The validation grid of each method (the product of the values)."""


def full_scores(
    method: str, g: InteractionGraph, users: np.ndarray, **params
) -> np.ndarray:
    """``f32[q, n_items]`` scores of ``method`` with ``params``, items the user
    has seen in ``g`` masked to ``-inf``."""
    if method not in SCORERS:
        raise ValueError(f"unknown baseline {method!r}; choose from {METHODS}")
    sc = np.array(SCORERS[method](g, np.asarray(users, np.int32), **params))
    sc = sc.astype(np.float64)
    ptr = np.asarray(g.user_ptr, np.int64)
    items = np.asarray(g.user_items, np.int64)
    users = np.asarray(users, np.int64)
    counts = ptr[users + 1] - ptr[users]
    rows = np.repeat(np.arange(users.size), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    edges = np.repeat(ptr[users], counts) + np.arange(rows.size) - first
    sc[rows, items[edges]] = -np.inf
    return sc


def protocol_ranks(
    scores: np.ndarray, p: Part, protocols: Iterable[str]
) -> dict[str, np.ndarray]:
    """protocol -> ``int64[q]`` 0-based rank of each user's held-out item."""
    out = {}
    for proto in protocols:
        if parse_protocol(proto)[0] == "full":
            out[proto] = rank_of_target(scores, p.targets)
        else:
            cands, tpos = p.sampled[proto]
            out[proto] = rank_of_target(np.take_along_axis(scores, cands, 1), tpos)
    return out


def _grid(method: str) -> list[dict[str, Any]]:
    grid = GRIDS[method]
    return [dict(zip(grid, v, strict=True)) for v in itertools.product(*grid.values())]


def tune(
    method: str, valid: Part, protocols: Iterable[str]
) -> dict[str, tuple[dict[str, Any], list[tuple[dict[str, Any], float]]]]:
    """Grid search on the validation part.

    Returns:
        protocol -> ``(best params, [(params, validation NDCG@10), ...])``;
        ties go to the earlier grid point.
    """
    protocols = list(protocols)
    trials: dict[str, list] = {proto: [] for proto in protocols}
    for params in _grid(method):
        sc = full_scores(method, valid.graph, valid.users, **params)
        for proto, r in protocol_ranks(sc, valid, protocols).items():
            trials[proto].append((params, ndcg(r, 10)))
    return {
        proto: (max(t, key=lambda pt: pt[1])[0], t) for proto, t in trials.items()
    }


def run_baselines(
    name: str,
    protocols: Iterable[str] = ("full", "sampled:99"),
    *,
    users: int = 0,
    seed: int = 0,
    methods: Iterable[str] = METHODS,
    log: Callable[[str], None] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Tune on validation, score test, for every method and protocol.

    Args:
        name: dataset name or path (as the teacher's ``data``).
        users: score the first ``users`` test users (0: all), the teacher's
            ``users`` setting; fitting always uses every user's history.

    Returns:
        method -> protocol -> ``{"params", "valid_ndcg", "ranks": int64[q],
        "NDCG@10", "HR@10", "users": int[q], "seconds"}``.
    """
    protocols = list(protocols)
    valid = part(name, "valid", protocols, seed)
    test = part(name, "test", protocols, seed)
    n = users or test.users.size
    q_users = test.users[:n]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for method in methods:
        t0 = time.perf_counter()
        chosen = tune(method, valid, protocols) if GRIDS[method] else None
        by_params: dict[str, dict[str, np.ndarray]] = {}
        out[method] = {}
        for proto in protocols:
            params = chosen[proto][0] if chosen else {}
            key = repr(sorted(params.items()))
            if key not in by_params:
                sc = full_scores(method, test.graph, q_users, **params)
                sub = Part(
                    "test",
                    test.graph,
                    q_users,
                    test.targets[:n],
                    {k: (c[:n], t[:n]) for k, (c, t) in test.sampled.items()},
                )
                by_params[key] = protocol_ranks(sc, sub, protocols)
            r = by_params[key][proto]
            trials = chosen[proto][1] if chosen else []
            best = max((v for _, v in trials), default=None)
            out[method][proto] = {
                "params": params,
                "valid_ndcg": best,
                "ranks": r,
                "users": q_users,
                "NDCG@10": ndcg(r, 10),
                "HR@10": hit_rate(r, 10),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        if log is not None:
            log(f"{name}: {method} done in {time.perf_counter() - t0:.0f}s")
    return out
