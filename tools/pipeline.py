"""The multi-stage recommender that AgenticRecTune tunes, as one jitted kernel.

Four stages produce a top-10 per user; every knob is a field of
:class:`PipelineConfig` (dotted names, bounds, defaults)::

    recall     five channels, each filling its quota of ``recall.total`` slots
               with its best unseen items; the union is the candidate set
                 cf         user kNN (``graph.user_neighbours``)
                 item2item  cosine co-occurrence with the recency-weighted history
                 embedding  item text embeddings vs the user's profile
                 popular    all-time popularity
                 fresh      popularity in the 90 days before the user's last action
    pre-rank   weighted sum of the (per-user max-normalised) channel scores,
               keep ``prerank.keep_top``
    ranking    additive or multiplicative fusion of six heads in [0, 1]:
               cf, content, engage (mean rating), like (share >= 4), pop, recency
    re-rank    MMR over the top ``rerank.window``: lambda * relevance (min-max
               in the window) + novelty bonus - (1 - lambda) * max similarity,
               with at most ``rerank.max_per_category`` items per category

A :class:`Pipeline` precomputes everything config-independent for its users
once (channel scores, ranks, the candidate pool, heads, item tables; see
:mod:`agenticrec.tools._pipeline_features`), so :meth:`Pipeline.evaluate` is
one jitted call over all users that never recompiles for a new config.

Metrics per user (:data:`PER_USER_METRICS`): ``NDCG@10`` and ``HR@10`` of the
held-out item; ``ILD@10``, the mean pairwise category Jaccard distance of the
list (categories as in
:func:`agenticrec.tools._pipeline_features.category_matrix`; items without
one count as unlike every item);
``ILD_embedding@10``, the mean pairwise ``1 - cosine`` of item embeddings;
``novelty@10``, the mean ``-log2((p + 1) / (n_users + 1))`` of the items
(``p``: visible users of the item, add-one smoothed); ``recall_hit`` and
``prerank_hit``, whether the held-out item survived those stages. Aggregates
add ``coverage@10`` (distinct recommended items / catalog size) and
``share.<channel>`` (share of final items that channel recalled; channels
overlap, so shares may sum above 1).

Tuning splits (:func:`tuning_pipelines`): leave-one-out per user by time;
users are partitioned at random (seeded) into an *offline* part, evaluated on
their validation item (second to last) with only train rows visible, which the
Actor and Critic may use freely, and an *online* part, evaluated on their test
item (last) with train and validation rows visible, which only the Online
agent's A/B tests (:mod:`agenticrec.tools.abtest`) read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
import numpy as np

from agenticrec import data
from agenticrec.data import Dataset, Split
from agenticrec.errors import ConfigError, DataValidationError

from ._pipeline_config import (
    CHANNELS,
    HEADS,
    LIST_SIZE,
    MAX_KEEP_TOP,
    MAX_TOTAL,
    MAX_WINDOW,
    Bound,
    Params,
    PipelineConfig,
    PrerankConfig,
    RankingConfig,
    RecallConfig,
    RecallQuota,
    RerankConfig,
    to_params,
)
from ._pipeline_embed import EmbeddingSource, item_embeddings, item_texts
from ._pipeline_features import BuildOptions, Features, build_features, pad_features
from ._pipeline_kernel import Outputs, evaluate_kernel
from ._pipeline_reference import evaluate_reference
from .graph import InteractionGraph

__all__ = [
    "CHANNELS",
    "HEADS",
    "LIST_SIZE",
    "MAX_KEEP_TOP",
    "MAX_TOTAL",
    "MAX_WINDOW",
    "PER_USER_METRICS",
    "Bound",
    "BuildOptions",
    "EmbeddingSource",
    "Evaluation",
    "Features",
    "Outputs",
    "Params",
    "Pipeline",
    "PipelineConfig",
    "PrerankConfig",
    "RankingConfig",
    "RecallConfig",
    "RecallQuota",
    "RerankConfig",
    "TuningPipelines",
    "evaluate_kernel",
    "item_embeddings",
    "item_texts",
    "to_params",
    "tuning_pipelines",
]

Part = Literal["valid", "test"]

PER_USER_METRICS: tuple[str, ...] = (
    "NDCG@10",
    "HR@10",
    "ILD@10",
    "ILD_embedding@10",
    "novelty@10",
    "recall_hit",
    "prerank_hit",
)
_FIELDS = ("ndcg", "hr", "ild", "ild_embedding", "novelty", "recall_hit", "prerank_hit")


@dataclasses.dataclass(frozen=True, eq=False)
class Evaluation:
    """Per-user metrics and aggregates of one config on some users."""

    config: PipelineConfig
    """The evaluated config."""
    users: np.ndarray
    """``i32[n]`` compact user ids (of the pipeline's dataset)."""
    user_ids: np.ndarray
    """``[n]`` raw user ids (what A/B assignment hashes)."""
    targets: np.ndarray
    """``i32[n]`` held-out item of each user."""
    top: np.ndarray
    """``i32[n, 10]`` final lists, best first, ``-1`` where empty."""
    per_user: Mapping[str, np.ndarray]
    """Metric (:data:`PER_USER_METRICS`) -> ``f64[n]``."""
    aggregates: Mapping[str, float]
    """Means of the per-user metrics, ``coverage@10``, ``share.<channel>``,
    ``users``."""
    n_items: int
    """Catalog size (the denominator of ``coverage@10``)."""

    def __getitem__(self, metric: str) -> np.ndarray:
        """Per-user values of ``metric``."""
        try:
            return self.per_user[metric]
        except KeyError:
            raise KeyError(
                f"no per-user metric {metric!r}; have {', '.join(self.per_user)}"
            ) from None

    def select(self, rows: np.ndarray) -> Evaluation:
        """The evaluation restricted to ``rows`` (indices or a bool mask);
        aggregates are recomputed except ``share.<channel>``, which keeps the
        value of the whole evaluation."""
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows
        per_user = {k: v[rows] for k, v in self.per_user.items()}
        agg = dict(self.aggregates)
        agg.update(_means(per_user, self.top[rows], self.n_items))
        return dataclasses.replace(
            self,
            users=self.users[rows],
            user_ids=self.user_ids[rows],
            targets=self.targets[rows],
            top=self.top[rows],
            per_user=per_user,
            aggregates=agg,
        )

    def summary(self, digits: int = 4) -> dict[str, float]:
        """Aggregates rounded for reports (JSON-ready)."""
        return {
            k: (round(float(v), digits) if k != "users" else int(v))
            for k, v in self.aggregates.items()
        }


def _means(per_user: Mapping[str, np.ndarray], top: np.ndarray, n_items: int):
    out = {k: float(np.mean(v)) if len(v) else 0.0 for k, v in per_user.items()}
    items = top[top >= 0]
    out["coverage@10"] = float(np.unique(items).size / n_items) if n_items else 0.0
    out["users"] = len(top)
    return out


class Pipeline:
    """The multi-stage recommender for a fixed set of users and held-out items.

    Build it with :meth:`build` (or :func:`tuning_pipelines`); then evaluate
    any number of configs, each in one jitted call.
    """

    def __init__(
        self,
        *,
        dataset: Dataset,
        part: Part,
        users: np.ndarray,
        features: Features,
        graph: InteractionGraph,
        options: BuildOptions,
    ) -> None:
        self.dataset = dataset
        """The split's dataset; user and item ids refer to it."""
        self.part = part
        """``"valid"`` or ``"test"``: which held-out item is the target."""
        self.users = np.asarray(users, np.int32)
        """``i32[U]`` evaluation users, ascending."""
        self.user_ids = dataset.user_ids[self.users]
        """``[U]`` their raw ids."""
        self.features = features
        """numpy :class:`Features` (unpadded)."""
        self.graph = graph
        """Interaction graph of the visible rows."""
        self.options = options
        padded = pad_features(features)
        self._ranks = padded.ranks
        self._device = jax.device_put(padded)

    # ---------------------------------------------------------------- build
    @classmethod
    def build(
        cls,
        split: Split,
        users: Sequence[int] | np.ndarray | None = None,
        part: Part = "valid",
        *,
        embeddings: np.ndarray | EmbeddingSource = "lsa",
        options: BuildOptions | None = None,
    ) -> Pipeline:
        """Precompute the config-independent inputs for ``users``.

        Args:
            split: a leave-one-out split (one held-out item per user and part).
            users: compact user ids to evaluate (default every user with a
                ``part`` item); each needs a held-out item in ``part``.
            part: ``"valid"``: train rows visible, validation item is the
                target; ``"test"``: train and validation rows visible, test
                item is the target.
            embeddings: ``f32[n_items, d]`` item embeddings or a source name
                for :func:`item_embeddings`.
            options: channel model choices (:class:`BuildOptions`).

        Raises:
            ConfigError: a user has no held-out item in ``part``, or bad args.
        """
        if part not in ("valid", "test"):
            raise ConfigError(f"part must be 'valid' or 'test', got {part!r}")
        ds = split.dataset
        t_users, t_items = split.targets(part)
        target_of = np.full(ds.n_users, -1, np.int64)
        target_of[t_users] = t_items
        if users is None:
            users = np.unique(t_users)
        users = np.unique(np.asarray(users, np.int64))
        if users.size == 0:
            raise DataValidationError("a pipeline needs at least one user")
        if users.min() < 0 or users.max() >= ds.n_users:
            raise ConfigError(f"user ids must lie in [0, {ds.n_users})")
        missing = users[target_of[users] < 0]
        if missing.size:
            raise ConfigError(
                f"users {missing[:5].tolist()} have no {part} item in the split; "
                "pass users with at least 3 interactions"
            )
        rows = split.train if part == "valid" else np.union1d(split.train, split.valid)
        if isinstance(embeddings, str):
            embeddings = item_embeddings(ds, embeddings)
        options = options or BuildOptions()
        features, graph = build_features(
            ds, rows, users, target_of[users], np.asarray(embeddings), options
        )
        return cls(
            dataset=ds,
            part=part,
            users=users,
            features=features,
            graph=graph,
            options=options,
        )

    # ------------------------------------------------------------- queries
    @property
    def n_users(self) -> int:
        """Number of evaluation users."""
        return len(self.users)

    def describe(self) -> dict[str, Any]:
        """Sizes and choices, JSON-ready."""
        return {
            "dataset": self.dataset.name,
            "part": self.part,
            "users": self.n_users,
            "items": self.dataset.n_items,
            "pool_width": int(self.features.pool.shape[1]),
            "mean_pool": float((self.features.pool >= 0).sum(axis=1).mean()),
            "channels": list(CHANNELS),
            "heads": list(HEADS),
            "options": dataclasses.asdict(self.options),
        }

    def rows(self, users: Sequence[int] | np.ndarray | None) -> np.ndarray:
        """Row of each compact user id (all rows for ``None``)."""
        if users is None:
            return np.arange(self.n_users)
        users = np.asarray(users, np.int64).ravel()
        pos = np.searchsorted(self.users, users)
        pos = np.minimum(pos, self.n_users - 1)
        bad = users[self.users[pos] != users]
        if bad.size:
            raise ConfigError(
                f"users {bad[:5].tolist()} are not evaluation users of this "
                f"{self.part} pipeline"
            )
        return pos

    def params(self, config: PipelineConfig | Mapping[str, Any] | None) -> Params:
        """Kernel arguments of ``config`` (validated)."""
        return to_params(PipelineConfig.parse(config))

    def run(self, config: PipelineConfig | Mapping[str, Any] | None = None) -> Outputs:
        """The raw kernel outputs on device, padded rows included."""
        return evaluate_kernel(self._device, self.params(config))

    def evaluate(
        self,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        users: Sequence[int] | np.ndarray | None = None,
    ) -> Evaluation:
        """Evaluate one config.

        Args:
            config: a :class:`PipelineConfig`, nested or dotted dict (dotted
                keys override the default), or ``None`` for the default.
            users: compact user ids (default all evaluation users).

        Returns:
            :class:`Evaluation` with per-user arrays and aggregates. The
            kernel always runs on every user (one compiled shape); ``users``
            selects rows of its output.

        Raises:
            ConfigError: an invalid knob (named) or an unknown user.
        """
        config = PipelineConfig.parse(config)
        p = to_params(config)
        rows = self.rows(users)
        out = evaluate_kernel(self._device, p)
        host = jax.device_get(out._asdict())
        values = {
            k: np.asarray(host[f], np.float64)[rows]
            for k, f in zip(PER_USER_METRICS, _FIELDS, strict=True)
        }
        return self._evaluation(
            config, p, rows, host["top"][rows], host["top_pos"][rows], values
        )

    def evaluate_reference(
        self,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        users: Sequence[int] | np.ndarray | None = None,
    ) -> Evaluation:
        """:meth:`evaluate` by the numpy per-user loop (slow; for checks)."""
        config = PipelineConfig.parse(config)
        p = to_params(config)
        rows = self.rows(users)
        ref = evaluate_reference(self.features, p, rows)
        values = {k: ref[f] for k, f in zip(PER_USER_METRICS, _FIELDS, strict=True)}
        return self._evaluation(config, p, rows, ref["top"], ref["top_pos"], values)

    def _evaluation(self, config, p, rows, top, top_pos, values) -> Evaluation:
        agg = _means(values, top, self.dataset.n_items)
        valid = top_pos >= 0
        ranks = self._ranks[:, rows[:, None], np.maximum(top_pos, 0)]
        from_c = (ranks.astype(np.int32) < p.slots[:, None, None]) & valid
        n = max(int(valid.sum()), 1)
        for c, hits in zip(CHANNELS, from_c, strict=True):
            agg[f"share.{c}"] = float(hits.sum() / n)
        return Evaluation(
            config=config,
            users=self.users[rows],
            user_ids=self.user_ids[rows],
            targets=self.features.target[rows],
            top=np.asarray(top, np.int32),
            per_user=values,
            aggregates=agg,
            n_items=self.dataset.n_items,
        )

    def recommend(
        self,
        config: PipelineConfig | Mapping[str, Any] | None = None,
        users: Sequence[int] | np.ndarray | None = None,
    ) -> np.ndarray:
        """``i32[n, 10]`` final lists of ``users`` (compact item ids)."""
        return self.evaluate(config, users).top


class TuningPipelines(NamedTuple):
    """The offline and online pipelines of one tuning task."""

    offline: Pipeline
    """Offline users on their validation items (train rows visible)."""
    online: Pipeline
    """Online users on their test items (train and validation rows visible);
    read only by A/B tests."""
    split: Split
    """The leave-one-out split both share."""
    groups: Mapping[str, np.ndarray]
    """``{"offline": i32[a], "online": i32[b]}`` compact user ids."""


def tuning_pipelines(
    dataset: Dataset | str | None = None,
    *,
    online_share: float = 0.5,
    seed: int = 0,
    min_rating: float | None = None,
    embeddings: np.ndarray | EmbeddingSource = "lsa",
    options: BuildOptions | None = None,
) -> TuningPipelines:
    """Leave-one-out split, seeded user partition, offline and online pipelines.

    Args:
        dataset: a dataset, a name for :func:`agenticrec.data.load`, or
            ``None`` for the shipped ml-latest-small.
        online_share: share of users held out for A/B tests.
        seed: seed of :func:`agenticrec.data.split_users`.
        min_rating: keep only ratings ``>=`` this (default: every interaction
            is a positive, so the task is predicting the next rated item).
        embeddings: item embeddings or a source for :func:`item_embeddings`.
        options: channel model choices.

    Users with fewer than 3 interactions stay in the training rows and are
    never evaluated.
    """
    if not 0.0 < online_share < 1.0:
        raise ConfigError(f"online_share must lie in (0, 1), got {online_share}")
    if dataset is None:
        ds = data.load()
    else:
        ds = data.load(dataset) if isinstance(dataset, str) else dataset
    split = data.leave_one_out(ds, min_rating=min_rating)
    parts = data.split_users(
        split.dataset,
        {"offline": 1.0 - online_share, "online": online_share},
        seed=seed,
    )
    evaluated = np.intersect1d(split.targets("valid")[0], split.targets("test")[0])
    groups = {
        k: np.intersect1d(v, evaluated).astype(np.int32) for k, v in parts.items()
    }
    if isinstance(embeddings, str):
        embeddings = item_embeddings(split.dataset, embeddings)
    offline = Pipeline.build(
        split, groups["offline"], "valid", embeddings=embeddings, options=options
    )
    online = Pipeline.build(
        split, groups["online"], "test", embeddings=embeddings, options=options
    )
    return TuningPipelines(offline, online, split, groups)
