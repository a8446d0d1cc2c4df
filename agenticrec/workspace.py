"""The one data workspace every graph reads: a dataset, its leave-one-out
split and the interaction graph of what a model may see, built once per
dataset and shared by every graph of the process (each graph's workspace is
a thin view over it: candidates, tools, pipeline features).

The workspace is derived data: rebuilt from the dataset in every process,
never checkpointed. Keys are dataset names or paths as given; the content
fingerprint is what checkpoints bind to.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agenticrec import data

if TYPE_CHECKING:  # pragma: no cover
    from agenticrec.tools.graph import InteractionGraph

__all__ = ["DataWorkspace", "data_workspace"]


@dataclass(frozen=True, eq=False)
class DataWorkspace:
    """A dataset with its leave-one-out split.

    Attributes:
        name: the name or path it was loaded from.
        raw: the dataset as loaded.
        split: leave-one-out by time (test = last, validation = second last).
    """

    name: str
    raw: data.Dataset
    split: data.Split
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def dataset(self) -> data.Dataset:
        """The split's dataset (compact ids the graphs use)."""
        return self.split.dataset

    @property
    def fingerprint(self) -> str:
        return self.split.dataset.fingerprint

    def visible(self) -> tuple[np.ndarray, np.ndarray]:
        """``(indptr: int64[n_users + 1], items: int32[k])``: train +
        validation per user, oldest first (what predicting test may see)."""
        return self.split.history("test")

    def require_evaluable(self, graph: str) -> np.ndarray:
        """The users with a held-out test item, or a clear error saying why
        no user of this dataset can be evaluated.

        Raises:
            DataValidationError: no user has a test item.
        """
        users, _ = self.split.targets("test")
        if users.size:
            return users
        from agenticrec.errors import DataValidationError

        ds = self.dataset
        per_user = np.bincount(ds.users, minlength=ds.n_users) if ds.n_users else []
        most = int(np.max(per_user)) if len(per_user) else 0
        why = (
            f"the catalogue has {ds.n_items} item(s)"
            if ds.n_items < 2
            else f"every user has at most {most} interaction(s)"
        )
        raise DataValidationError(
            f"{graph}: no user of {self.name} can be evaluated: {why}; leave-one-"
            "out needs users with at least 3 interactions (train, validation, "
            "test) and a catalogue of at least 2 items"
        )

    def graph(self) -> InteractionGraph:
        """The user-item graph of the visible interactions (built once)."""
        with self._lock:
            g = self._cache.get("graph")
            if g is None:
                from agenticrec.tools.graph import InteractionGraph

                indptr, items = self.visible()
                sds = self.dataset
                users = np.repeat(
                    np.arange(sds.n_users, dtype=np.int32), np.diff(indptr)
                )
                g = self._cache["graph"] = InteractionGraph.from_interactions(
                    users, items, sds.n_users, sds.n_items
                )
            return g


@functools.lru_cache(maxsize=4)
def data_workspace(name: str) -> DataWorkspace:
    """Load ``name`` (a dataset name or path) and split it leave-one-out."""
    raw = data.load(name)
    return DataWorkspace(name=name, raw=raw, split=data.leave_one_out(raw))
