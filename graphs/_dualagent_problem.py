"""What a DualAgent-Rec run reads but never checkpoints: data, candidates,
embeddings, item attributes, constraints, and the kernel's :class:`Problem`.

Everything here is rebuilt deterministically from the run's settings, so a
resumed run sees exactly the arrays the interrupted one saw.

Data and base recommender
    The leave-one-out split of the dataset; the agents see train + validation
    (the visible history), the test item is held out for NDCG/Recall. The
    base recommender scores every unseen item with at least one visible
    interaction by ``cooc / max cooc + 0.1 * pop / max pop``, where ``cooc``
    is the number of 2-hop paths from the user's history
    (:func:`agenticrec.tools.graph.propagate`) and ``pop`` the item's
    visible popularity; the top ``M`` are the candidates, best first.

Embeddings (diversity)
    A truncated SVD of the cosine-normalised item co-occurrence matrix
    ``D^-1/2 C D^-1/2 = A^T A`` with ``A = X D^-1/2``: the right singular
    vectors of ``A`` scaled by the singular values (``dim`` components after
    the leading one, which is ``sqrt(popularity)`` and would make every pair
    look alike; ``scipy.sparse.linalg.svds`` with a fixed start), rows
    normalised.

Attributes (constraints), all from the data, none synthetic:

==================  ========  =============================================
attribute           type      source
==================  ========  =============================================
``category``        multi     every category label of the item (MovieLens
                              genres; Amazon: root and path)
``category_path``   single    the item's full category path (finest level)
``brand``           single    brand or store; unknown brands never count
``long_tail``       flag      not among the top ``param`` (default 0.2)
                              share by visible popularity of the user's
                              candidates (``scope="candidates"``, default)
                              or of the catalogue (``scope="catalog"``)
``recent``          flag      release year within the last ``param``
                              (default 10) years of the catalogue's years
==================  ========  =============================================

``max_gini`` takes ``category``, ``category_path`` or ``brand`` with at most
32 values in the dataset; ``min_distinct_share`` a single-valued attribute;
``min_share`` a flag.

Why ``long_tail`` defaults to the candidates' scope: the base recommender's
500 candidates of an ml-latest-small user hold on average 0.06 items outside
the catalogue's top 20% (measured on the first 100 users), so the catalogue
reading makes the constraint unsatisfiable for 99 of them; within the
candidates it asks for items outside the user's own popular head.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agenticrec import data
from agenticrec.errors import ConfigError
from agenticrec.tools import evolve as ev
from agenticrec.tools._graph_ops import history_rows, propagate
from agenticrec.tools.graph import InteractionGraph
from agenticrec.workspace import DataWorkspace as BaseWorkspace
from agenticrec.workspace import data_workspace

__all__ = [
    "ATTRIBUTES",
    "Batch",
    "ConstraintSpec",
    "Constraints",
    "DataWorkspace",
    "Layout",
    "build_batch",
    "check_memory",
    "default_constraints",
    "kernel_bytes",
    "layout",
    "load_constraints",
    "workspace",
]

POP_BLEND = 0.1
"""Weight of normalised popularity in the base recommender's score."""

AttrType = Literal["multi", "single", "flag"]
ATTRIBUTES: dict[str, AttrType] = {
    "category": "multi",
    "category_path": "single",
    "brand": "single",
    "long_tail": "flag",
    "recent": "flag",
}
KIND_TYPES: dict[str, tuple[AttrType, ...]] = {
    "max_gini": ("multi", "single"),
    "min_distinct_share": ("single",),
    "min_share": ("flag",),
}
DEFAULT_PARAM = {"long_tail": 0.2, "recent": 10.0}
MAX_GINI_VALUES = 32


class ConstraintSpec(BaseModel):
    """One hard constraint on every list, as data.

    ``max_gini``: Gini of the category counts ``<= threshold`` (category
    fairness); ``min_distinct_share``: distinct values / k ``>= threshold``;
    ``min_share``: share of flagged items ``>= threshold``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["max_gini", "min_distinct_share", "min_share"]
    attribute: str
    threshold: float = Field(ge=0.0, le=1.0)
    param: float | None = Field(
        default=None,
        description="long_tail: head share (0, 1); recent: window in years >= 1.",
    )
    scope: Literal["candidates", "catalog"] | None = Field(
        default=None,
        description="long_tail only: rank popularity within the user's "
        "candidates (default) or the whole catalogue.",
    )

    @model_validator(mode="after")
    def _check(self) -> ConstraintSpec:
        t = ATTRIBUTES.get(self.attribute)
        if t is None:
            raise ValueError(
                f"unknown attribute {self.attribute!r}; known: {sorted(ATTRIBUTES)}"
            )
        if t not in KIND_TYPES[self.kind]:
            ok = sorted(
                a for a, at in ATTRIBUTES.items() if at in KIND_TYPES[self.kind]
            )
            raise ValueError(
                f"{self.kind} does not apply to {t} attribute {self.attribute!r}; "
                f"use one of {ok}"
            )
        if self.kind == "min_distinct_share" and self.threshold <= 0:
            raise ValueError("min_distinct_share needs a threshold in (0, 1]")
        if self.param is not None:
            if self.attribute == "long_tail" and not 0 < self.param < 1:
                raise ValueError("long_tail param (head share) must be in (0, 1)")
            if self.attribute == "recent" and self.param < 1:
                raise ValueError("recent param (years) must be >= 1")
            if self.attribute not in DEFAULT_PARAM:
                raise ValueError(f"attribute {self.attribute!r} takes no param")
        if self.scope is not None and self.attribute != "long_tail":
            raise ValueError("scope applies to the long_tail attribute only")
        return self

    @property
    def per_user(self) -> bool:
        """Whether the attribute depends on the user's candidates."""
        return self.attribute == "long_tail" and self.scope != "catalog"

    @property
    def label(self) -> str:
        op = "<=" if self.kind == "max_gini" else ">="
        return f"{self.kind}({self.attribute}) {op} {self.threshold:g}"


class Constraints(BaseModel):
    """A constraint file: ``{"constraints": [ConstraintSpec, ...]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    constraints: tuple[ConstraintSpec, ...] = Field(max_length=8)


def load_constraints(path: str | Path) -> tuple[ConstraintSpec, ...]:
    """Read a JSON constraint file (an object with ``constraints``, or a list).

    Raises:
        ConfigError: missing file, bad JSON, or an invalid spec (the message
            names the file and the offending entry).
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"constraint file {p} is a folder; pass a JSON file")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"constraint file {p} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte {exc.start}); constraint files are JSON"
        ) from None
    except OSError as exc:
        raise ConfigError(f"constraint file {p} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{p}: not valid JSON (line {exc.lineno}: {exc.msg})"
        ) from None
    if isinstance(raw, list):
        raw = {"constraints": raw}
    try:
        return Constraints.model_validate(raw).constraints
    except ValidationError as exc:
        raise ConfigError(f"{p}: invalid constraints: {exc}") from None


def default_constraints(ds: data.Dataset) -> tuple[ConstraintSpec, ...]:
    """The issue's defaults: MovieLens-like data (release years known) get
    genre Gini <= 0.6, long-tail share >= 0.2 and recent share >= 0.1;
    Amazon-like data (brands known) get distinct category paths >= 0.5,
    distinct brands >= 0.5 and long-tail share >= 0.2."""
    tail = ConstraintSpec(kind="min_share", attribute="long_tail", threshold=0.2)
    if np.any(ds.release_year >= 0):
        return (
            ConstraintSpec(kind="max_gini", attribute="category", threshold=0.6),
            tail,
            ConstraintSpec(kind="min_share", attribute="recent", threshold=0.1),
        )
    if any(ds.brands):
        return (
            ConstraintSpec(
                kind="min_distinct_share", attribute="category_path", threshold=0.5
            ),
            ConstraintSpec(kind="min_distinct_share", attribute="brand", threshold=0.5),
            tail,
        )
    return (tail,)


# ---------------------------------------------------------------- workspace
@dataclass(frozen=True, eq=False)
class DataWorkspace:
    """DualAgent-Rec's view of the data workspace
    (:func:`agenticrec.workspace.data_workspace`: dataset, leave-one-out
    split, visible graph): the evaluable users, item embeddings, novelty.

    Attributes:
        base: the shared data workspace.
        users: ``int32[q]`` evaluable users; ``targets[q]`` their test items.
        emb: ``f32[n_items, dim]`` unit embeddings (zero for unseen items).
        novelty: ``f32[n_items]`` normalised self-information.
        pop: ``f32[n_items]`` visible popularity.
    """

    base: BaseWorkspace
    users: np.ndarray
    targets: np.ndarray
    emb: np.ndarray
    novelty: np.ndarray
    pop: np.ndarray

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def dataset(self) -> data.Dataset:
        """The split's dataset (compact ids refer to it)."""
        return self.base.dataset

    @property
    def graph(self) -> InteractionGraph:
        """Visible interactions (train + validation)."""
        return self.base.graph()

    def target_of(self, users: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.users, users)
        pos = np.minimum(pos, len(self.users) - 1)
        bad = self.users[pos] != users
        if np.any(bad):
            raise ConfigError(
                f"user(s) {users[bad][:5].tolist()} have no held-out test item; "
                f"evaluable users: {self.users.size}"
            )
        return self.targets[pos]

    # -- attributes ------------------------------------------------------
    def attribute(self, spec: ConstraintSpec) -> tuple[np.ndarray, int, list[str]]:
        """Per-item codes of ``spec``'s attribute: ``(codes int64[n_items],
        n_bits, value names)``; bitmasks for ``max_gini``, value ids (-1
        unknown) for ``min_distinct_share``, 0/1 for ``min_share``."""
        ds, a = self.dataset, spec.attribute
        if spec.per_user:
            raise ValueError("per-user attributes are built by long_tail_flags")
        if a == "long_tail":
            share = spec.param or DEFAULT_PARAM["long_tail"]
            seen = np.flatnonzero(self.pop > 0)
            order = seen[np.lexsort((seen, -self.pop[seen]))]
            head = order[: math.ceil(share * seen.size)]
            flag = np.ones(ds.n_items, np.int64)
            flag[head] = 0
            return flag, 0, []
        if a == "recent":
            years = ds.release_year.astype(np.int64)
            if not np.any(years >= 0):
                raise ConfigError(
                    f"dataset {ds.name!r} has no release years; the 'recent' "
                    "attribute needs them (drop that constraint)"
                )
            window = spec.param or DEFAULT_PARAM["recent"]
            last = int(years.max())
            return (years > last - window).astype(np.int64), 0, []
        if a == "category":
            labels = [tuple(c) for c in ds.categories]
        elif a == "category_path":
            labels = [(" > ".join(c),) if c else () for c in ds.categories]
        else:
            labels = [(b,) if b else () for b in ds.brands]
        names = sorted({v for lab in labels for v in lab})
        index = {v: i for i, v in enumerate(names)}
        if spec.kind == "max_gini":
            if len(names) > MAX_GINI_VALUES:
                raise ConfigError(
                    f"max_gini({a}): the dataset has {len(names)} values, at most "
                    f"{MAX_GINI_VALUES} are supported; use min_distinct_share"
                )
            codes = np.zeros(ds.n_items, np.int64)
            for i, lab in enumerate(labels):
                for v in lab:
                    codes[i] |= 1 << index[v]
            return codes, len(names), names
        codes = np.array([index[lab[0]] if lab else -1 for lab in labels], np.int64)
        return codes, 0, names

    def long_tail_flags(self, spec: ConstraintSpec, ids: np.ndarray) -> np.ndarray:
        """``int64[U, M]`` 1 for candidates outside the top ``param`` share of
        the user's own candidates by visible popularity (ties: smaller id)."""
        share = spec.param or DEFAULT_PARAM["long_tail"]
        pop = np.where(ids >= 0, self.pop[np.maximum(ids, 0)], -1.0)
        n = (ids >= 0).sum(axis=1)
        order = np.lexsort((ids, -pop), axis=-1)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(ids.shape[1])[None, :], axis=1)
        head = rank < np.ceil(share * n)[:, None]
        return ((ids >= 0) & ~head).astype(np.int64)


def _embeddings(g: InteractionGraph, dim: int) -> np.ndarray:
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds

    users, items = np.asarray(g.edge_users), np.asarray(g.user_items)
    pop = np.asarray(g.popularity, np.float64)
    scale = np.where(pop > 0, 1.0 / np.sqrt(np.maximum(pop, 1)), 0.0)
    a = sp.csr_matrix(
        (scale[items], (users, items)), shape=(g.n_users, g.n_items), dtype=np.float64
    )
    d = max(1, min(dim + 1, min(a.shape) - 1))
    v0 = np.full(min(a.shape), 1.0 / math.sqrt(min(a.shape)))
    _, s, vt = svds(a, k=d, v0=v0, random_state=0)
    top = np.argsort(-s)[1:]  # the leading component only tracks popularity
    e = (vt[top].T * s[top][None, :]).astype(np.float64)
    norm = np.linalg.norm(e, axis=1, keepdims=True)
    return np.where(norm > 0, e / np.maximum(norm, 1e-30), 0.0).astype(np.float32)


@functools.lru_cache(maxsize=4)
def workspace(name: str, dim: int = 32) -> DataWorkspace:
    """The data workspace of ``name`` with the evaluable users and the item
    embeddings of ``dim`` dimensions (cached in-process)."""
    base = data_workspace(name)
    g = base.graph()
    users, targets = base.split.targets("test")
    order = np.argsort(users, kind="stable")
    pop = np.asarray(g.popularity, np.float32)
    total = float(pop.sum())
    with np.errstate(divide="ignore"):
        info = np.where(pop > 0, -np.log2(pop / total) / math.log2(total), 0.0)
    return DataWorkspace(
        base=base,
        users=np.asarray(users, np.int32)[order],
        targets=np.asarray(targets, np.int32)[order],
        emb=_embeddings(g, dim),
        novelty=info.astype(np.float32),
        pop=pop,
    )


# ------------------------------------------------------------------- batch
@dataclass(frozen=True, eq=False)
class Batch:
    """The users of one run as kernel inputs, plus what reports need.

    Attributes:
        users: ``int[U]`` compact user ids being optimised (enough candidates).
        skipped: users left out, each ``{"user", "raw_user", "reason"}``.
        cands: ``int32[U, M]`` candidate item ids, best first (-1 padding).
        problem: the kernel's :class:`~agenticrec.tools.evolve.Problem`.
        seeds: ``uint32[U]`` per-user seeds from (run seed, raw user id).
        targets: ``int32[U]`` held-out items.
        specs: the constraints, in ``problem.kinds`` order.
        certificate: ``int32[U, k]`` greedy repair of the top-k (slot 1).
        satisfiable: per user ``"yes"`` (certificate feasible), ``"no"``
            (a constraint provably cannot be met by any list), or
            ``"unknown"`` (the greedy search failed, no proof either way).
        binding: per user the label of the binding constraint, or ``""``.
        n_items: catalogue size (for coverage).
    """

    users: np.ndarray
    skipped: list[dict[str, Any]]
    cands: np.ndarray
    problem: ev.Problem
    seeds: np.ndarray
    targets: np.ndarray
    specs: tuple[ConstraintSpec, ...]
    certificate: np.ndarray
    satisfiable: list[str]
    binding: list[str]
    n_items: int


@functools.partial(jax.jit, static_argnames=("m",))
def _base_scores(g: InteractionGraph, users: jax.Array, m: int):
    h = history_rows(g, users)
    cooc = propagate(g, h)
    pop = g.popularity[None, :]
    top = jnp.maximum(jnp.max(cooc, axis=1, keepdims=True), 1e-30)
    s = cooc / top + POP_BLEND * pop / jnp.maximum(jnp.max(pop), 1.0)
    ok = (h == 0) & (pop > 0)
    vals, ids = jax.lax.top_k(jnp.where(ok, s, -jnp.inf), m)
    return jnp.where(vals > -jnp.inf, ids, -1), jnp.where(vals > -jnp.inf, vals, 0.0)


def base_candidates(ws: DataWorkspace, users: np.ndarray, m: int):
    """``(ids int32[U, M], scores f32[U, M])``: the base recommender's top
    ``m`` unseen items per user, best first (-1 / 0 padding)."""
    if m > ws.dataset.n_items:
        raise ConfigError(
            f"{m} candidates requested but the catalogue has {ws.dataset.n_items} items"
        )
    ids, sc = [], []
    for s in range(0, len(users), 256):
        i, v = _base_scores(ws.graph, jnp.asarray(users[s : s + 256], jnp.int32), m)
        ids.append(np.asarray(i))
        sc.append(np.asarray(v))
    return np.concatenate(ids), np.concatenate(sc)


def user_seed(seed: int, raw_user: Any) -> int:
    """A user's 32-bit seed: independent of the batch it is run in."""
    return zlib.crc32(f"{int(seed)}:{raw_user}".encode())


def build_batch(
    ws: DataWorkspace,
    users: list[int] | np.ndarray,
    *,
    n_candidates: int,
    k: int,
    specs: tuple[ConstraintSpec, ...],
    seed: int,
) -> Batch:
    """Candidates, attributes and the kernel problem for ``users``.

    Users with fewer than ``k`` candidates are not optimised; they are listed
    in ``Batch.skipped`` with the reason (never dropped silently).

    Raises:
        ConfigError: ``k`` out of range, unknown or unevaluable users, an
            attribute the dataset lacks.
    """
    users = np.asarray(users, np.int64)
    if users.size == 0:
        raise ConfigError("no users to optimise")
    if not isinstance(k, int) or k < 2:
        raise ConfigError(f"k must be an int >= 2; got {k!r}")
    if k > n_candidates:
        raise ConfigError(
            f"k={k} is larger than the candidate set (n_candidates={n_candidates})"
        )
    if len(set(users.tolist())) != users.size:
        raise ConfigError("users must be distinct")
    bad = users[(users < 0) | (users >= ws.dataset.n_users)]
    if bad.size:
        raise ConfigError(f"unknown user id(s) {bad[:5].tolist()}")
    targets = ws.target_of(users)
    ids, scores = base_candidates(ws, users, n_candidates)
    n_cand = (ids >= 0).sum(axis=1)
    if not np.all(np.isfinite(scores)):
        raise ConfigError("base recommender produced non-finite scores")
    keep = n_cand >= k
    raw = ws.dataset.user_ids
    skipped = [
        {
            "user": int(u),
            "raw_user": str(raw[u]),
            "reason": f"only {int(n)} candidate(s) for k={k}",
        }
        for u, n in zip(users[~keep], n_cand[~keep], strict=True)
    ]
    users, ids, scores, n_cand, targets = (
        users[keep],
        ids[keep],
        scores[keep],
        n_cand[keep],
        targets[keep],
    )
    if users.size == 0:
        raise ConfigError(f"no user has at least k={k} candidates")
    safe = np.maximum(ids, 0)
    score = scores / np.maximum(scores[:, :1], 1e-30)
    attrs, bounds, universes, kinds, n_bits = [], [], [], [], 0
    for spec in specs:
        if spec.per_user:
            a, bits = ws.long_tail_flags(spec, ids), 0
        else:
            codes, bits, _ = ws.attribute(spec)
            pad = -1 if spec.kind == "min_distinct_share" else 0
            a = np.where(ids >= 0, codes[safe], pad)
        if spec.kind == "max_gini":
            n_bits = max(n_bits, bits)
            universes.append(np.bitwise_or.reduce(a, axis=1))
            bounds.append(spec.threshold)
        else:
            universes.append(np.zeros(len(users), np.int64))
            bounds.append(math.ceil(spec.threshold * k - 1e-9))
        attrs.append(a)
        kinds.append(spec.kind)
    u = len(users)
    problem = ev.make_problem(
        score=score,
        emb=np.where((ids >= 0)[..., None], ws.emb[safe], 0.0),
        novelty=np.where(ids >= 0, ws.novelty[safe], 0.0),
        attr=np.stack(attrs, -1) if attrs else np.zeros((u, ids.shape[1], 0)),
        kinds=tuple(kinds),
        bound=np.asarray(bounds, np.float32),
        universe=np.stack(universes, -1) if universes else np.zeros((u, 0)),
        n_cand=n_cand,
        k=k,
        n_bits=n_bits,
    )
    cert, cert_viol, g = (np.asarray(x) for x in ev.greedy_lists(problem))
    status, binding = _satisfiability(problem, specs, k, n_cand, cert_viol, g)
    return Batch(
        users=users,
        skipped=skipped,
        cands=ids.astype(np.int32),
        problem=problem,
        seeds=np.array([user_seed(seed, raw[x]) for x in users], np.uint32),
        targets=targets.astype(np.int32),
        specs=tuple(specs),
        certificate=cert,
        satisfiable=status,
        binding=binding,
        n_items=int(ws.dataset.n_items),
    )


def _satisfiability(problem, specs, k, n_cand, cert_viol, g):
    """Per user: proven satisfiable (greedy certificate), proven not (a count
    bound fails: fewer flagged candidates or distinct values than needed),
    or unknown; with the binding constraint's label."""
    attr = np.asarray(problem.attr)
    bound = np.asarray(problem.bound)
    status, binding = [], []
    for r in range(attr.shape[0]):
        if cert_viol[r] == 0:
            status.append("yes")
            binding.append("")
            continue
        real = attr[r, : n_cand[r]]
        proven = ""
        for c, spec in enumerate(specs):
            if spec.kind == "min_share" and real[:, c].sum() < bound[r, c]:
                proven = spec.label
            elif spec.kind == "min_distinct_share":
                vals = np.unique(real[:, c][real[:, c] >= 0])
                if vals.size < bound[r, c]:
                    proven = spec.label
            if proven:
                break
        if proven:
            status.append("no")
            binding.append(proven)
        else:
            status.append("unknown")
            binding.append(specs[int(np.argmax(g[r]))].label if len(specs) else "")
    return status, binding


# ------------------------------------------------------------------ layout
@dataclass(frozen=True, eq=False)
class Layout:
    """A run's batch and device layout (rebuilt, never checkpointed)."""

    batch: Batch
    problem: ev.Problem
    """The batch's problem padded to a multiple of the mesh size."""
    seeds: np.ndarray
    mesh: Any
    n_users: int

    def pad(self, x: np.ndarray) -> np.ndarray:
        extra = self.problem.n_users - self.n_users
        if extra == 0:
            return x
        return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)])


@functools.lru_cache(maxsize=8)
def layout(
    data: str,
    dim: int,
    n_candidates: int,
    k: int,
    specs: tuple[ConstraintSpec, ...],
    seed: int,
    users: tuple[int, ...],
    n_devices: int,
) -> Layout:
    """The batch of ``users``, sharded over the first ``n_devices`` local
    devices (cached in-process by value)."""
    ws = workspace(data, dim)
    batch = build_batch(
        ws, list(users), n_candidates=n_candidates, k=k, specs=specs, seed=seed
    )
    mesh = ev.users_mesh(jax.local_devices()[:n_devices]) if n_devices > 1 else None
    problem, seeds = batch.problem, batch.seeds
    if mesh is not None:
        problem, _ = ev.pad_users(problem, mesh.size)
        seeds, _ = ev.pad_users(seeds, mesh.size)
        problem, seeds = ev.shard((problem, np.asarray(seeds)), mesh)
    return Layout(batch, problem, np.asarray(seeds), mesh, len(batch.users))


# ------------------------------------------------------------------ memory
@functools.lru_cache(maxsize=64)
def _bits(ws: DataWorkspace, spec: ConstraintSpec) -> int:
    return ws.attribute(spec)[1] if spec.kind == "max_gini" else 0


def kernel_bytes(
    ws: DataWorkspace,
    specs: tuple[ConstraintSpec, ...],
    *,
    users: int,
    k: int,
    pop_size: int,
    n_candidates: int,
    dim: int,
) -> dict[str, tuple[int, str]]:
    """Estimated peak memory of each jitted kernel for ``users`` users on one
    device: ``{kernel: (bytes, formula)}``.

    Fitted to XLA's own memory analysis of the compiled kernels on CPU
    (``.lower(...).compile().memory_analysis()``, 8-16 users, k 10-80, N
    24-800, M 200-500; within ~10% above k = 20):

    - the greedy repair tries ``Q x k`` swapped lists per step, each put in
      canonical order through a ``k x k`` comparison: ``U Q k^3 4`` bytes,
      ``Q = 2 + categories per max_gini + 4 per share constraint``;
    - a generation evaluates ``2 N`` lists (parents and offspring), the same
      ``k x k`` per list, plus selection: ``U N (8 k^2 + 64 k + 2048)``;
    - both hold the problem, ``U M (d + 4 + C) 4``.
    """
    n_bits = max((_bits(ws, s) for s in specs if s.kind == "max_gini"), default=0)
    q = 2 + sum(n_bits if s.kind == "max_gini" else 4 for s in specs)
    problem = users * n_candidates * (dim + 4 + len(specs)) * 4
    return {
        "greedy repair": (
            users * q * k**3 * 4 + problem,
            f"users x {q} x k^3 x 4 bytes",
        ),
        "evolution": (
            users * pop_size * (8 * k * k + 64 * k + 2048) + problem,
            "users x pop_size x (8 k^2 + 64 k + 2048) bytes",
        ),
    }


def device_memory() -> int:
    """Bytes one local device can hold: the accelerator's limit, or the
    machine's physical memory for the CPU backend."""
    import os

    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_memory(
    ws: DataWorkspace,
    specs: tuple[ConstraintSpec, ...],
    *,
    users: int,
    devices: int,
    k: int,
    pop_size: int,
    n_candidates: int,
    dim: int,
    limit_gb: float = 0.0,
) -> None:
    """Refuse a run whose kernels cannot fit (see :func:`kernel_bytes`)
    before anything is compiled, naming the setting that drives the estimate.

    Raises:
        ConfigError: an estimate above ``limit_gb`` (0: :func:`device_memory`).
    """
    per_device = -(-int(users) // max(1, int(devices)))
    limit = limit_gb * 1e9 if limit_gb > 0 else float(device_memory())
    est = kernel_bytes(
        ws,
        specs,
        users=per_device,
        k=k,
        pop_size=pop_size,
        n_candidates=n_candidates,
        dim=dim,
    )
    for kernel, (need, formula) in est.items():
        if need > limit:
            name, value = (
                ("k", k)
                if kernel == "greedy repair" or 8 * k * k > 64 * k + 2048
                else ("pop_size", pop_size)
            )
            raise ConfigError(
                f"{name}={value} is too large for {per_device} user(s) per device: "
                f"the {kernel} kernel needs about {need / 1e9:.1f} GB ({formula}), "
                f"more than the {limit / 1e9:.1f} GB available (memory_gb); "
                f"lower {name} or users"
            )
