"""Building the interaction graph: deduplicated edges, co-occurrence, item stats.

Everything here runs once per dataset. The co-occurrence build is a jitted
bf16 Gram matrix of the 0/1 interaction matrix: 0/1 is exact in bf16, each
product is 0 or 1, and XLA accumulates ``preferred_element_type=float32`` dots
in float32, so counts are exact below 2**24 users. Only the blocks on and above
the diagonal are multiplied; the rest is their transpose.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from agenticrec.errors import ConfigError, DataValidationError

__all__ = [
    "DENSE_BYTES",
    "DENSE_CELLS_PER_EDGE",
    "InteractionGraph",
    "cooccurrence_counts",
    "decayed_popularity",
    "degree",
    "last_interaction",
]

DENSE_BYTES = 1 << 30
"""Default budget (bytes) for each dense matrix an :class:`InteractionGraph` holds.

The co-occurrence matrix ``f32[i, i]`` is kept dense when ``4 * i**2`` bytes fit
(``i <= 16,384`` items) and it has at most :data:`DENSE_CELLS_PER_EDGE` cells
per edge; the interaction matrix ``bf16[u, i]`` likewise with ``2 * u * i``
bytes and ``u * i`` cells. Otherwise the kernels use the sparse edge lists.
"""

DENSE_CELLS_PER_EDGE = 64
"""Densest graph a dense matrix is kept for: below ~1.5% density the sparse
path costs less than building and multiplying the dense one (ML-1M: 14 cells of
``C`` per edge, dense; ml-latest-small: 940, sparse)."""

_EXACT_F32 = 1 << 24
_BLOCK_ELEMENTS = 1 << 28
_INT32_CELLS = (1 << 31) - 1
_MIN_SYMMETRIC_BLOCK = 600
_MAX_SYMMETRIC_BLOCKS = 8


def degree(idx: jax.Array, n: int) -> jax.Array:
    """Number of edges at each node.

    Args:
        idx: i32[e] node of each edge; pass deduplicated edges to count
            distinct neighbours (popularity = distinct users per item).
        n: number of nodes.

    Returns:
        f32[n] edge counts.
    """
    return jax.ops.segment_sum(jnp.ones(idx.shape, jnp.float32), idx, n)


def last_interaction(
    item_idx: jax.Array, timestamps: jax.Array, n_items: int
) -> jax.Array:
    """Latest timestamp per item (its recency).

    Args:
        item_idx: i32[n] item of each interaction.
        timestamps: f32[n] time of each interaction (any unit).
        n_items: catalogue size.

    Returns:
        f32[i] latest timestamp, ``-inf`` for items never interacted with.
    """
    return jax.ops.segment_max(timestamps.astype(jnp.float32), item_idx, n_items)


def decayed_popularity(
    item_idx: jax.Array, age: jax.Array, n_items: int, half_life: float
) -> jax.Array:
    """Recency-weighted popularity: each interaction counts ``2 ** (-age / half_life)``.

    Args:
        item_idx: i32[n] item of each interaction (deduplicate per user first to
            count each user once).
        age: f32[n] age of each interaction, in the unit of ``half_life``.
        n_items: catalogue size.
        half_life: age at which an interaction counts one half.

    Returns:
        f32[i] decayed counts.
    """
    weights = jnp.exp2(-age.astype(jnp.float32) / half_life)
    return jax.ops.segment_sum(weights, item_idx, n_items)


def _symmetric_blocks(n_items: int) -> int:
    return max(1, min(_MAX_SYMMETRIC_BLOCKS, n_items // _MIN_SYMMETRIC_BLOCK))


def _gram_upper(xt: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """``xt @ x`` for ``x: [b, i]``, multiplying only blocks on/above the diagonal."""
    n = x.shape[1]
    edges = [round(j * n / k) for j in range(k + 1)]
    blocks = {}
    for p in range(k):
        for q in range(p, k):
            blocks[p, q] = jnp.matmul(
                xt[edges[p] : edges[p + 1]],
                x[:, edges[q] : edges[q + 1]],
                preferred_element_type=jnp.float32,
            )
    rows = [
        jnp.concatenate(
            [blocks[p, q] if q >= p else blocks[q, p].T for q in range(k)], axis=1
        )
        for p in range(k)
    ]
    return rows[0] if k == 1 else jnp.concatenate(rows, axis=0)


def _block_matrices(
    user_idx: jax.Array,
    item_idx: jax.Array,
    first_user,
    n_block: int,
    n_items: int,
    dtype,
) -> tuple[jax.Array, jax.Array]:
    """0/1 matrices ``[i, b]`` and ``[b, i]`` of the users in one block.

    Scattering into int8 and converting is ~10x faster on XLA:CPU than
    scattering bf16; duplicates set the same 1, so they count once.
    """
    rows = user_idx - first_user
    inside = (rows >= 0) & (rows < n_block)
    drop = n_block * n_items
    flat_ui = jnp.where(inside, rows * n_items + item_idx, drop)
    flat_iu = jnp.where(inside, item_idx * n_block + rows, drop)
    one = jnp.ones((), jnp.int8)
    x = jnp.zeros(drop, jnp.int8).at[flat_ui].set(one, mode="drop")
    xt = jnp.zeros(drop, jnp.int8).at[flat_iu].set(one, mode="drop")
    return (
        xt.reshape(n_items, n_block).astype(dtype),
        x.reshape(n_block, n_items).astype(dtype),
    )


@functools.partial(
    jax.jit, static_argnames=("n_users", "n_items", "user_block", "dtype")
)
def cooccurrence_counts(
    user_idx: jax.Array,
    item_idx: jax.Array,
    n_users: int,
    n_items: int,
    user_block: int | None = None,
    dtype=jnp.bfloat16,
) -> jax.Array:
    """Item-item co-occurrence counts from interaction pairs.

    ``C[i, j]`` is the number of distinct users who interacted with both ``i``
    and ``j``; ``C[i, i]`` is the popularity of ``i``. Duplicate pairs count
    once. Exact while ``n_users < 2**24``.

    Args:
        user_idx: i32[n] user of each interaction, in ``[0, n_users)``.
        item_idx: i32[n] item of each interaction, in ``[0, n_items)``.
        n_users: number of users (static).
        n_items: number of items (static).
        user_block: users per dense slab (static); ``None`` picks the largest
            slab of at most 2**28 int8 cells. Memory is about
            ``4 * n_items**2 + 6 * user_block * n_items`` bytes.
        dtype: operand dtype of the products (static); bf16 is exact for 0/1
            and about 2x faster than float32 on CPU.

    Returns:
        f32[i, i] symmetric counts.
    """
    if user_idx.shape != item_idx.shape or user_idx.ndim != 1:
        raise ConfigError(
            f"user_idx and item_idx must be 1-D of one length, got "
            f"{user_idx.shape} and {item_idx.shape}"
        )
    if user_block is None:
        user_block = max(1, min(n_users, _BLOCK_ELEMENTS // max(n_items, 1)))
    user_block = max(1, min(user_block, n_users, _INT32_CELLS // max(n_items, 1)))
    k = _symmetric_blocks(n_items)
    n_blocks = -(-n_users // user_block)

    def block(b, acc):
        xt, x = _block_matrices(
            user_idx, item_idx, b * user_block, user_block, n_items, dtype
        )
        return acc + _gram_upper(xt, x, k)

    if n_blocks == 1:
        return block(0, 0.0)
    zero = jnp.zeros((n_items, n_items), jnp.float32)
    return jax.lax.fori_loop(0, n_blocks, block, zero)


@functools.partial(jax.jit, static_argnames=("n_users", "n_items"))
def _dense_interactions(user_idx, item_idx, n_users: int, n_items: int) -> jax.Array:
    """bf16[u, i] 0/1 interaction matrix."""
    if n_users * n_items >= _INT32_CELLS:
        raise ConfigError(
            f"a dense {n_users}x{n_items} interaction matrix has over 2**31 cells; "
            "pass dense=False"
        )
    flat = user_idx * n_items + item_idx
    x = jnp.zeros(n_users * n_items, jnp.int8).at[flat].set(jnp.ones((), jnp.int8))
    return x.reshape(n_users, n_items).astype(jnp.bfloat16)


def _as_index_array(values, name: str, n: int | None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ConfigError(f"{name} must hold integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and arr.min() < 0:
        pos = int(np.argmax(arr < 0))
        raise ConfigError(f"{name}[{pos}] = {arr[pos]} is negative; ids start at 0")
    if n is not None and arr.size and arr.max() >= n:
        pos = int(np.argmax(arr >= n))
        raise ConfigError(
            f"{name}[{pos}] = {arr[pos]} is out of range for {n} ids; "
            "compact ids to 0..n-1 or pass a larger size"
        )
    return arr


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "user_ptr",
        "user_items",
        "edge_users",
        "item_users",
        "edge_items",
        "popularity",
        "activity",
        "last_seen",
        "trend",
        "counts",
        "x",
    ],
    meta_fields=["n_users", "n_items", "max_activity", "exact"],
)
@dataclasses.dataclass(frozen=True)
class InteractionGraph:
    """The bipartite user-item graph, indexed once for the graph kernels.

    Build it with :meth:`from_interactions`. It is a pytree: pass it to jitted
    kernels as an argument; its sizes are static, so kernels retrace only for a
    new catalogue. Edges are distinct (user, item) pairs.

    Attributes:
        user_ptr: i32[u + 1] CSR pointers: user ``u``'s items are
            ``user_items[user_ptr[u]:user_ptr[u + 1]]``.
        user_items: i32[e] item of each edge, edges sorted by (user, item).
        edge_users: i32[e] user of each edge in that order.
        item_users: i32[e] user of each edge, edges sorted by (item, user).
        edge_items: i32[e] item of each edge in that order.
        popularity: f32[i] distinct users per item.
        activity: f32[u] distinct items per user.
        last_seen: f32[i] latest interaction time per item (``-inf`` if none
            or no timestamps were given), seconds (float32: exact to ~2 min).
        trend: f32[i] popularity with each user's latest interaction weighted
            ``2 ** (-age / half_life)``, age measured from the newest
            timestamp; equals ``popularity`` without timestamps.
        counts: f32[i, i] dense co-occurrence counts, or ``None`` (sparse path).
        x: bf16[u, i] dense 0/1 interactions, or ``None`` (sparse path).
        n_users: number of users.
        n_items: number of items.
        max_activity: largest user history rounded up to a multiple of 32
            (pads per-user gathers; rounding lets similar graphs share
            compiled kernels).
        exact: whether every path-count score is below 2**24, so float32 scores
            and their ties are exact.
    """

    user_ptr: jax.Array
    user_items: jax.Array
    edge_users: jax.Array
    item_users: jax.Array
    edge_items: jax.Array
    popularity: jax.Array
    activity: jax.Array
    last_seen: jax.Array
    trend: jax.Array
    counts: jax.Array | None
    x: jax.Array | None
    n_users: int
    n_items: int
    max_activity: int
    exact: bool

    @property
    def n_edges(self) -> int:
        """Number of distinct (user, item) edges."""
        return int(self.user_items.shape[0])

    @property
    def dense(self) -> bool:
        """Whether co-occurrence is held as a dense matrix."""
        return self.counts is not None

    @classmethod
    def from_interactions(
        cls,
        user_idx,
        item_idx,
        n_users: int | None = None,
        n_items: int | None = None,
        *,
        timestamps=None,
        half_life: float = 90 * 86400.0,
        dense: bool | None = None,
        dense_bytes: int = DENSE_BYTES,
    ) -> InteractionGraph:
        """Index interaction pairs.

        Args:
            user_idx: int[n] compact user ids.
            item_idx: int[n] compact item ids.
            n_users: number of users (default ``max(user_idx) + 1``); users with
                no interactions are allowed.
            n_items: number of items (default ``max(item_idx) + 1``).
            timestamps: optional number[n], seconds, for recency.
            half_life: seconds for ``trend`` (default 90 days).
            dense: force (``True``) or forbid (``False``) the dense matrices;
                ``None`` applies the :data:`DENSE_BYTES` rule with ``dense_bytes``
                and :data:`DENSE_CELLS_PER_EDGE`.
            dense_bytes: memory budget for each dense matrix.

        Raises:
            ConfigError: ids are not 1-D integers in range, or lengths differ.
            DataValidationError: there are no interactions.
        """
        users = _as_index_array(user_idx, "user_idx", n_users)
        items = _as_index_array(item_idx, "item_idx", n_items)
        if users.shape != items.shape:
            raise ConfigError(
                f"user_idx has {users.size} entries but item_idx has {items.size}"
            )
        if users.size == 0:
            raise DataValidationError("no interactions: the graph has no edges")
        n_users = int(users.max()) + 1 if n_users is None else int(n_users)
        n_items = int(items.max()) + 1 if n_items is None else int(n_items)
        if n_users >= _EXACT_F32:
            raise ConfigError(f"n_users = {n_users} must be below 2**24 (exact counts)")

        keys = users * n_items + items
        stamps = None
        if timestamps is not None:
            stamps = np.asarray(timestamps, np.float64)
            if stamps.shape != users.shape:
                raise ConfigError(
                    f"timestamps has shape {stamps.shape}, expected {users.shape}"
                )
            order = np.lexsort((stamps, keys))
            keys, stamps = keys[order], stamps[order]
            last = np.r_[keys[1:] != keys[:-1], True]
            keys, stamps = keys[last], stamps[last]
        else:
            keys = np.unique(keys)
        e_users = (keys // n_items).astype(np.int32)
        e_items = (keys % n_items).astype(np.int32)
        activity = np.bincount(e_users, minlength=n_users)
        popularity = np.bincount(e_items, minlength=n_items)
        by_item = np.argsort(e_items, kind="stable")
        bound = np.bincount(e_users, weights=popularity[e_items], minlength=n_users)

        if stamps is None:
            last_seen = np.full(n_items, -np.inf, np.float32)
            trend = popularity.astype(np.float32)
        else:
            last_seen = np.full(n_items, -np.inf)
            np.maximum.at(last_seen, e_items, stamps)
            age = (stamps.max() - stamps) / float(half_life)
            trend = np.bincount(e_items, weights=np.exp2(-age), minlength=n_items)

        u_j = jnp.asarray(e_users)
        i_j = jnp.asarray(e_items)
        n_edges = keys.size
        want_counts, want_x = dense, dense
        if dense is None:
            cells_c, cells_x = n_items * n_items, n_users * n_items
            want_counts = 4 * cells_c <= dense_bytes
            want_counts &= cells_c <= DENSE_CELLS_PER_EDGE * n_edges
            want_x = 2 * cells_x <= dense_bytes
            want_x &= cells_x <= DENSE_CELLS_PER_EDGE * n_edges
        counts = None
        if want_counts:
            counts = cooccurrence_counts(u_j, i_j, n_users, n_items)
            diag = np.asarray(jnp.diagonal(counts))
            if not np.array_equal(diag, popularity.astype(np.float32)):
                warnings.warn(
                    "bf16 co-occurrence was not exact on this backend "
                    "(diagonal != popularity); recomputing in float32",
                    RuntimeWarning,
                    stacklevel=2,
                )
                counts = cooccurrence_counts(
                    u_j, i_j, n_users, n_items, dtype=jnp.float32
                )
        x = _dense_interactions(u_j, i_j, n_users, n_items) if want_x else None
        return cls(
            user_ptr=jnp.asarray(np.r_[0, np.cumsum(activity)].astype(np.int32)),
            user_items=i_j,
            edge_users=u_j,
            item_users=jnp.asarray(e_users[by_item]),
            edge_items=jnp.asarray(e_items[by_item]),
            popularity=jnp.asarray(popularity, jnp.float32),
            activity=jnp.asarray(activity, jnp.float32),
            last_seen=jnp.asarray(last_seen, jnp.float32),
            trend=jnp.asarray(trend, jnp.float32),
            counts=counts,
            x=x,
            n_users=n_users,
            n_items=n_items,
            max_activity=-(-max(1, int(activity.max())) // 32) * 32,
            exact=bool(bound.max() < _EXACT_F32),
        )

    @classmethod
    def from_dataset(cls, dataset, **kwargs) -> InteractionGraph:
        """Index an ``agenticrec.data.Dataset`` (or anything with its fields).

        Reads ``users``, ``items``, ``n_users``, ``n_items`` and, when
        ``time_kind == "unix"``, ``timestamps``; ``kwargs`` go to
        :meth:`from_interactions`.
        """
        unix = getattr(dataset, "time_kind", None) == "unix"
        kwargs.setdefault("timestamps", dataset.timestamps if unix else None)
        return cls.from_interactions(
            dataset.users, dataset.items, dataset.n_users, dataset.n_items, **kwargs
        )

    def history(self, user: int) -> np.ndarray:
        """int32[k] sorted distinct items of one user (host-side)."""
        ptr = np.asarray(self.user_ptr[user : user + 2])
        return np.asarray(self.user_items[int(ptr[0]) : int(ptr[1])])

    def describe(self) -> str:
        """One line for logs: sizes and which path the kernels take."""
        path = "dense" if self.dense else "sparse"
        density = self.n_edges / max(1, self.n_users * self.n_items)
        return (
            f"InteractionGraph({self.n_users} users, {self.n_items} items, "
            f"{self.n_edges} edges, density {density:.3%}, {path} co-occurrence, "
            f"dense interactions: {self.x is not None})"
        )
