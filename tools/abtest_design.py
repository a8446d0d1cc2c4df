"""A/B designs that see smaller effects: CUPED, stratified assignment and
always-valid sequential p-values.

* :func:`cuped` (Deng, Xu, Kohavi and Walker, 2013): each user's metric
  minus ``theta * (x - mean x)``, with ``x`` the user's value of the same
  metric in a pre-period (before the experiment, so independent of the
  arm) and ``theta = cov(x, y) / var(x)`` pooled over both arms. The means'
  difference keeps its expectation; its variance shrinks by ``corr(x, y)^2``.
* :func:`assign_stratified`: arms balanced within strata (e.g. pre-period
  quantiles): within each stratum users are ordered by the hashed unit of
  :func:`agenticrec.tools.abtest.assign` and the first ``share`` of them
  (randomly rounded, from the same hash) go to treatment, so the arm of a
  user still depends only on its id, its stratum and the seed.
* :func:`msprt_pvalues` (Johari, Pekelis and Walsh, "Always valid
  inference", 2017): the mixture sequential probability ratio test with a
  normal mixing distribution ``N(0, tau^2)`` on the difference of means;
  ``p_n = min(p_{n-1}, 1 / Lambda_n)`` may be read after every look and
  stopping at the first ``p_n < alpha`` keeps the type-I error below alpha.

scipy has none of these (its tests are fixed-sample), which is why they are
written here, in numpy, each checked against an independent reference in
``tests/test_abtest_design.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agenticrec.errors import ConfigError

__all__ = ["assign_stratified", "cuped", "cuped_theta", "msprt_pvalues", "strata_of"]


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """``cov(x, y) / var(x)`` over all users (0 when ``x`` is constant)."""
    y = np.asarray(y, np.float64)
    x = np.asarray(x, np.float64)
    if y.shape != x.shape or y.ndim != 1:
        raise ConfigError(f"y and x must be equal 1-D arrays, got {y.shape}, {x.shape}")
    vx = x.var()
    return 0.0 if vx == 0 else float(np.mean((x - x.mean()) * (y - y.mean())) / vx)


def cuped(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float]:
    """``(y - theta (x - mean x), theta)``: the CUPED-adjusted metric of
    every user (both arms together: ``f64[n]``)."""
    theta = cuped_theta(y, x)
    x = np.asarray(x, np.float64)
    return np.asarray(y, np.float64) - theta * (x - x.mean()), theta


def strata_of(x: np.ndarray, n_strata: int) -> np.ndarray:
    """``int[n]`` quantile stratum of each user's pre-period value (ties
    share a stratum)."""
    if n_strata < 1:
        raise ConfigError(f"n_strata must be >= 1, got {n_strata}")
    x = np.asarray(x, np.float64)
    if n_strata == 1 or len(x) == 0:
        return np.zeros(len(x), np.int64)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, n_strata + 1)[1:-1]))
    return np.searchsorted(edges, x, side="right").astype(np.int64)


def assign_stratified(
    user_ids: Sequence[Any] | np.ndarray,
    strata: np.ndarray,
    *,
    seed: int,
    treatment_share: float = 0.5,
) -> np.ndarray:
    """``bool[n]`` arms with ``round(share * n_s)`` (randomly rounded)
    treatment users in every stratum ``s``."""
    from agenticrec.tools.abtest import _unit

    if not 0.0 < treatment_share < 1.0:
        raise ConfigError(f"treatment_share must lie in (0, 1), got {treatment_share}")
    ids = np.asarray(user_ids).ravel()
    strata = np.asarray(strata).ravel()
    if len(ids) != len(strata):
        raise ConfigError(f"{len(ids)} users but {len(strata)} strata")
    units = np.array([_unit(int(seed), u) for u in ids.tolist()])
    arm = np.zeros(len(ids), bool)
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        order = idx[np.argsort(units[idx], kind="stable")]
        want = treatment_share * len(idx)
        # random rounding from the stratum's own hash, so the share is exact
        # in expectation and the arms stay a function of ids and seed
        frac = _unit(int(seed), f"stratum:{s}")
        n_t = int(np.floor(want)) + int(frac < want - np.floor(want))
        arm[order[:n_t]] = True
    return arm


def msprt_pvalues(
    diffs: np.ndarray, variances: np.ndarray, *, tau: float
) -> np.ndarray:
    """Always-valid p-values of ``H0: difference of means = 0`` at each look.

    Args:
        diffs: ``f64[looks]`` difference of means at each look (cumulative
            data, looks in time order).
        variances: ``f64[looks]`` its variance at each look
            (``s_t^2 / n_t + s_c^2 / n_c``).
        tau: standard deviation of the normal mixing distribution, in the
            metric's units (the effect size the test is most sensitive to).

    Returns ``f64[looks]``, non-increasing: ``p_n = min(1, p_{n-1},
    1 / Lambda_n)`` with ``Lambda_n = sqrt(V / (V + tau^2)) exp(tau^2 d^2 /
    (2 V (V + tau^2)))``.
    """
    if not tau > 0:
        raise ConfigError(f"tau must be > 0, got {tau}")
    d = np.asarray(diffs, np.float64)
    v = np.asarray(variances, np.float64)
    if d.shape != v.shape or d.ndim != 1:
        raise ConfigError("diffs and variances must be equal 1-D arrays")
    if np.any(v <= 0):
        raise ConfigError("every variance must be > 0")
    t2 = tau * tau
    log_lam = 0.5 * np.log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2))
    p = np.minimum(1.0, np.exp(-log_lam))
    return np.minimum.accumulate(p)
