"""EASE^R (Steck 2019): the closed-form item-item linear autoencoder.

For the 0/1 interaction matrix ``X: [u, i]`` and its Gram matrix
``G = X.T @ X``, the weights minimising ``||X - X B||^2 + lam ||B||^2`` subject
to ``diag(B) = 0`` are

    P = (G + lam I)^-1,    B = I - P / diag(P)  (column j divided by P[j, j]),

i.e. ``B[i, j] = -P[i, j] / P[j, j]`` off the diagonal and 0 on it. A user's
scores are ``x_u @ B``. ``G + lam I`` is symmetric positive definite for any
``lam > 0``, so the inverse is a Cholesky solve; the kernel is one jitted
function of ``f32`` arrays and runs unchanged on CPU and GPU.

:func:`ease_scores` fits on the graph's active items (items nobody interacted
with have zero rows and columns of ``B``) and caches the fitted weights in
memory, keyed by the graph fingerprint and ``lam``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from .itemknn import _Cache, _check_square, item_gram, linear_scores

__all__ = ["LAM_MAX", "clear_cache", "ease_fit", "ease_scores", "ease_weights"]

LAM_MAX = 1e7
"""Largest ``lam`` accepted: beyond it ``B ~ G / lam`` falls below float32
resolution of ``P``'s diagonal and the weights are noise."""

_HIGHEST = jax.lax.Precision.HIGHEST
_WEIGHTS = _Cache(2)


def _check_lam(lam: float) -> float:
    lam = float(lam)
    if not math.isfinite(lam) or not 0.0 < lam <= LAM_MAX:
        raise ValueError(
            f"lam (EASE L2 penalty) must be in (0, {LAM_MAX:g}], got {lam}; "
            "typical values are 10 to 10,000 (choose it on the validation split)"
        )
    return lam


@jax.jit
def _ease_weights(gram: jax.Array, lam: jax.Array) -> jax.Array:
    _check_square(gram)
    n = gram.shape[-1]
    eye = jnp.eye(n, dtype=jnp.float32)
    a = gram.astype(jnp.float32) + lam * eye
    p = jsl.cho_solve(jsl.cho_factor(a, lower=True), jnp.broadcast_to(eye, a.shape))
    p = 0.5 * (p + jnp.swapaxes(p, -1, -2))
    b = -p / jnp.diagonal(p, axis1=-2, axis2=-1)[..., None, :]
    return b * (1.0 - eye)


def ease_weights(gram: jax.Array, lam: float) -> jax.Array:
    """EASE^R weights from a Gram matrix.

    Args:
        gram: ``f[..., i, i]`` ``X.T @ X`` (leading dimensions are a batch of
            independent problems).
        lam: L2 penalty, ``0 < lam <= LAM_MAX``.

    Returns:
        ``f32[..., i, i]`` ``B`` with a zero diagonal.

    Raises:
        ValueError: ``lam`` out of range or ``gram`` not square.
    """
    return _ease_weights(jnp.asarray(gram), jnp.float32(_check_lam(lam)))


def ease_fit(source: Any, lam: float, *, persist: bool = False):
    """``(ItemGram, B: f32[a, a])`` for ``source``'s active items, cached by
    graph fingerprint and ``lam`` (see :func:`~agenticrec.tools.itemknn.as_graph`
    for what ``source`` may be).

    With ``persist``, ``B`` is also kept on disk as a plain ``.npy`` array
    under ``$AGENTICREC_CACHE_DIR/ease`` (loaded with ``allow_pickle=False``
    and checked for shape and dtype; anything else is refitted), because the
    Cholesky solve of a 10,000-item catalogue takes tens of seconds on a
    laptop CPU and every process serving that dataset needs it.
    """
    lam = _check_lam(lam)
    gram = item_gram(source)

    def make():
        path = _disk_path(gram.fingerprint, lam) if persist else None
        if path is not None:
            b = _load(path, int(gram.items.size))
            if b is not None:
                return jnp.asarray(b)
        b = jax.block_until_ready(ease_weights(gram.gram, lam))
        if path is not None:
            _save(path, np.asarray(b))
        return b

    return gram, _WEIGHTS.get((gram.fingerprint, lam), make)


def _disk_path(fingerprint: str, lam: float):
    from agenticrec.data._cache import cache_dir

    return cache_dir() / "ease" / f"{fingerprint}-{lam:.6g}.npy"


def _load(path, a: int) -> np.ndarray | None:
    try:
        b = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if b.dtype != np.float32 or b.shape != (a, a) or not np.isfinite(b).all():
        return None
    return b


def _save(path, b: np.ndarray) -> None:
    import io
    import logging

    from agenticrec._io import atomic_write_bytes

    buf = io.BytesIO()
    np.save(buf, b, allow_pickle=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError as exc:  # a read-only cache costs a refit next time
        logging.getLogger(__name__).warning(
            "could not cache EASE^R at %s: %s", path, exc
        )


def ease_scores(
    source: Any,
    users: np.ndarray,
    candidates: np.ndarray | None = None,
    lam: float = 500.0,
) -> np.ndarray:
    """EASE^R scores ``x_u @ B`` of ``users`` for ``candidates``.

    Args:
        source: an :class:`~agenticrec.tools.graph.InteractionGraph` or a
            workspace whose visible graph gives both ``B`` and the histories.
        users: ``int[q]`` compact user ids.
        candidates: ``int[q, c]`` item ids, ``-1`` pads; ``None``: all items.
        lam: L2 penalty (``0 < lam <= LAM_MAX``).

    Returns:
        ``f32[q, c]`` (``-inf`` at padding) or ``f32[q, n_items]``; seen items
        are not masked.
    """
    gram, w = ease_fit(source, lam)
    return linear_scores(source, gram, w, users, candidates)


def clear_cache() -> None:
    """Drop cached EASE weights (the Gram cache is :mod:`.itemknn`'s)."""
    _WEIGHTS.clear()
