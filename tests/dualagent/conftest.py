"""Shared inputs of the DualAgent-Rec tests.

The synthetic problem has the shapes, constraint kinds and settings of the
small real run in ``test_graph.py`` (8 users, 200 candidates, 32-d
embeddings, 19 genres, population 24, rounds of 3 generations), so each
jitted kernel compiles once per session: compilation, not computation, is
what these tests spend their time on."""

from __future__ import annotations

import numpy as np
import pytest

from agenticrec.tools import evolve as ev

U, M, K, D, BITS = 8, 200, 10, 32, 19
KINDS = ("max_gini", "min_share", "min_share")
CFG = ev.EvolveConfig(pop_size=24, trace_hv=True)
ROUND = 3


def synth_arrays(seed: int = 0, u: int = U, m: int = M):
    """Host arrays of a random problem with every constraint kind."""
    rng = np.random.default_rng(seed)
    score = np.sort(rng.random((u, m)) ** 2, axis=1)[:, ::-1]
    score = score / score[:, :1]
    cats = rng.random((u, m, BITS)) < 0.2
    cats[..., 0] |= ~cats.any(-1)  # every item has a category
    bits = (cats * (1 << np.arange(BITS))).sum(-1)
    tail = (rng.random((u, m)) < 0.6).astype(np.int64)
    recent = (rng.random((u, m)) < 0.15).astype(np.int64)
    return {
        "score": score.astype(np.float32),
        "emb": rng.normal(size=(u, m, D)).astype(np.float32),
        "novelty": rng.random((u, m)).astype(np.float32),
        "attr": np.stack([bits, tail, recent], -1),
        "kinds": KINDS,
        "bound": np.array([0.6, 2, 1], np.float32),
        "universe": np.stack(
            [np.bitwise_or.reduce(bits, axis=1), np.zeros(u, int), np.zeros(u, int)], -1
        ),
        "n_cand": np.full(u, m),
        "k": K,
        "n_bits": BITS,
    }


@pytest.fixture(scope="session")
def synth():
    arrays = synth_arrays()
    return arrays, ev.make_problem(**arrays)
