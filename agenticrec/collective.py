"""What the shards of one run share while they run: an all-gather of small
JSON values, and sums that do not depend on how the users were split.

A graph whose nodes make one decision for the whole batch (DualAgent's
coordinator sets alpha from the batch's mean hypervolume, feasibility, ...)
gives the report of one process on Ray only if every shard sees the whole
batch's signals and the same decision. ``ctx.collective`` (a service field of
:class:`agenticrec.context.Context`) is ``None`` in one process; on Ray it is
a :class:`Group` whose :meth:`Group.allgather` returns every shard's value
for a key, in shard order (:mod:`agenticrec.distributed` implements it with
one Ray actor that also writes each finished key to the run's checkpoint
folder, so a shard resumed later gets the same answer).

Why exact sums: a float mean depends on the order of its additions, so a
batch mean computed from per-shard partial sums differs in the last bits
from the one computed in one process, and a rule that rounds such a mean
can decide differently. :func:`exact_sum` returns the sum of float32 values
as an integer multiple of ``2**-149`` (every finite float32 is one), so
partial sums add up exactly in any order and :func:`mean` rounds once.
Gathering the per-user values instead would cost O(users) per shard and
round; these partials cost O(1).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

__all__ = ["SCALE_BITS", "Group", "add", "allgather", "exact_sum", "mean", "ratio"]

SCALE_BITS = 149
"""Every finite float32 is an integer times ``2**-149``."""


class Group(Protocol):
    """The shards of one run (rank ``0 .. size-1``, in user order)."""

    rank: int
    size: int

    def allgather(self, key: str, value: Any) -> list[Any]:
        """Every shard's ``value`` (JSON) for ``key``, in rank order; blocks
        until every shard has given one. The same key always returns the same
        list, also to a shard that asks again after a restart."""


def allgather(group: Group | None, key: str, value: Any) -> list[Any]:
    """``group.allgather(key, value)``, or ``[value]`` in one process."""
    return [value] if group is None else list(group.allgather(key, value))


def exact_sum(values: Any) -> int:
    """``sum(values) * 2**149`` exactly, as a Python int.

    Args:
        values: finite numbers, any shape; cast to float32 first (the values
            a kernel returned are float32 already).

    Raises:
        ValueError: a value is NaN or infinite (mask them out first).
    """
    x = np.ascontiguousarray(np.asarray(values, np.float32)).ravel()
    if x.size == 0:
        return 0
    if not np.all(np.isfinite(x)):
        raise ValueError("exact_sum: values must be finite (mask NaN out first)")
    bits = x.view(np.int32)
    expo = (bits >> 23) & 0xFF
    mant = (bits & 0x7FFFFF).astype(np.int64)
    mant = np.where(expo > 0, mant | 0x800000, mant)  # the implicit leading 1
    mant = np.where(bits < 0, -mant, mant)
    shift = np.maximum(expo, 1) - 1  # value = mant * 2**(shift - 149)
    # one bucket per exponent: |mant| < 2**24, so 2**39 values fit an int64
    buckets = np.zeros(255, np.int64)
    np.add.at(buckets, shift, mant)
    return sum(int(b) << int(s) for s, b in enumerate(buckets) if b)


def mean(total: int, count: int) -> float:
    """The float nearest ``total * 2**-149 / count`` (nan for no values)."""
    if count <= 0:
        return float("nan")
    return float(Fraction(total, count << SCALE_BITS))


def ratio(num: int, den: int) -> float:
    """The float nearest ``num / den`` of two :func:`exact_sum` results."""
    return float("nan") if den == 0 else float(Fraction(num, den))


def add(parts: Sequence[dict[str, int]]) -> dict[str, int]:
    """Field-wise sum of the shards' partial sums (all with the same keys)."""
    out: dict[str, int] = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0) + int(v)
    return out
