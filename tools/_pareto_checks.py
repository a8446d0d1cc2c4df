"""Argument checks and dtype rules shared by the Pareto kernels.

Shapes are checked at trace time (they are static). Values (NaN, an infinite
reference point) are checked only on concrete arrays, because a traced value
cannot raise; host arrays (NumPy, lists, JAX arrays on CPU) are checked with
NumPy, which costs microseconds rather than a dispatch per JAX op.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from agenticrec.errors import ConfigError

__all__ = [
    "check_points_shape",
    "float_dtype",
    "host_view",
    "is_traced",
    "prepare_mask",
    "prepare_points",
    "prepare_ref",
    "reject_nan",
]


def is_traced(*xs: Any) -> bool:
    """Whether any argument is a JAX tracer (inside ``jit``, ``vmap``, ``grad``)."""
    return any(isinstance(x, jax.core.Tracer) for x in xs)


def host_view(x: Any) -> np.ndarray | None:
    """``x`` as a NumPy array if it is concrete and in host memory, else None.

    NumPy arrays, lists and scalars qualify, and so do concrete JAX arrays on
    CPU (viewed without a copy); tracers and accelerator arrays do not.
    """
    if isinstance(x, jax.core.Tracer):
        return None
    if isinstance(x, jax.Array):
        if all(d.platform == "cpu" for d in x.devices()):
            return np.asarray(x)
        return None
    return _as_array(x)


def float_dtype(*xs: Any) -> jnp.dtype:
    """The floating dtype a kernel computes and returns in.

    float32 and float64 inputs keep their dtype (float64 only when
    ``jax_enable_x64`` is on; otherwise JAX stores float64 as float32);
    float16 and bfloat16 are promoted to float32, too coarse for volumes;
    integer and bool inputs give JAX's default float (float32, or float64
    under x64).
    """
    dt = jnp.result_type(*xs)
    if jnp.issubdtype(dt, jnp.complexfloating):
        raise ConfigError(f"complex inputs are not supported (got {dt})")
    if jnp.issubdtype(dt, jnp.floating):
        return jnp.promote_types(dt, jnp.float32)
    return jnp.zeros((), dtype=float).dtype


def _as_array(x: Any) -> Any:
    if isinstance(x, jax.Array | np.ndarray):
        return x
    try:
        return np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise ConfigError(f"not a rectangular array: {exc}") from None


def check_points_shape(x: Any, name: str = "points", min_objectives: int = 1) -> Any:
    """``x`` as an array (unconverted if already one) of shape ``(*batch, n, m)``."""
    x = _as_array(x)
    if x.ndim < 2:
        raise ConfigError(
            f"`{name}` must have shape (..., n_points, n_objectives); got shape "
            f"{tuple(x.shape)}. Wrap a single point as [[...]]."
        )
    if x.shape[-1] < min_objectives:
        raise ConfigError(
            f"`{name}` needs at least {min_objectives} objective(s) in its last "
            f"axis; got shape {tuple(x.shape)}"
        )
    if not (jnp.issubdtype(x.dtype, jnp.number) or x.dtype == bool):
        raise ConfigError(f"`{name}` must be numeric; got dtype {x.dtype}")
    return x


def prepare_points(
    points: Any, name: str = "points", *, min_objectives: int = 1
) -> jax.Array:
    """``points`` as a float JAX array of shape ``(*batch, n, m)``."""
    x = check_points_shape(points, name, min_objectives)
    return jnp.asarray(x, dtype=float_dtype(x))


def prepare_mask(mask: Any, batch_n: tuple[int, ...]) -> jax.Array:
    """``mask`` broadcast to ``(*batch, n)`` as bool; ``None`` means all valid."""
    if mask is None:
        return jnp.ones(batch_n, dtype=bool)
    m = _as_array(mask)
    if m.dtype != bool:
        raise ConfigError(f"`mask` must be boolean; got dtype {m.dtype}")
    try:
        return jnp.broadcast_to(jnp.asarray(m), batch_n)
    except ValueError:
        raise ConfigError(
            f"`mask` of shape {tuple(m.shape)} does not broadcast to the points' "
            f"(*batch, n_points) = {batch_n}"
        ) from None


def prepare_ref(ref: Any, batch_m: tuple[int, ...], dtype: jnp.dtype) -> jax.Array:
    """Reference point broadcast to ``(*batch, m)``; rejects an infinite one."""
    host = host_view(ref)
    if host is not None and not np.all(np.isfinite(host)):
        raise ConfigError(f"`ref` must be finite (no NaN or infinity); got {host}")
    r = jnp.asarray(ref, dtype=dtype)
    if r.ndim == 0:
        r = jnp.full(batch_m[-1:], r)
    if r.shape[-1] != batch_m[-1]:
        raise ConfigError(
            f"`ref` has {r.shape[-1]} coordinate(s) but the points have "
            f"{batch_m[-1]} objective(s)"
        )
    try:
        r = jnp.broadcast_to(r, batch_m)
    except ValueError:
        raise ConfigError(
            f"`ref` of shape {tuple(r.shape)} does not broadcast to the points' "
            f"(*batch, n_objectives) = {batch_m}"
        ) from None
    if host is None and not is_traced(r) and not bool(jnp.all(jnp.isfinite(r))):
        raise ConfigError("`ref` must be finite (no NaN or infinity)")
    return r


def reject_nan(x: Any, mask: Any, name: str = "points", trailing: int = 1) -> None:
    """Raise if a valid (unmasked) entry of a concrete ``x`` is NaN.

    Args:
        x: ``(*batch, n, *item)`` with ``len(item) == trailing``.
        mask: ``bool`` broadcastable to ``(*batch, n)``, or ``None``; masked
            (padding) rows may hold NaN.
        name: the argument's name, for the message.
        trailing: number of item axes after the point axis.

    Traced arrays are not checked (a traced value cannot raise).
    """
    if is_traced(x, mask):
        return
    xh = host_view(x)
    mh = None if mask is None else host_view(mask)
    xp = np
    if xh is None or (mask is not None and mh is None):
        xp = jnp  # accelerator arrays: reduce there, fetch one flag
        xh, mh = jnp.asarray(x), None if mask is None else jnp.asarray(mask)
    if xh.size == 0:
        return
    bad = xp.isnan(xh)
    if trailing:
        bad = xp.any(bad, axis=tuple(range(bad.ndim - trailing, bad.ndim)))
    if mh is not None:
        bad = bad & xp.broadcast_to(mh, bad.shape)
    if bool(xp.any(bad)):
        where = np.argwhere(np.asarray(bad))[0]
        raise ConfigError(
            f"`{name}` holds NaN at index {tuple(int(i) for i in where)}; "
            "drop or mask those rows"
        )
