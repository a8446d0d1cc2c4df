"""Benchmark: top-20 co-occurring items for 1,000 users, side by side.

Task (the same for every method): for user ``u`` with distinct items ``H(u)``,
``score(u, j) = sum_{i in H(u)} C[i, j]`` over items ``j`` not in ``H(u)``
with a positive score, where ``C[i, j]`` counts the users who interacted with
both ``i`` and ``j`` (= the number of 2-hop paths ``u -> i -> v -> j``); keep
the 20 best, ties to the smaller item id. Every method's ids and scores are
checked equal to agenticrec's before any time is printed.

Methods: networkx 2-hop counting on the bipartite graph (a sample of users,
extrapolated), scipy.sparse with a precomputed sparse ``C``, numpy with a dense
``C``, the bare dense matmul ``X_q @ C`` (the floor: no masking, no top-n),
and agenticrec's jitted kernel on its dense and its sparse (large-catalogue)
path. A second table times building ``C``: agenticrec's kernel from the
interaction pairs against BLAS ``ssyrk``, numpy ``X.T @ X``, scipy.sparse and a
plain bf16 matmul of the pre-transposed 0/1 matrix.

Timings are medians of ``--repeats`` rounds that interleave the methods, so a
slow minute of the shared machine hits all of them; JAX compile time (first
call minus the median) is reported apart.

Run::

    agenticrec eval bench_graph --data ml-1m-implicit

``--data`` is a path, or a folder name looked up in the data search folders
(:func:`agenticrec.data.search_dirs`: ``$AGENTICREC_DATA_DIR``, ``./data``,
``../shared/data``, ...).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from itertools import repeat
from pathlib import Path

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp
from scipy.linalg import blas

from agenticrec.tools.graph import (
    InteractionGraph,
    cooccurrence_counts,
    recommend_cooccurring,
)

DEFAULT_DATA = "ml-1m-implicit"


def resolve_data(name_or_path: str) -> Path:
    """A path as given, or the folder of that name in the data search folders."""
    path = Path(name_or_path).expanduser()
    if path.exists() or len(path.parts) != 1:
        return path
    from agenticrec.data import search_dirs

    for folder in search_dirs():
        if (folder / path).exists():
            return folder / path
    raise SystemExit(
        f"bench_graph: no dataset {name_or_path!r} in "
        f"{[str(d) for d in search_dirs()]} (set $AGENTICREC_DATA_DIR)"
    )


def load_pairs(path: Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Distinct (user, item) pairs with compact ids, from ``ratings.parquet``."""
    file = path / "ratings.parquet" if path.is_dir() else path
    table = pq.read_table(file)
    cols = {c.lower(): c for c in table.column_names}
    user_raw = table.column(cols["userid"]).to_numpy()
    item_raw = table.column(cols["movieid"] if "movieid" in cols else cols["itemid"])
    _, users = np.unique(user_raw, return_inverse=True)
    _, items = np.unique(item_raw.to_numpy(), return_inverse=True)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    keys = np.unique(users.astype(np.int64) * n_items + items)
    return (
        (keys // n_items).astype(np.int32),
        (keys % n_items).astype(np.int32),
        n_users,
        n_items,
    )


def top_n_numpy(scores: np.ndarray, seen: np.ndarray, n: int):
    """Top-n per row with ties to the smaller id, via an exact float64 key."""
    rows, m = scores.shape
    s = np.where(seen, 0.0, scores.astype(np.float64))
    key = s * m + (m - 1 - np.arange(m))
    part = np.argpartition(-key, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(key, part, axis=1), axis=1)
    ids = np.take_along_axis(part, order, axis=1)
    best = np.take_along_axis(s, ids, axis=1)
    return np.where(best > 0, ids, -1), np.where(best > 0, best, 0.0)


def networkx_top_n(graph: nx.Graph, user: int, n: int, n_users: int):
    """2-hop path counts from ``user`` on the bipartite graph.

    Nodes are ints: users ``0..n_users-1``, item ``j`` is ``n_users + j``. Paths
    ``u -> i -> v -> j`` are counted as a dynamic programme, not one by one:
    first the items each user ``v`` shares with ``u``, then each item sums that
    over its users (C-level ``sum(map(...))``; the fastest variant tried).
    """
    seen = set(graph[user])
    shared: Counter = Counter()
    for item in seen:
        shared.update(iter(graph[item]))
    shared.pop(user, None)
    get = shared.get
    ranked = []
    for j in range(n_users, graph.number_of_nodes()):
        if j not in seen:
            paths = sum(map(get, graph[j], repeat(0)))
            if paths > 0:
                ranked.append((-paths, j - n_users))
    ranked = sorted(ranked)[:n]
    pad = n - len(ranked)
    return (
        np.array([j for _, j in ranked] + [-1] * pad),
        np.array([-c for c, _ in ranked] + [0] * pad),
    )


def compile_seconds(jitted, *args, **kwargs) -> float:
    """Wall time of lowering and compiling a jitted function for these arguments."""
    start = time.perf_counter()
    jitted.lower(*args, **kwargs).compile()
    return time.perf_counter() - start


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def interleaved(
    methods: dict[str, Callable[[], object]], repeats: int
) -> dict[str, float]:
    """Median steady-state seconds, after a warm-up call, methods interleaved."""
    for fn in methods.values():
        timed(fn)
    runs: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, fn in methods.items():
            runs[name].append(timed(fn))
    return {name: statistics.median(ts) for name, ts in runs.items()}


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; the first column left-aligned, the others right."""
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cells[0].ljust(widths[0])]
        padded += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--nx-users", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    args.data = resolve_data(args.data)
    users, items, n_users, n_items = load_pairs(args.data)
    n, q = args.n, args.users
    print(
        f"data: {args.data} ({n_users} users, {n_items} items, {users.size} "
        f"distinct interactions)\nquery: top-{n} co-occurring items for {q} users; "
        f"jax {jax.__version__} on {jax.devices()[0].platform}, "
        f"{os.cpu_count()} CPUs; medians of {args.repeats} interleaved rounds; "
        f"load average at start {os.getloadavg()[0]:.1f}"
    )
    rng = np.random.default_rng(args.seed)
    query = np.sort(rng.choice(n_users, size=q, replace=False)).astype(np.int32)
    x_csr = sp.csr_matrix(
        (np.ones(users.size, np.float32), (users, items)), shape=(n_users, n_items)
    )
    counts, build_rows, build_ratio = bench_build(users, items, x_csr, args.repeats)
    query_rows, targets = bench_queries(
        users, items, x_csr, counts, query, n, args.nx_users, args.repeats
    )
    print(f"\nTop-{n} co-occurring items for {q} users")
    print(
        table(
            [
                "method",
                "seconds",
                "x faster than networkx",
                "x matmul floor",
                "compile s",
            ],
            query_rows,
        )
    )
    print(f"\nBuilding the {n_items}x{n_items} co-occurrence matrix")
    print(table(["method", "seconds", "x ssyrk", "compile s"], build_rows))
    speedup, floor_ratio = targets
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    print(
        f"\ntargets: >= 300x networkx: {speedup:.0f}x "
        f"[{'met' if speedup >= 300 else 'MISSED'}]; "
        f"<= 1.5x matmul floor: {floor_ratio:.2f}x "
        f"[{'met' if floor_ratio <= 1.5 else 'MISSED'}]; "
        f"build <= ssyrk: {build_ratio:.2f}x "
        f"[{'met' if build_ratio <= 1.0 else 'MISSED'}]"
    )
    return 0


def bench_build(users, items, x_csr, repeats: int):
    """Time building ``C``; return it, the table rows and agenticrec / ssyrk."""
    n_users, n_items = x_csr.shape
    x_dense = x_csr.toarray()
    x_fortran = np.asfortranarray(x_dense)  # what ssyrk reads without a copy
    u_j, i_j = jnp.asarray(users), jnp.asarray(items)
    xt_bf16 = jnp.asarray(x_dense.T, jnp.bfloat16)
    x_bf16 = jnp.asarray(x_dense, jnp.bfloat16)
    bf16_matmul = jax.jit(
        lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32)
    )
    ours = "agenticrec cooccurrence_counts (from pairs)"
    syrk = "BLAS ssyrk (f32 X, Fortran order)"
    builds = {
        ours: lambda: cooccurrence_counts(u_j, i_j, n_users, n_items),
        syrk: lambda: blas.ssyrk(1.0, x_fortran, trans=1),
        "numpy X.T @ X (f32 X)": lambda: x_dense.T @ x_dense,
        "scipy.sparse X.T @ X (CSR X)": lambda: (x_csr.T @ x_csr).tocsr(),
        "jax bf16 X.T @ X (pre-transposed bf16 X)": lambda: bf16_matmul(
            xt_bf16, x_bf16
        ),
    }
    compile_s = {
        ours: compile_seconds(cooccurrence_counts, u_j, i_j, n_users, n_items),
        "jax bf16 X.T @ X (pre-transposed bf16 X)": compile_seconds(
            bf16_matmul, xt_bf16, x_bf16
        ),
    }
    reference = (x_csr.T @ x_csr).toarray()
    assert np.array_equal(np.asarray(builds[ours]()), reference), "C != scipy C"
    assert np.array_equal(np.triu(builds[syrk]()), np.triu(reference)), "ssyrk"
    seconds = interleaved(builds, repeats)
    start = time.perf_counter()
    InteractionGraph.from_interactions(users, items, n_users, n_items)
    graph_build = time.perf_counter() - start
    rows = [
        [
            name,
            f"{seconds[name]:.3f}",
            f"{seconds[name] / seconds[syrk]:.2f}",
            f"{compile_s[name]:.2f}" if name in compile_s else "-",
        ]
        for name in builds
    ]
    rows.append(
        [
            "agenticrec InteractionGraph.from_interactions (once: dedupe, CSR, C, X)",
            f"{graph_build:.3f}",
            f"{graph_build / seconds[syrk]:.2f}",
            "incl.",
        ]
    )
    return reference.astype(np.float32), rows, seconds[ours] / seconds[syrk]


def bench_queries(users, items, x_csr, counts, query, n, nx_users, repeats):
    """Time the top-n query; check agreement first; return rows and targets."""
    n_users, n_items = x_csr.shape
    dense_graph = InteractionGraph.from_interactions(users, items, n_users, n_items)
    sparse_graph = InteractionGraph.from_interactions(
        users, items, n_users, n_items, dense=False
    )
    assert dense_graph.dense and dense_graph.exact and not sparse_graph.dense
    c_csr = sp.csr_matrix(counts)
    xq_csr = x_csr[query]
    xq_dense = xq_csr.toarray()
    seen = xq_dense > 0
    q_j = jnp.asarray(query)
    c_j, xq_j = jnp.asarray(counts), jnp.asarray(xq_dense)
    jax_matmul = jax.jit(jnp.matmul)

    def scipy_method():
        return top_n_numpy((xq_csr @ c_csr).toarray(), seen, n)

    def numpy_method():
        return top_n_numpy(xq_dense @ counts, seen, n)

    ours, floor = "agenticrec dense path (jit)", "matmul floor: numpy X_q @ C"
    sparse = "agenticrec sparse path (jit)"
    methods = {
        ours: lambda: recommend_cooccurring(dense_graph, q_j, n),
        "numpy, dense C": numpy_method,
        "scipy.sparse, precomputed sparse C": scipy_method,
        floor: lambda: xq_dense @ counts,
        "matmul floor: jax X_q @ C": lambda: jax_matmul(xq_j, c_j),
    }
    compile_s = {
        ours: compile_seconds(recommend_cooccurring, dense_graph, q_j, n=n),
        sparse: compile_seconds(recommend_cooccurring, sparse_graph, q_j, n=n),
        "matmul floor: jax X_q @ C": compile_seconds(jax_matmul, xq_j, c_j),
    }

    result = recommend_cooccurring(dense_graph, q_j, n)
    ids, scores = np.asarray(result.ids), np.asarray(result.scores)
    sparse_result = recommend_cooccurring(sparse_graph, q_j, n)
    others = {
        "numpy": numpy_method(),
        "scipy": scipy_method(),
        "sparse path": (sparse_result.ids, sparse_result.scores),
    }
    for name, (got_ids, got_scores) in others.items():
        assert np.array_equal(np.asarray(got_ids), ids), f"{name}: ids differ"
        assert np.array_equal(np.asarray(got_scores), scores), f"{name}: scores"

    bipartite = nx.Graph()
    bipartite.add_nodes_from(range(n_users + n_items))
    bipartite.add_edges_from(
        zip(users.tolist(), (items.astype(np.int64) + n_users).tolist(), strict=True)
    )
    sample = query[:nx_users]
    start = time.perf_counter()
    nx_results = [networkx_top_n(bipartite, int(u), n, n_users) for u in sample]
    nx_time = (time.perf_counter() - start) * len(query) / len(sample)
    for row, (got_ids, got_scores) in enumerate(nx_results):
        assert np.array_equal(got_ids, ids[row]), f"networkx: ids differ, row {row}"
        assert np.array_equal(got_scores, scores[row]), f"networkx: scores, row {row}"
    print(
        f"agreement checked: numpy, scipy and the sparse path give identical ids "
        f"and scores for all {len(query)} users; networkx for {len(sample)} users"
    )

    seconds = interleaved(methods, repeats)
    seconds.update(
        interleaved(
            {sparse: lambda: recommend_cooccurring(sparse_graph, q_j, n)},
            max(1, repeats // 2),
        )
    )
    rows = [
        [
            f"networkx 2-hop counting (extrapolated from {len(sample)} users)",
            f"{nx_time:.2f}",
            "1",
            f"{nx_time / seconds[floor]:.0f}",
            "-",
        ]
    ]
    for name, t in seconds.items():
        rows.append(
            [
                name,
                f"{t:.3f}",
                f"{nx_time / t:.0f}",
                f"{t / seconds[floor]:.2f}",
                f"{compile_s[name]:.2f}" if name in compile_s else "-",
            ]
        )
    return rows, (nx_time / seconds[ours], seconds[ours] / seconds[floor])


if __name__ == "__main__":
    sys.exit(main())
